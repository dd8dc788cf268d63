"""The outer step of a flax MLP: this checkout against older ones, and where a first MLP run's CPU goes (issue #44).

    python benchmarks/bench_mlp_step.py --compare /path/to/0.7-checkout      # ~6 min on 2 cores

A flax MLP 10 → 32 → 32 → 1 (tanh) distilled from 2,000 synthetic rows (y = sin x₁ + x₂² + noise), T = 50, Q = 8,
m = 20 and 50, every other setting `distill`'s default. Per-step time: in a fresh process, after a warm-up run that
compiles, two runs of 50 and 250 outer steps (patience off, so neither stops early); the step is their wall-time
difference over 200 steps, so compilation, the initial state and the final evaluation cancel. Checkouts interleaved,
medians of ``--repeats`` rounds (default 5). Each checkout is imported from its own folder.

Results: results/mlp_step.{md,json}.
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
sys.path.insert(0, sys.argv[1])
import numpy as np
import flax.linen as nn
import jaxdistill as jd
m = int(sys.argv[2])


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.tanh(nn.Dense(32)(x))
        x = nn.tanh(nn.Dense(32)(x))
        return nn.Dense(1)(x)


rng = np.random.default_rng(0)
X = rng.normal(size=(2000, 10)).astype(np.float32)
Y = (np.sin(X[:, 0]) + X[:, 1] ** 2 + 0.1 * rng.normal(size=2000)).astype(np.float32)
kw = dict(m=m, T=50, Q=8, model=jd.FlaxModel(MLP()), progress=False, patience=10**6, key=0)
jd.distill(X, Y, steps=50, **kw)


def wall(steps):
    t = time.perf_counter()
    jd.distill(X, Y, steps=steps, **kw)
    return time.perf_counter() - t


short, long = wall(50), wall(250)
print(json.dumps({"ms": 1000 * (long - short) / 200}))
"""


def cell(checkout, m):
    got = subprocess.run([sys.executable, "-c", CELL, checkout, str(m)], capture_output=True, text=True, timeout=1800)
    if got.returncode:
        raise RuntimeError(got.stderr[-2000:])
    return json.loads(got.stdout.strip().splitlines()[-1])["ms"]


def main():
    import _results
    paths, repeats = _results.checkouts(__doc__, repeats=5)
    names = {p: _results.commit_of(p) for p in paths}
    here = paths[-1]
    times = {(p, m): [] for p in paths for m in (20, 50)}
    for _ in range(repeats):
        for m in (20, 50):
            for p in paths:
                times[(p, m)].append(cell(p, m))
                print(names[p], m, round(times[(p, m)][-1], 2), flush=True)
    rows = [{"checkout": names[p], "this": p == here, "m": m, "ms": v, "median_ms": statistics.median(v),
             "ratio_to_this": statistics.median(v) / statistics.median(times[(here, m)])}
            for (p, m), v in times.items()]
    lines = ["# The outer step of a flax MLP, this checkout against older ones", "",
             f"{_results.environment()}. MLP 10 → 32 → 32 → 1 (tanh), 2,000 synthetic rows, T = 50, Q = 8, defaults "
             "otherwise. Milliseconds per outer step: (wall of 250 steps − wall of 50) / 200 in a fresh process after "
             f"a compiling warm-up; checkouts interleaved, medians of {repeats} rounds.", "",
             "| checkout | m | ms per step (median) | ÷ this checkout | each round |", "|---|---:|---:|---:|---|"]
    for r in sorted(rows, key=lambda r: (r["m"], not r["this"])):
        label = f"this checkout ({r['checkout']}, with its uncommitted changes)" if r["this"] else r["checkout"]
        lines.append(f"| {label} | {r['m']} | {r['median_ms']:.2f} | {r['ratio_to_this']:.2f} | "
                     + ", ".join(f"{v:.2f}" for v in r["ms"]) + " |")
    _results.save("mlp_step", _results.environment(), rows, lines)


if __name__ == "__main__":
    main()
