"""What the nonlinear stability bound costs per outer step (issue #11's open profile).

For a model trained by plain GD the outer step recomputes 2/λ_max of the inner Hessian (20 Lanczos steps on
Hessian-vector products, ``InnerModel.gd_stability_bound``) for the updated X̃, to cap η̃. This measures, in
one interleaved run, the whole outer step with plain GD (bound included), the same step with
``optax.sgd(1.0)`` as inner optimizer (identical inner updates, no bound: inner optimizers other than GD
have none) and the bound alone. MLP d → 64 → 64 → 1, m = 50, Q = 4, b = 256, float32.

    python benchmarks/bench_bound_cost.py        # writes results/bound_cost.{md,json}
"""

from __future__ import annotations

import os
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxdistill as jd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _results as results  # noqa: E402


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = jnp.tanh(nn.Dense(64)(x))
        x = jnp.tanh(nn.Dense(64)(x))
        return nn.Dense(1)(x)


def main(repeats: int = 21):
    rng = np.random.default_rng(0)
    m, d, b, Q = 50, 8, 256, 4
    model = jd.FlaxModel(MLP())
    x = jnp.asarray(rng.normal(size=(m, d)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(m, 1)), jnp.float32)
    XB = jnp.asarray(rng.normal(size=(b, d)), jnp.float32)
    YB = jnp.asarray(rng.normal(size=(b, 1)), jnp.float32)
    key = jax.random.PRNGKey(0)
    rows = []
    for T in (10, 50, 200):
        cfg = jd.DistillConfig(m=m, Q=Q, T=T, batch_size=b)
        problem = jd.Problem(model, 1e-3, cfg.lambda_outer, jd.BatchLoss())
        calls = {}
        for name, inner in (("step, plain GD (bound every step)", jd.UnrolledGD()),
                            ("step, optax.sgd(1.0) (no bound)", jd.UnrolledGD(optimizer=optax.sgd(1.0)))):
            solver = jd.BilevelSolver(cfg, inner, jd.make_optimizer(cfg))
            state = solver.init(problem, jd.DistillParams(x, y, jnp.asarray(0.05, jnp.float32)))
            step = jax.jit(solver.step)
            calls[name] = (lambda step=step, state=state, problem=problem:
                           step(problem, state, XB, YB, key))
        bound = jax.jit(lambda a, c: model.gd_stability_bound(model.featurize(a), c, 1e-3))
        calls["bound alone (20 Lanczos HVPs)"] = lambda: bound(x, y)
        for f in calls.values():
            jax.block_until_ready(f())
        times = {k: [] for k in calls}
        for _ in range(repeats):
            for k, f in calls.items():
                t = time.perf_counter()
                jax.block_until_ready(f())
                times[k].append(time.perf_counter() - t)
        med = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
        gd, sgd = med["step, plain GD (bound every step)"], med["step, optax.sgd(1.0) (no bound)"]
        rows.append({"T": T, **med, "bound_share_of_step": (gd - sgd) / gd})
    keys = list(calls)
    lines = ["# Cost of the nonlinear GD stability bound inside the outer step", "",
             f"MLP {d}→64→64→1, m = {m}, Q = {Q}, b = {b}, float32, {jax.default_backend()} ({os.cpu_count()} cores); "
             f"median of {repeats} interleaved calls, ms.", "",
             "| T | " + " | ".join(keys) + " | bound's share of the step |", "|---:|" + "---:|" * (len(keys) + 1)]
    for r in rows:
        cells = " | ".join(f"{r[k]:.2f}" for k in keys)
        lines.append(f"| {r['T']} | {cells} | {100 * r['bound_share_of_step']:.0f} % |")
    lines += ["", "The bound costs about the same at every T (it works on the m distilled points only); its share "
              "falls as the unrolled inner loop grows."]
    results.save("bound_cost", results.environment(), rows, lines, backend=jax.default_backend(),
                 cores=os.cpu_count(), m=m, Q=Q, b=b, repeats=repeats)


if __name__ == "__main__":
    main()
