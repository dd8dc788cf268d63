"""Data larger than memory (issue #12, benchmarks (b) and (c)).

Writes a float32 regression data set as two ``.npy`` files (X: n × d, Y: n × 1, Y = Xβ + noise), then,
each in a fresh process so that its peak resident memory (VmHWM) is its own:

* ``numpy read``: one pass of plain block reads of both files, nothing computed — the I/O limit;
* ``statistics``: ``jaxdistill.sufficient_statistics(NpySource(...))`` — standardisation, XᵀX, XᵀY, YᵀY;
* ``full-data objective``: ``jaxdistill.FullDataLoss.from_source(LinearModel(), NpySource(...))`` — the exact
  objective over all rows, checked at β (½σ² = 0.125 of the noise);
* ``analytic``: ``jaxdistill.distill_analytic(NpySource(...), None, m)`` — the KRR paper's distilled set of
  m points whose ridge model equals the full-data model, checked against the β that generated the data.

Rows are then n at a few sizes (peak memory against n) and one file larger than this machine's RAM.
The page cache is dropped before each pass where the OS allows it (root); otherwise files smaller than
RAM may be read from cache, so their rows/s is not a disk figure (the largest file never fits).

    python benchmarks/bench_data_on_disk.py --gb 30        # ~10 min on 2 cores, needs 31 GB of disk
    python benchmarks/bench_data_on_disk.py --quick        # small sizes only

Results: results/data_on_disk.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
D = 64
BLOCK = 1 << 16


def write_dataset(folder: str, n: int, seed: int = 0) -> tuple[str, str]:
    """X (n, D) float32 and Y (n, 1) float32 as .npy, written block by block (never whole in memory)."""
    xp, yp = os.path.join(folder, f"x_{n}.npy"), os.path.join(folder, f"y_{n}.npy")
    if os.path.exists(xp) and os.path.exists(yp):
        return xp, yp
    rng = np.random.default_rng(seed)
    beta = np.linspace(-1, 1, D).astype(np.float32)
    with open(xp + ".part", "wb") as fx, open(yp + ".part", "wb") as fy:
        np.lib.format.write_array_header_2_0(fx, {"descr": "<f4", "fortran_order": False, "shape": (n, D)})
        np.lib.format.write_array_header_2_0(fy, {"descr": "<f4", "fortran_order": False, "shape": (n, 1)})
        for i in range(0, n, BLOCK):
            r = min(BLOCK, n - i)
            X = rng.standard_normal((r, D), dtype=np.float32) * 2 + 1
            Y = X @ beta + 0.5 * rng.standard_normal(r, dtype=np.float32)
            fx.write(X.tobytes())
            fy.write(Y.astype(np.float32).tobytes())
    os.replace(xp + ".part", xp)
    os.replace(yp + ".part", yp)
    return xp, yp


WORKER = r"""
import json, sys, time
import numpy as np
task, xp, yp = sys.argv[1], sys.argv[2], sys.argv[3]
import jax
jax.config.update("jax_enable_x64", True)
import jaxdistill as jd
src = jd.NpySource(xp, yp)
t = time.perf_counter()
extra = {}
if task == "numpy read":
    total = 0.0
    for X, Y in src.blocks():         # the same reads, nothing computed but a checksum
        total += float(X[:1, :1].sum())
elif task == "statistics":
    st = jd.sufficient_statistics(src)
    beta = np.linspace(-1, 1, 64)
    # β in original units from the statistics: θ_std = (XsᵀXs)⁻¹XsᵀYs, β = θ_std · s_y / s_x
    theta = np.linalg.solve(st.FtF, st.FtY)[:, 0] * st.standardizer.y_scale[0] / st.standardizer.x_scale
    extra["max_abs_beta_error"] = float(np.max(np.abs(theta - beta)))
elif task == "full-data objective":
    obj = jd.FullDataLoss.from_source(jd.LinearModel(), src)     # rows as given: Y = Xβ + noise (σ = 0.5)
    extra["loss_at_beta"] = float(obj.value(np.linspace(-1, 1, 64)[:, None]))   # ½σ² = 0.125 expected
elif task == "analytic":
    out = jd.distill_analytic(src, None, 20, lam=0.0)
    beta = np.linspace(-1, 1, 64)
    Xt = np.random.default_rng(1).standard_normal((1000, 64)) * 2 + 1
    extra["max_abs_prediction_error_vs_beta"] = float(np.max(np.abs(out.predict(Xt)[:, 0] - Xt @ beta)))
    extra["status"] = out.status.value
wall = time.perf_counter() - t
peak = [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")][0] / 1024
print(json.dumps({"task": task, "n": src.n_rows, "wall_s": wall, "rows_per_s": src.n_rows / wall,
                  "peak_rss_mib": peak, **extra}))
"""


def drop_caches() -> bool:
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def run_task(task, xp, yp):
    dropped = drop_caches()
    env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    res = subprocess.run([sys.executable, "-c", WORKER, task, xp, yp], capture_output=True, text=True, env=env)
    if res.returncode:
        raise RuntimeError(res.stderr[-3000:])
    row = json.loads(res.stdout.strip().splitlines()[-1])
    row["cache_dropped"] = dropped
    row["file_gib"] = (os.path.getsize(xp) + os.path.getsize(yp)) / 2 ** 30
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=30.0, help="size of the largest data set on disk (GB)")
    ap.add_argument("--folder", default="/tmp/jaxdistill-bench-disk")
    ap.add_argument("--quick", action="store_true", help="small sizes only (no file larger than RAM)")
    ap.add_argument("--keep", action="store_true", help="keep the files")
    args = ap.parse_args()
    os.makedirs(args.folder, exist_ok=True)
    bytes_per_row = 4 * (D + 1)
    sizes = [100_000, 1_000_000, 10_000_000]
    if not args.quick:
        sizes.append(int(args.gb * 1e9 / bytes_per_row))
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    rows = []
    for n in sizes:
        t = time.perf_counter()
        xp, yp = write_dataset(args.folder, n)
        print(f"n = {n:,}: files written in {time.perf_counter() - t:.0f} s", flush=True)
        for task in ("numpy read", "statistics", "full-data objective", "analytic"):
            row = run_task(task, xp, yp)
            rows.append(row)
            print(json.dumps(row), flush=True)
        if not args.keep and n == sizes[-1] and not args.quick:
            os.remove(xp)
            os.remove(yp)
    write_results(rows, ram)


def write_results(rows, ram_gib):
    out = os.path.join(HERE, "results")
    with open(os.path.join(out, "data_on_disk.json"), "w") as f:
        json.dump({"machine_ram_gib": ram_gib, "cpu_count": os.cpu_count(), "d": D, "rows": rows}, f, indent=1)
    lines = ["# Data larger than memory: one streaming pass from .npy files", "",
             f"float32, d = {D}, one target; machine RAM {ram_gib:.1f} GiB, {os.cpu_count()} cores. Each cell is one "
             "fresh process; peak = VmHWM (peak resident memory, the Python interpreter and JAX included).", "",
             "| n rows | file GiB | task | wall s | rows/s | × numpy read | peak RSS MiB | check |",
             "|---:|---:|---|---:|---:|---:|---:|---|"]
    base = {r["n"]: r for r in rows if r["task"] == "numpy read"}
    for r in rows:
        check = ""
        if "max_abs_beta_error" in r:
            check = f"max abs error of β from the statistics {r['max_abs_beta_error']:.1e}"
        if "loss_at_beta" in r:
            check = f"L(β) = {r['loss_at_beta']:.5f} (½σ² = 0.125)"
        if "max_abs_prediction_error_vs_beta" in r:
            check = f"{r['status']}; 20-point set predicts like β to {r['max_abs_prediction_error_vs_beta']:.1e}"
        ratio = r["wall_s"] / base[r["n"]]["wall_s"]
        lines.append(f"| {r['n']:,} | {r['file_gib']:.2f} | {r['task']} | {r['wall_s']:.1f} | {r['rows_per_s']:.3g} | "
                     f"{ratio:.2f} | {r['peak_rss_mib']:.0f} | {check} |")
    dropped = all(r["cache_dropped"] for r in rows)
    lines += ["", "Page cache " + ("dropped before every pass." if dropped else
              "not dropped (needs root): files smaller than RAM may be served from memory, so their rows/s are not "
              "disk figures; the file larger than RAM cannot be.")]
    with open(os.path.join(out, "data_on_disk.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
