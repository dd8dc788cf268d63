"""Outer-step time over 1, 2 and 4 devices (issue #12, benchmark (a)).

One jitted outer step (``BilevelSolver.step`` with ``mesh=``) of an MLP inner model (d → 64 → 64 → 1,
T unrolled steps, Q initialisations, batch b) on 1, 2 and 4 devices; the Q initialisations are split
over the devices. Timings are interleaved (round-robin over the device counts) and the median is reported,
with the speed-up against one device measured in the same run.

On a CPU-only machine the devices are *simulated*
(``--xla_force_host_platform_device_count=4``): they share the same cores, so this shows that the
sharded program is correct and what its partitioning overhead is, not a speed-up — on 2 cores, 4
simulated devices can at best use 2. On a GPU/TPU host with several accelerators the same script measures
real scaling.

    python benchmarks/bench_scaling.py            # writes results/scaling_<platform>.{md,json}
"""

from __future__ import annotations

import os

if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import jaxdistill as jd  # noqa: E402
from jaxdistill._src.core.sharding import as_mesh  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _results as results  # noqa: E402


class MLP(nn.Module):
    width: int = 64

    @nn.compact
    def __call__(self, x):
        x = jnp.tanh(nn.Dense(self.width)(x))
        x = jnp.tanh(nn.Dense(self.width)(x))
        return nn.Dense(1)(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--Q", type=int, default=8)
    ap.add_argument("--T", type=int, default=50)
    ap.add_argument("--b", type=int, default=512)
    ap.add_argument("--m", type=int, default=50)
    ap.add_argument("--d", type=int, default=8)
    args = ap.parse_args()
    counts = [k for k in (1, 2, 4) if k <= len(jax.devices())]
    rng = np.random.default_rng(0)
    cfg = jd.DistillConfig(m=args.m, Q=args.Q, T=args.T, batch_size=args.b)
    model = jd.FlaxModel(MLP())
    solver = jd.BilevelSolver(cfg, jd.UnrolledGD(adjoint=jd.Unrolled()), jd.make_optimizer(cfg))
    problem = jd.Problem(model, 1e-3, cfg.lambda_outer, jd.BatchLoss())
    x = jnp.asarray(rng.normal(size=(args.m, args.d)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(args.m, 1)), jnp.float32)
    state = solver.init(problem, jd.DistillParams(x, y, jnp.asarray(0.05, jnp.float32)))
    XB = jnp.asarray(rng.normal(size=(args.b, args.d)), jnp.float32)
    YB = jnp.asarray(rng.normal(size=(args.b, 1)), jnp.float32)
    step = jax.jit(solver.step, static_argnames="mesh")
    meshes = {k: (None if k == 1 else as_mesh(k)) for k in counts}
    key = jax.random.PRNGKey(0)
    for k in counts:                                      # compile and warm up
        jax.block_until_ready(step(problem, state, XB, YB, key, mesh=meshes[k]))
    ref = step(problem, state, XB, YB, key)[0].params.x
    diffs = {k: float(jnp.max(jnp.abs(step(problem, state, XB, YB, key, mesh=meshes[k])[0].params.x - ref)))
             for k in counts}
    times = {k: [] for k in counts}
    for _ in range(args.repeats):
        for k in counts:
            t = time.perf_counter()
            jax.block_until_ready(step(problem, state, XB, YB, key, mesh=meshes[k]))
            times[k].append(time.perf_counter() - t)
    med = {k: float(np.median(v)) for k, v in times.items()}
    platform = jax.devices()[0].platform
    simulated = platform == "cpu"
    rows = [{"devices": k, "median_ms": 1e3 * med[k], "speedup_vs_1": med[1] / med[k],
             "max_abs_diff_vs_1": diffs[k]} for k in counts]
    meta = {"platform": platform, "device_kind": jax.devices()[0].device_kind, "simulated": simulated,
            "cores": os.cpu_count(), "shape": vars(args), "jax": jax.__version__}
    where = f"{platform}, simulated on {os.cpu_count()} cores" if simulated else platform
    lines = [f"# Outer step over several devices ({where})", "",
             f"MLP {args.d}→64→64→1, m = {args.m}, T = {args.T} (full unroll), Q = {args.Q} split over the "
             f"devices, b = {args.b}, float32; median of {args.repeats} interleaved steps.", "",
             "| devices | median ms / step | speed-up vs 1 | max abs diff of X̃ vs 1 device |", "|---:|---:|---:|---:|"]
    lines += [f"| {r['devices']} | {r['median_ms']:.1f} | {r['speedup_vs_1']:.2f}× | {r['max_abs_diff_vs_1']:.1e} |"
              for r in rows]
    if simulated:
        lines += ["", "Simulated CPU devices share the machine's cores: a ratio near or below 1× is expected here and "
                  "shows the cost of partitioning (the all-reduces of the sum over Q), not what real devices give."]
    results.save(f"scaling_{platform}", results.environment(), rows, lines, meta=meta)


if __name__ == "__main__":
    main()
