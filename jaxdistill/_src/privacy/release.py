"""A differentially private release of a regression data set's sufficient statistics (one pass over the rows).

Each row is clipped to **public** bounds given by the caller and mapped into the unit box,

    u = (clip(x, lo, hi) − c) / h ∈ [−1, 1]^d,   v = (clip(y, y_lo, y_hi) − c_y) / h_y ∈ [−1, 1]^k,          (P1)

with c, h the bounds' midpoints and half-widths (with a feature map, u is replaced by φ(u), rescaled to norm ≤ C).
The release is the augmented second-moment matrix of z = [u, v, 1],

    Â = Σᵢ zᵢ zᵢᵀ + E,   E symmetric, its upper triangle i.i.d. N(0, (Δ σ/√w)²),   Δ = max ‖z‖² = B² + k + 1,   (P2)

B² = d (or C²). Adding or removing one row changes the upper triangle of Σ zzᵀ by at most ‖z‖² in ℓ₂, so (P2) is
the Gaussian mechanism; its noise multiplier σ comes from ``dp-accounting`` (`accounting.py`) for the caller's
(ε, δ). With AdaSSP's regularisation (Wang, UAI 2018) the smallest eigenvalue of the centred scatter
Σ (u − ū)(u − ū)ᵀ is released too, with noise 4B²σ/√w' (adding a row moves it by at most ‖u − ū‖² ≤ 4B²), w + w' = 1.

Everything afterwards reads only Â (and the noisy eigenvalue): the count n̂ = Â₍₁,₁₎ of the last entry, the means,
the centred moments projected onto the positive semi-definite cone, the ridge penalty, the standardiser, every
distilled set and its export are post-processing, so they are (ε, δ)-DP too. Releases of disjoint rows (parties)
add: each party's rows keep that party's guarantee (`PrivateStatistics.__add__`).

Standardised units in private mode: x ↦ (x − μ̂)/h (the public half-widths, so the noise is isotropic there and
AdaSSP's ridge is one number), y ↦ (y − μ̂_y)/ŝ_y; with a feature map x ↦ (x − c)/h, then φ.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import numpy as np

from jaxdistill._src.components.features import FeatureMap, Identity
from jaxdistill._src.core.keys import as_key, key_to_list
from jaxdistill._src.core.linalg import ridge_from_cross_products
from jaxdistill._src.core.validate import check_float
from jaxdistill._src.data.arrays import Standardizer, as_2d_float, check_xy
from jaxdistill._src.data.schema import InputSchema, read_pair
from jaxdistill._src.data.sources import BLOCK_ROWS, ArraySource, RowSource, SufficientStats
from jaxdistill._src.privacy import accounting
from jaxdistill._src.problem.ridge_cv import choose_ridge
from jaxdistill._src.version import __version__

#: AdaSSP's failure probability ρ in its ridge rule (Wang 2018, Alg. 2)
ADASSP_RHO = 0.05
#: the part of the budget (in μ²) a release spends on λ_min for AdaSSP's ridge rule, by default
LAMBDA_SHARE = 0.1
#: the smallest standard deviation a target column is given, as a fraction of its bound's half-width
MIN_SCALE = 1e-3
#: multiplies the calibrated noise: 1 except inside ``jaxdistill.testing.noise_scale`` (the audit's negative control)
_TEST_NOISE_SCALE = 1.0
#: what the rows are never read for after the release
POST_PROCESSING = ("standardisation, λ, the distilled rows and their export read only the noisy statistics; "
                   "no held-out rows, no quality check against real rows, no real rows as starting points")


def _bounds(name: str, given, width: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    if given is None:
        raise ValueError(
            f"A private release needs public bounds for {what}: pass {name}=(lo, hi) (numbers, or one per column). "
            "They must come from knowledge of the domain (a sensor's range, a form's allowed values, a previous "
            "public data set), not from these rows: bounds, means or scales computed from the private rows break "
            "the guarantee. Values outside are clipped to them.")
    try:
        lo, hi = given
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (lo, hi), got {given!r}.") from None
    lo = np.broadcast_to(np.asarray(lo, np.float64), (width,)).copy()
    hi = np.broadcast_to(np.asarray(hi, np.float64), (width,)).copy()
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))) or not np.all(hi > lo):
        bad = np.flatnonzero(~(hi > lo) | ~np.isfinite(lo) | ~np.isfinite(hi))
        raise ValueError(f"{name} must be finite with hi > lo for every column; not so for column(s) "
                         f"{bad[:10].tolist()}.")
    return lo, hi


def _feature_bound(fmap, feature_norm, d: int) -> float:
    if isinstance(fmap, Identity):
        return math.sqrt(d)
    if feature_norm is not None:
        return check_float("feature_norm", feature_norm, positive=True)
    amp, p = getattr(fmap, "amplitude", None), getattr(fmap, "p", None)
    if amp is not None and p is not None:                 # bounded maps (random Fourier features): ‖φ‖ ≤ amp·√p
        return float(amp) * math.sqrt(int(p))
    raise ValueError(f"{fmap!r} has no known bound on ‖φ(x)‖: pass feature_norm=C (features are rescaled to norm "
                     "≤ C before the release; C is public).")


@dataclasses.dataclass(frozen=True, eq=False)
class PrivateStatistics:
    """An (ε, δ)-differentially private release of a data set's sufficient statistics (module docs, eq. P2).

    Made by [`private_statistics`][jaxdistill.private_statistics]; pass it to
    [`distill_private`][jaxdistill.distill_private]. Releases of disjoint rows add (``a + b``): the federated case,
    each party's rows keeping that party's guarantee.

    Attributes:
      A: the noisy (q, q) matrix Σ zzᵀ + E, z = [u, v, 1] (module docs), float64.
      lambda_min: the noisy smallest eigenvalue of the centred scatter of u (AdaSSP), or None.
      noise_std, lambda_noise_std: the noise's standard deviation on each entry of A and on lambda_min.
      x_range, y_range: the public bounds ((d,) and (k,) arrays of lo and of hi).
      feature_map, feature_norm: the public feature map (None: the identity) and the bound C on ‖φ(u)‖.
      parties: each party's guarantee (a dict per release that was added in).
      schema: the inputs' names and shapes.

    Examples:
      >>> import jaxdistill as jd
      >>> from jaxdistill import datasets
      >>> X, Y = datasets.load("diabetes")
      >>> bounds = dict(x_range=(-0.2, 0.2), y_range=(0, 400), delta=1e-6)
      >>> a = jd.private_statistics(X[:200], Y[:200], epsilon=1.0, key=1, **bounds)   # one party's rows
      >>> b = jd.private_statistics(X[200:], Y[200:], epsilon=2.0, key=2, **bounds)   # another's
      >>> [p["epsilon"] for p in (a + b).guarantee["parties"]]
      [1.0, 2.0]
      >>> theta, lam, record = (a + b).ridge()     # AdaSSP's estimator on the summed release
      >>> theta.shape, record["method"]
      ((10, 1), 'adassp')
    """

    A: np.ndarray
    lambda_min: float | None
    noise_std: float
    lambda_noise_std: float
    x_range: tuple[np.ndarray, np.ndarray]
    y_range: tuple[np.ndarray, np.ndarray]
    feature_map: Any
    feature_norm: float
    parties: tuple[dict, ...]
    schema: InputSchema

    @property
    def d(self) -> int:
        return int(self.x_range[0].size)

    @property
    def k(self) -> int:
        return int(self.y_range[0].size)

    @property
    def n(self) -> float:
        """The noisy number of rows (the release's last entry; not the true count)."""
        return float(self.A[-1, -1])

    @property
    def count(self) -> float:
        """n̂ as post-processing divides by it: the noisy count, at least 2."""
        return max(self.n, 2.0)

    @property
    def identity(self) -> bool:
        """Whether the release is of the inputs themselves (no feature map)."""
        return self.feature_map is None or isinstance(self.feature_map, Identity)

    @property
    def guarantee(self) -> dict:
        """What the release is private under: one party's record, or ``{"parties": [...]}`` for a sum."""
        if len(self.parties) == 1:
            return dict(self.parties[0])
        return {"parties": [dict(p) for p in self.parties],
                "neighbours": f"{accounting.NEIGHBOURS} of any one party (each party's rows keep its own (ε, δ))"}

    def describe(self) -> str:
        g = self.parties
        if len(g) == 1:
            return f"(ε = {g[0]['epsilon']:g}, δ = {g[0]['delta']:.3g})-DP, {accounting.NEIGHBOURS}"
        each = ", ".join(f"(ε = {p['epsilon']:g}, δ = {p['delta']:.3g})" for p in g)
        return f"a sum of {len(g)} parties' releases, each party's rows {each}-DP, {accounting.NEIGHBOURS}"

    def __add__(self, other: PrivateStatistics) -> PrivateStatistics:
        if not isinstance(other, PrivateStatistics):
            return NotImplemented
        same = (self.A.shape == other.A.shape and
                all(np.array_equal(a, b) for a, b in zip(self.x_range + self.y_range, other.x_range + other.y_range,
                                                         strict=True))
                and repr(self.feature_map) == repr(other.feature_map) and self.feature_norm == other.feature_norm)
        if not same:
            raise ValueError("Only releases with the same bounds, feature map and columns add: every party must "
                             "clip to the same public x_range, y_range (and feature map) before releasing.")
        both = self.lambda_min is not None and other.lambda_min is not None
        # Weyl: λ_min of the union's centred scatter ≥ the sum of the parties' (the between-party term is PSD)
        return dataclasses.replace(
            self, A=self.A + other.A, lambda_min=self.lambda_min + other.lambda_min if both else None,
            noise_std=math.hypot(self.noise_std, other.noise_std),
            lambda_noise_std=math.hypot(self.lambda_noise_std, other.lambda_noise_std) if both else 0.0,
            parties=self.parties + other.parties)

    def __repr__(self) -> str:
        return (f"PrivateStatistics(d={self.d}, k={self.k}, n≈{self.n:.0f} (noisy), {self.describe()}, "
                f"noise std {self.noise_std:.3g} per entry)")

    # ------------------------------------------------------------------ post-processing
    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean of z' = [u, v], the centred moments Σ (z' − mean)(z' − mean)ᵀ projected onto the PSD cone), over the
        noisy count `count`, in the box units of eq. P1 — or, with a feature map, the feature block uncentred (as
        [`sufficient_statistics`][jaxdistill.sufficient_statistics] has it)."""
        A, n = self.A, self.count
        s = A[:-1, -1]
        mean = s / n
        M = A[:-1, :-1] - np.outer(s, s) / n
        if not self.identity:
            p = M.shape[0] - self.k
            M[:p, :p] = A[:p, :p]                       # features uncentred (the model has no intercept feature)
        M = 0.5 * (M + M.T)
        ev, V = np.linalg.eigh(M)
        return mean, (V * np.maximum(ev, 0.0)) @ V.T

    def standardized(self) -> SufficientStats:
        """The release as [`SufficientStats`][jaxdistill.SufficientStats] in private standardised units (module docs;
        its ``n`` is `count` rounded). Computed once per release (it is immutable)."""
        return self._standardized

    @functools.cached_property
    def _standardized(self) -> SufficientStats:
        mean, M = self.moments()
        n = self.count
        p = M.shape[0] - self.k
        (xlo, xhi), (ylo, yhi) = self.x_range, self.y_range
        cx, hx, cy, hy = (xlo + xhi) / 2, (xhi - xlo) / 2, (ylo + yhi) / 2, (yhi - ylo) / 2
        sd_v = np.sqrt(np.maximum(np.diag(M)[p:] / n, MIN_SCALE ** 2))
        x_centre = cx + hx * mean[:p] if self.identity else cx
        std = Standardizer(x_centre, hx, cy + hy * mean[p:], hy * sd_v)
        FtF, FtY, YtY = M[:p, :p], M[:p, p:] / sd_v, M[p:, p:] / np.outer(sd_v, sd_v)
        return SufficientStats(int(round(n)), std, FtF, FtY, YtY)

    def ridge_penalty(self, regularization="adassp") -> tuple[float, dict]:
        """(λ_I, its record): the ridge penalty of models fitted to the release, normalised by n̂ (Def. 2.1's λ_I).

        ``"adassp"``: Wang (2018), Alg. 2 — λ = max(0, σ_A √(p log(2p²/ρ)) − λ̃_min) with λ̃_min the released
        eigenvalue lowered by σ_λ √log(6/δ) (its high-probability margin), ρ = 0.05; λ_I = λ/n̂. ``"gcv"``:
        generalised cross-validation on the noisy statistics. A number: λ_I as given."""
        stats, n = self.standardized(), self.count
        if regularization == "adassp":
            if self.lambda_min is None:
                raise ValueError("This release has no private λ_min (it was made with lambda_share=0): use "
                                 "regularization='gcv' or a number.")
            p = stats.FtF.shape[0]
            delta = min(p_["delta"] for p_ in self.parties)
            lam_min = max(self.lambda_min - self.lambda_noise_std * math.sqrt(math.log(6.0 / delta)), 0.0)
            lam = max(0.0, self.noise_std * math.sqrt(p * math.log(2.0 * p * p / ADASSP_RHO)) - lam_min)
            return lam / n, {"method": "adassp", "lambda": lam / n, "lambda_unnormalised": lam,
                             "lambda_min_estimate": lam_min, "rho": ADASSP_RHO}
        if regularization == "gcv":
            choice = choose_ridge(stats.FtF / n, stats.FtY / n, float(np.trace(stats.YtY)) / n, max(int(n), 2),
                                  centred=True)
            return choice.lam, {**choice.record(), "on": "the noisy statistics"}
        lam = check_float("regularization ('adassp', 'gcv' or a number >= 0)", regularization, lo=0.0)
        return lam, {"method": "given", "lambda": lam}

    def ridge(self, regularization="adassp") -> tuple[np.ndarray, float, dict]:
        """(θ (p, k) in private standardised units, λ_I, its record): ridge regression on the release alone —
        AdaSSP's estimator with ``regularization="adassp"``."""
        stats = self.standardized()
        lam, record = self.ridge_penalty(regularization)
        return ridge_from_cross_products(stats.FtF, stats.FtY, self.count, lam), lam, record

    def predict_ridge(self, X, regularization="adassp") -> np.ndarray:
        """Predictions (n, k) in original units of `ridge` (the AdaSSP baseline of ``evaluate``), identity features."""
        if not self.identity:
            raise ValueError("predict_ridge is for releases without a feature map.")
        std = self.standardized().standardizer
        theta, _, _ = self.ridge(regularization)
        return std.y_inverse(std.x(as_2d_float("X", X, allow_1d=False)) @ theta)


def private_statistics(X, Y=None, *, x_range=None, y_range=None, epsilon=None, delta=None, key=None,
                       feature_map: FeatureMap | None = None, feature_norm: float | None = None,
                       lambda_share: float = LAMBDA_SHARE, block_rows: int = BLOCK_ROWS) -> PrivateStatistics:
    """Release a data set's sufficient statistics under (ε, δ)-differential privacy, reading each row once.

    Rows are clipped to the public bounds and mapped into the unit box (eq. P1); the augmented second-moment matrix
    is released with Gaussian noise calibrated by ``dp-accounting`` (eq. P2), and, for AdaSSP's ridge rule, the
    smallest eigenvalue of the centred scatter. Everything computed from the release afterwards is private by
    post-processing.

    Args:
      X: inputs (n, d): an array or DataFrame, or a [`RowSource`][jaxdistill.RowSource] with Y None.
      Y: targets (n,) or (n, k), or None with a RowSource.
      x_range: public bounds of the inputs, ``(lo, hi)``, numbers or one per column. Required: choose them from
        knowledge of the domain, never from these rows. Values outside are clipped.
      y_range: public bounds of the targets, ``(lo, hi)``. Required, as ``x_range``.
      epsilon: the privacy budget ε > 0 (0.1 strong … 10 weak).
      delta: δ in (0, 1), e.g. ``1 / n**2`` for about n rows (n treated as public). Required.
      key: seed or key of the noise. Default (None): fresh entropy from the operating system. A seed you keep must
        stay secret: whoever knows it can subtract the noise.
      feature_map: a public feature map applied to the box-scaled inputs (default the identity); its features are
        rescaled to norm ≤ ``feature_norm``.
      feature_norm: the bound C on ‖φ(u)‖ (default: √d for the identity, √2 for random Fourier features).
      lambda_share: the part w' of the budget (in μ², Gaussian composition) spent on λ_min for AdaSSP's ridge rule;
        0 releases the matrix alone (then use ``regularization="gcv"`` or a number).
      block_rows: rows read per block.

    Returns:
      A [`PrivateStatistics`][jaxdistill.PrivateStatistics]; its ``guarantee`` records ε, δ, the neighbouring
      relation, the bounds, the mechanism, the accountant and the versions.

    Raises:
      ValueError: bounds missing or inverted, ε or δ missing or out of range, NaN or inf in a row.
      ImportError: dp-accounting is not installed (``pip install 'jaxdistill[privacy]'``).

    Examples:
      >>> import jaxdistill as jd
      >>> from jaxdistill import datasets
      >>> X, Y = datasets.load("diabetes")
      >>> rel = jd.private_statistics(X, Y, x_range=(-0.2, 0.2), y_range=(0, 400), epsilon=1.0, delta=1e-6,
      ...                             key=0)
      >>> rel.guarantee["epsilon"], rel.guarantee["neighbours"]
      (1.0, 'add or remove one row')
    """
    if epsilon is None:
        raise ValueError("Pass epsilon, the privacy budget (e.g. epsilon=1.0).")
    epsilon = check_float("epsilon", epsilon, positive=True)
    if delta is None:
        raise ValueError("Pass delta, e.g. delta=1/n**2 for about n rows (with n treated as public).")
    delta = check_float("delta", delta, positive=True)
    if not delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}.")
    lambda_share = check_float("lambda_share", lambda_share, lo=0.0)
    if not lambda_share < 1:
        raise ValueError(f"lambda_share must be in [0, 1), got {lambda_share}.")
    fmap = Identity() if feature_map is None else feature_map
    if not isinstance(fmap, FeatureMap):
        raise ValueError(f"feature_map must be a jaxdistill.FeatureMap, got {feature_map!r}.")
    if isinstance(X, RowSource):
        if Y is not None:
            raise ValueError("With a RowSource as X the targets come from the source: pass Y=None.")
        source, schema = X, X.schema()
    else:
        Xv, Yv, schema = read_pair(X, Y)
        Xv, Yv = check_xy(Xv, Yv)
        source, schema = ArraySource(Xv, Yv), schema.replace(n_features=Xv.shape[1])
    d, k = source.d, source.d_out
    xlo, xhi = _bounds("x_range", x_range, d, "the inputs")
    ylo, yhi = _bounds("y_range", y_range, k, "the targets")
    C = _feature_bound(fmap, feature_norm, d)
    shares = (1.0 - lambda_share, lambda_share) if lambda_share > 0 else (1.0,)
    sigma = accounting.noise_multiplier(epsilon, delta, shares)        # before reading any row: errors lose nothing
    cx, hx, cy, hy = (xlo + xhi) / 2, (xhi - xlo) / 2, (ylo + yhi) / 2, (yhi - ylo) / 2
    S = None
    for Xb, Yb in source.blocks(int(block_rows)):                      # the one pass over the rows
        Xb = as_2d_float("X block", Xb, allow_1d=False)
        Yb = as_2d_float("Y block", Yb, allow_1d=True)
        u = (np.clip(Xb, xlo, xhi) - cx) / hx
        f = u if isinstance(fmap, Identity) else _features(fmap, u, C)
        Z = np.concatenate([f, (np.clip(Yb, ylo, yhi) - cy) / hy, np.ones((u.shape[0], 1))], axis=1)
        S = Z.T @ Z if S is None else S + Z.T @ Z
    if S is None:
        raise ValueError("The source gave no rows.")
    p = S.shape[0] - k - 1
    C2 = float(d) if isinstance(fmap, Identity) else C * C             # max ‖u‖² (or ‖φ(u)‖²)
    delta1 = C2 + k + 1.0                                              # max ‖z‖²: the sensitivity of Σ zzᵀ
    rng = np.random.default_rng(None if key is None else np.random.SeedSequence(key_to_list(as_key(key))))
    std_A = _TEST_NOISE_SCALE * delta1 * sigma / math.sqrt(shares[0])
    E = np.triu(rng.normal(0.0, 1.0, S.shape)) * std_A
    A = S + E + np.triu(E, 1).T
    lam_min, std_l = None, 0.0
    if lambda_share > 0:
        n_true = S[-1, -1]
        M = S[:p, :p] - np.outer(S[:p, -1], S[:p, -1]) / n_true
        std_l = _TEST_NOISE_SCALE * 4.0 * C2 * sigma / math.sqrt(shares[1])
        lam_min = float(np.linalg.eigvalsh(M)[0]) + std_l * float(rng.normal())
    record = {
        "epsilon": epsilon, "delta": delta, "neighbours": accounting.NEIGHBOURS,
        "mechanism": ("Gaussian mechanism on the upper triangle of Σ zzᵀ, z = [x clipped to x_range and scaled to "
                      "[-1, 1], y likewise, 1]" + (f", and on λ_min of the centred scatter (AdaSSP; share "
                                                   f"{lambda_share:g} of μ²)" if lambda_share > 0 else "")),
        "sensitivity": delta1, "noise_multiplier": sigma, "noise_std": std_A, "lambda_share": lambda_share,
        "accountant": accounting.accountant_name(), "x_range": [xlo.tolist(), xhi.tolist()],
        "y_range": [ylo.tolist(), yhi.tolist()], "feature_map": None if isinstance(fmap, Identity) else repr(fmap),
        "feature_norm": C, "noise_seed": "operating-system entropy" if key is None else "the caller's key (secret)",
        "jaxdistill_version": __version__}
    if _TEST_NOISE_SCALE != 1.0:
        record["NOT PRIVATE"] = f"noise scaled by {_TEST_NOISE_SCALE:g} (jaxdistill.testing.noise_scale)"
    return PrivateStatistics(A, lam_min, std_A, std_l, (xlo, xhi), (ylo, yhi),
                             None if isinstance(fmap, Identity) else fmap, C, (record,), schema)


def _features(fmap, u: np.ndarray, C: float) -> np.ndarray:
    """φ(u) of one block in float64, each row rescaled to norm ≤ C (its clipping)."""
    import jax.numpy as jnp

    from jaxdistill._src.data.arrays import on_device
    F = np.asarray(fmap.batch(on_device(u, jnp.result_type(float))), np.float64)
    norms = np.linalg.norm(F, axis=1, keepdims=True)
    return F * np.minimum(1.0, C / np.maximum(norms, 1e-300))
