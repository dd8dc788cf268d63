"""Do distilled sets transfer to other learners? Exactness of moment sets, and other learners on every set.

    python benchmarks/bench_transfer.py [--sets diabetes,fair] [--draws 3]   # writes results/transfer.{md,json}

Every bundled data set, split 80/20 as ``datasets.split`` does (time series unshuffled, mnist5k per class).

**Part 1 — exact moments, read back from CSV.** ``distill_moments(Xtr, Ytr, m)`` at m = r + 1 (the smallest m:
r = the rank of the standardised [x, y] covariance, p + 1 for p features, one target and no constant column) and
m = 2(r + 1); the set is written with ``to_csv`` and read back with ``pandas.read_csv``; scikit-learn's
``LinearRegression``, ``Ridge(1)``, ``Lasso(α)`` and ``ElasticNet(α, l1_ratio=0.5)`` (α = 1 % of the data's α_max,
so that a tenth to all of the coefficients are non-zero) are fitted on it with its ``sample_weight`` column and on
all training rows. Reported: the largest relative coefficient difference max|Δcoef| / max|coef| (intercepts too)
and the largest |ΔR²| on the held-out rows, over the four learners — and, as the floor any set can reach, the same
differences between two fits on *all* training rows, one with the rows shuffled (the learner's own rounding: large
where its least-squares problem is ill-conditioned).

**Part 2 — learners that are not linear.** At m ∈ {10, 20, 50, 100} (below the training rows): scikit-learn's
``HistGradientBoostingRegressor``, ``KNeighborsRegressor`` (standardised inputs), ``SVR`` and ``MLPRegressor``
(standardised inputs and targets), as ``evaluate(..., learners=True)`` sets them up, trained on

* **distilled** — the moment set where m ≥ r + 1, else the default ``distill(Xtr, Ytr, m=m)`` set (procedure-bound,
  marked ``†``): what the library gives at that m;
* **random** — m random training rows (``--draws`` draws), **k-means** — k-means centroids with their clusters'
  mean targets (jaxdistill's coreset, ``--draws`` seeds), **herding** — kernel herding rows on the joint
  standardised [x, y] (deterministic below 3,000 training rows);
* **full** — all training rows.

Each small set's rows get weight n/m. Cells: held-out R² and, in brackets, the ratio to the same learner on all rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import _results  # noqa: E402

import jaxdistill as jd  # noqa: E402
from jaxdistill import datasets  # noqa: E402
from jaxdistill._src.report.learners import default_learners, learner_rows  # noqa: E402

SETS = ("diabetes", "digits", "synthetic", "randhie", "fair", "co2", "sunspots", "mnist5k", "autompg")
MS = (10, 20, 50, 100)
NONLINEAR = ("HistGradientBoosting", "KNeighbors", "SVR", "MLP")
SETS_2 = (("distilled", "distilled"), ("subset", "random"), ("kmeans", "k-means"), ("herding", "herding"))


def _split(name):
    X, Y = datasets.load(name)
    return datasets.split(name, X, Y, 0.2, key=0)


def _rank(Xtr, Ytr) -> int:
    """Rank of the standardised [x, y] covariance (numpy's tolerance; an independent count, not the library's)."""
    Z = np.hstack([Xtr, Ytr])
    Z = Z[:, Z.std(0) > 0]
    Z = (Z - Z.mean(0)) / Z.std(0)
    return int(np.linalg.matrix_rank(Z.T @ Z / len(Z)))


def _r2(pred, Y):
    pred = pred.reshape(Y.shape)
    return 1 - np.sum((pred - Y) ** 2) / np.sum((Y - Y.mean(0)) ** 2)


def exactness(name, Xtr, Ytr, Xte, Yte, folder):
    import pandas as pd
    from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, Ridge
    y = Ytr[:, 0] if Ytr.shape[1] == 1 else Ytr
    Xc, yc = Xtr - Xtr.mean(0), y - y.mean(0)
    alpha_max = float(np.max(np.abs(Xc.T @ yc))) / len(Xtr)
    learners = [LinearRegression(), Ridge(alpha=1.0), Lasso(alpha=0.01 * alpha_max, max_iter=10000),
                ElasticNet(alpha=0.02 * alpha_max, l1_ratio=0.5, max_iter=10000)]
    r = _rank(Xtr, Ytr)
    rows = []
    for m in (r + 1, 2 * (r + 1)):
        if m >= len(Xtr):
            continue
        t0 = time.perf_counter()
        out = jd.distill_moments(Xtr, Ytr, m=m)
        seconds = time.perf_counter() - t0
        path = os.path.join(folder, f"{name}_{m}.csv")
        out.to_csv(path)
        df = pd.read_csv(path)
        w = df.pop("sample_weight").to_numpy()
        _, yn = out.column_names()
        ys = df[yn].to_numpy()
        ys = ys[:, 0] if ys.shape[1] == 1 else ys
        Xs = df.drop(columns=yn).to_numpy()
        coef_err, r2_err, nonzero, floor, floor_r2, worst = 0.0, 0.0, [], 0.0, 0.0, {}
        perm = np.random.default_rng(0).permutation(len(Xtr))
        for est in learners:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                full = est.fit(Xtr, y)
                a = np.concatenate([np.ravel(full.coef_), np.ravel(full.intercept_)])
                r2_full = _r2(full.predict(Xte), Yte)
                shuffled = est.fit(Xtr[perm], y[perm])
                c = np.concatenate([np.ravel(shuffled.coef_), np.ravel(shuffled.intercept_)])
                floor = max(floor, float(np.max(np.abs(a - c)) / np.max(np.abs(a))))
                floor_r2 = max(floor_r2, abs(_r2(shuffled.predict(Xte), Yte) - r2_full))
                small = est.fit(Xs, ys, sample_weight=w)
                b = np.concatenate([np.ravel(small.coef_), np.ravel(small.intercept_)])
                r2_small = _r2(small.predict(Xte), Yte)
            worst[type(est).__name__] = float(np.max(np.abs(a - b)) / np.max(np.abs(a)))
            coef_err = max(coef_err, worst[type(est).__name__])
            r2_err = max(r2_err, abs(r2_small - r2_full))
            if isinstance(est, Lasso):
                nonzero.append(int(np.sum(np.ravel(full.coef_) != 0)))
        rows.append({"set": name, "m": m, "rank": r, "n_train": len(Xtr), "coef_rel_err": coef_err,
                     "r2_abs_diff": r2_err, "shuffled_coef_rel_err": floor, "shuffled_r2_abs_diff": floor_r2,
                     "lasso_nonzero": nonzero[0], "coefs": int(np.size(full.coef_)), "by_learner": worst,
                     "features": Xtr.shape[1], "ridge_svd_coef_rel_err": _ridge_svd(Xtr, y, Xs, ys, w)
                     if m < Xtr.shape[1] else None,
                     "moment_error": out.meta.get("moment_error"), "in_range": out.meta.get("in_range"),
                     "seconds": seconds})
        print(f"{name} m={m}: coef {coef_err:.1e}, R² {r2_err:.1e}", flush=True)
    return rows


def _ridge_svd(Xtr, y, Xs, ys, w) -> float:
    """Ridge(1) with scikit-learn's SVD solver, on all rows and on the set: with fewer rows than features its
    default solver switches to the dual (kernel) Cholesky form, another algorithm than on all rows."""
    from sklearn.linear_model import Ridge
    a = Ridge(alpha=1.0, solver="svd").fit(Xtr, y).coef_
    b = Ridge(alpha=1.0, solver="svd").fit(Xs, ys, sample_weight=w).coef_
    return float(np.max(np.abs(a - b)) / np.max(np.abs(a)))


def _standardise(Xtr, Ytr):
    mx, sx = Xtr.mean(0), np.where(Xtr.std(0) > 0, Xtr.std(0), 1.0)
    my, sy = Ytr.mean(0), np.where(Ytr.std(0) > 0, Ytr.std(0), 1.0)
    return (Xtr - mx) / sx, (Ytr - my) / sy, lambda a: a * sx + mx, lambda b: b * sy + my


def transfer(name, Xtr, Ytr, Xte, Yte, draws, learners):
    n, r = len(Xtr), _rank(Xtr, Ytr)
    Xs, Ys, x_back, y_back = _standardise(Xtr, Ytr)
    t0 = time.perf_counter()
    full, _ = learner_rows(learners, [("full", "full data", n, [(Xtr, Ytr, None)])], Xte, Yte)
    full = {row["learner"]: row["r2"] for row in full}
    print(f"{name}: full-data fits {time.perf_counter() - t0:.0f} s", flush=True)
    rows = []
    for m in MS:
        if m >= n // 2:
            continue
        w = np.full(m, n / m)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = (jd.distill_moments(Xtr, Ytr, m=m) if m >= r + 1 else jd.distill(Xtr, Ytr, m=m, key=0,
                                                                                  progress=False))
        rng = np.random.default_rng(0)
        subsets = [np.sort(rng.choice(n, m, replace=False)) for _ in range(draws)]
        kmeans = [jd.coresets.kmeans_centroids(Xs, Ys, m, np.random.default_rng(s)) for s in range(draws)]
        herd = jd.coresets.herding_rows(Xs, Ys, m, np.random.default_rng(0))
        sets = [("distilled", "distilled", m, [(out.X, out.Y, out.sample_weight)]),
                ("subset", "random", m, [(Xtr[i], Ytr[i], w) for i in subsets]),
                ("kmeans", "k-means", m, [(x_back(c), y_back(t), w) for c, t in kmeans]),
                ("herding", "herding", m, [(Xtr[herd], Ytr[herd], w)])]
        got, notes = learner_rows(learners, sets, Xte, Yte)
        for note in notes:
            print("  note:", note)
        for row in got:
            row.update(set_name=name, m=m, moments=out.transfers, full_r2=full[row["learner"]],
                       vs_full=row["r2"] / full[row["learner"]] if full[row["learner"]] > 0 else None)
        rows += got
        print(f"{name} m={m} ({'moments' if out.transfers else 'distill'}) done", flush=True)
    return rows


def tables(rows1, rows2, draws, env):
    lines = ["# Distilled sets in other learners", "",
             f"Machine: {env}. Command: `python benchmarks/bench_transfer.py`.", "",
             "## Exact moments, read back from CSV with pandas", "",
             "`distill_moments` at m = r + 1 and 2(r + 1) (r: rank of the standardised [x, y] covariance), exported "
             "with `to_csv`, read with `pandas.read_csv` and fitted with its `sample_weight` column; against the same "
             "learner fitted on all training rows. Worst of LinearRegression, Ridge(1), Lasso(1 % α_max), "
             "ElasticNet(2 % α_max, l1_ratio 0.5).", "",
             "| data set | n train | r | m | max rel. coef. difference | max abs. R² difference | the same, all "
             "rows shuffled (floor) | lasso non-zero / coefs | set values inside the data's range |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows1:
        rng = "—" if r["in_range"] is None else f"{100 * r['in_range']:.0f} %"
        lines.append(f"| {r['set']} | {r['n_train']} | {r['rank']} | {r['m']} | {r['coef_rel_err']:.1e} | "
                     f"{r['r2_abs_diff']:.1e} | {r['shuffled_coef_rel_err']:.1e}, {r['shuffled_r2_abs_diff']:.1e} | "
                     f"{r['lasso_nonzero']} / {r['coefs']} | {rng} |")
    worst = max(r["coef_rel_err"] for r in rows1), max(r["r2_abs_diff"] for r in rows1)
    over = [r for r in rows1 if r["coef_rel_err"] > 1e-8 or r["r2_abs_diff"] > 1e-9]
    lines += ["", f"Worst over all rows: coefficients {worst[0]:.1e} relative, R² {worst[1]:.1e} (the targets: "
              "1e-8 and 1e-9)."]
    for r in over:
        who = max(r["by_learner"], key=r["by_learner"].get)
        text = (f"Above the targets: {r['set']} at m = {r['m']}, {who} ({r['by_learner'][who]:.1e}; refitting all rows "
                f"in another order differs by {r['shuffled_coef_rel_err']:.1e}).")
        if who == "Ridge" and r["ridge_svd_coef_rel_err"] is not None:
            text += (f" With fewer rows than features (m = {r['m']} < {r['features']}) scikit-learn's Ridge solves "
                     "the set in its dual (kernel) Cholesky form, another algorithm than the primal solve on all "
                     "rows, and in raw pixel units the dual system is ill-conditioned; `Ridge(solver=\"svd\")` "
                     f"agrees to {r['ridge_svd_coef_rel_err']:.1e}.")
        lines.append(text)
    lines += ["", "## Learners that are not linear", "",
              f"Held-out R² (its ratio to the same learner on all training rows). random, k-means: mean over {draws} "
              "draws. distilled: the moment set where m ≥ r + 1, else the default `distill()` set, marked †, which "
              "is bound to its 50-step GD procedure. Best small set of each row in bold.", ""]
    for learner in NONLINEAR:
        mine = [r for r in rows2 if r["learner"] == learner]
        if not mine:
            continue
        lines += [f"### {learner}", "", "| data set | m | " + " | ".join(lbl for _, lbl in SETS_2) + " | full |",
                  "|---|---:|" + "---:|" * (len(SETS_2) + 1)]
        for name in dict.fromkeys(r["set_name"] for r in mine):
            for m in sorted({r["m"] for r in mine if r["set_name"] == name}):
                cell = {r["set"]: r for r in mine if r["set_name"] == name and r["m"] == m}
                best = max(cell[s]["r2"] for s, _ in SETS_2 if s in cell)
                cells = []
                for s, _ in SETS_2:
                    if s not in cell:
                        cells.append("—")
                        continue
                    c = cell[s]
                    txt = f"{c['r2']:.3f}" + (f" ({c['vs_full']:.2f})" if c["vs_full"] is not None else "")
                    txt = f"**{txt}**" if c["r2"] == best else txt
                    cells.append(txt + (" †" if s == "distilled" and not c["moments"] else ""))
                full = next(iter(cell.values()))["full_r2"]
                lines.append(f"| {name} | {m} | " + " | ".join(cells) + f" | {full:.3f} |")
        lines.append("")
    lines += _summary(rows2)
    return lines


def _summary(rows2):
    """Where the distilled set is the best small set, and where a coreset wins (counted per learner, set and m)."""
    keys = sorted({(r["learner"], r["set_name"], r["m"]) for r in rows2 if r["learner"] in NONLINEAR})
    wins = {"moments": [0, 0], "distill": [0, 0]}
    winner = {}
    for k in keys:
        cell = {r["set"]: r for r in rows2 if (r["learner"], r["set_name"], r["m"]) == k}
        if "distilled" not in cell:
            continue
        kind = "moments" if cell["distilled"]["moments"] else "distill"
        best = max(cell, key=lambda s: cell[s]["r2"])
        wins[kind][0] += best == "distilled"
        wins[kind][1] += 1
        winner[best] = winner.get(best, 0) + 1
    out = ["## Summary", ""]
    for kind, label in (("moments", "moment sets"), ("distill", "procedure-bound `distill()` sets (†)")):
        won, total = wins[kind]
        if total:
            out.append(f"- {label}: the best small set in {won} of {total} (learner, data set, m) cells.")
    out.append("- Best small set per cell, counted: " + ", ".join(f"{k} {v}" for k, v in
                                                                  sorted(winner.items(), key=lambda kv: -kv[1])) + ".")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--part", choices=["1", "2", "both"], default="both",
                    help="measure part 1 or 2 only, keeping the other part's rows from results/transfer.json")
    args = ap.parse_args()
    learners = {k: v for k, v in default_learners().items() if k in NONLINEAR}
    rows1, rows2 = [], []
    if args.part != "both":
        kept, _ = _results.load("transfer")
        rows1 = [r for r in kept if "coef_rel_err" in r] if args.part == "2" else []
        rows2 = [r for r in kept if "learner" in r] if args.part == "1" else []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.sets.split(","):
            Xtr, Ytr, Xte, Yte = _split(name)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)             # constant columns (digits, mnist5k)
                if args.part in ("1", "both"):
                    rows1 += exactness(name, Xtr, Ytr, Xte, Yte, folder)
                if args.part in ("2", "both"):
                    rows2 += transfer(name, Xtr, Ytr, Xte, Yte, args.draws, learners)
    env = _results.environment()
    _results.save("transfer", env, rows1 + rows2, tables(rows1, rows2, args.draws, env))


if __name__ == "__main__":
    main()
