"""A time-series forecast: yearly sunspot numbers (1700–2008) as autoregressive windows, the last 20 % of the
years held out, against the naive "next year = this year" forecast.

    python examples/time_series.py
"""

from _common import figure_path, steps

import jaxdistill as jd
from jaxdistill import datasets
from jaxdistill.plots import plot_predictions

X, Y = datasets.load("sunspots", lags=12)                        # X[t] = the previous 12 years
Xtr, Ytr, Xte, Yte = datasets.split("sunspots", X, Y)            # unshuffled: the test years come last

out = jd.distill(Xtr, Ytr, m=12, key=0, steps=steps(5000))
report = jd.evaluate(out, Xte, Yte, Xtr, Ytr, last_value_column=-1)   # + the naive forecast's row
print(report)

ax = plot_predictions(out, Xte, Yte, time_series=True, report=report, baseline="naive",
                      units="yearly mean sunspot number", title="sunspots")
ax.figure.savefig(figure_path("time_series.png"), dpi=110)
