"""The library's CPU compile options against XLA's defaults: compile time and run time of the programs a user runs,
side by side, under three option sets — XLA's defaults, the classic loop emitters at LLVM level 1
(``jaxdistill._src.core.jit.CPU_OPTIONS``, the library's choice for models linear in θ) and the fusion emitters at
level 1 (``NONLINEAR_OPTIONS``, its choice for other models).

Everything runs in one process pinned to one core (``taskset -c 0``; this machine is shared and two-core times
move by ±10 % between runs), the two option sets alternating pair by pair; each row is the median of the pairs
and the ratio is the median of the per-round ratios (the library's choice / defaults: below 1 is faster).

- outer steps: one jitted outer step (the benchmark of ``bench_outer_step.py``) at its shapes A–D with the scan,
  C and D with the exact fast path, and two flax MLPs (d 10 → 16 → 1, m 20, T 100, Q 30; d 10 → 32 → 32 → 1,
  m 50, T 50, Q 8);
- whole calls, warm (each option set compiled before timing): ``evaluate()`` of a linear result at m = 200,
  T = 200 (the case that level 0 made 250× slower) and of an MLP result on diabetes; ``distill()`` of the MLP.

    python benchmarks/bench_compile_options.py            # → results/compile_options.{md,json}
    python benchmarks/bench_compile_options.py --quick    # fewer pairs, smaller shapes (a smoke run)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
#: the library's own mix for a whole distill of a nonlinear model: classic everywhere, fusion for its outer loop
MIXED = "classic; fusion for the outer loop"
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from _results import environment, save  # noqa: E402


def _step_case(d, m, T, solver_name, model=None, q=30):
    """(compile for options, run for options): one jitted outer step as in ``bench_outer_step.jax_step_timer``."""
    import bench_outer_step as BO
    import jax
    import jax.numpy as jnp

    import jaxdistill as jd
    solver = {"scan": jd.UnrolledGD(), "fast": jd.ExactLinearGD()}[solver_name]
    X = jax.random.normal(jax.random.PRNGKey(0), (BO.N, d))
    Y = X @ jax.random.normal(jax.random.PRNGKey(1), (d, 1))
    s, problem = BO.make_solver(d, m, T, solver, q=q)
    if model is not None:
        problem = jd.Problem(model, BO.LAM, BO.LAM)
    params = jd.DistillParams(jax.random.normal(jax.random.PRNGKey(2), (m, d)),
                              jax.random.normal(jax.random.PRNGKey(3), (m, 1)), jnp.asarray(BO.inner_lr(m)))
    state0 = s.init(problem, params)
    XB, YB, key = X[:BO.B], Y[:BO.B], jax.random.PRNGKey(0)

    def compile_(opts):
        step = jax.jit(lambda st, XB, YB, k: s.step(problem, st, XB, YB, k), compiler_options=opts)
        t0 = time.perf_counter()
        c = step.lower(state0, XB, YB, key).compile()
        cs = time.perf_counter() - t0
        jax.block_until_ready(c(state0, XB, YB, key))
        return c, cs

    def run(c, inner=3):
        st = state0
        t0 = time.perf_counter()
        for _ in range(inner):
            st, _ = c(st, XB, YB, key)
        jax.block_until_ready(st)
        return (time.perf_counter() - t0) / inner
    return compile_, run


def _api_case(which, quick):
    """(compile for options, run for options) of a warm whole call; options are set with
    ``set_cpu_compile_options`` (each option set is its own compiled program)."""
    import flax.linen as nn
    import numpy as np

    import jaxdistill as jd
    from jaxdistill import datasets
    from jaxdistill._src.core import jit as J

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(1)(nn.tanh(nn.Dense(16)(x)))

    if which == "evaluate linear m=200 T=200":
        rng = np.random.default_rng(0)
        n, d = (1000, 10) if quick else (4000, 20)
        X = rng.normal(size=(n, d)).astype(np.float32)
        Y = X @ rng.normal(size=(d, 1)).astype(np.float32) + 0.1 * rng.normal(size=(n, 1)).astype(np.float32)
        out = jd.distill(X[: n // 2], Y[: n // 2], m=200, T=200, steps=20, eval_every=20, key=0, progress=False)
        call = lambda: jd.evaluate(out, X[n // 2:], Y[n // 2:], X[: n // 2], Y[: n // 2], key=0)  # noqa: E731
    else:
        X, Y = datasets.load("diabetes")
        Xtr, Ytr, Xte, Yte = datasets.train_test_split(X, Y, 0.2, key=0)
        steps = 30 if quick else 300
        fit = lambda: jd.distill(Xtr, Ytr, m=20, key=0, progress=False, model=jd.FlaxModel(MLP()),  # noqa: E731
                                 steps=steps)
        if which == "distill MLP":
            call = fit
        else:
            out = fit()
            call = lambda: jd.evaluate(out, Xte, Yte, Xtr, Ytr, key=0)  # noqa: E731

    def compile_(opts):          # (linear programs' options, a nonlinear model's outer loop's options)
        J.set_cpu_compile_options(opts[0], J.RUN_ONCE if opts[0] else None, opts[1])
        t0 = time.process_time()
        call()
        return opts, time.process_time() - t0

    def run(opts):
        J.set_cpu_compile_options(opts[0], J.RUN_ONCE if opts[0] else None, opts[1])
        t0 = time.perf_counter()
        call()
        return time.perf_counter() - t0
    return compile_, run


def child(quick: bool, pairs: int):
    import jax

    import jaxdistill as jd
    from jaxdistill._src.core import jit as J
    jax.config.update("jax_platforms", "cpu")

    import flax.linen as nn

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(1)(nn.tanh(nn.Dense(16)(x)))

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(1)(nn.tanh(nn.Dense(32)(nn.tanh(nn.Dense(32)(x)))))
    shapes = {"A": (100, 99, 100), "B": (100, 99, 175), "C": (1000, 100, 100), "D": (1000, 100, 175)}
    if quick:
        shapes = {"A": (20, 20, 20)}
    classic, fusion = "classic, level 1", "fusion, level 1"      # the library's choice for each case
    cases = [(f"outer step {k} (d {d}, m {m}, T {T}), scan", classic,
              lambda d=d, m=m, T=T: _step_case(d, m, T, "scan")) for k, (d, m, T) in shapes.items()]
    cases += [(f"outer step {k} (d {d}, m {m}, T {T}), fast path", classic,
               lambda d=d, m=m, T=T: _step_case(d, m, T, "fast"))
              for k, (d, m, T) in shapes.items() if k in ("C", "D") or quick]
    cases.append(("outer step, flax MLP 10-16-1 (m 20, T 100, Q 30)", fusion,
                  lambda: _step_case(10, 20, 100, "scan", model=jd.FlaxModel(Net()))))
    cases.append(("outer step, flax MLP 10-32-32-1 (m 50, T 50, Q 8)", fusion,
                  lambda: _step_case(10, 50, 50, "scan", model=jd.FlaxModel(MLP()), q=8)))
    # whole calls: the library's choice is classic for every program but a nonlinear model's outer loop (fusion);
    # evaluate's programs are not routed by model, so `evaluate` of an MLP result compiles classic throughout
    cases += [(w, {"distill MLP": MIXED}.get(w, classic), lambda w=w: _api_case(w, quick))
              for w in ("evaluate linear m=200 T=200", "distill MLP", "evaluate MLP")]
    rows = []
    for name, chosen, make in cases:
        compile_, run = make()
        sets = {"XLA defaults": None, classic: J.CPU_OPTIONS, fusion: J.NONLINEAR_OPTIONS}
        if name.startswith(("evaluate", "distill")):           # whole calls: (linear, nonlinear outer loop) options
            sets = {k: (o, o) for k, o in sets.items()}
            if chosen == MIXED:
                sets[MIXED] = (J.CPU_OPTIONS, J.NONLINEAR_OPTIONS)
        compiled = {k: compile_(o) for k, o in sets.items()}
        times = {k: [] for k in sets}
        for _ in range(pairs):
            for k in sets:
                times[k].append(run(compiled[k][0]))
        ratios = [a / b for a, b in zip(times[chosen], times["XLA defaults"], strict=True)]
        row = {"case": name, "pairs": pairs, "library_choice": chosen,
               "compile_s": {k: compiled[k][1] for k in sets}, "run_s": {k: statistics.median(v) for k, v in
                                                                        times.items()},
               "ratio": statistics.median(ratios), "ratios": ratios}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print("RESULT " + json.dumps(rows))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--pairs", type=int, default=7)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--md-only", action="store_true", help="rewrite compile_options.md from its JSON")
    args = ap.parse_args()
    if args.child:
        return child(args.quick, args.pairs)
    if args.md_only:
        from _results import load
        rows, _ = load("compile_options")
        return write(rows, args)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--pairs", str(args.pairs)] + (
        ["--quick"] if args.quick else [])
    if not args.quick:
        cmd = ["taskset", "-c", "0"] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    if not line:
        raise RuntimeError(p.stderr[-4000:])
    write(json.loads(line[0][7:]), args)


def write(rows, args):
    names = ("XLA defaults", "classic, level 1", "fusion, level 1")
    md = ["| case | the library's choice | compile s: " + " / ".join(names) + " | run: " + " / ".join(names)
          + " | run ratio (choice / defaults) | per-round ratios |", "|---|---|---|---|---:|---|"]
    for r in rows:
        unit, f = ("ms", 1e3) if r["run_s"]["XLA defaults"] < 1 else ("s", 1)
        mixed = (f" (this mix runs {r['run_s'][MIXED] * f:.3g} {unit}; its programs are the other sets', compiled "
                 "already)" if MIXED in r["run_s"] else "")
        md.append(f"| {r['case']} | {r['library_choice']}{mixed} | "
                  + " / ".join(f"{r['compile_s'][k]:.2f}" for k in names)
                  + " | " + " / ".join(f"{r['run_s'][k] * f:.3g}" for k in names) + f" {unit} | {r['ratio']:.2f} | "
                  + ", ".join(f"{x:.2f}" for x in r["ratios"]) + " |")
    slower = []
    for r in rows:                      # where the choice runs slower than the defaults: after how many calls it loses
        c = r["library_choice"] if r["library_choice"] in names else "classic, level 1"
        extra_run = r["run_s"][c] - r["run_s"]["XLA defaults"]
        saved = r["compile_s"]["XLA defaults"] - r["compile_s"][c]
        if r["ratio"] > 1.05 and extra_run > 0 and saved > 0:
            slower.append(f"{r['case']}: {r['ratio']:.2f}× the defaults' time per call, {saved:.2f} s less to compile "
                          f"— the defaults are ahead after {saved / extra_run:,.0f} calls")
    md += ["", "Where the library's choice runs more than 5 % slower than XLA's defaults: "
           + ("; ".join(slower) + "." if slower else "nowhere.")]
    if args.quick:
        print("\n".join(md))
        return
    envs = environment("one pinned core")
    save("compile_options", envs, rows, [
        f"# The library's CPU compile options against XLA's defaults ({envs})", "",
        "Option sets: XLA's defaults; the classic loop emitters at LLVM level 1 (`xla_cpu_use_fusion_emitters=False`, "
        "`xla_backend_optimization_level=1`: `CPU_OPTIONS`, the library's choice for every program but one); the "
        "fusion emitters at level 1 (`xla_backend_optimization_level=1`: `NONLINEAR_OPTIONS`, its choice for the "
        "outer loop of a model not linear in θ; `jaxdistill/_src/core/jit.py`). One process pinned to one core, the "
        "three sets "
        f"in turn, {args.pairs} rounds; run = median time of one call (outer steps: one step; whole calls: warm, "
        "i.e. compiled before timing). Compile: seconds to compile the step (outer steps) or CPU seconds of the "
        "first call including compilation (whole calls; the first option set measured also pays one-off costs such "
        "as tracing).", "", *md])


if __name__ == "__main__":
    main()
