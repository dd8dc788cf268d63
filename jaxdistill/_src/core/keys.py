"""PRNG keys: the one place where seeds become keys."""

from __future__ import annotations

from functools import partial

import jax
import numpy as np

from jaxdistill._src.core.jit import jit_once


def as_key(key) -> jax.Array:
    """A ``jax.random`` key from an integer seed or a key (raw ``uint32[2]`` or typed); ``None`` is seed 0."""
    if key is None:
        key = 0
    if isinstance(key, bool):
        raise ValueError(f"key must be an integer seed or a jax.random key, got {key!r}.")
    if isinstance(key, (int, np.integer)):
        return jax.random.PRNGKey(int(key))
    if isinstance(key, float) and key.is_integer():
        return jax.random.PRNGKey(int(key))
    if isinstance(key, (jax.Array, np.ndarray)):
        return key
    raise ValueError(f"key must be an integer seed or a jax.random key, got {key!r}.")


# Each eager ``jax.random`` call compiles several tiny programs (split, unstack, iota, shuffle, slice, …) the
# first time a process meets its shapes; these helpers make each use one program (same values, bit for bit).
@jit_once
def split2(key: jax.Array):
    """``jax.random.split(key)`` as two keys, one compiled program."""
    k = jax.random.split(key)
    return k[0], k[1]


@jit_once
def split3(key: jax.Array):
    """``jax.random.split(key, 3)`` as three keys, one compiled program."""
    k = jax.random.split(key, 3)
    return k[0], k[1], k[2]


@jit_once
def fold_in(key: jax.Array, data) -> jax.Array:
    """``jax.random.fold_in`` as one compiled program."""
    return jax.random.fold_in(key, data)


@partial(jit_once, static_argnums=1)
def permutation(key: jax.Array, n: int) -> jax.Array:
    """``jax.random.permutation(key, n)``, one compiled program per n."""
    return jax.random.permutation(key, n)


@partial(jit_once, static_argnums=(1, 2))
def first_of_split_choice(key: jax.Array, n: int, m: int) -> jax.Array:
    """``jax.random.choice(jax.random.split(key)[0], n, (m,), replace=False)``, one compiled program per (n, m)."""
    return jax.random.choice(jax.random.split(key)[0], n, (m,), replace=False)


def seed_of(key) -> int | None:
    """The integer seed if ``key`` is one, else ``None`` (for the record kept in results)."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return int(key)
    return None


def key_to_list(key: jax.Array) -> list:
    """A JSON-able form of a key (for checkpoint identity)."""
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.asarray(key).tolist()
