"""Save and load a :class:`DistillOutput` as one self-describing ``.npz`` file.

Layout: numeric arrays (``x``, ``y``, standardisation statistics, history) plus ``__meta__``, a
JSON document holding the format tag, format version, library version, settings, seed, status,
η̃ and free-form metadata. Loading never unpickles (``allow_pickle=False``). Writes go to a
temporary file in the same folder followed by :func:`os.replace`, so a crash never leaves a
half-written file under the target name.
"""

from __future__ import annotations

import io as _io
import json
import os
import tempfile
import zipfile

import numpy as np

from jaxdistill._src.config import DistillConfig
from jaxdistill._src.data import Standardizer
from jaxdistill._src.output import STATUSES, DistillOutput
from jaxdistill._src.version import __version__

FORMAT = "jaxdistill.DistillOutput"
FORMAT_VERSION = 1
_STD = ("x_mean", "x_scale", "y_mean", "y_scale")


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save(out: DistillOutput, path) -> None:
    """Save ``out`` to ``path`` (``.npz``), atomically."""
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "jaxdistill_version": __version__,
            "inner_lr": out.inner_lr, "status": out.status, "seed": out.seed,
            "config": out.config.to_dict(), "meta": out.meta, "history_keys": sorted(out.history)}
    arrays = {"x": np.asarray(out.x), "y": np.asarray(out.y)}
    arrays.update({f"std_{k}": np.asarray(getattr(out.standardizer, k)) for k in _STD})
    arrays.update({f"hist_{k}": np.asarray(v) for k, v in out.history.items()})
    arrays["__meta__"] = np.frombuffer(json.dumps(meta, default=_json_default).encode(), dtype=np.uint8)
    buf = _io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return repr(o)


def load(path) -> DistillOutput:
    """Load a file written by :func:`save`. Raises ``FileNotFoundError`` or ``ValueError`` (corrupt,
    truncated, foreign or newer-format files) with a message saying what is wrong."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No distilled-set file at {path!r}.")
    try:
        with np.load(path, allow_pickle=False) as z:
            files = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ValueError(f"{path!r} is not a readable jaxdistill file (truncated or corrupt?): {exc}. "
                         "Re-create it with DistillOutput.save().") from None
    if "__meta__" not in files:
        raise ValueError(f"{path!r} is an .npz file but not one written by jaxdistill (no __meta__ entry).")
    try:
        meta = json.loads(files.pop("__meta__").tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path!r} has a corrupt metadata block: {exc}.") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path!r} holds {meta.get('format')!r}, not a {FORMAT}.")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path!r} uses format version {meta['format_version']}; this jaxdistill "
                         f"({__version__}) reads up to {FORMAT_VERSION}. Upgrade jaxdistill.")
    missing = [k for k in ["x", "y"] + [f"std_{k}" for k in _STD] if k not in files]
    if missing or meta.get("status") not in STATUSES:
        raise ValueError(f"{path!r} is incomplete: missing {missing or 'a valid status'}.")
    history = {k: files[f"hist_{k}"] for k in meta.get("history_keys", []) if f"hist_{k}" in files}
    return DistillOutput(
        x=files["x"], y=files["y"], inner_lr=float(meta["inner_lr"]), history=history,
        config=DistillConfig.from_dict(meta["config"]),
        standardizer=Standardizer(*(files[f"std_{k}"] for k in _STD)),
        status=meta["status"], seed=meta.get("seed"), meta=dict(meta.get("meta", {}),
                                                               saved_with=meta.get("jaxdistill_version")))
