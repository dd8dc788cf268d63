"""A flax model as the inner model: distil Auto MPG for a small MLP trained by 50 steps of gradient descent,
and compare with random subsets and the full data trained the same way (each with its own tuned step size).

    python examples/flax_model.py
"""

import flax.linen as nn
from _common import figure_path, small, steps

import jaxdistill as jd
from jaxdistill import datasets
from jaxdistill.plots import plot_history


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.tanh(nn.Dense(32)(x))
        return nn.Dense(1)(nn.tanh(nn.Dense(32)(x)))


X, Y = datasets.load("autompg")
Xtr, Ytr, Xte, Yte = datasets.train_test_split(X, Y, 0.2, key=0)
out = jd.distill(Xtr, Ytr, m=20, key=0, model=jd.FlaxModel(MLP()), T=small(50, 10), steps=steps(3000))
report = jd.evaluate(out, Xte, Yte, Xtr, Ytr, n_subsets=small(10, 2), n_inits=small(32, 2))
print(report)

rows = ("distilled", "subset", "full")                 # test-row losses: drawn on their own panel
ax = plot_history(out, references={r["method"]: r["loss"] for r in report.rows if r["id"] in rows},
                  title="Auto MPG, flax MLP")
ax.figure.savefig(figure_path("flax_model.png"), dpi=110)
