"""Held-out evaluation of a distilled set against honest baselines.

Every model is fitted in the standardised space of the distilled set and scored on held-out data
in the original units (MSE and R²). Rows of the report:

* ``distilled, T-step GD`` — the procedure distillation optimised: T inner steps with the learned
  η̃ from fresh θ₀ ~ p(θ₀) (mean ± std over draws);
* ``distilled, ridge`` — the T → ∞ limit: ridge with λ_I on the distilled set (linear models);
* ``random subset, T-step GD`` / ``random subset, ridge`` — m real training rows drawn at random,
  trained the same two ways, averaged over ``n_subsets`` draws. A subset has no learned η̃; it uses
  half the stability bound of Lemma 2.4 of that subset, the rule distillation starts from;
* ``full data, ridge`` — ridge with λ_I on all training rows: what distillation tries to match.

With a :class:`KernelRidge` inner solver the rows are ``distilled, KRR``, ``random subset, KRR``
and ``full data, KRR``: the same kernel and λ_I, solved exactly.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxdistill._src.closed_form import ridge
from jaxdistill._src.data import as_2d_float
from jaxdistill._src.inner import InnerSolver, default_inner_solver
from jaxdistill._src.krr import KernelRidge
from jaxdistill._src.models import InnerModel, LinearModel, stability_bound
from jaxdistill._src.output import DistillOutput


@dataclasses.dataclass(frozen=True)
class EvalReport:
    """Rows of (method, MSE mean/std, R² mean/std) on held-out data, in original units."""

    rows: list[dict]
    m: int
    n_train: int
    n_test: int

    def row(self, method: str) -> dict:
        for r in self.rows:
            if r["method"] == method:
                return r
        raise KeyError(f"No row {method!r}; rows are {[r['method'] for r in self.rows]}.")

    def to_markdown(self) -> str:
        out = [f"Held-out results (m = {self.m}, n_train = {self.n_train}, n_test = {self.n_test})", "",
               "| method | points | test MSE | test R² |", "|---|---:|---:|---:|"]
        for r in self.rows:
            pm = lambda mu, sd: f"{mu:.4g}" if sd == 0 else f"{mu:.4g} ± {sd:.2g}"  # noqa: E731
            out.append(f"| {r['method']} | {r['points']} | {pm(r['mse'], r['mse_std'])} | "
                       f"{pm(r['r2'], r['r2_std'])} |")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.to_markdown()


def _scores(pred, Y):
    """MSE (mean over rows and outputs) and R² = 1 − SSE/SST (pooled over outputs)."""
    sse = np.sum((pred - Y) ** 2)
    sst = np.sum((Y - Y.mean(axis=0)) ** 2)
    return sse / Y.size, 1.0 - sse / sst


def _gd_predictions(model, solver, F, Yd, eta, lam, T, key, num, Ftest):
    """Predictions (num, n_test, d_out) of models trained by T inner steps from ``num`` θ₀ draws."""
    theta0s = jax.vmap(lambda k: model.init(k, F[:1], Yd.shape[1]))(jax.random.split(key, num))
    train = lambda th: solver.train(model, F, Yd, eta, lam, th, T, T)  # noqa: E731
    thetas = jax.vmap(train)(theta0s)
    return jax.vmap(lambda th: model.apply(th, Ftest))(thetas)


def _ridge_predictions(F, Yd, lam, Ftest):
    """Predictions of ridge (λ_I, the T → ∞ limit of the inner loop) fitted on (F, Yd)."""
    return Ftest @ ridge(F, Yd, lam)


def evaluate(out: DistillOutput, X_test, Y_test, X_train, Y_train, *, key: jax.Array | int = 0,
             model: InnerModel | None = None, inner_solver: InnerSolver | None = None,
             n_inits: int = 32, n_subsets: int = 20) -> EvalReport:
    """Compare the distilled set with a random real subset of the same size and full-data ridge.

    Args:
      out: a :class:`DistillOutput`.
      X_test, Y_test: held-out data in original units (never seen by distillation).
      X_train, Y_train: the training data in original units (for the baselines).
      key: key or seed for θ₀ draws and subset draws.
      model, inner_solver: those used for distillation (defaults: linear model, its default solver).
      n_inits: θ₀ draws per T-step-GD evaluation.
      n_subsets: random subsets drawn for the baseline.

    Returns:
      An :class:`EvalReport`; ``print(report)`` shows a markdown table.
    """
    model = LinearModel() if model is None else model
    solver = default_inner_solver(model) if inner_solver is None else inner_solver
    key = jax.random.PRNGKey(key) if isinstance(key, (int, np.integer)) else key
    std = out.standardizer
    Xte = as_2d_float("X_test", X_test, allow_1d=False)
    Yte = as_2d_float("Y_test", Y_test, allow_1d=True)
    Xtr = as_2d_float("X_train", X_train, allow_1d=False)
    Ytr = as_2d_float("Y_train", Y_train, allow_1d=True)
    d, d_out = out.x.shape[1], out.y.shape[1]
    for name, a, c in (("X_test", Xte, d), ("Y_test", Yte, d_out), ("X_train", Xtr, d), ("Y_train", Ytr, d_out)):
        if a.shape[1] != c:
            raise ValueError(f"{name} has {a.shape[1]} columns; the distilled set has {c}.")
    cfg = out.config
    lam = cfg.lambda_inner
    T = int(out.history["T"][-1]) if out.history["T"].size else cfg.T
    dt = jnp.result_type(float)
    Fte = model.featurize(jnp.asarray(std.x(Xte), dt))
    Ftr = model.featurize(jnp.asarray(std.x(Xtr), dt))
    Ytr_s = jnp.asarray(std.y(Ytr), dt)
    to_orig = lambda P: std.y_inverse(np.asarray(P, np.float64))  # noqa: E731
    rows = []

    def add(method, points, preds):
        s = np.array([_scores(to_orig(p), Yte) for p in preds])
        rows.append({"method": method, "points": points, "mse": float(s[:, 0].mean()),
                     "mse_std": float(s[:, 0].std()), "r2": float(s[:, 1].mean()), "r2_std": float(s[:, 1].std())})

    k_gd, k_sub = jax.random.split(key)
    Fd, Yd = model.featurize(jnp.asarray(out.x, dt)), jnp.asarray(out.y, dt)
    if isinstance(solver, KernelRidge):
        # The inner solver is the exact (kernel) ridge solve: compare like with like.
        add("distilled, KRR", out.m, [solver.predict(Fd, Yd, lam, Fte)])
        subs = []
        for ks in jax.random.split(k_sub, n_subsets):
            idx = jax.random.choice(ks, Xtr.shape[0], (out.m,), replace=False)
            subs.append(solver.predict(Ftr[idx], Ytr_s[idx], lam, Fte))
        add("random subset, KRR", out.m, subs)
        add("full data, KRR", Xtr.shape[0], [solver.predict(Ftr, Ytr_s, lam, Fte)])
        return EvalReport(rows=rows, m=out.m, n_train=Xtr.shape[0], n_test=Xte.shape[0])
    add("distilled, T-step GD", out.m,
        _gd_predictions(model, solver, Fd, Yd, jnp.asarray(out.inner_lr, dt), lam, T, k_gd, n_inits, Fte))
    if model.linear_in_params:
        add("distilled, ridge", out.m, [_ridge_predictions(Fd, Yd, lam, Fte)])

    gd_preds, ridge_preds = [], []
    for k in jax.random.split(k_sub, n_subsets):
        ks, kg = jax.random.split(k)
        idx = jax.random.choice(ks, Xtr.shape[0], (out.m,), replace=False)
        Fs, Ys = Ftr[idx], Ytr_s[idx]
        eta = 0.5 * stability_bound(Fs, lam) if model.linear_in_params else jnp.asarray(out.inner_lr, dt)
        gd_preds.append(_gd_predictions(model, solver, Fs, Ys, eta, lam, T, kg, max(1, n_inits // 4), Fte))
        if model.linear_in_params:
            ridge_preds.append(_ridge_predictions(Fs, Ys, lam, Fte))
    add("random subset, T-step GD", out.m, np.concatenate([np.asarray(g) for g in gd_preds]))
    if model.linear_in_params:
        add("random subset, ridge", out.m, ridge_preds)
        add("full data, ridge", Xtr.shape[0], [_ridge_predictions(Ftr, Ytr_s, lam, Fte)])
    return EvalReport(rows=rows, m=out.m, n_train=Xtr.shape[0], n_test=Xte.shape[0])
