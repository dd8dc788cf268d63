"""T steps of inner gradient descent, differentiated through (Algorithm 1, lines 7–9; eq. 3)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxdistill._src.inner.adjoints import Adjoint, Checkpointed, Unrolled
from jaxdistill._src.inner.base import InnerSolver, ThetaSolution


class UnrolledGD(InnerSolver):
    """θ_{t+1} = θ_t − η̃ ∇_θ ℓ(x̃, θ_t), with ℓ the inner loss of Def. 2.1, as a ``lax.scan``.

    The scan runs ``max_steps`` iterations; iterations with ``t >= num_steps`` leave θ unchanged, so
    the T schedule of appendix A.7 changes T without recompiling (the cost is that of ``max_steps``).
    The Q initialisations are ``vmap``ped; for models linear in θ the Q·d_out columns of all of them
    run as the rows of one matrix Θᵀ (Q·d_out, p) — one GEMM per step instead of Q GEMVs (rows rather
    than columns: XLA:CPU's backward pass is ~17 % faster in this layout, ``benchmarks/profile_scan_D.py``).

    Args:
      adjoint: how the meta-gradient is taken (:class:`Unrolled` — the default and the reference,
        :class:`Checkpointed`, :class:`Truncated`).
      checkpoint: shorthand for ``adjoint=Checkpointed(segment_length=1)`` (remat every step).
    """

    def __init__(self, adjoint: Adjoint | None = None, checkpoint: bool = False):
        if adjoint is not None and checkpoint:
            raise ValueError("Pass either adjoint=... or checkpoint=True, not both.")
        if adjoint is None:
            adjoint = Checkpointed(segment_length=1) if checkpoint else Unrolled()
        if not isinstance(adjoint, Adjoint):
            raise ValueError(f"adjoint must be a jaxdistill Adjoint (Unrolled(), Checkpointed(), Truncated(K)), "
                             f"got {adjoint!r}.")
        self.adjoint = adjoint

    def _gd(self, loss_fn, theta0, eta, num_steps, max_steps):
        grad_fn = jax.grad(loss_fn)

        def body(theta, t):
            new = jax.tree_util.tree_map(lambda p, g: (p - eta * g).astype(p.dtype), theta, grad_fn(theta))
            return jax.tree_util.tree_map(lambda a, b: jnp.where(t < num_steps, a, b), new, theta)

        return self.adjoint.scan(body, theta0, max_steps, num_steps)

    def solve(self, model, F, Y, eta, lambda_inner, theta0s, num_steps, max_steps):
        if not model.linear_in_params:
            train = lambda th0: self._gd(lambda th: model.loss(th, F, Y, lambda_inner), th0, eta,  # noqa: E731
                                         num_steps, max_steps)
            return ThetaSolution(model, jax.vmap(train)(theta0s))
        Q, p, k = theta0s.shape
        m = F.shape[0]
        th0 = jnp.moveaxis(theta0s, 2, 1).reshape(Q * k, p)
        Yr = jnp.tile(Y.T, (Q, 1))

        def loss_fn(th):  # = Σ over the Q·d_out columns of the inner loss of Def. 2.1
            return 0.5 / m * jnp.sum(jnp.square(th @ F.T - Yr)) + 0.5 * lambda_inner * jnp.sum(jnp.square(th))

        th = self._gd(loss_fn, th0, eta, num_steps, max_steps)
        return ThetaSolution(model, jnp.moveaxis(th.reshape(Q, k, p), 2, 1))

    def trajectory(self, model, F, Y, eta, lambda_inner, theta0, max_steps):
        """Inner loss ℓ(x̃, θ_t) for t = 0..max_steps (inner-loop convergence curves)."""
        loss_fn = lambda th: model.loss(th, F, Y, lambda_inner)  # noqa: E731
        grad_fn = jax.grad(loss_fn)

        def body(theta, _):
            theta = jax.tree_util.tree_map(lambda p, g: p - eta * g, theta, grad_fn(theta))
            return theta, loss_fn(theta)

        _, losses = jax.lax.scan(body, theta0, None, length=max_steps)
        return jnp.concatenate([loss_fn(theta0)[None], losses])
