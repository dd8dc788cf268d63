"""Where arrays live when a run spans several devices (and processes): JAX's own ``Mesh`` and
``NamedSharding``, nothing home-made.

A run is sharded by one setting, ``mesh=``: a device count k (a 1-D mesh over the first k devices, axis
``"q"``) or a ``jax.sharding.Mesh`` whose axes are named from ``"q"`` (the Q initialisations θ₀ are
split across it: each device trains Q/k inner models) and ``"batch"`` (the outer batch's rows are split
across it). Everything else (X̃, Ỹ, η̃, the optimizer state, the full-data statistics) is replicated.
The compiled step is the single-device one with sharding constraints: XLA's partitioner inserts the
all-reduces, so the result equals the single-device run up to the order of floating-point sums.

With several processes (``jax.distributed.initialize``) the mesh spans every process's devices
(``jax.devices()``); each process runs the same program on its own devices (SPMD).
"""

from __future__ import annotations

import math

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

#: mesh axis over which the Q initialisations are split
Q_AXIS = "q"
#: mesh axis over which the rows of the outer batch are split
BATCH_AXIS = "batch"


def as_mesh(mesh) -> Mesh | None:
    """``None`` (one device), a device count k (the first k of ``jax.devices()``, axis ``"q"``), or a Mesh
    with axes named ``"q"`` and/or ``"batch"``. Raises ``ValueError`` saying what to pass otherwise."""
    if mesh is None or isinstance(mesh, Mesh):
        if mesh is not None:
            unknown = [a for a in mesh.axis_names if a not in (Q_AXIS, BATCH_AXIS)]
            if unknown:
                raise ValueError(f"mesh axes must be named {Q_AXIS!r} (the Q initialisations) and/or {BATCH_AXIS!r} "
                                 f"(the outer batch's rows); got {mesh.axis_names}.")
        return mesh
    if isinstance(mesh, (bool, float)) or not isinstance(mesh, (int, np.integer)):
        raise ValueError(f"mesh must be None, a device count or a jax.sharding.Mesh, got {mesh!r}.")
    devices = jax.devices()
    k = int(mesh)
    if not 1 <= k <= len(devices):
        raise ValueError(f"mesh = {k} devices, but JAX sees {len(devices)} ({devices[0].platform}). Pass at most "
                         f"{len(devices)}; on CPU, XLA_FLAGS=--xla_force_host_platform_device_count={max(k, 2)} "
                         "(set before JAX starts) simulates several devices.")
    return Mesh(np.asarray(devices[:k]), (Q_AXIS,))


def axis_size(mesh: Mesh | None, axis: str) -> int:
    return 1 if mesh is None or axis not in mesh.axis_names else int(mesh.shape[axis])


def check_divisible(mesh: Mesh | None, Q: int, batch_rows: int | None) -> None:
    """Each device must get an equal share: Q by the ``"q"`` axis, the batch by the ``"batch"`` axis."""
    kq, kb = axis_size(mesh, Q_AXIS), axis_size(mesh, BATCH_AXIS)
    if Q % kq:
        raise ValueError(f"Q (max_q) = {Q} initialisations cannot be split evenly over the mesh's {kq} devices "
                         f"on axis {Q_AXIS!r}: use Q = {kq * math.ceil(Q / kq)} (a multiple of {kq}), or fewer "
                         "devices.")
    if batch_rows is not None and batch_rows % kb:
        raise ValueError(f"batch_size = {batch_rows} rows cannot be split evenly over the mesh's {kb} devices on "
                         f"axis {BATCH_AXIS!r}: use a multiple of {kb}.")


def _constrain(tree, mesh: Mesh | None, spec: PartitionSpec):
    if mesh is None:
        return tree
    return jax.tree_util.tree_map(
        lambda a: jax.lax.with_sharding_constraint(a, NamedSharding(mesh, spec)), tree)


def split_leading(tree, mesh: Mesh | None, axis: str):
    """Inside jit: every leaf's leading axis split over the mesh axis ``axis`` (no-op without one)."""
    if axis_size(mesh, axis) == 1:
        return tree
    return _constrain(tree, mesh, PartitionSpec(axis))


def replicated(tree, mesh: Mesh | None):
    """Inside jit: every leaf whole on every device of the mesh."""
    return _constrain(tree, mesh, PartitionSpec())


def put_replicated(tree, mesh: Mesh | None):
    """Outside jit: host or device arrays placed whole on every device of the mesh (in every process)."""
    if mesh is None:
        return tree
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def put_rows(tree, mesh: Mesh | None, axis: str, dim: int = 0):
    """Outside jit: arrays split along dimension ``dim`` over the mesh axis ``axis`` (replicated without it)."""
    if axis_size(mesh, axis) == 1:
        return put_replicated(tree, mesh)
    spec = PartitionSpec(*([None] * dim), axis)
    return jax.device_put(tree, NamedSharding(mesh, spec))


def gather_from_processes(tree):
    """Host arrays from every process, stacked along a new leading axis (process order); in one process
    the arrays with that axis of length 1."""
    if jax.process_count() == 1:
        return jax.tree_util.tree_map(lambda a: np.asarray(a)[None], tree)
    from jax.experimental import multihost_utils
    return jax.tree_util.tree_map(np.asarray, multihost_utils.process_allgather(
        jax.tree_util.tree_map(np.asarray, tree)))


def sum_over_processes(tree):
    """Host arrays summed over all processes (each contributes its own); the identity in one process.
    Used for statistics accumulated by each process over its own rows (float64 sums stay float64)."""
    if jax.process_count() == 1:
        return tree
    return jax.tree_util.tree_map(lambda a: np.sum(a, axis=0), gather_from_processes(tree))


def describe(mesh: Mesh | None) -> str:
    if mesh is None:
        return "one device"
    axes = ", ".join(f"{a}={mesh.shape[a]}" for a in mesh.axis_names)
    return f"{mesh.devices.size} {mesh.devices.flat[0].platform} devices ({axes}) in {jax.process_count()} process(es)"
