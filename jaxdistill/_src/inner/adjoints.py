"""How the meta-gradient is taken through an iterative inner solver: the ``adjoint=`` field.

Modelled on optimistix's ``adjoint=`` (``RecursiveCheckpointAdjoint``) and ott-jax's
``implicit_diff``: the same inner gradient descent is differentiated by switching one value.
An adjoint runs ``body(carry, t)`` for t = 0 … n−1 and decides what reverse mode stores:

* [`Unrolled`][jaxdistill.Unrolled] — plain ``lax.scan``: reverse mode stores every iterate (memory O(T));
* [`Checkpointed`][jaxdistill.Checkpointed] — segments of the scan rematerialised in the backward pass: with segments
  of length ≈ √T the memory is O(√T) carries, at the price of one extra forward pass; with
  ``segment_length=1`` every step is rematerialised (the old ``UnrolledGD(checkpoint=True)``);
* [`Truncated`][jaxdistill.Truncated] — back-propagation through the last K of the T steps only (the earlier
  steps still run; their contribution to the meta-gradient is cut with ``stop_gradient``);
* [`RandomWindow`][jaxdistill.RandomWindow] — RaT-BPTT (Feng et al., ICLR 2024): each outer step unrolls a random number
  N ~ U{K, …, T} of inner steps and back-propagates through the last K of them;
* [`Implicit`][jaxdistill.Implicit] — implicit differentiation at the inner optimum: the forward pass runs the inner
  optimiser, the backward pass solves one linear system with the inner Hessian (conjugate gradients
  on Hessian-vector products, a ``jax.custom_vjp``). Memory O(1) in T; exact only when the inner
  problem is solved (T large enough), and blind to η̃ (θ* does not depend on it).

[`Unrolled`][jaxdistill.Unrolled] and [`Checkpointed`][jaxdistill.Checkpointed] give the same forward values and
gradients.
"""

from __future__ import annotations

import abc
import math
from functools import partial

import jax
import jax.numpy as jnp

from jaxdistill._src.core.component import Component
from jaxdistill._src.core.linalg import tree_where
from jaxdistill._src.core.validate import check_float, check_int


class Adjoint(Component):
    """Runs ``body(carry, t) -> carry`` for t = 0, …, n − 1 (``t`` an int32 scalar)."""

    @abc.abstractmethod
    def scan(self, body, carry, n: int, num_steps):
        """The final carry. ``num_steps`` (≤ n, may be traced) is the number of active iterations."""

    def run(self, body, carry, n: int, num_steps, loss_fn):
        """The final carry ``(θ_T, optimiser state)`` of the inner optimiser; ``loss_fn(θ)`` is the inner
        loss it minimises (used by [`Implicit`][jaxdistill.Implicit]; the others only scan ``body``)."""
        return self.scan(body, carry, n, num_steps)

    def steps(self, key: jax.Array, num_steps):
        """Inner steps to run in one outer step's training (``num_steps`` = T; [`RandomWindow`][jaxdistill.RandomWindow]
        draws)."""
        return num_steps


def _plain_scan(body, carry, n):
    return jax.lax.scan(lambda c, t: (body(c, t), None), carry, jnp.arange(n))[0]


class Unrolled(Adjoint):
    """Reverse mode through the plain ``lax.scan`` (the reference)."""

    def scan(self, body, carry, n, num_steps):
        return _plain_scan(body, carry, n)


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
            c2 = jax.lax.scan(lambda c, t: (tree_where(t < n, body(c, t), c), None), c, ts)[0]
            return c2, None

        return jax.lax.scan(segment, carry, jnp.arange(segments))[0]


class Truncated(Adjoint):
    """Back-propagate through the last ``K`` active inner steps only (truncated BPTT).

    The gradient treats the iterate θ_{T−K} as a constant; with K ≥ T it equals the full unroll. The
    first T − K steps run in a scan whose output is cut with ``stop_gradient`` (nothing of it is stored
    for the backward pass), the last K in a second scan: memory O(K), not O(T).
    """

    def __init__(self, K: int):
        self.K = check_int("K (truncation length)", K, 1)

    def scan(self, body, carry, n, num_steps):
        start = jnp.asarray(num_steps) - self.K          # may be negative (then every step is in the window)

        def head(c, t):                                    # steps t < start: forward only
            return tree_where(t < start, body(c, t), c), None

        def window(c, j):                                  # steps start ≤ t < num_steps, t ≥ 0
            t = start + j
            return tree_where(t >= 0, body(c, jnp.maximum(t, 0)), c), None

        c = jax.lax.stop_gradient(jax.lax.scan(head, carry, jnp.arange(max(n - self.K, 0)))[0])
        return jax.lax.scan(window, c, jnp.arange(min(self.K, n)))[0]


class RandomWindow(Truncated):
    """RaT-BPTT (Feng et al., *Embarrassingly Simple Dataset Distillation*, ICLR 2024): each outer step
    trains for a random N ~ U{min(K, T), …, T} inner steps and back-propagates through the last K.

    Evaluation (held-out loss, predictions) still trains for the full T steps.
    """

    def steps(self, key, num_steps):
        T = jnp.asarray(num_steps, jnp.int32)
        return jax.random.randint(key, (), jnp.minimum(self.K, T), T + 1)


class Implicit(Adjoint):
    """Implicit differentiation at the inner optimum θ* (∇_θ ℓ(θ*, x̃) = 0): dθ*/dx̃ = −H⁻¹ ∂²ℓ/∂θ∂x̃.

    The forward pass runs the inner optimiser for T steps and is not differentiated; the backward pass
    solves H u = ḡ once by conjugate gradients on Hessian-vector products (a ``jax.custom_vjp`` around
    ``jax.scipy.sparse.linalg.cg``: no extra dependency — lineax would add one for a single CG solve;
    ``jax.lax.custom_root`` cannot be transposed with CG inside it in JAX 0.10).
    H must be positive definite at θ* (λ_I > 0 guarantees it for models linear in θ). Right only when
    the T inner steps reach the optimum; η̃ gets no gradient (θ* does not depend on it).

    Args:
      maxiter: conjugate-gradient iterations (``None``: the solver's default, 10 × the size of θ).
      tol: relative residual tolerance of the CG solve.
    """

    def __init__(self, maxiter: int | None = None, tol: float = 1e-10):
        self.maxiter = None if maxiter is None else check_int("maxiter", maxiter, 1)
        self.tol = check_float("tol", tol, positive=True)

    def scan(self, body, carry, n, num_steps):
        return _plain_scan(body, carry, n)

    def run(self, body, carry, n, num_steps, loss_fn):
        theta0, state0 = carry
        # the forward pass: the inner optimiser itself, not differentiated
        theta = jax.lax.stop_gradient(self.scan(body, carry, n, num_steps)[0])
        grad_fn, consts = jax.closure_convert(jax.grad(loss_fn), theta)   # consts: F, Ỹ, … (differentiated)
        return _at_root(grad_fn, self.tol, self.maxiter, theta, *consts), state0


@partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _at_root(grad_fn, tol, maxiter, theta, *consts):
    """θ* itself; its VJP by the implicit function theorem on grad_fn(θ*, consts) = 0."""
    return theta


def _at_root_fwd(grad_fn, tol, maxiter, theta, *consts):
    return theta, (theta, consts)


def _at_root_bwd(grad_fn, tol, maxiter, res, g):
    theta, consts = res
    hvp = lambda v: jax.jvp(lambda th: grad_fn(th, *consts), (theta,), (v,))[1]  # noqa: E731
    u = jax.scipy.sparse.linalg.cg(hvp, g, tol=tol, maxiter=maxiter)[0]          # H u = ḡ (H symmetric)
    _, vjp = jax.vjp(lambda *c: grad_fn(theta, *c), *consts)
    return (jax.tree_util.tree_map(jnp.zeros_like, theta), *vjp(jax.tree_util.tree_map(jnp.negative, u)))


_at_root.defvjp(_at_root_fwd, _at_root_bwd)
