"""Peak memory of `evaluate` for a nonlinear (flax MLP) result against the number of test rows (issue #44).

0.8's `evaluate` predicted every test row for every random subset × step size × θ₀ draw before choosing each subset's
step size (on training rows), so its memory grew by about 0.24 MiB per test row (the issue's flight-delay table: 16 GB).
Now each subset's test predictions are made only at its chosen step size, one subset at a time. This script measures
the peak resident memory (VmHWM) of `evaluate` alone, in fresh processes, on a synthetic regression set with 2,000
training rows, at several test-set sizes, for this checkout and (``--compare DIR``) another one beside it.

    python benchmarks/bench_nonlinear_evaluate_memory.py --compare /path/to/old/checkout
    python benchmarks/bench_nonlinear_evaluate_memory.py --large     # the issue's size, 3 runs: ~3 min on 2 cores

Results: results/nonlinear_evaluate_memory.{md,json}; ``--large`` (250,000 training and 60,000 test rows, default
`evaluate` settings, this checkout only): results/nonlinear_evaluate_large.{md,json}.
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


LARGE = r"""
import json, resource, time
import numpy as np
import flax.linen as nn
import jaxdistill as jd

class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(nn.tanh(nn.Dense(32)(nn.tanh(nn.Dense(32)(x)))))

n_tr, n_te = 250_000, 60_000
rng = np.random.default_rng(0)
X = rng.normal(size=(n_tr + n_te, 8)).astype(np.float32)
Y = (np.sin(X[:, :1]) + X[:, 1:2] ** 2 + 0.1 * rng.normal(size=(len(X), 1))).astype(np.float32)
Xtr, Ytr, Xte, Yte = X[:n_tr], Y[:n_tr], X[n_tr:], Y[n_tr:]
mib = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
base = mib()
t = time.perf_counter()
out = jd.distill(Xtr, Ytr, m=50, key=0, model=jd.FlaxModel(MLP()), T=20, steps=1000, progress=False)
t_distill, after = time.perf_counter() - t, mib()
t = time.perf_counter()
rep = jd.evaluate(out, Xte, Yte, Xtr, Ytr)
print(json.dumps({"data_mib": (X.nbytes + Y.nbytes) / 2**20, "base_mib": base, "after_distill_mib": after,
                  "peak_mib": mib(), "distill_s": t_distill, "evaluate_s": time.perf_counter() - t,
                  "status": str(out.status), **{f"r2_{k}": rep.row(k)["r2"] for k in ("distilled", "subset", "full")},
                  **{f"step_{k}": rep.row(k)["procedure"].split("step size ")[1].split(" ")[0]
                     for k in ("full", "full_long")}}))
"""


def large(repeats: int = 3):
    """``repeats`` fresh processes, one after another; the table gives each and their medians (this machine's two
    shared cores move a run's time by ±30 %)."""
    import _results
    runs = []
    for _ in range(repeats):
        got = subprocess.run([sys.executable, "-c", LARGE], capture_output=True, text=True, timeout=7200, cwd="/",
                             env={**os.environ, "PYTHONPATH": os.path.join(HERE, "..")})
        if got.returncode:
            raise RuntimeError(got.stderr[-2000:])
        runs.append(json.loads(got.stdout.strip().splitlines()[-1]))
        print(runs[-1], flush=True)
    _results.save("nonlinear_evaluate_large", _results.environment(), runs,
                  large_lines(runs, _results.environment()))


def _row(r, label):
    return (f"| {label} | {r['data_mib']:.1f} | {r['base_mib']:.0f} | {r['after_distill_mib']:.0f} | "
            f"{r['peak_mib']:.0f} | {r['distill_s']:.1f} | {r['evaluate_s']:.1f} | "
            f"{r['evaluate_s'] / r['distill_s']:.2f}× | {r['status']} | {r['r2_distilled']:.3f} / "
            f"{r['r2_subset']:.3f} / {r['r2_full']:.3f} |")


def large_lines(runs, env):
    """The table of ``--large`` (``--large --md-only`` rewrites it from the committed JSON)."""
    import numpy as np
    sys.path.insert(0, os.path.join(HERE, ".."))
    from jaxdistill._src.report.baselines import LARGE_DATA_DRAWS
    runs = runs if isinstance(runs, list) else [runs]
    med = {k: float(np.median([r[k] for r in runs])) for k in ("peak_mib", "data_mib", "distill_s", "evaluate_s")}
    ratio = float(np.median([r["evaluate_s"] / r["distill_s"] for r in runs]))
    same = sum(r.get("step_full") is not None and r["step_full"] == r.get("step_full_long") for r in runs)
    lines = ["# `evaluate` of a flax MLP on 250,000 training and 60,000 test rows", "",
             f"{env}. Synthetic rows (8 inputs, y = sin x₁ + x₂² + noise), a flax MLP "
             "8 → 32 → 32 → 1 distilled with m = 50, T = 20, at most 1,000 steps; then `evaluate` with its default "
             f"settings (20 subsets, 8 θ₀ draws — {LARGE_DATA_DRAWS} for the full-data rows at this size —, each "
             f"subset's and the full data's step size tuned on training rows). {len(runs)} fresh processes, one "
             "after another; peak resident memory (VmHWM); times are wall clock, compilation included.", "",
             "| run | data MiB | peak MiB before distill | after distill | after evaluate | distill s | evaluate s | "
             "evaluate ÷ distill | status | R² distilled / subsets / full |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    lines += [_row(r, str(i + 1)) for i, r in enumerate(runs)]
    lines += ["", f"Medians: peak {med['peak_mib'] - med['data_mib']:,.0f} MiB over the data, distill "
              f"{med['distill_s']:.1f} s, evaluate {med['evaluate_s']:.1f} s, evaluate ÷ distill **{ratio:.2f}×**.", "",
              f"The process peaks {'below' if med['peak_mib'] - med['data_mib'] < 2048 else 'above'} 2 GB over the "
              "data (issue #44 measured 16.3 GB on its 261,877-row table, whose peak grew by 0.24 MiB per test row). "
              f"The time is {'within' if ratio <= 3 else 'not within'} 3× of the distillation's. Where it goes: "
              "after choosing their step sizes on 20,000 fitted training rows (`SELECT_ROWS`), the full-data rows "
              f"train the MLP by GD on all 250,000 rows for T and for 10·T steps from {LARGE_DATA_DRAWS} θ₀ draws "
              "(`LARGE_DATA_DRAWS`); where both choose the same step size (in "
              f"{same} of these "
              f"{len(runs)} runs) the 10·T run continues the "
              f"T run's θ — {200 * LARGE_DATA_DRAWS} passes over every row, against the distillation's batches. "
              "The distillation's own time depends on when it stops (status)."]
    return lines


def main():
    import _results
    if "--large" in sys.argv and "--md-only" in sys.argv:
        rows, env = _results.load("nonlinear_evaluate_large")
        return _results.save("nonlinear_evaluate_large", env, rows, large_lines(rows, env))
    if "--large" in sys.argv:
        return large()
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
