"""Key derivations computed on the host (numpy Threefry-2x32) equal ``jax.random``'s, bit for bit, in both
settings of ``jax_threefry_partitionable``; keys they do not apply to go through ``jax.random``."""

import jax
import numpy as np
import pytest

from jaxdistill._src.core import keys


@pytest.fixture(params=[True, False], ids=["partitionable", "original"])
def partitionable(request):
    old = jax.config.jax_threefry_partitionable
    jax.config.update("jax_threefry_partitionable", request.param)
    yield request.param
    jax.config.update("jax_threefry_partitionable", old)


def _random_keys(n=25):
    rng = np.random.default_rng(0)
    raw = [jax.random.PRNGKey(s) for s in (0, 1, 7, 2**31 - 1)]
    raw += [np.asarray(k, np.uint32) for k in rng.integers(0, 2**32, size=(n, 2), dtype=np.uint64)]
    return raw + [np.array([0xFFFFFFFF, 0xFFFFFFFF], np.uint32)]


def test_host_split_and_fold_in_equal_jax_random(partitionable):
    for key in _random_keys():
        want2, want3 = np.asarray(jax.random.split(key)), np.asarray(jax.random.split(key, 3))
        got = keys.split2(key)
        assert all(type(k) is np.ndarray for k in got)               # computed on the host, not by a program
        np.testing.assert_array_equal(np.stack(got), want2)
        np.testing.assert_array_equal(np.stack(keys.split3(key)), want3)
        for data in (0, 1, 7, 123456, 2**32 - 1):
            got = keys.fold_in(key, data)
            assert type(got) is np.ndarray
            np.testing.assert_array_equal(got, np.asarray(jax.random.fold_in(key, data)))


def test_typed_keys_still_go_through_jax_random():
    key = jax.random.key(3)
    a, b = keys.split2(key)
    want = jax.random.split(key)
    assert jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)
    np.testing.assert_array_equal(jax.random.key_data(a), jax.random.key_data(want[0]))
    np.testing.assert_array_equal(jax.random.key_data(keys.fold_in(key, 5)),
                                  jax.random.key_data(jax.random.fold_in(key, 5)))


@pytest.mark.parametrize("n", [0, 1, 2, 10, 354, 1625, 1626, 5000, (1 << 16) + 1, 300_000])
def test_host_permutation_and_choice_equal_jax_random(n):
    for key in _random_keys(4)[:1 if n > 10_000 else None]:      # one key for the large n (eager jax is slow)
        got = keys.permutation(key, n)
        assert type(got) is np.ndarray
        np.testing.assert_array_equal(got, np.asarray(jax.random.permutation(key, n)))
        if n:
            m = min(n, 7)
            want = jax.random.choice(jax.random.split(key)[0], n, (m,), replace=False)
            np.testing.assert_array_equal(keys.first_of_split_choice(key, n, m), np.asarray(want))


def test_permutation_with_unpartitionable_keys_uses_jax_random(partitionable):
    key = jax.random.PRNGKey(5)
    got = keys.permutation(key, 300)
    assert isinstance(got, np.ndarray if partitionable else jax.Array)
    np.testing.assert_array_equal(got, jax.random.permutation(key, 300))


def test_the_host_mirror_matches_this_jax_or_says_so(partitionable):
    """The one-time check an unverified JAX version gets passes on the installed one, in both settings."""
    assert keys._self_check()


def test_a_mirror_that_no_longer_matches_falls_back_to_jax_random(monkeypatch):
    """On a JAX version the mirror was not verified against, a mismatch found by the check sends every key through
    jax.random (the same draws as JAX) and warns once."""
    monkeypatch.setattr(keys, "VERIFIED_JAX", ())
    monkeypatch.setattr(keys, "_MIRROR_OK", {})
    real = keys._threefry2x32
    monkeypatch.setattr(keys, "_threefry2x32", lambda k1, k2, x1, x2: tuple(w ^ np.uint32(1) for w in real(k1, k2,
                                                                                                          x1, x2)))
    key = jax.random.PRNGKey(5)
    with pytest.warns(RuntimeWarning, match="does not match jax.random"):
        got = keys.split(key, 3)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(jax.random.split(key, 3)))
    np.testing.assert_array_equal(np.asarray(keys.permutation(key, 20)), np.asarray(jax.random.permutation(key, 20)))
    assert not keys.host_mirror_ok()


def test_an_unverified_version_whose_mirror_matches_keeps_the_host_path(monkeypatch):
    monkeypatch.setattr(keys, "VERIFIED_JAX", ())
    monkeypatch.setattr(keys, "_MIRROR_OK", {})
    assert keys.host_mirror_ok() and type(keys.split(jax.random.PRNGKey(5), 3)) is np.ndarray
