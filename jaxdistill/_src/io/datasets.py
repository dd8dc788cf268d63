"""Data sets that ship inside packages (nothing is downloaded) and the paper's synthetic generator.

:func:`load` returns ``(X, Y)`` as float arrays; :func:`train_test_split` splits them with an
explicit JAX key. Optional packages are named in the error when missing.
"""

from __future__ import annotations

import jax
import numpy as np

from jaxdistill._src.core.keys import as_key
from jaxdistill._src.core.validate import check_int


def _need(module: str, extra: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise ImportError(f"This data set needs the optional package {module!r}: "
                          f"pip install 'jaxdistill[{extra}]'") from None


def synthetic(key: jax.Array | int = 0, n: int = 1000, d: int = 100, noise: float = 0.1):
    """The regression paper's data (A.7): X, θ ~ N(0, I_d), Y = Xθ + noise·ε, ε ~ N(0, 1)."""
    kx, kt, ke = jax.random.split(as_key(key), 3)
    X = jax.random.normal(kx, (n, d))
    theta = jax.random.normal(kt, (d, 1))
    Y = X @ theta + noise * jax.random.normal(ke, (n, 1))
    return np.asarray(X, np.float64), np.asarray(Y, np.float64)


def ar_windows(series, lags: int):
    """Autoregressive windows of a 1-D series: X[t] = (y_{t−lags}, …, y_{t−1}), Y[t] = y_t."""
    y = np.asarray(series, np.float64).ravel()
    if lags < 1 or y.size <= lags + 1:
        raise ValueError(f"lags must be in [1, {y.size - 2}] for a series of length {y.size}, got {lags}.")
    X = np.lib.stride_tricks.sliding_window_view(y[:-1], lags)
    return np.ascontiguousarray(X), y[lags:, None]


def _statsmodels(name):
    sm = _need("statsmodels.api", "data")
    return getattr(sm.datasets, name).load_pandas()


def load(name: str, **kwargs):
    """Load a named data set as ``(X, Y)``; see :data:`NAMES`.

    * ``diabetes`` — 442 × 10, disease progression (scikit-learn);
    * ``digits`` — 1797 × 64 images, one-hot targets of the 10 classes (scikit-learn);
    * ``synthetic`` — the regression paper's generator (kwargs ``n``, ``d``, ``noise``, ``key``);
    * ``randhie`` — 20190 × 9, RAND health insurance: doctor visits ``mdvis`` (statsmodels);
    * ``fair`` — 6366 × 8, Fair's affairs data: ``affairs`` (statsmodels);
    * ``co2`` — Mauna Loa weekly CO₂ (2284 weeks, 59 gaps filled by linear interpolation) as
      autoregressive windows: predict the next week from the previous ``lags`` (default 52);
    * ``sunspots`` — yearly sunspot activity 1700–2008 as autoregressive windows (``lags`` default 12).

    Time series keep their order; split them with ``train_test_split(..., shuffle=False)``.
    An option a data set does not have is an error (a typo such as ``lag=8`` is never ignored).
    """
    if name not in NAMES:
        raise ValueError(f"Unknown data set {name!r}; available: {', '.join(NAMES)}.")
    allowed = _OPTIONS.get(name, ())
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"Data set {name!r} has no option(s) {unknown}; "
                         + (f"its options are {list(allowed)}." if allowed else "it takes no options."))
    if "lags" in kwargs:
        kwargs["lags"] = check_int(f"{name} lags", kwargs["lags"], 1)
    if name == "diabetes":
        X, y = _need("sklearn.datasets", "data").load_diabetes(return_X_y=True)
        return X.astype(np.float64), y.astype(np.float64)[:, None]
    if name == "digits":
        X, y = _need("sklearn.datasets", "data").load_digits(return_X_y=True)
        return X.astype(np.float64), np.eye(10)[y]
    if name == "synthetic":
        return synthetic(**kwargs)
    if name in ("randhie", "fair"):
        ds = _statsmodels(name)
        return ds.exog.to_numpy(np.float64), ds.endog.to_numpy(np.float64).reshape(-1, 1)
    if name == "co2":
        series = _statsmodels("co2").data["co2"].interpolate(limit_direction="both").to_numpy()
        return ar_windows(series, kwargs.get("lags", 52))
    if name == "sunspots":
        series = _statsmodels("sunspots").data["SUNACTIVITY"].to_numpy()
        return ar_windows(series, kwargs.get("lags", 12))
    raise ValueError(f"Unknown data set {name!r}; available: {', '.join(NAMES)}.")


NAMES = ("diabetes", "digits", "synthetic", "randhie", "fair", "co2", "sunspots")
_OPTIONS = {"synthetic": ("key", "n", "d", "noise"), "co2": ("lags",), "sunspots": ("lags",)}
TIME_SERIES = ("co2", "sunspots")


def train_test_split(X, Y, test_fraction: float = 0.2, key: jax.Array | int = 0, shuffle: bool = True):
    """Split into (X_train, Y_train, X_test, Y_test) with ``round(test_fraction · n)`` test rows.

    ``shuffle=False`` keeps the order and takes the *last* rows as the test set (time series: no
    future values leak into training).
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}.")
    n = X.shape[0]
    k = int(round(test_fraction * n))
    if not shuffle:
        return X[: n - k], Y[: n - k], X[n - k:], Y[n - k:]
    perm = np.asarray(jax.random.permutation(as_key(key), n))
    te, tr = perm[:k], perm[k:]
    return X[tr], Y[tr], X[te], Y[te]


def load_csv(path: str, target: str | int = -1, delimiter: str = ","):
    """Load a numeric CSV with a header row; ``target`` (name or column index) is Y, the rest X."""
    import csv
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter=delimiter))
    if len(rows) < 3:
        raise ValueError(f"{path!r} has {len(rows)} lines; need a header and at least two data rows.")
    header, body = rows[0], rows[1:]
    j = header.index(target) if isinstance(target, str) else (target % len(header))
    try:
        data = np.array([[float(v) for v in r] for r in body], np.float64)
    except ValueError as exc:
        raise ValueError(f"{path!r} has a non-numeric value ({exc}); encode it numerically first.") from None
    return np.delete(data, j, axis=1), data[:, j:j + 1]
