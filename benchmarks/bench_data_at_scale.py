"""Data where it lives (issue #41): the statistics pass over a partitioned Parquet data set, in one process and on a
Dask LocalCluster, against the same rows as ``.npy`` files.

Writes a synthetic regression set of n rows × 100 float32 inputs and one float32 target (Y = Xβ + noise, columns at
mixed offsets and scales) twice: as a directory of Parquet files (one per ``PART_ROWS`` rows, row groups of 65,536)
and as two ``.npy`` files. Then, each in a fresh process so that its memory is its own, one pass of
``jaxdistill.sufficient_statistics`` over:

* ``npy, NpySource``: the two ``.npy`` files read by plain block reads;
* ``npy, memory map``: ``ArraySource`` over ``np.load(..., mmap_mode="r")``;
* ``Parquet, ParquetSource``: the directory, 100 feature columns and the target chosen by name;
* ``Parquet, Dask (k workers)``: ``dask.dataframe.read_parquet`` of the directory on a ``LocalCluster`` of k worker
  processes (one thread each) through ``DaskSource``: each partition reduced on its worker, the moments merged in a
  tree of tasks.

Peak memory is the anonymous resident memory (``RssAnon`` of ``/proc/PID/status``, sampled every 20 ms: the page
cache a memory map or file reads fill is not counted, the arrays a process allocates are), of the process that
runs the pass and, for Dask, the largest of its workers'. The files are read warm (the page cache holds them where
RAM allows: this measures decoding and arithmetic, not the disk). Agreement: the largest relative difference of each
pass's FᵀF from the ``npy, NpySource`` pass (different groupings of the same float64 sums).

    python benchmarks/bench_data_at_scale.py               # 10^7 rows: ~8 GB of disk, ~15 min on 2 cores
    python benchmarks/bench_data_at_scale.py --rows 500000 --repeats 1 --no-save   # a smoke run

Results: results/data_at_scale.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
D = 100
PART_ROWS = 500_000
ROW_GROUP = 65_536


def write_data(folder: str, n: int, seed: int = 0) -> float:
    """The Parquet directory and the two .npy files (written part by part, never whole in memory); seconds taken."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    done = os.path.join(folder, f"done_{n}")
    if os.path.exists(done):
        return float(open(done).read())
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(os.path.join(folder, "parquet"))
    t = time.perf_counter()
    rng = np.random.default_rng(seed)
    beta = np.linspace(-1, 1, D).astype(np.float32)
    offset = np.linspace(-50, 50, D).astype(np.float32)
    scale = np.geomspace(0.1, 10, D).astype(np.float32)
    names = [f"x{j:03d}" for j in range(D)]
    xp, yp = os.path.join(folder, "X.npy"), os.path.join(folder, "Y.npy")
    with open(xp, "wb") as fx, open(yp, "wb") as fy:
        np.lib.format.write_array_header_2_0(fx, {"descr": "<f4", "fortran_order": False, "shape": (n, D)})
        np.lib.format.write_array_header_2_0(fy, {"descr": "<f4", "fortran_order": False, "shape": (n, 1)})
        for k, i in enumerate(range(0, n, PART_ROWS)):
            r = min(PART_ROWS, n - i)
            X = rng.standard_normal((r, D), dtype=np.float32) * scale + offset
            Y = ((X - offset) / scale @ beta + 0.5 * rng.standard_normal(r, dtype=np.float32)).astype(np.float32)
            fx.write(X.tobytes())
            fy.write(Y.tobytes())
            table = pa.table({**{c: X[:, j] for j, c in enumerate(names)}, "y": Y})
            pq.write_table(table, os.path.join(folder, "parquet", f"part-{k:05d}.parquet"), row_group_size=ROW_GROUP)
    took = time.perf_counter() - t
    with open(done, "w") as f:
        f.write(str(took))
    return took


WORKER = r"""
import json, os, sys, threading, time
import numpy as np
task, folder, out = sys.argv[1], sys.argv[2], sys.argv[3]
peak = [0]
def rss_anon(pid="self"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0
def sample(stop, pids):
    while not stop.is_set():
        peak[0] = max(peak[0], rss_anon())
        for p in pids():
            worker_peak[p] = max(worker_peak.get(p, 0), rss_anon(p))
        time.sleep(0.02)
worker_peak = {}
pids = lambda: []
import jax
jax.config.update("jax_enable_x64", True)
import jaxdistill as jd
names = [f"x{j:03d}" for j in range(100)]
cluster = client = None
if task.startswith("dask"):
    from dask.distributed import Client, LocalCluster
    import dask.dataframe as dd
    k = int(task.split()[1])
    cluster = LocalCluster(n_workers=k, threads_per_worker=1, processes=True, dashboard_address=None,
                           memory_limit=None)
    client = Client(cluster)
    client.run(lambda: __import__("jaxdistill"))          # workers start warm: their import is not the pass
    pids = lambda: [w["pid"] if isinstance(w, dict) else w for w in client.run(os.getpid).values()]
    worker_pids = pids()
    pids = lambda: worker_pids
stop = threading.Event()
th = threading.Thread(target=sample, args=(stop, pids), daemon=True)
jax.devices()                      # the backend's own memory is not the pass's
base = rss_anon()
th.start()
t = time.perf_counter()
if task == "npy":
    src = jd.NpySource(os.path.join(folder, "X.npy"), os.path.join(folder, "Y.npy"))
elif task == "mmap":
    src = jd.ArraySource(np.load(os.path.join(folder, "X.npy"), mmap_mode="r"),
                         np.load(os.path.join(folder, "Y.npy"), mmap_mode="r"))
elif task == "parquet":
    src = jd.ParquetSource(os.path.join(folder, "parquet"), features=names, target="y")
elif task.startswith("files"):                      # the first k files only: memory against n
    k = int(task.split()[1])
    files = sorted(os.listdir(os.path.join(folder, "parquet")))[:k]
    src = jd.ParquetSource([os.path.join(folder, "parquet", f) for f in files], features=names, target="y")
else:
    ddf = dd.read_parquet(os.path.join(folder, "parquet"), columns=names + ["y"])
    src = jd.DaskSource(ddf, features=names, target="y")
st = jd.sufficient_statistics(src)
wall = time.perf_counter() - t
stop.set(); th.join()
np.save(out, st.FtF)
print(json.dumps({"wall_s": wall, "peak_anon_bytes": peak[0], "base_anon_bytes": base, "n": st.n,
                  "worker_peak_anon_bytes": max(worker_peak.values()) if worker_peak else None}))
if client is not None:
    client.close(); cluster.close()
"""

TASKS = [("npy", "npy, NpySource"), ("mmap", "npy, memory map"), ("parquet", "Parquet, ParquetSource"),
         ("dask 1", "Parquet, Dask (1 worker)"), ("dask 2", "Parquet, Dask (2 workers)")]


def run(task: str, folder: str, out: str) -> dict:
    got = subprocess.run([sys.executable, "-c", WORKER, task, folder, out], capture_output=True, text=True,
                         timeout=3600)
    if got.returncode != 0:
        raise RuntimeError(f"{task} failed:\n{got.stderr[-3000:]}")
    return json.loads(got.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeats", type=int, default=3, help="rounds, tasks interleaved (default 3)")
    ap.add_argument("--folder", default=os.path.join(os.path.expanduser("~"), ".cache", "jaxdistill_at_scale"))
    ap.add_argument("--no-save", action="store_true", help="print only (a smoke run)")
    args = ap.parse_args()
    folder = os.path.join(args.folder, str(args.rows))
    write_s = write_data(folder, args.rows)
    size = sum(os.path.getsize(os.path.join(folder, "parquet", f)) for f in os.listdir(os.path.join(folder, "parquet")))
    times = {t: [] for t, _ in TASKS}
    last = {}
    for r in range(args.repeats):
        for task, _ in TASKS:
            res = run(task, folder, os.path.join(folder, f"ftf_{task.replace(' ', '_')}.npy"))
            times[task].append(res)
            last[task] = res
            print(f"round {r}: {task}: {res['wall_s']:.2f} s, peak anon {res['peak_anon_bytes'] / 2**20:.0f} MiB",
                  flush=True)
    n_files = len(os.listdir(os.path.join(folder, "parquet")))
    growth = []
    for k in sorted({1, min(4, n_files), n_files}):
        res = run(f"files {k}", folder, os.path.join(folder, "ftf_files.npy"))
        growth.append({"files": k, "rows": res["n"], "wall_s": res["wall_s"],
                       "peak_anon_mib": (res["peak_anon_bytes"] - res["base_anon_bytes"]) / 2**20})
        print(f"{k} files: {res['n']} rows, peak anon {growth[-1]['peak_anon_mib']:.0f} MiB", flush=True)
    ref = np.load(os.path.join(folder, "ftf_npy.npy"))
    rows = []
    for task, label in TASKS:
        ftf = np.load(os.path.join(folder, f"ftf_{task.replace(' ', '_')}.npy"))
        walls = [x["wall_s"] for x in times[task]]
        peaks = [x["peak_anon_bytes"] - x["base_anon_bytes"] for x in times[task]]
        wpk = [x["worker_peak_anon_bytes"] for x in times[task] if x["worker_peak_anon_bytes"]]
        rows.append({"task": task, "label": label, "wall_s": walls, "median_wall_s": statistics.median(walls),
                     "rows_per_s": args.rows / statistics.median(walls),
                     "peak_anon_mib": statistics.median(peaks) / 2**20,
                     "worker_peak_anon_mib": statistics.median(wpk) / 2**20 if wpk else None,
                     "max_rel_diff_FtF": float(np.max(np.abs(ftf - ref)) / np.max(np.abs(ref)))})
    import _results
    base = rows[0]["median_wall_s"]
    data_gib = args.rows * (D + 1) * 4 / 2**30
    lines = [f"# Data at scale: the statistics pass over {args.rows:,} rows × {D} float32 inputs", "",
             f"{_results.environment()}. The rows are {data_gib:.2f} GiB as float32 (`.npy`), {size / 2**30:.2f} GiB "
             f"as Parquet ({-(-args.rows // PART_ROWS)} files of up to {PART_ROWS:,} rows, row groups of "
             f"{ROW_GROUP:,}, snappy), written in {write_s:.0f} s. Medians of {args.repeats} interleaved rounds, each "
             "pass in a fresh process (warm page cache). Memory: the peak anonymous resident memory above the "
             "process's own at the start (RssAnon, sampled every 20 ms), and for Dask the largest worker's peak.",
             "", "| pass | wall s (median) | ÷ NpySource | rows/s | peak anon MiB | worker peak anon MiB | FᵀF vs "
             "NpySource (rel.) |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        wp = "—" if r["worker_peak_anon_mib"] is None else f"{r['worker_peak_anon_mib']:.0f}"
        lines.append(f"| {r['label']} | {r['median_wall_s']:.2f} | {r['median_wall_s'] / base:.2f} | "
                     f"{r['rows_per_s']:.3g} | {r['peak_anon_mib']:.0f} | {wp} | {r['max_rel_diff_FtF']:.1e} |")
    lines += ["", "ParquetSource's peak memory against n (the first k files of the directory, one pass each, a fresh "
              "process each; measured once, so their times are single samples):", "",
              "| files | rows | wall s | peak anon MiB |", "|---:|---:|---:|---:|"]
    lines += [f"| {g['files']} | {g['rows']:,} | {g['wall_s']:.2f} | {g['peak_anon_mib']:.0f} |" for g in growth]
    q = D + 1
    per_part = (3 * q + q * q + 2 * q + 1) * 8
    lines += ["", "## 10⁹ rows on a cluster: the plan on paper", "",
              f"- **Bytes moved.** A partition's reduction is its `Moments`: the count, a shift, an offset and a mean "
              f"(3q), M (q²) and the column ranges (2q) for q = d + k = {q}: {per_part / 1024:.0f} KiB. 10⁹ rows in "
              f"partitions of 10⁶ rows are 1,000 partitions: {1000 * per_part / 2**20:.0f} MiB cross the network in "
              f"all, against {1e9 * q * 4 / 2**30:.0f} GiB of float32 rows that stay where they are. The feature-map "
              "pass adds p² + pk per partition (p = 1,000 features: 8 MB each).",
              "- **The merge.** A balanced tree of ⌈log₂ 1000⌉ = 10 levels of Chan's update (`Moments.merge`), "
              "each O(q²); the client receives one `Moments`. The shift/offset pair keeps each partition's mean to "
              "the offset's precision, so columns far from zero (1e8 + N(0, 1)) merge without loss (tested to "
              "1e-12 on a LocalCluster).",
              "- **float64 error growth.** Within a partition the sums are sequential over sub-blocks of 4,096 rows "
              "(10⁶ / 4,096 ≈ 244 additions of q × q matrices) and BLAS's own accumulation inside each: a worst-case "
              "relative bound of about (4,096 + 244) ε ≈ 1e-12, typically its square root, ~1e-14. The tree adds "
              "10 levels: 10 ε. The measured disagreement of the passes above (different groupings of the same "
              f"sums at {args.rows:,} rows) is the last column: "
              f"{max(r['max_rel_diff_FtF'] for r in rows):.1e} at most.",
              "- **Time.** The per-row cost is the decoding and one rank-4,096 update per sub-block; it divides over "
              "workers. On this 2-core machine, 2 workers share the 2 cores with the client and the scheduler; the "
              "ratio between the Dask rows is the scaling measured here, not a cluster's."]
    if not args.no_save:
        _results.save("data_at_scale", _results.environment(), rows, lines, n=args.rows, d=D, write_s=write_s,
                      parquet_bytes=size, memory_against_n=growth)
    else:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
