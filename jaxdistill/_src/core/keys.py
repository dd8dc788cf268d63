"""PRNG keys: the one place where seeds become keys."""

from __future__ import annotations

import jax
import numpy as np


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
