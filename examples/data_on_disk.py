"""Data on disk: rows in .npy files read block by block (never whole), the exact analytic set and the exact
full-data objective from one streaming pass. Here 200,000 synthetic rows; the same code reads 30 GB.

    python examples/data_on_disk.py
"""

import os
import tempfile

import numpy as np
from _common import SMALL, figure_path

import jaxdistill as jd
from jaxdistill.plots import plot_predictions

n, d = (20_000 if SMALL else 200_000), 32
rng = np.random.default_rng(0)
beta = rng.normal(size=(d, 1))
folder = tempfile.mkdtemp()
X = np.lib.format.open_memmap(os.path.join(folder, "X.npy"), "w+", np.float32, (n, d))
Y = np.lib.format.open_memmap(os.path.join(folder, "Y.npy"), "w+", np.float32, (n, 1))
for start in range(0, n, 50_000):                                 # written in blocks too
    x = rng.normal(size=(min(50_000, n - start), d)).astype(np.float32)
    X[start:start + len(x)] = x
    Y[start:start + len(x)] = x @ beta + 0.1 * rng.normal(size=(len(x), 1))
X.flush(), Y.flush()

src = jd.NpySource(os.path.join(folder, "X.npy"), os.path.join(folder, "Y.npy"))
stats = jd.sufficient_statistics(src)                             # one pass: n, standardiser, XᵀX, XᵀY, YᵀY
print(f"{stats.n} rows, {d} columns read in blocks")
out = jd.distill_analytic(src, None, m=4, lam=1e-3)               # the exact distilled set, from the statistics
Xm, Ym = np.load(src.x_path, mmap_mode="r"), np.load(src.y_path, mmap_mode="r")
rows = np.arange(0, n, 97)
r2 = 1 - np.sum((out.predict(Xm[rows]) - Ym[rows]) ** 2) / np.sum((Ym[rows] - Ym[rows].mean()) ** 2)
print(out.status, f"R² of the model trained on 4 distilled points, on every 97th row: {r2:.4f}")

ax = plot_predictions(out, Xm[rows], Ym[rows], title=f"{n:,} synthetic rows on disk, every 97th")
ax.figure.savefig(figure_path("data_on_disk.png"), dpi=110)
