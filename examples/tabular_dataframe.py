"""Tabular regression with a DataFrame: distil scikit-learn's diabetes table (442 patients, 10 named columns)
into 10 rows, compare with the baselines, and take away 12 weighted rows under the original column names that
scikit-learn's linear models fit exactly as on all the training rows.

    python examples/tabular_dataframe.py
"""

from _common import figure_path, steps
from sklearn.datasets import load_diabetes

import jaxdistill as jd
from jaxdistill import datasets
from jaxdistill.plots import plot_predictions

frame = load_diabetes(as_frame=True).frame                       # a pandas DataFrame, target "target"
X, y = frame.drop(columns="target"), frame["target"]
Xtr, ytr, Xte, yte = datasets.train_test_split(X, y, 0.2, key=0)  # pandas in, pandas out (indices kept)

out = jd.distill(Xtr, ytr, m=10, key=0, steps=steps(5000))
print(out)
report = jd.evaluate(out, Xte, yte, Xtr, ytr)
print(report)
take_away = jd.distill_moments(Xtr, ytr, m=12)                   # rows any linear learner can use
print(take_away.to_pandas().round(3))                            # named columns, then sample_weight
pred = out.predict(Xte[list(reversed(Xte.columns))])             # columns matched by name: a Series
print(pred.head())

ax = plot_predictions(out, Xte, yte, report=report, units="disease progression after one year",
                      title="diabetes")                          # against the full-data ridge model
ax.figure.savefig(figure_path("tabular_dataframe.png"), dpi=110)
