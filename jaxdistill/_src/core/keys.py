"""PRNG keys: the one place where seeds become keys."""

from __future__ import annotations

import warnings
from functools import partial

import jax
import jax.numpy as jnp
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
# first time a process meets its shapes. Splits and fold-ins of a raw threefry key are computed here on the host
# with numpy (the Threefry-2x32 hash of JAX's default PRNG, Salmon et al. 2011, as JAX computes it: bit for bit
# equal, tested against ``jax.random`` in both settings of ``jax_threefry_partitionable``): no program at all.
# Any other key (typed keys, another PRNG implementation) goes through ``jax.random`` in one compiled program.

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _threefry2x32(k1, k2, x1, x2):
    """Threefry-2x32 (20 rounds) of the counter words (x1, x2) under key (k1, k2); numpy uint32 in and out."""
    u = np.uint32
    ks = (u(k1), u(k2), u(k1) ^ u(k2) ^ u(0x1BD11BDA))
    x1, x2 = x1 + ks[0], x2 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x1 = x1 + x2
            x2 = (x2 << u(r)) | (x2 >> u(32 - r))
            x2 = x1 ^ x2
        x1 = x1 + ks[(i + 1) % 3]
        x2 = x2 + ks[(i + 2) % 3] + u(i + 1)
    return x1, x2


def _hash_iota(k, n: int):
    """Threefry-2x32 under the raw key k of the counters 0 … n−1 as JAX forms them for a partitionable split or
    random bits (the 64-bit iota as high and low words): the two output words, uint32 (n,) each."""
    return _threefry2x32(k[0], k[1], np.zeros(n, np.uint32), np.arange(n, dtype=np.uint32))


#: JAX versions whose ``jax.random`` the host computation was checked against, bit for bit, by the test suite
#: (``tests/test_keys.py``, both ``jax_threefry_partitionable`` settings). Another version is checked once per
#: process at first use (`host_mirror_ok`): JAX has changed its key derivations before (the default of
#: ``jax_threefry_partitionable`` in 0.5.0).
VERIFIED_JAX = ("0.10.2",)
_MIRROR_OK: dict[tuple, bool] = {}          # (JAX version, partitionable) → whether the mirror matches


def host_mirror_ok() -> bool:
    """Whether the host computation may be used: JAX is a version it was verified against, or a one-time check
    against ``jax.random`` (a split, a fold-in and a permutation; a few tiny programs, once per process and
    setting) found it bit for bit equal. On a mismatch every draw goes through ``jax.random`` from then on, and a
    warning says so once."""
    state = (jax.__version__, bool(jax.config.jax_threefry_partitionable))
    if state not in _MIRROR_OK:
        _MIRROR_OK[state] = jax.__version__ in VERIFIED_JAX or _self_check()
        if not _MIRROR_OK[state]:
            warnings.warn(f"jaxdistill's host copy of JAX's key derivations does not match jax.random in JAX "
                          f"{jax.__version__}; every key is derived by jax.random instead (the same draws as JAX, "
                          "a few more compilations). Please report this.", RuntimeWarning, stacklevel=3)
    return _MIRROR_OK[state]


def _self_check() -> bool:
    """The host computation against ``jax.random`` on a fixed key: split, fold-in and a permutation."""
    key = np.asarray(jax.random.PRNGKey(20240611), np.uint32)
    with np.errstate(over="ignore"):
        ok = np.array_equal(_split_raw(key, 3), np.asarray(jax.random.split(key, 3)))
        ok = ok and np.array_equal(_fold_in_raw(key, 12345), np.asarray(jax.random.fold_in(key, 12345)))
        if jax.config.jax_threefry_partitionable:
            ok = ok and np.array_equal(_permutation_raw(key, 37), np.asarray(jax.random.permutation(key, 37)))
    return bool(ok)


def _host_key(key):
    """The raw threefry key as numpy uint32[2] when the host computation applies, else None."""
    if jax.config.jax_default_prng_impl != "threefry2x32":
        return None
    if not isinstance(key, (np.ndarray, jax.Array)) or key.shape != (2,) or key.dtype != np.uint32:
        return None             # typed keys (jax.random.key) and anything else: jax.random
    if not host_mirror_ok():
        return None
    return np.asarray(key)


def _host_split(key, num: int):
    """``jax.random.split(key, num)`` on the host (numpy uint32 (num, 2)), or None where it does not apply."""
    k = _host_key(key)
    return None if k is None else _split_raw(k, num)


def _split_raw(k, num: int):
    """``jax.random.split`` of the raw key k (numpy uint32[2]) on the host."""
    with np.errstate(over="ignore"):
        if jax.config.jax_threefry_partitionable:        # counters: the 64-bit iota as (high, low) words
            return np.stack(_hash_iota(k, num), axis=1)
        counts = np.arange(2 * num, dtype=np.uint32)     # the original split: one iota, halves as the words
        b1, b2 = _threefry2x32(k[0], k[1], counts[:num], counts[num:])
        return np.concatenate([b1, b2]).reshape(num, 2)


@jit_once
def _split2(key: jax.Array):
    k = jax.random.split(key)
    return k[0], k[1]


@jit_once
def _split3(key: jax.Array):
    k = jax.random.split(key, 3)
    return k[0], k[1], k[2]


@jit_once
def _fold_in(key: jax.Array, data) -> jax.Array:
    return jax.random.fold_in(key, data)


def split(key: jax.Array, num: int):
    """``jax.random.split(key, num)`` (on the host for a raw threefry key, else through ``jax.random``)."""
    k = _host_split(key, num)
    return k if k is not None else jax.random.split(key, num)


def split2(key: jax.Array):
    """``jax.random.split(key)`` as two keys (on the host for a raw threefry key, else one compiled program)."""
    k = _host_split(key, 2)
    return (k[0], k[1]) if k is not None else _split2(key)


def split3(key: jax.Array):
    """``jax.random.split(key, 3)`` as three keys (on the host for a raw threefry key, else one compiled
    program)."""
    k = _host_split(key, 3)
    return (k[0], k[1], k[2]) if k is not None else _split3(key)


def fold_in(key: jax.Array, data: int) -> jax.Array:
    """``jax.random.fold_in(key, data)`` for a Python integer ``data`` (on the host for a raw threefry key,
    else one compiled program)."""
    k = _host_key(key)
    if k is None or not isinstance(data, (int, np.integer)) or isinstance(data, bool):
        return _fold_in(key, data)
    return _fold_in_raw(k, data)


def _fold_in_raw(k, data: int):
    with np.errstate(over="ignore"):       # the data as a key: 64-bit seed → (high, low) words, as uint32
        b1, b2 = _threefry2x32(k[0], k[1], np.zeros(1, np.uint32), np.asarray([data], np.int64).astype(np.uint32))
    return np.array([b1[0], b2[0]], np.uint32)


#: on an accelerator, above this many rows a permutation is computed by one compiled program there (its sort is
#: far faster than numpy's); at or below it, and at any size when JAX runs on the CPU, on the host (measured on 2
#: cores: 0.3 s at 10⁶ rows against 0.65 s for the compiled program, before its compilation)
HOST_PERMUTATION_MAX = 1 << 16


def _host_permutation(key, n: int):
    """``jax.random.permutation(key, n)`` on the host, or None where it does not apply: JAX's ``_shuffle``
    (rounds of a stable sort of ``arange(n)`` by 32 random bits per element, the bits being the two Threefry words
    XOR-ed, counters the 64-bit iota), for a raw threefry key with ``jax_threefry_partitionable`` on."""
    k = _host_key(key)
    if k is None or not jax.config.jax_threefry_partitionable:
        return None
    if n > HOST_PERMUTATION_MAX and jax.default_backend() != "cpu":
        return None
    return _permutation_raw(k, n)


def _permutation_raw(k, n: int):
    x = np.arange(n, dtype=np.int64 if jax.config.jax_enable_x64 else np.int32)
    rounds = int(np.ceil(3 * np.log(max(1, n)) / np.log(np.iinfo(np.uint32).max)))
    with np.errstate(over="ignore"):
        for _ in range(rounds):
            k, sub = _split_raw(k, 2)
            b1, b2 = _hash_iota(sub, n)
            x = x[np.argsort(b1 ^ b2, kind="stable")]
    return x


@partial(jit_once, static_argnums=1)
def _permutation(key: jax.Array, n: int) -> jax.Array:
    return jax.random.permutation(key, n)


@partial(jit_once, static_argnums=(1, 2))
def _first_of_split_choice(key: jax.Array, n: int, m: int) -> jax.Array:
    return jax.random.choice(jax.random.split(key)[0], n, (m,), replace=False)


def permutation(key: jax.Array, n: int):
    """``jax.random.permutation(key, n)``: on the host for a raw threefry key (on an accelerator only up to
    `HOST_PERMUTATION_MAX` rows), else one compiled program per n."""
    p = _host_permutation(key, n)
    return p if p is not None else _permutation(key, n)


def first_of_split_choice(key: jax.Array, n: int, m: int):
    """``jax.random.choice(jax.random.split(key)[0], n, (m,), replace=False)`` (the first m of a permutation): on
    the host where `permutation` is, else one compiled program per (n, m)."""
    k = _host_split(key, 2)
    p = None if k is None else _host_permutation(k[0], n)
    return p[:m] if p is not None else _first_of_split_choice(key, n, m)


def seed_of(key) -> int | None:
    """The integer seed if ``key`` is one, else ``None`` (for the record kept in results)."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return int(key)
    return None


def concat(parts) -> jax.Array | np.ndarray:
    """Key arrays joined along axis 0: on the host for raw keys (numpy), through ``jnp`` for typed keys."""
    if all(isinstance(p, np.ndarray) for p in parts):
        return np.concatenate(parts)
    return jnp.concatenate([jnp.asarray(p) for p in parts])


def key_to_list(key: jax.Array) -> list:
    """A JSON-able form of a key (for checkpoint identity)."""
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.asarray(key).tolist()
