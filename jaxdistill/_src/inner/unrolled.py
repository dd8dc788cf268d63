"""T steps of inner gradient descent, differentiated through (Algorithm 1, lines 7–9; eq. 3)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxdistill._src.core.fingerprint import Fingerprinted
from jaxdistill._src.core.linalg import tree_where
from jaxdistill._src.inner.adjoints import Adjoint, Checkpointed, Unrolled
from jaxdistill._src.inner.base import InnerSolver, ThetaSolution


class UnrolledGD(InnerSolver):
    """θ_{t+1} = θ_t − η̃ ∇_θ ℓ(x̃, θ_t), with ℓ the inner loss of Def. 2.1, as a ``lax.scan``.

    The scan runs ``max_steps`` iterations; iterations with ``t >= num_steps`` leave θ unchanged, so
    the T schedule of appendix A.7 changes T without recompiling (the cost is that of ``max_steps``).
    The Q initialisations are ``vmap``ped; for models linear in θ trained by plain GD the Q·d_out
    columns of all of them run as the rows of one matrix Θᵀ (Q·d_out, p) — one GEMM per step instead of
    Q GEMVs (rows rather than columns: XLA:CPU's backward pass is ~17 % faster in this layout,
    ``benchmarks/profile_scan_D.py``).

    Args:
      adjoint: how the meta-gradient is taken ([`Unrolled`][jaxdistill.Unrolled] — the reference,
        [`Checkpointed`][jaxdistill.Checkpointed], [`Truncated`][jaxdistill.Truncated],
        [`RandomWindow`][jaxdistill.RandomWindow], [`Implicit`][jaxdistill.Implicit]). Default: ``Unrolled()`` for
        models linear in θ, per-step ``Checkpointed(segment_length=1)`` otherwise (measured faster and smaller for MLPs,
        ``benchmarks/results/meta_gradients.md``).
      checkpoint: shorthand for ``adjoint=Checkpointed(segment_length=1)`` (remat every step).
      optimizer: an ``optax.GradientTransformation`` run inside the scan instead of plain GD:
        θ_{t+1} = θ_t + η̃ · u_t with (u_t, s_{t+1}) = ``optimizer.update(∇ℓ(θ_t), s_t, θ_t)``. Give it a
        learning rate of 1 (``optax.adam(1.0)``, ``optax.sgd(1.0, momentum=0.9)``, or a schedule of
        multipliers): η̃ is the learnable scale of its updates. ``None`` (default, the paper's) is plain
        GD, equal to ``optax.sgd(1.0)``. Lemma 2.4's bound holds for plain GD only; with an optimizer η̃
        has no cap, and divergence is caught by the step guard instead.
    """

    def __init__(self, adjoint: Adjoint | None = None, checkpoint: bool = False,
                 optimizer: optax.GradientTransformation | None = None):
        if adjoint is not None and checkpoint:
            raise ValueError("Pass either adjoint=... or checkpoint=True, not both.")
        if adjoint is not None and not isinstance(adjoint, Adjoint):
            raise ValueError(f"adjoint must be a jaxdistill Adjoint (Unrolled(), Checkpointed(), Truncated(K), "
                             f"RandomWindow(K), Implicit()), got {adjoint!r}.")
        if optimizer is not None and not isinstance(optimizer, optax.GradientTransformation):
            raise ValueError(f"optimizer must be an optax.GradientTransformation with learning rate 1 (e.g. "
                             f"optax.adam(1.0)), got {optimizer!r}.")
        self.adjoint = Checkpointed(segment_length=1) if checkpoint else adjoint
        self.optimizer = None if optimizer is None else Fingerprinted(optimizer)

    @property
    def plain_gd(self) -> bool:
        return self.optimizer is None

    def adjoint_for(self, model) -> Adjoint:
        """The adjoint used for ``model``: the one given, else the measured default."""
        if self.adjoint is not None:
            return self.adjoint
        return Unrolled() if model.linear_in_params else Checkpointed(segment_length=1)

    def training_steps(self, model, key, num_steps):
        return self.adjoint_for(model).steps(key, num_steps)

    def _body(self, loss_fn, eta, num_steps, grad_fn=None):
        """One inner step on the carry (θ, optimiser state); inactive past ``num_steps``. ``grad_fn``: ∇ℓ written
        out (default: ``jax.grad(loss_fn)``)."""
        grad_fn = jax.grad(loss_fn) if grad_fn is None else grad_fn
        opt = None if self.optimizer is None else self.optimizer.value

        def body(carry, t):
            theta, s = carry
            g = grad_fn(theta)
            if opt is None:
                # inactive past num_steps by a zero step size, not a select: θ − 0·g = θ exactly (for finite g), and
                # the select cost 5 % of the step at d = 1000, Q = 8 with two cores (benchmarks/results/outer_step.md)
                rate = eta * (t < num_steps).astype(jnp.result_type(eta))
                return jax.tree_util.tree_map(lambda p, g: (p - rate * g).astype(p.dtype), theta, g), s
            u, s2 = opt.update(g, s, theta)
            new = jax.tree_util.tree_map(lambda p, u: (p + eta * u).astype(p.dtype), theta, u)
            return tree_where(t < num_steps, new, theta), tree_where(t < num_steps, s2, s)

        return body

    def _init_state(self, theta0):
        return () if self.optimizer is None else self.optimizer.value.init(theta0)

    def _train(self, model, loss_fn, theta0, eta, num_steps, max_steps, grad_fn=None):
        carry = (theta0, self._init_state(theta0))
        return self.adjoint_for(model).run(self._body(loss_fn, eta, num_steps, grad_fn), carry, max_steps, num_steps,
                                           loss_fn)[0]

    def solve(self, model, support, theta0s, num_steps, max_steps):
        F, Y, eta, lambda_inner = support
        if not (model.linear_in_params and self.plain_gd):
            train = lambda th0: self._train(model, lambda th: model.loss(th, F, Y, lambda_inner), th0, eta,  # noqa: E731
                                            num_steps, max_steps)
            return ThetaSolution(model, jax.vmap(train)(theta0s))
        Q, p, k = theta0s.shape
        m = F.shape[0]
        th0 = jnp.moveaxis(theta0s, 2, 1).reshape(Q * k, p)

        def residual(th):  # row q·k + j of θ (Q·k, p) fits column j of Ỹ: broadcast, not tiled (2 % of a step)
            return ((th @ F.T).reshape(Q, k, m) - Y.T[None]).reshape(Q * k, m)

        def loss_fn(th):  # = Σ over the Q·d_out columns of the inner loss of Def. 2.1
            return 0.5 / m * jnp.sum(jnp.square(residual(th))) + 0.5 * lambda_inner * jnp.sum(jnp.square(th))

        def grad_fn(th):  # its gradient written out: differentiating through jax.grad(loss_fn) cost 17 % more
            return residual(th) @ F / m + lambda_inner * th   # per outer step (d 1000, m 100, Q 8, one core)

        th = self._train(model, loss_fn, th0, eta, num_steps, max_steps, grad_fn)
        return ThetaSolution(model, jnp.moveaxis(th.reshape(Q, k, p), 2, 1))

    def trajectory(self, model, support, theta0, max_steps):
        """Inner loss ℓ(x̃, θ_t) for t = 0..max_steps (inner-loop convergence curves)."""
        F, Y, eta, lambda_inner = support
        loss_fn = lambda th: model.loss(th, F, Y, lambda_inner)  # noqa: E731
        body = self._body(loss_fn, eta, max_steps)

        def step(carry, t):
            carry = body(carry, t)
            return carry, loss_fn(carry[0])

        _, losses = jax.lax.scan(step, (theta0, self._init_state(theta0)), jnp.arange(max_steps))
        return jnp.concatenate([loss_fn(theta0)[None], losses])

    def describe(self, T, eta) -> str:
        if self.optimizer is None:
            return super().describe(T, eta)
        return f"{T} steps of the inner optimizer, η̃ = {eta:.3g}"
