"""Distillation for a nonlinear inner model (an MLP) on real data that ships offline.

    python benchmarks/bench_nonlinear.py            # writes benchmarks/results/nonlinear.{md,json}

Data sets: sunspots (yearly, 12 lags), autompg and diabetes (real tabular sets), Friedman #1
(synthetic, 2000 rows, noise 1). For each (80/20 split; time series unshuffled, the test set is the
last 20 %) and
m ∈ {10, 20, 50}: `distill(X, Y, m, model=FlaxModel(MLP), T=50, steps=2000)` — otherwise the
defaults (plain inner GD with η̃ capped at 0.9 × the GD bound of the MLP, per-step checkpointing, Adam on
X̃, Ỹ, the stopping rule on the training loss from fixed θ₀ draws, the best state returned) — then `evaluate`:

* distilled, T-step GD — the distilled set, T steps of GD with the learned η̃ (8 θ₀ draws);
* random subset, T-step GD — 10 random subsets of m training rows, each trained by the same procedure
  with its step size tuned on other training rows;
* full data, T-step GD — all training rows, the same procedure, step size tuned on a 20 % split;
* full data, 10·T-step GD — towards convergence (a reference, not the target).

MLP: d → 32 → 32 → 1, tanh (flax.linen). Targets of the issue: distilled ≥ 0.97 × the full data's
T-step R², and ≥ random subsets + 0.1, for m = 20 and 50 on two real data sets.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import warnings

import flax.linen as nn
import jax
import numpy as np
from sklearn.datasets import make_friedman1

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import jaxdistill as jd  # noqa: E402
from jaxdistill import datasets  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "results")
SETS = ("sunspots", "autompg", "diabetes", "friedman1")
#: measured and left out, with the reason (printed under the table)
LEFT_OUT = ("co2 is not in the table: its test set is the last 20 % of a rising series, above every training "
            "target, and a tanh MLP cannot extrapolate a trend — the full data trained the same way scores "
            "R² −3.0 (T steps) and −0.38 (10·T), distilled sets −1.3 to −2.1, while linear models reach 0.99 "
            "(`quality.md`). That measures extrapolation, not distillation.")
MS = (10, 20, 50)
T, STEPS = 50, 2000


class MLP(nn.Module):
    width: int = 32

    @nn.compact
    def __call__(self, x):
        x = nn.tanh(nn.Dense(self.width)(x))
        x = nn.tanh(nn.Dense(self.width)(x))
        return nn.Dense(1)(x)


def load(name):
    if name == "friedman1":   # Friedman (1991) #1: y = 10 sin(πx₁x₂) + 20(x₃ − ½)² + 10x₄ + 5x₅ + ε, 5 noise inputs
        X, Y = make_friedman1(n_samples=2000, noise=1.0, random_state=0)
        return X, Y, False
    X, Y = datasets.load(name)
    return X, Y, name in datasets.TIME_SERIES


def main():
    rows = []
    for name in SETS:
        X, Y, ts = load(name)
        Xtr, Ytr, Xte, Yte = datasets.train_test_split(X, Y, 0.2, key=0, shuffle=not ts)
        for m in MS:
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = jd.distill(Xtr, Ytr, m=m, key=0, progress=False, model=jd.FlaxModel(MLP()), T=T, steps=STEPS)
            wall = time.perf_counter() - t0
            rep = jd.evaluate(out, Xte, Yte, Xtr, Ytr, n_subsets=10, n_inits=8,
                              last_value_column=-1 if ts else None)
            r2, run = {r["id"]: r["r2"] for r in rep.rows}, out.meta.bilevel
            row = {"dataset": name, "n_train": int(Xtr.shape[0]), "d": int(Xtr.shape[1]), "m": m,
                   "status": out.status.value, "steps_run": run.steps_run, "returned_step": run.returned_step,
                   "wall_s": wall, "eta": out.inner_lr, "max_eta_over_bound": float(np.nanmax(
                       out.history.stability_ratio)),
                   "r2_distilled": r2["distilled"], "r2_subset": r2["subset"],
                   "r2_full_T": r2["full"], "r2_full_10T": r2["full_long"],
                   "r2_naive": r2.get("naive"), "table": rep.to_markdown()}
            row["ratio_full_T"] = row["r2_distilled"] / row["r2_full_T"]
            row["gain_over_subset"] = row["r2_distilled"] - row["r2_subset"]
            rows.append(row)
            print(f"{name:10s} m={m:3d} {out.status:10s} steps {row['steps_run']:5d} {wall:6.1f}s  R² distilled "
                  f"{row['r2_distilled']:.3f} subset {row['r2_subset']:.3f} full(T) {row['r2_full_T']:.3f} "
                  f"full(10T) {row['r2_full_10T']:.3f}", flush=True)
    write(rows)


def write(rows):
    meet = lambda r: r["ratio_full_T"] >= 0.97 and r["gain_over_subset"] >= 0.1  # noqa: E731
    lines = ["# Distilling for an MLP inner model (held-out R², 80/20 split)", "",
             f"MLP d → 32 → 32 → 1 (tanh), T = {T} inner GD steps, Q = 8 θ₀ draws, budget {STEPS} outer steps "
             "(the stopping rule usually ends runs earlier); every other setting is `distill`'s default. "
             "Baselines are trained by the same T-step GD, each with its own step size tuned on training rows "
             "it did not fit. Generated by `python benchmarks/bench_nonlinear.py` "
             f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}, "
             f"backend {jax.default_backend()}).", "",
             "| data set | n_train | m | status | outer steps | wall s | distilled | random subset "
             "| full data, T steps | full data, 10·T steps | naive | distilled / full(T) | − subset | target met |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        naive = "" if r["r2_naive"] is None else f"{r['r2_naive']:.3f}"
        lines.append(f"| {r['dataset']} | {r['n_train']} | {r['m']} | {r['status']} | {r['steps_run']} | "
                     f"{r['wall_s']:.0f} | {r['r2_distilled']:.3f} | {r['r2_subset']:.3f} | {r['r2_full_T']:.3f} | "
                     f"{r['r2_full_10T']:.3f} | {naive} | {r['ratio_full_T']:.3f} | {r['gain_over_subset']:+.3f} | "
                     f"{'yes' if meet(r) else 'no'} |")
    target = [r for r in rows if r["m"] in (20, 50)]
    sets_ok = sorted({r["dataset"] for r in target
                      if all(meet(s) for s in target if s["dataset"] == r["dataset"])})
    lines += ["", LEFT_OUT]
    lines += ["", f"Target (m = 20 and 50: ≥ 0.97 × full data trained the same way, ≥ subset + 0.1 R²) met on "
              f"every m of: {', '.join(sets_ok) or 'none'} ({len(sets_ok)} of {len(SETS)} data sets; the issue asks "
              "for two).", "", "## Full tables", ""]
    for r in rows:
        lines += [f"### {r['dataset']}, m = {r['m']}", "", r["table"], ""]
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "nonlinear.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(OUT, "nonlinear.json"), "w") as f:
        json.dump({"T": T, "steps": STEPS, "rows": rows}, f, indent=1)
    print("\n".join(lines[:len(rows) + 8]))


if __name__ == "__main__":
    main()
