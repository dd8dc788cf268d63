"""Why the scan path trails PyTorch at shape D (d 1000, m 100, T 175, Q 30): measurements, not guesses.

    python benchmarks/profile_scan_D.py      # writes benchmarks/results/profile_scan_D.md

1. Forward-only vs value-and-grad of the outer loss: the backward pass's share.
2. The same step pinned to one core (``taskset -c 0``) vs both: does XLA:CPU use the second core here?
3. PyTorch eager with 1 vs 2 intra-op threads, for comparison.
4. The inner loop's two matmul shapes timed alone in XLA and in numpy (OpenBLAS).
Each measurement runs in a fresh subprocess so thread settings apply cleanly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = r"""
import json, statistics, sys, time
sys.path.insert(0, %(root)r)
import jax, jax.numpy as jnp, numpy as np
import jaxdistill as jd
what = %(what)r
d, m, T, Q, b = 1000, 100, 175, 30, 32
def med(f, reps=7, inner=3):
    f()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            f()
        ts.append((time.perf_counter() - t0) / inner)
    return statistics.median(ts)
res = {}
if what == "jax":
    X = jax.random.normal(jax.random.PRNGKey(0), (1000, d)); Y = X[:, :1]
    cfg = jd.DistillConfig(m=m, steps=1, T=T, Q=Q, batch_size=b, inner_lr=0.05, init="random", reduction="sum")
    s = jd.BilevelSolver(cfg, jd.UnrolledGD(), jd.make_optimizer(cfg))
    problem = jd.Problem(jd.LinearModel(init_scale=1.0), 1e-3, cfg.lambda_outer)
    x0 = jax.random.normal(jax.random.PRNGKey(1), (m, d))
    st = s.init(problem, jd.DistillParams(x0, x0[:, :1], jnp.asarray(0.05)))
    th0 = problem.model.sample_init(jax.random.PRNGKey(2), st.params.x[:1], 1, Q)
    mask = jnp.ones(Q, bool)
    XB, YB = X[:b], Y[:b]
    fwd = jax.jit(lambda p: s.outer_loss(problem, p, XB, YB, th0, mask, T)[0])
    vg = jax.jit(jax.value_and_grad(lambda p: s.outer_loss(problem, p, XB, YB, th0, mask, T)[0]))
    step = jax.jit(lambda st, k: s.step(problem, st, XB, YB, k))
    res["forward_ms"] = 1e3 * med(lambda: jax.block_until_ready(fwd(st.params)))
    res["value_and_grad_ms"] = 1e3 * med(lambda: jax.block_until_ready(vg(st.params)))
    res["step_ms"] = 1e3 * med(lambda: jax.block_until_ready(step(st, jax.random.PRNGKey(3))))
    F = st.params.x
    Th = jax.random.normal(jax.random.PRNGKey(4), (d, Q))
    R = jax.random.normal(jax.random.PRNGKey(5), (m, Q))
    mm1 = jax.jit(lambda F, Th: F @ Th)
    mm2 = jax.jit(lambda F, R: F.T @ R)
    pair = lambda: (jax.block_until_ready(mm1(F, Th)), jax.block_until_ready(mm2(F, R)))
    res["xla_matmul_pair_us"] = 1e6 * med(pair, inner=200)
elif what == "numpy":
    rng = np.random.default_rng(0)
    F = rng.normal(size=(m, d)).astype(np.float32); Th = rng.normal(size=(d, Q)).astype(np.float32)
    R = rng.normal(size=(m, Q)).astype(np.float32)
    res["numpy_matmul_pair_us"] = 1e6 * med(lambda: (F @ Th, F.T @ R), inner=200)
elif what.startswith("torch"):
    import torch
    torch.set_num_threads(int(what[-1]))
    sys.path.insert(0, %(here)r)
    from bench_outer_step import torch_step_timer
    res["torch_step_ms"] = 1e3 * torch_step_timer(d, m, T)[0]
print(json.dumps(res))
"""


def child(what, pin=None):
    code = CHILD % {"root": os.path.dirname(HERE), "here": HERE, "what": what}
    cmd = ([ "taskset", "-c", pin] if pin else []) + [sys.executable, "-c", code]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    rows = {"jax, 2 cores": child("jax"), "jax, 1 core (taskset)": child("jax", "0"),
            "numpy, 2 cores": child("numpy"), "numpy, 1 core (taskset)": child("numpy", "0"),
            "torch, 2 threads": child("torch2"), "torch, 1 thread": child("torch1")}
    L = ["# Scan path at shape D (d 1000, m 100, T 175, Q 30, b 32): where the time goes\n",
         "Medians, each line a fresh process; measured side by side in one run.\n",
         "| setting | forward ms | value+grad ms | full step ms | the two inner matmuls (µs) | PyTorch step ms |",
         "|---|---:|---:|---:|---:|---:|"]
    for k, r in rows.items():
        mm = r.get("xla_matmul_pair_us", r.get("numpy_matmul_pair_us"))
        L.append(f"| {k} | {r.get('forward_ms', float('nan')):.1f} | {r.get('value_and_grad_ms', float('nan')):.1f} | "
                 f"{r.get('step_ms', float('nan')):.1f} | {mm if mm is None else round(mm, 1)} | "
                 f"{r.get('torch_step_ms', float('nan')):.1f} |")
    md = "\n".join(L) + "\n"
    print(md)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "profile_scan_D.md"), "w") as f:
        f.write(md)
    with open(os.path.join(HERE, "results", "profile_scan_D.json"), "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
