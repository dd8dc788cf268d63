"""The exact fast path (ExactLinearGD) against the scan (UnrolledGD) in a user's default environment (issue #44).

Each cell is a fresh process with no pinning and no thread variables, as a user runs it: a warm-up `distill`
compiles, then outer steps are timed (the fast path 300, the scan 30). Shape D (d 1000, m 100, T 175, Q 30): medians
of 7 interleaved rounds. The fast path at growing m (d 1000, T 100, Q 8, m = 100, 200, 400): medians of 3. The
ratio is scan ÷ fast path per step. "fast path" is `ExactLinearGD()` as `distill` picks its route (doubling below
r = min(m, p) = 64, one eigendecomposition from there); "doubling" forces the 0.8 route
(`ExactLinearGD(method="doubling")`), in the same rounds. The step runs with one BLAS thread inside the compiled
loop (the default since 0.9, `benchmarks/results/blas_threads.md`).

    python benchmarks/bench_fast_path.py            # ~8 min on 2 cores

Results: results/fast_path.{md,json}.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

CELL = r"""
import json, sys, time
import numpy as np
import jaxdistill as jd
solver, d, m, T, Q, steps = sys.argv[1], *(int(v) for v in sys.argv[2:7])
rng = np.random.default_rng(0)
X = rng.normal(size=(4000, d)).astype(np.float32)
Y = (X[:, :5].sum(1, keepdims=True) + rng.normal(size=(4000, 1))).astype(np.float32)
solvers = {"fast": jd.ExactLinearGD(), "doubling": jd.ExactLinearGD(method="doubling"), "scan": jd.UnrolledGD()}
kw = dict(m=m, T=T, Q=Q, progress=False, validation_fraction=0.1, patience=10**6, inner_solver=solvers[solver])
jd.distill(X, Y, steps=10, **kw)
t = time.perf_counter()
jd.distill(X, Y, steps=steps, **kw)
print(json.dumps({"ms": 1000 * (time.perf_counter() - t) / steps}))
"""


def cell(solver, d, m, T, Q):
    steps = 30 if solver == "scan" else 300
    got = subprocess.run([sys.executable, "-c", CELL, solver, str(d), str(m), str(T), str(Q), str(steps)],
                         capture_output=True, text=True, timeout=1800)
    if got.returncode:
        raise RuntimeError(got.stderr[-2000:])
    return json.loads(got.stdout.strip().splitlines()[-1])["ms"]


def measure(shape, rounds):
    fast, doubling, scan = [], [], []
    for _ in range(rounds):
        fast.append(cell("fast", *shape))
        doubling.append(cell("doubling", *shape))
        scan.append(cell("scan", *shape))
    return fast, doubling, scan


def main():
    import _results
    cases = [("D (d 1000, m 100, T 175, Q 30)", (1000, 100, 175, 30), 7)] + \
        [(f"d 1000, m {m}, T 100, Q 8", (1000, m, 100, 8), 3) for m in (100, 200, 400)]
    rows = []
    for label, shape, rounds in cases:
        fast, doubling, scan = measure(shape, rounds)
        rows.append({"case": label, "rounds": rounds, "fast_ms": fast, "doubling_ms": doubling, "scan_ms": scan,
                     "median_fast": statistics.median(fast), "median_doubling": statistics.median(doubling),
                     "median_scan": statistics.median(scan),
                     "ratio": statistics.median(scan) / statistics.median(fast),
                     "ratio_doubling": statistics.median(scan) / statistics.median(doubling)})
        print(rows[-1], flush=True)
    lines = ["# The exact fast path against the scan, default environment", "",
             f"{_results.environment()}. Milliseconds per outer step, each cell a fresh process without pinning or "
             "thread variables; medians of interleaved rounds (7 for shape D, 3 for the m sweep).", "",
             "| case | rounds | scan (ms) | fast path (ms) | scan ÷ fast path | doubling only (ms) | "
             "scan ÷ doubling only |", "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['case']} | {r['rounds']} | {r['median_scan']:.1f} | {r['median_fast']:.2f} | {r['ratio']:.1f}× | "
              f"{r['median_doubling']:.2f} | {r['ratio_doubling']:.1f}× |" for r in rows]
    lines += ["", "The fast path takes one eigendecomposition of the r × r Gram matrix from r = 64 on "
              "(`ExactLinearGD(method=\"auto\")`); below, and in the last column, it doubles (about 5·⌈log₂ T⌉ "
              "r × r products). Both routes are tested equal to the scan in float64 (tests/test_exact_linear_gd.py)."]
    _results.save("fast_path", _results.environment(), rows, lines)


if __name__ == "__main__":
    main()
