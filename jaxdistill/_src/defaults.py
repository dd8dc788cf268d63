"""Defaults chosen by shapes and capabilities: the inner solver and the outer objective of a run."""

from __future__ import annotations

import warnings

from jaxdistill._src.components.models import InnerModel
from jaxdistill._src.inner.base import InnerSolver
from jaxdistill._src.inner.exact_linear import SPECTRAL_FROM, ExactLinearGD
from jaxdistill._src.inner.unrolled import UnrolledGD
from jaxdistill._src.problem.full_data import MAX_AUTO_FEATURES, FullDataLoss
from jaxdistill._src.problem.objectives import BatchLoss, ExpectedBatchLoss, Objective

#: the scan's thin matrix products (p × m by m × Q·d_out) run at about a fifth of the speed per flop of the
#: doubling path's square r × r products (measured on 2 CPU cores: benchmarks/results/solver_choice.md)
SCAN_FLOP_PENALTY = 5.0
#: the eigendecomposition route of the fast path costs about this many r³ flop-equivalents per step (its ``eigh``
#: and a few r × r products; measured against the scan at m = p = 1000, T = 100, Q = 8: equal times)
SPECTRAL_COST = 8.0


def default_inner_solver(model: InnerModel, m: int | None = None, p: int | None = None, T: int | None = None,
                         q: int = 1, d_out: int = 1) -> InnerSolver:
    """The cheaper exact inner solver for the shapes given; the unrolled scan for nonlinear models.

    For a model linear in θ both [`ExactLinearGD`][jaxdistill.ExactLinearGD] (closed form by doubling) and
    [`UnrolledGD`][jaxdistill.UnrolledGD] (the scan) give the same θ_T and meta-gradient to rounding (tested); their
    costs differ: about 2·⌈log₂ T⌉·r³ flops for the fast path's doubling (r = min(m, p) < ``SPECTRAL_FROM``) or
    ``SPECTRAL_COST``·r³ for its eigendecomposition (larger r), against T·Q·d_out·2·m·p for the scan, whose thin
    products are ``SCAN_FLOP_PENALTY`` times slower per flop. The fast path wins for small r or long T (every
    bundled data set at the defaults), the scan for wide problems with few steps (m = p = 1000, T = 50). Without
    the shapes: the fast path.

    Args:
      model: the inner model.
      m: distilled points.
      p: features (``model.num_features(d)``).
      T: inner steps (the largest a schedule reaches).
      q: initialisations per outer step.
      d_out: target columns.

    Returns:
      An [`ExactLinearGD`][jaxdistill.ExactLinearGD] or [`UnrolledGD`][jaxdistill.UnrolledGD].
    """
    if not model.linear_in_params:
        return UnrolledGD()
    if m is None or p is None or T is None:
        return ExactLinearGD()
    r = min(m, p)
    fast = (SPECTRAL_COST if r >= SPECTRAL_FROM else 2.0 * max(1, int(T).bit_length())) * float(r) ** 3
    scan = SCAN_FLOP_PENALTY * float(T) * q * d_out * 2.0 * m * p
    return UnrolledGD() if scan < fast else ExactLinearGD()


def default_objective(model: InnerModel, inner_solver: InnerSolver, d: int, kind: str = "auto") -> Objective:
    """The outer objective named by ``kind`` (``config.objective``): ``"batch"``, ``"full_data"``, or
    ``"auto"``, the exact full-data objective where it applies, else Def. 2.5 on sampled batches.

    ``"auto"`` gives [`FullDataLoss`][jaxdistill.FullDataLoss] for models linear in θ trained to a parameter vector (GD
    solvers) with at most ``MAX_AUTO_FEATURES`` features (its statistics are a p×p matrix), and
    [`BatchLoss`][jaxdistill.BatchLoss] otherwise. ``expectation=True`` solvers get the exact expectation over θ₀ in
    either case.

    Args:
      model: the inner model.
      inner_solver: the inner solver.
      d: input columns of the data.
      kind: ``"auto"``, ``"batch"`` or ``"full_data"``.

    Returns:
      A [`FullDataLoss`][jaxdistill.FullDataLoss], [`BatchLoss`][jaxdistill.BatchLoss] or
      [`ExpectedBatchLoss`][jaxdistill.ExpectedBatchLoss].
    """
    expectation = inner_solver.expectation
    full = kind == "full_data" or (kind == "auto" and model.linear_in_params and inner_solver.uses_theta0
                                   and model.num_features(d) <= MAX_AUTO_FEATURES)
    if full:
        return FullDataLoss(expectation=expectation)
    return ExpectedBatchLoss() if expectation else BatchLoss()


def warn_untrained_theta0(model, data, m: int) -> None:
    """Lemma 2.3: with θ₀ ~ N(0, σ²I), σ > 0 and m < p, GD on m points never moves θ₀ outside their span."""
    scale = model.init_scale
    if not model.linear_in_params or not scale:
        return
    p = model.num_features(data.d)
    if m < p:
        warnings.warn(
            f"θ₀ ~ N(0, {scale:g}²I) with m = {m} distilled points and p = {p} features: the part of θ₀ outside "
            f"the span of the {m} points (dimension ≥ {p - m}) is never trained (Lemma 2.3) and stays as noise "
            "in every prediction of the T-step model. Use LinearModel(..., init_scale=0) (the default) or m >= p.",
            stacklevel=5)
