"""Inner solvers: how θ_T is obtained from the distilled data for each initialisation θ₀.

The reference is :class:`UnrolledGD`, Algorithm 1 lines 7–9: T steps of gradient descent on the
inner loss (Def. 2.1, eq. 3) written as a :func:`jax.lax.scan`, so that the meta-gradient is
``jax.grad`` through the unrolled loop. Other solvers (exact fast paths, kernel solves) implement the
same interface and are chosen with the ``inner_solver=`` argument of :func:`jaxdistill.distill`.
"""

from __future__ import annotations

import abc
from typing import Any

import jax
import jax.numpy as jnp

from jaxdistill._src.models import InnerModel, inner_loss

PyTree = Any


class InnerSolver(abc.ABC):
    """Maps (distilled data, η̃, θ₀) to per-initialisation outer data losses."""

    @abc.abstractmethod
    def train(self, model: InnerModel, F: jax.Array, Y: jax.Array, eta: jax.Array,
              lambda_inner: jax.Array, theta0: PyTree, num_steps: jax.Array,
              max_steps: int) -> PyTree:
        """θ_T for one θ₀ after ``num_steps`` (≤ ``max_steps``, may be traced) inner steps."""

    def check(self, model: InnerModel) -> None:
        """Raise ``ValueError`` if this solver cannot handle ``model`` (trace-time check)."""
        return None

    def data_losses(self, model: InnerModel, F: jax.Array, Y: jax.Array, eta: jax.Array,
                    lambda_inner: jax.Array, theta0s: PyTree, FB: jax.Array, YB: jax.Array,
                    num_steps: jax.Array, max_steps: int) -> jax.Array:
        """Outer data loss 1/(2b)‖f_{θ_T}(X_B) − Y_B‖² for each of the Q stacked θ₀ (Def. 2.5).

        Returns an array of shape (Q,). ``theta0s`` holds Q initialisations stacked on axis 0.
        """
        def one(theta0):
            theta_T = self.train(model, F, Y, eta, lambda_inner, theta0, num_steps, max_steps)
            resid = model.apply(theta_T, FB) - YB
            return 0.5 / FB.shape[0] * jnp.sum(jnp.square(resid))

        return jax.vmap(one)(theta0s)


class UnrolledGD(InnerSolver):
    """T steps of inner gradient descent as a ``lax.scan`` (Algorithm 1, lines 7–9; eq. 3).

    θ_{t+1} = θ_t − η̃ ∇_θ ℓ(x̃, θ_t), with ℓ the inner loss of Def. 2.1. The scan always runs
    ``max_steps`` iterations; iterations with ``t >= num_steps`` leave θ unchanged, which lets the
    T schedule of appendix A.7 change T without recompiling (the cost is that of ``max_steps``).

    Args:
      checkpoint: wrap each step in :func:`jax.checkpoint` (rematerialisation): memory of the
        backward pass no longer grows with T's activations, at the price of recomputing them.
    """

    def __init__(self, checkpoint: bool = False):
        self.checkpoint = bool(checkpoint)

    def _scan(self, loss_fn, theta0, eta, num_steps, max_steps):
        """θ_{t+1} = θ_t − η̃ ∇ loss_fn(θ_t) for t < num_steps, as a scan of max_steps iterations."""
        grad_fn = jax.grad(loss_fn)

        def body(theta, t):
            g = grad_fn(theta)
            new = jax.tree_util.tree_map(lambda p, gp: (p - eta * gp).astype(p.dtype), theta, g)
            keep = t < num_steps
            theta = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), new, theta)
            return theta, None

        if self.checkpoint:
            body = jax.checkpoint(body)
        theta, _ = jax.lax.scan(body, theta0, jnp.arange(max_steps))
        return theta

    def train(self, model, F, Y, eta, lambda_inner, theta0, num_steps, max_steps):
        return self._scan(lambda th: inner_loss(model, th, F, Y, lambda_inner), theta0, eta, num_steps, max_steps)

    def data_losses(self, model, F, Y, eta, lambda_inner, theta0s, FB, YB, num_steps, max_steps):
        if not model.linear_in_params:
            return super().data_losses(model, F, Y, eta, lambda_inner, theta0s, FB, YB, num_steps, max_steps)
        # Linear in θ: the inner loss (Def. 2.1) is separable across the columns of θ, so the Q·d_out
        # columns of all initialisations run together as the rows of one matrix Θᵀ (Q·d_out, p) against
        # Ỹᵀ tiled Q times: one GEMM per step instead of Q GEMVs. Rows rather than columns because
        # XLA:CPU's backward pass is ~17 % faster in this layout (benchmarks/profile_scan_D.py).
        Q, p, k = theta0s.shape
        m = F.shape[0]
        th0 = jnp.moveaxis(theta0s, 2, 1).reshape(Q * k, p)
        Yr = jnp.tile(Y.T, (Q, 1))

        def loss_fn(th):  # = Σ over the Q·d_out columns of the inner loss of Def. 2.1
            return 0.5 / m * jnp.sum(jnp.square(th @ F.T - Yr)) + 0.5 * lambda_inner * jnp.sum(jnp.square(th))

        th = self._scan(loss_fn, th0, eta, num_steps, max_steps)
        pred = (th @ FB.T).reshape(Q, k, FB.shape[0])
        return 0.5 / FB.shape[0] * jnp.sum((pred - YB.T[None]) ** 2, axis=(1, 2))

    def trajectory(self, model, F, Y, eta, lambda_inner, theta0, max_steps):
        """Inner loss ℓ(x̃, θ_t) for t = 0..max_steps (inner-loop convergence curves)."""
        loss_fn = lambda th: inner_loss(model, th, F, Y, lambda_inner)  # noqa: E731
        grad_fn = jax.grad(loss_fn)

        def body(theta, _):
            theta = jax.tree_util.tree_map(lambda p, g: p - eta * g, theta, grad_fn(theta))
            return theta, loss_fn(theta)

        _, losses = jax.lax.scan(body, theta0, None, length=max_steps)
        return jnp.concatenate([loss_fn(theta0)[None], losses])

    def __repr__(self) -> str:
        return f"UnrolledGD(checkpoint={self.checkpoint})"


def default_inner_solver(model: InnerModel) -> InnerSolver:
    """The exact T-independent fast path for models linear in θ, the unrolled scan otherwise."""
    if model.linear_in_params:
        from jaxdistill._src.fast import ExactLinearGD
        return ExactLinearGD()
    return UnrolledGD()
