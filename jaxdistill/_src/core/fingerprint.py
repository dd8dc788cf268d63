"""Identities of settings, components, optimizers and data, for checkpoints and compilation sharing.

`describe` turns anything a run depends on into a canonical, JSON-able tree of primitives:
components by class and attributes (arrays by shape, dtype and SHA-256 of their bytes), dataclasses
(flax modules) by their fields, and functions — optax transformations are closures — by module,
qualified name, bytecode, defaults and the *values* captured in their closures. So ``optax.adam(0.02)``
and ``optax.adam(0.5)`` differ, two ``adam(0.02)`` built separately are equal, and nothing depends
on a memory address (a user-defined class describes the same in every process).

`flat_description` flattens that tree to ``{"model.feature_map.W": "...", ...}`` so that a
refusal can name the entry that differs (`first_difference`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
from typing import Any

import numpy as np

_MAX_DEPTH = 24


def _array_digest(a) -> dict:
    a = np.ascontiguousarray(np.asarray(a))
    return {"array": list(a.shape), "dtype": str(a.dtype), "sha256": hashlib.sha256(a.tobytes()).hexdigest()[:16]}


def _qualname(obj) -> str:
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def describe(obj: Any, _depth: int = 0, _seen: frozenset = frozenset()) -> Any:
    """A canonical JSON-able description of ``obj`` (see module docs)."""
    if _depth > _MAX_DEPTH:
        return {"too_deep": _qualname(type(obj))}
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if np.isfinite(f) else repr(f)
    if isinstance(obj, (np.ndarray, np.generic)) or type(obj).__module__.startswith(("jax", "jaxlib")) and \
            hasattr(obj, "shape") and hasattr(obj, "dtype"):
        try:
            return _array_digest(obj)
        except Exception:  # noqa: BLE001 - tracers and the like have no bytes
            return {"abstract_array": list(np.shape(obj)), "dtype": str(getattr(obj, "dtype", "?"))}
    if isinstance(obj, Fingerprinted):
        return {"fingerprinted": obj.key}
    if id(obj) in _seen:
        return {"cycle": _qualname(type(obj))}
    seen = _seen | {id(obj)}
    d = lambda v: describe(v, _depth + 1, seen)  # noqa: E731
    if getattr(obj, "_jd_frozen", False):  # a Component (duck-typed: this module sits below component.py)
        return {"class": _qualname(type(obj)), "attributes": {k: d(v) for k, v in sorted(obj.attributes().items())}}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # NamedTuple (optax GradientTransformation, states)
        return {"namedtuple": _qualname(type(obj)), "fields": {f: d(getattr(obj, f)) for f in obj._fields}}
    if isinstance(obj, (list, tuple)):
        return [d(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): d(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, types.FunctionType):
        code = obj.__code__
        cells = [c.cell_contents if _cell_ok(c) else "<empty>" for c in (obj.__closure__ or ())]
        return {"function": _qualname(obj), "code": hashlib.sha256(code.co_code).hexdigest()[:16],
                "consts": d([c for c in code.co_consts if isinstance(c, (int, float, str, bool, type(None)))]),
                "defaults": d(obj.__defaults__), "kwdefaults": d(obj.__kwdefaults__),
                "closure": dict(zip(code.co_freevars, (d(c) for c in cells), strict=True))}
    if isinstance(obj, (types.BuiltinFunctionType, types.MethodType, type)):
        return {"callable": _qualname(obj)}
    if isinstance(obj, __import__("functools").partial):
        return {"partial": d(obj.func), "args": d(obj.args), "keywords": d(obj.keywords)}
    if dataclasses.is_dataclass(obj):  # flax modules, configs
        fields = {f.name: d(getattr(obj, f.name, None)) for f in dataclasses.fields(obj)
                  if f.name not in ("parent", "name")}
        return {"dataclass": _qualname(type(obj)), "fields": fields}
    if callable(obj):
        return {"callable": _qualname(type(obj)), "state": d(getattr(obj, "__dict__", {}))}
    return {"object": _qualname(type(obj)), "repr": _safe_repr(obj)}


def _cell_ok(cell) -> bool:
    try:
        cell.cell_contents  # noqa: B018
        return True
    except ValueError:
        return False


def _safe_repr(obj) -> str:
    r = repr(obj)
    return r if " at 0x" not in r else type(obj).__qualname__


def fingerprint(obj: Any) -> str:
    """SHA-256 (hex) of `describe`."""
    return hashlib.sha256(json.dumps(describe(obj), sort_keys=True).encode()).hexdigest()


def flat_description(obj: Any, prefix: str) -> dict[str, str]:
    """``{dotted.path: short digest}`` of `describe`'s tree, for naming what differs."""
    out: dict[str, str] = {}

    def walk(node, path):
        if isinstance(node, dict) and "array" in node and "sha256" in node:
            out[path] = f"array{tuple(node['array'])} {node['dtype']} {node['sha256']}"
        elif isinstance(node, dict):
            for k, v in node.items():
                k = "" if k in ("attributes", "fields", "closure") else k
                walk(v, f"{path}.{k}" if k else path)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")
        else:
            out[path] = json.dumps(node)

    walk(describe(obj), prefix)
    return out


def first_difference(saved: dict[str, str], now: dict[str, str]) -> str | None:
    """The first dotted path whose entry differs between two flat descriptions (None if equal)."""
    for k in sorted(set(saved) | set(now)):
        if saved.get(k) != now.get(k):
            return k
    return None


def data_fingerprint(*arrays) -> str:
    """SHA-256 of the arrays' shapes, dtypes and bytes, read in row blocks (works for memory maps)."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(f"{np.shape(a)}{np.asarray(a[:0]).dtype}".encode())
        for i in range(0, a.shape[0], 4096):
            h.update(memoryview(np.ascontiguousarray(a[i:i + 4096])).cast("B"))
    return h.hexdigest()


class Fingerprinted:
    """A static value compared and hashed by `fingerprint` (optax transformations are closures:
    two ``adam(0.02)`` built separately are equal, ``adam(0.5)`` is not)."""

    __slots__ = ("value", "key")

    def __init__(self, value):
        self.value, self.key = value, fingerprint(value)

    def __eq__(self, other):
        return isinstance(other, Fingerprinted) and self.key == other.key

    def __hash__(self):
        return hash(self.key)

    def __repr__(self):
        return f"<{type(self.value).__name__} {self.key[:12]}>"
