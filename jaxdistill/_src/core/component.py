"""``Component``: the base of every pluggable part (models, feature maps, kernels, solvers, objectives).

A component is an immutable pytree, in the spirit of ott-jax's ``@register_pytree_node_class`` cost
functions and equinox modules:

* its **array attributes** (and containers or components holding arrays: random weights, keys,
  flax parameters) are pytree *leaves*, so a component can be an argument of a jitted function;
* its **other attributes** (ints, floats, strings, flax modules, functions) are *static* and part
  of the tree structure: equal settings give equal structures and share one compilation;
* it is frozen once constructed (``replace`` returns a modified copy).

Which attributes are leaves is decided once, when the object is constructed, and carried through
flatten / unflatten, so JAX transformations that put placeholders in the leaves keep the structure.
Subclasses need no registration and may define any ``__init__``.
"""

from __future__ import annotations

import abc
import copy
from typing import Any

import jax
import numpy as np

from jaxdistill._src.core.fingerprint import fingerprint

_FROZEN = "_jd_frozen"
_DYNAMIC = "_jd_dynamic"
_PRIVATE = (_FROZEN, _DYNAMIC)


def _has_array(value) -> bool:
    """Dynamic attributes: arrays, components (always pytree nodes) and containers holding either."""
    if isinstance(value, Component):
        return True
    return any(isinstance(leaf, (jax.Array, np.ndarray, np.generic, Component))
               for leaf in jax.tree_util.tree_leaves(value, is_leaf=lambda x: isinstance(x, Component)))


class _Static:
    """Wraps a static attribute so that unhashable values (lists, dicts) can sit in a treedef."""

    __slots__ = ("value", "_key")

    def __init__(self, value):
        self.value = value
        try:
            hash(value)
            self._key = value
        except TypeError:
            self._key = ("__fingerprint__", fingerprint(value))

    def __eq__(self, other):
        if not isinstance(other, _Static):
            return NotImplemented
        try:
            return bool(self._key == other._key)
        except Exception:  # noqa: BLE001 - comparisons of exotic objects
            return self._key is other._key

    def __hash__(self):
        return hash(self._key)

    def __repr__(self):
        return repr(self.value)


class _ComponentMeta(abc.ABCMeta):
    def __call__(cls, *args, **kwargs):
        obj = super().__call__(*args, **kwargs)
        names = [k for k in vars(obj) if k not in _PRIVATE]
        object.__setattr__(obj, _DYNAMIC, frozenset(k for k in names if _has_array(getattr(obj, k))))
        object.__setattr__(obj, _FROZEN, True)
        return obj


def _split(obj):
    dyn = obj.__dict__[_DYNAMIC]
    names = sorted(k for k in vars(obj) if k not in _PRIVATE)
    children = [getattr(obj, k) for k in names if k in dyn]
    static = tuple((k, _Static(getattr(obj, k))) for k in names if k not in dyn)
    return names, children, static


def _flatten(obj):
    names, children, static = _split(obj)
    dyn = tuple(k for k in names if k in obj.__dict__[_DYNAMIC])
    return children, (dyn, static)


def _flatten_with_keys(obj):
    children, aux = _flatten(obj)
    return [(jax.tree_util.GetAttrKey(k), c) for k, c in zip(aux[0], children, strict=True)], aux


def _unflatten(cls, aux, children):
    dyn, static = aux
    obj = object.__new__(cls)
    for k, v in zip(dyn, children, strict=True):
        object.__setattr__(obj, k, v)
    for k, v in static:
        object.__setattr__(obj, k, v.value)
    object.__setattr__(obj, _DYNAMIC, frozenset(dyn))
    object.__setattr__(obj, _FROZEN, True)
    return obj


class Component(metaclass=_ComponentMeta):
    """Immutable pytree base class. Subclass it and set attributes in ``__init__`` as usual."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        jax.tree_util.register_pytree_with_keys(
            cls, _flatten_with_keys, lambda aux, ch, cls=cls: _unflatten(cls, aux, ch), _flatten)

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get(_FROZEN):
            raise AttributeError(f"{type(self).__name__} is immutable; use .replace({name}=...) for a modified copy.")
        object.__setattr__(self, name, value)

    def replace(self, **changes):
        """A copy with some attributes changed (``dataclasses.replace`` for components)."""
        unknown = set(changes) - set(self.attributes())
        if unknown:
            raise ValueError(f"{type(self).__name__} has no attribute(s) {sorted(unknown)}; it has "
                             f"{sorted(self.attributes())}.")
        new = copy.copy(self)
        for k, v in changes.items():
            object.__setattr__(new, k, v)
        dyn = {k for k in new.attributes() if _has_array(getattr(new, k))}
        object.__setattr__(new, _DYNAMIC, frozenset(dyn))
        return new

    def attributes(self) -> dict[str, Any]:
        """The component's own attributes (its settings and parameters)."""
        return {k: v for k, v in vars(self).items() if k not in _PRIVATE}

    def __repr__(self) -> str:
        parts = []
        for k, v in sorted(self.attributes().items()):
            if k.startswith("_"):
                continue
            if _has_array(v) and not isinstance(v, Component):
                shapes = [tuple(np.shape(a)) for a in jax.tree_util.tree_leaves(v)]
                v = f"<array {shapes[0]}>" if len(shapes) == 1 else f"<{len(shapes)} arrays>"
                parts.append(f"{k}={v}")
            else:
                parts.append(f"{k}={v!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


def rebuild(cls, attributes: dict[str, Any]):
    """An instance of component class ``cls`` with these attributes, without calling ``__init__``
    (restoring saved components: their arrays are the saved ones, not fresh random draws)."""
    obj = object.__new__(cls)
    for k, v in attributes.items():
        object.__setattr__(obj, k, v)
    object.__setattr__(obj, _DYNAMIC, frozenset(k for k, v in attributes.items() if _has_array(v)))
    object.__setattr__(obj, _FROZEN, True)
    return obj
