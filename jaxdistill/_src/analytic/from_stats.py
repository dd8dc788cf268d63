"""Distilled sets made from sufficient statistics alone, with no row to read: saved statistics (a cluster job's
artifact, `SufficientStats.load`) and private releases (``privacy/sets.py``) both come here.

Three constructions, each from the rows' standardised covariance S of z = [x, y] (``moments._joint_covariance``):

* the exact-moment set (eq. M1 of ``moments.py``), rotated towards m draws of N(0, S) (``moments.gaussian_rows``),
  since no real rows exist to rotate towards;
* the KRR paper's set (``krr.analytic_set``) through ``krr.FromStatistics``, whose m rows for the free part are
  moment-exact rows of S (of its top m − 1 directions where m ≤ the columns) — as well conditioned as S — or, with
  a feature map, m draws of standardised inputs;
* Algorithm 1 with the exact full-data objective (`bilevel`): ``Distiller`` on a proxy of M rows whose moments
  equal S exactly (so its ``FullDataLoss`` is the statistics' to rounding), no held-out rows (the monitor is
  the full-data objective), no quality check against real rows.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxdistill._src.analytic.moments import check_statistics, gaussian_rows, moment_rows
from jaxdistill._src.components.features import Identity
from jaxdistill._src.components.models import LinearModel
from jaxdistill._src.result import DistillOutput

#: rows of the bilevel run's moment-exact proxy of the statistics (at least this, and 4 (q + m))
PROXY_ROWS = 512


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
    stats = stats._replace(schema=stats.input_schema())
    lam, record = _lambda(config.lambda_inner, stats)
    rng = np.random.default_rng(np.random.SeedSequence(key_to_list(as_key(key))))
    args = {k: v for k, v in fit_args.items() if k != "validation"}
    return bilevel(stats, config.m, lam, record, rng, key, _joint_covariance(stats), distiller, args)
