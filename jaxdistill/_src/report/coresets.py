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
  inputs, each centroid with the mean target of its cluster (synthetic points, like a distilled set); beyond
  20,000 rows the centroids are fitted on 20,000 rows drawn at random and every row is assigned to them;
* [`kcenter_rows`][jaxdistill.coresets.kcenter_rows] — greedy k-center (Gonzalez 1985; the "core-set" of Sener &
Savarese, *ICLR* 2018):
  from a random row, repeatedly the row farthest from those chosen;
* [`herding_rows`][jaxdistill.coresets.herding_rows] — kernel herding (Chen, Welling & Smola, *UAI* 2010) on the
  joint standardised rows [x, y]: greedily the row that brings the chosen rows' kernel mean embedding closest to the
  data's (a distribution-matching coreset; not in the default `CORESETS`, so ``evaluate``'s default rows stay as
  they were — ask for it with ``coresets=(..., "herding")``). Kernel thinning (the ``goodpoints`` package) returns
  n/2^g points, not a chosen m, so herding is the distribution-matching baseline here.
"""

from __future__ import annotations

import numpy as np

from jaxdistill._src.data.arrays import StandardRows, row_blocks

#: the coresets ``evaluate`` adds by default, by row id
CORESETS = ("leverage", "kmeans", "kcenter")
#: every coreset ``evaluate`` can add (``coresets=``)
KINDS = CORESETS + ("herding",)
LABELS = {"leverage": "leverage-score sample", "kmeans": "k-means centroids", "kcenter": "k-center rows",
          "herding": "kernel herding rows"}
#: rows kernel herding chooses among and matches the kernel mean of (a random sample beyond this; its kernel
#: matrix is HERDING_MAX_ROWS² float64: 72 MiB)
HERDING_MAX_ROWS = 3000
#: Lloyd iterations of [`kmeans_centroids`][jaxdistill.coresets.kmeans_centroids] (stops earlier when the assignment no
#: longer changes)
KMEANS_ITERS = 50
#: rows [`kmeans_centroids`][jaxdistill.coresets.kmeans_centroids] fits its centroids on (a random sample beyond this)
KMEANS_MAX_ROWS = 20_000


def _sq_dists(X, C, xx=None):
    """Squared distances (n, k) between rows of X and rows of C; ``xx`` = the rows' squared norms of X, when a
    caller measuring against many C computes them once (the same values)."""
    xx = (X ** 2).sum(1) if xx is None else xx
    return np.maximum(xx[:, None] - 2 * X @ C.T + (C ** 2).sum(1)[None], 0.0)


#: rows per block of the passes over all training rows: float64 temporaries of 16,384 × d (12.5 MiB at d = 100).
#: Measured at 10⁶ × 100 with every coreset: 65,536-row blocks peaked 299 MiB over the data, these 116 MiB, and
#: ran in 10.8 s instead of 14.7 s; the chosen rows are the same (every pass is row by row).
BLOCK = 16384


def cross_products(F, Y=None, block: int = BLOCK):
    """FᵀF (and FᵀY) in float64, summed over row blocks of F (any float dtype): memory O(block · p)."""
    p = F.shape[1]
    G = np.zeros((p, p))
    C = None if Y is None else np.zeros((p, Y.shape[1]))
    for i, Fb in enumerate(row_blocks(F, block=block)):
        G += Fb.T @ Fb
        if Y is not None:
            C += Fb.T @ np.asarray(Y[i * block:(i + 1) * block], np.float64)
    return G, C


def leverage_scores(F: np.ndarray, lam: float, gram: np.ndarray | None = None) -> np.ndarray:
    """Ridge leverage scores hᵢ = φᵢᵀ(ΦᵀΦ + nλI)⁺φᵢ of the rows of F (n, p); λ = 0: statistical leverage.

    From one eigendecomposition G = ΦᵀΦ + nλI = U diag(g) Uᵀ (pseudo-inverse: eigenvalues at or below
    p·ε·g_max, numpy's ``lstsq`` cut-off, are dropped): hᵢ = Σ_j (φᵢᵀu_j)² / g_j — O(np²), in float64 over row
    blocks (F in any float dtype is never copied whole).

    Args:
      F: the rows' features Φ (n, p).
      lam: the ridge penalty λ (0: statistical leverage).
      gram: ΦᵀΦ (p, p) in float64 when already summed (then F is read once, not twice).

    Returns:
      The scores hᵢ, shape (n,), float64.
    """
    n, p = F.shape
    G = cross_products(F)[0] if gram is None else np.asarray(gram, np.float64)
    if G.shape != (p, p):
        raise ValueError(f"gram must be FᵀF of shape ({p}, {p}), got {G.shape}.")
    g, U = np.linalg.eigh(G + n * max(lam, 0.0) * np.eye(p))
    keep = g > p * np.finfo(np.float64).eps * max(float(g.max(initial=0.0)), 0.0)
    U, g = U[:, keep], g[keep]
    h = np.concatenate([np.einsum("ij,ij->i", FU, FU / g) for FU in (Fb @ U for Fb in row_blocks(F, block=BLOCK))])
    return np.maximum(h, 0.0)


def leverage_rows(F, m: int, lam: float, rng: np.random.Generator, scores: np.ndarray | None = None) -> np.ndarray:
    """Indices of m rows drawn without replacement with probability ∝ their ridge leverage.

    Args:
      F: the rows' features (n, p).
      m: rows to draw.
      lam: the ridge penalty λ of the scores.
      rng: a ``np.random.Generator``.
      scores: the `leverage_scores` of F when already computed (e.g. for several draws).

    Returns:
      The drawn row indices, shape (m,).
    """
    h = leverage_scores(F, lam) if scores is None else scores
    n = h.size
    w = h + 1e-12 * max(float(h.max(initial=0.0)), 1e-300)  # every row keeps a chance (zero-leverage rows)
    return rng.choice(n, size=m, replace=False, p=w / w.sum())


def _rows(X):
    """X as float64 rows: an array, memory map or DataFrame converted, or ``data.arrays.StandardRows`` (rows
    standardised when indexed) kept, so that passes over all rows go block by block."""
    return X if isinstance(X, StandardRows) else np.asarray(X, np.float64)


def _check_m(m: int, n: int) -> None:
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or not 1 <= m <= n:
        raise ValueError(f"A coreset of m = {m!r} points from {n} rows: m must be an integer from 1 to {n} (the "
                         "chosen rows are distinct).")


def _sq_norms(X) -> np.ndarray:
    """The rows' squared norms, over row blocks (the same values as ``(X ** 2).sum(1)``)."""
    return np.concatenate([(Xb ** 2).sum(1) for Xb in row_blocks(X, block=BLOCK)])


def _cluster_means(X, assign, m: int) -> np.ndarray:
    """The mean of each cluster's rows, (m, d) (NaN for an empty cluster)."""
    return np.stack([X[assign == k].mean(0) if np.any(assign == k) else np.full(X.shape[1], np.nan)
                     for k in range(m)])


def _nearest(X, C) -> np.ndarray:
    """Index of the nearest row of C for each row of X, over row blocks (memory O(block · k))."""
    return np.concatenate([_sq_dists(Xb, C).argmin(1) for Xb in row_blocks(X, block=BLOCK)])


def _lloyd(X, m: int, rng: np.random.Generator, iters: int) -> np.ndarray:
    """m centroids of the rows of X (float64): k-means++ seeding, then Lloyd's iterations until the assignment
    stops changing (at most ``iters``); a cluster that empties is re-seeded at the row farthest from its centroid."""
    n = X.shape[0]
    xx = (X ** 2).sum(1)
    centres = [X[rng.integers(n)]]
    d2 = _sq_dists(X, np.asarray(centres), xx)[:, 0]
    for _ in range(1, m):
        total = d2.sum()
        i = rng.choice(n, p=d2 / total) if total > 0 else rng.integers(n)
        centres.append(X[i])
        d2 = np.minimum(d2, _sq_dists(X, X[i:i + 1], xx)[:, 0])
    C = np.asarray(centres)
    assign = None
    for _ in range(iters):
        D = _sq_dists(X, C, xx)
        new = D.argmin(1)
        if assign is not None and np.array_equal(new, assign):
            break
        assign = new
        counts = np.bincount(assign, minlength=m)
        for k in np.flatnonzero(counts == 0):       # empty cluster: the worst-served row becomes its centre
            far = int(D[np.arange(n), assign].argmax())
            assign[far] = k
            counts = np.bincount(assign, minlength=m)
        C = _cluster_means(X, assign, m)
    return C


def kmeans_centroids(X, Y, m: int, rng: np.random.Generator, iters: int = KMEANS_ITERS):
    """m centroids of the rows of X (k-means++ seeding, Lloyd's iterations) and the mean Y of each cluster.

    A cluster that empties is re-seeded at the row farthest from its centroid, so m clusters always remain.
    Beyond `KMEANS_MAX_ROWS` rows the centroids are fitted on that many rows drawn at random (each Lloyd
    iteration costs O(n·m·d): 200,000 rows took ~6 s per draw on 2 cores); every row is then assigned to its
    nearest centroid for the cluster means of Y (the training mean for a cluster left empty).

    Args:
      X: inputs (n, d) (standardised).
      Y: targets (n,) or (n, d_out).
      m: centroids.
      rng: a ``np.random.Generator`` (seeding, the sample beyond `KMEANS_MAX_ROWS`).
      iters: the most Lloyd iterations (fewer when the assignment stops changing).

    Returns:
      (centroids (m, d), their clusters' mean targets (m, d_out)).
    """
    X, Y = _rows(X), np.asarray(Y, np.float64)
    one_d = Y.ndim == 1                              # targets come back in the shape given: (m,) for (n,)
    Y = Y.reshape(Y.shape[0], -1)
    n = X.shape[0]
    _check_m(m, n)
    fit = np.sort(rng.choice(n, KMEANS_MAX_ROWS, replace=False)) if n > KMEANS_MAX_ROWS else slice(None)
    C = _lloyd(np.asarray(X[fit], np.float64), m, rng, iters)
    assign = _nearest(X, C)
    counts = np.bincount(assign, minlength=m)
    T = np.where((counts > 0)[:, None], _cluster_means(Y, assign, m), Y.mean(0))
    return C, T[:, 0] if one_d else T


def kcenter_rows(X, m: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of m rows chosen greedily, each the farthest from those already chosen (from a random first); m
    passes over the rows, each block by block.

    Args:
      X: inputs (n, d) (standardised; an array, memory map, row view or pandas frame).
      m: rows to choose (at most n).
      rng: a ``np.random.Generator`` (the first row).

    Returns:
      The chosen row indices, shape (m,).
    """
    return kcenter_rows_many(X, m, [rng])[0]


def kcenter_rows_many(X, m: int, rngs) -> list[np.ndarray]:
    """`kcenter_rows` for several generators at once (the same indices as one call per generator): each greedy
    step is one pass over the row blocks for every draw, so rows read on demand are standardised m times, not
    m times per draw."""
    X = _rows(X)
    n = X.shape[0]
    _check_m(m, n)
    xx = _sq_norms(X)
    if not np.all(np.isfinite(xx)):               # a NaN row would be "farthest" from every row and chosen first
        bad = np.flatnonzero(~np.isfinite(xx))
        raise ValueError(f"kcenter_rows: rows {bad[:10].tolist()} hold NaN or inf; drop them first.")
    idx = [[int(rng.integers(n))] for rng in rngs]
    d2 = _sq_dists_each(X, [np.asarray(X[i], np.float64) for i in idx], xx)
    for _ in range(1, m):
        new = [int(d.argmax()) for d in d2]
        for chosen, i in zip(idx, new, strict=True):
            chosen.append(i)
        d2 = [np.minimum(a, b) for a, b in zip(d2, _sq_dists_each(
            X, [np.asarray(X[i:i + 1], np.float64) for i in new], xx), strict=True)]
    return [np.asarray(i) for i in idx]


def _sq_dists_each(X, Cs, xx) -> list[np.ndarray]:
    """For each one-row C of ``Cs``, `_sq_dists` of every row of X to it (n,), in one pass over X's row blocks."""
    out = [[] for _ in Cs]
    for i, Xb in enumerate(row_blocks(X, block=BLOCK)):
        xb = xx[i * BLOCK:(i + 1) * BLOCK]
        for o, C in zip(out, Cs, strict=True):
            o.append(_sq_dists(Xb, C, xb)[:, 0])
    return [np.concatenate(o) for o in out]


def herding_rows(X, Y, m: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of m distinct rows chosen by kernel herding on the joint rows z = [x, y] (standardised).

    With a Gaussian kernel k (bandwidth: the median squared distance between rows) and the data's kernel mean
    μ(z) = (1/n) Σᵢ k(z, zᵢ), step t + 1 takes the row z maximising μ(z) − (1/(t + 1)) Σ_{s ≤ t} k(z, z_s): the one
    that most reduces the maximum mean discrepancy between the chosen rows and the data. Beyond
    `HERDING_MAX_ROWS` rows the candidates and the data's kernel mean are a random sample of that many rows.

    Args:
      X: standardised inputs (n, d).
      Y: standardised targets (n, d_out).
      m: rows to choose.
      rng: a ``np.random.Generator`` (the bandwidth sample, the candidates beyond `HERDING_MAX_ROWS`).

    Returns:
      The chosen row indices, shape (m,).
    """
    X, Y = _rows(X), np.asarray(Y, np.float64)
    n = X.shape[0]
    if m > n:
        raise ValueError(f"m = {m} rows cannot be chosen from {n}.")
    pool = np.sort(rng.choice(n, HERDING_MAX_ROWS, replace=False)) if n > HERDING_MAX_ROWS else np.arange(n)
    Z = np.concatenate([np.asarray(_take(X, pool), np.float64), Y[pool]], axis=1)
    D = _sq_dists(Z, Z)
    h = float(np.median(D[np.triu_indices(len(pool), 1)])) or 1.0
    K = np.exp(-D / h)
    mu, acc = K.mean(1), np.zeros(len(pool))
    chosen = []
    for t in range(m):
        score = mu - acc / (t + 1)
        score[chosen] = -np.inf
        j = int(np.argmax(score))
        chosen.append(j)
        acc += K[:, j]
    return pool[np.asarray(chosen)]


def coreset(kind: str, X, Y, F, m: int, lam: float, seed: int, scores: np.ndarray | None = None):
    """The coreset ``kind`` (one of [`KINDS`][jaxdistill.coresets.KINDS]) of m points for standardised rows (X,
    Y), features F — the one way to make any of them (the functions below are its parts).

    Args:
      kind: ``"leverage"``, ``"kmeans"``, ``"kcenter"`` or ``"herding"``.
      X: standardised inputs (n, d) (an array, memory map or row view; never copied whole).
      Y: standardised targets (n, d_out).
      F: the rows' features (n, p) (used by ``"leverage"``).
      m: points to choose.
      lam: the ridge penalty of the leverage scores.
      seed: the draw's seed (``np.random.default_rng(seed)``).
      scores: F's `leverage_scores`, when already computed for other draws.

    Returns:
      (X_c, Y_c): the m chosen rows (or centroids and their clusters' mean targets).
    """
    rng = np.random.default_rng(seed)
    if kind == "leverage":
        idx = leverage_rows(F, m, lam, rng, scores)
    elif kind == "kcenter":
        idx = kcenter_rows(X, m, rng)
    elif kind == "kmeans":
        return kmeans_centroids(X, Y, m, rng)
    elif kind == "herding":
        idx = herding_rows(X, Y, m, rng)
    else:
        raise ValueError(f"Unknown coreset {kind!r}; coresets are {KINDS}.")
    return _take(X, idx), np.asarray(Y)[idx]


def coreset_draws(kind: str, X, Y, F, m: int, lam: float, seeds, gram: np.ndarray | None = None
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """`coreset` for each seed of ``seeds`` (the same sets as one call per seed), sharing what the draws share:
    the leverage scores are computed once (from ``gram`` = FᵀF when given), and k-center's greedy steps make one
    pass over the rows for all draws."""
    if kind == "kcenter":
        picked = kcenter_rows_many(X, m, [np.random.default_rng(int(sd)) for sd in seeds])
        return [(_take(X, idx), np.asarray(Y)[idx]) for idx in picked]
    scores = leverage_scores(F, lam, gram) if kind == "leverage" else None
    return [coreset(kind, X, Y, F, m, lam, int(sd), scores) for sd in seeds]


def _take(X, idx):
    """Rows ``idx`` of X as given (``StandardRows``: standardised)."""
    return X[np.asarray(idx)] if isinstance(X, StandardRows) else np.asarray(X)[idx]
