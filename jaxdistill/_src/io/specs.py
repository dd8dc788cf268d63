"""Components as files: a JSON spec (class and settings) plus named arrays (weights, keys).

A shipped component (a class of ``jaxdistill``) whose settings are plain values is restored from its
spec alone. A user-defined class, or one holding a flax module or a function, cannot be rebuilt from a
file without running the user's code, so loading asks for it (``load(path, model=...)``) and checks
that the object given is the one saved (same fingerprint) — never a silent substitute.
"""

from __future__ import annotations

import importlib

import numpy as np

from jaxdistill._src.core.component import Component, rebuild
from jaxdistill._src.core.fingerprint import describe, fingerprint, first_difference, flat_description


class NeedsComponent(ValueError):
    """Raised when a saved component cannot be rebuilt from its spec (user-defined or opaque)."""


def to_spec(obj, path: str, arrays: dict[str, np.ndarray]):
    """A JSON-able spec of ``obj``; array values go into ``arrays`` under ``path``-based names."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (np.ndarray, np.generic)) or hasattr(obj, "__array__") and hasattr(obj, "dtype"):
        arrays[path] = np.asarray(obj)
        return {"__array__": path}
    if isinstance(obj, Component):
        cls = type(obj)
        return {"__component__": f"{cls.__module__}:{cls.__qualname__}",
                "attrs": {k: to_spec(v, f"{path}.{k}", arrays) for k, v in sorted(obj.attributes().items())}}
    if type(obj) in (list, tuple):
        tag = "__list__" if isinstance(obj, list) else "__tuple__"
        return {tag: [to_spec(v, f"{path}[{i}]", arrays) for i, v in enumerate(obj)]}
    if isinstance(obj, dict) and all(isinstance(k, str) for k in obj):
        return {"__dict__": {k: to_spec(v, f"{path}.{k}", arrays) for k, v in obj.items()}}
    return {"__opaque__": f"{type(obj).__module__}:{type(obj).__qualname__}"}


def _opaque_in(spec) -> str | None:
    if isinstance(spec, dict):
        if "__opaque__" in spec:
            return spec["__opaque__"] if isinstance(spec["__opaque__"], str) else "a container"
        if "__component__" in spec and not spec["__component__"].startswith("jaxdistill."):
            return spec["__component__"]
        for v in spec.values():
            r = _opaque_in(v)
            if r:
                return r
    if isinstance(spec, list):
        for v in spec:
            r = _opaque_in(v)
            if r:
                return r
    return None


def from_spec(spec, arrays: dict[str, np.ndarray]):
    """Rebuild an object from `to_spec`'s output; `NeedsComponent` if it cannot be."""
    if not isinstance(spec, dict):
        return spec
    if "__array__" in spec:
        if spec["__array__"] not in arrays:
            raise ValueError(f"the file lacks the array {spec['__array__']!r} of a saved component.")
        return arrays[spec["__array__"]]
    if "__list__" in spec:
        return [from_spec(v, arrays) for v in spec["__list__"]]
    if "__tuple__" in spec:
        return tuple(from_spec(v, arrays) for v in spec["__tuple__"])
    if "__dict__" in spec:
        return {k: from_spec(v, arrays) for k, v in spec["__dict__"].items()}
    if "__component__" in spec:
        opaque = _opaque_in(spec)
        if opaque:
            raise NeedsComponent(opaque)
        mod, qual = spec["__component__"].split(":")
        cls = importlib.import_module(mod)
        for part in qual.split("."):
            cls = getattr(cls, part)
        if not (isinstance(cls, type) and issubclass(cls, Component)):
            raise ValueError(f"{spec['__component__']} is not a jaxdistill component.")
        return rebuild(cls, {k: from_spec(v, arrays) for k, v in spec["attrs"].items()})
    raise NeedsComponent(spec.get("__opaque__", "an object"))


def identity(obj, name: str) -> dict:
    """What a file records to check a component given back later: fingerprint and flat description."""
    desc = describe(obj)
    cls = desc.get("class", type(obj).__qualname__) if isinstance(desc, dict) else type(obj).__qualname__
    return {"fingerprint": fingerprint(obj), "flat": flat_description(obj, name), "class": cls}


def check_same(saved: dict, obj, name: str, where: str) -> None:
    """Raise ``ValueError`` naming the first differing entry if ``obj`` is not the component saved."""
    if saved.get("fingerprint") == fingerprint(obj):
        return
    diff = first_difference(saved.get("flat", {}), flat_description(obj, name))
    raise ValueError(f"The {name} given differs from the one {where} was made with (first difference: "
                     f"{diff}). Pass the same {name} (same class, settings and weights).")
