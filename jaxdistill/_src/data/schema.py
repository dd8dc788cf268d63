"""The boundary with the caller's data: what a fit saw (`InputSchema`) and how later inputs are matched
to it.

At fit time the schema records the number of features, their names (pandas and polars DataFrames, Arrow tables,
structured arrays),
the target's names and rank (1-D y gives 1-D predictions), and which feature columns were constant. Later
inputs (``predict``, ``evaluate``) are matched to it: a DataFrame **by column name** (reordered columns give
identical predictions; missing or unexpected names are an error listing them), an array by width. pandas,
polars and Arrow objects are read without importing their libraries here (they stay optional extras); a
missing value (pandas' ``pd.NA``, a polars or Arrow null) is read as NaN, which the finiteness check refuses by
row, and a column that is not integers or floats (strings, categories, booleans, dates) is refused by name.
Predictions come back in the kind of the input: a pandas Series/DataFrame with the input's index, a polars
Series/DataFrame, an Arrow array/table.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


def _library(a) -> str:
    """The top-level package an input's type comes from (``"pandas"``, ``"polars"``, ``"numpy"``, …)."""
    return type(a).__module__.split(".")[0]


def _is_frame(a) -> bool:
    return _library(a) == "pandas" and hasattr(a, "columns")


def _is_series(a) -> bool:
    return _library(a) == "pandas" and hasattr(a, "name") and not hasattr(a, "columns")


#: where predictions of a polars or Arrow input go back to that kind (in place of a pandas index)
POLARS, ARROW = "polars", "pyarrow"


def _shape(a) -> tuple:
    try:
        return tuple(np.shape(a))
    except ValueError:         # ragged nested lists: refused with a clear message when the arrays are checked
        return ()


def refuse_masked(name: str, a) -> None:
    """A masked array's hidden entries are data (often sentinels like −999): refuse it rather than read them."""
    if isinstance(a, np.ma.MaskedArray):
        n = int(np.ma.count_masked(a))
        if n:
            raise ValueError(f"{name} is a masked array with {n} masked entries; jaxdistill does not read masks "
                             "(the hidden values would be used as data). Drop or impute those rows, e.g. "
                             f"{name}[~{name}.mask.any(axis=1)] or np.ma.filled({name}, value); pass a plain array.")
        return


def unpack(name: str, a) -> tuple[Any, tuple[str, ...] | None, Any]:
    """(values, column names or None, pandas index or None) of an input: pandas objects give their names and
    index; structured numpy arrays their field names; masked arrays are refused when anything is masked."""
    refuse_masked(name, a)
    if isinstance(a, np.ma.MaskedArray):
        a = np.ma.getdata(a)
    if _library(a) == "dask":                 # np.asarray would pull every partition into this process
        raise ValueError(f"{name} is a Dask {type(a).__name__}: wrap it as jaxdistill.DaskSource(frame, "
                         "target='y') (or DaskSource(X_array, Y_array)) and pass that with Y=None; its statistics "
                         "pass then runs on the cluster.")
    if _is_frame(a):
        names = tuple(str(c) for c in a.columns)
        if len(set(names)) != len(names):
            dup = sorted({c for c in names if names.count(c) > 1})
            raise ValueError(f"{name} has duplicated column names {dup}; give every column its own name.")
        return _pandas_values(name, a, names), names, a.index
    if _is_series(a):
        names = None if a.name is None else (str(a.name),)
        return _pandas_values(name, a, names), names, a.index
    if _library(a) == POLARS and (hasattr(a, "schema") or hasattr(a, "dtype")):
        return _polars_values(name, a)
    if _library(a) == ARROW and (hasattr(a, "column_names") or hasattr(a, "type")):
        return _arrow_values(name, a)
    if isinstance(a, np.ndarray) and a.dtype.names:
        names = tuple(a.dtype.names)
        return np.stack([np.asarray(a[f], np.float64) for f in names], axis=-1), names, None
    return a, None, None


def _pandas_values(name: str, a, names) -> np.ndarray:
    """The numbers of a DataFrame or Series. Columns of numpy's integer and float dtypes and of pandas' nullable
    ones (``Int64``, ``Float64``, as ``convert_dtypes()`` and ``read_csv(dtype_backend=...)`` give) are read, a
    missing value (``pd.NA``) as NaN — which the finiteness check then refuses, naming its row. A column of
    anything else (strings, categories, booleans, dates) is refused by name: ``to_numpy()`` would have made
    the whole frame ``object``."""
    dtypes = list(a.dtypes) if _is_frame(a) else [a.dtype]
    _refuse_non_numbers(name, names or ("(unnamed)",),
                        [None if getattr(dt, "kind", "O") in "iuf" else str(dt) for dt in dtypes],
                        "pandas.get_dummies for categories, .astype(float) for booleans")
    if all(isinstance(dt, np.dtype) for dt in dtypes):
        return a.to_numpy()                    # numpy dtypes: their common dtype (float32 stays float32)
    return a.to_numpy(dtype=np.float64, na_value=np.nan)


def _refuse_non_numbers(name: str, cols, kinds, how: str = "to_dummies / one-hot for categories, a cast to float "
                        "for booleans") -> None:
    """Refuse, by name, the columns whose ``kinds`` entry is not None (their type's name): `to_numpy` would make
    them, and with them the whole table, ``object``. ``how``: the library's own ways to encode them."""
    bad = [f"{c!r} ({k})" for c, k in zip(cols, kinds, strict=True) if k is not None]
    if bad:
        listed = ", ".join(bad[:10]) + (f", … ({len(bad)} in all)" if len(bad) > 10 else "")
        raise ValueError(f"{name} has columns that are not numbers: {listed}. Encode them as numbers first (e.g. "
                         f"{how}) or drop them.")


def _polars_values(name: str, a):
    """(values, names, POLARS) of a polars DataFrame or Series: integer and float columns only (refused by name
    otherwise); nulls become NaN (refused by row later); float32 stays float32 when every column is float32."""
    import polars as pl
    frame = isinstance(a, pl.DataFrame)
    cols = [str(c) for c in a.columns] if frame else [a.name or "(unnamed)"]
    dtypes = list(a.schema.values()) if frame else [a.dtype]
    _refuse_non_numbers(name, cols, [None if (dt.is_integer() or dt.is_float()) else str(dt) for dt in dtypes])
    target = pl.Float32 if all(dt == pl.Float32 for dt in dtypes) else pl.Float64
    a = a.cast({c: target for c in a.columns} if frame else target).fill_nan(None).fill_null(float("nan"))
    values = a.to_numpy()
    names = tuple(cols) if frame else ((a.name,) if a.name else None)
    return values, names, POLARS


def _arrow_values(name: str, a):
    """(values, names, ARROW) of an Arrow Table, RecordBatch, Array or ChunkedArray (as `_polars_values`)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    frame = hasattr(a, "column_names")
    cols = [str(c) for c in a.column_names] if frame else ["(unnamed)"]
    arrays = [a.column(i) for i in range(a.num_columns)] if frame else [a]
    kinds = [None if (pa.types.is_integer(c.type) or pa.types.is_floating(c.type)) else str(c.type) for c in arrays]
    _refuse_non_numbers(name, cols, kinds)
    if frame and len(set(cols)) != len(cols):
        raise ValueError(f"{name} has duplicated column names; give every column its own name.")
    dt = np.float32 if all(pa.types.is_float32(c.type) for c in arrays) else np.float64
    out = np.empty((len(arrays[0]) if arrays else 0, len(arrays)), dt)
    for j, c in enumerate(arrays):
        c = c.cast(pa.float32() if dt == np.float32 else pa.float64())
        if c.null_count:
            c = pc.fill_null(c, float("nan"))
        out[:, j] = c.to_numpy(zero_copy_only=False) if not isinstance(c, pa.ChunkedArray) else \
            np.concatenate([ch.to_numpy(zero_copy_only=False) for ch in c.chunks]) if c.num_chunks else []
    return (out if frame else out[:, 0]), (tuple(cols) if frame else None), ARROW


def check_aligned(x_index, y_index, what: str = "X and y") -> None:
    """Two pandas objects are paired row by row only when their indices are equal (scikit-learn pairs by
    position and says nothing; a shuffled DataFrame then trains on mismatched rows)."""
    if not hasattr(x_index, "equals") or not hasattr(y_index, "equals"):   # not both pandas: rows pair by order
        return
    if len(x_index) == len(y_index) and x_index.equals(y_index):
        return
    raise ValueError(f"{what} are pandas objects with different indices, so their rows would be paired by position, "
                     "not by label. Align them first (e.g. y = y.loc[X.index]) or pass plain arrays in the same "
                     "row order.")


def read_pair(X, Y) -> tuple[Any, Any, InputSchema]:
    """(X values, Y values, their `InputSchema`) of a fit's inputs: pandas objects give names and must have
    equal indices; masked arrays with masked entries are refused. The values are checked later, by the caller."""
    Xv, x_names, x_index = unpack("X", X)
    Yv, y_names, y_index = unpack("Y", Y)
    check_aligned(x_index, y_index)
    return Xv, Yv, InputSchema.of(Xv, x_names, Yv, y_names)


@dataclasses.dataclass(frozen=True)
class InputSchema:
    """What a fit saw of its inputs.

    Attributes:
      n_features: d, the number of input columns.
      feature_names: the columns' names (DataFrame or structured input), else None.
      target_names: the targets' names (DataFrame columns or a Series name), else None.
      target_ndim: 1 when y was 1-D (predictions are then 1-D), 2 otherwise.
      constant: indices of input columns that were constant over the training rows (they contribute nothing).
      dtype: the input's dtype as given (e.g. ``float32``).
    """

    n_features: int
    feature_names: tuple[str, ...] | None = None
    target_names: tuple[str, ...] | None = None
    target_ndim: int = 2
    constant: tuple[int, ...] = ()
    dtype: str | None = None

    @classmethod
    def of(cls, X_values, x_names, Y_values, y_names) -> InputSchema:
        # the width is checked (with the clear messages) when the arrays are prepared; 0 until then
        shape_x, shape_y = _shape(X_values), _shape(Y_values)
        return cls(n_features=shape_x[1] if len(shape_x) == 2 else 0, feature_names=x_names, target_names=y_names,
                   target_ndim=1 if len(shape_y) == 1 else 2, dtype=str(getattr(X_values, "dtype", "")) or None)

    def replace(self, **changes) -> InputSchema:
        return dataclasses.replace(self, **changes)

    def constant_names(self) -> list[str]:
        if self.feature_names is not None:
            return [self.feature_names[j] for j in self.constant]
        return [f"column {j}" for j in self.constant]

    def to_dict(self) -> dict:
        return {"n_features": self.n_features, "feature_names": None if self.feature_names is None else
                list(self.feature_names), "target_names": None if self.target_names is None else
                list(self.target_names), "target_ndim": self.target_ndim, "constant": list(self.constant),
                "dtype": self.dtype}

    @classmethod
    def from_dict(cls, d: dict) -> InputSchema:
        """From a saved file's entry; every value is checked (a hand-edited schema is refused, naming the field)."""
        if not isinstance(d, dict):
            raise ValueError(f"schema must be a mapping, got {type(d).__name__}")
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"schema has unknown entries {sorted(unknown)}")
        n = d.get("n_features")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"schema.n_features {n!r}")

        def names(key, length=None):
            v = d.get(key)
            if v is None:
                return None
            if not isinstance(v, list) or not all(isinstance(s, str) for s in v) or len(set(v)) != len(v) or \
                    (length is not None and len(v) != length):
                raise ValueError(f"schema.{key} {v!r}")
            return tuple(v)
        nd = d.get("target_ndim", 2)
        if nd not in (1, 2):
            raise ValueError(f"schema.target_ndim {nd!r}")
        const = d.get("constant", [])
        if not isinstance(const, list) or not all(isinstance(j, int) and 0 <= j < n for j in const):
            raise ValueError(f"schema.constant {const!r}")
        dtype = d.get("dtype")
        if dtype is not None and not isinstance(dtype, str):
            raise ValueError(f"schema.dtype {dtype!r}")
        return cls(n, names("feature_names", n), names("target_names"), nd, tuple(const), dtype)

    # ------------------------------------------------------------------ matching later inputs
    def match_pair(self, X, Y, names: tuple[str, str] = ("X", "Y")):
        """(X in the fitted column order, Y's values) of a later input pair; pandas indices must agree."""
        X, x_index = self.match_features(names[0], X)
        Y, _, y_index = unpack(names[1], Y)
        check_aligned(x_index, y_index, f"{names[0]} and {names[1]}")
        return X, Y

    def match_features(self, name: str, a):
        """(2-D values in the fitted column order, pandas index or None) of a later input ``a``."""
        values, names, index = unpack(name, a)
        if names is not None and self.feature_names is not None:
            values = np.asarray(values)[:, self.column_order(name, names)]
        values = np.asarray(values) if not isinstance(values, np.ndarray) else values
        if values.ndim == 2 and values.shape[1] != self.n_features:
            raise ValueError(f"{name} has {values.shape[1]} columns; the distilled set was made from "
                             f"{self.n_features}" + (f" ({list(self.feature_names)})" if self.feature_names else "")
                             + ". Pass inputs with the same columns.")
        return values, index

    def column_order(self, name: str, names) -> list[int]:
        """Where each fitted feature is among ``names`` (the columns of a later input called ``name``); an error
        listing the missing and unexpected names when they are not the fitted ones."""
        names = list(names)
        missing = [c for c in self.feature_names if c not in names]
        extra = [c for c in names if c not in self.feature_names]
        if missing or extra:
            parts = ([f"missing {missing}"] if missing else []) + ([f"unexpected {extra}"] if extra else [])
            raise ValueError(f"{name}'s columns do not match the ones distilled from: {'; '.join(parts)}. "
                             f"Pass a DataFrame with the columns {list(self.feature_names)}.")
        return [names.index(c) for c in self.feature_names]

    def shape_predictions(self, pred: np.ndarray, index=None):
        """Predictions (n, d_out) in the training targets' shape: 1-D when y was 1-D; a pandas Series / DataFrame
        with ``index`` when the input was a pandas object, a polars or Arrow one when it was (``index`` is then
        `POLARS` / `ARROW`)."""
        if self.target_ndim == 1 and pred.shape[1] == 1:
            pred = pred[:, 0]
        if index is None:
            return pred
        names = [f"y{j}" for j in range(pred.shape[1])] if pred.ndim == 2 else None
        if pred.ndim == 2 and self.target_names is not None and len(self.target_names) == pred.shape[1]:
            names = list(self.target_names)
        one = None if self.target_names is None else self.target_names[0]
        if isinstance(index, str) and index == POLARS:
            import polars as pl
            if pred.ndim == 1:
                return pl.Series(one or "prediction", pred)
            return pl.DataFrame({c: pred[:, j] for j, c in enumerate(names)})
        if isinstance(index, str) and index == ARROW:
            import pyarrow as pa
            return pa.array(pred) if pred.ndim == 1 else pa.table({c: pred[:, j] for j, c in enumerate(names)})
        import pandas as pd
        if pred.ndim == 1:
            return pd.Series(pred, index=index, name=None if self.target_names is None else self.target_names[0])
        return pd.DataFrame(pred, index=index, columns=None if self.target_names is None or
                            len(self.target_names) != pred.shape[1] else list(self.target_names))
