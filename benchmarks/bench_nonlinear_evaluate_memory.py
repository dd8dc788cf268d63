"""Peak memory of `evaluate` for a nonlinear (flax MLP) result against the number of test rows (issue #44).

0.8's `evaluate` predicted every test row for every random subset × step size × θ₀ draw before choosing each subset's
step size (on training rows), so its memory grew by about 0.24 MiB per test row (the issue's flight-delay table: 16 GB).
Now each subset's test predictions are made only at its chosen step size, one subset at a time. This script measures
the peak resident memory (VmHWM) of `evaluate` alone, in fresh processes, on a synthetic regression set with 2,000
training rows, at several test-set sizes, for this checkout and (``--compare DIR``) another one beside it.

    python benchmarks/bench_nonlinear_evaluate_memory.py --compare /path/to/old/checkout

Results: results/nonlinear_evaluate_memory.{md,json}.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
TEST_ROWS = (2_000, 10_000, 40_000)

CELL = r"""
import json, resource, sys, time
import numpy as np
import flax.linen as nn
import jaxdistill as jd

class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(nn.tanh(nn.Dense(32)(nn.tanh(nn.Dense(32)(x)))))

n_te = int(sys.argv[1])
rng = np.random.default_rng(0)
X = rng.normal(size=(2000 + n_te, 8)).astype(np.float32)
Y = (np.sin(X[:, :1]) + X[:, 1:2] ** 2 + 0.1 * rng.normal(size=(len(X), 1))).astype(np.float32)
Xtr, Ytr, Xte, Yte = X[:2000], Y[:2000], X[2000:], Y[2000:]
out = jd.distill(Xtr, Ytr, m=20, key=0, model=jd.FlaxModel(MLP()), T=20, steps=20, progress=False)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
rep = jd.evaluate(out, Xte, Yte, Xtr, Ytr, n_subsets=20, n_inits=8, coresets=())
wall = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_mib": peak / 1024, "before_mib": before / 1024, "wall_s": wall,
                  "subset_r2": rep.row("subset")["r2"]}))
"""


def main():
    import _results
    checkouts, _ = _results.checkouts(__doc__)
    rows = []
    for path in checkouts:
        for n_te in TEST_ROWS:
            env = {**os.environ, "PYTHONPATH": os.path.abspath(path)}
            got = subprocess.run([sys.executable, "-c", CELL, str(n_te)], capture_output=True, text=True, env=env,
                                 timeout=1800, cwd="/")
            if got.returncode:
                raise RuntimeError(got.stderr[-2000:])
            res = json.loads(got.stdout.strip().splitlines()[-1])
            rows.append({"checkout": _results.commit_of(path), "test_rows": n_te, **res})
            print(rows[-1], flush=True)
    lines = ["# Peak memory of `evaluate` for a flax MLP against the test rows", "",
             f"{_results.environment()}. A flax MLP (8 → 32 → 32 → 1, T = 20) distilled from 2,000 synthetic rows "
             "(m = 20), then `evaluate(n_subsets=20, n_inits=8, coresets=())`; peak resident memory (VmHWM) of the "
             "process after `evaluate` and before it, each cell a fresh process.", "",
             "| checkout | test rows | peak MiB after evaluate | before evaluate | evaluate's growth | wall s | "
             "subsets' R² |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['checkout']} | {r['test_rows']:,} | {r['peak_mib']:.0f} | {r['before_mib']:.0f} | "
                     f"{r['peak_mib'] - r['before_mib']:.0f} | {r['wall_s']:.1f} | {r['subset_r2']:.4f} |")
    _results.save("nonlinear_evaluate_memory", _results.environment(), rows, lines)


if __name__ == "__main__":
    main()
