"""Real data, prepared once: checks, the train / validation split, standardisation, batch draws.

Memory: the caller's arrays are used where they are (a NumPy array or a memory map) and never copied
whole. The split is a pair of index arrays; standardisation statistics are computed in float64 in
row blocks (two passes, scaled so that columns near 1e±300 neither overflow nor underflow); a batch
is a gather of b rows, standardised in float64 on the host and sent to the device. Only the held-out
rows (``validation_fraction`` of n) and, in full-batch runs (b ≥ n), the training rows live on the
device.

Batches are drawn **with replacement**, b row indices uniform over the training rows, from the step's
key: O(b) per step whatever n is (a permutation per step costs O(n)). With b ≥ n_train every step uses
all training rows, exactly (the deterministic full-batch objective).
"""

from __future__ import annotations

import os
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxdistill._src.core import keys
from jaxdistill._src.data.schema import refuse_masked

_BLOCK = 4096  # rows per block of host passes: float64 temporaries of a few MiB


def on_device(a, dtype) -> jax.Array:
    """``a`` on the device in ``dtype``, cast on the host first: ``jnp.asarray(a, dtype)`` compiles a small program
    per shape (a conversion, or JAX's ``stage``); ``device_put`` of a cast numpy array only copies."""
    return jax.device_put(np.asarray(a, dtype=np.dtype(dtype)))


def as_2d_float(name: str, a, *, allow_1d: bool, check_finite: bool = True) -> np.ndarray:
    """Check that ``a`` is a finite real numeric array of rank 2 (or 1 if allowed) and return it 2-D.

    Float arrays (memory maps included) are returned without a copy. Raises ``ValueError`` naming the
    array, what is wrong and what to change. ``check_finite=False`` skips the scan for NaN/inf (for a caller
    that detects them from its own sums and calls again to name the rows).
    """
    refuse_masked(name, a)
    if hasattr(a, "toarray") and hasattr(a, "nnz"):            # scipy.sparse: np.asarray gives a 0-d object array
        shape = getattr(a, "shape", ("?", "?"))
        raise ValueError(f"{name} is a scipy.sparse matrix ({shape[0]} × {shape[1]}, {a.nnz} stored values); "
                         f"distillation works on dense rows: pass {name}.toarray() (for data too large for that, a "
                         "jaxdistill.BlockSource yielding dense blocks).")
    try:
        arr = a if isinstance(a, np.ndarray) else np.asarray(a)
    except Exception as exc:  # noqa: BLE001 - ragged lists and the like
        raise ValueError(f"{name} could not be turned into an array ({exc}); pass a numeric (n, d) array.") from None
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(
            f"{name} has dtype {arr.dtype}; pass real numbers (float32/float64 or integers). "
            "Encode categorical columns numerically first.")
    if arr.ndim == 1 and allow_1d:
        arr = arr[:, None]
    if arr.ndim != 2:
        want = "1-D (n,) or 2-D (n, d_out)" if allow_1d else "2-D (n, d)"
        raise ValueError(f"{name} must be {want}, got shape {arr.shape}.")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}).")
    if np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.float64)
    elif arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    if not check_finite:
        return arr
    bad_rows, n_bad = [], 0
    for i in range(0, arr.shape[0], _BLOCK):
        bad = ~np.isfinite(arr[i:i + _BLOCK])
        if bad.any():
            n_bad += int(bad.sum())
            bad_rows.extend((np.unique(np.nonzero(bad)[0]) + i).tolist())
    if n_bad:
        raise ValueError(
            f"{name} has {n_bad} non-finite values (NaN or inf) in {len(bad_rows)} rows, first at "
            f"row {bad_rows[0]}; drop or impute those rows (a missing value — pandas' pd.NA, a polars or Arrow "
            "null — counts as NaN).")
    return arr


def check_xy(X, Y, names: tuple[str, str] = ("X", "Y")) -> tuple[np.ndarray, np.ndarray]:
    """Validate real data (X, Y) (``names`` say which in messages). Returns 2-D float arrays (no copy of floats)."""
    X = as_2d_float(names[0], X, allow_1d=False)
    Y = as_2d_float(names[1], Y, allow_1d=True)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"{names[0]} has {X.shape[0]} rows but {names[1]} has {Y.shape[0]}; they must have one row "
                         "per example.")
    return X, Y


def check_mapped(*arrays) -> None:
    """Refuse to read a memory map whose file is now shorter than the map: touching its pages past the new end of
    the file kills the process with SIGBUS (no Python exception can catch it). One ``stat`` per call: made before
    each chunk's gathers and each block of a pass, it leaves only the time between the check and the read for a
    truncation to strike."""
    for a in arrays:
        mm = getattr(a, "_mmap", None)
        name = getattr(a, "filename", None)
        if mm is None or not name:
            continue
        import mmap as _mmap_module
        start = int(getattr(a, "offset", 0) or 0)
        start -= start % _mmap_module.ALLOCATIONGRANULARITY
        need = start + len(mm)
        try:
            size = os.path.getsize(name)
        except OSError:
            raise ValueError(f"The memory-mapped file {name} is gone (deleted or moved while being read). Restore "
                             "it and run again (a checkpointed run resumes where it was).") from None
        if size < need:
            raise ValueError(f"The memory-mapped file {name} was truncated while being read: it has {size:,} bytes, "
                             f"the map covers {need:,}; the rows past its end are gone, and reading them would kill "
                             "the process (SIGBUS). Restore the file and run again (a checkpointed run resumes where "
                             "it was).")


def row_blocks(A, rows=None, block: int = _BLOCK):
    """Row blocks of A (the rows ``rows``, in sorted order within each block) converted to float64: a pass over
    an array or memory map that never copies it whole."""
    n = A.shape[0] if rows is None else rows.size
    for i in range(0, n, block):
        check_mapped(A)
        sl = slice(i, i + block)
        yield np.asarray(A[sl] if rows is None else A[np.sort(rows[sl])], np.float64)


def column_reduce(ufunc, A: np.ndarray, k: int = 16) -> np.ndarray:
    """``ufunc.reduce(A, axis=0)`` for ``np.minimum`` / ``np.maximum`` (exact: the same values in any order), with k
    rows side by side: numpy's inner loop over a C-contiguous block is then k·d long instead of d, ~4× faster at
    d = 100 (a column's min and max had cost more than its share of the product CᵀC)."""
    n, d = A.shape
    head = n - n % k
    if not A.flags.c_contiguous or head == 0:
        return ufunc.reduce(A, axis=0)
    out = ufunc.reduce(ufunc.reduce(A[:head].reshape(-1, k * d), axis=0).reshape(k, d), axis=0)
    return out if head == n else ufunc(out, ufunc.reduce(A[head:], axis=0))


def column_stats(A, rows=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, standard deviation, minimum and maximum of the columns of A (rows ``rows``), float64, in row blocks.

    Pass 1 sums in float64 and finds each column's range; pass 2 sums ((a − μ)/c)² with c ≥ max |a|, so
    neither squares of 1e19 (float32 overflow) nor of 1e-200 (float64 underflow) are ever formed.
    """
    n = A.shape[0] if rows is None else rows.size
    total = np.zeros(A.shape[1])
    lo, hi = np.full(A.shape[1], np.inf), np.full(A.shape[1], -np.inf)
    for b in row_blocks(A, rows):
        total += b.sum(0)
        lo, hi = np.minimum(lo, column_reduce(np.minimum, b)), np.maximum(hi, column_reduce(np.maximum, b))
    mean = total / n
    c = np.maximum(np.abs(lo), np.abs(hi))
    c = np.where(c > 0, 2 * c, 1.0)     # ≥ max |a − μ|
    ss = np.zeros(A.shape[1])
    for b in row_blocks(A, rows):
        ss += np.sum(((b - mean) / c) ** 2, axis=0)
    return mean, c * np.sqrt(ss / n), lo, hi


def constant_columns(mean, sd, lo, hi, n: int) -> np.ndarray:
    """Which columns are constant: their range is zero, or their deviation is within float64 rounding of their
    mean (scikit-learn's rule: σ ≤ n·ε·|μ|; a column of 0.1s has σ ≈ 1e-17, not 0)."""
    return (hi == lo) | (np.asarray(sd) <= n * np.finfo(np.float64).eps * np.abs(mean))


def centre_and_scale(mean, sd, lo, hi, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre, scale, constant mask) of columns: a constant column is centred on its exact value (so its training
    values standardise to exactly 0) and gets scale 1 (so a new value 0.101 where every training value was 0.1
    stays 0.001, not 1e14); it then contributes nothing to a model fitted on the standardised rows."""
    const = constant_columns(mean, sd, lo, hi, n)
    centre = np.where(hi == lo, lo, mean)
    return centre, np.where(const | ~(np.asarray(sd) > 0), 1.0, sd), const


def warn_constant(names: list[str], what: str = "X", stacklevel: int = 4) -> None:
    """Say once which columns are constant (they are kept, with scale 1, and contribute nothing)."""
    if names:
        shown = ", ".join(names[:20]) + (f", … ({len(names)} in all)" if len(names) > 20 else "")
        warnings.warn(f"{what} has {len(names)} constant column(s) over the training rows: {shown}. They are kept "
                      "with scale 1 and contribute nothing (a model fitted on these rows cannot use them); drop them "
                      "to silence this.", UserWarning, stacklevel=stacklevel)


def _affine(A, mean, scale) -> np.ndarray:
    """(A − mean)/scale as a float64 ndarray (whatever array-like A is), with one temporary."""
    out = np.subtract(np.asarray(A), mean, dtype=np.float64)
    out /= scale
    return out


class StandardRows:
    """``std.x(X)`` read on demand: indexing (rows, slices, row blocks through `row_blocks`) standardises just
    those rows, float64, the same values as indexing ``std.x(X)`` — without a float64 copy of all of X."""

    def __init__(self, X, std: Standardizer):
        self.X, self.std = X, std
        self.shape, self.ndim, self.dtype = X.shape, 2, np.dtype(np.float64)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx):
        return self.std.x(self.X[idx])


class TrainFeatures:
    """Features Φ of standardised training rows (``StandardRows``), read on demand: indexing standardises just those
    rows, casts them to ``dtype`` (the compute dtype) and featurises them (``model.featurize``), so a pass over all
    rows never holds the features of all of them. Indexing returns a host array in ``dtype``, the values
    ``model.featurize`` gives for those rows; `row_blocks` reads it block by block (float64)."""

    def __init__(self, model, Xs: StandardRows, dtype):
        self.model, self.Xs, self.dtype = model, Xs, np.dtype(dtype)
        self.shape, self.ndim = (Xs.shape[0], model.num_features(Xs.shape[1], dtype)), 2

    def __len__(self) -> int:
        return self.shape[0]

    def featurize(self, Xs) -> np.ndarray:
        """Features of standardised inputs (rows × d, or stacked sets k × rows × d) in ``dtype``, on the host."""
        Xs = np.asarray(Xs)
        F = np.asarray(self.model.featurize(on_device(Xs.reshape(-1, Xs.shape[-1]), self.dtype)))
        return F.reshape(*Xs.shape[:-1], F.shape[-1])

    def __getitem__(self, idx) -> np.ndarray:
        return self.featurize(self.Xs[idx])

    def first_pass(self, Y, remedy: str, *, keep: bool = False, block: int = _BLOCK):
        """One pass over the rows in blocks of ``block`` rows: each block of standardised inputs is refused by
        `check_squarable` (naming its row) before anything is computed from it, then featurised. Returns
        (FᵀF, FᵀY in float64, None), or with ``keep`` (None, None, the features of all rows in ``dtype``) for
        baselines that train on all rows at once; without ``keep`` the features' column sums are left in
        ``column_sums``."""
        n, p = self.shape
        G, C = (None, None) if keep else (np.zeros((p, p)), np.zeros((p, Y.shape[1])))
        kept = np.empty(self.shape, self.dtype) if keep else None
        self.column_sums = None if keep else np.zeros(p)      # Σ F (float64): the features' own mean
        for start in range(0, n, block):
            xb = self.Xs[start:start + block]
            check_squarable((("X_train", xb),), self.dtype, "training", "the baselines would be inf or NaN", remedy,
                            start)
            fb = self.featurize(xb)
            if keep:
                kept[start:start + fb.shape[0]] = fb
            else:
                fb = np.asarray(fb, np.float64)
                G += fb.T @ fb
                self.column_sums += fb.sum(0)
                C += fb.T @ np.asarray(Y[start:start + block], np.float64)
        return G, C, kept


class Standardizer(NamedTuple):
    """Per-column affine maps x ↦ (x − mean)/scale for X and Y, fitted on training data (float64)."""

    x_mean: np.ndarray
    x_scale: np.ndarray
    y_mean: np.ndarray
    y_scale: np.ndarray

    @classmethod
    def fit(cls, X, Y, rows: np.ndarray | None = None) -> Standardizer:
        """Centres and scales of the rows ``rows`` (default all); constant columns: see `centre_and_scale`."""
        return cls(*cls.fit_constant(X, Y, rows)[0])

    @classmethod
    def fit_constant(cls, X, Y, rows: np.ndarray | None = None):
        """(the four arrays of a Standardizer, constant mask of X's columns, constant mask of Y's columns)."""
        n = X.shape[0] if rows is None else rows.size
        xm, xs, xc = centre_and_scale(*column_stats(X, rows), n)
        ym, ys, yc = centre_and_scale(*column_stats(Y, rows), n)
        return (xm, xs, ym, ys), xc, yc

    @classmethod
    def identity(cls, d: int, d_out: int) -> Standardizer:
        return cls(np.zeros(d), np.ones(d), np.zeros(d_out), np.ones(d_out))

    def x(self, X):
        return _affine(X, self.x_mean, self.x_scale)

    def y(self, Y):
        return _affine(Y, self.y_mean, self.y_scale)

    def x_inverse(self, Xs):
        return np.asarray(Xs, np.float64) * self.x_scale + self.x_mean

    def y_inverse(self, Ys):
        return np.asarray(Ys, np.float64) * self.y_scale + self.y_mean


class TrainData:
    """The prepared real data of a run (host side). See the module docs for what lives where.

    Attributes:
      X, Y: the caller's arrays (not copied), (n, d) and (n, d_out).
      train, val: row indices of the training and held-out rows.
      standardizer: statistics of the training rows.
      dtype: the compute dtype of device arrays.
    """

    def __init__(self, X, Y, train: np.ndarray, val: np.ndarray | None, standardizer: Standardizer, dtype,
                 X_val=None, Y_val=None):
        self.X, self.Y, self.train, self.val = X, Y, train, val
        self.standardizer, self.dtype = standardizer, dtype
        self._X_val, self._Y_val = X_val, Y_val
        # constant columns of X and Y over the training rows (indices; see centre_and_scale)
        self.constant_x = self.constant_y = np.zeros(0, np.int64)

    @property
    def n_train(self) -> int:
        return int(self.train.size)

    @property
    def n_validation(self) -> int:
        if self._X_val is not None:
            return int(self._X_val.shape[0])
        return 0 if self.val is None else int(self.val.size)

    @property
    def d(self) -> int:
        return int(self.X.shape[1])

    @property
    def d_out(self) -> int:
        return int(self.Y.shape[1])

    @property
    def raw_batches(self) -> bool:
        """True when batches go to the device as raw rows and are standardised there (see `rows`)."""
        return self.X.dtype == self.dtype and self.Y.dtype == self.dtype

    def device_standardizer(self) -> tuple[jax.Array, ...]:
        """(x_mean, x_scale, y_mean, y_scale) in the compute dtype, for `standardize_on_device`."""
        return tuple(on_device(a, self.dtype) for a in self.standardizer)

    def rows(self, idx: np.ndarray, raw: bool = False) -> tuple[jax.Array, jax.Array]:
        """Training rows ``train[idx]`` (idx of any shape) as device arrays (…, d), (…, d_out).

        Standardised on the host in float64, or with ``raw=True`` (only when `raw_batches`) sent
        as they are, to be standardised on the device: the data are already in the compute dtype, so
        (x − μ)/s there is as exact as the data, and the host only gathers (O(b·d) memory traffic).
        """
        r = self.train[np.asarray(idx).ravel()]
        shape = np.shape(idx)
        check_mapped(self.X, self.Y)
        if raw:
            return (jax.device_put(np.take(self.X, r, axis=0).reshape(*shape, self.d)),
                    jax.device_put(np.take(self.Y, r, axis=0).reshape(*shape, self.d_out)))
        xs = self.standardizer.x(self.X[r]).reshape(*shape, self.d)
        ys = self.standardizer.y(self.Y[r]).reshape(*shape, self.d_out)
        return on_device(xs, self.dtype), on_device(ys, self.dtype)

    def all_train(self) -> tuple[jax.Array, jax.Array]:
        return self.rows(np.arange(self.n_train))

    def _validation_host(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Standardised held-out rows (float64, host), or None."""
        if self._X_val is not None:
            Xv, Yv = self._X_val, self._Y_val
        elif self.val is not None and self.val.size:
            rows = np.sort(self.val)
            Xv, Yv = self.X[rows], self.Y[rows]
        else:
            return None
        return self.standardizer.x(Xv), self.standardizer.y(Yv)

    def validation(self) -> tuple[jax.Array, jax.Array] | None:
        """Standardised held-out rows on the device, or None."""
        host = self._validation_host()
        return None if host is None else tuple(on_device(a, self.dtype) for a in host)

    def check_validation_range(self) -> None:
        """Refuse held-out rows whose standardised values the compute dtype cannot square: their held-out
        loss would be inf and end the run ``nonfinite`` at its first evaluation."""
        host = self._validation_host()
        if host is not None:
            check_squarable(zip(("X", "Y"), host, strict=True), self.dtype, "held-out",
                            "the held-out loss would be inf", "drop it from the validation data")

    def fingerprint(self) -> str:
        """SHA-256 of the data (computed once; identifies it for checkpoints and saved results)."""
        if getattr(self, "_fingerprint", None) is None:
            from jaxdistill._src.core.fingerprint import data_fingerprint
            parts = (self.X, self.Y) if self._X_val is None else (self.X, self.Y, self._X_val, self._Y_val)
            self._fingerprint = data_fingerprint(*parts)
        return self._fingerprint


def check_squarable(named, dtype, rows: str, consequence: str, remedy: str, row_offset: int = 0) -> None:
    """Refuse standardised arrays (``(name, array)`` pairs, rows × columns, float64 on the host) holding a value
    that ``dtype`` cannot square — a sentinel like 1e30 in float32 data: ``consequence`` would follow. The
    message names the ``rows`` row (``row_offset`` added: for a block of a larger array) and column and says what
    to change (``remedy`` among it)."""
    limit = float(np.sqrt(np.finfo(dtype).max))
    for name, a in named:
        big = np.abs(a) >= limit
        if big.any():
            i, j = (int(k[0]) for k in np.nonzero(big))
            raise ValueError(
                f"A {rows} row's {name} column {j} lies {abs(a[i, j]):.3g} training standard deviations from the "
                f"training mean ({rows} row {i + row_offset}): beyond what {np.dtype(dtype).name} can square, so "
                f"{consequence}. "
                f"Check that row (a unit or sentinel value?), {remedy}, or compute in float64 "
                "(jax.config.update('jax_enable_x64', True)).")


def standardize_on_device(stats, X, Y):
    """(X − μ_x)/s_x, (Y − μ_y)/s_y with ``stats`` from `TrainData.device_standardizer` (traceable)."""
    xm, xs, ym, ys = stats
    return (X - xm) / xs, (Y - ym) / ys


def prepare(X, Y, *, m: int, key: jax.Array, validation_fraction: float, standardize: bool,
            validation=None) -> TrainData:
    """Check (X, Y), split off held-out rows (or take ``validation``), fit standardisation; no copies of X."""
    X, Y = check_xy(X, Y)
    n = X.shape[0]
    Xv = Yv = None
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise ValueError("validation must be a pair (X_val, Y_val).")
        Xv, Yv = check_xy(*validation, names=("the validation X", "the validation Y"))
        if Xv.shape[1] != X.shape[1] or Yv.shape[1] != Y.shape[1]:
            raise ValueError(f"validation data shapes {Xv.shape}, {Yv.shape} do not match the training data "
                             f"({X.shape[1]} input and {Y.shape[1]} output columns).")
        train, val = np.arange(n), None
    elif validation_fraction > 0:
        k = max(1, int(round(validation_fraction * n)))
        perm = np.asarray(keys.permutation(key, n))
        train, val = np.sort(perm[k:]), perm[:k]
    else:
        train, val = np.arange(n), None
    if m >= train.size:
        held = "" if val is None else f" after holding out {val.size} validation rows (validation_fraction)"
        raise ValueError(f"m = {m} must be smaller than the number of training rows, {train.size}{held}; "
                         "distillation makes a set smaller than the data: lower m"
                         + ("" if val is None else " or validation_fraction") + ".")
    const_x = const_y = np.zeros(0, bool)
    if standardize:
        arrays, const_x, const_y = Standardizer.fit_constant(X, Y, None if val is None else train)
        std = Standardizer(*arrays)
    else:
        std = Standardizer.identity(X.shape[1], Y.shape[1])
    dtype = jnp.result_type(float)
    data = TrainData(X, Y, train, val, std, dtype, Xv, Yv)
    data.constant_x, data.constant_y = np.flatnonzero(const_x), np.flatnonzero(const_y)
    data.check_validation_range()
    return data
