"""Choosing the ridge penalty λ of a model linear in θ from its sufficient statistics (``lambda_inner="auto"``).

For features Φ (n × p) and targets Y (n × k) with G = ΦᵀΦ/n = UΛUᵀ and c = UᵀΦᵀY/n, the ridge model of Def. 2.1,
θ_λ = (G + λI)⁻¹ΦᵀY/n, has for every λ at once (Golub, Heath & Wahba, *Technometrics* 21(2), 1979)

    RSS(λ)/n = s − Σᵢ ‖cᵢ‖² (λᵢ + 2λ) / (λᵢ + λ)²,      df(λ) = tr H_λ = Σᵢ λᵢ / (λᵢ + λ),

    GCV(λ) = (RSS(λ)/n) / (1 − (df(λ) + df₀)/n)²,

where s = ‖Y‖²_F/n and df₀ = 1 when the rows were centred (the intercept standardisation removed). One
eigendecomposition of the p × p matrix G gives the whole path: nothing here reads a row, so it works for data
larger than memory (the statistics come from one streaming pass). The λ returned minimises GCV over a grid
spanning ``GRID_DECADES`` decades of the mean eigenvalue tr(G)/p (standardised features: ≈ 1; p counts the
features that vary).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

#: the λ grid: tr(G)/p × 10^k for k from GRID_DECADES[0] to GRID_DECADES[1], ten values per decade
GRID_DECADES = (-6.0, 3.0)
GRID_PER_DECADE = 10
#: an optimum at an edge of the grid extends it by this many decades at a time, within GRID_LIMITS (decades of
#: tr(G)/p): below 1e-12 ridge is least squares to float precision, above 1e6 it predicts the mean
EXTEND_DECADES = 3
GRID_LIMITS = (-12.0, 6.0)


def _decades(k: int) -> np.ndarray:
    """10^t for t from 0 to k (or k to 0), ``GRID_PER_DECADE`` per decade."""
    return np.logspace(min(0, k), max(0, k), abs(k) * GRID_PER_DECADE + 1)


@dataclasses.dataclass(frozen=True)
class RidgeChoice:
    """A ridge penalty chosen by generalised cross-validation.

    Attributes:
      lam: the chosen λ (the normalisation of Def. 2.1: 1/(2n)‖Φθ − Y‖² + λ/2‖θ‖²).
      df: effective degrees of freedom tr H_λ at ``lam`` (intercept excluded).
      n: rows the statistics were taken over.
      grid: the λ values tried; scores: GCV at each (inf where df + df₀ ≥ n).
    """

    lam: float
    df: float
    n: int
    grid: np.ndarray
    scores: np.ndarray

    @property
    def at_edge(self) -> bool:
        """Whether the choice is the smallest or largest λ of the grid (the optimum may lie beyond it)."""
        return bool(self.lam <= self.grid[0] or self.lam >= self.grid[-1])

    def describe(self, held_out: int = 0) -> str:
        """The choice in words; ``held_out``: rows a run held out for validation besides the ``n`` it fits."""
        edge = " (at the edge of the grid)" if self.at_edge else ""
        rows = (f"the {self.n} training rows the run fits ({held_out} more are held out for validation, "
                "validation_fraction)" if held_out else f"the {self.n} training rows")
        return (f"λ_I = {self.lam:.3g} chosen by generalised cross-validation on {rows} "
                f"({self.df:.3g} effective parameters; {self.grid.size} values from {self.grid[0]:.2g} to "
                f"{self.grid[-1]:.2g}){edge}")

    def record(self, held_out: int = 0) -> dict:
        """What a result records of the choice (``meta.lambda_choice``): `to_dict` and its description (and the rows
        held out for validation, where a run held some out)."""
        return {**self.to_dict(), "description": self.describe(held_out)} | ({"held_out": held_out} if held_out else {})

    def to_dict(self) -> dict:
        return {"method": "gcv", "lambda": self.lam, "df": self.df, "n": self.n,
                "grid": [float(self.grid[0]), float(self.grid[-1]), int(self.grid.size)]}


def gcv_grid(G: np.ndarray) -> np.ndarray:
    """The λ values tried for Gram matrix G: tr(G)/p × 10^k over ``GRID_DECADES`` (p counting only the features
    that vary: constant columns, exactly zero once standardised, do not move the grid)."""
    p = int(np.count_nonzero(np.diag(G) > 0))
    scale = float(np.trace(G)) / max(p, 1)
    scale = scale if scale > 0 else 1.0
    lo, hi = GRID_DECADES
    return scale * np.logspace(lo, hi, int(round((hi - lo) * GRID_PER_DECADE)) + 1)


def gcv_scores(G: np.ndarray, C: np.ndarray, s: float, n: int, lams: np.ndarray, centred: bool = True):
    """GCV(λ) and df(λ) for each λ in ``lams`` (module docs), from G = ΦᵀΦ/n, C = ΦᵀY/n, s = ‖Y‖²_F/n (float64)."""
    G, C, lams = np.asarray(G, np.float64), np.asarray(C, np.float64), np.asarray(lams, np.float64)
    ev, U = np.linalg.eigh(0.5 * (G + G.T))
    ev = np.clip(ev, 0.0, None)
    c2 = np.sum((U.T @ C.reshape(G.shape[0], -1)) ** 2, axis=1)          # ‖cᵢ‖² summed over outputs
    lam = lams[:, None]
    rss = s - np.sum(c2 * (ev + 2 * lam) / (ev + lam) ** 2, axis=1)       # RSS(λ)/n
    rss = np.maximum(rss, 0.0)
    df = np.sum(ev / (ev + lam), axis=1)
    denom = 1.0 - (df + (1.0 if centred else 0.0)) / n
    scores = np.where(denom > 0, rss / np.where(denom > 0, denom, 1.0) ** 2, np.inf)
    return scores, df


def choose_ridge(G: np.ndarray, C: np.ndarray, s: float, n: int, centred: bool = True) -> RidgeChoice:
    r"""The λ of the grid (`gcv_grid`) with the lowest GCV score (ties: the larger λ, the simpler model):

    $$
    \mathrm{GCV}(\lambda) = \frac{\mathrm{RSS}(\lambda)/n}{\big(1 - (\mathrm{df}(\lambda) + c)/n\big)^2}, \qquad
    \mathrm{df}(\lambda) = \sum_i \frac{e_i}{e_i + \lambda},
    $$

    with e_i the eigenvalues of ΦᵀΦ/n, RSS(λ) of ridge with λ (normalised as in Def. 2.1) and c = 1 for centred rows.

    Args:
      G: ΦᵀΦ of the training rows (p, p) (features standardised or not).
      C: ΦᵀY (p, k).
      s: ‖Y‖²_F.
      n: the number of training rows.
      centred: whether the rows were centred (counts one more degree of freedom for the removed mean).

    Returns:
      A [`RidgeChoice`][jaxdistill.RidgeChoice].

    Examples:
      >>> import numpy as np, jaxdistill as jd
      >>> from jaxdistill import datasets
      >>> X, Y = datasets.load("diabetes")
      >>> Xs, ys = (X - X.mean(0)) / X.std(0), Y - Y.mean(0)
      >>> choice = jd.choose_ridge(Xs.T @ Xs, Xs.T @ ys, float((ys ** 2).sum()), len(ys))
      >>> bool(1e-6 <= choice.lam <= 1e3), bool(0 < choice.df < 10)
      (True, True)

    References:
      G. H. Golub, M. Heath, G. Wahba. *Generalized Cross-Validation as a Method for Choosing a Good Ridge
        Parameter*. Technometrics 21(2), 1979.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"choose_ridge needs the number of training rows n >= 1, got {n!r}.")
    grid = gcv_grid(G)
    scale = grid[0] / 10.0 ** GRID_DECADES[0]                     # tr(G)/p: the grid is relative to it
    while True:
        scores, df = gcv_scores(G, C, s, n, grid, centred)
        if not np.any(np.isfinite(scores)):
            i = grid.size - 1
            break
        best = np.nanmin(scores)
        i = int(np.flatnonzero(scores <= best * (1 + 1e-12))[-1])
        # an optimum at an edge may lie beyond it: extend the grid by EXTEND_DECADES at a time, down to where ridge
        # is least squares to float precision and up to where it predicts the mean, and choose again
        if i == 0 and grid[0] > scale * 10.0 ** GRID_LIMITS[0] * (1 + 1e-9):
            grid = np.concatenate([grid[0] * _decades(-EXTEND_DECADES)[:-1], grid])
        elif i == grid.size - 1 and grid[-1] < scale * 10.0 ** GRID_LIMITS[1] * (1 - 1e-9):
            grid = np.concatenate([grid, grid[-1] * _decades(EXTEND_DECADES)[1:]])
        else:
            break
    choice = RidgeChoice(lam=float(grid[i]), df=float(df[i]), n=int(n), grid=grid, scores=scores)
    if choice.at_edge and np.any(np.isfinite(scores)):
        warnings.warn(f"Generalised cross-validation chose λ = {choice.lam:.3g} at the edge of its grid (extended to "
                      f"{grid[0]:.2g}…{grid[-1]:.2g}): the best ridge penalty may lie beyond it. Pass lambda_inner=... "
                      "to set it.", UserWarning, stacklevel=2)
    return choice
