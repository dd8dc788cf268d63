"""Input checks and standardisation. Everything here runs before any compute, on the host."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


def as_2d_float(name: str, a, *, allow_1d: bool) -> np.ndarray:
    """Check that ``a`` is a finite real numeric array of rank 2 (or 1 if allowed) and return it 2-D.

    Raises ``ValueError`` naming the array, what is wrong and what to change.
    """
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged lists and the like
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
        arr = arr.astype(np.float32)
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise ValueError(
            f"{name} has {int(bad.sum())} non-finite values (NaN or inf) in {rows.size} rows, first at "
            f"row {int(rows[0])}; drop or impute those rows before distilling.")
    return arr


def check_xy(X, Y, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate real data (X, Y) and the distilled size m. Returns 2-D float arrays."""
    X = as_2d_float("X", X, allow_1d=False)
    Y = as_2d_float("Y", Y, allow_1d=True)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}; they must have one row per example.")
    n = X.shape[0]
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise ValueError(f"m (number of distilled points) must be an integer >= 1, got {m!r}.")
    if m >= n:
        raise ValueError(f"m = {m} must be smaller than the number of training rows n = {n}; "
                         "distillation makes a set smaller than the data.")
    return X, Y


class Standardizer(NamedTuple):
    """Per-column affine maps x ↦ (x − mean)/scale for X and Y, fitted on training data."""

    x_mean: np.ndarray
    x_scale: np.ndarray
    y_mean: np.ndarray
    y_scale: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray, Y: np.ndarray) -> Standardizer:
        def stats(a):
            mu = a.mean(axis=0)
            sd = a.std(axis=0)
            return mu, np.where(sd > 0, sd, 1.0)  # constant columns are only centred
        return cls(*stats(X), *stats(Y))

    @classmethod
    def identity(cls, d: int, d_out: int) -> Standardizer:
        return cls(np.zeros(d), np.ones(d), np.zeros(d_out), np.ones(d_out))

    def x(self, X):
        return (X - self.x_mean) / self.x_scale

    def y(self, Y):
        return (Y - self.y_mean) / self.y_scale

    def x_inverse(self, Xs):
        return Xs * self.x_scale + self.x_mean

    def y_inverse(self, Ys):
        return Ys * self.y_scale + self.y_mean

