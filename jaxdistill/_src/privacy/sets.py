"""Distilled sets made from a private release alone (`release.py`): private by post-processing.

Nothing here reads a training row. Three constructions, each from the release's noisy statistics in private
standardised units (``PrivateStatistics.standardized``) with the ridge penalty λ_I of ``ridge_penalty``:

* ``"moments"``: the exact-moment set (``analytic/moments.py``, eq. M1) of the noisy covariance with λ_I folded into
  its input block (S + diag(λ_I, …, 0)), so that ordinary least squares on the set, with its weights n̂/m, *is* ridge
  with λ_I on the release (AdaSSP's estimator with the default rule). Its rows are rotated towards m draws of
  N(0, S) from the key (no real rows exist to rotate towards).
* ``"analytic"``: the KRR paper's set (``analytic/krr.py``) reproducing ridge on the release; the m rows its free part
  is taken from are moment-exact rows of the noisy covariance S (of its top m − 1 directions where m ≤ the columns),
  rotated towards draws of N(0, S) (or, with a feature map, m points drawn uniformly from the public box).
* ``"bilevel"``: Algorithm 1 with the exact full-data objective of the release: `distill` is run on a proxy of M
  rows whose moments equal the noisy statistics exactly (so its ``FullDataLoss`` is the release's), λ_I as above, no
  held-out rows (the monitor is the full-data objective), no quality check against real rows.
"""

from __future__ import annotations

import numpy as np

from jaxdistill._src.analytic.from_stats import bilevel
from jaxdistill._src.analytic.krr import FromStatistics, analytic_set
from jaxdistill._src.analytic.moments import _joint_covariance, gaussian_rows, moment_set
from jaxdistill._src.components.features import Identity
from jaxdistill._src.core.keys import as_key, key_to_list, seed_of
from jaxdistill._src.core.validate import check_int
from jaxdistill._src.distiller import Distiller
from jaxdistill._src.privacy.release import POST_PROCESSING, PrivateStatistics
from jaxdistill._src.result import DistillOutput

#: the constructions of `distill_private`
METHODS = ("moments", "analytic", "bilevel")
def _rng(key) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(key_to_list(as_key(key))))


def _covariance(release: PrivateStatistics) -> np.ndarray:
    """The noisy covariance of z' = [x, y] in private standardised units, over n̂ (the noisy count, not rounded)."""
    stats = release.standardized()
    return _joint_covariance(stats) * (stats.n / release.count)


def _from_release(release: PrivateStatistics, rng) -> FromStatistics:
    """The analytic pipeline's data for a release: its noisy statistics, and (with a feature map) m points drawn
    uniformly from the public box, which the release's private units map to [−1, 1]."""
    return FromStatistics(release.standardized(), release.schema, rng,
                          draw=lambda m: rng.uniform(-1.0, 1.0, (m, release.d)))


def distill_private(release: PrivateStatistics, m: int | None = None, *, method: str = "moments", key=0,
                    regularization="adassp", **settings) -> DistillOutput:
    """A distilled set of m rows made from a private release alone: (ε, δ)-DP by post-processing.

    Args:
      release: a [`PrivateStatistics`][jaxdistill.PrivateStatistics] (from
        [`private_statistics`][jaxdistill.private_statistics], or a sum of parties' releases).
      m: rows of the set. ``"moments"`` needs m ≥ p + k + 1 (p inputs, k targets); ``"analytic"`` m ≥ k.
      method: ``"moments"`` (default: a set every learner of second moments fits as ridge on the release, with the
        weights of ``out.sample_weight``), ``"analytic"`` (the KRR paper's set; with a feature map, the release's
        features) or ``"bilevel"`` (Algorithm 1 on the release's exact full-data objective; identity features).
      key: seed of the post-processing (where rows are rotated towards, the bilevel run); not of the noise, and
        it reveals nothing about the rows.
      regularization: the ridge penalty: ``"adassp"`` (default; Wang 2018's rule from the private λ_min),
        ``"gcv"`` (generalised cross-validation on the noisy statistics) or λ_I as a number.
      **settings: for ``"bilevel"``, [`DistillConfig`][jaxdistill.DistillConfig] fields (``steps=…``).

    Returns:
      A [`DistillOutput`][jaxdistill.DistillOutput] whose ``meta.privacy`` records the guarantee (ε, δ, neighbours,
      bounds, mechanism, accountant, versions; per party for a sum), as do its ``repr``, saved file and exports.

    Raises:
      ValueError: an unknown method, m too small for it, a feature map with ``"moments"`` / ``"bilevel"``.

    Examples:
      >>> import jaxdistill as jd
      >>> from jaxdistill import datasets
      >>> X, Y = datasets.load("diabetes")
      >>> rel = jd.private_statistics(X, Y, x_range=(-0.2, 0.2), y_range=(0, 400), epsilon=1.0, delta=1e-6,
      ...                             key=0)
      >>> out = jd.distill_private(rel, m=12)
      >>> out.meta.privacy["epsilon"], out.transfers
      (1.0, True)
    """
    if not isinstance(release, PrivateStatistics):
        raise ValueError(f"distill_private takes a jaxdistill PrivateStatistics (from jaxdistill.private_statistics); "
                         f"got {type(release).__name__}. To distil raw rows use distill, distill_moments or "
                         "distill_analytic.")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    if m is None:
        raise ValueError("Pass m, the number of rows of the set.")
    m = check_int("m", m, 1)
    if not release.identity and method != "analytic":
        raise ValueError(f"A release with a feature map gives a set only with method='analytic' (the inputs come from "
                         f"the map's inverse); {method!r} needs a release of the inputs themselves.")
    if method != "bilevel" and settings:
        raise ValueError(f"Settings {sorted(settings)} apply to method='bilevel' only.")
    if not release.n >= m + 1:
        raise ValueError(f"The release's noisy row count is n̂ = {release.n:.4g} (its noise has standard deviation "
                         f"{release.noise_std:.3g}), below m + 1 = {m + 1}: at this budget the statistics are mostly "
                         "noise. Raise epsilon, release more rows (or several parties' rows together), or narrow the "
                         "bounds.")
    lam, lam_record = release.ridge_penalty(regularization)
    stats, n = release.standardized(), release.count
    rng = _rng(key)
    if method == "moments":
        S = _covariance(release)
        d = release.d
        S[:d, :d] += lam * np.eye(d)                     # ridge folded in: OLS on the set = ridge on the release
        out = moment_set(S, m, gaussian_rows(S, m, rng), stats.standardizer, n, 0.0,
                         {"method": "folded into the set", "lambda": 0.0, "ridge_of_the_release": lam_record},
                         release.schema, seed_of(key), full_lam=lam)
    elif method == "analytic":
        fmap = release.feature_map or Identity()
        out = analytic_set(_from_release(release, rng), m, lam=lam * n, lam_s=0.0, fmap=fmap, key=key,
                           init=None if release.identity else "none")
        # the λ_I it stands for on all rows is the release's (analytic_set divides by the rounded count)
        out = out.replace(meta=out.meta.replace(lambda_choice=lam_record, full_data_lambda_inner=lam))
    else:
        stats = stats._replace(schema=release.schema)
        fixed = {"m", "validation_fraction", "standardize", "lambda_inner"}
        if set(settings) & fixed:
            raise ValueError(f"{sorted(set(settings) & fixed)} are set by distill_private's bilevel set (m is its "
                             "argument; no held-out rows, the release's own standardisation and ridge penalty); "
                             "leave them out.")
        out = bilevel(stats, m, lam, lam_record, rng, key, _covariance(release), Distiller(m=m, **settings))
    record = {**release.guarantee, "set": method, "regularization": lam_record, "after the release": POST_PROCESSING}
    return out.replace(meta=out.meta.replace(privacy=record, n_train=int(round(n))))
