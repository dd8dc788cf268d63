"""Data sets that ship inside packages (nothing is downloaded) and the paper's synthetic generator.

:func:`load` returns ``(X, Y)`` as float arrays; :func:`train_test_split` splits them with an
explicit JAX key. Optional packages are named in the error when missing.
"""

from __future__ import annotations

import jax
import numpy as np


def _need(module: str, extra: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise ImportError(f"This data set needs the optional package {module!r}: "
                          f"pip install 'jaxdistill[{extra}]'") from None


def synthetic(key: jax.Array | int = 0, n: int = 1000, d: int = 100, noise: float = 0.1):
    """The regression paper's data (A.7): X, θ ~ N(0, I_d), Y = Xθ + noise·ε, ε ~ N(0, 1)."""
    key = jax.random.PRNGKey(key) if isinstance(key, (int, np.integer)) else key
    kx, kt, ke = jax.random.split(key, 3)
    X = jax.random.normal(kx, (n, d))
    theta = jax.random.normal(kt, (d, 1))
    Y = X @ theta + noise * jax.random.normal(ke, (n, 1))
    return np.asarray(X, np.float64), np.asarray(Y, np.float64)


def load(name: str, **kwargs):
    """Load a named data set as ``(X, Y)``.

    Names: ``diabetes`` (442 × 10, scikit-learn), ``digits`` (1797 × 64, one-hot targets of the 10
    classes, scikit-learn), ``synthetic`` (the regression paper's generator; kwargs n, d, noise, key).
    """
    if name == "diabetes":
        X, y = _need("sklearn.datasets", "data").load_diabetes(return_X_y=True)
        return X.astype(np.float64), y.astype(np.float64)[:, None]
    if name == "digits":
        X, y = _need("sklearn.datasets", "data").load_digits(return_X_y=True)
        return X.astype(np.float64), np.eye(10)[y]
    if name == "synthetic":
        return synthetic(**kwargs)
    raise ValueError(f"Unknown data set {name!r}; available: {', '.join(NAMES)}.")


NAMES = ("diabetes", "digits", "synthetic")


def train_test_split(X, Y, test_fraction: float = 0.2, key: jax.Array | int = 0):
    """Random split into (X_train, Y_train, X_test, Y_test) with ``round(test_fraction · n)`` test rows."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}.")
    key = jax.random.PRNGKey(key) if isinstance(key, (int, np.integer)) else key
    n = X.shape[0]
    perm = np.asarray(jax.random.permutation(key, n))
    k = int(round(test_fraction * n))
    te, tr = perm[:k], perm[k:]
    return X[tr], Y[tr], X[te], Y[te]
