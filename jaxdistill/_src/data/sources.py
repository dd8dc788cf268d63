"""Data larger than memory: row sources and one-pass sufficient statistics.

A [`RowSource`][jaxdistill.RowSource] yields (X, Y) row blocks in order (``blocks``) and, where it can, reads chosen
rows (``take``). Shipped: [`ArraySource`][jaxdistill.ArraySource] (arrays or memory maps already open),
[`NpySource`][jaxdistill.NpySource] (two ``.npy`` files, read block by block with plain file reads into one reused
buffer, so memory stays at one block whatever n is; ``take`` uses a memory map) and
[`BlockSource`][jaxdistill.BlockSource] (any re-iterable of blocks: a database cursor, a generator over shards).
``source.shard(i, k)`` is the i-th of k contiguous row ranges, what process i of k reads.

[`sufficient_statistics`][jaxdistill.sufficient_statistics] makes one pass (two for a feature map other than the
identity: the first fits the standardisation) and returns, in float64, n, the standardiser and

    ΦᵀΦ, ΦᵀY, YᵀY     over Φ = Φ((X − μ_x)/s_x), Y ← (Y − μ_y)/s_y,

everything the analytic distilled sets of the KRR paper and the full-data objective of a model linear in θ
need. The rows are summed around one shift (the mean of the first rows) and then re-centred (`ShiftedSums`),
so there is no cancellation between Σxxᵀ and nμμᵀ; with several processes each reads its shard and the
per-process centred moments are merged exactly (Chan, Golub & LeVeque 1979: M = M_a + M_b + δδᵀ n_a n_b / n).
"""

from __future__ import annotations

import os
import queue
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxdistill._src.components.features import FeatureMap, Identity
from jaxdistill._src.components.models import LinearModel
from jaxdistill._src.core import sharding
from jaxdistill._src.core.jit import jit
from jaxdistill._src.data.arrays import (
    Standardizer,
    as_2d_float,
    centre_and_scale,
    check_mapped,
    column_reduce,
    on_device,
    warn_constant,
)

#: rows per block of a statistics pass (float32 d = 64: 17 MiB; float64 temporaries about 3× that)
BLOCK_ROWS = 65536


@jit
def chunk_stats(model, X, Y, w):
    """(ΦᵀWΦ, ΦᵀWY, Σ w‖y‖²) of one chunk; w masks padding rows (one compilation for every chunk)."""
    F = model.featurize(X) * w[:, None]
    Yw = Y * w[:, None]
    return F.T @ F, F.T @ Yw, jnp.sum(Yw * Y)


class RowSource:
    """Rows (X, Y) read in blocks. Subclasses implement ``blocks`` and, if they can, ``take``."""

    n_rows: int | None = None
    d: int
    d_out: int
    #: the input and target columns' names, where the source knows them (a Parquet data set does)
    feature_names: tuple[str, ...] | None = None
    target_names: tuple[str, ...] | None = None
    #: 1 when the targets were given 1-D (predictions are then 1-D), 2 when 2-D, None: from the targets' names
    target_ndim: int | None = None

    #: True for a source whose passes run elsewhere (a Dask cluster) and already cover every row: it is neither
    #: sharded over nor summed across ``jax.distributed`` processes
    distributed: bool = False

    def moments(self, block_rows: int = BLOCK_ROWS) -> Moments:
        """The `Moments` of this source's rows: one pass here (a source on a cluster runs it there)."""
        return _moments(self, block_rows)

    def feature_sums(self, model, std: Standardizer, block_rows: int, dtype) -> tuple[np.ndarray, np.ndarray]:
        """(ΦᵀΦ, ΦᵀY) in float64 of the standardised rows featurised by ``model`` (a second pass)."""
        return _feature_sums(self.blocks(block_rows), model, std, block_rows, dtype)

    def read_all(self, block_rows: int = BLOCK_ROWS) -> tuple[np.ndarray, np.ndarray]:
        """All rows in memory, (X (n, d), Y (n, d_out)): for what needs every row at once (evaluate's baselines)."""
        parts = list(self.blocks(block_rows))
        if not parts:
            raise ValueError(f"{self!r} gave no rows.")
        return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])

    def schema(self):
        """The input schema of a fit on this source (what `DistillOutput.schema` holds): width, names where known."""
        from jaxdistill._src.data.schema import InputSchema
        ndim = self.target_ndim or (1 if self.target_names is not None and len(self.target_names) == 1 else 2)
        return InputSchema(n_features=self.d, feature_names=self.feature_names, target_names=self.target_names,
                           target_ndim=ndim)

    def blocks(self, block_rows: int = BLOCK_ROWS) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        raise NotImplementedError

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``rows`` (sorted or not), by one streaming pass unless the source can seek."""
        rows = np.asarray(rows, np.int64)
        order = np.argsort(rows, kind="stable")
        want = rows[order]
        xs, ys, start = [], [], 0
        for X, Y in self.blocks():
            lo, hi = np.searchsorted(want, [start, start + X.shape[0]])
            xs.append(X[want[lo:hi] - start])
            ys.append(Y[want[lo:hi] - start])
            start += X.shape[0]
        X, Y = np.concatenate(xs), np.concatenate(ys)
        if X.shape[0] != rows.size:
            raise ValueError(f"rows up to {int(want[-1])} requested, but the source has {start} rows.")
        inv = np.empty_like(order)
        inv[order] = np.arange(order.size)
        return X[inv], Y[inv]

    def shard(self, index: int, count: int) -> RowSource:
        """The ``index``-th of ``count`` contiguous row ranges (needs ``n_rows``)."""
        if self.n_rows is None:
            raise ValueError(f"{type(self).__name__} does not know its length: shard it yourself (give each process "
                             "its own BlockSource).")
        lo, hi = (self.n_rows * index) // count, (self.n_rows * (index + 1)) // count
        return _RangeSource(self, lo, hi)

    def _range_blocks(self, lo: int, hi: int, block_rows: int):
        raise NotImplementedError(f"{type(self).__name__} cannot read a row range; give each process its own source.")


class _RangeSource(RowSource):
    def __init__(self, base: RowSource, lo: int, hi: int):
        self.base, self.lo, self.hi = base, lo, hi
        self.n_rows, self.d, self.d_out = hi - lo, base.d, base.d_out
        self.feature_names, self.target_names, self.target_ndim = base.feature_names, base.target_names, \
            base.target_ndim

    def blocks(self, block_rows: int = BLOCK_ROWS):
        return self.base._range_blocks(self.lo, self.hi, block_rows)

    def take(self, rows):
        return self.base.take(np.asarray(rows, np.int64) + self.lo)


class ArraySource(RowSource):
    """Arrays already open (NumPy arrays or ``np.load(..., mmap_mode="r")`` memory maps; not copied).

    Args:
      X: inputs, shape (n, d).
      Y: targets, shape (n,) or (n, d_out).
    """

    def __init__(self, X, Y):
        if X.ndim != 2 or Y.ndim not in (1, 2) or X.shape[0] != Y.shape[0]:
            raise ValueError(f"ArraySource needs X (n, d) and Y (n,) or (n, d_out) with equal n; got {X.shape}, "
                             f"{Y.shape}.")
        self.X, self.Y = X, Y if Y.ndim == 2 else Y.reshape(-1, 1)
        self.n_rows, self.d, self.d_out = X.shape[0], X.shape[1], self.Y.shape[1]
        self.target_ndim = Y.ndim

    def blocks(self, block_rows: int = BLOCK_ROWS):
        return self._range_blocks(0, self.n_rows, block_rows)

    def _range_blocks(self, lo, hi, block_rows):
        for i in range(lo, hi, block_rows):
            j = min(i + block_rows, hi)
            check_mapped(self.X, self.Y)            # a memory map truncated under us: an error, not SIGBUS
            yield np.asarray(self.X[i:j]), np.asarray(self.Y[i:j])

    def take(self, rows):
        rows = np.asarray(rows, np.int64)
        check_mapped(self.X, self.Y)
        return np.asarray(self.X[rows]), np.asarray(self.Y[rows])


class NpySource(RowSource):
    """Inputs and targets in two ``.npy`` files (float or integer), never loaded whole.

    A pass reads each file block by block into reused buffers (plain reads: the resident memory is one
    block, not the page cache a memory map would pin); ``take`` reads chosen rows through a memory map. A file in
    Fortran (column) order — what ``np.save(frame.to_numpy())`` writes for a DataFrame — is read through a memory
    map too, a block of rows at a time (each block gathers from every column's stretch of the file: slower than C
    order; ``np.save(path, np.ascontiguousarray(a))`` writes C order).

    Args:
      x_path: the inputs' ``.npy`` file, shape (n, d).
      y_path: the targets' ``.npy`` file, shape (n,) or (n, d_out).
    """

    def __init__(self, x_path: str | os.PathLike, y_path: str | os.PathLike):
        self.x_path, self.y_path = os.fspath(x_path), os.fspath(y_path)
        xs, xd, self._x_off, x_fortran = _npy_header(self.x_path)
        ys, yd, self._y_off, y_fortran = _npy_header(self.y_path)
        self._fortran = x_fortran or y_fortran
        if len(xs) != 2 or len(ys) not in (1, 2) or xs[0] != ys[0]:
            raise ValueError(f"{self.x_path} holds shape {xs} and {self.y_path} shape {ys}: need X (n, d) and Y (n,) "
                             "or (n, d_out) with the same n.")
        self._xdt, self._ydt = xd, yd
        self.n_rows, self.d, self.d_out = int(xs[0]), int(xs[1]), int(ys[1]) if len(ys) == 2 else 1
        self.target_ndim = len(ys)

    def blocks(self, block_rows: int = BLOCK_ROWS):
        return self._range_blocks(0, self.n_rows, block_rows)

    def _range_blocks(self, lo, hi, block_rows):
        if self._fortran:
            return self._mapped_blocks(lo, hi, block_rows)
        return self._read_blocks(lo, hi, block_rows)

    def _mapped_blocks(self, lo, hi, block_rows):
        """Blocks of rows lo..hi of a file in Fortran order, copied out of a memory map (C-ordered blocks)."""
        X = np.load(self.x_path, mmap_mode="r")
        Y = np.load(self.y_path, mmap_mode="r").reshape(self.n_rows, self.d_out)
        for i in range(lo, hi, block_rows):
            j = min(i + block_rows, hi)
            yield np.ascontiguousarray(X[i:j]), np.ascontiguousarray(Y[i:j])

    def _read_blocks(self, lo, hi, block_rows):
        """Blocks of rows lo..hi. A reader thread fills the next block while the caller works on this one
        (file reads release the GIL): a pass costs about max(I/O, compute), not their sum. Three reused
        buffers; a yielded block is valid until the next one is requested."""
        bufs = [(np.empty((block_rows, self.d), self._xdt), np.empty((block_rows, self.d_out), self._ydt))
                for _ in range(3)]
        ready: queue.Queue = queue.Queue(maxsize=1)
        stop = threading.Event()

        def offer(item) -> bool:
            """Hand ``item`` over; False when the caller has stopped listening."""
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    pass
            return False

        def reader():
            try:
                with open(self.x_path, "rb", buffering=0) as fx, open(self.y_path, "rb", buffering=0) as fy:
                    fx.seek(self._x_off + lo * bufs[0][0].itemsize * self.d)
                    fy.seek(self._y_off + lo * bufs[0][1].itemsize * self.d_out)
                    for k, i in enumerate(range(lo, hi, block_rows)):
                        r = min(block_rows, hi - i)
                        bx, by = bufs[k % 3]
                        _read_into(fx, bx[:r], self.x_path)
                        _read_into(fy, by[:r], self.y_path)
                        if not offer((bx[:r], by[:r])):
                            return
                offer(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                offer(exc)

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        try:
            while (item := ready.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join()

    def take(self, rows):
        rows = np.asarray(rows, np.int64)
        X = np.load(self.x_path, mmap_mode="r")
        Y = np.load(self.y_path, mmap_mode="r").reshape(self.n_rows, self.d_out)
        return np.array(X[rows]), np.array(Y[rows])


class BlockSource(RowSource):
    """Any re-iterable stream of (X, Y) blocks: ``make_blocks()`` must return a fresh iterator each time
    (a pass may be made twice). ``take`` streams through it.

    Args:
      make_blocks: a function of no arguments returning a fresh iterator of (X, Y) blocks, X (b, d) and Y (b,) or
        (b, d_out).
      d: the blocks' input width.
      d_out: their target width.
      n_rows: the number of rows, when known (lets several processes each read their share; None: each process
        reads its own stream).
    """

    def __init__(self, make_blocks: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]], d: int, d_out: int = 1,
                 n_rows: int | None = None):
        if not callable(make_blocks):
            raise ValueError("BlockSource needs a function returning a fresh iterator of (X, Y) blocks.")
        self.make_blocks, self.d, self.d_out, self.n_rows = make_blocks, int(d), int(d_out), n_rows

    def blocks(self, block_rows: int = BLOCK_ROWS):
        for X, Y in self.make_blocks():
            X, Y = np.asarray(X), np.asarray(Y)
            yield X, (Y.reshape(-1, 1) if Y.ndim == 1 else Y)


def _npy_header(path):
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):      # a named pipe would block the read forever
            raise ValueError(f"{path} is not a regular file (a named pipe, device or socket); give an .npy file.")
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
            offset = f.tell()
    except FileNotFoundError:
        raise ValueError(f"No such file: {path}.") from None
    except ValueError as exc:
        raise ValueError(f"{path} is not a readable .npy file ({exc}).") from None
    if dtype.hasobject or not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise ValueError(f"{path} holds {dtype}; distillation needs real numbers.")
    need = offset + int(np.prod(shape)) * dtype.itemsize
    if os.path.getsize(path) < need:
        raise ValueError(f"{path} is truncated: {os.path.getsize(path)} bytes, its header promises {need}.")
    return shape, dtype, offset, bool(fortran and len(shape) == 2 and shape[1] > 1)


def _read_into(f, buf, path):
    view = memoryview(buf.reshape(-1).view(np.uint8))
    got = 0
    while got < len(view):
        k = f.readinto(view[got:])
        if not k:
            raise ValueError(f"{path} ended early (truncated while being read?).")
        got += k


# ---------------------------------------------------------------------------------------------- statistics
class Moments(NamedTuple):
    """Count, mean, centred cross-product M = Σ (z − μ)(z − μ)ᵀ and column range of rows z = [x, y], float64.

    ``shift`` and ``offset`` (where the pass that made them kept them) give the mean unrounded as their sum
    μ = shift + offset: a column at 10⁸ + N(0, 1) has its mean rounded to 1.5e-8 in one float64, which a merge of
    two parts' means would multiply by √n; kept as the pair, the parts' means differ by (s_b − s_a) + (o_b − o_a),
    both exact to the offsets' precision."""

    n: int
    mean: np.ndarray
    M: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    shift: np.ndarray | None = None
    offset: np.ndarray | None = None

    @classmethod
    def empty(cls, k: int) -> Moments:
        return cls(0, np.zeros(k), np.zeros((k, k)), np.full(k, np.inf), np.full(k, -np.inf))

    def merge(self, other: Moments) -> Moments:
        """Chan, Golub & LeVeque's pairwise update: exact, no cancellation (with the shift/offset pair where both
        parts have it)."""
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        pairs = self.shift is not None and other.shift is not None
        delta = (other.shift - self.shift) + (other.offset - self.offset) if pairs else other.mean - self.mean
        lo, hi = np.minimum(self.lo, other.lo), np.maximum(self.hi, other.hi)
        M = self.M + other.M + np.outer(delta, delta) * (self.n * other.n / n)
        if pairs:
            offset = self.offset + delta * (other.n / n)
            return Moments(n, self.shift + offset, M, lo, hi, self.shift, offset)
        return Moments(n, self.mean + delta * (other.n / n), M, lo, hi)

    @staticmethod
    def merge_all(parts) -> Moments:
        """Every part merged, pairwise in a balanced tree (rounding grows as log of the parts, not their number)."""
        parts = [p for p in parts if p.n > 0]
        if not parts:
            raise ValueError("The source gave no rows.")
        while len(parts) > 1:
            parts = [parts[i].merge(parts[i + 1]) if i + 1 < len(parts) else parts[i]
                     for i in range(0, len(parts), 2)]
        return parts[0]


class ShiftedSums:
    """Σ [z − s, 1]ᵀ [z − s, 1] over the rows z = [x, y] of every block added, around one shift s (the mean of the
    first rows seen), with the column ranges: the one pass of `sufficient_statistics`.

    Each block is read once, in sub-blocks of ``SUB_ROWS`` rows that stay in cache: converted to float64 and
    shifted into one reused buffer C = [z − s, 1], and CᵀC (BLAS ``syrk``) summed; its last column holds the
    column sums of z − s. `moments` gives the mean μ = s + δ, δ = Σ(z − s)/n, and M = Σ(z − s)(z − s)ᵀ − nδδᵀ.
    The subtraction loses a factor 1 + δ²/σ² of precision: δ is about σ/64 for rows in random order, O(σ) for
    sorted rows or a trend (which widen σ with them), and even first rows far from the rest inflate σ with them
    (a test puts a 10⁶σ outlier in the first row). One shift for all blocks means no block's mean is rounded
    and merged (a column 10⁸σ from zero keeps its digits). The column ranges come from the same sub-blocks
    (`column_reduce`); a constant column is known by its range (lo = hi). Against centring each block by its
    own mean first: one pass over the rows instead of two, ~1.5× faster at 10⁶ × 100."""

    SUB_ROWS = 4096

    def __init__(self, X: np.ndarray, Y: np.ndarray):
        head = min(self.SUB_ROWS, X.shape[0])
        with np.errstate(invalid="ignore", over="ignore"):      # non-finite rows are found from the sums (`block`)
            self.shift = np.concatenate([X[:head].mean(0, dtype=np.float64), Y[:head].mean(0, dtype=np.float64)])
        k = self.shift.size
        self.n, self.A = 0, np.zeros((k + 1, k + 1))
        self.lo, self.hi = np.full(k, np.inf), np.full(k, -np.inf)
        self._C = np.empty((self.SUB_ROWS, k + 1))       # the buffer every sub-block is shifted into
        self._C[:, k] = 1.0

    def block(self, X: np.ndarray, Y: np.ndarray):
        """(Σ [z − s, 1]ᵀ [z − s, 1], column minima, column maxima) of one block (X and Y in their own dtype).

        A NaN or ±inf in the block makes these sums non-finite, which is how the caller finds it (and then names
        its row): numpy's warnings on the way are silenced, so the user sees that error, not a RuntimeWarning
        from inside the pass."""
        d, k = X.shape[1], self.shift.size
        A, lo, hi = np.zeros((k + 1, k + 1)), np.full(k, np.inf), np.full(k, -np.inf)
        with np.errstate(invalid="ignore", over="ignore"):
            for i in range(0, X.shape[0], self.SUB_ROWS):
                xb, yb = X[i:i + self.SUB_ROWS], Y[i:i + self.SUB_ROWS]
                c = self._C[:xb.shape[0]]
                np.subtract(xb, self.shift[:d], out=c[:, :d])
                np.subtract(yb, self.shift[d:], out=c[:, d:k])
                A += c.T @ c
                lo = np.minimum(lo, np.concatenate([column_reduce(np.minimum, xb), column_reduce(np.minimum, yb)]))
                hi = np.maximum(hi, np.concatenate([column_reduce(np.maximum, xb), column_reduce(np.maximum, yb)]))
        return A, lo, hi

    def add(self, rows: int, A: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        """Add the `block` sums of ``rows`` rows."""
        self.n += rows
        self.A += A
        self.lo, self.hi = np.minimum(self.lo, lo), np.maximum(self.hi, hi)

    def moments(self) -> Moments:
        k = self.shift.size
        delta = self.A[:k, k] / self.n
        return Moments(self.n, self.shift + delta, self.A[:k, :k] - self.n * np.outer(delta, delta), self.lo,
                       self.hi, self.shift, delta)


class SufficientStats(NamedTuple):
    """What a linear-in-θ model needs of n rows, in standardised units (float64): FᵀF (p, p), FᵀY (p, k),
    YᵀY (k, k), plus n and the `Standardizer` that defines the units.

    The statistics are an artifact: ``stats.save(path)`` writes them (with the schema, the feature map, the row
    count and a checksum) and ``SufficientStats.load(path)`` reads them back, so a cluster job can make them and
    another machine distil from them: ``distill(stats, m=…)``, ``distill_moments(stats, m=…)``,
    ``distill_analytic(stats, m=…)`` take them in place of rows.

    Attributes:
      n: the number of rows.
      standardizer: the per-column centres and scales that define the units.
      FtF, FtY, YtY: the cross products (see the module docs).
      schema: the inputs' width, names and constant columns, where the pass knew them.
      feature_map: the feature map Φ (None: the identity).
      standardized: whether the rows were standardised by ``standardizer`` (False: it is the identity).

    Examples:
      >>> import jaxdistill as jd
      >>> from jaxdistill import datasets
      >>> X, Y = datasets.load("diabetes")
      >>> jd.sufficient_statistics(jd.ArraySource(X, Y)).save("stats.npz")     # where the rows are
      >>> stats = jd.SufficientStats.load("stats.npz")                          # later, anywhere
      >>> out = jd.distill_moments(stats, m=12)
      >>> stats.n, out.X.shape, round(float(out.weights.sum()), 6)
      (442, (12, 10), 442.0)
    """

    n: int
    standardizer: Standardizer
    FtF: np.ndarray
    FtY: np.ndarray
    YtY: np.ndarray
    schema: object = None
    feature_map: FeatureMap | None = None
    standardized: bool = True

    def input_schema(self):
        """``schema``, or where the statistics carry none (a private release's, ones built by hand) the width alone."""
        if self.schema is not None:
            return self.schema
        from jaxdistill._src.data.schema import InputSchema
        return InputSchema(n_features=self.standardizer.x_mean.size)

    def save(self, path) -> None:
        """Write the statistics to ``path`` (an ``.npz`` with a JSON header and a SHA-256 checksum; atomic)."""
        from jaxdistill._src.io.statistics import save_statistics
        save_statistics(self, path)

    @staticmethod
    def load(path, *, feature_map: FeatureMap | None = None) -> SufficientStats:
        """Statistics written by `save`, checked: the checksum (a changed file is refused), the shapes, the values
        (finite, symmetric, n ≥ 1) and the feature map (a user-defined one must be given as ``feature_map`` and is
        checked to be the one saved)."""
        from jaxdistill._src.io.statistics import load_statistics
        return load_statistics(path, SufficientStats, feature_map=feature_map)


def _moments(source: RowSource, block_rows: int) -> Moments:
    sums = None
    for X, Y in source.blocks(block_rows):
        # the finite check is the block's own sums: a NaN or inf anywhere makes them non-finite, and only then
        # is the block scanned (by as_2d_float, whose message names the rows) — one pass fewer per block
        X = as_2d_float("X block", X, allow_1d=False, check_finite=False)
        Y = as_2d_float("Y block", Y, allow_1d=True, check_finite=False)
        if X.shape[1] != source.d or Y.shape[1] != source.d_out or X.shape[0] != Y.shape[0]:
            raise ValueError(f"A block has shapes {X.shape}, {Y.shape}; the source promised (·, {source.d}), "
                             f"(·, {source.d_out}) with equal rows.")
        sums = ShiftedSums(X, Y) if sums is None else sums
        block = sums.block(X, Y)
        if not np.all(np.isfinite(block[0])):
            as_2d_float("X block", X, allow_1d=False)      # raises, naming the rows, if a value is not finite
            as_2d_float("Y block", Y, allow_1d=True)
        sums.add(X.shape[0], *block)
    return Moments.empty(source.d + source.d_out) if sums is None else sums.moments()


def _standardizer(mom: Moments, d: int, standardize: bool) -> tuple[Standardizer, np.ndarray]:
    """The standardiser and the constant-column mask of z = [x, y] (see `centre_and_scale`)."""
    sd = np.sqrt(np.maximum(np.diag(mom.M), 0.0) / mom.n)
    centre, scale, const = centre_and_scale(mom.mean, sd, mom.lo, mom.hi, mom.n)
    if not standardize:
        return Standardizer.identity(d, mom.mean.size - d), const
    return Standardizer(centre[:d], scale[:d], centre[d:], scale[d:]), const


def sufficient_statistics(source: RowSource, feature_map=None, *, standardize: bool = True,
                          block_rows: int = BLOCK_ROWS, dtype=None, names=None) -> SufficientStats:
    """FᵀF, FᵀY, YᵀY of all rows of ``source`` (see the module docs), the standardiser, n.

    The identity feature map (default) needs one pass (all three follow from the centred moments); another
    feature map a second pass that featurises each standardised block on the device (``dtype``: default
    JAX's float) and adds the products in float64. Memory: a few blocks, whatever n is. With several
    processes (``jax.distributed``) each reads only its contiguous share of a source of known length (a
    shared file), or its own stream (a ``BlockSource`` without ``n_rows``), and every process gets the
    statistics of all rows.

    Args:
      source: a [`RowSource`][jaxdistill.RowSource] ([`NpySource`][jaxdistill.NpySource] over files,
        [`ArraySource`][jaxdistill.ArraySource], [`BlockSource`][jaxdistill.BlockSource] over a generator).
      feature_map: a [`FeatureMap`][jaxdistill.FeatureMap] (default: the identity).
      standardize: centre and scale with the rows' own statistics (as ``distill`` does).
      block_rows: rows read per block (bounds the memory).
      dtype: the device dtype for featurising (default: JAX's float).
      names: the input columns' names, for the warning that names constant columns (default ``column j``).

    Returns:
      A [`SufficientStats`][jaxdistill.SufficientStats]: ``n``, the standardiser, ``FtF``, ``FtY`` and ``YtY``.

    Raises:
      ValueError: a source or feature map of the wrong kind, or non-finite rows (the message names the block).

    Examples:
      >>> import numpy as np, jaxdistill as jd
      >>> from jaxdistill import datasets
      >>> X, Y = datasets.load("diabetes")
      >>> stats = jd.sufficient_statistics(jd.ArraySource(X, Y))
      >>> stats.n, stats.FtF.shape
      (442, (10, 10))
    """
    return statistics_pass(source, feature_map, standardize=standardize, block_rows=block_rows, dtype=dtype,
                           names=names)[0]


def statistics_pass(source: RowSource, feature_map=None, *, standardize: bool = True, block_rows: int = BLOCK_ROWS,
                    dtype=None, names=None) -> tuple[SufficientStats, Moments, np.ndarray]:
    """`sufficient_statistics`, with what its pass found on the way: the rows' `Moments` (count, mean, column
    ranges lo/hi of z = [x, y] in original units) and the constant-column mask of z — for callers that need them
    (``distill_moments``) without reading the rows again."""
    fmap = Identity() if feature_map is None else feature_map
    if not isinstance(fmap, FeatureMap):
        raise ValueError(f"feature_map must be a jaxdistill.FeatureMap, got {feature_map!r}.")
    if not isinstance(source, RowSource):
        kind = type(source).__module__.split(".")[0]
        hint = {"dask": "jaxdistill.DaskSource(frame, target='y')", "pyarrow": "jaxdistill.ParquetSource(path, "
                "target='y') for a Parquet data set, or ArraySource(X, Y) for arrays",
                "polars": "ArraySource(frame.to_numpy(), y.to_numpy())", "pandas": "ArraySource(X.to_numpy(), "
                "y.to_numpy())"}.get(kind, "ArraySource(X, Y) for arrays")
        raise ValueError("source must be a jaxdistill RowSource (NpySource, ArraySource, BlockSource, ParquetSource, "
                         f"DaskSource), got {type(source).__name__}: wrap it, e.g. {hint}.")
    block_rows = int(block_rows)
    several = jax.process_count() > 1 and not source.distributed
    if several and source.n_rows is not None:          # a shared source: each process reads its range
        source = source.shard(jax.process_index(), jax.process_count())
    mom = source.moments(block_rows)
    if several:                                        # several processes: merge each process's moments
        mom = _merge_processes(mom)
    if mom.n == 0:
        raise ValueError("The source gave no rows.")
    if not np.all(np.isfinite(mom.M)):
        raise OverflowError("The second moments overflowed float64 (values beyond ~1e150): rescale those columns.")
    d = source.d
    std, const = _standardizer(mom, d, standardize)
    s_all = np.concatenate([std.x_scale, std.y_scale])
    if standardize:
        Mz = mom.M / np.outer(s_all, s_all)            # Σ z_s z_sᵀ: standardised rows are centred
        Mz[const, :] = 0.0                             # a constant column standardises to exactly 0
        Mz[:, const] = 0.0
        label = (lambda j: repr(names[j])) if names is not None and len(names) == d else (lambda j: f"column {j}")
        warn_constant([label(j) for j in np.flatnonzero(const[:d])], "X")
        warn_constant([f"column {j}" for j in np.flatnonzero(const[d:])], "Y")
    else:
        Mz = mom.M + mom.n * np.outer(mom.mean, mom.mean)
    YtY = Mz[d:, d:]
    schema = source.schema().replace(constant=tuple(int(j) for j in np.flatnonzero(const[:d])))
    if names is not None and len(names) == d and schema.feature_names is None:
        schema = schema.replace(feature_names=tuple(names))
    if isinstance(fmap, Identity):
        stats = SufficientStats(mom.n, std, Mz[:d, :d], Mz[:d, d:], YtY, schema, None, standardize)
        return stats, mom, const
    dt = jnp.result_type(float) if dtype is None else dtype
    if source.n_rows is not None:
        block_rows = max(1, min(block_rows, source.n_rows))   # a shard may be empty: still one shape
    FtF, FtY = source.feature_sums(LinearModel(fmap), std, block_rows, dt)   # the model's featurize is the map
    if several:
        FtF, FtY = sharding.sum_over_processes((FtF, FtY))
    return SufficientStats(mom.n, std, FtF, FtY, YtY, schema, fmap, standardize), mom, const


def _merge_processes(acc: Moments) -> Moments:
    """The moments of every ``jax.distributed`` process's rows, merged exactly (`Moments.merge_all`)."""
    shift = acc.mean if acc.shift is None else acc.shift
    offset = np.zeros_like(acc.mean) if acc.offset is None else acc.offset
    parts = sharding.gather_from_processes((np.asarray(acc.n), acc.mean, acc.M, acc.lo, acc.hi, shift, offset))
    return Moments.merge_all([Moments(int(n), *rest) for n, *rest in zip(*parts, strict=True)])


def _feature_sums(blocks, model, std: Standardizer, block_rows: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """(ΦᵀΦ, ΦᵀY) in float64 over (X, Y) ``blocks`` of at most ``block_rows`` rows, standardised by ``std`` and
    featurised on the device in ``dtype`` (blocks padded to one shape: one compilation)."""
    FtF = FtY = None
    for X, Y in blocks:
        r = X.shape[0]
        pad = block_rows - r
        Xs = np.pad(std.x(X), ((0, pad), (0, 0)))
        Ys = np.pad(std.y(Y), ((0, pad), (0, 0)))
        w = (np.arange(block_rows) < r).astype(np.float64)
        a, b, _ = (np.asarray(v, np.float64) for v in chunk_stats(model, on_device(Xs, dtype), on_device(Ys, dtype),
                                                                   on_device(w, dtype)))
        FtF, FtY = (a, b) if FtF is None else (FtF + a, FtY + b)
    if FtF is None:
        p = model.num_features(std.x_mean.size, dtype)
        FtF, FtY = np.zeros((p, p)), np.zeros((p, std.y_mean.size))
    return FtF, FtY
