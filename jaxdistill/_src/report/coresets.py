"""Coresets: m representative training rows (or centroids) chosen without distillation, the baselines a
practitioner deciding between distilling and keeping m real rows would try. Host-side numpy in float64, on the
standardised rows; each returns ``(X_set, Y_set)`` of m rows, trained afterwards by the same procedure as the
distilled set (``evaluate``).

* [`leverage_rows`][jaxdistill.coresets.leverage_rows] — ridge leverage-score sampling, the classical coreset for least
squares (Drineas,
  Mahoney & Muthukrishnan, *SODA* 2006; Alaoui & Mahoney, *NeurIPS* 2015): rows drawn without replacement
  with probability ∝ hᵢ = φᵢᵀ(ΦᵀΦ + nλI)⁻¹φᵢ, then trained **without** importance weights (the inner
  procedure has none; a reweighted sample of m ≪ n rows is also far noisier);
* [`kmeans_centroids`][jaxdistill.coresets.kmeans_centroids] — Lloyd's k-means (k-means++ seeding, Arthur &
Vassilvitskii, *SODA* 2007) on the
  inputs, each centroid with the mean target of its cluster (synthetic points, like a distilled set);
* [`kcenter_rows`][jaxdistill.coresets.kcenter_rows] — greedy k-center (Gonzalez 1985; the "core-set" of Sener &
Savarese, *ICLR* 2018):
  from a random row, repeatedly the row farthest from those chosen.
"""

from __future__ import annotations

import numpy as np

#: the coresets ``evaluate`` can add, by row id
CORESETS = ("leverage", "kmeans", "kcenter")
LABELS = {"leverage": "leverage-score sample", "kmeans": "k-means centroids", "kcenter": "k-center rows"}
#: Lloyd iterations of [`kmeans_centroids`][jaxdistill.coresets.kmeans_centroids] (stops earlier when the assignment no
#: longer changes)
KMEANS_ITERS = 50


def _sq_dists(X, C):
    """Squared distances (n, k) between rows of X and rows of C."""
    return np.maximum((X ** 2).sum(1)[:, None] - 2 * X @ C.T + (C ** 2).sum(1)[None], 0.0)


def leverage_scores(F: np.ndarray, lam: float) -> np.ndarray:
    """Ridge leverage scores hᵢ = φᵢᵀ(ΦᵀΦ + nλI)⁻¹φᵢ of the rows of F (n, p); λ = 0: statistical leverage."""
    F = np.asarray(F, np.float64)
    n, p = F.shape
    G = F.T @ F + n * max(lam, 0.0) * np.eye(p)
    sol = np.linalg.lstsq(G, F.T, rcond=None)[0]          # (p, n): pseudo-inverse where G is singular
    return np.maximum(np.einsum("ij,ji->i", F, sol), 0.0)


def leverage_rows(F, m: int, lam: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of m rows drawn without replacement with probability ∝ their ridge leverage."""
    h = leverage_scores(F, lam)
    n = h.size
    w = h + 1e-12 * max(float(h.max(initial=0.0)), 1e-300)  # every row keeps a chance (zero-leverage rows)
    return rng.choice(n, size=m, replace=False, p=w / w.sum())


def kmeans_centroids(X, Y, m: int, rng: np.random.Generator, iters: int = KMEANS_ITERS):
    """m centroids of the rows of X (k-means++ seeding, Lloyd's iterations) and the mean Y of each cluster.

    A cluster that empties is re-seeded at the row farthest from its centroid, so m clusters always remain."""
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    n = X.shape[0]
    centres = [X[rng.integers(n)]]
    d2 = _sq_dists(X, np.asarray(centres))[:, 0]
    for _ in range(1, m):
        total = d2.sum()
        i = rng.choice(n, p=d2 / total) if total > 0 else rng.integers(n)
        centres.append(X[i])
        d2 = np.minimum(d2, _sq_dists(X, X[i:i + 1])[:, 0])
    C = np.asarray(centres)
    assign = None
    for _ in range(iters):
        D = _sq_dists(X, C)
        new = D.argmin(1)
        if assign is not None and np.array_equal(new, assign):
            break
        assign = new
        counts = np.bincount(assign, minlength=m)
        for k in np.flatnonzero(counts == 0):       # empty cluster: the worst-served row becomes its centre
            far = int(D[np.arange(n), assign].argmax())
            assign[far] = k
            counts = np.bincount(assign, minlength=m)
        C = np.stack([X[assign == k].mean(0) for k in range(m)])
    assign = _sq_dists(X, C).argmin(1)
    Ym = np.stack([Y[assign == k].mean(0) if np.any(assign == k) else Y.mean(0) for k in range(m)])
    return C, Ym


def kcenter_rows(X, m: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of m rows chosen greedily, each the farthest from those already chosen (from a random first)."""
    X = np.asarray(X, np.float64)
    n = X.shape[0]
    idx = [int(rng.integers(n))]
    d2 = _sq_dists(X, X[idx])[:, 0]
    for _ in range(1, m):
        i = int(d2.argmax())
        idx.append(i)
        d2 = np.minimum(d2, _sq_dists(X, X[i:i + 1])[:, 0])
    return np.asarray(idx)


def coreset(kind: str, X, Y, F, m: int, lam: float, seed: int):
    """The coreset ``kind`` (one of [`CORESETS`][jaxdistill.coresets.CORESETS]) of m points for standardised rows (X,
    Y), features F."""
    rng = np.random.default_rng(seed)
    if kind == "leverage":
        idx = leverage_rows(F, m, lam, rng)
    elif kind == "kcenter":
        idx = kcenter_rows(X, m, rng)
    elif kind == "kmeans":
        return kmeans_centroids(X, Y, m, rng)
    else:
        raise ValueError(f"Unknown coreset {kind!r}; coresets are {CORESETS}.")
    return np.asarray(X)[idx], np.asarray(Y)[idx]
