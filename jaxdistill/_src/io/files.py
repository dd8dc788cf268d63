"""Atomic file writes and safe ``.npz`` reads shared by results and checkpoints."""

from __future__ import annotations

import hashlib
import io as _io
import json
import os
import socket
import stat
import tempfile
import zipfile

import numpy as np


def name_max(folder: str) -> int:
    """The longest file name (bytes) the file system of ``folder`` allows (255 where it does not say)."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def _check_target(path: str) -> None:
    name = os.path.basename(path.rstrip("/\\"))
    folder = os.path.dirname(os.path.abspath(path))
    limit = name_max(folder) if os.path.isdir(folder) else 255
    if len(name.encode()) > limit:
        raise ValueError(f"The file name {name[:40]!r}… is {len(name.encode())} bytes; this file system allows "
                         f"{limit}. Choose a shorter name.")
    if os.path.islink(path):
        raise ValueError(f"{path!r} is a symbolic link; refusing to replace it. Save to a regular file path.")
    if os.path.exists(path):
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise ValueError(f"{path!r} is a directory; give a file name such as {os.path.join(path, 'result.npz')!r}.")
        if not stat.S_ISREG(mode):
            raise ValueError(f"{path!r} is not a regular file (a device or pipe?); refusing to replace it.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"Cannot write {path!r}: its folder {folder!r} does not exist (or is a file). "
                         "Create the folder or choose another path.")


def check_writable(path, make_folder: bool = False) -> None:
    """``ValueError`` saying what to change if a file could not be written at ``path`` (a directory, a
    link or device there, a missing folder, a file where the folder should be) — to check before a long
    run rather than after it. ``make_folder`` creates missing folders first."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if make_folder and not os.path.isdir(folder):
        _make_folder(folder, f"Cannot write {path!r}")
    _check_target(path)
    if not os.access(folder, os.W_OK):
        raise ValueError(f"Cannot write {path!r}: its folder {folder!r} is not writable. Choose another path.")


def _make_folder(folder: str, what: str) -> None:
    """Create ``folder`` (and its parents), or say why not (``what`` begins the message)."""
    parent = folder
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if parent and not os.path.isdir(parent):
        raise ValueError(f"{what}: {parent!r} is a file, not a folder. Choose another path.")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{what}: cannot create the folder {folder!r} ({exc.strerror or exc}). Choose another "
                         "path.") from None


def check_output_folder(folder, protect=()) -> None:
    """``ValueError`` saying what to change unless ``folder`` is (or can be made) a writable folder that is none
    of the ``protect`` paths (the inputs of the command) — checked, and the folder made, before a long
    computation, so that its results are never lost to a bad ``--out``."""
    folder = os.path.abspath(os.fspath(folder))
    for p in protect:
        if p is not None and os.path.abspath(os.fspath(p)) == folder:
            raise ValueError(f"--out {folder!r} is one of this command's own inputs; choose another folder.")
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"--out {folder!r} exists and is not a folder (figures and tables are written into a "
                         "folder); choose a folder path.")
    _make_folder(folder, f"--out {folder!r}")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"The folder {folder!r} is not writable; choose another --out.")


#: temporary files are named ``.jaxdistill-HOST-PID-xxxx.part``: the writer can be told dead from alive
_PART_PREFIX = f".jaxdistill-{socket.gethostname().replace('-', '_')}-"


def _remove_stale_parts(folder: str) -> None:
    """Remove temporary files left by writers on this host that were killed mid-write (their process is
    gone); files of live processes and of other hosts (a shared folder) are left alone."""
    try:
        names = [n for n in os.listdir(folder) if n.startswith(_PART_PREFIX) and n.endswith(".part")]
    except OSError:
        return
    for name in names:
        try:
            pid = int(name[len(_PART_PREFIX):].split("-", 1)[0])
        except ValueError:
            continue
        try:
            os.kill(pid, 0)
            continue                                  # alive (or not ours to signal): leave it
        except ProcessLookupError:
            pass
        except OSError:
            continue
        try:
            os.unlink(os.path.join(folder, name))
        except OSError:
            pass


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, rename.

    The file gets the permissions a plain ``open(path, "w")`` would (the umask is respected). Errors
    name ``path``, never the temporary file; a failure leaves any previous file intact.
    """
    path = os.fspath(path)
    _check_target(path)
    folder = os.path.dirname(os.path.abspath(path))
    _remove_stale_parts(folder)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{_PART_PREFIX}{os.getpid()}-", suffix=".part", dir=folder)
    except OSError as exc:
        raise OSError(exc.errno, f"Cannot write {path!r}: {exc.strerror}") from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, (FileNotFoundError,)):
            raise OSError(exc.errno, f"Cannot write {path!r}: {exc.strerror or exc}") from None
        raise


def _digest(arrays: dict, meta: dict) -> str:
    """SHA-256 of the arrays (name, dtype, shape, bytes, in name order) and of the metadata (canonical JSON)."""
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    h.update(json.dumps(meta, sort_keys=True).encode())
    return h.hexdigest()


def write_npz(path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """``arrays`` plus a JSON ``__meta__`` entry with a checksum of both, written atomically (never pickled)."""
    arrays = dict(arrays)
    meta = json.loads(json.dumps(meta, default=_json_default))     # what a reader will see
    meta["checksum"] = _digest(arrays, meta)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buf = _io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def read_npz(path, what: str, verify: bool = True) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, meta) of a file written by `write_npz`; ``ValueError`` naming ``path`` otherwise — also when
    the contents do not match the checksum written with them (edited or damaged after writing), or when
    the file must carry one. Files of jaxdistill before 0.8 carry none. ``verify=False`` leaves the check (and the
    ``checksum`` entry) to `verify_npz`, for callers that first look at the format version."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a directory, not a {what} file.")
    if not os.path.exists(path):
        raise FileNotFoundError(f"No {what} file at {path!r}.")
    if not stat.S_ISREG(os.stat(path).st_mode):       # a FIFO would block the read forever
        raise ValueError(f"{path!r} is not a regular file (a named pipe, device or socket); a {what} file is read "
                         "whole. Give a regular file.")
    archive = zipfile.is_zipfile(path)
    if archive:
        _check_sizes(path, what)
    try:
        with np.load(path, allow_pickle=False) as z:
            files = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        # numpy takes anything that is neither .npy nor a zip archive for a pickle and says so; jaxdistill
        # never writes or loads pickles, so do not pass on its advice to load the file unsafely
        if not archive:
            msg = "not an .npz archive" if "pickle" in str(exc) else str(exc).rstrip(" .")
            raise ValueError(f"{path!r} is not a readable {what} file (truncated or corrupt?): {msg}.") from None
        why = ("it holds an object (pickled) array, which jaxdistill never writes and never loads"
               if "pickle" in str(exc) else str(exc).rstrip(" ."))
        raise ValueError(f"{path!r} is an .npz archive but not a {what} file jaxdistill can read: {why}.") from None
    if "__meta__" not in files:
        raise ValueError(f"{path!r} is an .npz file but not a {what} file written by jaxdistill (no __meta__ entry).")
    try:
        meta = json.loads(files.pop("__meta__").tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path!r} has a corrupt metadata block: {exc}.") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path!r} has a corrupt metadata block (not a mapping).")
    if verify:
        verify_npz(path, files, meta, what)
    return files, meta


#: an archive may declare at most this many bytes uncompressed per byte on disk (jaxdistill writes them
#: uncompressed: about 1) before anything is decompressed
MAX_EXPANSION = 4


def _check_sizes(path: str, what: str) -> None:
    """Refuse an archive whose members declare far more bytes than the file holds (a zip bomb: 3 MB that would
    decompress to gigabytes) before any member is read."""
    try:
        with zipfile.ZipFile(path) as z:
            declared = sum(info.file_size for info in z.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"{path!r} is not a readable {what} file (truncated or corrupt?): {exc}.") from None
    on_disk = os.path.getsize(path)
    if declared > MAX_EXPANSION * on_disk + (1 << 20):
        raise ValueError(f"{path!r} declares {declared:,} bytes of contents in {on_disk:,} bytes on disk (compressed "
                         f"{declared / max(on_disk, 1):.0f}×): not a {what} file jaxdistill wrote (it writes them "
                         "uncompressed); refusing to decompress it.")


def verify_npz(path, files: dict, meta: dict, what: str, require_checksum: bool = False) -> None:
    """Check (and remove from ``meta``) the checksum `write_npz` wrote; see `read_npz`."""
    checksum = meta.pop("checksum", None)
    if checksum is None and require_checksum:
        raise ValueError(f"{path!r} carries no checksum, so edits to it cannot be detected; jaxdistill writes one "
                         f"into every {what} file. Re-create it.")
    if checksum is not None and checksum != _digest(files, meta):
        raise ValueError(f"{path!r} was changed after jaxdistill wrote it: its contents do not match the checksum "
                         f"written with them (edited by hand, or damaged). A {what} file is not to be edited; "
                         "re-create it.")


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return repr(o)
