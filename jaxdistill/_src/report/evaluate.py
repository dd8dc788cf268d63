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

For exact procedures (a [`KernelRidge`][jaxdistill.KernelRidge] run, an analytic or moment set) the rows are
``distilled``, ``random subset`` and ``full data`` with that procedure (for analytic sets the full-data row is the
original ridge model with its own λ). With ``learners=``, other learners are trained on the distilled set, the
drawn subsets and coresets and all rows (a second table). Each kind of row is a component of
``report/baselines.py``, over one context computed once; this module checks the inputs and reports.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from jaxdistill._src.core.keys import as_key
from jaxdistill._src.core.validate import check_int, json_safe
from jaxdistill._src.data.arrays import as_2d_float, check_squarable, on_device
from jaxdistill._src.data.sources import RowSource
from jaxdistill._src.report.baselines import COMPONENTS, EvalContext
from jaxdistill._src.report.coresets import CORESETS, KINDS
from jaxdistill._src.report.learners import as_learners, learner_markdown
from jaxdistill._src.result import DistillOutput

#: stable ids of the rows (what code should address rows by; the ``method`` labels are for readers)
ROW_IDS = ("distilled", "distilled_ridge", "subset", "subset_ridge", "leverage", "kmeans", "kcenter", "herding", "full",
           "full_cv", "full_long", "nonprivate", "adassp", "diffprivlib", "mean", "naive")


@dataclasses.dataclass(frozen=True)
class EvalReport:
    """What [`evaluate`][jaxdistill.evaluate] returns: rows on held-out data, in original units.

    Attributes:
      rows: one dict per method with ``id`` (stable, one of `ROW_IDS`), ``method`` (a label for readers),
        ``points``, ``procedure``, ``mse`` / ``mse_std``, ``r2`` / ``r2_std`` and ``loss`` (½ MSE in standardised
        units, the run's held-out curve); `row` finds one by id.
      m: the distilled set's size.
      n_train: training rows the baselines used.
      n_test: held-out rows scored.
      notes: how λ_I was set, and what was left out.
      learners: other learners trained on each set (``evaluate(..., learners=...)``): dicts with ``learner``,
        ``set`` (a row id), ``method``, ``points``, ``mse`` / ``mse_std``, ``r2`` / ``r2_std``, ``vs_full`` and
        ``weighted``.
      predictions: each row's test predictions (not compared or shown).
    """

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
        """`to_dict` as strict JSON: a value that is not finite (an R² on constant targets) is ``null``."""
        import json
        return json.dumps(json_safe(self.to_dict()), allow_nan=False, **kwargs)

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
        distilled rows are reported). ``X_test`` and ``X_train`` may be a [`RowSource`][jaxdistill.RowSource] (a
        Parquet data set, its columns matched by name) with the targets None: its rows are read into memory, as
        the baselines (random subsets, coresets, all rows) draw from every row.
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
    if X_train is None and Y_train is not None:
        raise ValueError("Y_train was given without X_train; pass both (or neither) for the baselines.")
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
    X_test, Y_test = _from_source(out.schema, X_test, Y_test, "X_test", "Y_test")
    X_train, Y_train = _from_source(out.schema, X_train, Y_train, "X_train", "Y_train")
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
    Xte_s, Yte_s = std.x(Xte), std.y(Yte)
    check_squarable((("X_test", Xte_s), ("Y_test", Yte_s)), dt, "test", "its loss and R² would be inf or NaN",
                    "drop it from the test set")
    settings = {"n_inits": n_inits, "n_subsets": n_subsets, "coresets": coresets, "n_coreset_draws": n_coreset_draws,
                "last_value_column": last_value_column, "learners": learners, "n_learner_draws": n_learner_draws}
    ctx = EvalContext(out, Xte, Yte, out.model.featurize(on_device(Xte_s, dt)), key, settings, Yte_s=Yte_s)
    if X_train is not None:
        ctx.with_training_rows(Xtr, Ytr)
    for component in COMPONENTS:
        if component.applies(ctx):
            component(ctx)
    notes = _lambda_notes(out) + _transfer_notes(out, ctx.rows) + ctx.notes
    return EvalReport(rows=ctx.rows, m=out.m, n_train=ctx.n_tr, n_test=Xte.shape[0], notes=notes,
                      predictions=ctx.predictions, learners=ctx.learners)


def _from_source(schema, X, Y, xname: str, yname: str):
    """A `RowSource` given as ``xname`` read into memory (the baselines draw from every row), its columns put in the
    fitted order by name where both know names; other inputs as they are."""
    if not isinstance(X, RowSource):
        return X, Y
    if Y is not None:
        raise ValueError(f"With a RowSource as {xname} the targets come from it: pass {yname}=None.")
    Xa, Ya = X.read_all()
    if X.feature_names is not None and schema.feature_names is not None:
        Xa = Xa[:, schema.column_order(xname, X.feature_names)]
    return Xa, Ya


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
