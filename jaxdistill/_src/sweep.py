"""Held-out error against the number of distilled points m: the first curve a researcher asks for.

[`error_vs_m`][jaxdistill.error_vs_m] distils the training data for every m (and seed), and scores on held-out data,
with [`evaluate`][jaxdistill.evaluate], the distilled set under its own training procedure, the best
random real subset of the same size (ridge or the same procedure, whichever is better on average),
the best coreset of the same size (leverage-score sample, k-means centroids, k-center rows: the best on
average), full-data ridge and the mean predictor. The result prints as a markdown table, saves as JSON and
plots as a PNG (test MSE against m, log–log, mean ± std over seeds).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings

import numpy as np

from jaxdistill._src.api import distill
from jaxdistill._src.core.validate import check_int, json_safe
from jaxdistill._src.report.coresets import KINDS
from jaxdistill._src.report.evaluate import evaluate


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """What [`error_vs_m`][jaxdistill.error_vs_m] returns; `summary` gives the mean and spread over seeds per m.

    Attributes:
      rows: one dict per (m, seed): test MSE / R² of the distilled set, the best random subset, the coreset (if
        asked) and the full data, and the run's status.
    """

    rows: list[dict]

    def summary(self) -> list[dict]:
        """Mean and std over seeds for each m."""
        out = []
        for m in sorted({r["m"] for r in self.rows}):
            rs = [r for r in self.rows if r["m"] == m]
            s = {"m": m, "seeds": len(rs), "statuses": sorted({r["status"] for r in rs}),
                 "coresets": sorted({r["coreset"] for r in rs if r.get("coreset")})}
            for k in ("distilled_mse", "subset_mse", "coreset_mse", "full_mse", "distilled_r2", "subset_r2",
                      "coreset_r2", "full_r2"):
                v = np.array([r.get(k, np.nan) for r in rs], dtype=float)
                s[k], s[k + "_std"] = float(v.mean()), float(v.std())
            out.append(s)
        return out

    def to_markdown(self) -> str:
        lines = ["| m | distilled MSE | random subset MSE (best procedure) | best coreset MSE | full data, ridge | "
                 "distilled R² | subset R² | coreset R² | status |", "|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for s in self.summary():
            pm = lambda k: f"{s[k]:.4g} ± {s[k + '_std']:.2g}" if s["seeds"] > 1 else f"{s[k]:.4g}"  # noqa: E731
            core = f" ({', '.join(s['coresets'])})" if s["coresets"] else ""
            lines.append(f"| {s['m']} | {pm('distilled_mse')} | {pm('subset_mse')} | {pm('coreset_mse')}{core} | "
                         f"{s['full_mse']:.4g} | {pm('distilled_r2')} | {pm('subset_r2')} | {pm('coreset_r2')} | "
                         f"{', '.join(s['statuses'])} |")
        return "\n".join(lines + self._learner_lines())

    def _learner_lines(self) -> list[str]:
        """With ``learners=``: each learner's held-out R² on the distilled set, a random subset and the best coreset,
        and its ratio to the same learner on all rows (means over seeds)."""
        names = list(dict.fromkeys(k for r in self.rows for k in r.get("learners", {})))
        if not names:
            return []
        out = ["", "Other learners trained on each set (held-out R²; in brackets the distilled set's ratio to the "
               "same learner on all rows):", "", "| m | learner | distilled set | random subset | best coreset | "
               "full data |", "|---:|---|---:|---:|---:|---:|"]
        for m in sorted({r["m"] for r in self.rows}):
            for name in names:
                got = [r["learners"][name] for r in self.rows if r["m"] == m and name in r.get("learners", {})]
                mean = {k: float(np.nanmean([g.get(k, np.nan) for g in got], dtype=float))
                        for k in ("distilled", "subset", "coreset", "full", "vs_full")}
                fmt = {k: "—" if not np.isfinite(v) else f"{v:.3f}" for k, v in mean.items()}
                ratio = f" ({fmt['vs_full']})" if np.isfinite(mean["vs_full"]) else ""
                out.append(f"| {m} | {name} | {fmt['distilled']}{ratio} | {fmt['subset']} | {fmt['coreset']} | "
                           f"{fmt['full']} |")
        return out

    def __str__(self) -> str:
        return self.to_markdown()

    def save(self, path) -> None:
        with open(path, "w") as f:
            json.dump(json_safe({"rows": self.rows, "summary": self.summary()}), f, indent=1, allow_nan=False)

    def plot(self, path=None, title: str | None = None):
        """Test MSE against m (log–log): distilled, best random subset, full-data ridge."""
        from matplotlib import ticker

        from jaxdistill._src.report.plots import _plt, _scale
        plt = _plt()
        s = self.summary()
        ms = np.array([r["m"] for r in s])
        fig, ax = plt.subplots(figsize=(6, 4))
        for key, label, style in (("distilled_mse", "distilled (own procedure)", "o-"),
                                  ("subset_mse", "random real subset (best procedure)", "s--"),
                                  ("coreset_mse", "best coreset", "^:")):
            mu, sd = np.array([r[key] for r in s]), np.array([r[key + "_std"] for r in s])
            if np.isfinite(mu).any():
                ax.errorbar(ms, mu, yerr=sd, fmt=style, capsize=3, label=label)
        ax.axhline(s[0]["full_mse"], color="k", lw=1, ls=":", label="full data, ridge")
        ax.set_xscale("log")
        ax.set_xticks(ms, [str(m) for m in ms])          # the m values themselves, not powers of ten
        ax.xaxis.set_minor_locator(ticker.NullLocator())
        shown = [np.array([r[k] for r in s]) for k in ("distilled_mse", "subset_mse", "coreset_mse")]
        _scale(ax, *shown, np.array([s[0]["full_mse"]]))   # log only where the errors span a factor 10
        ax.set_xlabel("m (points)")
        ax.set_ylabel("held-out MSE (original units)")
        ax.set_title(title or "held-out error against m", fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=100)
        return fig


def error_vs_m(X_train, Y_train, X_test, Y_test, ms, *, seeds=(0,), n_subsets: int = 10,
               last_value_column: int | None = None, progress=None, learners=None,
               **distill_kwargs) -> SweepResult:
    """Distil for every m in ``ms`` and seed in ``seeds``; score each on (X_test, Y_test).

    Args:
      X_train: training inputs in original units.
      Y_train: training targets.
      X_test: held-out inputs.
      Y_test: held-out targets.
      ms: the m values, each smaller than the number of training rows.
      seeds: the distillation keys (and the baselines' draws) per m.
      n_subsets: random subsets drawn per run for the baseline.
      last_value_column: for autoregressive windows, the input column holding y_{t−1} (adds the naive
        forecast).
      progress: called with a line of text after every run (e.g. ``print``).
      learners: other learners to train on every set, as for [`evaluate`][jaxdistill.evaluate] (``True``: the
        default list): each row then holds ``learners`` = {name: held-out R² on the distilled set, the random
        subsets, the best coreset and all rows, and the distilled set's ratio to all rows}.
      **distill_kwargs: passed to [`distill`][jaxdistill.distill] (``config=``, ``model=``, settings…).

    Returns:
      A [`SweepResult`][jaxdistill.SweepResult]: a row per (m, seed) with the distilled, best-coreset, subset
      and full-data scores, ``to_markdown()``, ``summary()`` and a figure.

    Raises:
      ValueError: an empty ``ms`` or an m not below the number of training rows.

    Examples:
      >>> import jaxdistill as jd
      >>> from jaxdistill import datasets
      >>> X, Y = datasets.load("diabetes")
      >>> Xtr, Ytr, Xte, Yte = datasets.train_test_split(X, Y, 0.2, key=0)
      >>> sweep = jd.error_vs_m(Xtr, Ytr, Xte, Yte, [2, 5], seeds=[0], n_subsets=2, steps=50)
      >>> [row["m"] for row in sweep.rows]
      [2, 5]
    """
    ms = [check_int("m", m, 1) for m in ms]
    if not ms:
        raise ValueError("ms must list at least one m, e.g. ms=[1, 5, 10, 20].")
    n = np.shape(X_train)[0]
    if max(ms) >= n:
        raise ValueError(f"Every m must be smaller than the number of training rows ({n}); got {max(ms)}.")
    rows = []
    for m in ms:
        for seed in seeds:
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                out = distill(X_train, Y_train, m=m, key=seed, progress=False, **distill_kwargs)
            wall = time.perf_counter() - t0
            rep = evaluate(out, X_test, Y_test, X_train, Y_train, key=seed, n_subsets=n_subsets, n_inits=4,
                           last_value_column=last_value_column, learners=learners)
            own = rep.row("distilled")
            subsets = [r for r in rep.rows if r["id"] in ("subset", "subset_ridge")]
            best = min(subsets, key=lambda r: r["mse"])
            full = rep.row("full")
            cores = [r for r in rep.rows if r["id"] in KINDS]
            core = min(cores, key=lambda r: r["mse"]) if cores else None
            rows.append({"m": m, "seed": int(seed), "status": out.status.value, "steps_run": out.meta.get("steps_run"),
                         "wall_s": wall, "distilled_mse": own["mse"], "distilled_r2": own["r2"],
                         "subset_mse": best["mse"], "subset_r2": best["r2"], "subset_procedure": best["method"],
                         "coreset": core["id"] if core else None, "coreset_mse": core["mse"] if core else None,
                         "coreset_r2": core["r2"] if core else None,
                         "full_mse": full["mse"], "full_r2": full["r2"], "lambda_inner": out.lambda_inner})
            if rep.learners:
                rows[-1]["learners"] = _learner_summary(rep.learners, core["id"] if core else None)
            if progress is not None:
                progress(f"m = {m:4d} seed {seed}: distilled MSE {own['mse']:.4g} (R² {own['r2']:.3f}, {out.status}), "
                         f"best random subset {best['mse']:.4g}, full data {full['mse']:.4g}  [{wall:.1f} s]")
    return SweepResult(rows)


def _learner_summary(learner_rows: list[dict], coreset: str | None) -> dict:
    """{learner: {"distilled", "subset", "coreset", "full": held-out R², "vs_full": the distilled set's ratio}}."""
    out = {}
    for r in learner_rows:
        mine = out.setdefault(r["learner"], {})
        key = {"distilled": "distilled", "subset": "subset", "full": "full"}.get(r["set"])
        if key is None and r["set"] == coreset:
            key = "coreset"
        if key is not None:
            mine[key] = r["r2"]
        if r["set"] == "distilled" and r["vs_full"] is not None:
            mine["vs_full"] = r["vs_full"]
    return out


def write_sweep(result: SweepResult, outdir, title: str | None = None) -> list[str]:
    """sweep.json, sweep.md and sweep.png (if matplotlib is installed) in ``outdir``: the measured rows first,
    so that nothing after them (a table, a figure) can lose them."""
    os.makedirs(outdir, exist_ok=True)
    paths = [os.path.join(outdir, "sweep.json"), os.path.join(outdir, "sweep.md")]
    result.save(paths[0])
    with open(paths[1], "w") as f:
        f.write((f"# {title}\n\n" if title else "") + result.to_markdown() + "\n")
    try:
        result.plot(os.path.join(outdir, "sweep.png"), title=title)
        paths.append(os.path.join(outdir, "sweep.png"))
    except ImportError:
        pass
    return paths
