"""Checkpoints of a running distillation: the full outer-loop state, so a resumed run is identical.

A checkpoint holds every leaf of the [`DistillState`][jaxdistill.DistillState] pytree (distilled set, η̃, optimizer
states, q, step counters), the history so far, the stopping rule's tracker (best state, patience),
and the run's identity: settings, run key, a fingerprint of the training data, and flat descriptions
of the problem (model with its weights and the shapes of θ₀, objective, λ_I, λ_O), the inner solver
and the optimizer (its hyper-parameters). A checkpoint of another run is refused, naming the entry
that differs. It is written atomically, so a run killed at any moment leaves the previous checkpoint
or the new one, never a torn file. Because step s draws its randomness from ``fold_in(run_key, s)``,
resuming reproduces the uninterrupted run.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxdistill._src.core.fingerprint import first_difference
from jaxdistill._src.io.files import read_npz, verify_npz, write_npz

FORMAT = "jaxdistill.Checkpoint"
FORMAT_VERSION = 6


def save_checkpoint(path, state, history: dict, identity: dict, extra: dict | None = None) -> None:
    """Write ``state`` (a pytree), ``history`` and ``extra`` (dicts of arrays: the stopping rule's
    tracker) and the run ``identity`` to ``path``."""
    leaves = jax.tree_util.tree_leaves(state)
    extra = extra or {}
    arrays = {f"leaf_{i:04d}": np.asarray(leaf) for i, leaf in enumerate(leaves)}
    arrays.update({f"hist_{k}": np.asarray(v) for k, v in history.items()})
    arrays.update({f"extra_{k}": np.asarray(v) for k, v in extra.items()})
    write_npz(path, arrays, {"format": FORMAT, "format_version": FORMAT_VERSION, "n_leaves": len(leaves),
                             "history_keys": sorted(history), "extra_keys": sorted(extra), "identity": identity})


def _describe_difference(field: str, saved, now) -> str:
    if isinstance(saved, dict) and isinstance(now, dict):
        path = first_difference({k: str(v) for k, v in saved.items()}, {k: str(v) for k, v in now.items()})
        if path and path != field:
            return f"{field} (first difference: {path})"
    if isinstance(saved, str) and isinstance(now, str) and len(saved) + len(now) < 80:
        return f"{field} ({saved!r} there, {now!r} here)"
    return field


def load_checkpoint(path, template_state, identity: dict, missing: dict | None = None):
    """Read a checkpoint into the structure of ``template_state``; its identity must equal ``identity``.

    ``missing``: the value an entry of ``identity`` had in files written before it was recorded.

    Returns (state, history, extra). Raises ``ValueError`` saying what differs when the file is corrupt,
    foreign, or from another run.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"The checkpoint path {path!r} is a directory; give a file path such as "
                         f"{os.path.join(path, 'run.ckpt')!r}.")
    try:
        files, meta = read_npz(path, "checkpoint", verify=False)
    except ValueError as exc:
        raise ValueError(f"{exc} Remove that file (or pass resume=False / --no-resume) to start afresh.") from None
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path!r} is not a checkpoint of this jaxdistill version ({meta.get('format')!r} v"
                         f"{meta.get('format_version')}). Remove it, or pass resume=False / --no-resume.")
    try:
        verify_npz(path, files, meta, "checkpoint", require_checksum=True)
    except ValueError as exc:
        raise ValueError(f"{exc} Remove that file (or pass resume=False / --no-resume) to start afresh.") from None
    saved = {**(missing or {}), **meta.get("identity", {})}
    for field in identity:
        if saved.get(field) != identity[field]:
            what = _describe_difference(field, saved.get(field), identity[field])
            raise ValueError(f"Checkpoint {path!r} belongs to a different run: its {what} differs from this "
                             "run's. Use another checkpoint path, or pass resume=False / --no-resume to "
                             "overwrite it.")
    leaves, treedef = jax.tree_util.tree_flatten(template_state)
    if meta.get("n_leaves") != len(leaves):
        raise ValueError(f"Checkpoint {path!r} has {meta.get('n_leaves')} state arrays, this run needs {len(leaves)}.")
    new = []
    for i, t in enumerate(leaves):
        a = files.get(f"leaf_{i:04d}")
        if a is None or a.shape != np.shape(t) or a.dtype != np.asarray(t).dtype:
            raise ValueError(f"Checkpoint {path!r}: state array {i} does not fit this run "
                             f"(expected {np.shape(t)} {np.asarray(t).dtype}).")
        new.append(jnp.asarray(a))
    history = {k: files[f"hist_{k}"] for k in meta.get("history_keys", []) if f"hist_{k}" in files}
    extra = {k: files[f"extra_{k}"] for k in meta.get("extra_keys", []) if f"extra_{k}" in files}
    return jax.tree_util.tree_unflatten(treedef, new), history, extra
