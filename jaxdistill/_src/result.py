"""The result of a distillation: the distilled set, and everything needed to use, judge and save it.

A [`DistillOutput`][jaxdistill.DistillOutput] keeps its problem's model (with its parameters: feature-map weights, flax
module), its inner solver and its training procedure (η̃, T, λ_I), so ``predict``, ``evaluate``,
``plot``, ``save`` and the CLI need nothing else. Results of [`distill`][jaxdistill.distill] and of
[`distill_analytic`][jaxdistill.distill_analytic] share this type.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxdistill._src.components.models import InnerModel, LinearModel, draw_inits
from jaxdistill._src.core.jit import jit
from jaxdistill._src.core.keys import as_key
from jaxdistill._src.core.linalg import ridge
from jaxdistill._src.core.validate import json_safe
from jaxdistill._src.data.arrays import Standardizer, as_2d_float, check_squarable, on_device
from jaxdistill._src.data.datasets import sidecar_path
from jaxdistill._src.data.schema import InputSchema
from jaxdistill._src.inner.base import InnerSolver, predict_after_training
from jaxdistill._src.inner.kernel_ridge import KernelRidge
from jaxdistill._src.io import results as result_files
from jaxdistill._src.outer.records import History, ProcedureBoundWarning, RunInfo, Status
from jaxdistill._src.problem.config import DistillConfig
from jaxdistill._src.version import __version__

#: new inputs more than this many training standard deviations from the training mean make ``predict`` warn
FAR_OUT_SDS = 1e3
#: the column of an export that holds each row's sample weight
WEIGHT_COLUMN = "sample_weight"
#: what a moment-exact set reproduces (its ``valid_for``)
MOMENT_LEARNERS = ("every learner of second moments, exactly: ordinary least squares, ridge at any penalty, lasso "
                   "and elastic net at any α, Bayesian ridge, gradient descent on the squared loss from any θ₀ for any "
                   "number of steps")


@partial(jit, static_argnames="lam")
def _ridge_predict(F, Y, Ftest, lam: float):
    """Ftest @ ridge(F, Y, λ): the T → ∞ limit's predictions, one compiled program per shape."""
    return Ftest @ ridge(F, Y, lam)


@dataclasses.dataclass(frozen=True)
class DistillOutput:
    """Distilled set, its model and training procedure, history and status.

    Attributes:
      x: distilled inputs X̃ (m, d) in the standardised space the inner model is trained in.
      y: distilled targets Ỹ (m, d_out), standardised likewise.
      inner_lr: the learned inner learning rate η̃ (None for procedures without one).
      history: a [`History`][jaxdistill.History] of numpy arrays — per outer step ``loss`` (Def. 2.5, mean over θ₀),
        ``data_loss`` (without λ_O), ``q``, ``T``, ``eta``, ``stability_ratio``; per evaluation ``eval_step``,
        ``monitored`` (the loss the stopping rule watched), ``eval_time`` (seconds) and ``val_loss``
        (held-out data loss, empty when nothing was held out). Empty for analytic results.
      config: the [`DistillConfig`][jaxdistill.DistillConfig] used (None for analytic results).
      standardizer: the statistics mapping original units to the standardised space.
      status: a [`Status`][jaxdistill.Status] (a string enum: ``out.status == "converged"``; ``out.status.message``).
      model: the inner model (with its parameters).
      inner_solver: how the model is trained on the distilled set.
      lambda_inner: λ_I of that training (Def. 2.1).
      T: inner steps of the training procedure (None for exact solves).
      seed: the integer seed of the run key (``None`` if a raw key was given).
      meta: a [`RunInfo`][jaxdistill.RunInfo] (objective, optimizer, timings, compilations, versions, ...).
      schema: the `InputSchema` of the data it was distilled from (feature names, target shape,
        constant columns); ``predict`` and ``evaluate`` match later inputs to it.
      weights: the rows' sample weights (m,) for learners trained on the set (``None``: every row weighs 1);
        see `sample_weight` and `valid_for`.

    Examples:
      >>> import jaxdistill as jd
      >>> from jaxdistill import datasets
      >>> X, Y = datasets.load("diabetes")
      >>> out = jd.distill(X, Y, m=5, key=0, steps=100, progress=False)
      >>> out.save("d.npz")
      >>> again = jd.load("d.npz")
      >>> bool((again.predict(X[:4]) == out.predict(X[:4])).all()), again.status == out.status
      (True, True)
    """

    x: np.ndarray
    y: np.ndarray
    inner_lr: float | None
    history: History
    config: DistillConfig | None
    standardizer: Standardizer
    status: Status
    model: InnerModel = dataclasses.field(default_factory=LinearModel)
    inner_solver: InnerSolver = dataclasses.field(default_factory=KernelRidge)
    lambda_inner: float = 1e-3
    T: int | None = None
    seed: int | None = None
    meta: RunInfo = dataclasses.field(default_factory=RunInfo)
    schema: InputSchema | None = None
    weights: np.ndarray | None = None

    def __post_init__(self):
        if self.schema is None:       # files of earlier versions: the width only, 2-D predictions as before
            object.__setattr__(self, "schema", InputSchema(n_features=int(np.shape(self.x)[1])))
        # typed records whatever the caller passed (dicts and strings from files or older code)
        object.__setattr__(self, "history", History.from_dict(self.history))
        object.__setattr__(self, "status", Status.of(self.status))
        object.__setattr__(self, "meta", RunInfo.from_dict(self.meta))
        if self.weights is not None:
            w = np.asarray(self.weights, np.float64)
            if w.shape != (np.shape(self.x)[0],) or not np.all(np.isfinite(w)) or not np.all(w > 0):
                raise ValueError(f"weights must be {np.shape(self.x)[0]} finite positive numbers (one per row), got "
                                 f"shape {w.shape}.")
            object.__setattr__(self, "weights", w)

    @property
    def ok(self) -> bool:
        """Whether the run succeeded (``status.ok``: ``converged``, ``budget``, ``exact`` or ``stopped``)."""
        return self.status.ok

    @property
    def m(self) -> int:
        return self.x.shape[0]

    @property
    def X(self) -> np.ndarray:
        """Distilled inputs in the original units of the data."""
        return self.standardizer.x_inverse(self.x)

    @property
    def Y(self) -> np.ndarray:
        """Distilled targets in the original units of the data."""
        return self.standardizer.y_inverse(self.y)

    @property
    def sample_weight(self) -> np.ndarray:
        """The weight of each row (m,) for a learner trained on the set: ``weights``, or ones."""
        return np.ones(self.m) if self.weights is None else self.weights

    @property
    def transfers(self) -> bool:
        """Whether learners other than the set's own training procedure fit on it what they fit on all training
        rows (a moment-exact set, [`distill_moments`][jaxdistill.distill_moments]). ``False``: a procedure-bound set."""
        return self.meta.kind == "moments"

    @property
    def valid_for(self) -> str:
        """Which learners this set reproduces: what it may be used for, recorded in every export."""
        private = self.meta.privacy
        if self.transfers:
            w = self.sample_weight
            weight = f"{w[0]:.6g} per row (n/m)" if np.all(w == w[0]) else "the weights column"
            if private:
                return (f"{MOMENT_LEARNERS}, as on the private release's noisy statistics with its ridge penalty "
                        f"folded in (not on the raw rows); fit with sample_weight = {weight}. {self.privacy_note}")
            return f"{MOMENT_LEARNERS}; fit with sample_weight = {weight}"
        own = self.procedure()
        krr = self.meta.krr_paper
        if krr is not None and krr.original_lambda is not None:
            own += (f" with λ_S = {krr.lambda_s:g}, which reproduces ridge with λ = {krr.original_lambda:g}"
                    " on all rows (the KRR paper's analytic set)")
        bound = (f"procedure-bound: only {own}. Other learners (scikit-learn's LinearRegression, boosted trees, …) "
                 "trained on these rows can score far below random rows")
        return f"{bound}. {self.privacy_note}" if private else bound

    @property
    def privacy_note(self) -> str:
        """One line on the set's privacy: its (ε, δ) guarantee, or that it has none (a set of raw rows)."""
        p = self.meta.privacy
        if not p:
            return ("Not private: made from the raw rows, it may reveal them (jaxdistill.distill_private makes sets "
                    "with a differential-privacy guarantee)")
        parties = p.get("parties") or [p]
        each = "; ".join(f"ε = {q['epsilon']:g}, δ = {q['delta']:.3g}" for q in parties)
        who = "each party's rows" if len(parties) > 1 else "the rows"
        flag = " NOT PRIVATE (test noise switch)" if any("NOT PRIVATE" in q for q in parties) else ""
        return (f"Differentially private for {who} ({each}; {p.get('neighbours', parties[0]['neighbours'])}; "
                f"{parties[0]['accountant']}){flag}")

    def column_names(self) -> tuple[list[str], list[str]]:
        """Names of the input and target columns: the data's own (DataFrame, Series), else ``x0…``, ``y`` / ``y0…``."""
        d, k = self.x.shape[1], self.y.shape[1]
        xn = list(self.schema.feature_names) if self.schema.feature_names else [f"x{j}" for j in range(d)]
        if self.schema.target_names and len(self.schema.target_names) == k:
            yn = list(self.schema.target_names)
        else:
            yn = ["y"] if k == 1 else [f"y{j}" for j in range(k)]
        return xn, yn

    def _export_columns(self) -> tuple[list[str], list[str], str]:
        """(input names, target names, weight column name) of an export, with no name twice."""
        xn, yn = self.column_names()
        clash = set(xn) & set(yn)
        if clash:
            yn = [f"{c} (target)" if c in clash else c for c in yn]
        wn = WEIGHT_COLUMN if WEIGHT_COLUMN not in xn + yn else f"{WEIGHT_COLUMN} (jaxdistill)"
        return xn, yn, wn

    def export_info(self) -> dict:
        """What an export records beside the rows: what the set is valid for, its weights column, its columns, and
        where it came from (JSON-friendly; the CSV sidecar and ``to_pandas().attrs``)."""
        xn, yn, wn = self._export_columns()
        return {"format": "jaxdistill.DistilledSet", "jaxdistill_version": __version__, "valid_for": self.valid_for,
                "transfers": self.transfers, "procedure": self.procedure(), "weight_column": wn,
                "feature_columns": xn, "target_columns": yn, "m": self.m, "n_train": self.meta.n_train,
                "units": "original", "status": str(self.status), "privacy": self.meta.privacy}

    def _warn_if_bound(self, what: str) -> None:
        if not self.transfers:
            warnings.warn(ProcedureBoundWarning(
                f"{what}: this set is procedure-bound — it reproduces only {self.procedure()}, and other learners "
                "trained on its rows can score far below random rows (its export records this as valid_for). For "
                "rows that scikit-learn's linear models (and any learner of second moments) fit exactly as on all "
                "training rows, use jaxdistill.distill_moments(X, Y, m) with m >= d + 2."), stacklevel=3)

    def to_pandas(self):
        """The distilled set in original units as a ``pandas.DataFrame``: one row per distilled point, the input
        columns under their original names, then the targets, then ``sample_weight`` (pass it to a learner's
        ``fit``). ``df.attrs`` holds `export_info` (``valid_for`` among it). A procedure-bound set warns
        ([`ProcedureBoundWarning`][jaxdistill.ProcedureBoundWarning]). Needs pandas."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_pandas needs pandas: pip install pandas.") from None
        self._warn_if_bound("to_pandas")
        xn, yn, wn = self._export_columns()
        df = pd.DataFrame(np.concatenate([self.X, self.Y, self.sample_weight[:, None]], axis=1), columns=xn + yn + [wn])
        df.attrs.update(self.export_info())
        return df

    def to_csv(self, path) -> None:
        """Write the distilled set in original units to a CSV file with a header row (inputs, then targets, then
        ``sample_weight``), and `export_info` beside it in ``PATH.json`` (what the set is valid for). Read it with
        ``pandas.read_csv(path)`` or ``jaxdistill.datasets.load_csv(path, target=..., weight="sample_weight")``. A
        procedure-bound set warns ([`ProcedureBoundWarning`][jaxdistill.ProcedureBoundWarning]). Needs no pandas."""
        import csv
        import io
        import json

        from jaxdistill._src.io.files import atomic_write_bytes, check_writable
        path = os.fspath(path)
        for target in (path, sidecar_path(path)):    # a link, a directory, a too-long name: refused before writing
            check_writable(target)
        self._warn_if_bound("to_csv")
        xn, yn, wn = self._export_columns()
        text = io.StringIO(newline="")
        w = csv.writer(text)
        w.writerow(xn + yn + [wn])
        for row in np.concatenate([self.X, self.Y, self.sample_weight[:, None]], axis=1):
            w.writerow([repr(float(v)) for v in row])
        atomic_write_bytes(path, text.getvalue().encode("utf-8"))
        info = json.dumps(json_safe(self.export_info()), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        atomic_write_bytes(sidecar_path(path), info.encode("utf-8"))

    @property
    def max_stability_ratio(self) -> float:
        r = np.asarray(self.history.stability_ratio)
        return float(np.nanmax(r)) if r.size and np.isfinite(r).any() else float("nan")

    @property
    def uses_gd(self) -> bool:
        """True when the training procedure is T steps of gradient descent from θ₀ (it has η̃ and θ₀)."""
        return self.inner_solver.uses_theta0 and self.inner_lr is not None and self.T is not None

    def procedure(self, limit: bool = False) -> str:
        """A label of how a model is trained on the distilled set (``limit``: the T → ∞ ridge solve)."""
        if limit:
            return "exact ridge (T → ∞)"
        if not self.uses_gd:
            return self.inner_solver.describe(self.T, self.inner_lr)
        return f"{self.inner_solver.describe(self.T, self.inner_lr)}, {self.model.init_description}"

    def _warn_far_out(self, X_std) -> None:
        """Say which columns of new inputs lie more than `FAR_OUT_SDS` training standard deviations out: there the
        model extrapolates (a column that barely varied in training — 5 + 1e-9·N(0, 1) — turns a 1 % change into
        5·10⁷ standard deviations, and the predictions with it)."""
        far = np.max(np.abs(X_std), axis=0) > FAR_OUT_SDS if X_std.size else np.zeros(0, bool)
        if np.any(far):
            names, _ = self.column_names()
            cols = [f"{names[j]!r} ({np.max(np.abs(X_std[:, j])):.3g} sd)" for j in np.flatnonzero(far)][:10]
            warnings.warn(f"X_new lies far outside the training rows in column(s) {', '.join(cols)}: the predictions "
                          "there are extrapolation. A column that barely varied in training makes small changes look "
                          "huge; drop it, or check the units of X_new.", UserWarning, stacklevel=3)

    def _features(self, X_std):
        return self.model.featurize(on_device(X_std, jnp.result_type(float)))

    def predict_standardized(self, Fs: jax.Array, *, limit: bool = False, n_inits: int = 32, key=0) -> np.ndarray:
        """Mean predictions (n, d_out), standardised units, on *featurized* standardised inputs Fs."""
        dt = jnp.result_type(float)
        Fd, Yd = self._features(self.x), on_device(self.y, dt)
        lam = self.lambda_inner
        if limit or not self.uses_gd:
            if not limit:
                th0 = on_device(np.zeros((1, Fd.shape[1], Yd.shape[1])), dt)
                return np.asarray(predict_after_training(self.model, self.inner_solver, Fd, Yd, 0.0, lam, th0, 0, Fs,
                                                         0)[0])
            if not self.model.linear_in_params:
                raise ValueError("predict(limit=True) needs a model linear in θ (its T → ∞ limit is ridge); "
                                 "a nonlinear model has no closed-form limit. Use predict(X) for the T-step model.")
            return np.asarray(_ridge_predict(Fd, Yd, Fs, float(lam)))
        eta = on_device(self.inner_lr, dt)
        if self.model.linear_in_params and self.model.init_scale is not None:
            # θ_T is affine in θ₀ and E θ₀ = 0, so the mean prediction is exactly the one from θ₀ = 0.
            th0 = on_device(np.zeros((1, Fd.shape[1], Yd.shape[1])), dt)
        else:
            th0 = draw_inits(self.model, as_key(key), Fd, Yd.shape[1], n_inits)
        preds = predict_after_training(self.model, self.inner_solver, Fd, Yd, eta, lam, th0, self.T, Fs, self.T)
        return np.asarray(preds, np.float64).mean(axis=0)

    def predict(self, X_new, *, limit: bool = False, n_inits: int = 32, key=0):
        """Predictions in original units of the model trained on the distilled set by its own procedure.

        ``X_new`` is matched to the data distilled from (`schema`): a DataFrame by column name (any
        order; missing or unexpected columns are an error), an array by width. The predictions have the shape
        of the training targets — (n,) when y was 1-D, else (n, d_out) — and are a pandas Series / DataFrame
        with ``X_new``'s index when ``X_new`` is a DataFrame.

        For gradient-descent procedures this is the mean prediction over θ₀ ~ p(θ₀) after T steps
        with the learned η̃ (exact for models linear in θ: the prediction from θ₀ = E θ₀ = 0; a Monte
        Carlo mean of ``n_inits`` draws otherwise). ``limit=True`` gives the T → ∞ limit, ridge with
        λ_I on the distilled set (models linear in θ). Exact solvers (kernel ridge, analytic sets)
        predict with their own solve.
        """
        values, index = self.schema.match_features("X_new", X_new)
        X_new = as_2d_float("X_new", values, allow_1d=False)
        if X_new.shape[1] != self.x.shape[1]:
            raise ValueError(f"X_new has {X_new.shape[1]} columns; the distilled set has {self.x.shape[1]}.")
        X_std = self.standardizer.x(X_new)
        check_squarable((("X_new", X_std),), jnp.result_type(float), "new", "its predictions would be inf or NaN",
                        "drop it from X_new")
        self._warn_far_out(X_std)
        Fs = self._features(X_std)
        pred = self.standardizer.y_inverse(self.predict_standardized(Fs, limit=limit, n_inits=n_inits, key=key))
        if not np.all(np.isfinite(pred)):
            raise FloatingPointError(
                "The model trained on this distilled set predicts non-finite values (an ill-conditioned set for its "
                "training procedure, or inputs far outside the data). Check X_new; for exact solves use a "
                "lambda_inner > 0.")
        return self.schema.shape_predictions(pred, index)

    def save(self, path) -> None:
        """Write this result to one self-describing ``.npz`` file (atomically); [`load`][jaxdistill.load] reads it.

        Args:
          path: the file (``.npz``).

        Returns:
          None.
        """
        result_files.save(self, path)

    @classmethod
    def load(cls, path, *, model=None, inner_solver=None) -> DistillOutput:
        """Deprecated: use [`jaxdistill.load`][jaxdistill.load] (the same result; one way to load a file).

        Args:
          path: as for [`load`][jaxdistill.load].
          model: as for `load`.
          inner_solver: as for `load`.

        Returns:
          The [`DistillOutput`][jaxdistill.DistillOutput] as saved.
        """
        warnings.warn("DistillOutput.load(path) is deprecated: use jaxdistill.load(path).", DeprecationWarning,
                      stacklevel=2)
        return load(path, model=model, inner_solver=inner_solver)

    def replace(self, **changes) -> DistillOutput:
        """A copy with ``changes``, its records kept consistent so that ``save`` writes a file ``load`` accepts: a new
        ``lambda_inner`` becomes the given λ of ``meta.lambda_choice`` and of ``config``, a new ``T`` the config's T.
        A change the records cannot follow is refused here (``ValueError``), not when the file is loaded."""
        if "lambda_inner" in changes and "meta" not in changes:
            lam = float(changes["lambda_inner"])
            changes["meta"] = self.meta.replace(lambda_choice={"method": "given", "lambda": lam})
        sync = {k: changes[k] for k in ("lambda_inner", "T") if k in changes}
        if self.config is not None and sync and "config" not in changes:
            changes["config"] = self.config.replace(**sync)
        new = dataclasses.replace(self, **changes)
        problems = result_files.procedure_problems(new)
        if problems:
            raise ValueError(f"replace({', '.join(sorted(changes))}) would make the result inconsistent "
                             f"({'; '.join(problems)}); change the related fields together.")
        return new

    def summary(self) -> str:
        h, info = self.history, self.meta
        lines = [f"DistillOutput: m={self.m}, d={self.x.shape[1]}, d_out={self.y.shape[1]}, status={self.status}",
                 f"  model {self.model!r}", f"  trained by: {self.procedure()}", f"  valid for: {self.valid_for}"]
        if h.steps:
            steps = self.config.steps if self.config is not None else h.steps
            dl = h.data_loss if h.data_loss.size else h.loss
            lines.append(f"  steps run {h.steps}/{steps}, outer data loss {dl[0]:.4g} -> {dl[-1]:.4g}, "
                         f"max eta/bound {self.max_stability_ratio:.3g}")
        if h.val_loss.size:
            v = h.val_loss
            lines.append(f"  held-out loss {v[0]:.4g} -> best {np.nanmin(v):.4g} (last {v[-1]:.4g})")
        rec = info.get("divergence_recoveries")
        if rec:
            lines.append(f"  recovered from divergence at step(s) {rec['at_steps']}: the best state restored, outer "
                         f"learning rates × {rec['outer_rates_scaled_by']:g}")
        run = info.bilevel
        if run is not None and run.returned_step is not None and self.config is not None:
            which = f"best monitored loss: {run.monitor or 'held-out'}" if self.config.restore_best else "last"
            lines.append(f"  returned: the state after step {run.returned_step} ({which})")
        if not self.ok:
            lines.append(f"  NOT OK: {self.status.message}")
        elif self.status == "budget":
            lines.append("  still improving when the step budget ran out: raise steps for more")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


def load(path, *, model=None, inner_solver=None) -> DistillOutput:
    """Load a result saved by [`DistillOutput.save`][jaxdistill.DistillOutput.save].

    Shipped components are rebuilt from the file. A result made with a user-defined feature map, flax module or
    other custom component needs it given back (``model=...``); it is checked against the saved fingerprint and
    refused, naming the first difference, if it is not the same.

    Args:
      path: the ``.npz`` file.
      model: the inner model, for a result made with your own feature map or flax module (checked to be the
        same one: class, settings and weights); shipped components are rebuilt from the file.
      inner_solver: likewise, for your own inner solver.

    Returns:
      The [`DistillOutput`][jaxdistill.DistillOutput] as saved: its predictions equal the original's.

    Raises:
      FileNotFoundError: no such file.
      ValueError: a file that is not a jaxdistill result, is truncated or corrupt (checksums), of a newer format
        or inconsistent, or needs a ``model=`` it was not given; the message says which.

    Examples:
      >>> import jaxdistill as jd
      >>> from jaxdistill import datasets
      >>> X, Y = datasets.load("diabetes")
      >>> jd.distill(X, Y, m=5, key=0, steps=50, progress=False).save("run.npz")
      >>> jd.load("run.npz").m
      5
    """
    return DistillOutput(**result_files.read(path, model=model, inner_solver=inner_solver))


def save(out: DistillOutput, path) -> None:
    """Deprecated: use ``out.save(path)`` (the same file). Saving is a method of the result; loading, which has no
    result yet, is the function [`load`][jaxdistill.load]."""
    warnings.warn("jaxdistill.save(out, path) is deprecated: use out.save(path).", DeprecationWarning, stacklevel=2)
    out.save(path)
