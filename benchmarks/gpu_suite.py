"""One script for an accelerator: the outer step, meta-gradient strategies, a sharded run, quality on real data
and the KRR paper's analytic sets, at sizes for one GPU, in well under 8 minutes; one JSON + markdown table with
the device, JAX version and precision settings.

    python benchmarks/gpu_suite.py              # on the GPU machine → results/gpu_suite.{json,md}
    python benchmarks/gpu_suite.py --smoke      # tiny sizes on any backend, into a temporary folder (tested)

Every timing is a median of repeats after a warm-up call (compilation excluded and reported apart); ratios are
within this one run. Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
from _results import environment, save  # noqa: E402

import jaxdistill as jd  # noqa: E402
from jaxdistill import datasets  # noqa: E402

#: (d, m, T) of the outer-step table: the regression paper's shapes A–D and a wide one
STEP_SHAPES = {"A": (100, 99, 100), "B": (100, 99, 175), "C": (1000, 100, 100), "D": (1000, 100, 175),
               "wide": (4096, 512, 100)}
SMOKE_SHAPES = {"A": (8, 6, 5)}


def _median_time(fn, reps: int) -> tuple[float, float]:
    """(seconds of the first call — compilation included —, median seconds of ``reps`` further calls)."""
    t = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return first, statistics.median(times)


def outer_steps(shapes, q: int, b: int, reps: int) -> list[dict]:
    """One outer step (value, meta-gradient, update) per shape, by the scan and by the closed form."""
    rows = []
    for name, (d, m, T) in shapes.items():
        key = jax.random.PRNGKey(0)
        XB = jax.random.normal(key, (b, d))
        YB = XB @ jax.random.normal(jax.random.fold_in(key, 1), (d, 1))
        for solver in (jd.UnrolledGD(), jd.ExactLinearGD()):
            cfg = jd.DistillConfig(m=m, T=T, Q=q, batch_size=b, inner_lr=0.05, init="random")
            bs = jd.BilevelSolver(cfg, solver, jd.make_optimizer(cfg))
            problem = jd.Problem(jd.LinearModel(init_scale=1.0), 1e-3, 1e-3)
            params = jd.DistillParams(jax.random.normal(key, (m, d)) * 0.1, jnp.zeros((m, 1)), jnp.asarray(0.05))
            state = jax.jit(bs.init)(problem, params)
            step = jax.jit(bs.step)
            first, med = _median_time(lambda s=state, st=step, b_=bs: st(problem, s, XB, YB, key)[0].params.x, reps)
            rows.append({"part": "outer step", "case": f"{name} (d {d}, m {m}, T {T}, Q {q}, b {b})",
                         "method": type(solver).__name__, "first_call_s": first, "median_s": med})
    return rows


def meta_gradients(T_values, width: int, reps: int) -> list[dict]:
    """The meta-gradient of an MLP's T-step inner run: full unroll against per-step checkpointing."""
    import flax.linen as nn

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(1)(nn.tanh(nn.Dense(width)(x)))

    model = jd.FlaxModel(MLP())
    key = jax.random.PRNGKey(0)
    X = jax.random.normal(key, (32, 8))
    Y = jnp.sin(X[:, :1])
    th0 = model.sample_init(key, X, 1, 4)
    rows = []
    for T in T_values:
        for adjoint in (jd.Unrolled(), jd.Checkpointed()):
            solver = jd.UnrolledGD(adjoint=adjoint)

            def loss(x, solver=solver, T=T):
                return jnp.mean(solver.solve(model, jd.Support(x, Y, 0.1, 1e-3), th0, T, T).predict(X) ** 2)
            grad = jax.jit(jax.grad(loss))
            first, med = _median_time(lambda g=grad: g(X), reps)
            rows.append({"part": "meta-gradient", "case": f"MLP width {width}, T {T}", "method": type(adjoint).__name__,
                         "first_call_s": first, "median_s": med})
    return rows


def sharded_run(m: int, steps: int) -> list[dict]:
    """A distillation with Q split over every local device (one device: the same code path, a mesh of one)."""
    X, Y = datasets.load("diabetes")
    k = jax.local_device_count()
    t = time.perf_counter()
    out = jd.distill(X, Y, m=m, steps=steps, Q=8 * k, mesh=k, theta0_scale=1.0, progress=False)
    return [{"part": "sharded run", "case": f"diabetes, m {m}, Q {8 * k} over {k} device(s)", "method": "distill",
             "first_call_s": time.perf_counter() - t, "median_s": float("nan"), "status": str(out.status),
             "steps": out.meta.bilevel.steps_run}]


def quality(names, m: int, steps: int) -> list[dict]:
    """Held-out R² of the default distillation against the baselines on bundled real data."""
    rows = []
    for name in names:
        X, Y = datasets.load(name)
        Xtr, Ytr, Xte, Yte = datasets.split(name, X, Y, 0.2, key=0)
        t = time.perf_counter()
        out = jd.distill(Xtr, Ytr, m=m, steps=steps, progress=False)
        wall = time.perf_counter() - t
        rep = jd.evaluate(out, Xte, Yte, Xtr, Ytr, n_subsets=5,
                          last_value_column=-1 if name in datasets.TIME_SERIES else None)
        rows.append({"part": "quality", "case": f"{name}, m {m}", "method": "distill (defaults)", "first_call_s": wall,
                     "median_s": float("nan"), "r2_distilled": rep.row("distilled")["r2"],
                     "r2_subset": rep.row("subset")["r2"], "r2_full": rep.row("full")["r2"], "status": str(out.status)})
    return rows


def krr(n_train: int, features: int, ms) -> list[dict]:
    """The KRR paper's analytic sets on MNIST (random Fourier features): accuracy against the full model."""
    X, Y = datasets.load("mnist5k")
    Xtr, Ytr, Xte, Yte = datasets.split("mnist5k", X, Y)
    every = max(1, Xtr.shape[0] // n_train)                  # the rows come class by class: take every k-th
    Xtr, Ytr = Xtr[::every][:n_train], Ytr[::every][:n_train]
    fmap = jd.RandomFourierFeatures(jax.random.PRNGKey(0), X.shape[1], features)
    rows = []
    for m in ms:
        t = time.perf_counter()
        out = jd.distill_analytic(Xtr, Ytr, m, lam=1.0, feature_map=fmap)
        wall = time.perf_counter() - t
        acc = float(np.mean(np.argmax(out.predict(Xte), 1) == np.argmax(Yte, 1)))
        rows.append({"part": "KRR analytic", "case": f"mnist5k ({n_train} rows), RFF p {features}, m {m}",
                     "method": "distill_analytic", "first_call_s": wall, "median_s": float("nan"), "accuracy": acc})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, results into a temporary folder")
    ap.add_argument("--out", default=None, help="folder for gpu_suite.{json,md} (default benchmarks/results)")
    args = ap.parse_args(argv)
    smoke = args.smoke
    t0 = time.perf_counter()
    rows = outer_steps(SMOKE_SHAPES if smoke else STEP_SHAPES, q=2 if smoke else 30, b=8 if smoke else 32,
                       reps=2 if smoke else 10)
    rows += meta_gradients([3] if smoke else [100, 1000], width=4 if smoke else 256, reps=1 if smoke else 5)
    rows += sharded_run(m=5 if smoke else 20, steps=10 if smoke else 500)
    rows += quality(["diabetes"] if smoke else ["diabetes", "sunspots", "co2", "autompg"], m=5 if smoke else 20,
                    steps=10 if smoke else 5000)
    rows += krr(200 if smoke else 4000, 64 if smoke else 4096, [10] if smoke else [10, 100, 500])
    dev = jax.devices()[0]
    env = environment(f"device {dev.device_kind} ×{jax.device_count()}, x64 {jax.config.jax_enable_x64}, "
                      f"matmul precision {jax.config.jax_default_matmul_precision or 'default'}"
                      + (", SMOKE sizes" if smoke else ""))
    lines = [f"# GPU suite ({env})", "", f"Total {time.perf_counter() - t0:.0f} s.", "",
             "| part | case | method | first call s | median s | result |", "|---|---|---|---:|---:|---|"]
    for r in rows:
        extra = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()
                          if k not in ("part", "case", "method", "first_call_s", "median_s"))
        lines.append(f"| {r['part']} | {r['case']} | {r['method']} | {r['first_call_s']:.3g} | {r['median_s']:.3g} | "
                     f"{extra} |")
    out = args.out or (tempfile.mkdtemp(prefix="gpu_suite-") if smoke else None)
    if out is not None:
        import _results
        _results.OUT = out
    save("gpu_suite", env, rows, lines)
    return rows


if __name__ == "__main__":
    main()
