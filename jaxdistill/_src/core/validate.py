"""Argument checks shared by every public constructor: a ``ValueError`` that names the setting."""

from __future__ import annotations

import math

import numpy as np

#: the largest integer any setting may take (int64); array sizes are limited to int32 (``MAX_SIZE``)
MAX_INT = 2 ** 63 - 1
MAX_SIZE = 2 ** 31 - 1


def check_int(name: str, v, lo: int | None = None, hi: int = MAX_INT) -> int:
    """An integer (Python or numpy; not bool, not a float with a fraction) in [``lo``, ``hi``]."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            v = int(v)
        else:
            raise ValueError(f"{name} must be an integer{'' if lo is None else f' >= {lo}'}, got {v!r}.")
    v = int(v)
    if lo is not None and v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v}.")
    if v > hi:
        raise ValueError(f"{name} = {v:.4g} is too large (at most {hi}).")
    return v


def check_float(name: str, v, *, lo: float | None = None, positive: bool = False, hi: float | None = None) -> float:
    """A finite real number (Python or numpy), optionally > 0, ≥ lo, ≤ hi."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a finite number, got {v!r}.")
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {v!r}.")
    if positive and not v > 0:
        raise ValueError(f"{name} must be > 0, got {v!r}.")
    if lo is not None and v < lo:
        raise ValueError(f"{name} must be >= {lo}, got {v!r}.")
    if hi is not None and v > hi:
        raise ValueError(f"{name} must be <= {hi}, got {v!r}.")
    return v


def check_bool(name: str, v) -> bool:
    """A real boolean (``"false"`` and 0/1 are refused: they are the classic silent mistakes)."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    raise ValueError(f"{name} must be true or false (a boolean), got {v!r}.")


def json_safe(obj):
    """``obj`` as strict JSON (RFC 8259) can hold it: NaN and ±inf as None, numpy scalars and arrays as Python
    numbers and lists, tuples as lists, keys as strings. What every JSON the library writes goes through, with
    ``allow_nan=False`` (a bare ``NaN`` is not JSON: strict parsers refuse the whole document)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux's MemAvailable, within an address-space limit if one is
    set), or None where the system does not say."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    try:
        import resource
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            with open("/proc/self/statm") as f:
                used = int(f.read().split()[0]) * resource.getpagesize()
            left = max(0, soft - used)
            avail = left if avail is None else min(avail, left)
    except (ImportError, OSError, ValueError):
        pass
    return avail


def check_fits(nbytes: float, what: str, remedy: str) -> None:
    """``MemoryError`` saying what to change when ``nbytes`` exceed the memory available (see `available_memory`):
    before an allocation that would otherwise abort the process (JAX's CPU allocator does) or swap it to a halt."""
    avail = available_memory()
    if avail is not None and nbytes > avail:
        raise MemoryError(f"{what} needs about {nbytes / 2**30:.3g} GiB; {avail / 2**30:.3g} GiB of memory is "
                          f"available. {remedy}")
