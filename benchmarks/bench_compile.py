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
from jaxdistill import datasets
case, cache, min_s = sys.argv[2], sys.argv[3], float(sys.argv[4])
if cache:
    jd.enable_compilation_cache(cache, min_compile_time_s=min_s)
if os.environ.get("BENCH_XLA_DEFAULTS"):
    jd.set_cpu_compile_options(None, None)

def measure(fn):
    events.clear()
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    compiles = [e for e in events if e[0] == "backend_compile_duration"]
    return out, {"backend_compiles": len(compiles),
                 "compile_s": round(sum(d for _, _, d in compiles), 3),
                 "cpu_s": round(time.process_time() - c0, 3), "wall_s": round(time.perf_counter() - w0, 3),
                 "top": collections.Counter(f for _, f, _ in compiles).most_common(4)}

X, Y = datasets.load("diabetes")
Xtr, Ytr, Xte, Yte = datasets.train_test_split(X, Y, 0.2, key=0)
res = {}
if case.startswith("linear"):        # "linear-first": only the first distill() and evaluate()
    out, res["first distill()"] = measure(lambda: jd.distill(Xtr, Ytr, m=20, key=0, progress=False))
    _, res["first evaluate()"] = measure(lambda: jd.evaluate(out, Xte, Yte, Xtr, Ytr, key=0))
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
                                                                 model=jd.FlaxModel(MLP()), steps=300))
    _, res["first evaluate(), MLP"] = measure(lambda: jd.evaluate(out, Xte, Yte, Xtr, Ytr, key=0))
print("RESULT " + json.dumps(res))
"""


XLA_DEFAULTS = "XLA's default options (jd.set_cpu_compile_options(None, None))"
NOTE = ("Since this version the library compiles its CPU programs with XLA's classic loop emitters and LLVM at "
        "level 1 (`jd.set_cpu_compile_options`; the row \"XLA's default options\" turns that off in the same "
        "run); what it costs and saves per program, side by side on one core: results/compile_options.md. "
        "Decision on the persistent cache: see docs/concepts.md (\"The persistent compilation cache\").")


def run_case(src: str, case: str, cache: str = "", min_s: float = 0.2, xla_flags: str = "",
             xla_defaults: bool = False) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("JAXDISTILL_CACHE", "XLA_FLAGS", "BENCH_XLA_DEFAULTS")}
    env["JAX_PLATFORMS"] = "cpu"
    if xla_defaults:
        env["BENCH_XLA_DEFAULTS"] = "1"
    if xla_flags:
        env["XLA_FLAGS"] = xla_flags
    res = subprocess.run([sys.executable, "-c", CHILD, src, case, cache, str(min_s)], capture_output=True,
                         text=True, env=env, timeout=1800)
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"{case} failed in {src}:\n{res.stderr[-3000:]}")
    return json.loads(line[7:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compare", action="append", default=[],
                    help="another checkout (an earlier version) to measure beside this; repeatable")
    ap.add_argument("--mlp", action="store_true", help="also the MLP case (minutes on 2 cores)")
    args = ap.parse_args()
    here = os.path.dirname(HERE)
    versions = [("this checkout", here)] + [("compared", os.path.abspath(c)) for c in args.compare]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, src in versions:
            version = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {src!r}); "
                                      "import jaxdistill; print(jaxdistill.__version__)"],
                                     capture_output=True, text=True).stdout.strip()
            commit = subprocess.run(["git", "-C", src, "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True).stdout.strip()
            dirty = subprocess.run(["git", "-C", src, "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True).stdout.strip()
            version = f"{version} ({commit}{' + uncommitted changes' if dirty else ''})" if commit else version
            # (case, setting, run_case keywords); the cache rows and the optimisation-level row only for this
            # checkout: they measure choices, not versions
            cases = [("linear", "no persistent cache", {})]
            if label == "this checkout":
                for min_s in (0.2, 0.0):
                    kw = dict(cache=os.path.join(tmp, f"cache{min_s}"), min_s=min_s)
                    cases += [("linear-first", f"cache ≥ {min_s} s, empty (first run ever)", kw),
                              ("linear-first", f"cache ≥ {min_s} s, warm (a later process)", kw)]
                cases.append(("linear-first", XLA_DEFAULTS, dict(xla_defaults=True)))
            if args.mlp:
                d = os.path.join(tmp, "cache-mlp")
                cases += [("mlp", "no persistent cache", {})]
                if label == "this checkout":
                    cases += [("mlp", XLA_DEFAULTS, dict(xla_defaults=True)),
                              ("mlp", "cache ≥ 0.2 s, empty (first run ever)", dict(cache=d)),
                              ("mlp", "cache ≥ 0.2 s, warm (a later process)", dict(cache=d))]
            for case, setting, kw in cases:
                for what, r in run_case(src, case, **kw).items():
                    if what == "status":
                        continue
                    rows.append({"version": version, "source": label, "setting": setting, "what": what, **r})
                    print(f"{version:8s} {setting:45s} {what:55s} {r['backend_compiles']:4d} compiles "
                          f"{r['compile_s']:6.2f} s compiling, {r['cpu_s']:6.2f} s CPU, {r['wall_s']:6.2f} s wall",
                          flush=True)
    md = ["| version | setting | call | backend compilations | seconds compiling | CPU s | wall s |",
          "|---|---|---|---:|---:|---:|---:|"]
    md += [f"| {r['version']} | {r['setting']} | {r['what']} | {r['backend_compiles']} | {r['compile_s']:.2f} | "
           f"{r['cpu_s']:.2f} | {r['wall_s']:.2f} |" for r in rows]
    env = environment()
    save("compile", env, rows, [f"# Compilations before a first result ({env})", "",
                                "Each case in a fresh process; diabetes (353 training rows), m = 20, default settings "
                                "unless named. Versions and settings side by side in one run. \"cache ≥ s\": "
                                "`jd.enable_compilation_cache(dir, min_compile_time_s=s)` (only programs that took "
                                "at least s to compile are stored); \"warm\": a fresh process after the \"empty\" "
                                "one filled the folder.", "", *md, "", NOTE])


if __name__ == "__main__":
    main()
