"""Exact-moment distilled sets: m weighted rows that every learner of second moments cannot tell from all n.

A learner that sees the training rows only through Σw, Σw·z and Σw·zzᵀ of z = [x, y] — ordinary least squares,
ridge at every penalty, the lasso and elastic net at every α, Bayesian ridge, gradient descent on the squared loss
from any θ₀ for any number of steps — fits the same model on any weighted rows with the same three sums. Given
the training rows' mean μ and covariance S = (1/n) Σ (z − μ)(z − μ)ᵀ (q × q, rank r), write S = L Lᵀ with L of
shape (q, r). Then every

    Z̃ = 1 μᵀ + √m · Q Lᵀ,    Q (m, r) with QᵀQ = I_r and 1ᵀQ = 0,                                    (M1)

with weights n/m on each row, has Σw = n, Σw·z̃ = Σz and Σw·z̃z̃ᵀ = Σzzᵀ exactly: 1ᵀZ̃ = mμᵀ and
Z̃ᵀZ̃ = m(μμᵀ + S). Such a Q exists iff m − 1 ≥ r (the columns of Q lie in the (m − 1)-dimensional complement
of 1), so m ≥ r + 1 — m ≥ p + k + 1 (p features, k targets; p + 2 for one target) unless columns are constant
or collinear.

Q is free up to that constraint, and is chosen so the rows look like data: the nearest moment-exact rows to
target rows R (k-means centroids of the standardised rows, or m random training rows) are the solution of an
orthogonal Procrustes problem. With H (m, m − 1) an orthonormal basis of 1's complement, Q = H W Vᵀ where
W Σ Vᵀ is the thin SVD of Hᵀ R L (maximising tr(Qᵀ R L), i.e. minimising ‖Z̃ − 1μᵀ − R‖_F over (M1)).

The construction runs in the standardised space of [`sufficient_statistics`][jaxdistill.sufficient_statistics]
(μ = 0, S the standardised covariance) in float64 on the host; the exported rows in original units keep the
moments to rounding, because weighted first and second moments are carried through any affine map. Nothing
is compiled. The set is checked before it is returned.

Weighted moment matching of this kind is the exact (m ≥ r + 1) case of what the coreset literature approximates
for least squares; the Procrustes choice of Q is Schönemann (*Psychometrika* 31, 1966).
"""

from __future__ import annotations

import numpy as np

from jaxdistill._src.components.features import Identity
from jaxdistill._src.components.models import LinearModel
from jaxdistill._src.core.keys import as_key, key_to_list, seed_of
from jaxdistill._src.core.validate import check_float, check_int
from jaxdistill._src.data.arrays import check_xy
from jaxdistill._src.data.schema import read_pair
from jaxdistill._src.data.sources import ArraySource, RowSource, SufficientStats, statistics_pass
from jaxdistill._src.inner.kernel_ridge import KernelRidge
from jaxdistill._src.outer.records import RunInfo
from jaxdistill._src.problem.ridge_cv import choose_ridge
from jaxdistill._src.report.coresets import KMEANS_ITERS, KMEANS_MAX_ROWS, _lloyd
from jaxdistill._src.result import DistillOutput

#: relative agreement of the set's weighted moments with the training rows' that the check before returning asks
MOMENT_RTOL = 1e-9


def moment_rows(S: np.ndarray, m: int, targets: np.ndarray | None = None) -> np.ndarray:
    """m rows U (m, q) with mean 0 and UᵀU/m = S exactly (eq. M1 with μ = 0), nearest to ``targets``.

    Args:
      S: a symmetric positive semi-definite (q, q) matrix (the rows' covariance), float64.
      m: rows wanted; at least rank(S) + 1.
      targets: (m, q) rows the result should be near (Frobenius norm, over every admissible rotation); ``None``:
        any admissible rows (the first r columns of the complement of 1).

    Returns:
      U (m, q), float64.

    Raises:
      ValueError: m < rank(S) + 1 (the message gives the smallest m), or S not positive semi-definite.
    """
    S = np.asarray(S, np.float64)
    q = S.shape[0]
    active = np.flatnonzero(np.diag(S) > 0)        # constant columns: exactly 0 in every row
    ev, V = np.linalg.eigh(S[np.ix_(active, active)])
    top = float(ev[-1]) if ev.size else 0.0
    if ev.size and ev[0] < -1e-8 * max(top, 1.0):
        raise ValueError(f"The covariance of the rows is not positive semi-definite (eigenvalue {ev[0]:.3g}); "
                         "its statistics are damaged.")
    keep = ev > max(active.size, 1) * np.finfo(np.float64).eps * top * 10
    r = int(keep.sum())
    if m < r + 1:
        raise ValueError(f"m = {m} is too small for a moment-exact set: the {q} columns of [x, y] span {r} "
                         f"directions, which need m >= {r + 1} rows (rank + 1). Use m >= {r + 1}, or a "
                         "procedure-bound set (jaxdistill.distill) for smaller m.")
    L = np.zeros((q, r))
    L[active] = V[:, keep] * np.sqrt(ev[keep])     # S = L Lᵀ
    H = _centred_basis(m)                          # (m, m − 1), orthonormal, Hᵀ1 = 0
    if targets is None:
        Q = H[:, :r]
    else:
        W, _, Vt = np.linalg.svd(H.T @ np.asarray(targets, np.float64) @ L, full_matrices=False)
        Q = H @ (W @ Vt)                           # orthogonal Procrustes: the nearest admissible rotation
    return np.sqrt(m) * Q @ L.T


def _centred_basis(m: int) -> np.ndarray:
    """An orthonormal basis (m, m − 1) of the vectors orthogonal to the all-ones vector (Householder: exact
    orthogonality to rounding, no QR of a random matrix)."""
    v = np.ones(m)
    v[0] += np.sqrt(m)                                 # reflector mapping 1 to −√m e₁
    Hh = np.eye(m) - 2.0 * np.outer(v, v) / (v @ v)
    return Hh[:, 1:]


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


def _joint_covariance(stats: SufficientStats) -> np.ndarray:
    """The standardised rows' covariance S of z = [x, y] (the rows are centred in these units)."""
    top = np.concatenate([stats.FtF, stats.FtY], axis=1)
    bottom = np.concatenate([stats.FtY.T, stats.YtY], axis=1)
    return np.concatenate([top, bottom], axis=0) / stats.n


def _target_rows(source: RowSource, stats: SufficientStats, m: int, init: str, rng: np.random.Generator):
    """(m, q) rows in standardised units the set is rotated towards, and the training rows they came from."""
    n = stats.n
    std = stats.standardizer
    take = min(n, KMEANS_MAX_ROWS) if init == "kmeans" else m
    rows = np.sort(rng.choice(n, take, replace=False))
    X, Y = source.take(rows)
    Z = np.concatenate([std.x(X), std.y(Y)], axis=1)
    if init == "real":
        return Z, rows
    return _lloyd(Z, m, rng, KMEANS_ITERS), None


def distill_moments(X, Y=None, m: int | None = None, *, key=0, init: str = "kmeans",
                    lambda_inner: float | str = "auto") -> DistillOutput:
    r"""A set of m weighted rows whose weighted first and second moments equal those of the training rows exactly.

    With μ and S = L Lᵀ the rows' mean and covariance of z = [x, y], the set is (eq. M1, weights n/m)

    $$
    \tilde Z = \mathbf 1\mu^\top + \sqrt m\,Q L^\top, \qquad Q^\top Q = I_r,\quad \mathbf 1^\top Q = 0 .
    $$

    Every learner that reads the data only through Σw, Σw·z and Σw·zzᵀ of its rows z = (x, y) fits on the set, with its
    ``sample_weight`` (n/m for every row), the model it fits on all n rows: scikit-learn's ``LinearRegression``,
    ``Ridge``, ``Lasso``, ``ElasticNet`` and ``BayesianRidge`` (any penalty), statsmodels' WLS, gradient descent
    from any start for any number of steps. The set is the one construction of the module docs (eq. M1), rotated
    to lie near k-means centroids of the rows so that learners which are not linear see points that look like
    data. One pass over the rows for the statistics, one for the target rows; nothing is compiled.

    Args:
      X: training inputs (n, d): an array, memory map or DataFrame (pandas, polars, Arrow); or with Y None a
        [`RowSource`][jaxdistill.RowSource] (files larger than memory, a Parquet data set, a Dask cluster's rows), or
        saved [`SufficientStats`][jaxdistill.SufficientStats] of the inputs themselves (no feature map): no row
        is read then, and the set is rotated towards m draws of N(0, S) instead of rows (``init`` does not apply).
      Y: training targets (n,) or (n, k), or None with a RowSource or statistics.
      m: rows of the set, at least rank(cov [x, y]) + 1 (d + k + 1 when no column is constant or collinear:
        d + 2 for one target).
      key: seed or key for the rows the set is rotated towards.
      init: ``"kmeans"`` (default: k-means centroids of the standardised [x, y] rows, fitted on at most 20,000
        of them) or ``"real"`` (m random training rows). Either gives exact moments; it only decides where the
        rows lie.
      lambda_inner: λ_I of the ridge model the result's ``predict`` uses (Def. 2.1, normalised by the rows):
        ``"auto"`` chooses it by generalised cross-validation on the statistics, as
        [`distill`][jaxdistill.distill] does; the set itself does not depend on it.

    Returns:
      A [`DistillOutput`][jaxdistill.DistillOutput] with status ``exact``: ``out.X``, ``out.Y`` in original units,
      ``out.weights`` (n/m each), ``out.valid_for`` saying which learners it reproduces; ``predict`` is ridge with
      λ_I on the set, equal to ridge on all rows. ``meta.moment_error`` is the largest relative difference of the
      set's weighted moments from the rows' (checked ≤ 1e-9 before returning), ``meta.in_range`` the fraction
      of the set's values inside their column's training range.

    Raises:
      ValueError: m below rank + 1 (the message gives the smallest m), too few rows, NaN or inf (by row), or an
        unknown ``init``.

    Examples:
      >>> import numpy as np, jaxdistill as jd
      >>> from jaxdistill import datasets
      >>> from sklearn.linear_model import Ridge
      >>> X, Y = datasets.load("diabetes")
      >>> out = jd.distill_moments(X, Y, m=12)
      >>> full = Ridge(alpha=1.0).fit(X, Y.ravel())
      >>> small = Ridge(alpha=1.0).fit(out.X, out.Y.ravel(), sample_weight=out.weights)
      >>> bool(np.allclose(small.coef_, full.coef_, rtol=1e-9))
      True
    """
    seed = seed_of(key)
    if isinstance(X, SufficientStats):
        return _from_statistics(X, Y, m, key, lambda_inner)
    source = X if isinstance(X, RowSource) else None
    schema = None
    if source is not None:
        if Y is not None:
            raise ValueError("With a RowSource as X the targets come from the source: pass Y=None.")
        schema = source.schema()
    else:
        X, Y, schema = read_pair(X, Y)
        X, Y = check_xy(X, Y)
        schema = schema.replace(n_features=X.shape[1])
        source = ArraySource(X, Y)
    if m is None:
        raise ValueError("Pass m, the number of rows of the set (at least d + k + 1).")
    m = check_int("m", m, 2)
    if init not in ("kmeans", "real"):
        raise ValueError(f"init must be 'kmeans' or 'real', got {init!r}.")
    if source.n_rows is not None and m > source.n_rows:
        raise ValueError(f"m = {m} is more than the {source.n_rows} training rows: keep the rows themselves.")
    stats, mom, const = statistics_pass(source, Identity(), names=schema.feature_names)
    n, d, std = stats.n, source.d, stats.standardizer
    schema = schema.replace(constant=tuple(int(j) for j in np.flatnonzero(const[:d])))
    S = _joint_covariance(stats)
    rng = np.random.default_rng(np.random.SeedSequence(key_to_list(as_key(key))))
    R, init_rows = _target_rows(source, stats, m, init, rng)
    lam, choice = _lambda(lambda_inner, stats)
    out = moment_set(S, m, R, std, n, lam, choice, schema, seed)
    Z = np.concatenate([out.X, out.Y], axis=1)
    in_range = float(np.mean((Z >= mom.lo) & (Z <= mom.hi)))   # inside their column's training range (the pass's)
    return out.replace(meta=out.meta.replace(init_rows=None if init_rows is None else init_rows.tolist(),
                                             extra={**out.meta.extra, "in_range": in_range, "init": init}))


def _from_statistics(stats: SufficientStats, Y, m, key, lambda_inner) -> DistillOutput:
    """`distill_moments` from saved statistics: the same set, rotated towards draws of N(0, S) (no rows to read)."""
    if Y is not None:
        raise ValueError("With statistics as X the targets are in them: pass Y=None.")
    if stats.feature_map is not None:
        raise ValueError("distill_moments matches the moments of the inputs themselves; these statistics are of a "
                         f"feature map ({type(stats.feature_map).__name__}): use distill_analytic(stats, m=...).")
    if m is None:
        raise ValueError("Pass m, the number of rows of the set (at least d + k + 1).")
    m = check_int("m", m, 2)
    check_statistics(stats, m)
    S = _joint_covariance(stats)
    rng = np.random.default_rng(np.random.SeedSequence(key_to_list(as_key(key))))
    lam, choice = _lambda(lambda_inner, stats)
    out = moment_set(S, m, gaussian_rows(S, m, rng), stats.standardizer, stats.n, lam, choice, stats.input_schema(),
                     seed_of(key))
    return out.replace(meta=out.meta.replace(extra={**out.meta.extra, "init": "draws of N(0, S) (statistics only)"}))


def moment_set(S: np.ndarray, m: int, R: np.ndarray | None, std, n: float, lam: float, choice: dict, schema,
               seed, full_lam: float | None = None, **meta) -> DistillOutput:
    """The moment-exact set (eq. M1) of covariance S (standardised units, mean 0) with rows near R, each of weight
    n/m, checked, as a [`DistillOutput`][jaxdistill.DistillOutput] whose ``predict`` is ridge with λ_I = ``lam``.
    ``full_lam``: λ_I of the ridge model on all rows the set stands for (default ``lam``; a private set folds its
    penalty into S and predicts with 0). ``meta``: further `RunInfo` fields."""
    U = moment_rows(S, m, R)
    d = std.x_mean.size
    err = _moment_error(U, S)
    if not err <= MOMENT_RTOL:
        raise ValueError(f"The set's weighted moments differ from the rows' by {err:.2e} (relative): the statistics "
                         "are too ill-conditioned for float64. Drop collinear columns.")
    return DistillOutput(
        x=U[:, :d], y=U[:, d:], inner_lr=None, history=None, config=None, standardizer=std, status="exact",
        model=LinearModel(Identity(), init_scale=0.0), inner_solver=KernelRidge(), lambda_inner=lam, T=None,
        seed=seed, weights=np.full(m, n / m),
        meta=RunInfo(kind="moments", n_train=int(round(n)),
                     full_data_lambda_inner=lam if full_lam is None else full_lam, lambda_choice=choice,
                     extra={"moment_error": err}, **meta),
        schema=schema)


def _moment_error(U: np.ndarray, S: np.ndarray) -> float:
    """max(|mean(U)|, |UᵀU/m − S|) relative to max |S|."""
    scale = max(float(np.max(np.abs(S))), 1e-300)
    return max(float(np.max(np.abs(U.mean(0)))), float(np.max(np.abs(U.T @ U / U.shape[0] - S)))) / scale


def _lambda(lambda_inner, stats: SufficientStats) -> tuple[float, dict]:
    if lambda_inner == "auto":
        n = stats.n
        choice = choose_ridge(stats.FtF / n, stats.FtY / n, float(np.trace(stats.YtY)) / n, n, centred=True)
        return choice.lam, choice.record()
    lam = check_float("lambda_inner ('auto' or a number >= 0)", lambda_inner, lo=0.0)
    return lam, {"method": "given", "lambda": lam}
