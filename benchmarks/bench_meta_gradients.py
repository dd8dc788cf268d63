"""Meta-gradient strategies for an MLP inner model: peak memory and time of one outer gradient against T,
and the outer-step time against a PyTorch implementation of the same unrolled algorithm.

    python benchmarks/bench_meta_gradients.py             # both parts → results/meta_gradients.{md,json,png}
    python benchmarks/bench_meta_gradients.py --memory    # part 1 only
    python benchmarks/bench_meta_gradients.py --torch     # part 2 only (needs `pip install torch`)

**Part 1.** The outer gradient (value_and_grad of the outer loss with respect to X̃, Ỹ, η̃ through T inner
GD steps from Q = 4 draws θ₀; MLP d = 8 → 64 → 64 → 1, tanh; m = 50; a batch of 128 real rows) for
each ``adjoint=`` of :class:`UnrolledGD` and T ∈ {100, 200, 500, 1000, 2000}. Peak memory is XLA's own
account of the compiled program (``compiled.memory_analysis()``: temporaries + arguments + outputs):
deterministic, not an RSS sample. Time: median of 5 calls after a warm-up.

**Part 2.** The same outer step in PyTorch: ``torch.func.functional_call`` + ``vmap`` over the Q
initialisations, ``torch.func.grad`` for the inner gradient and an outer ``torch.func.grad`` through the
Python loop of T steps (autograd through the loop). Both frameworks run in fresh subprocesses with one
thread each (torch.set_num_threads(1); XLA:CPU with Eigen threading off), at matched shapes and float32,
median of 5 calls after a warm-up. The torch and JAX gradients are compared on identical inputs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

OUT = os.path.join(os.path.dirname(__file__), "results")
HERE = os.path.abspath(__file__)
TS = (100, 200, 500, 1000, 2000)
STRATEGIES = ("Unrolled()", "Checkpointed()", "Checkpointed(segment_length=1)", "Truncated(20)",
              "RandomWindow(20)", "Implicit(maxiter=50)")
SHAPES = [(8, 20, 50), (8, 50, 50), (8, 50, 100), (16, 50, 100), (8, 100, 100)]   # (d, m, T), width 64, Q = 4
Q, WIDTH, B = 4, 64, 128


# ---------------------------------------------------------------- JAX side
def _jax_setup(d, m, width, threads_one=False):
    if threads_one:
        os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import numpy as np
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), ".."))
    import jaxdistill as jd

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.tanh(nn.Dense(width)(x))      # Dense_0
            x = nn.tanh(nn.Dense(width)(x))      # Dense_1
            return nn.Dense(1)(x)                # Dense_2

    rng = np.random.default_rng(0)
    data = {k: jnp.asarray(v, jnp.float32) for k, v in dict(
        Xt=rng.normal(size=(m, d)), Yt=rng.normal(size=(m, 1)), XB=rng.normal(size=(B, d)),
        YB=rng.normal(size=(B, 1))).items()}
    model = jd.FlaxModel(MLP())
    th0s = model.sample_init(jax.random.PRNGKey(0), data["Xt"], 1, Q)
    return jax, jnp, jd, model, th0s, data


def _jax_grad_fn(jax, jnp, jd, model, th0s, data, adjoint, T):
    solver = jd.UnrolledGD(adjoint=eval(f"jd.{adjoint}"))   # noqa: S307 - names from STRATEGIES

    def loss(Xt, Yt, eta):
        n = solver.training_steps(model, jax.random.PRNGKey(1), T)
        sol = solver.solve(model, jd.Support(Xt, Yt, eta, 1e-3), th0s, n, T)
        return jnp.sum(jd.BatchLoss().data_losses(sol, model, data["XB"], data["YB"]))

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))


def _median_time(fn, *args, reps=5):
    import jax
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def memory_part():
    jax, jnp, jd, model, th0s, data = _jax_setup(8, 50, WIDTH)
    eta = jnp.float32(0.05)
    rows = []
    for T in TS:
        for adj in STRATEGIES:
            f = _jax_grad_fn(jax, jnp, jd, model, th0s, data, adj, T)
            ma = f.lower(data["Xt"], data["Yt"], eta).compile().memory_analysis()
            peak = ma.temp_size_in_bytes + ma.argument_size_in_bytes + ma.output_size_in_bytes
            t = _median_time(f, data["Xt"], data["Yt"], eta, reps=3 if T >= 1000 else 5)
            rows.append({"T": T, "adjoint": adj, "peak_bytes": int(peak), "temp_bytes": int(ma.temp_size_in_bytes),
                         "time_s": t})
            print(f"T={T:5d} {adj:32s} peak {peak / 2**20:8.2f} MiB  {t * 1e3:8.1f} ms", flush=True)
    return rows


# ---------------------------------------------------------------- one framework in a subprocess
def worker(framework, d, m, T):
    """Print a JSON line: median outer-step time and the gradient for identical inputs."""
    import numpy as np
    rng = np.random.default_rng(0)
    Xt, Yt = rng.normal(size=(m, d)).astype("f4"), rng.normal(size=(m, 1)).astype("f4")
    XB, YB = rng.normal(size=(B, d)).astype("f4"), rng.normal(size=(B, 1)).astype("f4")
    # identical θ₀ draws for both: Glorot-like weights from numpy, zero biases
    shapes = [(d, WIDTH), (WIDTH, WIDTH), (WIDTH, 1)]
    Ws = [(rng.normal(size=(Q, *s)) / np.sqrt(s[0])).astype("f4") for s in shapes]
    eta = np.float32(0.05)
    if framework == "torch":
        import torch
        torch.set_num_threads(1)
        from torch.func import functional_call, grad, vmap

        net = torch.nn.Sequential(torch.nn.Linear(d, WIDTH), torch.nn.Tanh(), torch.nn.Linear(WIDTH, WIDTH),
                                  torch.nn.Tanh(), torch.nn.Linear(WIDTH, 1))
        names = ["0.weight", "2.weight", "4.weight"]
        P0 = {n: torch.tensor(W).transpose(1, 2).contiguous() for n, W in zip(names, Ws, strict=True)}
        for n, k in (("0.bias", WIDTH), ("2.bias", WIDTH), ("4.bias", 1)):
            P0[n] = torch.zeros(Q, k)

        def inner_loss(p, X, Y):
            r = functional_call(net, p, (X,)) - Y
            return 0.5 / X.shape[0] * (r ** 2).sum() + 0.5e-3 * sum((v ** 2).sum() for v in p.values())

        def train(p, X, Y, e):
            for _ in range(T):
                g = grad(inner_loss)(p, X, Y)
                p = {k: p[k] - e * g[k] for k in p}
            return p

        def outer(X, Y, e):
            pT = vmap(train, in_dims=(0, None, None, None))(P0, X, Y, e)
            pred = vmap(lambda p: functional_call(net, p, (torch.tensor(XB),)))(pT)
            return (0.5 * ((pred - torch.tensor(YB)) ** 2).mean(dim=(1, 2))).sum()

        step = grad(outer, argnums=(0, 1, 2))
        args = (torch.tensor(Xt), torch.tensor(Yt), torch.tensor(eta))
        step(*args)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            g = step(*args)
            times.append(time.perf_counter() - t0)
        gx = g[0].numpy()
    else:
        jax, jnp, jd, model, _, _ = _jax_setup(d, m, WIDTH, threads_one=True)
        th0s = {"params": {f"Dense_{i}": {"kernel": jnp.asarray(W), "bias": jnp.zeros((Q, s[1]), jnp.float32)}
                           for i, (W, s) in enumerate(zip(Ws, shapes, strict=True))}}
        adj = os.environ.get("ADJOINT", "Checkpointed(segment_length=1)")
        data = {"XB": jnp.asarray(XB), "YB": jnp.asarray(YB)}
        f = _jax_grad_fn(jax, jnp, jd, model, th0s, data, adj, T)
        args = (jnp.asarray(Xt), jnp.asarray(Yt), jnp.float32(eta))
        times = [_median_time(f, *args, reps=1) for _ in range(5)]
        gx = np.asarray(f(*args)[1][0])
    print(json.dumps({"time_s": statistics.median(times), "grad_x": gx.ravel()[:64].tolist(),
                      "grad_x_norm": float(np.linalg.norm(gx))}))


def _run_worker(framework, d, m, T, adjoint=None):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if adjoint:
        env["ADJOINT"] = adjoint
    out = subprocess.run([sys.executable, HERE, "--worker", framework, str(d), str(m), str(T)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def torch_part():
    import numpy as np
    rows = []
    for d, m, T in SHAPES:
        r = {"d": d, "m": m, "T": T}
        for name, fw, adj in (("torch", "torch", None), ("jax_checkpointed", "jax", "Checkpointed(segment_length=1)"),
                              ("jax_unrolled", "jax", "Unrolled()")):
            res = _run_worker(fw, d, m, T, adj)
            r[f"{name}_s"] = res["time_s"]
            r[f"{name}_grad"] = res["grad_x"]
        a, b = np.asarray(r["torch_grad"]), np.asarray(r["jax_checkpointed_grad"])
        r["grad_rel_diff"] = float(np.linalg.norm(a - b) / np.linalg.norm(a))
        r["speedup"] = r["torch_s"] / r["jax_checkpointed_s"]
        rows.append(r)
        print(f"d={d} m={m} T={T}: torch {r['torch_s'] * 1e3:.1f} ms, jax (per-step checkpoint) "
              f"{r['jax_checkpointed_s'] * 1e3:.1f} ms, jax (unrolled) {r['jax_unrolled_s'] * 1e3:.1f} ms, "
              f"×{r['speedup']:.2f}, grad rel diff {r['grad_rel_diff']:.1e}", flush=True)
    return rows


def write(mem, tor):
    import jax
    path = os.path.join(OUT, "meta_gradients.json")
    old = json.load(open(path)) if os.path.exists(path) else {}
    mem = mem if mem is not None else old.get("memory")
    tor = tor if tor is not None else old.get("torch")
    lines = ["# Meta-gradient strategies for an MLP inner model", "",
             f"Generated by `python benchmarks/bench_meta_gradients.py` ({platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cores, jax {jax.__version__}). Shared, noisy machine: ratios within one table "
             "are measured side by side in one run.", ""]
    if mem:
        lines += ["## Peak memory (XLA's account of the compiled outer gradient) and time against T", "",
                  "MLP 8 → 64 → 64 → 1, m = 50, Q = 4, batch 128, float32. Memory in MiB; time in ms (median).", "",
                  "| T | " + " | ".join(STRATEGIES) + " |", "|---:|" + "---:|" * len(STRATEGIES)]
        for T in TS:
            cells = []
            for a in STRATEGIES:
                r = next(x for x in mem if x["T"] == T and x["adjoint"] == a)
                cells.append(f"{r['peak_bytes'] / 2**20:.2f} MiB, {r['time_s'] * 1e3:.0f} ms")
            lines.append(f"| {T} | " + " | ".join(cells) + " |")
        at = {a: next(x for x in mem if x["T"] == 1000 and x["adjoint"] == a) for a in STRATEGIES}
        full = at["Unrolled()"]
        lines += ["", "At T = 1000, relative to the full unroll: " + "; ".join(
            f"{a}: memory {at[a]['peak_bytes'] / full['peak_bytes']:.3f}×, time {at[a]['time_s'] / full['time_s']:.2f}×"
            for a in STRATEGIES[1:]) + ".", ""]
    if tor:
        lines += ["## Outer-step time against PyTorch (one thread each, float32, Q = 4, width 64, batch 128)", "",
                  "| d | m | T | PyTorch ms | jaxdistill ms (default: per-step checkpoint) | jaxdistill ms (unrolled) "
                  "| PyTorch / jaxdistill | gradient rel. diff |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in tor:
            lines.append(f"| {r['d']} | {r['m']} | {r['T']} | {r['torch_s'] * 1e3:.1f} | "
                         f"{r['jax_checkpointed_s'] * 1e3:.1f} | {r['jax_unrolled_s'] * 1e3:.1f} | "
                         f"{r['speedup']:.2f}× | {r['grad_rel_diff']:.1e} |")
        lines.append("")
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "meta_gradients.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(path, "w") as f:
        json.dump({"memory": mem, "torch": tor}, f, indent=1)
    if mem:
        _plot(mem)
    print("\n".join(lines))


def _plot(mem):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for a in STRATEGIES:
        rs = [x for x in mem if x["adjoint"] == a]
        axes[0].plot([x["T"] for x in rs], [x["peak_bytes"] / 2**20 for x in rs], "o-", label=a)
        axes[1].plot([x["T"] for x in rs], [x["time_s"] * 1e3 for x in rs], "o-", label=a)
    for ax, lab in zip(axes, ("peak memory (MiB, XLA account)", "outer gradient time (ms, median)"), strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("T (inner steps)")
        ax.set_ylabel(lab)
    axes[0].legend(fontsize=7)
    fig.suptitle("Meta-gradient strategies, MLP 8→64→64→1, m = 50, Q = 4")
    fig.tight_layout()
    fig.savefig(os.path.join(OUT, "meta_gradients.png"), dpi=120)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], *map(int, sys.argv[3:6]))
        sys.exit(0)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--torch", action="store_true")
    args = ap.parse_args()
    both = not (args.memory or args.torch)
    write(memory_part() if (args.memory or both) else None, torch_part() if (args.torch or both) else None)
