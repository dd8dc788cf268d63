"""What a user waits for before a first result: programs compiled and CPU seconds of a first ``distill()`` and a
first ``evaluate()`` on diabetes, and of a second ``distill()`` that changes only host-side settings.

Each case runs in a fresh Python process (no persistent compilation cache, nothing compiled before), counting
JAX's own ``jax.monitoring`` compile events. ``--compare DIR`` (repeatable) imports jaxdistill from another
checkout, so earlier versions are measured side by side with this one in one run; rows name each checkout's
version and commit.

    python benchmarks/bench_compile.py --compare /path/to/jaxdistill-0.7 --mlp  # → results/compile.{md,json}
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _results import environment, save  # noqa: E402

CHILD = r"""
import collections, json, os, sys, time
sys.path.insert(0, sys.argv[1])
import jax
events = []
jax.monitoring.register_event_duration_secs_listener(
    lambda e, d, **k: events.append((e.rsplit("/", 1)[-1], k.get("fun_name"), d)))
import jaxdistill as jd
for _name in getattr(jd, "__all__", ()):    # names load on first use: load them before any clock starts
    getattr(jd, _name)
from jaxdistill import datasets
case, cache, min_s = sys.argv[2], sys.argv[3], float(sys.argv[4])
if cache:
    jd.enable_compilation_cache(cache, min_compile_time_s=min_s)
if os.environ.get("BENCH_XLA_DEFAULTS"):
    jd.set_cpu_compile_options(None, None, None)

STAGES = {"jaxpr_trace_duration": "trace", "jaxpr_to_mlir_module_duration": "lower",
          "backend_compile_duration": "compile"}

def measure(fn, again=False):
    # the call's compilations and CPU/wall time; per program (name without "jit(...)") the seconds of tracing,
    # lowering and backend compiling; with `again` also the CPU seconds of a second identical call (running
    # only: everything is compiled by then)
    events.clear()
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    compiles = [e for e in events if e[0] == "backend_compile_duration"]
    per = collections.defaultdict(lambda: {"trace": 0.0, "lower": 0.0, "compile": 0.0})
    for e, f, d in events:
        if e in STAGES and f:
            per[f.removeprefix("jit(").removesuffix(")")][STAGES[e]] += d
    rec = {"backend_compiles": len(compiles), "compile_s": round(sum(d for _, _, d in compiles), 3),
           "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
           "top": collections.Counter(f for _, f, _ in compiles).most_common(4),
           "programs": {f: {k: round(v, 3) for k, v in st.items()} for f, st in per.items()}}
    if again:
        c0 = time.process_time()
        fn()
        rec["again_cpu_s"] = round(time.process_time() - c0, 3)
    return out, rec

X, Y = datasets.load("diabetes")
Xtr, Ytr, Xte, Yte = datasets.train_test_split(X, Y, 0.2, key=0)
res = {}
if case.startswith("linear"):        # "linear-first": only the first distill() and evaluate()
    out, res["first distill()"] = measure(lambda: jd.distill(Xtr, Ytr, m=20, key=0, progress=False), again=True)
    _, res["first evaluate()"] = measure(lambda: jd.evaluate(out, Xte, Yte, Xtr, Ytr, key=0), again=True)
if case == "linear":
    _, res["second distill(), other steps/patience/eval_every/lr_x"] = measure(lambda: jd.distill(
        Xtr, Ytr, m=20, key=1, progress=False, steps=800, patience=5, eval_every=25, lr_x=0.02, restore_best=False))
    _, res["distill() with m = 21"] = measure(lambda: jd.distill(Xtr, Ytr, m=21, key=0, progress=False))
    res["status"] = str(out.status)
elif case == "mlp":
    import flax.linen as nn
    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(1)(nn.tanh(nn.Dense(16)(x)))
    out, res["first distill(), MLP"] = measure(lambda: jd.distill(Xtr, Ytr, m=20, key=0, progress=False,
                                                                 model=jd.FlaxModel(MLP()), steps=300), again=True)
    _, res["first evaluate(), MLP"] = measure(lambda: jd.evaluate(out, Xte, Yte, Xtr, Ytr, key=0), again=True)
print("RESULT " + json.dumps(res))
"""


XLA_DEFAULTS = "XLA's default options (jd.set_cpu_compile_options(None, None, None))"
NOTE = ("Since 0.8 the library compiles its CPU programs with XLA's classic loop emitters and LLVM at level 1, and "
        "since 0.9 a nonlinear model's outer loop with the fusion emitters at level 1 (`jd.set_cpu_compile_options`; "
        "the row \"XLA's default options\" turns that off in the same run); what it costs and saves per program, "
        "side by side on one core: results/compile_options.md. "
        "Decision on the persistent cache: see docs/concepts.md (\"The persistent compilation cache\").")


def run_case(src: str, case: str, cache: str = "", min_s: float = 0.2, xla_defaults: bool = False) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("JAXDISTILL_CACHE", "XLA_FLAGS", "BENCH_XLA_DEFAULTS")}
    env["JAX_PLATFORMS"] = "cpu"
    if xla_defaults:
        env["BENCH_XLA_DEFAULTS"] = "1"
    res = subprocess.run([sys.executable, "-c", CHILD, src, case, cache, str(min_s)], capture_output=True,
                         text=True, env=env, timeout=1800)
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"{case} failed in {src}:\n{res.stderr[-3000:]}")
    return json.loads(line[7:])


def _breakdown(rs: list) -> dict:
    """Medians over the rounds of the per-program stage times and of the repeated call's CPU, where measured."""
    out = {}
    if all("again_cpu_s" in r for r in rs):
        out["again_cpu_s"] = statistics.median(r["again_cpu_s"] for r in rs)
    if all("programs" in r for r in rs):
        names = {f for r in rs for f in r["programs"]}
        out["programs"] = {f: {k: round(statistics.median(r["programs"].get(f, {}).get(k, 0.0) for r in rs), 3)
                               for k in ("trace", "lower", "compile")} for f in names}
    return out


def _label(src: str) -> str:
    """The checkout's version and commit (and whether it has uncommitted changes)."""
    version = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {src!r}); "
                              "import jaxdistill; print(jaxdistill.__version__)"],
                             capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", src, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", src, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return f"{version} ({commit}{' + uncommitted changes' if dirty else ''})" if commit else version


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compare", action="append", default=[],
                    help="another checkout (an earlier version) to measure beside this; repeatable")
    ap.add_argument("--mlp", action="store_true", help="also the MLP case (minutes on 2 cores)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="rounds of every case (versions interleaved in each round); the table shows medians")
    args = ap.parse_args()
    here = os.path.dirname(HERE)
    versions = [("this checkout", here)] + [("compared", os.path.abspath(c)) for c in args.compare]
    jobs = []          # (version, label, src, case, setting, run_case keywords without the cache folder)
    for label, src in versions:
        version = _label(src)
        # the cache rows and the compile-option rows only for this checkout: they measure choices, not versions
        cases = [("linear", "no persistent cache", {})]
        if label == "this checkout":
            for min_s in (0.2, 0.0):
                kw = dict(cache=f"cache{min_s}", min_s=min_s)
                cases += [("linear-first", f"cache ≥ {min_s} s, empty (first run ever)", kw),
                          ("linear-first", f"cache ≥ {min_s} s, warm (a later process)", kw)]
            cases.append(("linear-first", XLA_DEFAULTS, dict(xla_defaults=True)))
        if args.mlp:
            cases += [("mlp", "no persistent cache", {})]
            if label == "this checkout":
                cases += [("mlp", XLA_DEFAULTS, dict(xla_defaults=True)),
                          ("mlp", "cache ≥ 0.2 s, empty (first run ever)", dict(cache="cache-mlp")),
                          ("mlp", "cache ≥ 0.2 s, warm (a later process)", dict(cache="cache-mlp"))]
        jobs += [(version, label, src, *c) for c in cases]
    runs = {}          # (version, source, setting, what) -> list of measurements
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for version, label, src, case, setting, kw in jobs:
                kw = dict(kw)
                if "cache" in kw:        # a fresh folder per round: "empty" fills it, "warm" reads it
                    kw["cache"] = os.path.join(tmp, f"{kw['cache']}-{rep}")
                for what, r in run_case(src, case, **kw).items():
                    if what == "status":
                        continue
                    runs.setdefault((version, label, setting, what), []).append(r)
                    print(f"[{rep + 1}/{args.repeats}] {version:8s} {setting:45s} {what:55s} "
                          f"{r['backend_compiles']:4d} compiles {r['compile_s']:6.2f} s compiling, "
                          f"{r['cpu_s']:6.2f} s CPU, {r['wall_s']:6.2f} s wall", flush=True)
    rows = []
    for (version, label, setting, what), rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in ("backend_compiles", "compile_s", "cpu_s", "wall_s")}
        rows.append({"version": version, "source": label, "setting": setting, "what": what, **med,
                     "cpu_s_runs": [r["cpu_s"] for r in rs], "top": rs[0]["top"], **_breakdown(rs)})
    md = ["| version | setting | call | backend compilations | seconds compiling | CPU s | wall s | "
          "CPU s of each round |",
          "|---|---|---|---:|---:|---:|---:|---|"]
    md += [f"| {r['version']} | {r['setting']} | {r['what']} | {r['backend_compiles']:g} | {r['compile_s']:.2f} | "
           f"{r['cpu_s']:.2f} | {r['wall_s']:.2f} | {', '.join(f'{x:.2f}' for x in r['cpu_s_runs'])} |"
           for r in rows]
    env = environment()
    parts = [r for r in rows if r["source"] == "this checkout" and r["setting"] == "no persistent cache"
             and "again_cpu_s" in r]
    md += ["", "Where a first call's CPU goes (this checkout, no persistent cache; medians over the rounds). "
           "\"Running\": CPU seconds of a second identical call in the same process, when everything is "
           "compiled. Per program: seconds of tracing + lowering to MLIR + XLA's backend compile (wall time; "
           "XLA:CPU compiles on both cores, so the process's CPU counts compiling about twice).", "",
           "| call | CPU s, first | CPU s, running | programs: trace + lower + compile, s |", "|---|---:|---:|---|"]
    md += [f"| {r['what']} | {r['cpu_s']:.2f} | {r['again_cpu_s']:.2f} | " + "; ".join(
           f"`{f}` {st['trace']:.2f} + {st['lower']:.2f} + {st['compile']:.2f}"
           for f, st in sorted(r["programs"].items(), key=lambda kv: -sum(kv[1].values()))
           if sum(st.values()) >= 0.05) + " |" for r in parts]
    save("compile", env, rows, [f"# Compilations before a first result ({env})", "",
                                "Each case in a fresh process; diabetes (353 training rows), m = 20, default settings "
                                f"unless named. Versions and settings side by side: {args.repeats} round(s), every "
                                "case once per round, versions interleaved; numbers are medians over the rounds "
                                "(this shared machine's CPU times move by ±20 % between processes). \"cache ≥ s\": "
                                "`jd.enable_compilation_cache(dir, min_compile_time_s=s)` (only programs that took "
                                "at least s to compile are stored); \"warm\": a fresh process after the \"empty\" "
                                "one filled the folder.", "", *md, "", NOTE])


if __name__ == "__main__":
    main()
