"""How the meta-gradient is taken through an iterative inner solver: the ``adjoint=`` field.

Modelled on optimistix's ``adjoint=`` (``RecursiveCheckpointAdjoint``) and ott-jax's
``implicit_diff``: the same inner gradient descent is differentiated by switching one value.
An adjoint runs ``body(carry, t)`` for t = 0 … n−1 and decides what reverse mode stores:

* :class:`Unrolled` — plain ``lax.scan``: reverse mode stores every iterate (memory O(T));
* :class:`Checkpointed` — segments of the scan rematerialised in the backward pass: with segments
  of length ≈ √T the memory is O(√T) carries, at the price of one extra forward pass; with
  ``segment_length=1`` every step is rematerialised (the old ``UnrolledGD(checkpoint=True)``);
* :class:`Truncated` — back-propagation through the last K of the T steps only (the earlier
  steps still run; their contribution to the meta-gradient is cut with ``stop_gradient``).

All give the same forward values; :class:`Unrolled` and :class:`Checkpointed` the same gradients.
"""

from __future__ import annotations

import abc
import math

import jax
import jax.numpy as jnp

from jaxdistill._src.core.component import Component
from jaxdistill._src.core.validate import check_int


class Adjoint(Component):
    """Runs ``body(carry, t) -> carry`` for t = 0, …, n − 1 (``t`` an int32 scalar)."""

    @abc.abstractmethod
    def scan(self, body, carry, n: int, num_steps):
        """The final carry. ``num_steps`` (≤ n, may be traced) is the number of active iterations."""


class Unrolled(Adjoint):
    """Reverse mode through the plain ``lax.scan`` (the reference)."""

    def scan(self, body, carry, n, num_steps):
        return jax.lax.scan(lambda c, t: (body(c, t), None), carry, jnp.arange(n))[0]


class Checkpointed(Adjoint):
    """Rematerialise segments of the scan in the backward pass.

    Args:
      segment_length: iterations per checkpointed segment; ``None`` picks ⌈√n⌉ (O(√T) memory).
    """

    def __init__(self, segment_length: int | None = None):
        self.segment_length = None if segment_length is None else check_int("segment_length", segment_length, 1)

    def scan(self, body, carry, n, num_steps):
        s = self.segment_length or max(1, math.isqrt(max(n - 1, 0)) + 1)
        if s == 1:
            step = jax.checkpoint(lambda c, t: (body(c, t), None))
            return jax.lax.scan(step, carry, jnp.arange(n))[0]
        segments = -(-n // s)

        @jax.checkpoint
        def segment(c, j):
            ts = j * s + jnp.arange(s)
            # iterations past n (padding of the last segment) leave the carry unchanged
            c2 = jax.lax.scan(lambda c, t: (jax.tree_util.tree_map(
                lambda a, b: jnp.where(t < n, a, b), body(c, t), c), None), c, ts)[0]
            return c2, None

        return jax.lax.scan(segment, carry, jnp.arange(segments))[0]


class Truncated(Adjoint):
    """Back-propagate through the last ``K`` active inner steps only (truncated BPTT).

    The gradient treats the iterate θ_{T−K} as a constant; with K ≥ T it equals the full unroll.
    """

    def __init__(self, K: int):
        self.K = check_int("K (truncation length)", K, 1)

    def scan(self, body, carry, n, num_steps):
        start = jnp.asarray(num_steps) - self.K

        def step(c, t):
            c = jax.tree_util.tree_map(lambda a: jnp.where(t == start, jax.lax.stop_gradient(a), a), c)
            return body(c, t), None

        return jax.lax.scan(step, carry, jnp.arange(n))[0]
