"""Distilled sets made from sufficient statistics alone, with no row to read: saved statistics (a cluster job's
artifact, `SufficientStats.load`) and private releases (``privacy/sets.py``) both come here.

Three constructions, each from the rows' standardised covariance S of z = [x, y] (``moments._joint_covariance``):

* the exact-moment set (eq. M1 of ``moments.py``), rotated towards m draws of N(0, S) (`gaussian_rows`), since no
  real rows exist to rotate towards;
* the KRR paper's set (``krr.analytic_set``) through `FromStatistics`, whose m rows for the free part are
  moment-exact rows of S (of its top m − 1 directions where m ≤ the columns) — as well conditioned as S — or, with
  a feature map, m draws of standardised inputs;
* Algorithm 1 with the exact full-data objective (`bilevel`): ``Distiller`` on a proxy of M rows whose moments
  equal S exactly (so its ``FullDataLoss`` is the statistics' to rounding), no held-out rows (the monitor is
  the full-data objective), no quality check against real rows.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxdistill._src.analytic.krr import _features, _Statistics, statistics_from_sums
from jaxdistill._src.analytic.moments import moment_rows
from jaxdistill._src.components.features import Identity
from jaxdistill._src.components.models import LinearModel
from jaxdistill._src.result import DistillOutput

#: rows of the bilevel run's moment-exact proxy of the statistics (at least this, and 4 (q + m))
PROXY_ROWS = 512


def check_statistics(stats, m: int | None = None) -> None:
    """Refuse statistics a set cannot be made from, saying what to change."""
    if not stats.standardized:
        raise ValueError("These statistics were made with standardize=False (raw, uncentred sums); the sets made from "
                         "statistics need standardised ones: make them with sufficient_statistics(source) (the "
                         "default standardize=True).")
    if m is not None and m >= stats.n:
        raise ValueError(f"m = {m} must be smaller than the {stats.n} rows the statistics summarise.")


def gaussian_rows(S: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """m draws of N(0, S): where a set's rows are rotated towards, or its free part taken from, when no real rows may
    be read. Directions of S at rounding level (as `moment_rows` judges them) are dropped: a draw's 1e-8-sized
    component along them would give its rows singular values the analytic set inverts."""
    ev, V = np.linalg.eigh(S)
    top = float(ev[-1]) if ev.size else 0.0
    ev = np.where(ev > ev.size * np.finfo(np.float64).eps * top * 10, ev, 0.0)
    return rng.standard_normal((m, S.shape[0])) @ (V * np.sqrt(ev)).T


def top_directions(S: np.ndarray, m: int) -> np.ndarray:
    """S restricted to its top m − 1 directions when m − 1 is below its size (m moment-exact rows hold rank m − 1)."""
    if m - 1 >= S.shape[0]:
        return S
    if m <= 1:
        return np.zeros_like(S)
    ev, V = np.linalg.eigh(S)
    return (V[:, -(m - 1):] * ev[-(m - 1):]) @ V[:, -(m - 1):].T


class FromStatistics:
    """The analytic pipeline's data (`krr.analytic_set`) for statistics alone: θ* from the cross products, and for
    the m rows of the free part rows that are made, not read (module docs).

    Args:
      stats: standardised `SufficientStats` (of the inputs, or of a feature map's features).
      schema: the inputs' schema.
      rng: the generator of the made rows.
      S: the joint covariance the identity's rows are moment-exact for (default the statistics' own).
      draw: with a feature map, ``draw(m)`` gives m standardised inputs (default m draws of N(0, I)).
    """

    def __init__(self, stats, schema, rng, S=None, draw=None):
        from jaxdistill._src.analytic.moments import _joint_covariance
        self.stats, self.schema, self.rng = stats, schema, rng
        self.S = _joint_covariance(stats) if S is None else S
        self.d = stats.standardizer.x_mean.size
        self.draw = draw or (lambda m: rng.standard_normal((m, self.d)))

    def statistics(self, fmap, lam: float, standardize: bool, m: int) -> _Statistics:
        return statistics_from_sums(self.stats, self.stats.FtY.shape[1], self.schema, lam, m)

    def features(self, stats: _Statistics, fmap, idx):
        m = len(idx)
        if isinstance(fmap, Identity):
            S = top_directions(self.S, m)
            return moment_rows(S, m, gaussian_rows(S, m, self.rng))[:, :self.d]
        return _features(fmap, self.draw(m))


def bilevel(stats, m: int, lam: float, lam_record: dict, rng, key, S: np.ndarray, distiller,
            fit_args: dict | None = None) -> DistillOutput:
    """Algorithm 1 on the statistics' exact full-data objective (module docs), run by ``distiller`` (a `Distiller`
    whose m, held-out fraction, standardisation and λ_I are replaced here) with ``fit_args`` (callbacks, ...)."""
    import copy

    from jaxdistill._src.problem.full_data import FullDataLoss
    d, k = stats.FtY.shape
    rows = max(PROXY_ROWS, 4 * (d + k + 1 + m))
    U = moment_rows(S, rows, gaussian_rows(S, rows, rng))
    run = copy.copy(distiller)
    run.config = distiller.config.replace(m=m, validation_fraction=0.0, standardize=False, lambda_inner=lam)
    run.objective = FullDataLoss(ridge=lam)
    out = run.fit(U[:, :d], U[:, d:], key=key, **(fit_args or {}))
    return dataclasses.replace(out, standardizer=stats.standardizer, schema=stats.schema).replace(
        meta=out.meta.replace(init_rows=None, lambda_choice=lam_record, n_train=int(round(stats.n)),
                              extra={**out.meta.extra, "proxy_rows": rows}))


def distill_statistics(distiller, X, key, fit_args: dict) -> DistillOutput:
    """`Distiller.fit` of a `RowSource` (one statistics pass) or saved `SufficientStats`: Algorithm 1 on the exact
    full-data objective of the statistics, λ_I chosen on them by generalised cross-validation when ``"auto"``."""
    from jaxdistill._src.analytic.moments import _joint_covariance, _lambda
    from jaxdistill._src.core.keys import as_key, key_to_list
    from jaxdistill._src.data.sources import RowSource, sufficient_statistics
    from jaxdistill._src.problem.full_data import FullDataLoss
    config, model = distiller.config, distiller.model
    what = "a RowSource" if isinstance(X, RowSource) else "statistics"
    if not (isinstance(model, LinearModel) and isinstance(model.feature_map, Identity) and model.init_scale == 0):
        raise ValueError(f"distill from {what} runs the default linear model (identity features, θ₀ = 0): its "
                         "objective is the statistics' exact full-data loss. For a feature map use "
                         "distill_analytic(stats, m=...); for other models pass rows (a memory map).")
    if distiller.objective is not None and not isinstance(distiller.objective, FullDataLoss) or \
            config.objective not in ("auto", "full_data"):
        raise ValueError(f"distill from {what} optimises the exact full-data objective; leave objective at its "
                         "default ('auto').")
    if fit_args.get("validation") is not None:
        raise ValueError(f"distill from {what} holds out no rows (the objective is exact over all of them): leave "
                         "validation out and evaluate the result on your test rows (jaxdistill.evaluate).")
    if not config.standardize:
        raise ValueError(f"distill from {what} works in standardised units: leave standardize=True.")
    stats = sufficient_statistics(X) if isinstance(X, RowSource) else X
    if stats.feature_map is not None:
        raise ValueError(f"These statistics are of a feature map ({type(stats.feature_map).__name__}); distill "
                         "needs them of the inputs themselves. Use distill_analytic(stats, m=...).")
    check_statistics(stats, config.m)
    if stats.schema is None:
        from jaxdistill._src.data.schema import InputSchema
        stats = stats._replace(schema=InputSchema(n_features=stats.FtF.shape[0]))
    lam, record = _lambda(config.lambda_inner, stats)
    rng = np.random.default_rng(np.random.SeedSequence(key_to_list(as_key(key))))
    args = {k: v for k, v in fit_args.items() if k != "validation"}
    return bilevel(stats, config.m, lam, record, rng, key, _joint_covariance(stats), distiller, args)
