"""The exact full-data outer objective for models linear in θ, from sufficient statistics.

For f_θ(x) = Φ(x)ᵀθ and the n training pairs, the data term of Def. 2.5 over *all* rows is

    L(θ) = 1/(2n) ‖Φθ − Y‖²_F = ½ tr(θᵀGθ) − tr(θᵀC) + ½ s,   G = ΦᵀΦ/n,  C = ΦᵀY/n,  s = ‖Y‖²_F/n,

a quadratic in θ fixed by (G, C, s), accumulated once in one streaming pass over the rows (chunks on
the device, sums in float64 on the host: n may exceed device memory). To keep the value accurate near
its minimum (no cancellation between ½θᵀGθ and s), we store it in the equivalent residual form

    L(θ) = ½ ‖R(θ − θ*)‖²_F + L*,   RᵀR = G (R = Λ^{1/2}Uᵀ from G = UΛUᵀ),  θ* = G⁺C,  L* = ½(s − tr(Cᵀθ*)),

which is exact because C lies in the range of G (C = ΦᵀY/n, range(Φᵀ) = range(ΦᵀΦ)); R has r = rank(G) ≤ p
rows, so an outer step costs O(r·p·Q·d_out): nothing in n or the batch size. For affine solutions
(``ExactLinearGD``) with ``expectation=True`` the expectation over θ₀ ~ N(0, σ²I) is exact as well:
E L(θ_T) = ½‖R(D_T − θ*)‖² + ½σ² d_out ‖R M^T‖²_F + L*  (θ_T = M^T θ₀ + D_T).

With ``ridge = λ > 0`` the objective is the ridge loss of the trained model over all rows,
1/(2n)‖Φθ − Y‖² + λ/2‖θ‖², whose minimiser is the ridge model θ_λ = (G + λI)⁻¹C: the same quadratic with G + λI
in place of G (and θ_λ in place of θ*), so nothing else changes. ``lambda_inner="auto"`` uses it: the distilled
set then targets the ridge model with the λ chosen by cross-validation (``problem/ridge_cv.py``) instead of the
least-squares fit over all rows, which overfits where rows are few.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxdistill._src.core import sharding
from jaxdistill._src.core.validate import check_float
from jaxdistill._src.data.arrays import Standardizer, TrainData, check_xy, on_device
from jaxdistill._src.data.sources import BLOCK_ROWS, chunk_stats, sufficient_statistics
from jaxdistill._src.inner.base import AffineSolution
from jaxdistill._src.problem.objectives import BatchLoss, ExpectedBatchLoss, Objective

#: rows featurised per compiled chunk while accumulating the statistics
CHUNK_ROWS = 4096
#: the objective needs a (p, p) Gram matrix: above this many features the default stays BatchLoss
MAX_AUTO_FEATURES = 4096


def linear_sufficient_stats(model, data, chunk_rows: int = CHUNK_ROWS):
    """(G, C, s, n) over the standardised training rows of ``data`` in one pass (float64 sums).

    With several processes (``jax.distributed``) process i reads only chunks i, i + P, i + 2P, … of the
    rows and the float64 sums are added across processes (`sum_over_processes`):
    each row is read once in the whole job."""
    n = data.n_train
    chunk = int(min(chunk_rows, n))
    p = model.num_features(data.d, data.dtype)
    G, C, s = np.zeros((p, p)), np.zeros((p, data.d_out)), np.zeros(())
    starts = range(0, n, chunk)[jax.process_index()::jax.process_count()]
    for start in starts:
        idx = np.arange(start, start + chunk)
        w = (idx < n).astype(np.float64)
        X, Y = data.rows(np.minimum(idx, n - 1))
        g, c, ss = (np.asarray(a, np.float64) for a in chunk_stats(model, X, Y, on_device(w, X.dtype)))
        G, C, s = G + g, C + c, s + ss
    G, C, s = sharding.sum_over_processes((G, C, s))
    return G / n, C / n, float(s) / n, n


def compress(G: np.ndarray, C: np.ndarray, s: float):
    """(R, R θ*, L*) of the residual form in the module docs, from float64 statistics.

    Every eigen-direction of G with a positive eigenvalue is kept, however small: dropping one loses
    its term of the quadratic exactly (measured: 3e-8 absolute on a badly scaled polynomial basis),
    while keeping a rounding-noise direction (true eigenvalue 0, computed ε·λ_max) changes L by
    O(ε‖C‖²/λ_max) only, because Uᵀ C is then O(ε) as well."""
    lam, U = np.linalg.eigh(0.5 * (G + G.T))
    keep = lam > np.finfo(np.float64).tiny * max(1.0, float(lam.max(initial=0.0)))
    lam, U = lam[keep], U[:, keep]
    root = np.sqrt(lam)
    UC = U.T @ C                                    # (r, d_out)
    R = root[:, None] * U.T                         # (r, p): RᵀR = G on its range
    target = UC / root[:, None]                     # R θ* = Λ^{-1/2} Uᵀ C
    floor = 0.5 * (s - float(np.sum(UC * (UC / lam[:, None]))))
    return R, target, max(floor, 0.0)


class FullDataLoss(Objective):
    """Def. 2.5's data term over **all** training rows, exact, at a per-step cost independent of n.

    Needs a model linear in θ (any fixed feature map). [`distill`][jaxdistill.distill] computes the
    statistics from its (standardised) training rows; `from_data` builds a bound objective
    directly. Held-out losses are computed on the held-out rows with [`BatchLoss`][jaxdistill.BatchLoss]
    ([`ExpectedBatchLoss`][jaxdistill.ExpectedBatchLoss] when ``expectation=True``).

    Args:
      expectation: take the exact expectation over θ₀ ~ N(0, σ²I) (needs ``ExactLinearGD``), as
        [`ExpectedBatchLoss`][jaxdistill.ExpectedBatchLoss] does for a batch.
      ridge: λ ≥ 0 of a ridge term λ/2‖θ_T‖² on the trained model (module docs): the target becomes the ridge
        model over all rows. 0 (default): the data term of Def. 2.5 alone, as in the paper.
    """

    needs_batch = False

    def __init__(self, expectation: bool = False, R=None, target=None, floor=None, n_rows: int = 0,
                 ridge: float = 0.0):
        self.expectation = bool(expectation)
        self.R, self.target, self.floor, self.n_rows = R, target, floor, int(n_rows)
        # a leaf (not a static setting): a new λ changes the statistics, not the compiled program
        self.ridge = np.float64(check_float("ridge", ridge, lo=0.0))

    @property
    def bound(self) -> bool:
        return self.R is not None

    def check(self, model, inner_solver):
        if not model.linear_in_params:
            raise ValueError(f"FullDataLoss needs a model linear in θ (e.g. LinearModel); {model!r} is not. "
                             "Use the default BatchLoss for nonlinear models.")
        if self.expectation:
            ExpectedBatchLoss().check(model, inner_solver)

    def bind(self, model, data) -> FullDataLoss:
        """This objective with the statistics of ``data``'s training rows (a `TrainData`)."""
        G, C, s, n = linear_sufficient_stats(model, data)
        return self.with_statistics(G, C, s, n, data.dtype)

    @classmethod
    def from_data(cls, model, X, Y, expectation: bool = False, chunk_rows: int = CHUNK_ROWS) -> FullDataLoss:
        """The objective for rows (X, Y) as given (no standardisation), e.g. to inspect or test it;
        the statistics are accumulated ``chunk_rows`` rows at a time."""
        X, Y = check_xy(X, Y)
        dtype = jnp.result_type(float)
        data = TrainData(X, Y, np.arange(X.shape[0]), None, Standardizer.identity(X.shape[1], Y.shape[1]), dtype)
        G, C, s, n = linear_sufficient_stats(model, data, chunk_rows)
        return cls(expectation).with_statistics(G, C, s, n, dtype)

    @classmethod
    def from_source(cls, model, source, expectation: bool = False, block_rows: int | None = None) -> FullDataLoss:
        """The objective for all rows of a [`RowSource`][jaxdistill.RowSource] as given (e.g. ``NpySource`` over files
        larger
        than memory): one streaming pass (two for a feature map other than the identity), memory bounded by
        the block size. With several processes each reads its share of the rows
        (see [`sufficient_statistics`][jaxdistill.sufficient_statistics])."""
        cls().check(model, None)                   # a model linear in θ
        fmap = getattr(model, "feature_map", None)
        st = sufficient_statistics(source, fmap, standardize=False, block_rows=block_rows or BLOCK_ROWS)
        return cls(expectation).with_statistics(st.FtF / st.n, st.FtY / st.n, float(np.trace(st.YtY)) / st.n, st.n,
                                            jnp.result_type(float))

    def with_statistics(self, G, C, s: float, n: int, dtype=None) -> FullDataLoss:
        """This objective bound to the statistics G = ΦᵀΦ/n, C = ΦᵀY/n, s = ‖Y‖²_F/n of n rows (float64)."""
        dtype = jnp.result_type(float) if dtype is None else dtype
        G = np.asarray(G, np.float64)
        R, target, floor = compress(G + float(self.ridge) * np.eye(G.shape[0]), C, s)
        return FullDataLoss(self.expectation, on_device(R, dtype), on_device(target, dtype),
                            on_device(floor, dtype), n, ridge=float(self.ridge))

    def row_objective(self) -> Objective:
        return ExpectedBatchLoss() if self.expectation else BatchLoss()

    def value(self, theta: jax.Array) -> jax.Array:
        r"""L(θ) = 1/(2n)‖Φθ − Y‖² (+ ridge/2‖θ‖²) for one θ of shape (p, d_out):

        $$
        L(\theta) = \frac{1}{2n}\lVert \Phi\theta - Y\rVert^2 + \frac{\lambda}{2}\lVert\theta\rVert^2 .
        $$
        """
        self._require_bound()
        r = self.R @ theta - self.target
        return 0.5 * jnp.sum(r ** 2) + self.floor

    def data_losses(self, solution, model, FB, YB):
        self._require_bound()
        if self.expectation:
            if not isinstance(solution, AffineSolution):
                raise ValueError("FullDataLoss(expectation=True) needs an affine inner solution (ExactLinearGD).")
            mean = self.R @ solution.D - self.target
            RMT = solution.apply_MT(self.R.T)      # (M^T Rᵀ); M^T is symmetric
            var = model.init_scale ** 2 * self.target.shape[1] * jnp.sum(RMT ** 2)
            loss = 0.5 * (jnp.sum(mean ** 2) + var) + self.floor
            return jnp.broadcast_to(loss, (solution.theta0s.shape[0],))
        if not hasattr(solution, "thetas"):
            raise ValueError("FullDataLoss needs an inner solution with parameters θ (a linear model).")
        r = jnp.einsum("rp,qpk->qrk", self.R, solution.thetas) - self.target[None]
        return 0.5 * jnp.sum(r ** 2, axis=(1, 2)) + self.floor

    def _require_bound(self):
        if self.R is None:
            raise ValueError("This FullDataLoss has no data statistics yet: pass it to distill(objective=...), "
                             "or build it with FullDataLoss.from_data(model, X, Y).")
