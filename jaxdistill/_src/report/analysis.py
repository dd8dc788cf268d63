"""Convergence analysis of a distillation run (regression paper, Theorem 2.9 and §2.3).

Theorem 2.9 predicts that during the main run, log L_s is linear in the outer step s with slope
log(1 − α_x μ_T). [`fit_log_linear`][jaxdistill.analysis.fit_log_linear] fits that line and returns μ_T = (1 −
e^slope)/α_x.

Main-run rule (fixed in code, never tuned per run): candidate windows [a, b) have edges on a grid
of 5 % of the run and span at least ``min_span`` (default 20 %) of it. A window is *linear* when
the least-squares fit of log L_s on s has a negative slope, R² ≥ ``r2_min`` (default 0.9), and the
slopes fitted separately on its two halves agree within ``half_tol`` (default 10 %) of the
window's slope — R² alone accepts curved windows when the loss spans decades. The main run is
the longest linear window, ties going to the earliest start; warm-up is what precedes it,
cool-down what follows. If no window is linear, the one with the highest R² is used and
``met_threshold`` is False.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np

from jaxdistill._src.components.models import InnerModel, LinearModel
from jaxdistill._src.inner.base import Support
from jaxdistill._src.inner.unrolled import UnrolledGD


@dataclasses.dataclass(frozen=True)
class LogLinearFit:
    """Fit of log L_s = intercept + slope · s over the main run [start, stop) (Theorem 2.9's linear rate).

    Attributes:
      slope, slope_se: the fitted slope of log L_s per outer step and its standard error.
      intercept: the fitted log L at s = 0.
      r2: R² of the fit.
      start, stop: the steps fitted, [start, stop).
      mu, mu_se: the rate μ_T = (1 − e^slope)/α_x the slope implies, and its standard error.
      met_threshold: whether the window met ``r2_min`` and ``half_tol`` (else it is the window of best R²).
    """

    slope: float
    slope_se: float
    intercept: float
    r2: float
    start: int
    stop: int
    mu: float
    mu_se: float
    met_threshold: bool

    def predict(self, s):
        return np.exp(self.intercept + self.slope * np.asarray(s))


def _ols(s, y):
    s_mean, y_mean = s.mean(), y.mean()
    sxx = np.sum((s - s_mean) ** 2)
    slope = np.sum((s - s_mean) * (y - y_mean)) / sxx
    intercept = y_mean - slope * s_mean
    resid = y - intercept - slope * s
    ssr = np.sum(resid ** 2)
    sst = np.sum((y - y_mean) ** 2)
    r2 = 1.0 - ssr / sst if sst > 0 else 0.0
    se = math.sqrt(ssr / max(len(s) - 2, 1) / sxx)
    return slope, se, intercept, r2


def fit_log_linear(loss, alpha_x: float, r2_min: float = 0.9, half_tol: float = 0.1,
                   grid: float = 0.05, min_span: float = 0.2) -> LogLinearFit:
    """Fit the main run of ``loss`` (outer loss per step, step s = index + 1) on a log scale.

    Args:
      loss: outer losses L_s, s = 1..S (positive).
      alpha_x: the outer step size α_x, for μ_T = (1 − e^slope)/α_x.
      r2_min: R² a window must reach to count as linear.
      half_tol: largest relative difference between the slopes of the window's two halves.
      grid: spacing of candidate window edges as a fraction of the run.
      min_span: shortest window, as a fraction of the run.

    Returns:
      A [`LogLinearFit`][jaxdistill.analysis.LogLinearFit]; ``mu_se`` propagates the slope's standard error
      (|dμ/dslope| = e^slope/α_x). The OLS standard error ignores autocorrelation of the loss
      noise, so the spread across seeds is the more honest ± (the reproduction reports both).
    """
    loss = np.asarray(loss, np.float64)
    if loss.size < 20 or not np.all(np.isfinite(loss)) or np.any(loss <= 0):
        raise ValueError(f"Need at least 20 positive finite losses to fit, got {loss.size} "
                         f"(all finite and positive: {bool(np.all(np.isfinite(loss)) and np.all(loss > 0))}).")
    y = np.log(loss)
    S = y.size
    s = np.arange(1, S + 1, dtype=np.float64)
    k = int(round(1 / grid))
    edges = sorted({int(round(i * grid * S)) for i in range(0, k + 1)})
    min_len = max(10, int(round(min_span * S)))
    best, best_key = None, None
    for a in edges:
        for b in edges:
            if b - a < min_len:
                continue
            slope, se, icpt, r2 = _ols(s[a:b], y[a:b])
            h = (a + b) // 2
            halves = abs(_ols(s[a:h], y[a:h])[0] - _ols(s[h:b], y[h:b])[0])
            ok = r2 >= r2_min and slope < 0 and halves <= half_tol * abs(slope)
            key = (ok, (b - a) if ok else r2, -a)
            if best_key is None or key > best_key:
                best, best_key = (slope, se, icpt, r2, a, b, ok), key
    slope, se, icpt, r2, a, b, ok = best
    mu = (1.0 - math.exp(slope)) / alpha_x
    return LogLinearFit(slope=slope, slope_se=se, intercept=icpt, r2=r2, start=a, stop=b, mu=mu,
                        mu_se=math.exp(slope) / alpha_x * se, met_threshold=ok)


def inner_curve(x, y, eta, lambda_inner: float, T: int, key: jax.Array, model: InnerModel | None = None,
                n_inits: int = 8) -> np.ndarray:
    """Inner loss ℓ(x̃, θ_t) of Def. 2.1 for t = 0..T, averaged over ``n_inits`` draws θ₀ ~ p(θ₀).

    The top panel of the regression paper's Figure 1: how fast the inner loop converges on the
    distilled set (x, y, η̃) of a given outer step.

    Args:
      x: a distilled set's inputs X̃ (m, d), in the units the model was trained in (standardised).
      y: its targets Ỹ (m, d_out).
      eta: the inner learning rate η̃.
      lambda_inner: the inner ridge penalty λ_I.
      T: inner steps.
      key: the ``jax.random`` key of the θ₀ draws.
      model: the inner model (default [`LinearModel`][jaxdistill.LinearModel], θ₀ = 0).
      n_inits: θ₀ draws averaged over.

    Returns:
      The mean inner loss at t = 0..T, shape (T + 1,).
    """
    model = LinearModel() if model is None else model
    F = model.featurize(jax.numpy.asarray(x))
    y = jax.numpy.asarray(y)
    th0s = model.sample_init(key, F, y.shape[1], n_inits)
    curves = jax.vmap(lambda th: UnrolledGD().trajectory(model, Support(F, y, eta, lambda_inner), th, T))(th0s)
    return np.asarray(curves.mean(axis=0))
