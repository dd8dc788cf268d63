"""Rows on a Dask cluster: the statistics pass runs on the workers, only p × p statistics travel.

[`DaskSource`][jaxdistill.DaskSource] wraps a Dask DataFrame (feature and target columns by name) or a pair of
Dask arrays. Its passes are Dask task graphs: each partition's rows are reduced *on the worker that holds them*
to their `Moments` — count, a shift (the partition's first rows' mean), the exact offset of the mean from it, the
centred cross-product M and the column ranges, (q + 1)² numbers for q = d + k columns — and the partitions' moments
are merged pairwise in a balanced tree of tasks by Chan, Golub & LeVeque's update (`Moments.merge`), which is exact:

    M = M_a + M_b + δδᵀ n_a n_b / n,    δ = (s_b − s_a) + (o_b − o_a),

with the shift/offset pair keeping the means' low digits (a column at 10⁸ + N(0, 1) loses none). A feature map
runs on the workers too (the second pass: each partition standardised with the first pass's standardiser,
featurised by JAX there, ΦᵀΦ and ΦᵀY summed in float64), so only p × p matrices leave a worker. Empty and
one-row partitions are fine; uneven ones too. The graph runs on whatever scheduler is active: a
``dask.distributed.Client``'s cluster when one exists, else Dask's local threads.

Dask is an optional extra (``pip install "jaxdistill[dask]"``). Why Dask first, rather than Spark or Ray Data: it
is a Python library users install with pip, it runs the same code on a laptop (threads), a ``LocalCluster`` and a
cluster (Kubernetes, SLURM via dask-jobqueue, cloud), it reads partitioned Parquet where it lies
(``dask.dataframe.read_parquet``), and its task graphs express the tree merge directly; Spark needs a JVM and
moves Python rows through Arrow UDFs, Ray Data needs a Ray cluster for the same pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np

from jaxdistill._src.data.sources import BLOCK_ROWS, ArraySource, Moments, RowSource, _feature_sums, _moments


def import_dask():
    try:
        import dask
    except ImportError:
        raise ImportError('Dask sources need dask: pip install "jaxdistill[dask]" (or pip install '
                          '"dask[distributed,dataframe]").') from None
    return dask


def _is_dask_frame(a) -> bool:
    return type(a).__module__.split(".")[0] == "dask" and hasattr(a, "columns") and hasattr(a, "npartitions")


def _is_dask_array(a) -> bool:
    return type(a).__module__.split(".")[0] == "dask" and hasattr(a, "chunks") and hasattr(a, "to_delayed")


class DaskSource(RowSource):
    """Rows held by Dask: a DataFrame with the feature and target columns named, or arrays X (n, d) and Y.

    Passes over it run on the Dask workers (module docs); ``blocks`` and ``take`` bring rows to this process
    (``take`` only the partitions that hold the rows asked for).

    Args:
      X: a ``dask.dataframe.DataFrame`` (then ``target`` names the target column(s) and ``features`` the inputs:
        default every other column), or a 2-D ``dask.array.Array``.
      Y: with a Dask array X, the targets as a Dask array (n,) or (n, k); re-chunked to X's row chunks.
      features: the input columns of a DataFrame, in this order.
      target: the target column(s) of a DataFrame.

    Raises:
      ValueError: a missing or non-numeric column (by name), mismatched shapes, or X of another kind.
      ImportError: without dask (the message says how to install it).

    Examples:
      >>> import numpy as np, pandas as pd, dask.dataframe as dd, jaxdistill as jd
      >>> rng = np.random.default_rng(0)
      >>> frame = pd.DataFrame({"a": rng.normal(size=100), "b": rng.normal(size=100), "y": rng.normal(size=100)})
      >>> src = jd.DaskSource(dd.from_pandas(frame, npartitions=3), target="y")
      >>> jd.sufficient_statistics(src).n
      100
    """

    distributed = True

    def __init__(self, X, Y=None, *, features: Sequence[str] | None = None, target: str | Sequence[str] | None = None):
        dask = import_dask()
        self._delayed = dask.delayed
        if _is_dask_frame(X):
            if Y is not None:
                raise ValueError("With a Dask DataFrame the targets are its columns: pass target='name', not Y.")
            if target is None:
                raise ValueError("Name the target column(s): DaskSource(frame, target='y').")
            self.target_names = (target,) if isinstance(target, str) else tuple(target)
            cols = [str(c) for c in X.columns]
            feats = [c for c in cols if c not in self.target_names] if features is None else list(features)
            self.feature_names = tuple(feats)
            wanted = feats + list(self.target_names)
            missing = [c for c in wanted if c not in cols]
            if missing:
                raise ValueError(f"The Dask DataFrame has no column(s) {missing}; its columns are {cols}.")
            bad = [f"{c!r} ({X.dtypes[c]})" for c in wanted if getattr(X.dtypes[c], "kind", "O") not in "iuf"]
            if bad:
                raise ValueError(f"Columns that are not numbers: {', '.join(bad)}. Encode them as numbers first (or "
                                 "leave them out of features).")
            self.d, self.d_out = len(feats), len(self.target_names)
            self._parts = [(p, None) for p in X[wanted].to_delayed()]
            self._columns = (len(feats), wanted)
            self.n_rows = None
        elif _is_dask_array(X):
            if Y is None or not _is_dask_array(Y):
                raise ValueError("With a Dask array X, pass the targets as a Dask array Y (n,) or (n, k).")
            if X.ndim != 2 or Y.ndim not in (1, 2) or X.shape[0] != Y.shape[0] and not np.isnan(X.shape[0]):
                raise ValueError(f"DaskSource needs X (n, d) and Y (n,) or (n, k) with equal n; got {X.shape}, "
                                 f"{Y.shape}.")
            X = X.rechunk({1: -1})
            Y = (Y[:, None] if Y.ndim == 1 else Y).rechunk({0: X.chunks[0], 1: -1})
            self.d, self.d_out = int(X.shape[1]), int(Y.shape[1])
            self._parts = list(zip(X.to_delayed().ravel(), Y.to_delayed().ravel(), strict=True))
            self._columns = None
            self.n_rows = None if np.isnan(X.shape[0]) else int(X.shape[0])
        else:
            raise ValueError(f"DaskSource takes a dask DataFrame or a dask Array, got {type(X).__name__}.")
        self._lengths: list[int] | None = None

    def __repr__(self) -> str:
        return f"DaskSource({len(self._parts)} partitions, d={self.d}, d_out={self.d_out})"

    def _part(self, i: int):
        """The delayed (X, Y) arrays of partition i (float, C order), converted on the worker."""
        a, b = self._parts[i]
        return self._delayed(_arrays, pure=True)(a, b, self._columns)

    def moments(self, block_rows: int = BLOCK_ROWS) -> Moments:
        """The rows' `Moments`: per partition on the workers, merged in a tree of tasks (module docs)."""
        import dask
        parts = [self._delayed(_partition_moments, pure=True)(self._part(i), i, self.d + self.d_out)
                 for i in range(len(self._parts))]
        mom, lengths = dask.compute(_tree(self._delayed(_merge_moments, pure=True), parts),
                                    [self._delayed(_count, pure=True)(p) for p in parts])
        self._lengths = [int(n) for n in lengths]
        self.n_rows = int(mom.n)
        return mom

    def feature_sums(self, model, std, block_rows: int, dtype):
        """(ΦᵀΦ, ΦᵀY): each partition featurised and summed on its worker, the sums added in a tree of tasks."""
        import cloudpickle  # a dependency of dask
        import dask
        dt = np.dtype(dtype).name
        # the model travels as bytes, unpickled inside the worker's float64 context: its arrays unpickled outside it
        # would come back as float32 (JAX's default there)
        blob = cloudpickle.dumps(model)
        parts = [self._delayed(_partition_features, pure=True)(self._part(i), blob, std, int(block_rows), dt)
                 for i in range(len(self._parts))]
        return dask.compute(_tree(self._delayed(_add_pairs, pure=True), parts))[0]

    def blocks(self, block_rows: int = BLOCK_ROWS):
        for i in range(len(self._parts)):
            X, Y = self._part(i).compute()
            for j in range(0, X.shape[0], block_rows):
                yield X[j:j + block_rows], Y[j:j + block_rows]

    def take(self, rows):
        """Rows ``rows`` (global numbers in partition order): only the partitions holding them are read, and only
        those rows come back."""
        import dask
        rows = np.asarray(rows, np.int64)
        if self._lengths is None:
            self._lengths = [int(n) for n in dask.compute(*[self._delayed(_count_rows)(self._part(i))
                                                             for i in range(len(self._parts))])]
        edges = np.concatenate([[0], np.cumsum(self._lengths)])
        if rows.size and (rows.min() < 0 or rows.max() >= edges[-1]):
            raise ValueError(f"rows up to {int(rows.max())} requested, but the source has {int(edges[-1])} rows.")
        part = np.searchsorted(edges, rows, side="right") - 1
        tasks = {int(p): self._delayed(_select)(self._part(int(p)), rows[part == p] - edges[p])
                 for p in np.unique(part)}
        got = dict(zip(tasks, dask.compute(*tasks.values()), strict=True))
        X, Y = np.empty((rows.size, self.d)), np.empty((rows.size, self.d_out))
        for p, (xp, yp) in got.items():
            X[part == p], Y[part == p] = xp, yp
        return X, Y


# ---------------------------------------------------------------------------------------- tasks (on the workers)
def _tree(combine, parts):
    """``parts`` combined pairwise in a balanced tree of delayed ``combine`` calls."""
    parts = list(parts)
    while len(parts) > 1:
        parts = [combine(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i] for i in range(0, len(parts), 2)]
    return parts[0]


def _arrays(a, b, columns):
    """(X, Y) arrays of a partition: a pandas frame's columns (``columns`` = (d, names)) or two blocks. Columns of
    one numpy dtype come out without a copy (pandas keeps them as one column-ordered block: its transpose); others
    (nullable dtypes: ``pd.NA`` as NaN, refused by row later) as float64."""
    if columns is not None:
        d, names = columns
        frame = a[names]
        plain = all(isinstance(t, np.dtype) for t in frame.dtypes)
        values = frame.to_numpy() if plain else frame.to_numpy(dtype=np.float64, na_value=np.nan)
        if values.shape[0] == 0:
            values = np.empty((0, len(names)))
        return values[:, :d], values[:, d:]
    return np.asarray(a), np.asarray(b)


def _partition_moments(XY, index: int, q: int) -> Moments:
    """The partition's `Moments` by the in-process pass (`sources._moments`: its checks, one shift), on the worker."""
    X, Y = XY
    if X.shape[0] == 0:
        return Moments.empty(q)
    try:
        return _moments(ArraySource(X, Y), BLOCK_ROWS)
    except ValueError as exc:
        raise ValueError(f"Partition {index} (counting from 0): {exc}") from None


def _count(mom: Moments) -> int:
    return mom.n


def _count_rows(XY) -> int:
    return int(XY[0].shape[0])


def _merge_moments(a: Moments, b: Moments) -> Moments:
    return a.merge(b)


def _select(XY, idx):
    return XY[0][idx], XY[1][idx]


def _x64(dtype: str):
    """A context computing in float64 on this worker when ``dtype`` asks for it (JAX's default there is float32)."""
    import jax
    if dtype != "float64":
        return contextlib.nullcontext()
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # JAX before 0.6
    return enable_x64(True)


def _partition_features(XY, blob: bytes, std, block_rows: int, dtype: str):
    import pickle
    X, Y = XY
    with _x64(dtype):
        model = pickle.loads(blob)
        blocks = ((X[i:i + block_rows], Y[i:i + block_rows]) for i in range(0, X.shape[0], block_rows))
        return _feature_sums(blocks, model, std, block_rows, np.dtype(dtype))


def _add_pairs(a, b):
    return a[0] + b[0], a[1] + b[1]
