"""Analytic distilled sets for (kernel) ridge regression: Chen, Huang & Weng, *Provable and Efficient
Dataset Distillation for Kernel Ridge Regression* (NeurIPS 2024), written in row convention.

Rows are points: Φ (n, p) features, Y (n, k) targets, θ (p, k) weights (the paper's W is θᵀ).
Ridge here is the paper's unnormalised form, min ‖Φθ − Y‖² + λ‖θ‖², θ = (ΦᵀΦ + λI)⁻¹ΦᵀY; it
equals the inner loss of Def. 2.1 with λ_I = λ/m.

Given the original model θ* and labels Y_S (m, k) whose row space contains θ*'s rows (always when
Y_S has rank k, so m ≥ k), every G (p, m) with G Y_S = θ* is G = θ* Y_S⁺ + Z(I_m − Y_S Y_S⁺), Z free. Then:

* λ_S = 0: Φ_S = G⁺ gives Φ_S⁺ Y_S = G Y_S = θ*  (for m = k: Φ_S = (θ* Y_S⁻¹)⁺, the paper's
  X_S = (Y_S⁺W)⁺);
* λ_S > 0: with G = V diag(σ') Uᵀ, Φ_S = U diag(s) Vᵀ where s_i/(s_i² + λ_S) = σ'_i, i.e.
  s_i = (1 ± √(1 − 4λ_S σ'_i²)) / (2σ'_i), which exists iff λ_S ≤ 1/(4 σ'_max²).
  (The slides print 1 − 4λ_Sσ'_i and λ_S < 1/(4σ'_1); that is dimensionally inconsistent —
  s/(s² + λ) = σ' gives σ'², and the W_S = W tests confirm this form.)
* m < k: no X_S gives W_S = W in general (unless θ*'s columns lie in the range of Y_Sᵀ); reported
  as an error, never approximated.
* A surjective feature map turns target features Φ_S into inputs X_S = Φ⁻¹(Φ_S).

For m > k the free Z is chosen so the distilled points stay close to real data (the paper's
§4.2): X₀ = m random training rows, Y_S = Φ(X₀)θ* (the original model's predictions), Z = Φ(X₀)⁺;
if Φ(X₀) already reproduces θ*, G = Φ(X₀)⁺ and X_S = X₀ exactly.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxdistill._src.analytic.moments import (
    _joint_covariance,
    check_statistics,
    gaussian_rows,
    moment_rows,
    top_directions,
)
from jaxdistill._src.components.features import FeatureMap, Identity
from jaxdistill._src.components.models import LinearModel
from jaxdistill._src.core.jit import jit
from jaxdistill._src.core.keys import as_key, key_to_list, permutation, seed_of
from jaxdistill._src.core.linalg import ridge_from_cross_products
from jaxdistill._src.core.validate import check_float, check_int
from jaxdistill._src.data.arrays import Standardizer, as_2d_float, check_xy, on_device, warn_constant
from jaxdistill._src.data.schema import InputSchema, read_pair
from jaxdistill._src.data.sources import ArraySource, RowSource, SufficientStats, sufficient_statistics
from jaxdistill._src.inner.kernel_ridge import KernelRidge
from jaxdistill._src.outer.records import KRRPaperInfo, RunInfo
from jaxdistill._src.result import DistillOutput


def _rank_tol(G) -> float:
    """Relative singular-value cut-off of G: √ε of the dtype. θ* is often rank-deficient *exactly*
    (standardised one-hot targets sum to zero, so θ*'s columns do), and the computed G then carries
    rounding-level singular values (measured: 3e-12 relative on mnist5k in float64); inverting them
    gave X_S entries of 2e11 and a model at chance accuracy. Directions below √ε contribute at most
    √ε relatively to the model and are treated as exact zeros."""
    return float(np.sqrt(np.finfo(np.asarray(G).dtype).eps))


#: above this many rows the m real rows are drawn in O(m) memory (jax.random.choice permutes all n)
_CHOICE_LIMIT = 1_000_000


def _choose_rows(key, n: int, m: int) -> np.ndarray:
    """m distinct row indices uniform in [0, n): ``jax.random.choice(key, n, (m,), replace=False)`` — the first m of
    ``jax.random.permutation(key, n)``, computed on the host where `keys.permutation` is — up to ``_CHOICE_LIMIT``
    rows, else NumPy's generator seeded from the key (memory O(m), whatever n is)."""
    if n <= _CHOICE_LIMIT:
        return np.asarray(permutation(key, n))[:m]
    seed = np.asarray(jax.random.key_data(key)).astype(np.uint64).ravel().tolist()
    return np.random.default_rng(seed).choice(n, m, replace=False)   # Floyd's algorithm for m ≪ n


def _target_features(G, lam_s, root):
    V, sig, Ut = np.linalg.svd(G, full_matrices=False)           # G = V diag(σ') Uᵀ, V (p, r), Ut (r, m)
    smax = float(np.max(sig))
    if lam_s == 0:
        keep = sig > _rank_tol(G) * smax
        inv = np.where(keep, 1.0 / np.where(keep, sig, 1.0), 0.0)
        return (Ut.T * inv) @ V.T                                  # G⁺ with the cut-off

    limit = 1.0 / (4.0 * smax ** 2)
    if lam_s > limit:
        raise ValueError(f"lam_s = {lam_s:g} is not admissible: with these labels the largest λ_S for which a "
                         f"distilled set reproduces the original model is 1/(4σ'_max²) = {limit:.6g}. "
                         "Lower lam_s, or scale the labels up (σ' scales as 1/label scale).")
    tol = smax * _rank_tol(G)
    disc = np.sqrt(np.maximum(1.0 - 4.0 * lam_s * sig ** 2, 0.0))
    safe = np.where(sig > tol, sig, 1.0)
    s = np.where(sig > tol, (1.0 + root * disc) / (2.0 * safe), 0.0)
    return (Ut.T * s) @ V.T                                        # U diag(s) Vᵀ, (m, p)


def distill_analytic(X, Y=None, m: int | None = None, *, lam: float = 0.0, lam_s: float = 0.0,
                     feature_map: FeatureMap | None = None, key: jax.Array | int = 0, labels=None,
                     init: str | None = None, root: str = "+", standardize: bool = True) -> DistillOutput:
    r"""A distilled set of m points whose ridge model equals the original one exactly, with no optimisation.

    With λ_S = 0 the set's features G = Φ(X̃)ᵀ are every solution of G Ỹ = θ* (the KRR paper; Z free, Ỹ⁺ the
    pseudo-inverse of the labels):

    $$
    \theta^* = \arg\min_\theta \lVert\Phi\theta - Y\rVert^2 + \lambda\lVert\theta\rVert^2, \qquad
    \Phi(\tilde X)^\top = \theta^*\tilde Y^{+} + Z\,(I_m - \tilde Y\tilde Y^{+}) .
    $$

    Args:
      X: real inputs (n, d); or a [`RowSource`][jaxdistill.RowSource] (e.g. ``NpySource`` over files larger than memory)
        with Y None: the original model then comes from the source's sufficient statistics (one streaming
        pass, two with a feature map; memory bounded by the block size, not n) and the m real rows by
        ``source.take``. Equal to the in-memory result to rounding.
      Y: real targets (n,) or (n, k), or None with a [`RowSource`][jaxdistill.RowSource].
      m: distilled size, m ≥ k (the number of targets).
      lam: λ of the original model θ* = argmin ‖Φθ − Y‖² + λ‖θ‖² (unnormalised). The solve is float64 on the host
        (Φ itself in JAX's float where a feature map computes it). ``lam=0`` is the minimum-norm least-squares model
        up to a rank cut-off: the solve goes through ΦᵀΦ, so a direction of Φ whose singular value is below
        √(1e-15)·σ_max ≈ 3e-8·σ_max is dropped; on features that ill-conditioned use ``lam > 0``.
      lam_s: λ_S of the model trained on the distilled set.
      feature_map: Φ (default identity, i.e. linear ridge). Anything but the identity must provide
        ``inverse`` (surjective maps: [`RandomReLUNet`][jaxdistill.RandomReLUNet],
        [`RandomFourierFeatures`][jaxdistill.RandomFourierFeatures] with p ≤ d).
      key: key or seed for the choice of real rows.
      labels: Y_S (m, k) of rank k; default: for m = k the identity scaled to the targets' RMS, for
        m > k the original model's predictions on m random training rows.
      init: ``"real"`` (default for m > k) chooses Z from m random real rows (see module docs);
        ``"none"`` takes Z = 0 (default for m = k).
      root: ``"+"`` or ``"−"`` branch of the λ_S > 0 formula (``"+"`` tends to G⁺ as λ_S → 0).
      standardize: work in standardised units (centred and scaled columns, statistics kept with the
        result), as [`distill`][jaxdistill.distill] does: the intercept is then the targets' mean. ``False``: the
        paper's raw, intercept-free setting.

    Returns:
      A [`DistillOutput`][jaxdistill.DistillOutput] whose model (ridge with λ_S on Φ of the distilled set) equals the
      original model; ``meta.krr_paper.theta`` holds θ* (p, k) in standardised units.

    Raises:
      ValueError: m below the number of outputs k, λ_S above its admissible limit, a feature map without an
        inverse, or a set whose ridge model does not reproduce the original to the verified precision (use
        float64); the message gives the limit or what to change.

    Examples:
      >>> import jaxdistill as jd
      >>> from jaxdistill import datasets
      >>> X, Y = datasets.load("diabetes")
      >>> out = jd.distill_analytic(X, Y, m=1, lam=1.0)     # one point per output suffices (KRR paper)
      >>> out.X.shape, bool(out.meta.krr_paper.max_rel_WS_error < 1e-6)
      ((1, 10), True)

    References:
      Y. Chen, W. Huang, T.-W. Weng. *Provable and Efficient Dataset Distillation for Kernel Ridge
        Regression*. NeurIPS 2024, https://openreview.net/forum?id=WI2VpcBdnd: the analytic sets for linear
        ridge (one point per output) and for KRR with surjective feature maps.
    """
    fmap = Identity() if feature_map is None else feature_map
    if not isinstance(fmap, FeatureMap):
        raise ValueError(f"feature_map must be a jaxdistill.FeatureMap, got {feature_map!r}.")
    return analytic_set(_rows_of(X, Y), m, lam=lam, lam_s=lam_s, fmap=fmap, key=key, labels=labels, init=init,
                        root=root, standardize=standardize)


def analytic_set(data, m, *, lam, lam_s, fmap, key, labels=None, init=None, root="+", standardize=True):
    """`distill_analytic` on ``data``: anything with ``statistics(fmap, lam, standardize, m) → _Statistics`` and
    ``features(stats, fmap, idx)`` (the m rows Z is taken from) — `_InMemory`, `_FromSource`, or a private
    release's (``privacy/sets.py``)."""
    seed = seed_of(key)
    key = as_key(key)
    if isinstance(data, _Given):
        _check_map(data.stats, fmap, standardize)
        data = data.bind(key)
    made = getattr(data, "made_rows", False)            # the free part's rows were made, not read: none to record
    if m is None:
        raise ValueError("Pass m, the number of distilled points.")
    m = check_int("m", m, 1)
    lam, lam_s = check_float("lam", lam, lo=0.0), check_float("lam_s", lam_s, lo=0.0)
    stats = data.statistics(fmap, lam, standardize, m)              # 1. statistics → the original model θ*
    if root not in ("+", "-", "−"):
        raise ValueError(f"root must be '+' or '-', got {root!r}.")
    init = ("real" if m > stats.k else "none") if init is None else init
    if init not in ("real", "none"):
        raise ValueError(f"init must be 'real' or 'none', got {init!r}.")
    G, Ys, idx = _solve(stats, data, fmap, m, key, init, labels)     # 2. solve: every G with G Y_S = θ*
    Xs, Ys, F_S = _the_set(fmap, G, Ys, lam_s, 1.0 if root == "+" else -1.0, idx is None)   # 3. the set
    ws_err = _check_reproduces(F_S, Ys, stats.theta, lam_s, fmap)
    return DistillOutput(
        x=np.asarray(Xs), y=np.asarray(Ys), inner_lr=None, history=None, config=None, standardizer=stats.std,
        status="exact", model=LinearModel(fmap, init_scale=0.0), inner_solver=KernelRidge(),
        lambda_inner=float(lam_s) / m, T=None, seed=seed,
        meta=RunInfo(kind="analytic (KRR paper)", n_train=int(stats.n), full_data_lambda_inner=float(lam) / stats.n,
                     init_rows=None if idx is None or made else np.asarray(idx).tolist(),
                     krr_paper=KRRPaperInfo(original_lambda=float(lam), lambda_s=float(lam_s),
                                            theta=np.asarray(stats.theta).tolist(), max_rel_WS_error=ws_err)),
        schema=stats.schema)


def _check_map(stats: SufficientStats, fmap, standardize: bool) -> None:
    """Statistics are of one feature map, standardised: distill_analytic's settings must say the same."""
    from jaxdistill._src.core.fingerprint import fingerprint
    made = stats.feature_map or Identity()
    if fingerprint(made) != fingerprint(fmap):
        raise ValueError(f"The statistics were made with the feature map {type(made).__name__}, but feature_map is "
                         f"{type(fmap).__name__}: pass feature_map=stats.feature_map (or leave it out for statistics "
                         "of the inputs themselves).")
    if not standardize:
        raise ValueError("Statistics are in standardised units: leave standardize=True.")


class _Statistics(NamedTuple):
    """What the solve needs of the training rows: n, k, the standardiser and schema, the original model θ* (with its
    columns projected onto Y's column space), and the targets' RMS."""

    n: int
    k: int
    std: Standardizer
    schema: InputSchema
    theta: np.ndarray            # float64
    rms: float
    F: np.ndarray | None         # all rows' features (float64), when they are in memory


def _check_sizes(m: int, n: int, k: int) -> None:
    if m >= n:
        raise ValueError(f"m = {m} must be smaller than the number of rows n = {n}.")
    if m < k:
        raise ValueError(f"m = {m} < k = {k} targets: by the KRR paper's theorem no distilled set of fewer points "
                         "than outputs reproduces the original model (unless its columns lie in the range of the "
                         f"labels). Use m >= {k}.")


def _features(fmap, X: np.ndarray) -> np.ndarray:
    """Φ(X) in float64 on the host: the identity is X itself; any other map runs as one compiled program per shape
    (in JAX's float), its features then taken to float64."""
    if isinstance(fmap, Identity):
        return np.asarray(X, np.float64)
    return np.asarray(_batch(fmap, on_device(X, jnp.result_type(float))), np.float64)


@jit
def _batch(fmap, X):
    return fmap.batch(X)


def _ridge(F: np.ndarray, Y: np.ndarray, lam: float) -> np.ndarray:
    """θ = (FᵀF + λI)⁻¹FᵀY (unnormalised ridge), float64 on the host; λ = 0 the minimum-norm solution."""
    return ridge_from_cross_products(F.T @ F, F.T @ Y, 1, lam)


def _project(theta, sy, Vt, n: int, k: int, from_gram: bool):
    """θ* with its columns projected onto Y's column-space directions (rank(θ*) ≤ rank(Y)). Targets are often
    exactly rank-deficient (standardised one-hot columns sum to zero); the directions, found in float64, keep
    rounding in θ* (amplified by the conditioning of the ridge solve: 2e-3 relative in float32 on mnist5k) from
    posing as a direction the distilled set must reproduce. (From a source's YᵀY the cut-off is 100√ε: its
    eigenvalues, the squared singular values, carry ε·σ²_max of rounding.)"""
    eps = np.finfo(np.float64).eps
    tol = 100 * np.sqrt(eps) if from_gram else max(n, k) * eps
    r = int(np.sum(sy > sy[0] * tol)) if sy.size and sy[0] > 0 else 0
    return theta @ (Vt[:r].T @ Vt[:r]) if 0 < r < k else theta


class _InMemory:
    """Training rows held in memory: standardised as a whole (float64), featurised once."""

    def __init__(self, X, Y):
        X, Y, schema = read_pair(X, Y)
        self.X, self.Y = check_xy(X, Y)
        self.schema = schema.replace(n_features=self.X.shape[1])

    def statistics(self, fmap, lam: float, standardize: bool, m: int) -> _Statistics:
        X, Y = self.X, self.Y
        n, k = X.shape[0], Y.shape[1]
        _check_sizes(m, n, k)
        schema = self.schema
        if standardize:
            arrays, const_x, const_y = Standardizer.fit_constant(X, Y)
            std = Standardizer(*arrays)
            schema = schema.replace(constant=tuple(int(j) for j in np.flatnonzero(const_x)))
            warn_constant(schema.constant_names(), "X", stacklevel=4)
            warn_constant([f"column {j}" for j in np.flatnonzero(const_y)], "Y", stacklevel=4)
        else:
            std = Standardizer.identity(X.shape[1], k)
        Ys = std.y(Y)
        F = _features(fmap, std.x(X))
        theta = _ridge(F, Ys, lam)
        _, sy, Vt = np.linalg.svd(Ys, full_matrices=False)
        rms = float(np.sqrt(np.mean(Ys ** 2)))
        return _Statistics(n, k, std, schema, _project(theta, sy, Vt, n, k, False), rms, F)

    def features(self, stats: _Statistics, fmap, idx):
        return stats.F[idx]


class _FromSource:
    """Training rows read from a [`RowSource`][jaxdistill.RowSource]: one streaming pass of sufficient statistics
    (two with a feature map), chosen rows by ``take``; memory bounded by the block size, not n."""

    def __init__(self, source: RowSource):
        self.source = source

    def statistics(self, fmap, lam: float, standardize: bool, m: int) -> _Statistics:
        stats = sufficient_statistics(self.source, fmap, standardize=standardize)
        schema = stats.schema if standardize else self.source.schema()      # constant columns, as in memory
        return statistics_from_sums(stats, self.source.d_out, schema, lam, m)

    def features(self, stats: _Statistics, fmap, idx):
        X0, _ = self.source.take(np.asarray(idx))
        return _features(fmap, stats.std.x(X0))


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

    made_rows = True           # no training row is read: `analytic_set` records no init_rows

    def __init__(self, stats, schema, rng, S=None, draw=None):
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


class _Given:
    """Saved statistics (`SufficientStats`) as the analytic pipeline's data: `FromStatistics` once the key is known
    (its made rows are drawn from the key), the feature map checked against the one the statistics were made with."""

    def __init__(self, stats: SufficientStats):
        self.stats = stats

    def bind(self, key):
        rng = np.random.default_rng(np.random.SeedSequence(key_to_list(as_key(key))))
        return FromStatistics(self.stats, self.stats.input_schema(), rng)


def statistics_from_sums(stats: SufficientStats, k: int, schema: InputSchema, lam: float, m: int) -> _Statistics:
    """The solve's `_Statistics` from cross products alone (a source's pass, or a private release): θ* from FᵀF, FᵀY,
    and Y's singular directions from YᵀY."""
    n = stats.n
    _check_sizes(m, n, k)
    theta = ridge_from_cross_products(stats.FtF, stats.FtY, 1, lam)
    ev, vecs = np.linalg.eigh(stats.YtY)               # singular values / right vectors of Y, from YᵀY
    order = np.argsort(ev)[::-1]
    sy, Vt = np.sqrt(np.maximum(ev[order], 0.0)), vecs[:, order].T
    rms = float(np.sqrt(np.trace(stats.YtY) / (n * k)))
    return _Statistics(n, k, stats.standardizer, schema, _project(theta, sy, Vt, n, k, True), rms, None)


def _rows_of(X, Y):
    """The training rows as `_InMemory` or `_FromSource` (a RowSource; a memory map pair is read as one: the
    in-memory path standardises a float64 copy of all rows and puts it on the device, several times the data)."""
    if isinstance(X, SufficientStats):
        if Y is not None:
            raise ValueError("With statistics as X the targets are in them: pass Y=None.")
        check_statistics(X)
        return _Given(X)
    if isinstance(X, RowSource):
        if Y is not None:
            raise ValueError("With a RowSource as X the targets come from the source: pass Y=None.")
        return _FromSource(X)
    if isinstance(X, np.memmap) and isinstance(Y, (np.ndarray, np.memmap)) and np.ndim(X) == 2 and \
            np.ndim(Y) in (1, 2) and len(X) == len(Y):
        return _FromSource(ArraySource(X, Y))
    return _InMemory(X, Y)


def _solve(stats: _Statistics, data, fmap, m: int, key, init: str, labels):
    """(G (p, m), the labels Y_S (m, k), the real rows chosen or None): G = θ* Y_S⁺ + Z(I_m − Y_S Y_S⁺), with
    Z = Φ(X₀)⁺ of m real rows for ``init="real"`` (the paper's §4.2), else 0."""
    k, theta = stats.k, stats.theta
    Z = idx = None
    if init == "real":
        idx = _choose_rows(key, stats.n, m)
        F0 = data.features(stats, fmap, idx)
        Z = np.linalg.pinv(F0, rcond=10 * max(F0.shape) * np.finfo(np.float64).eps)     # (p, m)
    if labels is not None:
        Ys = stats.std.y(as_2d_float("labels", labels, allow_1d=True))
        if Ys.shape != (m, k):
            raise ValueError(f"labels must have shape (m, k) = ({m}, {k}), got {Ys.shape}.")
    elif init == "real":
        Ys = F0 @ theta
    else:
        Ys = (stats.rms or 1.0) * np.eye(m, k)
    Ysp = np.linalg.pinv(Ys, rcond=_rank_tol(Ys))                     # (k, m), rank cut-off as for G
    # Solvable iff θ*'s rows lie in the row space of Y_S (θ* Y_S⁺ Y_S = θ*): always when Y_S has rank k,
    # and also for rank-deficient θ* (e.g. centred one-hot targets) with labels predicted by θ*.
    resid = float(np.linalg.norm(theta @ Ysp @ Ys - theta) / (np.linalg.norm(theta) + 1e-300))
    if resid > 1e-6:
        raise ValueError(f"No distilled set with these labels reproduces the original model: its weights are not in "
                         f"the row space of the labels Y_S (relative residual {resid:.2e}; rank of Y_S "
                         f"{int(np.linalg.matrix_rank(Ys))}, k = {k}). Pass labels=... of full column rank.")
    G = theta @ Ysp
    if Z is not None:
        G = G + Z @ (np.eye(m) - Ys @ Ysp)
    return G, Ys, idx


def _the_set(fmap, G, Ys, lam_s: float, root: float, no_free_part: bool):
    """(X_S, Y_S, Φ(X_S)): the target features of the λ_S formula, mapped back through Φ⁻¹ for a feature map."""
    Fs = _target_features(G, lam_s, root)
    if isinstance(fmap, Identity):
        return Fs, Ys, Fs
    if not hasattr(fmap, "inverse"):
        raise ValueError(f"{fmap!r} has no inverse: analytic distillation needs a surjective feature map.")
    if lam_s == 0 and no_free_part and hasattr(fmap, "amplitude"):
        # Bounded maps (random Fourier features): with λ_S = 0 and Z = 0, scaling Y_S by c scales
        # Φ_S by c and leaves θ_S unchanged, so shrink the labels until Φ_S lies in Φ's range.
        peak = float(np.max(np.abs(Fs)))
        if peak > 0.9 * fmap.amplitude:
            c = 0.9 * fmap.amplitude / peak
            Ys, Fs = c * Ys, c * Fs
    dt = jnp.result_type(float)                   # the feature map runs in JAX's float
    Xs = np.asarray(fmap.inverse(on_device(Fs, dt)), np.float64)   # eager: an inverse may check its input
    F_S = _features(fmap, Xs)
    err = float(np.max(np.abs(F_S - Fs)) / (np.max(np.abs(Fs)) + 1e-300))
    if err > max(1e-6, 1e3 * float(jnp.finfo(dt).eps)):        # 1e-6 in float64, ~1e-4 in float32
        raise ValueError(f"{fmap!r} could not invert the target features (relative error {err:.2e}).")
    return Xs, Ys, F_S


def _check_reproduces(F_S, Ys, theta, lam_s: float, fmap) -> float:
    """Verify the claim before returning it: the model trained on the set must equal θ*. Returns max |W_S − W| /
    max |W|. The tolerance is that of the features' precision: float64 for the identity (all host float64), JAX's
    float where a feature map ran on the device."""
    if not (np.all(np.isfinite(F_S)) and np.all(np.isfinite(Ys))):
        raise ValueError("The analytic distilled set is not finite (an ill-conditioned original model?); "
                         "use lam > 0 or standardize=True.")
    theta_s = _ridge(F_S, Ys, lam_s)
    ws_err = float(np.max(np.abs(theta_s - theta)) / (np.max(np.abs(theta)) + 1e-300))
    dt = np.float64 if isinstance(fmap, Identity) else jnp.result_type(float)
    if ws_err > max(1e-6, 100 * float(np.sqrt(np.finfo(dt).eps))):    # 1.5e-6 in float64, ~3e-2 in float32
        raise ValueError(f"The analytic distilled set does not reproduce the original model to working precision "
                         f"(max |W_S − W| / max |W| = {ws_err:.1e}): the problem is too ill-conditioned in "
                         f"{np.dtype(dt)}. Use lam > 0, lam_s > 0, float64 (jax_enable_x64) or m > k.")
    return ws_err
