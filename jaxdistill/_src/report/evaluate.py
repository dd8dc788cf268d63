"""Held-out evaluation of a distilled set against honest baselines, using the result's own procedure.

Every model is fitted in the standardised space of the result and scored on held-out data in
original units (MSE and R²). Each row names the training procedure it used. For a result trained by
T steps of gradient descent (``distill`` with [`ExactLinearGD`][jaxdistill.ExactLinearGD] /
[`UnrolledGD`][jaxdistill.UnrolledGD]):

* ``distilled, T-step GD`` — T inner steps with the learned η̃ from fresh θ₀ ~ p(θ₀) (mean ± std
  over ``n_inits`` draws);
* ``distilled, ridge`` — the T → ∞ limit: ridge with λ_I on the distilled set (models linear in θ);
* ``random subset, T-step GD`` / ``random subset, ridge`` — m real training rows drawn at random,
  trained the same two ways (``n_subsets`` draws). A subset has no learned η̃; for linear models it
  uses half the stability bound of Lemma 2.4 of that subset;
* ``full data, ridge`` — ridge with λ_I on all training rows: what distillation tries to match;
* models not linear in θ (no ridge limit) instead get ``random subset, T-step GD`` with the step size
  tuned per subset, ``full data, T-step GD`` (the same procedure on all training rows: what
  distillation tries to match) and ``full data, 10·T-step GD`` (towards convergence). Each step size is
  the best of ``STEP_GRID`` × that training set's GD bound (``InnerModel.gd_stability_bound``), chosen
  on training rows it was not fitted on — never on the test rows;
* ``full data, ridge-CV`` (models linear in θ) — ridge on all training rows with λ chosen by generalised
  cross-validation on them (``problem/ridge_cv.py``): the best model the rows support, whatever λ_I the run used;
* coresets (``coresets=``, models linear in θ and exact procedures): ``leverage`` (ridge leverage-score
  sample), ``kmeans`` (k-means centroids with their clusters' mean targets), ``kcenter`` (greedy k-center rows)
  — m points each, trained by the same procedure as the random subsets (unweighted), over ``n_coreset_draws``
  seeds (``report/coresets.py``);
* ``mean of training targets`` — the constant predictor (R² ≈ 0): the floor any model must beat;
* ``naive: last value`` (with ``last_value_column``, for autoregressive windows) — the forecast
  "next value = the last observed one", read from that input column.

For exact procedures (a [`KernelRidge`][jaxdistill.KernelRidge] run, an analytic set) the rows are ``distilled``,
``random subset`` and ``full data`` with that procedure (for analytic sets the full-data row is the
original ridge model with its own λ).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxdistill._src.components.models import draw_inits
from jaxdistill._src.core.jit import jit
from jaxdistill._src.core.keys import as_key, concat, fold_in, key_to_list, permutation, split, split2
from jaxdistill._src.core.linalg import default_inner_lr, ridge, ridge_from_cross_products
from jaxdistill._src.core.validate import check_int
from jaxdistill._src.data.arrays import StandardRows, TrainFeatures, as_2d_float, check_squarable, on_device
from jaxdistill._src.inner.base import Support, predict_after_training
from jaxdistill._src.problem.ridge_cv import choose_ridge
from jaxdistill._src.report.coresets import CORESETS, KINDS, LABELS, coreset_draws
from jaxdistill._src.report.learners import as_learners, learner_markdown, learner_rows
from jaxdistill._src.result import DistillOutput

#: stable ids of the rows (what code should address rows by; the ``method`` labels are for readers)
ROW_IDS = ("distilled", "distilled_ridge", "subset", "subset_ridge", "leverage", "kmeans", "kcenter", "herding", "full",
           "full_cv", "full_long", "mean", "naive")


@dataclasses.dataclass(frozen=True)
class EvalReport:
    """Rows on held-out data, in original units: each a dict with ``id`` (stable, one of `ROW_IDS`),
    ``method`` (a label for readers), ``points``, ``procedure``, ``mse`` / ``mse_std``, ``r2`` / ``r2_std`` and
    ``loss`` (½ MSE in standardised units, the run's held-out curve). ``notes``: how λ_I was set, and what was
    left out."""

    rows: list[dict]
    m: int
    n_train: int
    n_test: int
    notes: list[str] = dataclasses.field(default_factory=list)
    #: other learners trained on each set (``evaluate(..., learners=...)``): dicts with ``learner``, ``set`` (a row
    #: id), ``method``, ``points``, ``mse`` / ``mse_std``, ``r2`` / ``r2_std``, ``vs_full`` and ``weighted``
    learners: list[dict] = dataclasses.field(default_factory=list)
    #: row id → the row's held-out predictions in original units, (n_test, k), averaged over its draws: what
    #: [`plot_predictions`][jaxdistill.plots.plot_predictions] draws as baselines (not part of ``to_dict``)
    predictions: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def row(self, row_id: str) -> dict:
        """The row with this id (``"distilled"``, ``"subset"``, ``"full"``, ``"mean"``, …)."""
        for r in self.rows:
            if r["id"] == row_id:
                return r
        raise KeyError(f"No row {row_id!r}; this report's rows are {[r['id'] for r in self.rows]}.")

    @property
    def ids(self) -> list[str]:
        return [r["id"] for r in self.rows]

    def to_dict(self) -> dict:
        """A JSON-friendly dict: ``m``, ``n_train``, ``n_test``, ``rows`` (a list of dicts), ``notes`` and, with
        ``learners=``, ``learners`` (a list of dicts)."""
        d = {"m": self.m, "n_train": self.n_train, "n_test": self.n_test, "rows": [dict(r) for r in self.rows],
             "notes": list(self.notes)}
        if self.learners:
            d["learners"] = [dict(r) for r in self.learners]
        return d

    def to_json(self, **kwargs) -> str:
        import json
        return json.dumps(self.to_dict(), **kwargs)

    def to_pandas(self):
        """The rows as a ``pandas.DataFrame`` indexed by ``id`` (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("EvalReport.to_pandas needs pandas: pip install pandas.") from None
        return pd.DataFrame(self.rows).set_index("id")

    def to_markdown(self) -> str:
        out = [f"Held-out results (m = {self.m}, n_train = {self.n_train}, n_test = {self.n_test})", "",
               "| method | points | trained by | test MSE | test R² |", "|---|---:|---|---:|---:|"]
        for r in self.rows:
            pm = lambda mu, sd: f"{mu:.4g}" if not sd else f"{mu:.4g} ± {sd:.2g}"  # noqa: E731
            out.append(f"| {r['method']} | {r['points']} | {r['procedure']} | {pm(r['mse'], r['mse_std'])} | "
                       f"{pm(r['r2'], r['r2_std'])} |")
        if self.learners:
            out += [""] + learner_markdown(self.learners)
        if self.notes:
            out += [""] + [f"- {note}" for note in self.notes]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.to_markdown()


def _scores(pred, Y):
    """MSE (mean over rows and outputs) and R² = 1 − SSE/SST (pooled over outputs; NaN if SST = 0)."""
    sse = np.sum((pred - Y) ** 2)
    sst = np.sum((Y - Y.mean(axis=0)) ** 2)
    return sse / Y.size, (1.0 - sse / sst) if sst > 0 else float("nan")


def evaluate(out: DistillOutput, X_test, Y_test, X_train=None, Y_train=None, *, key=0, n_inits: int = 32,
             n_subsets: int = 20, last_value_column: int | None = None, coresets: Sequence[str] = CORESETS,
             n_coreset_draws: int = 5, learners=None, n_learner_draws: int = 5) -> EvalReport:
    """Compare the distilled set with a random real subset of the same size and the full data.

    Args:
      out: a [`DistillOutput`][jaxdistill.DistillOutput] (from [`distill`][jaxdistill.distill] or
        [`distill_analytic`][jaxdistill.distill_analytic]): its model, inner solver and training procedure are used.
      X_test: held-out inputs in original units (never seen by distillation), at least 2 rows.
      Y_test: held-out targets matching ``X_test``.
      X_train: the training inputs in original units, for the baselines (optional: without them only the
        distilled rows are reported).
      Y_train: the training targets matching ``X_train``.
      key: key or seed for θ₀ draws and subset draws.
      n_inits: θ₀ draws per T-step-GD evaluation.
      n_subsets: random subsets drawn for the baseline.
      last_value_column: for autoregressive windows (``datasets.ar_windows``: the last column is
        y_{t−1}), the input column holding the last observed value: adds the naive forecast row.
      coresets: coreset baselines to add (any of ``"leverage"``, ``"kmeans"``, ``"kcenter"``, ``"herding"``;
        default the first three; ``()`` for none),
        for models linear in θ and exact procedures (nonlinear models would need each one's step size tuned).
      n_coreset_draws: seeds per coreset (each row is the mean ± std over them).
      learners: other learners to train on the distilled set (with its weights), on the random subsets and
        coresets above and on all training rows: ``True`` for the default list (scikit-learn's LinearRegression,
        RidgeCV, HistGradientBoostingRegressor, and k-NN, SVR and an MLP on standardised inputs), or scikit-learn
        estimators (a list, or a dict by name). Their held-out scores and ratios
        to their own full-data score are ``report.learners`` and a second table. Needs ``X_train``.
      n_learner_draws: of the random subsets and coreset draws, how many each learner is trained on.

    Returns:
      An [`EvalReport`][jaxdistill.EvalReport]; ``print(report)`` shows a markdown table.

    Raises:
      ValueError: test or training rows that do not match the inputs the set was distilled from (columns,
        names, target shape), or non-finite values; the message names them.

    Examples:
      >>> import jaxdistill as jd
      >>> from jaxdistill import datasets
      >>> X, Y = datasets.load("diabetes")
      >>> Xtr, Ytr, Xte, Yte = datasets.train_test_split(X, Y, 0.2, key=0)
      >>> out = jd.distill(Xtr, Ytr, m=10, key=0, steps=200, progress=False)
      >>> report = jd.evaluate(out, Xte, Yte, Xtr, Ytr, n_subsets=3, coresets=("kmeans",))
      >>> report.ids
      ['distilled', 'distilled_ridge', 'subset', 'subset_ridge', 'kmeans', 'full', 'full_cv', 'mean']
      >>> report.row("distilled")["r2"] > report.row("mean")["r2"]
      True
    """
    if not isinstance(out, DistillOutput):
        raise ValueError(f"evaluate needs a DistillOutput (from distill, distill_analytic or jaxdistill.load), got "
                         f"{type(out).__name__}.")
    n_inits = check_int("n_inits (θ₀ draws per evaluation)", n_inits, 1)
    n_subsets = check_int("n_subsets (random subsets of the baseline)", n_subsets, 1)
    n_coreset_draws = check_int("n_coreset_draws (seeds per coreset)", n_coreset_draws, 1)
    n_learner_draws = check_int("n_learner_draws (draws each learner is trained on)", n_learner_draws, 1)
    learners = as_learners(learners)
    if learners and X_train is None:
        raise ValueError("learners= compares each learner on the distilled set with the same learner on baselines "
                         "and on all training rows: pass X_train and Y_train too.")
    coresets = (coresets,) if isinstance(coresets, str) else tuple(coresets)
    unknown = [c for c in coresets if c not in KINDS]
    if unknown:
        raise ValueError(f"Unknown coreset(s) {unknown}; coresets are {list(KINDS)} (or () for none).")
    if last_value_column is not None:
        last_value_column = check_int("last_value_column", last_value_column, -out.x.shape[1])
        if last_value_column >= out.x.shape[1]:
            raise ValueError(f"last_value_column = {last_value_column} is not a column of the {out.x.shape[1]} inputs.")
    key = as_key(key)
    std = out.standardizer
    X_test, Y_test = out.schema.match_pair(X_test, Y_test, ("X_test", "Y_test"))
    if X_train is not None:
        X_train, Y_train = out.schema.match_pair(X_train, Y_train, ("X_train", "Y_train"))
    Xte = as_2d_float("X_test", X_test, allow_1d=False)
    Yte = as_2d_float("Y_test", Y_test, allow_1d=True)
    if Xte.shape[0] != Yte.shape[0]:
        raise ValueError(f"X_test has {Xte.shape[0]} rows but Y_test has {Yte.shape[0]}.")
    if Xte.shape[0] < 2:
        raise ValueError("The test set needs at least 2 rows for R² (it is undefined on one row).")
    d, d_out = out.x.shape[1], out.y.shape[1]
    checks = [("X_test", Xte, d), ("Y_test", Yte, d_out)]
    if X_train is not None:
        if Y_train is None:
            raise ValueError("X_train was given without Y_train; pass both (or neither) for the baselines.")
        Xtr = as_2d_float("X_train", X_train, allow_1d=False)
        Ytr = as_2d_float("Y_train", Y_train, allow_1d=True)
        if Xtr.shape[0] != Ytr.shape[0]:
            raise ValueError(f"X_train has {Xtr.shape[0]} rows but Y_train has {Ytr.shape[0]}; pass the same rows.")
        checks += [("X_train", Xtr, d), ("Y_train", Ytr, d_out)]
    for name, a, c in checks:
        if a.shape[1] != c:
            raise ValueError(f"{name} has {a.shape[1]} columns; the distilled set has {c}.")
    dt = jnp.result_type(float)
    mdl, slv, lam = out.model, out.inner_solver, out.lambda_inner
    Xte_s, Yte_s = std.x(Xte), std.y(Yte)
    check_squarable((("X_test", Xte_s), ("Y_test", Yte_s)), dt, "test", "its loss and R² would be inf or NaN",
                    "drop it from the test set")
    Fte = mdl.featurize(on_device(Xte_s, dt))
    rows, predictions = [], {}

    def add(row_id, method, points, procedure, preds):
        if isinstance(preds, jax.Array):            # to the host first: iterating a device array compiles `unstack`
            preds = np.asarray(preds)
        orig = [std.y_inverse(np.asarray(p, np.float64)) for p in preds]
        s = np.array([_scores(p, Yte) for p in orig])
        predictions[row_id] = np.mean(orig, axis=0)
        # the loss the run's held-out curve shows: ½ mean squared error per row, standardised units
        half = float(np.mean([0.5 * np.sum((np.asarray(p, np.float64) - Yte_s) ** 2) / Yte.shape[0] for p in preds]))
        rows.append({"id": row_id, "method": method, "points": points, "procedure": procedure,
                     "mse": float(s[:, 0].mean()), "mse_std": float(s[:, 0].std()),
                     "r2": float(s[:, 1].mean()), "r2_std": float(s[:, 1].std()), "loss": half})

    def train_predict(F, Y, eta, th0s, F_eval=None, steps=None):
        """Predictions (Q, rows, d_out) on F_eval (default: the test rows) after ``steps`` (default T)."""
        steps = out.T or 0 if steps is None else steps
        return predict_after_training(mdl, slv, F, Y, eta, lam, th0s, steps, Fte if F_eval is None else F_eval,
                                      steps)

    k_gd, k_sub = split2(key)
    Fd, Yd = mdl.featurize(on_device(out.x, dt)), on_device(out.y, dt)
    no_theta0 = np.zeros((1, Fd.shape[1], d_out), dt)   # exact procedures ignore θ₀; same shape as predict's
    gd, linear = out.uses_gd, mdl.linear_in_params
    if gd:
        eta = on_device(out.inner_lr, dt)
        add("distilled", "distilled, T-step GD", out.m, out.procedure(), train_predict(Fd, Yd, eta, draw_inits(
            mdl, k_gd, Fd, d_out, n_inits)))
        if linear:
            add("distilled_ridge", "distilled, ridge", out.m, out.procedure(limit=True),
                [out.predict_standardized(Fte, limit=True)])
    else:
        add("distilled", "distilled", out.m, out.procedure(), [out.predict_standardized(Fte)])
    notes = _lambda_notes(out) + _transfer_notes(out, rows)
    if X_train is None:
        return EvalReport(rows=rows, m=out.m, n_train=0, n_test=Xte.shape[0], notes=notes, predictions=predictions)

    # the training rows are read block by block: standardised, checked, cast to the compute dtype and featurised
    # on demand (TrainFeatures). Models linear in θ never hold the features of all rows: the full-data rows come
    # from float64 cross products FᵀF, FᵀY of one pass, the subsets and coresets gather only their own rows.
    Ytr_s = std.y(Ytr)
    remedy = "drop it from the training rows given to evaluate"
    check_squarable((("Y_train", Ytr_s),), dt, "training", "the baselines would be inf or NaN", remedy)
    Xtr_s = StandardRows(Xtr, std)
    Ftr = TrainFeatures(mdl, Xtr_s, dt)
    n_tr = Xtr.shape[0]
    if out.m > n_tr:
        raise ValueError(f"The training data given has {n_tr} rows, fewer than the {out.m} distilled points.")
    exact_full = not gd and linear and slv.kernel is None
    whole = not linear or not (gd or exact_full)      # these baselines train on all rows at once
    G, C, F_all = Ftr.first_pass(Ytr_s, remedy, keep=whole)
    k_core = fold_in(key, 7)                       # coresets' seeds: the subsets' draws stay as they were
    subset_rows, core = [], []                     # the sets drawn, for the other learners (``learners=``)
    if gd and not linear:
        _nonlinear_baselines(add, out, on_device(F_all, dt), on_device(Ytr_s, dt), Fte, k_sub, n_subsets, n_inits)
        if learners:
            subset_rows = [i for i, _ in _subsets(fold_in(key, 11), min(n_subsets, n_learner_draws), n_tr, out.m)]
        if coresets:
            notes.append("Coreset rows are not computed for models not linear in θ (each would need its step size "
                         "tuned, as the random subsets do).")
    elif gd:
        idx, kgs = zip(*_subsets(k_sub, n_subsets, n_tr, out.m), strict=True)
        picked = np.stack(idx)                        # (subsets, m): one gather, one featurisation
        subset_rows = list(idx)
        Fs, Ys, ks, kinds = [Ftr[picked]], [Ytr_s[picked]], [k[None] for k in kgs], []
        core = list(_coreset_sets(coresets, Xtr_s, Ytr_s, Ftr, out.m, float(lam), k_core, n_coreset_draws, G))
        for kind, (Xs, Yc) in core:
            Fs.append(Ftr.featurize(Xs))
            Ys.append(Yc)
            ks.append(split(k_core, Xs.shape[0]))
            kinds.append((kind, Xs.shape[0]))
        gd_preds, ridge_preds = (np.asarray(a) for a in _linear_gd_sets(
            mdl, slv, on_device(np.concatenate(Fs), dt), on_device(np.concatenate(Ys), dt), Fte, concat(ks),
            n_draws=max(1, n_inits // 4), T=out.T, lam=float(lam)))
        sub_proc = f"{out.T} GD steps, η̃ = ½ bound of Lemma 2.4 for that set, {mdl.init_description}"
        k = len(idx)
        add("subset", "random subset, T-step GD", out.m, sub_proc, gd_preds[:k].reshape(-1, Fte.shape[0], d_out))
        add("subset_ridge", "random subset, ridge", out.m, out.procedure(limit=True), ridge_preds[:k])
        for kind, num in kinds:
            add(kind, f"{LABELS[kind]}, T-step GD", out.m, sub_proc, gd_preds[k:k + num].reshape(-1, Fte.shape[0],
                                                                                                  d_out))
            k += num
        add("full", "full data, ridge", n_tr, out.procedure(limit=True),
            [np.asarray(Fte, np.float64) @ ridge_from_cross_products(G, C, n_tr, float(lam))])
        _ridge_cv_row(add, G, C, Ytr_s, Fte, n_tr, std)
    else:
        exact_preds = []
        for idx, _ in _subsets(k_sub, n_subsets, n_tr, out.m):
            subset_rows.append(idx)
            exact_preds.append(train_predict(on_device(Ftr[idx], dt), on_device(Ytr_s[idx], dt), 0.0, no_theta0)[0])
        add("subset", "random subset", out.m, out.procedure(), exact_preds)
        core = list(_coreset_sets(coresets, Xtr_s, Ytr_s, Ftr, out.m, float(lam), k_core, n_coreset_draws, G))
        for kind, (Xs, Ys) in core:
            add(kind, LABELS[kind], out.m, out.procedure(),
                [train_predict(on_device(f, dt), on_device(y, dt), 0.0, no_theta0)[0]
                 for f, y in zip(Ftr.featurize(Xs), Ys, strict=True)])
        if exact_full:
            lam_full = out.meta.full_data_lambda_inner or lam
            label = (f"exact ridge, λ = {out.meta.original_lambda:g} (the original model)"
                     if out.meta.original_lambda is not None else out.procedure())
            add("full", "full data", n_tr, label,
                [np.asarray(Fte, np.float64) @ ridge_from_cross_products(G, C, n_tr, float(lam_full))])
            _ridge_cv_row(add, G, C, Ytr_s, Fte, n_tr, std)
        else:
            add("full", "full data", n_tr, out.procedure(),
                [train_predict(on_device(F_all, dt), on_device(Ytr_s, dt), 0.0, no_theta0)[0]])
    add("mean", "mean of training targets", n_tr, "constant: the training mean",
        [np.broadcast_to(np.asarray(Ytr_s, np.float64).mean(axis=0), (Xte.shape[0], d_out))])
    if last_value_column is not None:
        col = Xte[:, [last_value_column] * d_out]                   # original units → standardised for add()
        add("naive", "naive: last value", 0, f"y_t = input column {last_value_column} (no training)", [std.y(col)])
    table = []
    if learners:
        sets = _learner_sets(out, Xtr, Ytr, subset_rows, core, n_learner_draws)
        table, failed = learner_rows(learners, sets, Xte, Yte)
        notes += failed + _learner_notes(out)
    return EvalReport(rows=rows, m=out.m, n_train=n_tr, n_test=Xte.shape[0], notes=notes,
                      predictions=predictions, learners=table)


def _learner_sets(out: DistillOutput, Xtr, Ytr, subset_rows, core, draws: int) -> list:
    """The training sets the other learners are trained on, in original units with their sample weights: the
    distilled set, the random subsets and coresets drawn for the table (the first ``draws`` of each; n/m per row,
    as each stands for n/m training rows) and all training rows (unweighted)."""
    n_tr, std = Xtr.shape[0], out.standardizer
    w = np.full(out.m, n_tr / out.m)
    sets = [("distilled", "distilled set", out.m, [(out.X, out.Y, out.sample_weight)])]
    if subset_rows:
        sets.append(("subset", "random subsets", out.m,
                     [(np.asarray(Xtr[np.sort(i)]), np.asarray(Ytr[np.sort(i)]), w) for i in subset_rows[:draws]]))
    for kind, (Xs, Ys) in core:
        sets.append((kind, LABELS[kind], out.m, [(std.x_inverse(a), std.y_inverse(b), w)
                                                 for a, b in zip(Xs[:draws], Ys[:draws], strict=True)]))
    sets.append(("full", "full data", n_tr, [(np.asarray(Xtr), np.asarray(Ytr), None)]))
    return sets


def _learner_notes(out: DistillOutput) -> list[str]:
    if out.transfers:
        return ["Other learners are given the distilled set's sample weights (n/m per row): a learner of second "
                "moments (LinearRegression; Ridge, Lasso at a fixed penalty) fits on it exactly what it fits on all "
                "rows. RidgeCV is not one: it chooses its penalty by leave-one-out over individual rows."]
    return [f"The distilled set is procedure-bound (valid for {out.procedure()} only): the other learners are not "
            "expected to train well on it. jaxdistill.distill_moments gives a set they can use."]


def _transfer_notes(out: DistillOutput, rows: list[dict]) -> list[str]:
    """A note on the ``distilled_ridge`` row: it trains a procedure-bound set by a procedure it was not made for."""
    ids = {r["id"]: r for r in rows}
    if "distilled_ridge" not in ids:
        return []
    own, limit = ids["distilled"]["r2"], ids["distilled_ridge"]["r2"]
    if not (np.isfinite(limit) and limit >= own - 0.05):      # NaN or well below the set's own procedure: say why
        return [f"'distilled, ridge' (R² {limit:.3g}, against {own:.3g} by the set's own procedure) trains the set by "
                f"ridge to convergence, not by the {out.T} GD steps it was distilled for: the set is procedure-bound, "
                "and this row shows how it transfers to another procedure, not its quality."]
    return []


def _lambda_notes(out: DistillOutput) -> list[str]:
    """How the result's λ_I was set, for the report's notes."""
    choice = out.meta.lambda_choice
    if not choice:
        return []
    if choice.get("method") == "gcv":
        return [f"The distilled set targets the ridge model with {choice['description']} (lambda_inner='auto')."]
    if choice.get("method") == "fallback":
        return [f"λ_I = {choice['lambda']:g}: {choice['why']}."]
    return [f"λ_I = {choice['lambda']:g}, as given (no penalty on θ in the outer objective)."]


def _ridge_cv_row(add, G, C, Ytr, Fte, n_tr, std):
    """The ``full_cv`` row: ridge on all training rows with λ chosen by GCV on their statistics (G = FᵀF, C = FᵀY
    in float64)."""
    choice = choose_ridge(G / n_tr, C / n_tr, float(np.sum(np.asarray(Ytr, np.float64) ** 2)) / n_tr, n_tr,
                          centred=bool(np.any(std.y_mean != 0)))
    theta = ridge_from_cross_products(G, C, n_tr, choice.lam)
    add("full_cv", "full data, ridge-CV", n_tr, f"exact ridge, λ = {choice.lam:.3g} by GCV on these rows",
        [np.asarray(Fte, np.float64) @ theta])


def _coreset_sets(kinds, Xtr, Ytr, Ftr, m, lam, key, draws, gram=None):
    """For each coreset kind, ``draws`` sets of m points as stacked arrays (draws, m, d), (draws, m, d_out)
    (``gram``: FᵀF of the first pass, when it was summed, for the leverage scores)."""
    if not kinds:
        return
    X, Y, F = Xtr, np.asarray(Ytr, np.float64), Ftr   # X (StandardRows), F (TrainFeatures): read in blocks
    seeds = np.random.SeedSequence(key_to_list(key)).generate_state(draws)
    for kind in kinds:
        sets = coreset_draws(kind, X, Y, F, m, lam, seeds, gram)
        yield kind, (np.stack([a for a, _ in sets]), np.stack([b for _, b in sets]))


@partial(jit, static_argnames=("n_draws", "T", "lam"))
def _linear_gd_sets(model, solver, Fsets, Ysets, Fte, keys, *, n_draws: int, T: int, lam: float):
    """The baselines of a linear model trained by T-step GD, all in one compiled program: for each stacked
    training set (k, m, p) of features (random subsets and coresets) and its θ₀ key, the predictions on Fte after
    T GD steps at half that set's Lemma 2.4 bound from ``n_draws`` θ₀, and of its ridge limit. (One program
    per shape instead of a few dozen eager ones.)"""
    d_out = Ysets.shape[-1]

    def one(Fs, Ys, kg):
        th0 = model.sample_init(kg, Fs[:1], d_out, n_draws)
        sol = solver.solve(model, Support(Fs, Ys, default_inner_lr(Fs, lam), lam), th0, T, T)
        return sol.predict(Fte), Fte @ ridge(Fs, Ys, lam)

    return jax.vmap(one)(Fsets, Ysets, keys)


def _subsets(key, num, n, m):
    """``num`` random subsets of m of n rows without replacement: (row indices, a key for their θ₀ draws) —
    ``jax.random.choice(ks, n, (m,), replace=False)`` with ``ks, kg = split(k)`` for each k of ``split(key, num)``,
    computed on the host where `keys.permutation` is."""
    for k in split(key, num):
        ks, kg = split2(k)
        yield np.asarray(permutation(ks, n))[:m], kg


#: step sizes tried for a baseline trained by plain GD on a nonlinear model, as fractions of its bound
STEP_GRID = (0.9, 0.45, 0.2, 0.1, 0.05, 0.02)
#: the "to convergence" reference trains the full data for this many times T steps
CONVERGED_FACTOR = 10


def _grid_fit(model, solver, F, Y, Fv, Yv, Fte, th0s, steps, lam, etas, *, sequential=False):
    """T-step GD on (F, Y) from ``th0s`` at each step size of ``etas``: (mean squared error on the selection rows
    (Fv, Yv) — inf where the predictions are not finite —, predictions on Fte or None). ``sequential`` maps
    over the step sizes one at a time (bounded memory on many rows) instead of vmapping them."""
    def at(eta):
        sol = solver.solve(model, Support(F, Y, eta, lam), th0s, steps, steps)
        pv = sol.predict(Fv)
        loss = jnp.where(jnp.all(jnp.isfinite(pv)), jnp.mean((pv - Yv[None]) ** 2), jnp.inf)
        return loss, (None if Fte is None else sol.predict(Fte))

    return jax.lax.map(at, etas) if sequential else jax.vmap(at)(etas)


@partial(jit, static_argnames=("m", "n_subsets", "n_draws", "n_val", "T", "long", "n_sel", "lam"))
def _nonlinear_program(model, solver, Ftr, Ytr, Fte, key, *, m: int, n_subsets: int, n_draws: int, n_val: int,
                       T: int, long: int, n_sel: int, lam: float):
    """Every baseline of a nonlinear model trained by T-step GD in one compiled program.

    Random subsets (vmapped over subsets and the step-size grid): m rows, each trained at every step size
    ``STEP_GRID`` × the subset's GD bound; the one with the lowest loss on ``n_val`` other training rows gives
    the predictions on Fte (from ``n_draws`` θ₀). Full data: the fraction of the GD bound on all rows chosen
    the same way on a split (``n_sel`` selection rows, the rest fitted; the grid mapped sequentially, bounded
    memory), then T and ``long`` steps on all rows at it. Returns (subset predictions (n_subsets, n_draws,
    n_te, d_out), the subsets' chosen grid indices, [(full predictions, chosen index) for T and long])."""
    grid = jnp.asarray(STEP_GRID, Ftr.dtype)
    n_tr, d_out = Ftr.shape[0], Ytr.shape[1]
    k_sub, k_full, k_sel = jax.random.split(key, 3)

    def subset(k):
        ks, kg, _ = jax.random.split(k, 3)
        perm = jax.random.permutation(ks, n_tr)
        idx, rest = perm[:m], perm[m:m + n_val]
        F, Y = Ftr[idx], Ytr[idx]
        th0s = model.sample_init(kg, Ftr[:1], d_out, n_draws)
        etas = grid * model.gd_stability_bound(F, Y, lam)
        losses, preds = _grid_fit(model, solver, F, Y, Ftr[rest], Ytr[rest], Fte, th0s, T, lam, etas)
        best = jnp.argmin(losses)
        return preds[best], best

    sub_preds, sub_best = jax.vmap(subset)(jax.random.split(k_sub, n_subsets))
    perm = jax.random.permutation(k_sel, n_tr)
    fit, sel = perm[n_sel:], perm[:n_sel]
    th0s = model.sample_init(k_full, Ftr[:1], d_out, n_draws)
    etas = grid * model.gd_stability_bound(Ftr, Ytr, lam)   # fractions of the bound of the rows finally trained on
    full = []
    for steps in (T, long):
        losses, _ = _grid_fit(model, solver, Ftr[fit], Ytr[fit], Ftr[sel], Ytr[sel], None, th0s, steps, lam, etas,
                              sequential=True)
        best = jnp.argmin(losses)
        full.append((solver.solve(model, Support(Ftr, Ytr, etas[best], lam), th0s, steps, steps).predict(Fte), best))
    return sub_preds, sub_best, full


def _nonlinear_baselines(add, out, Ftr, Ytr, Fte, key, n_subsets, n_inits):
    """Baselines for a nonlinear model trained by T-step GD: each trained by the same procedure with its
    own step size, chosen on training rows it did not fit (the test rows are never used to choose); one
    compiled program (`_nonlinear_program`)."""
    mdl, T = out.model, out.T
    n_tr = Ftr.shape[0]
    n_sel = max(1, n_tr // 5)
    sub_preds, sub_best, full = _nonlinear_program(
        mdl, out.inner_solver, Ftr, Ytr, Fte, key, m=out.m, n_subsets=n_subsets, n_draws=max(1, n_inits // 4),
        n_val=min(1000, n_tr - out.m), T=T, long=CONVERGED_FACTOR * T, n_sel=n_sel, lam=float(out.lambda_inner))
    fracs = np.asarray(STEP_GRID)[np.asarray(sub_best)]
    sub_preds = np.asarray(sub_preds)
    add("subset", "random subset, T-step GD", out.m, f"{T} GD steps, step size tuned per subset on other training rows "
        f"(median {np.median(fracs):g} × its GD bound), {mdl.init_description}",
        sub_preds.reshape(-1, *sub_preds.shape[2:]))
    rows = (("full", T, "full data, T-step GD"),
            ("full_long", CONVERGED_FACTOR * T, f"full data, {CONVERGED_FACTOR}·T-step GD"))
    for (row_id, steps, label), (pred, best) in zip(rows, full, strict=True):
        add(row_id, label, n_tr, f"{steps} GD steps, step size {STEP_GRID[int(best)]:g} × its GD bound (chosen on a "
            f"20 % split of the training rows), {mdl.init_description}", np.asarray(pred))
