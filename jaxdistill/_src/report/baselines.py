"""The rows of an evaluation, one component each, over one shared context.

[`evaluate`][jaxdistill.evaluate] checks its inputs, builds an `EvalContext` once (the test rows standardised and
featurised; with training rows, their first pass: FᵀF, FᵀY in float64 and, where a baseline trains on all rows,
their features) and runs each component of `COMPONENTS` whose ``applies`` holds, in order. A component adds rows
with ``ctx.add`` and may leave the sets it drew in ``ctx.drawn`` for later components (the other learners train on
the same random subsets and coresets). Adding a baseline is one class here and one entry in `COMPONENTS`.

The components, in table order:

* `Distilled` — the distilled set by its own procedure (``distilled``), and for a T-step GD set of a model linear
  in θ its ridge limit (``distilled_ridge``);
* `LinearGDBaselines` — random subsets and coresets of a model linear in θ trained by T-step GD, all in one
  compiled program (`linear_gd_sets`), then the full-data ridge rows from the first pass's cross products;
* `ExactBaselines` — the same for exact procedures (kernel ridge, analytic and moment sets);
* `NonlinearBaselines` — random subsets and the full data of a model not linear in θ, each with its step size
  tuned on training rows it does not fit (`nonlinear_program`);
* `PrivateBaselines` — for a set made from a private release: the same construction without privacy, AdaSSP at the
  same budget, diffprivlib at the same ε;
* `MeanRow`, `NaiveRow` — the constant predictor and, for autoregressive windows, the last value;
* `Learners` — other learners (scikit-learn estimators) on the distilled set, the drawn sets and all rows.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxdistill._src.components.features import Identity
from jaxdistill._src.components.models import draw_inits
from jaxdistill._src.core.jit import jit
from jaxdistill._src.core.keys import concat, fold_in, key_to_list, permutation, split, split2
from jaxdistill._src.core.linalg import default_inner_lr, ridge, ridge_from_cross_products
from jaxdistill._src.data.arrays import StandardRows, TrainFeatures, check_squarable, on_device
from jaxdistill._src.inner.base import Support, predict_after_training
from jaxdistill._src.inner.unrolled import UnrolledGD
from jaxdistill._src.problem.ridge_cv import choose_ridge
from jaxdistill._src.report.coresets import LABELS, coreset_draws
from jaxdistill._src.report.learners import learner_rows
from jaxdistill._src.report.scores import scores
from jaxdistill._src.result import DistillOutput


@dataclasses.dataclass
class EvalContext:
    """What every component reads, computed once per `evaluate` call, and what they produce (rows, predictions,
    notes, the drawn sets). The training-side fields are None without training rows (`with_training_rows`)."""

    out: DistillOutput
    Xte: np.ndarray                     # test rows, original units
    Yte: np.ndarray
    Fte: jax.Array                      # test features, standardised, compute dtype
    key: jax.Array
    settings: dict                      # n_inits, n_subsets, coresets, n_coreset_draws, last_value_column, …
    Yte_s: np.ndarray = None
    Xtr: np.ndarray | None = None       # training rows, original units (array or memory map)
    Ytr: np.ndarray | None = None
    Ytr_s: np.ndarray | None = None
    Xtr_s: StandardRows | None = None   # read in blocks, standardised on demand
    Ftr: TrainFeatures | None = None    # … and featurised on demand
    G: np.ndarray | None = None         # FᵀF, FᵀY of the first pass (float64)
    C: np.ndarray | None = None
    F_all: np.ndarray | None = None     # all training features, where a baseline trains on all rows at once
    rows: list = dataclasses.field(default_factory=list)
    predictions: dict = dataclasses.field(default_factory=dict)
    notes: list = dataclasses.field(default_factory=list)
    drawn: dict = dataclasses.field(default_factory=lambda: {"subsets": [], "coresets": []})
    learners: list = dataclasses.field(default_factory=list)     # the other learners' rows (`Learners`)
    # what the result is, set once (`__post_init__`)
    n_tr: int = 0
    has_training_rows: bool = False
    gd: bool = False                    # trained by T-step GD from θ₀
    linear: bool = False                # a model linear in θ
    exact_full: bool = False            # an exact procedure of a linear model without a kernel: full row = ridge
    keys: tuple = ()                    # (θ₀ draws of the distilled set, random subsets, coresets)
    dt: object = None

    def __post_init__(self):
        out = self.out
        self.dt = jnp.result_type(float)
        self.gd, self.linear = out.uses_gd, out.model.linear_in_params
        self.exact_full = not self.gd and self.linear and out.inner_solver.kernel is None
        k_gd, k_sub = split2(self.key)        # the subsets' draws as they always were, the coresets their own key
        self.keys = (k_gd, k_sub, fold_in(self.key, 7))

    def add(self, row_id, method, points, procedure, preds):
        """A row from predictions (draws, n_test, d_out) in standardised units: its scores in original units."""
        if isinstance(preds, jax.Array):            # to the host first: iterating a device array compiles `unstack`
            preds = np.asarray(preds)
        std = self.out.standardizer
        orig = [std.y_inverse(np.asarray(p, np.float64)) for p in preds]
        s = np.array([scores(p, self.Yte) for p in orig])
        self.predictions[row_id] = np.mean(orig, axis=0)
        # the loss the run's held-out curve shows: ½ mean squared error per row, standardised units
        half = float(np.mean([0.5 * np.sum((np.asarray(p, np.float64) - self.Yte_s) ** 2) / self.Yte.shape[0]
                              for p in preds]))
        self.rows.append({"id": row_id, "method": method, "points": points, "procedure": procedure,
                          "mse": float(s[:, 0].mean()), "mse_std": float(s[:, 0].std()),
                          "r2": float(s[:, 1].mean()), "r2_std": float(s[:, 1].std()), "loss": half})

    def train_predict(self, F, Y, eta, th0s, steps=None):
        """Predictions (Q, n_test, d_out) on the test rows after ``steps`` (default T) of the result's procedure."""
        out = self.out
        steps = out.T or 0 if steps is None else steps
        return predict_after_training(out.model, out.inner_solver, F, Y, eta, out.lambda_inner, th0s, steps,
                                      self.Fte, steps)

    def no_theta0(self):
        """θ₀ for exact procedures (they ignore it), the shape ``predict`` uses: (1, p, d_out)."""
        return np.zeros((1, self.Fte.shape[1], self.out.y.shape[1]), self.dt)

    def with_training_rows(self, Xtr, Ytr) -> None:
        """Read the training rows once, block by block: standardised, checked, cast to the compute dtype and
        featurised on demand. Models linear in θ never hold the features of all rows: the full-data rows come from
        float64 cross products FᵀF, FᵀY of one pass, the subsets and coresets gather only their own rows."""
        out = self.out
        Ytr_s = out.standardizer.y(Ytr)
        remedy = "drop it from the training rows given to evaluate"
        check_squarable((("Y_train", Ytr_s),), self.dt, "training", "the baselines would be inf or NaN", remedy)
        self.Xtr, self.Ytr, self.Ytr_s = Xtr, Ytr, Ytr_s
        self.n_tr, self.has_training_rows = Xtr.shape[0], True
        self.Xtr_s = StandardRows(Xtr, out.standardizer)
        self.Ftr = TrainFeatures(out.model, self.Xtr_s, self.dt)
        if out.m > self.n_tr:
            raise ValueError(f"The training data given has {self.n_tr} rows, fewer than the {out.m} distilled points.")
        whole = not self.linear or not (self.gd or self.exact_full)      # these baselines train on all rows at once
        self.G, self.C, self.F_all = self.Ftr.first_pass(Ytr_s, remedy, keep=whole)


class Component:
    """One part of the table: ``applies(ctx)`` says whether it has rows for this result, ``__call__(ctx)`` adds them."""

    needs_training_rows = True

    def applies(self, ctx: EvalContext) -> bool:
        return ctx.has_training_rows or not self.needs_training_rows

    def __call__(self, ctx: EvalContext) -> None:
        raise NotImplementedError


class Distilled(Component):
    needs_training_rows = False

    def __call__(self, ctx):
        out, dt = ctx.out, ctx.dt
        if not ctx.gd:
            ctx.add("distilled", "distilled", out.m, out.procedure(), [out.predict_standardized(ctx.Fte)])
            return
        k_gd, _, _ = ctx.keys
        Fd, Yd = out.model.featurize(on_device(out.x, dt)), on_device(out.y, dt)
        th0s = draw_inits(out.model, k_gd, Fd, out.y.shape[1], ctx.settings["n_inits"])
        ctx.add("distilled", "distilled, T-step GD", out.m, out.procedure(),
                ctx.train_predict(Fd, Yd, on_device(out.inner_lr, dt), th0s))
        if ctx.linear:
            ctx.add("distilled_ridge", "distilled, ridge", out.m, out.procedure(limit=True),
                    [out.predict_standardized(ctx.Fte, limit=True)])


def _coreset_sets(ctx: EvalContext, lam: float):
    """For each coreset kind asked for, ``n_coreset_draws`` sets of m points as stacked arrays (draws, m, d),
    (draws, m, d_out); the leverage scores from the first pass's FᵀF."""
    kinds, draws = ctx.settings["coresets"], ctx.settings["n_coreset_draws"]
    if not kinds:
        return []
    _, _, k_core = ctx.keys
    Y = np.asarray(ctx.Ytr_s, np.float64)
    seeds = np.random.SeedSequence(key_to_list(k_core)).generate_state(draws)
    out = []
    for kind in kinds:
        sets = coreset_draws(kind, ctx.Xtr_s, Y, ctx.Ftr, ctx.out.m, lam, seeds, ctx.G)
        out.append((kind, (np.stack([a for a, _ in sets]), np.stack([b for _, b in sets]))))
    return out


def subsets(key, num, n, m):
    """``num`` random subsets of m of n rows without replacement: (row indices, a key for their θ₀ draws) —
    ``jax.random.choice(ks, n, (m,), replace=False)`` with ``ks, kg = split(k)`` for each k of ``split(key, num)``,
    computed on the host where `keys.permutation` is."""
    for k in split(key, num):
        ks, kg = split2(k)
        yield np.array(np.asarray(permutation(ks, n))[:m]), kg     # a copy: a slice would keep all n alive


def _full_ridge_rows(ctx: EvalContext, label: str, procedure: str, lam: float, own_units: bool = False) -> None:
    """``full`` (ridge with ``lam`` on all training rows) and ``full_cv`` (λ by GCV on them), both from the first
    pass's cross products. ``own_units``: the rows standardised by their own statistics (with an intercept), not by
    the run's — so the rows do not depend on which rows the run held out (its key)."""
    Fte, n = np.asarray(ctx.Fte, np.float64), ctx.n_tr
    G, C, s = ctx.G, ctx.C, float(np.sum(np.asarray(ctx.Ytr_s, np.float64) ** 2))
    centred = bool(np.any(ctx.out.standardizer.y_mean != 0))
    to_run = lambda P: P                                            # noqa: E731 - predictions in the run's units
    if own_units:
        G, C, s, Fte, to_run = _own_units(ctx, Fte)
        centred = True
    ctx.add("full", label, n, procedure, [to_run(Fte @ ridge_from_cross_products(G, C, n, lam))])
    choice = choose_ridge(G / n, C / n, s / n, n, centred=centred)
    ctx.add("full_cv", "full data, ridge-CV", n, f"exact ridge, λ = {choice.lam:.3g} by GCV on these rows",
            [to_run(Fte @ ridge_from_cross_products(G, C, n, choice.lam))])


def _own_units(ctx: EvalContext, Fte: np.ndarray):
    """The first pass's FᵀF, FᵀY (in the run's units) re-expressed for the training rows standardised by their own
    means and deviations (exact: an affine change of the same sums), the test features in those units, and the map
    of predictions back to the run's units."""
    n = ctx.n_tr
    Y = np.asarray(ctx.Ytr_s, np.float64)
    mx, my = ctx.Ftr.column_sums / n, Y.mean(0)
    Gc = ctx.G - n * np.outer(mx, mx)
    Cc = ctx.C - n * np.outer(mx, my)
    Yc = Y - my
    sx = np.sqrt(np.maximum(np.diag(Gc), 0.0) / n)
    sy = np.sqrt(np.sum(Yc ** 2, axis=0) / n)
    sx = np.where(sx > 1e-12 * max(1.0, float(np.max(sx, initial=0.0))), sx, 1.0)   # constant columns: scale 1
    sy = np.where(sy > 0, sy, 1.0)
    G = Gc / np.outer(sx, sx)
    C = Cc / np.outer(sx, sy)
    s = float(np.sum((Yc / sy) ** 2))
    return G, C, s, (Fte - mx) / sx, lambda P: P * sy + my


class LinearGDBaselines(Component):
    def applies(self, ctx):
        return ctx.has_training_rows and ctx.gd and ctx.linear

    def __call__(self, ctx):
        out, dt, lam = ctx.out, ctx.dt, float(ctx.out.lambda_inner)
        _, k_sub, k_core = ctx.keys
        idx, kgs = zip(*subsets(k_sub, ctx.settings["n_subsets"], ctx.n_tr, out.m), strict=True)
        picked = np.stack(idx)                        # (subsets, m): one gather, one featurisation
        ctx.drawn["subsets"] = list(idx)
        Fs, Ys, ks, kinds = [ctx.Ftr[picked]], [ctx.Ytr_s[picked]], [k[None] for k in kgs], []
        core = ctx.drawn["coresets"] = _coreset_sets(ctx, lam)
        for kind, (Xs, Yc) in core:
            Fs.append(ctx.Ftr.featurize(Xs))
            Ys.append(Yc)
            ks.append(split(k_core, Xs.shape[0]))
            kinds.append((kind, Xs.shape[0]))
        gd_preds, ridge_preds = (np.asarray(a) for a in linear_gd_sets(
            out.model, out.inner_solver, on_device(np.concatenate(Fs), dt), on_device(np.concatenate(Ys), dt), ctx.Fte,
            concat(ks), n_draws=max(1, ctx.settings["n_inits"] // 4), T=out.T, lam=lam))
        sub_proc = f"{out.T} GD steps, η̃ = ½ bound of Lemma 2.4 for that set, {out.model.init_description}"
        shape = (-1, ctx.Fte.shape[0], out.y.shape[1])
        k = len(idx)
        ctx.add("subset", "random subset, T-step GD", out.m, sub_proc, gd_preds[:k].reshape(shape))
        ctx.add("subset_ridge", "random subset, ridge", out.m, out.procedure(limit=True), ridge_preds[:k])
        for kind, num in kinds:
            ctx.add(kind, f"{LABELS[kind]}, T-step GD", out.m, sub_proc, gd_preds[k:k + num].reshape(shape))
            k += num
        _full_ridge_rows(ctx, "full data, ridge", out.procedure(limit=True), lam,
                         own_units=isinstance(getattr(out.model, "feature_map", None), Identity))


class ExactBaselines(Component):
    def applies(self, ctx):
        return ctx.has_training_rows and not ctx.gd

    def __call__(self, ctx):
        out, dt, lam = ctx.out, ctx.dt, float(ctx.out.lambda_inner)
        _, k_sub, _ = ctx.keys
        no_theta0 = ctx.no_theta0()
        preds = []
        for idx, _ in subsets(k_sub, ctx.settings["n_subsets"], ctx.n_tr, out.m):
            ctx.drawn["subsets"].append(idx)
            preds.append(ctx.train_predict(on_device(ctx.Ftr[idx], dt), on_device(ctx.Ytr_s[idx], dt), 0.0,
                                           no_theta0)[0])
        ctx.add("subset", "random subset", out.m, out.procedure(), preds)
        core = ctx.drawn["coresets"] = _coreset_sets(ctx, lam)
        for kind, (Xs, Ys) in core:
            ctx.add(kind, LABELS[kind], out.m, out.procedure(),
                    [ctx.train_predict(on_device(f, dt), on_device(y, dt), 0.0, no_theta0)[0]
                     for f, y in zip(ctx.Ftr.featurize(Xs), Ys, strict=True)])
        if ctx.exact_full:
            lam_full = out.meta.full_data_lambda_inner or lam
            krr = out.meta.krr_paper
            label = (f"exact ridge, λ = {krr.original_lambda:g} (the original model)"
                     if krr is not None and krr.original_lambda is not None else out.procedure())
            _full_ridge_rows(ctx, "full data", label, float(lam_full))
        else:
            ctx.add("full", "full data", ctx.n_tr, out.procedure(),
                    [ctx.train_predict(on_device(ctx.F_all, dt), on_device(ctx.Ytr_s, dt), 0.0, no_theta0)[0]])


class NonlinearBaselines(Component):
    def applies(self, ctx):
        return ctx.has_training_rows and ctx.gd and not ctx.linear

    def __call__(self, ctx):
        out, dt = ctx.out, ctx.dt
        _, k_sub, _ = ctx.keys
        _nonlinear_baselines(ctx, on_device(ctx.F_all, dt), on_device(ctx.Ytr_s, dt), k_sub)
        if ctx.settings["learners"]:           # the other learners' subsets, drawn on the host
            num = min(ctx.settings["n_subsets"], ctx.settings["n_learner_draws"])
            ctx.drawn["subsets"] = [i for i, _ in subsets(fold_in(ctx.key, 11), num, ctx.n_tr, out.m)]
        if ctx.settings["coresets"]:
            ctx.notes.append("Coreset rows are not computed for models not linear in θ (each would need its step "
                             "size tuned, as the random subsets do).")


class MeanRow(Component):
    def __call__(self, ctx):
        ctx.add("mean", "mean of training targets", ctx.n_tr, "constant: the training mean",
                [np.broadcast_to(np.asarray(ctx.Ytr_s, np.float64).mean(axis=0), (ctx.Xte.shape[0],
                                                                                   ctx.out.y.shape[1]))])


class NaiveRow(Component):
    def applies(self, ctx):
        return ctx.has_training_rows and ctx.settings["last_value_column"] is not None

    def __call__(self, ctx):
        j = ctx.settings["last_value_column"]
        col = ctx.Xte[:, [j] * ctx.out.y.shape[1]]                  # original units → standardised for add()
        ctx.add("naive", "naive: last value", 0, f"y_t = input column {j} (no training)",
                [ctx.out.standardizer.y(col)])


class Learners(Component):
    def applies(self, ctx):
        return ctx.has_training_rows and bool(ctx.settings["learners"])

    def __call__(self, ctx):
        ctx.learners, failed = learner_rows(ctx.settings["learners"], self.sets(ctx), ctx.Xte, ctx.Yte)
        ctx.notes.extend(failed + _learner_notes(ctx.out))

    @staticmethod
    def sets(ctx: EvalContext) -> list:
        """The training sets the other learners train on, in original units with their sample weights: the
        distilled set, the random subsets and coresets drawn for the table (the first ``n_learner_draws`` of each;
        n/m per row, as each stands for n/m training rows) and all training rows (unweighted)."""
        out, draws, std = ctx.out, ctx.settings["n_learner_draws"], ctx.out.standardizer
        Xtr, Ytr = ctx.Xtr, ctx.Ytr
        w = np.full(out.m, ctx.n_tr / out.m)
        sets = [("distilled", "distilled set", out.m, [(out.X, out.Y, out.sample_weight)])]
        if ctx.drawn["subsets"]:
            rows = [np.sort(i) for i in ctx.drawn["subsets"][:draws]]
            sets.append(("subset", "random subsets", out.m,
                         [(np.asarray(Xtr[r]), np.asarray(Ytr[r]), w) for r in rows]))
        for kind, (Xs, Ys) in ctx.drawn["coresets"]:
            sets.append((kind, LABELS[kind], out.m, [(std.x_inverse(a), std.y_inverse(b), w)
                                                     for a, b in zip(Xs[:draws], Ys[:draws], strict=True)]))
        sets.append(("full", "full data", ctx.n_tr, [(np.asarray(Xtr), np.asarray(Ytr), None)]))
        return sets


def _learner_notes(out: DistillOutput) -> list[str]:
    if out.transfers:
        return ["Other learners are given the distilled set's sample weights (n/m per row): a learner of second "
                "moments (LinearRegression; Ridge, Lasso at a fixed penalty) fits on it exactly what it fits on all "
                "rows. RidgeCV is not one: it chooses its penalty by leave-one-out over individual rows."]
    return [f"The distilled set is procedure-bound (valid for {out.procedure()} only): the other learners are not "
            "expected to train well on it. jaxdistill.distill_moments gives a set they can use."]


class PrivateBaselines(Component):
    """For a set made from a private release (``out.meta.privacy``): the same construction without privacy
    (``nonprivate``), AdaSSP on a fresh release of the training rows at the same budget and bounds (``adassp``), and
    diffprivlib's LinearRegression at the same ε (``diffprivlib``, where installed). The full-data ridge rows come
    from the other components."""

    def applies(self, ctx):
        return ctx.has_training_rows and bool(ctx.out.meta.privacy)

    def __call__(self, ctx):
        from jaxdistill._src.privacy.baselines import DIFFPRIVLIB_NOTE, diffprivlib_predict
        from jaxdistill._src.privacy.release import LAMBDA_SHARE, private_statistics
        out, priv = ctx.out, ctx.out.meta.privacy
        parties = priv.get("parties") or [priv]
        first = parties[0]
        Xtr, Ytr = np.asarray(ctx.Xtr), np.asarray(ctx.Ytr)
        std = out.standardizer
        nonprivate, label = _nonprivate_set(out, Xtr, Ytr, priv.get("set"))
        ctx.add("nonprivate", f"non-private {label}", out.m, f"{nonprivate.procedure()}, from the raw training rows",
                std.y(nonprivate.predict(ctx.Xte))[None].reshape(1, ctx.Xte.shape[0], -1))
        seed = int(np.asarray(key_to_list(fold_in(ctx.key, 11))).ravel()[-1])     # diffprivlib takes an integer
        budget = ", ".join(f"ε = {p['epsilon']:g}, δ = {p['delta']:.3g}" for p in parties)
        # AdaSSP needs the private λ_min: a release made without one (lambda_share 0) is compared at the default share
        rel = private_statistics(Xtr, Ytr, x_range=first["x_range"], y_range=first["y_range"],
                                 epsilon=first["epsilon"], delta=first["delta"], key=seed,
                                 lambda_share=first["lambda_share"] or LAMBDA_SHARE)
        ctx.add("adassp", "AdaSSP (same budget)", ctx.n_tr, f"ridge on a fresh release of the training rows ({budget}, "
                "the same bounds; Wang 2018's λ rule)", std.y(rel.predict_ridge(ctx.Xte))[None])
        pred = diffprivlib_predict(Xtr, Ytr, ctx.Xte, first, seed)
        if pred is None:
            ctx.notes.append("diffprivlib is not installed: its row is left out (pip install diffprivlib).")
        else:
            ctx.add("diffprivlib", "diffprivlib LinearRegression (same ε)", ctx.n_tr,
                    f"functional mechanism, ε = {first['epsilon']:g}, δ = 0", std.y(pred)[None])
            ctx.notes.append(DIFFPRIVLIB_NOTE)
        ctx.notes.append("Private set: the subsets, coresets and full-data rows are not private (they read the raw "
                         "rows); the AdaSSP and diffprivlib rows are, at the set's budget.")


def _nonprivate_set(out: DistillOutput, Xtr, Ytr, method: str | None):
    """The same construction from the raw rows: a moment set (m ≥ d + k + 1) or the analytic set (λ by GCV), or a
    bilevel run with the result's settings."""
    if method == "bilevel":
        from jaxdistill._src.api import distill
        return distill(Xtr, Ytr, m=out.m, steps=out.config.steps if out.config else 5000), "bilevel set"
    from jaxdistill._src.analytic.moments import _lambda, distill_moments
    try:
        return distill_moments(Xtr, Ytr, m=out.m), "moment set"
    except ValueError:                                  # m below rank + 1: the analytic set, with the same GCV λ
        from jaxdistill._src.analytic.krr import distill_analytic
        from jaxdistill._src.data.sources import ArraySource, sufficient_statistics
        lam, _ = _lambda("auto", sufficient_statistics(ArraySource(Xtr, Ytr)))
        return distill_analytic(Xtr, Ytr, m=out.m, lam=lam * Xtr.shape[0]), "analytic set"


#: the components of an evaluation, in table order (each adds its rows where it `applies`)
COMPONENTS = (Distilled(), NonlinearBaselines(), LinearGDBaselines(), ExactBaselines(), PrivateBaselines(), MeanRow(),
              NaiveRow(), Learners())


# ------------------------------------------------------------------------------------------ compiled programs
@partial(jit, static_argnames=("n_draws", "T", "lam"))
def linear_gd_sets(model, solver, Fsets, Ysets, Fte, keys, *, n_draws: int, T: int, lam: float):
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


#: step sizes tried for a baseline trained by plain GD on a nonlinear model, as fractions of its bound
STEP_GRID = (0.9, 0.45, 0.2, 0.1, 0.05, 0.02)
#: the "to convergence" reference trains the full data for this many times T steps
CONVERGED_FACTOR = 10
#: a nonlinear model's full-data step size is chosen by fitting at most this many training rows (and scoring at
#: most a quarter as many others): the choice needs rows the fit did not see, not all of them. Below 25,000
#: training rows it is the 80/20 split of every row; at 250,000 it cut the full-data rows' cost ~4×
#: (benchmarks/results/nonlinear_evaluate_large.md)
SELECT_ROWS = 20_000
#: θ₀ draws of a nonlinear model's full-data rows once the training rows exceed SELECT_ROWS + SELECT_ROWS // 4:
#: their mean is unchanged in expectation, their spread over draws less precise; at 250,000 rows the full data's
#: T and 10·T steps from 8 draws were ~90 % of evaluate's time (benchmarks/results/nonlinear_evaluate_large.md)
LARGE_DATA_DRAWS = 2


def _continues(solver) -> bool:
    """Whether a run of s₂ steps may continue one of s₁ (< s₂) steps from its θ: only for the library's own plain GD
    (constant step, no optimiser state). A user's solver, or a subclass, may declare ``plain_gd`` (Lemma 2.4's bound
    applies) and still train otherwise (a schedule, momentum kept in ``solve``): it is trained from θ₀ each time."""
    return type(solver) is UnrolledGD and solver.plain_gd


def _grid_fit(model, solver, F, Y, Fv, Yv, keep: bool, th0s, steps, lam, etas):
    """GD on (F, Y) from ``th0s`` at each step size of ``etas`` for each number of steps in ``steps`` (increasing):
    per count, (mean squared error on the selection rows (Fv, Yv) — inf where the predictions are not finite —,
    the trained parameters θ (stacked over θ₀) if ``keep``, else None). Under the library's plain GD
    (`_continues`) the longer counts continue from the shorter one's θ (GD for s₁ then s₂ − s₁ steps is GD for s₂
    steps), so they cost s₂ steps in all, not s₁ + s₂. The test rows are not predicted here: only at the step size
    chosen, a subset at a time (`nonlinear_program`). More than one count maps over the step sizes one at a time
    (bounded memory on many rows); one count vmaps them."""
    def score(sol):
        pv = sol.predict(Fv)
        return jnp.where(jnp.all(jnp.isfinite(pv)), jnp.mean((pv - Yv[None]) ** 2), jnp.inf)

    def at(eta):
        out, th, done = [], th0s, 0
        for s in steps:
            start, n = (th, s - done) if _continues(solver) else (th0s, s)
            sol = solver.solve(model, Support(F, Y, eta, lam), start, n, n)
            th, done = sol.thetas, s
            out.append((score(sol), sol.thetas if keep else None))
        return out

    return jax.lax.map(at, etas) if len(steps) > 1 else jax.vmap(at)(etas)


@partial(jit, static_argnames=("m", "n_subsets", "n_draws", "n_val", "T", "long", "n_sel", "n_fit", "n_full_draws",
                               "lam"))
def nonlinear_program(model, solver, Ftr, Ytr, Fte, key, *, m: int, n_subsets: int, n_draws: int, n_val: int,
                      T: int, long: int, n_sel: int, n_fit: int, n_full_draws: int, lam: float):
    """Every baseline of a nonlinear model trained by T-step GD in one compiled program.

    Random subsets (vmapped over subsets and the step-size grid): m rows, each trained at every step size
    ``STEP_GRID`` × the subset's GD bound; the one with the lowest loss on ``n_val`` other training rows gives the
    predictions on Fte (from ``n_draws`` θ₀). Full data: the fraction of the GD bound on all rows chosen the same
    way on a split (``n_sel`` selection rows, ``n_fit`` others fitted; the grid mapped sequentially, bounded
    memory), for T and for ``long`` steps, then T and ``long`` steps on all rows at the chosen fractions, from
    ``n_full_draws`` θ₀; where both choose the same step size under plain GD (`_continues`), the ``long`` run
    continues the T run (the same GD steps, T fewer of them). Returns (subset predictions (n_subsets, n_draws, n_te,
    d_out), the subsets' chosen grid indices, [(full predictions, chosen index) for T and long])."""
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
        [(losses, thetas)] = _grid_fit(model, solver, F, Y, Ftr[rest], Ytr[rest], True, th0s, (T,), lam, etas)
        best = jnp.argmin(losses)
        return jax.tree_util.tree_map(lambda a: a[best], thetas), best

    sub_thetas, sub_best = jax.vmap(subset)(jax.random.split(k_sub, n_subsets))
    # the test rows predicted only at each subset's chosen step size, one subset at a time: memory n_draws × n_te,
    # not n_subsets × the grid × n_draws × n_te (benchmarks/results/nonlinear_evaluate_memory.md)
    sub_preds = jax.lax.map(lambda th: jax.vmap(lambda t: model.apply(t, Fte))(th), sub_thetas)
    perm = jax.random.permutation(k_sel, n_tr)
    fit, sel = perm[n_sel:n_sel + n_fit], perm[:n_sel]
    th0s = model.sample_init(k_full, Ftr[:1], d_out, n_full_draws)
    etas = grid * model.gd_stability_bound(Ftr, Ytr, lam)   # fractions of the bound of the rows finally trained on
    (loss_T, _), (loss_long, _) = _grid_fit(model, solver, Ftr[fit], Ytr[fit], Ftr[sel], Ytr[sel], False, th0s,
                                             (T, long), lam, etas)
    best_T, best_long = jnp.argmin(loss_T), jnp.argmin(loss_long)
    train = lambda th, eta, n: solver.solve(model, Support(Ftr, Ytr, eta, lam), th, n, n)  # noqa: E731
    sol_T = train(th0s, etas[best_T], T)
    fresh = lambda: train(th0s, etas[best_long], long).predict(Fte)  # noqa: E731
    pred_long = (jax.lax.cond(best_T == best_long, lambda: train(sol_T.thetas, etas[best_long], long - T).predict(Fte),
                              fresh) if _continues(solver) else fresh())
    return sub_preds, sub_best, [(sol_T.predict(Fte), best_T), (pred_long, best_long)]


def _nonlinear_baselines(ctx: EvalContext, Ftr, Ytr, key) -> None:
    """Baselines for a nonlinear model trained by T-step GD: each trained by the same procedure with its
    own step size, chosen on training rows it did not fit (the test rows are never used to choose); one
    compiled program (`nonlinear_program`)."""
    out, n_inits = ctx.out, ctx.settings["n_inits"]
    mdl, T = out.model, out.T
    n_tr = Ftr.shape[0]
    n_sel = max(1, min(n_tr // 5, SELECT_ROWS // 4))
    n_fit = min(n_tr - n_sel, SELECT_ROWS)
    n_draws = max(1, n_inits // 4)
    large = n_fit + n_sel < n_tr
    n_full_draws = min(n_draws, LARGE_DATA_DRAWS) if large else n_draws
    sub_preds, sub_best, full = nonlinear_program(
        mdl, out.inner_solver, Ftr, Ytr, ctx.Fte, key, m=out.m, n_subsets=ctx.settings["n_subsets"],
        n_draws=n_draws, n_val=min(1000, n_tr - out.m), T=T, long=CONVERGED_FACTOR * T, n_sel=n_sel,
        n_fit=n_fit, n_full_draws=n_full_draws, lam=float(out.lambda_inner))
    split = (f"{n_fit:,} training rows fitted and {n_sel:,} others scored" if large else
             "a 20 % split of the training rows")
    draws = (f"; {n_full_draws} θ₀ draws, as for every data set over {n_fit + n_sel:,} rows"
             if n_full_draws < n_draws else "")
    fracs = np.asarray(STEP_GRID)[np.asarray(sub_best)]
    sub_preds = np.asarray(sub_preds)
    ctx.add("subset", "random subset, T-step GD", out.m, f"{T} GD steps, step size tuned per subset on other "
            f"training rows (median {np.median(fracs):g} × its GD bound), {mdl.init_description}",
            sub_preds.reshape(-1, *sub_preds.shape[2:]))
    rows = (("full", T, "full data, T-step GD"),
            ("full_long", CONVERGED_FACTOR * T, f"full data, {CONVERGED_FACTOR}·T-step GD"))
    for (row_id, steps, label), (pred, best) in zip(rows, full, strict=True):
        ctx.add(row_id, label, n_tr, f"{steps} GD steps, step size {STEP_GRID[int(best)]:g} × its GD bound (chosen "
                f"on {split}{draws}), {mdl.init_description}", np.asarray(pred))
