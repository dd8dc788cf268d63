"""The sufficient-statistics pass against numpy's float64 XᵀX of the same rows: time and peak memory.

    python benchmarks/bench_statistics.py                       # → results/statistics_pass.{md,json}
    python benchmarks/bench_statistics.py --compare /path/to/an/earlier/checkout

n = 10⁶ rows, d = 100, one target, float32 data in memory (385 MiB) and the same rows as a ``np.memmap`` of a
``.npy`` file. Each cell is a fresh process, cells interleaved, median of the repeats. "numpy XᵀX": the rows read
in the same blocks, converted to float64 and multiplied ``Z.T @ Z`` — the least any exact float64 pass does.
"jaxdistill": ``jd.sufficient_statistics(jd.ArraySource(X, Y))`` (mean, centred cross-products, column range,
non-finite check). Memory: the peak resident size over the resident size just before the pass (the data
already loaded, or mapped and not yet read), in MiB, and as a multiple of the data. Then the peak memory of a
whole ``distill()`` and ``evaluate()`` on the same rows.
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
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
def reset_peak():                      # peak resident size counts from here (Linux ≥ 4.0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
import jaxdistill as jd
from jaxdistill._src.data.sources import BLOCK_ROWS
what, where, path = sys.argv[2], sys.argv[3], sys.argv[4]
Xa, Ya = np.load(path + "_x.npy", mmap_mode="r"), np.load(path + "_y.npy", mmap_mode="r")
if where == "memory":
    Xa, Ya = np.array(Xa), np.array(Ya)
n, d = Xa.shape
kw = dict(m=20, steps=200, progress=False)
if what in ("distill", "evaluate"):   # compile what does not depend on n first: the peak is the data path's
    small = (Xa[:2000], Ya[:2000])
    out = jd.distill(*small, **kw)
    if what == "evaluate":
        jd.evaluate(out, small[0][:500], small[1][:500], *small)
        out = jd.distill(Xa, Ya, **kw)
def numpy_pass():
    acc = np.zeros((d + 1, d + 1))
    for i in range(0, n, BLOCK_ROWS):
        Z = np.concatenate([Xa[i:i + BLOCK_ROWS], Ya[i:i + BLOCK_ROWS]], axis=1).astype(np.float64)
        acc += Z.T @ Z
reset_peak()
base = status("VmRSS:")
t0 = time.perf_counter()
second = None
if what == "distill":
    jd.distill(Xa, Ya, **kw)
elif what == "evaluate":
    jd.evaluate(out, Xa[:10000], Ya[:10000], Xa, Ya)
else:                 # the pass twice: the first is what a caller meets, the second runs on warmed-up memory
    run_pass = numpy_pass if what == "numpy" else lambda: jd.sufficient_statistics(jd.ArraySource(Xa, Ya))
    run_pass()
    t1 = time.perf_counter()
    run_pass()
    second = time.perf_counter() - t1
wall = (t1 - t0) if second is not None else time.perf_counter() - t0
print("RESULT " + json.dumps({"version": jd.__version__, "wall_s": wall, "second_s": second,
                              "peak_over_base": status("VmHWM:") - base, "data_bytes": Xa.nbytes + Ya.nbytes}))
"""


def run(src, what, where, path):
    p = subprocess.run([sys.executable, "-c", CHILD, src, what, where, path], capture_output=True, text=True)
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    if not line:
        raise RuntimeError(p.stderr[-3000:])
    return json.loads(line[0][7:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compare", default=None, help="an earlier checkout to measure beside this one")
    ap.add_argument("--compare-label", default="compared", help="what to call it in the table")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-calls", action="store_true", help="only the statistics pass, not distill()/evaluate()")
    args = ap.parse_args()
    import numpy as np
    srcs = [("this checkout", os.path.dirname(HERE))] + ([(args.compare_label, os.path.abspath(args.compare))]
                                                         if args.compare else [])
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rows")
        rng = np.random.default_rng(0)
        X = np.lib.format.open_memmap(path + "_x.npy", "w+", np.float32, (args.n, args.d))
        Y = np.lib.format.open_memmap(path + "_y.npy", "w+", np.float32, (args.n, 1))
        for i in range(0, args.n, 100_000):
            X[i:i + 100_000] = rng.standard_normal((min(100_000, args.n - i), args.d), dtype=np.float32)
            Y[i:i + 100_000] = X[i:i + 100_000, :5].sum(1, keepdims=True)
        X.flush()
        Y.flush()
        del X, Y
        cells = [(label, src, what, where) for where in ("memory", "memmap") for label, src in srcs
                 for what in ("numpy", "jaxdistill")]
        cells = [c for c in cells if not (c[0] != "this checkout" and c[2] == "numpy")]
        results = {c: [] for c in cells}
        for _ in range(args.repeats):
            for c in cells:
                r = run(c[1], c[2], c[3], path)
                results[c].append(r)
                print(c[0], c[2], c[3], f"{r['wall_s']:.3f} s, second {r['second_s']:.3f} s, "
                      f"peak +{r['peak_over_base'] / 2**20:.0f} MiB", flush=True)
        calls = []                       # one run each: evaluate on 10⁶ training rows takes about a minute
        if not args.skip_calls:
            for label, src in srcs:
                for what in ("distill", "evaluate"):
                    r = run(src, what, "memory", path)
                    calls.append({"version": r["version"], "source": label, "what": what, "wall_s": r["wall_s"],
                                  "peak_over_base_MiB": r["peak_over_base"] / 2**20,
                                  "data_MiB": r["data_bytes"] / 2**20})
                    print(label, what, f"{r['wall_s']:.1f} s, peak +{r['peak_over_base'] / 2**20:.0f} MiB", flush=True)
    rows = []
    for (label, _, what, where), rs in results.items():
        wall = statistics.median(r["wall_s"] for r in rs)
        peak = statistics.median(r["peak_over_base"] for r in rs)
        second = statistics.median(r["second_s"] for r in rs)
        rows.append({"version": rs[0]["version"], "source": label, "what": what, "where": where, "wall_s": wall,
                     "second_s": second,
                     "peak_over_base_MiB": peak / 2**20, "data_MiB": rs[0]["data_bytes"] / 2**20,
                     "repeats": len(rs)})
    for r in rows:
        ref = next(q for q in rows if q["what"] == "numpy" and q["where"] == r["where"])
        r["vs_numpy"] = r["wall_s"] / ref["wall_s"]
        r["second_vs_numpy"] = r["second_s"] / ref["second_s"]
    md = ["| version | rows | pass | first pass, wall s | × numpy XᵀX | second pass, wall s | × numpy XᵀX | "
          "peak over the resident size before, MiB | × data |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    name = {"numpy": "numpy XᵀX (float64)", "jaxdistill": "sufficient_statistics"}
    md += [f"| {r['version']} ({r['source']}) | {r['where']} | {name[r['what']]} | {r['wall_s']:.3f} | "
           f"{r['vs_numpy']:.2f} | {r['second_s']:.3f} | {r['second_vs_numpy']:.2f} | "
           f"{r['peak_over_base_MiB']:.0f} | {r['peak_over_base_MiB'] / r['data_MiB']:.2f} |"
           for r in rows]
    env = environment()
    save("statistics_pass", env, rows, [
        f"# The statistics pass against numpy's float64 XᵀX ({env})", "",
        f"n = {args.n:,} rows, d = {args.d}, one target, float32 ({rows[0]['data_MiB']:.0f} MiB). Each cell a "
        f"fresh process, cells interleaved, median of {args.repeats}. Each process runs its pass twice: the "
        "first is what a caller meets (its float64 temporaries are new memory from the OS), the second runs on "
        "memory the process has already touched; the ratios of the two differ by more than the code does. "
        "Memory: peak resident size over the "
        "resident size just before the pass (in memory: the data already loaded; memmap: mapped, not yet read — "
        "pages read from the map count as resident, so the memmap rows include the data themselves).", "", *md,
        *(["", "## Peak memory of a whole call on these rows (in memory)", "",
            "`jd.distill(X, Y, m=20, steps=200)` and `jd.evaluate(out, X[:10000], Y[:10000], X, Y)` (all baselines "
            "and coresets), each after the same calls on 2,000 rows compiled what does not depend on n; one run "
            "each. Peak resident size over the resident size before the call (the data already loaded).", "",
            "| version | call | wall s | peak over the resident size before, MiB | × data |",
            "|---|---|---:|---:|---:|",
            *[f"| {c['version']} ({c['source']}) | {c['what']} | {c['wall_s']:.1f} | {c['peak_over_base_MiB']:.0f} | "
              f"{c['peak_over_base_MiB'] / c['data_MiB']:.2f} |" for c in calls]] if calls else [])],
         calls=calls)


if __name__ == "__main__":
    main()
