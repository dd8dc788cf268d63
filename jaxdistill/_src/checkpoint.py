"""Checkpoints of a running distillation: the full outer-loop state, so a resumed run is identical.

A checkpoint holds every leaf of the :class:`DistillState` pytree (distilled set, η̃, optimizer
states, q, step counters), the history so far, the settings, the run key and a fingerprint of the
training data. It is written atomically (temporary file + rename), so a run killed at any moment
leaves either the previous checkpoint or the new one, never a torn file. Because step s draws its
randomness from ``fold_in(run_key, s)``, resuming from the state after step s reproduces the
uninterrupted run exactly.
"""

from __future__ import annotations

import hashlib
import io as _io
import json
import os
import zipfile

import jax
import numpy as np

from jaxdistill._src.io import atomic_write_bytes

FORMAT = "jaxdistill.Checkpoint"
FORMAT_VERSION = 1


def fingerprint(*arrays) -> str:
    """SHA-256 of the arrays' shapes, dtypes and bytes (identifies the data a run was started on)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_checkpoint(path, state, history: dict, meta: dict) -> None:
    """Write ``state`` (a pytree), ``history`` (dict of arrays) and ``meta`` (JSON-able) to ``path``."""
    leaves = jax.tree_util.tree_leaves(state)
    arrays = {f"leaf_{i:04d}": np.asarray(leaf) for i, leaf in enumerate(leaves)}
    arrays.update({f"hist_{k}": np.asarray(v) for k, v in history.items()})
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "n_leaves": len(leaves),
           "history_keys": sorted(history), **meta}
    arrays["__meta__"] = np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8)
    buf = _io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path, template_state, expect: dict):
    """Read a checkpoint into the structure of ``template_state``; ``expect`` entries must match.

    Returns (state, history, meta). Raises ``ValueError`` saying what differs when the file is corrupt,
    foreign, or from another run (settings, key or data).
    """
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            files = {k: z[k] for k in z.files}
        meta = json.loads(files.pop("__meta__").tobytes().decode())
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError, UnicodeDecodeError) as exc:
        raise ValueError(f"Checkpoint {path!r} is unreadable (truncated or corrupt?): {exc}. Delete it to start "
                         "afresh.") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not a jaxdistill checkpoint.")
    for k, v in expect.items():
        if meta.get(k) != v:
            raise ValueError(f"Checkpoint {path!r} belongs to a different run: its {k} differs from this run's. "
                             "Use another checkpoint path, or delete the file to start afresh.")
    leaves, treedef = jax.tree_util.tree_flatten(template_state)
    if meta.get("n_leaves") != len(leaves):
        raise ValueError(f"Checkpoint {path!r} has {meta.get('n_leaves')} state arrays, this run needs {len(leaves)}.")
    new = []
    for i, t in enumerate(leaves):
        a = files[f"leaf_{i:04d}"]
        if a.shape != np.shape(t) or a.dtype != np.asarray(t).dtype:
            raise ValueError(f"Checkpoint {path!r}: state array {i} is {a.shape} {a.dtype}, expected "
                             f"{np.shape(t)} {np.asarray(t).dtype}.")
        new.append(jax.numpy.asarray(a))
    history = {k: files[f"hist_{k}"] for k in meta.get("history_keys", [])}
    return jax.tree_util.tree_unflatten(treedef, new), history, meta
