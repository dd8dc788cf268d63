"""Outer-step cost of jaxdistill (scan path and exact fast path) against a PyTorch eager baseline.

    python benchmarks/bench_outer_step.py            # full run, writes benchmarks/results/outer_step.*
    python benchmarks/bench_outer_step.py --quick    # smaller repeats, for a smoke test

Unit: one outer step = sample batch and Q θ₀, value and gradient w.r.t. X̃, Ỹ, η̃, optimizer update.
Reference shapes (the regression paper's setting), Q = 30, b = 32, n = 1000, λ = 1e-3, float32:
A = (d 100, m 99, T 100), B = (d 100, m 99, T 175), C = (d 1000, m 100, T 100), D = (d 1000, m 100, T 175).
All timings are medians over repeats measured side by side in one run; ratios are taken within the run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import jaxdistill as jd  # noqa: E402
from jaxdistill._src.core.jit import CPU_OPTIONS  # noqa: E402
from jaxdistill._src.core.threads import single_blas_thread  # noqa: E402

SHAPES = {"A": (100, 99, 100), "B": (100, 99, 175), "C": (1000, 100, 100), "D": (1000, 100, 175)}
Q, B, N, LAM = 30, 32, 1000, 1e-3
OUT = os.path.join(os.path.dirname(__file__), "results")


def inner_lr(m):
    """The initial η̃ of every timed step (scaled with m so that T steps stay below the stability bound)."""
    return 0.05 * m / 100


def make_solver(d, m, T, solver, q=Q, b=B):
    cfg = jd.DistillConfig(m=m, steps=1, T=T, Q=q, batch_size=b, inner_lr=inner_lr(m), lr_x=1e-3, lr_y=1e-3,
                           lr_eta=1e-5, lambda_inner=LAM, lambda_outer=LAM, init="random", reduction="sum")
    return jd.BilevelSolver(cfg, solver, jd.make_optimizer(cfg)), jd.Problem(jd.LinearModel(init_scale=1.0), LAM, LAM)


def jax_step_timer(d, m, T, solver, n=N, q=Q, reps=5, inner=3, b=B, options="library"):
    """(median seconds per step, compile seconds) for one jitted outer step on a batch of b rows
    (Algorithm 1 lines 5–13; the batch is drawn by the driver, outside the step); ``options``: XLA compiler
    options — ``"library"`` (default): as `distill()` compiles its programs on the CPU
    (``jaxdistill._src.core.jit.CPU_OPTIONS``); None: XLA's defaults. Timed with one BLAS thread, as `distill()`
    runs its compiled loop."""
    if isinstance(options, str):
        options = CPU_OPTIONS if jax.default_backend() == "cpu" else None
    key = jax.random.PRNGKey(0)
    X = jax.random.normal(key, (n, d))
    Y = X @ jax.random.normal(jax.random.PRNGKey(1), (d, 1))
    s, problem = make_solver(d, m, T, solver, q=q)
    x0 = jax.random.normal(jax.random.PRNGKey(2), (m, d))
    y0 = jax.random.normal(jax.random.PRNGKey(3), (m, 1))
    state = s.init(problem, jd.DistillParams(x0, y0, jnp.asarray(inner_lr(m))))
    XB, YB = X[:b], Y[:b]
    step = jax.jit(lambda st, XB, YB, k: s.step(problem, st, XB, YB, k), compiler_options=options)
    t0 = time.perf_counter()
    compiled = step.lower(state, XB, YB, key).compile()
    compile_s = time.perf_counter() - t0
    with single_blas_thread():
        state, _ = compiled(state, XB, YB, key)
        jax.block_until_ready(state)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            for _ in range(inner):
                state, met = compiled(state, XB, YB, key)
            jax.block_until_ready(state)
            times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times), compile_s


def reference_step_timer(d, m, T, n=N, q=Q, reps=5, inner=3, b=B):
    """(median seconds per step, compile seconds) of the same algorithm written directly in JAX, as a user would
    without the library: θ kept as Q rows (Q, d) — the faster layout, 1.16–1.75× the (Q, d, 1) columns of 0.8's
    reference — a ``lax.scan`` over T with the gradient written out, ``jax.value_and_grad``, θ₀ drawn inside the
    step, Adam on X̃ and Ỹ and a gradient step on η̃ — no stability bound, guards or schedules. XLA's defaults."""
    import optax
    key = jax.random.PRNGKey(0)
    X = jax.random.normal(key, (n, d))
    Y = X @ jax.random.normal(jax.random.PRNGKey(1), (d, 1))
    params = (jax.random.normal(jax.random.PRNGKey(2), (m, d)), jax.random.normal(jax.random.PRNGKey(3), (m, 1)),
              jnp.asarray(inner_lr(m)))
    opt = optax.multi_transform({"x": optax.adam(1e-3), "y": optax.adam(1e-3), "eta": optax.sgd(1e-5)},
                                ("x", "y", "eta"))

    def loss_fn(params, XB, YB, theta):
        Xt, Yt, eta = params
        yt = Yt[:, 0]

        def body(th, _):
            r = th @ Xt.T - yt                                # (Q, m)
            return th - eta * (r @ Xt / m + LAM * th), None

        theta = jax.lax.scan(body, theta, None, length=T)[0]
        data = jnp.sum((theta @ XB.T - YB[:, 0]) ** 2, axis=1) / (2 * b)
        return jnp.sum(data + LAM / 2 * (jnp.sum(Xt ** 2) + jnp.sum(Yt ** 2)))

    @jax.jit
    def step(params, opt_state, XB, YB, k):
        theta = jax.random.normal(k, (q, d))
        loss, g = jax.value_and_grad(loss_fn)(params, XB, YB, theta)
        updates, opt_state = opt.update(g, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    state = (params, opt.init(params))
    XB, YB = X[:b], Y[:b]
    t0 = time.perf_counter()
    compiled = step.lower(*state, XB, YB, key).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(*state, XB, YB, key))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            p, o, _ = compiled(*state, XB, YB, key)
            state = (p, o)
        jax.block_until_ready(state)
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times), compile_s


def torch_step_timer(d, m, T, reps=5, inner=3, compile_=False):
    """The same algorithm in PyTorch eager: autograd through the unrolled loop, θ batched over Q."""
    import torch
    g = torch.Generator().manual_seed(0)
    X = torch.randn(N, d, generator=g)
    Y = X @ torch.randn(d, 1, generator=g)
    Xt = torch.randn(m, d, generator=g).requires_grad_()
    Yt = torch.randn(m, 1, generator=g).requires_grad_()
    eta = torch.tensor(inner_lr(m), requires_grad=True)

    def loss_fn(Xt, Yt, eta, XB, YB, theta):
        for _ in range(T):
            r = Xt @ theta - Yt                       # (Q, m, 1)
            theta = theta - eta * (Xt.T @ r / m + LAM * theta)
        data = ((XB @ theta - YB) ** 2).sum(dim=(1, 2)) / (2 * B)
        return (data + LAM / 2 * ((Xt ** 2).sum() + (Yt ** 2).sum())).sum()

    fn = torch.compile(loss_fn) if compile_ else loss_fn

    def step():
        idx = torch.randperm(N, generator=g)[:B]
        theta = torch.randn(Q, d, 1, generator=g)
        loss = fn(Xt, Yt, eta, X[idx], Y[idx], theta)
        gx, gy, ge = torch.autograd.grad(loss, (Xt, Yt, eta))
        with torch.no_grad():
            Xt.sub_(1e-3 * gx)
            Yt.sub_(1e-3 * gy)
            eta.sub_(1e-5 * ge)

    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            step()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times), first


def scan_flops(d, m, T, q=Q):
    """Multiply-adds ×2 of the scan path: forward 2 matmuls (m·d per θ column) per inner step, backward
    about twice the forward (two matmuls per forward matmul), plus the batch loss (negligible)."""
    fwd = 2 * (2 * m * d * q) * T
    return 3 * fwd


def numpy_matmul_rate(d, m, reps=7):
    """GFLOP/s of float32 numpy matmuls of the scan's own shapes: (m, d) @ (d, Q) and (d, m) @ (m, Q)."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(m, d)).astype(np.float32)
    th = rng.normal(size=(d, Q)).astype(np.float32)
    r = rng.normal(size=(m, Q)).astype(np.float32)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(200):
            A @ th
            A.T @ r
        times.append((time.perf_counter() - t0) / 200)
    return 2 * 2 * m * d * Q / statistics.median(times) / 1e9


def memory_vs_T(d, m, Ts):
    """XLA's static temp-buffer size of the jitted step, scan path with and without jax.checkpoint."""
    rows = []
    X = jnp.zeros((N, d))
    Y = jnp.zeros((N, 1))
    key = jax.random.PRNGKey(0)
    for T in Ts:
        row = {"T": T}
        for name, solver in (("scan", jd.UnrolledGD()), ("scan+checkpoint", jd.UnrolledGD(checkpoint=True)),
                             ("fast", jd.ExactLinearGD())):
            s, problem = make_solver(d, m, T, solver)
            x0 = jax.random.normal(jax.random.PRNGKey(2), (m, d))
            state = s.init(problem, jd.DistillParams(x0, x0[:, :1], jnp.asarray(inner_lr(m))))
            XB, YB = X[:B], Y[:B]
            t0 = time.perf_counter()
            c = jax.jit(lambda st, XB, YB, k: s.step(problem, st, XB, YB, k)).lower(state, XB, YB, key).compile()
            row[f"{name}_compile_s"] = time.perf_counter() - t0
            mem = c.memory_analysis()
            row[f"{name}_temp_MiB"] = (mem.temp_size_in_bytes / 2**20) if mem is not None else float("nan")
        rows.append(row)
    return rows


def scaling(quick):
    """Time per step against T, Q, d, m, n around shape C (d 1000, m 100, T 100, Q 30, n 1000)."""
    base = dict(d=1000, m=100, T=100, q=Q, n=N)
    grids = {"T": [25, 50, 100, 200, 400], "Q": [4, 8, 16, 30, 60], "d": [100, 250, 500, 1000, 2000],
             "m": [10, 25, 50, 100, 200], "n": [250, 1000, 4000, 16000]}
    if quick:
        grids = {k: v[:3] for k, v in grids.items()}
    out = {}
    for var, values in grids.items():
        out[var] = []
        for v in values:
            kw = dict(base, **{{"Q": "q"}.get(var, var): v})
            row = {var: v}
            for name, solver in (("scan", jd.UnrolledGD()), ("fast", jd.ExactLinearGD())):
                row[name] = jax_step_timer(kw["d"], kw["m"], kw["T"], solver, n=kw["n"], q=kw["q"],
                                           reps=3, inner=2)[0]
            out[var].append(row)
            print(f"  scaling {var}={v}: scan {row['scan'] * 1e3:.2f} ms, fast {row['fast'] * 1e3:.2f} ms", flush=True)
    return out


REFERENCE_CHILD = r"""
import json, statistics, sys
sys.path.insert(0, sys.argv[1])
import bench_outer_step as B
import jaxdistill as jd
out = {}
for _ in range(int(sys.argv[2])):
    for name, (d, m, T) in B.SHAPES.items():
        for q in (8, 30):
            lib = B.jax_step_timer(d, m, T, jd.UnrolledGD(), q=q, reps=5)[0]
            ref = B.reference_step_timer(d, m, T, q=q, reps=5)[0]
            out.setdefault(f"{name} Q{q}", []).append((lib, ref))
print("RESULT " + json.dumps(out))
"""


def reference_ratios(repeats=5, pinned=True):
    """The library's compiled scan step (as `distill()` compiles and runs it) over the hand-written row-layout step,
    at each shape with Q = 8 and 30, the two timed alternately in one process, ``repeats`` rounds. ``pinned``: the
    process on one core (``taskset -c 0``); else as a user runs it (no pinning, default threads)."""
    import subprocess
    cmd = (["taskset", "-c", "0"] if pinned else []) + [sys.executable, "-c", REFERENCE_CHILD,
                                                       os.path.dirname(__file__), str(repeats)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    if not line:
        raise RuntimeError(p.stderr[-3000:])
    pairs = json.loads(line[0][7:])
    return {case: {"library_s": statistics.median(x[0] for x in v), "reference_s": statistics.median(x[1] for x in v),
                   "ratio": statistics.median(x[0] / x[1] for x in v), "ratios": [x[0] / x[1] for x in v]}
            for case, v in pairs.items()}


def _commit() -> str:
    import subprocess
    return subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip() or "this checkout"


def reference_section(repeats):
    return {"pinned": reference_ratios(repeats, pinned=True), "default": reference_ratios(repeats, pinned=False)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference-only", action="store_true",
                    help="re-measure only the library-vs-hand-written section (the rest from outer_step.json)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of the library-vs-hand-written section")
    ap.add_argument("--md-only", action="store_true", help="rewrite outer_step.md and .png from outer_step.json")
    ap.add_argument("--torch-compile", action="store_true", help="also time torch.compile (slow to compile)")
    args = ap.parse_args()
    if args.md_only:                    # re-render the table and figure from the committed JSON (no measuring)
        with open(os.path.join(OUT, "outer_step.json")) as f:
            results = json.load(f)
        write(results, "torch" in results["machine"])
        return
    if args.reference_only:
        with open(os.path.join(OUT, "outer_step.json")) as f:
            results = json.load(f)
        results.pop("pinned", None)
        results["reference"] = reference_section(args.rounds)
        results["reference_note"] = (f"This section was re-measured (`--reference-only`) at {_commit()}, after the "
                                     "tables above.")
        write(results, "torch" in results["machine"])
        return
    reps = 3 if args.quick else 7
    try:
        import torch
        torch.manual_seed(0)
        have_torch = True
    except ImportError:
        have_torch = False
        print("PyTorch not installed (pip install 'jaxdistill[torch]'): skipping the PyTorch column.")

    results = {"machine": {"platform": platform.platform(), "processor": platform.processor(),
                           "cpus": os.cpu_count(), "jax": jax.__version__, "backend": jax.default_backend(),
                           "device": str(jax.devices()[0])},
               "shapes": {}}
    if have_torch:
        results["machine"]["torch"] = torch.__version__
        results["machine"]["torch_threads"] = torch.get_num_threads()
    for name, (d, m, T) in SHAPES.items():
        row = {"d": d, "m": m, "T": T}
        row["scan_s"], row["scan_compile_s"] = jax_step_timer(d, m, T, jd.UnrolledGD(), reps=reps)
        row["fast_s"], row["fast_compile_s"] = jax_step_timer(d, m, T, jd.ExactLinearGD(), reps=reps)
        row["reference_s"], row["reference_compile_s"] = reference_step_timer(d, m, T, reps=reps)
        if have_torch:
            row["torch_s"], _ = torch_step_timer(d, m, T, reps=reps)
            if args.torch_compile:
                row["torch_compile_s"], row["torch_compile_first_s"] = torch_step_timer(d, m, T, reps=reps,
                                                                                        compile_=True)
        row["flops"] = scan_flops(d, m, T)
        row["scan_gflops"] = row["flops"] / row["scan_s"] / 1e9
        row["numpy_matmul_gflops"] = numpy_matmul_rate(d, m)
        results["shapes"][name] = row
        print(name, {k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)

    results["memory"] = memory_vs_T(1000, 100, [25, 100, 175, 400, 1000])
    for r in results["memory"]:
        print("  memory", {k: round(v, 3) for k, v in r.items()}, flush=True)
    results["scaling"] = scaling(args.quick)
    results.pop("pinned", None)
    results.pop("reference_note", None)
    results["reference"] = reference_section(3 if args.quick else args.rounds)
    write(results, have_torch)


def write(res, have_torch):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "outer_step.json"), "w") as f:
        json.dump(res, f, indent=1)
    mc = res["machine"]
    L = [f"# Outer-step benchmark\n\nMachine: {mc['processor'] or mc['platform']}, {mc['cpus']} CPUs, "
         f"JAX {mc['jax']} ({mc['backend']}: {mc['device']})" + (f", PyTorch {mc['torch']} ({mc['torch_threads']} "
                                                                 "threads)" if have_torch else "") + ".",
         "Medians of repeated runs, measured side by side in one run. Q = 30, b = 32, n = 1000, float32."
         + ("" if have_torch else " PyTorch was not installed for this run (no PyTorch columns; "
                                  "`results/torch_linear.md` compares with PyTorch).") + "\n",
         "| shape | d | m | T | scan ms/step | hand-written JAX ms/step | scan vs hand-written | fast ms/step | "
         + ("PyTorch eager ms/step | scan vs PyTorch | " if
                                                               have_torch else "") +
         "fast vs scan | scan GFLOP/s | numpy matmul GFLOP/s (same shapes) | scan / ceiling | scan compile s | "
         "fast compile s |",
         "|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if have_torch else "")
         + "---:|---:|---:|---:|---:|---:|"]
    for name, r in res["shapes"].items():
        t = (f"{r['torch_s'] * 1e3:.1f} | {r['torch_s'] / r['scan_s']:.2f}× | " if have_torch else "")
        L.append(f"| {name} | {r['d']} | {r['m']} | {r['T']} | {r['scan_s'] * 1e3:.1f} | "
                 f"{r['reference_s'] * 1e3:.1f} | "
                 f"{r['scan_s'] / r['reference_s']:.2f} | {r['fast_s'] * 1e3:.2f} | {t}"
                 f"{r['scan_s'] / r['fast_s']:.0f}× | {r['scan_gflops']:.1f} | {r['numpy_matmul_gflops']:.1f} | "
                 f"{r['scan_gflops'] / r['numpy_matmul_gflops']:.2f} | {r['scan_compile_s']:.2f} | "
                 f"{r['fast_compile_s']:.2f} |")
    L += ["\n\"hand-written JAX\": the same algorithm written directly in JAX as a user would (θ as Q rows (Q, d), a "
          "`lax.scan` over T with the gradient written out, `jax.value_and_grad`, θ₀ drawn in the step, Adam on X̃ and "
          "Ỹ), without the library's stability bound, guards and schedules; \"scan vs hand-written\" is the scan "
          "path's time over it (> 1: slower). The library's steps are compiled and run as `distill()` runs them "
          "(its CPU options, one BLAS thread).",
          "\nFLOPs per step of the scan path: 3 × (2 matmuls × 2·m·d·Q per inner step × T) (forward plus a "
          "backward of about twice the forward).\n",
          "## Memory (XLA temp buffers of the compiled step) and compile time as T grows (d 1000, m 100)\n",
          "| T | scan MiB | scan+checkpoint MiB | fast MiB | scan compile s | scan+checkpoint compile s | "
          "fast compile s |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in res["memory"]:
        L.append(f"| {r['T']} | {r['scan_temp_MiB']:.1f} | {r['scan+checkpoint_temp_MiB']:.1f} | "
                 f"{r['fast_temp_MiB']:.2f} | {r['scan_compile_s']:.2f} | {r['scan+checkpoint_compile_s']:.2f} | "
                 f"{r['fast_compile_s']:.2f} |")
    if "reference" in res:
        L += ["\n## The library's step against the hand-written one, Q = 8 and 30, pinned and default environment\n",
              "The library's scan step — compiled as `distill()` compiles it on the CPU (`CPU_OPTIONS`: classic loop "
              "emitters, LLVM level 1), run with one BLAS thread as `distill()` runs its loop — against the "
              "hand-written JAX step with θ as Q rows (XLA's defaults), timed alternately in one process, median of "
              f"{len(next(iter(res['reference']['pinned'].values()))['ratios'])} rounds. Pinned: the process on one "
              "core (`taskset -c 0`); default: no pinning and default threads, as a user runs it. Ratio > 1: the "
              "library is slower." + (f" {res['reference_note']}" if res.get("reference_note") else "") + "\n",
              "| shape | Q | pinned: library ms | hand-written ms | library ÷ hand-written | range | "
              "default env: library ms | hand-written ms | library ÷ hand-written | range |",
              "|---|---:|---:|---:|---:|---|---:|---:|---:|---|"]
        for case, r in res["reference"]["pinned"].items():
            u = res["reference"]["default"][case]
            name, q = case.split(" Q")
            L.append(f"| {name} | {q} | {r['library_s'] * 1e3:.2f} | {r['reference_s'] * 1e3:.2f} | {r['ratio']:.3f} | "
                     f"{min(r['ratios']):.3f} – {max(r['ratios']):.3f} | {u['library_s'] * 1e3:.2f} | "
                     f"{u['reference_s'] * 1e3:.2f} | {u['ratio']:.3f} | {min(u['ratios']):.3f} – "
                     f"{max(u['ratios']):.3f} |")
        worst = max(max(r["ratio"] for r in res["reference"][env].values()) for env in ("pinned", "default"))
        L.append(f"\nWorst median ratio over both environments: {worst:.3f}.")
    L.append("\n## Scaling (ms per step around shape C; see outer_step.png)\n")
    for var, rows in res["scaling"].items():
        L.append(f"- {var}: " + ", ".join(f"{r[var]}: scan {r['scan'] * 1e3:.1f} / fast {r['fast'] * 1e3:.2f}"
                                          for r in rows))
    with open(os.path.join(OUT, "outer_step.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    print("\n".join(L))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        print("matplotlib not installed: no PNG (pip install 'jaxdistill[bench]').")
        return
    fig, axes = plt.subplots(1, len(res["scaling"]), figsize=(4 * len(res["scaling"]), 3.4))
    for ax, (var, rows) in zip(axes, res["scaling"].items(), strict=True):
        x = [r[var] for r in rows]
        ax.loglog(x, [r["scan"] * 1e3 for r in rows], "o-", label="scan (UnrolledGD)")
        ax.loglog(x, [r["fast"] * 1e3 for r in rows], "s-", label="fast (ExactLinearGD)")
        # label the measured values only: log axes' minor labels overlapped
        ax.set_xticks(x, [f"{v:g}" for v in x])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(var)
        ax.set_ylabel("ms per outer step")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.suptitle("Outer-step time vs problem size (others at d 1000, m 100, T 100, Q 30, n 1000)")
    fig.tight_layout()
    fig.savefig(os.path.join(OUT, "outer_step.png"), dpi=110)


if __name__ == "__main__":
    main()
