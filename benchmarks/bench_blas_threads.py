"""One BLAS thread inside the compiled loop (issue #44): the outer step with OpenBLAS's default threads against one.

On the CPU, JAX's `eigh` (the stability bound of Lemma 2.4, every outer step) runs LAPACK from SciPy's OpenBLAS,
whose own threads fight XLA's pool. `distill` now sets the loaded BLAS libraries to one thread for the compiled loop
(`jaxdistill._src.core.threads`); `JAXDISTILL_BLAS_THREADS=0` turns that off. Each cell is a fresh process in the
user's default environment (no pinning, no thread variables): a warm-up `distill` compiles, then 400 outer steps
are timed. Rounds are interleaved; medians are quoted with their ratio.

    python benchmarks/bench_blas_threads.py            # ~3 min on 2 cores

Results: results/blas_threads.{md,json}.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
SHAPES = {"A (d 100, m 20, T 100, Q 8)": (100, 20, 100, 8), "C (d 1000, m 100, T 100, Q 8)": (1000, 100, 100, 8),
          "D (d 1000, m 100, T 175, Q 30)": (1000, 100, 175, 30)}
ROUNDS = 5
STEPS = 400

CELL = r"""
import json, sys, time
import numpy as np
import jaxdistill as jd
d, m, T, Q = (int(v) for v in sys.argv[1:5])
rng = np.random.default_rng(0)
X = rng.normal(size=(4000, d)).astype(np.float32)
Y = (X[:, :5].sum(1, keepdims=True) + rng.normal(size=(4000, 1))).astype(np.float32)
kw = dict(m=m, T=T, Q=Q, progress=False, validation_fraction=0.1, patience=10**6)
jd.distill(X, Y, steps=50, **kw)                 # compiles
t = time.perf_counter()
out = jd.distill(X, Y, steps=STEPS, **kw)
print(json.dumps({"ms_per_step": 1000 * (time.perf_counter() - t) / STEPS, "solver": type(out.inner_solver).__name__}))
""".replace("STEPS", str(STEPS))


def cell(shape, threads: str) -> dict:
    env = {**os.environ, "JAXDISTILL_BLAS_THREADS": threads}
    got = subprocess.run([sys.executable, "-c", CELL, *map(str, shape)], capture_output=True, text=True, env=env,
                         timeout=900)
    if got.returncode:
        raise RuntimeError(got.stderr[-2000:])
    return json.loads(got.stdout.strip().splitlines()[-1])


def main():
    times = {(name, t): [] for name in SHAPES for t in ("0", "1")}
    solvers = {}
    for r in range(ROUNDS):
        for name, shape in SHAPES.items():
            for threads in ("0", "1"):
                res = cell(shape, threads)
                times[(name, threads)].append(res["ms_per_step"])
                solvers[name] = res["solver"]
        print(f"round {r + 1}/{ROUNDS} done", flush=True)
    import _results
    rows = []
    lines = ["# One BLAS thread inside the compiled loop", "",
             f"{_results.environment()}. Milliseconds per outer step ({STEPS} steps after a warm-up run), each cell a "
             f"fresh process in the default environment (no pinning, no thread variables); medians of {ROUNDS} "
             "interleaved rounds.", "",
             "| shape | inner solver | OpenBLAS default threads (ms) | one BLAS thread (ms, the default now) | "
             "speed-up |", "|---|---|---:|---:|---:|"]
    for name in SHAPES:
        a, b = statistics.median(times[(name, "0")]), statistics.median(times[(name, "1")])
        rows.append({"shape": name, "solver": solvers[name], "default_threads_ms": times[(name, "0")],
                     "one_thread_ms": times[(name, "1")], "median_default": a, "median_one": b, "ratio": a / b})
        lines.append(f"| {name} | {solvers[name]} | {a:.2f} | {b:.2f} | {a / b:.2f}× |")
    _results.save("blas_threads", _results.environment(), rows, lines)


if __name__ == "__main__":
    main()
