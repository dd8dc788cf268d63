"""Full-data quality of `distill(X, Y, m)` with its defaults, on every bundled real data set.

    python benchmarks/bench_quality.py            # writes benchmarks/results/quality.{md,json}

For each data set (80/20 split; time series unshuffled, the test set is the last 20 %) and
m ∈ {k, 10, 20} (k = number of targets), two runs side by side in one process:

* **defaults** — `distill(X, Y, m=m)`: θ₀ = 0, the exact full-data objective (FullDataLoss), Adam on
  X̃, Ỹ, a 5000-step budget ended by the stopping rule, the best state returned;
* **0.2.0 defaults** — the previous release's: sampled batches of 128 (BatchLoss), plain gradient
  descent with lr 0.2, 1000 steps, no stopping rule, the last state returned (θ₀ = 0 already).

Reported: held-out R² of the distilled set under its own training procedure (T-step GD) against
full-data ridge, the best random-subset baseline (ridge or T-step GD, mean over 10 subsets), the
naive last-value forecast (time series) and the mean predictor; the status; the wall time (compilation
included, both runs in one process, 2 CPU cores) and the outer steps until the held-out loss is first
within 1 % of the held-out loss of the state the run returns.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import warnings

import jax
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import jaxdistill as jd  # noqa: E402
from jaxdistill import datasets  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "results")
SETS = ("diabetes", "digits", "randhie", "fair", "co2", "sunspots")
OLD = dict(steps=1000, lr_x=0.2, lr_y=0.2, outer_optimizer="sgd", objective="batch", patience=None,
           restore_best=False)


def time_to_target(out) -> tuple[float, int]:
    """(seconds, steps) until the held-out loss is first within 1 % of that of the returned state."""
    h = out.history
    v, t, steps = h["val_loss"], h["eval_time"], list(h["eval_step"])
    step = out.meta["returned_step"]
    final = v[steps.index(step)] if step in steps else v[-1]
    hit = np.flatnonzero(v <= final / 0.99)
    return (float(t[hit[0]]), int(steps[hit[0]])) if hit.size else (float("nan"), -1)


def one(name: str, m: int, Xtr, Ytr, Xte, Yte, ts: bool, settings: dict) -> dict:
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = jd.distill(Xtr, Ytr, m=m, key=0, progress=False, **settings)
    wall = time.perf_counter() - t0
    rep = jd.evaluate(out, Xte, Yte, Xtr, Ytr, n_subsets=10, n_inits=4, last_value_column=-1 if ts else None)
    r2 = {r["method"]: r["r2"] for r in rep.rows}
    t99, s99 = time_to_target(out)
    return {"status": out.status, "steps_run": out.meta["steps_run"], "wall_s": wall,
            "time_to_99_s": t99, "steps_to_99": s99, "compile_s": float(out.history["eval_time"][1]),
            "r2_distilled": r2["distilled, T-step GD"],
            "r2_distilled_ridge": r2["distilled, ridge"], "r2_full": r2["full data, ridge"],
            "r2_subset_best": max(r2["random subset, T-step GD"], r2["random subset, ridge"]),
            "r2_naive": r2.get("naive: last value"), "r2_mean": r2["mean of training targets"],
            "objective": out.meta["objective"].split("(")[0],
            "val_start": float(out.history["monitored"][0]),
            "val_returned": float(np.nanmin(out.history["monitored"])) if out.config.restore_best
            else float(out.history["monitored"][-1])}


def main():
    rows = []
    for name in SETS:
        X, Y = datasets.load(name)
        ts = name in datasets.TIME_SERIES
        Xtr, Ytr, Xte, Yte = datasets.train_test_split(X, Y, 0.2, key=0, shuffle=not ts)
        for m in sorted({Y.shape[1], 10, 20}):
            new = one(name, m, Xtr, Ytr, Xte, Yte, ts, {})
            old = one(name, m, Xtr, Ytr, Xte, Yte, ts, OLD)
            row = {"dataset": name, "n_train": len(Xtr), "d": X.shape[1], "k": Y.shape[1], "m": m,
                   "new": new, "old": old}
            bar = max(new["r2_subset_best"], new["r2_naive"] if new["r2_naive"] is not None else -np.inf)
            row["meets_097_full"] = bool(new["r2_distilled"] >= 0.97 * new["r2_full"])
            row["beats_baselines"] = bool(new["r2_distilled"] >= bar)
            row["speedup_vs_old"] = old["time_to_99_s"] / new["time_to_99_s"]
            row["step_ratio_vs_old"] = old["steps_to_99"] / max(new["steps_to_99"], 1)
            row["success_never_worse_than_start"] = bool(new["status"] not in jd.SUCCESS
                                                         or new["val_returned"] <= new["val_start"])
            rows.append(row)
            print(f"{name:9s} m={m:3d}  new R² {new['r2_distilled']:.4f} ({new['status']}, {new['steps_run']} steps, "
                  f"{new['time_to_99_s']:.2f}s)  old R² {old['r2_distilled']:.4f} ({old['time_to_99_s']:.2f}s)  "
                  f"full {new['r2_full']:.4f}  subset {new['r2_subset_best']:.4f}"
                  + (f"  naive {new['r2_naive']:.4f}" if ts else ""), flush=True)
    write(rows)


def write(rows):
    env = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
           "backend": jax.default_backend(), "jax": jax.__version__, "jaxdistill": jd.__version__}
    with open(os.path.join(OUT, "quality.json"), "w") as f:
        json.dump({"env": env, "rows": rows}, f, indent=1)
    f3 = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    lines = ["# Full-data quality of `distill(X, Y, m)` defaults (held-out R², 80/20 split)", "",
             f"`python benchmarks/bench_quality.py` — {env['cpus']} CPU cores, JAX {env['jax']} ({env['backend']}), "
             f"jaxdistill {env['jaxdistill']}. Both runs per row in one process; time = wall seconds, compilation "
             "included, until the held-out loss is within 1 % of the returned state's.", "",
             "| data | n_train | d | m | distilled (T-step GD) | ÷ full | full ridge | best random subset | naive | "
             "status, steps run | to 99 %: steps, s | 0.2.0 defaults: R², steps, s | ratio: steps, time |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        n, o = r["new"], r["old"]
        ok = ("" if r["meets_097_full"] else " ✗") + ("" if r["beats_baselines"] else " ✗b")
        lines.append(
            f"| {r['dataset']} | {r['n_train']} | {r['d']} | {r['m']} | {n['r2_distilled']:.3f}{ok} | "
            f"{n['r2_distilled'] / n['r2_full']:.3f} | {n['r2_full']:.3f} | {n['r2_subset_best']:.3f} | "
            f"{f3(n['r2_naive'])} | {n['status']}, {n['steps_run']} | {n['steps_to_99']}, {n['time_to_99_s']:.2f} s | "
            f"{o['r2_distilled']:.3f}, {o['steps_to_99']}, {o['time_to_99_s']:.2f} s | "
            f"{r['step_ratio_vs_old']:.1f}×, {r['speedup_vs_old']:.1f}× |")
    met = sum(r["meets_097_full"] for r in rows)
    beat = sum(r["beats_baselines"] for r in rows)
    sp = np.array([r["speedup_vs_old"] for r in rows])
    st = np.array([r["step_ratio_vs_old"] for r in rows])
    comp = np.array([r["new"]["compile_s"] for r in rows])
    lines += ["", f"- ≥ 0.97 × full-data ridge R²: {met}/{len(rows)} rows (✗ marks a miss).",
              f"- ≥ best random subset and ≥ naive forecast: {beat}/{len(rows)} rows (✗b marks a miss).",
              f"- time to 99 %, 0.2.0 defaults ÷ defaults: median {np.nanmedian(sp):.1f}×, "
              f"min {np.nanmin(sp):.1f}×, max {np.nanmax(sp):.1f}×; in outer steps: median {np.nanmedian(st):.1f}×, "
              f"min {np.nanmin(st):.1f}×, max {np.nanmax(st):.1f}×. Wall time here is mostly compilation "
              f"(first evaluation after {np.median(comp):.1f} s, median): the steps themselves take milliseconds.",
              f"- runs reporting success with a returned held-out loss worse than the start: "
              f"{sum(not r['success_never_worse_than_start'] for r in rows)}."]
    with open(os.path.join(OUT, "quality.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
