"""The outer step of Algorithm 1 (appendix A.3, lines 4–13), as pure functions of the solver's state.

One step s: Q initialisations θ₀ ~ p(θ₀); the inner solver trains from each on the distilled set;
the problem's objective scores the solutions on a batch of real pairs; λ_O/2(‖X̃‖² + ‖Ỹ‖²) is added
and the Q losses are summed (eq. 7) or averaged; ``jax.grad`` gives the meta-gradient with respect to
(X̃, Ỹ, η̃); one optax transformation updates all three; η̃ is projected into
[η̃_min, cap × stability bound] (Lemma 2.4 for models linear in θ; 2/λ_max of the inner Hessian at θ₀
for other models trained by plain GD). A non-finite step is not taken: the state is kept and η̃ halved,
and the same step is tried again; after ``MAX_BAD_STEPS`` in a row the run gives up (``failed``).

[`BilevelSolver`][jaxdistill.BilevelSolver] is an immutable pytree: equal settings (config, inner solver, optimizer by
its hyper-parameters) give equal tree structures, so every run with them shares one compilation.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdistill._src.core import sharding
from jaxdistill._src.core.component import Component
from jaxdistill._src.core.fingerprint import Fingerprinted
from jaxdistill._src.core.linalg import all_finite, bound_from_top, gram_top_eigenpair, gram_top_tracked, tree_where
from jaxdistill._src.inner.base import InnerSolver, Support
from jaxdistill._src.problem.config import DistillConfig, StepConfig
from jaxdistill._src.problem.problem import Problem

#: non-finite outer steps in a row after which a run gives up (status ``nonfinite``)
MAX_BAD_STEPS = 6


class DistillParams(NamedTuple):
    """What the outer loop learns (a pytree; one optax transformation updates all three, eq. 7).

    Attributes:
      x: the distilled inputs X̃, shape (m, d).
      y: the distilled targets Ỹ, shape (m, d_out).
      eta: the inner learning rate η̃ (a scalar).
    """

    x: jax.Array
    y: jax.Array
    eta: jax.Array


#: the stability bound is tracked (``DistillConfig.exact_bound_every``) only from this r = min(m, p) on: below,
#: an exact eigh costs about as much as the Lanczos steps (benchmarks/results/bound_tracking.md). At r = 99 (shape
#: A) the exact eigh each step was 12 % of the step, pinned to one core (benchmarks/results/outer_step.md)
TRACK_MIN_RANK = 64
#: Lanczos steps per tracked bound (each one product with F and one with Fᵀ)
TRACK_LANCZOS_STEPS = 8


class DistillState(NamedTuple):
    """Carry of the outer loop (`BilevelSolver.init` makes it, `BilevelSolver.step` advances it).

    Attributes:
      params: the [`DistillParams`][jaxdistill.DistillParams] (X̃, Ỹ, η̃).
      opt_state: the outer optimizer's state.
      q: active initialisations (int32; the q schedule of appendix A.7).
      prev_loss: the last outer loss, for the q schedule.
      step: outer steps done (int32).
      eta_min: the floor keeping η̃ > 0.
      failed: whether the run gave up after `MAX_BAD_STEPS` non-finite steps in a row (bool).
      bound: the stability bound for the current X̃ (NaN where none applies; `BilevelSolver.bound`).
      bad_steps: non-finite steps in a row so far (int32); each halves η̃ and retries.
      bound_vec: the Gram matrix's top eigenvector where the bound is tracked, else shape (0,).
      pool: with ``config.model_pool``, the pool's parameter vectors stacked on axis 0 (else None).
      pool_age: inner steps each pool member has been trained (int32, (size,)), else None.
    """

    params: DistillParams
    opt_state: optax.OptState
    q: jax.Array          # active initialisations (int32)
    prev_loss: jax.Array  # last outer loss, for the q schedule
    step: jax.Array       # outer steps done (int32)
    eta_min: jax.Array    # floor keeping η̃ > 0
    failed: jax.Array     # MAX_BAD_STEPS non-finite steps in a row: the run gave up (bool)
    bound: jax.Array      # stability bound for the current X̃ (NaN where none applies, see BilevelSolver.bound)
    bad_steps: jax.Array  # non-finite steps in a row so far (int32); each halves η̃ and retries
    bound_vec: jax.Array  # top eigenvector of the Gram matrix where the bound is tracked, else shape (0,)
    pool: object = None   # config.model_pool: the pool's parameter vectors, stacked on axis 0 (else None)
    pool_age: object = None  # inner steps each pool member has been trained (int32, (size,)), else None


class StepMetrics(NamedTuple):
    """What one outer step reports (`BilevelSolver.step`'s second output).

    Attributes:
      loss: the outer loss, the mean over active θ₀ of L^(q) (Def. 2.5).
      data_loss: its data term alone (without λ_O).
      q: active initialisations.
      T: inner steps T_s of this step.
      eta: the η̃ used.
      stability_ratio: η̃ / the stability bound (NaN where no bound applies).
      finite: whether the step's loss and gradients were finite.
    """

    loss: jax.Array
    data_loss: jax.Array
    q: jax.Array
    T: jax.Array
    eta: jax.Array
    stability_ratio: jax.Array
    finite: jax.Array


def _check_transformations(optimizer, parts) -> None:
    for name, o in zip(("optimizer", "optimizer_x", "optimizer_y", "optimizer_eta"), (optimizer, *parts),
                       strict=True):
        if o is not None and not isinstance(o, optax.GradientTransformation):
            raise ValueError(f"{name} must be an optax.GradientTransformation (e.g. optax.adam(1e-2)), got {o!r}.")
    if optimizer is not None and any(p is not None for p in parts):
        raise ValueError("Pass either optimizer=... (one transformation over X̃, Ỹ, η̃) or the per-part "
                         "optimizer_x / optimizer_y / optimizer_eta, not both.")


def _parts(config: DistillConfig, optimizer_x=None, optimizer_y=None, optimizer_eta=None):
    """The per-part transformations of X̃, Ỹ, η̃ with unit learning rates, and the rates (3,) that scale them: a
    part the caller passed keeps its own rate (scaled by 1). The one builder behind `outer_optimizer` and
    `make_optimizer`."""
    base = optax.adam if config.outer_optimizer == "adam" else optax.sgd
    ox = base(1.0) if optimizer_x is None else optimizer_x
    oy = base(1.0) if optimizer_y is None else optimizer_y
    oe = optimizer_eta
    if oe is None:
        oe = optax.sgd(1.0) if config.lr_eta > 0 else optax.set_to_zero()
    lrs = np.asarray([config.lr_x if optimizer_x is None else 1.0, config.lr_y if optimizer_y is None else 1.0,
                      config.lr_eta if optimizer_eta is None else 1.0], np.float64)
    return {"x": ox, "y": oy, "eta": oe}, lrs


def _whole(config: DistillConfig, optimizer, parts):
    """The transformation used as given (``optimizer``, or L-BFGS over all three), or None."""
    _check_transformations(optimizer, parts)
    if optimizer is not None:
        return optimizer
    if config.outer_optimizer == "lbfgs":
        if any(p is not None for p in parts):
            raise ValueError("outer_optimizer='lbfgs' is one transformation over X̃, Ỹ and η̃; do not pass "
                             "optimizer_x / optimizer_y / optimizer_eta with it.")
        return optax.lbfgs()
    return None


def outer_optimizer(config: DistillConfig, optimizer=None, optimizer_x=None, optimizer_y=None, optimizer_eta=None):
    """(transformation, learning rates) for a run: the learning rates of the parts built from ``config``
    (``lr_x``, ``lr_y``, ``lr_eta``) are factored out of the transformation as an array (3,), which the
    [`BilevelSolver`][jaxdistill.BilevelSolver] applies to the updates as a traced value — so runs that differ only in
    them share one compiled step. ``None`` for the rates when a whole ``optimizer`` (or L-BFGS) is used as given.

    The updates equal [`make_optimizer`][jaxdistill.make_optimizer]'s to the last bit: ``optax.adam(lr)`` ends in
    ``scale(-lr)``, here ``scale(-1)`` and then a product with lr; negation is exact, so the products are equal.
    """
    parts = (optimizer_x, optimizer_y, optimizer_eta)
    whole = _whole(config, optimizer, parts)
    if whole is not None:
        return whole, None
    transforms, lrs = _parts(config, *parts)
    return optax.partition(transforms, DistillParams("x", "y", "eta")), lrs


def make_optimizer(config: DistillConfig, optimizer=None, optimizer_x=None, optimizer_y=None,
                   optimizer_eta=None) -> optax.GradientTransformation:
    """One transformation over [`DistillParams`][jaxdistill.DistillParams]: ``optimizer`` itself, or ``optax.partition``
    of the three per-part transformations (defaults: ``config.outer_optimizer`` — Adam, or eq. 7's plain
    gradient descent — with lr_x on X̃ and lr_y on Ỹ; gradient descent with lr_eta on η̃), each followed by
    its learning rate.

    [`distill`][jaxdistill.distill] uses `outer_optimizer`, which keeps the learning rates out of the compiled
    program; both are built from the same parts, and their updates are equal to the last bit.

    Args:
      config: the [`DistillConfig`][jaxdistill.DistillConfig] whose ``outer_optimizer``, ``lr_x``, ``lr_y`` and
        ``lr_eta`` make the defaults.
      optimizer: one optax transformation over all of (X̃, Ỹ, η̃), used as it is.
      optimizer_x: a transformation for X̃ alone (with learning rate 1: ``lr_x`` follows it); None: the default.
      optimizer_y: likewise for Ỹ (``lr_y``).
      optimizer_eta: likewise for η̃ (``lr_eta``).

    Returns:
      An ``optax.GradientTransformation`` over [`DistillParams`][jaxdistill.DistillParams].
    """
    parts = (optimizer_x, optimizer_y, optimizer_eta)
    whole = _whole(config, optimizer, parts)
    if whole is not None:
        return whole
    transforms, lrs = _parts(config, *parts)
    scaled = {k: optax.chain(t, optax.scale(float(lr))) for (k, t), lr in zip(transforms.items(), lrs, strict=True)}
    return optax.partition(scaled, DistillParams("x", "y", "eta"))


class BilevelSolver(Component):
    """Algorithm 1's outer loop: settings, inner solver and outer optimizer.

    Args:
      config: a [`DistillConfig`][jaxdistill.DistillConfig].
      inner_solver: how θ_T is computed ([`ExactLinearGD`][jaxdistill.ExactLinearGD],
        [`UnrolledGD`][jaxdistill.UnrolledGD], [`KernelRidge`][jaxdistill.KernelRidge]).
      optimizer: one ``optax.GradientTransformation`` over [`DistillParams`][jaxdistill.DistillParams]
        (see [`make_optimizer`][jaxdistill.make_optimizer] for the per-part shorthands).
      learning_rates: optional (lr_x, lr_y, lr_eta) multiplying the transformation's updates of X̃, Ỹ, η̃
        (`outer_optimizer` builds the transformation with unit rates and these): traced, so runs that
        differ only in them share one compilation.
    """

    def __init__(self, config: DistillConfig | StepConfig, inner_solver: InnerSolver,
                 optimizer: optax.GradientTransformation, learning_rates=None):
        if not isinstance(config, (DistillConfig, StepConfig)):
            raise ValueError(f"config must be a DistillConfig, got {type(config).__name__}.")
        if not isinstance(inner_solver, InnerSolver):
            raise ValueError(f"inner_solver must be a jaxdistill InnerSolver, got {inner_solver!r}.")
        self.config = StepConfig.of(config)      # only what fixes the compiled step
        self.inner_solver = inner_solver
        self.optimizer = optimizer if isinstance(optimizer, Fingerprinted) else Fingerprinted(optimizer)
        # (lr_x, lr_y, lr_eta) applied to the updates: a leaf of this pytree, so a traced value
        self.learning_rates = None if learning_rates is None else np.asarray(learning_rates, np.float64)

    @property
    def opt(self) -> optax.GradientTransformation:
        return self.optimizer.value

    # ------------------------------------------------------------------ state
    def bound(self, problem: Problem, x: jax.Array, y: jax.Array) -> jax.Array:
        """Largest stable inner learning rate of plain GD on the distilled set (x, y); NaN where none applies.

        ``model.gd_stability_bound``: Lemma 2.4, eq. (5), exactly, for models linear in θ; its analogue
        2/λ_max of the inner Hessian at a fixed θ₀ for other models trained by plain GD. Inner optimizers
        other than GD, and procedures without η̃ on nonlinear models, have no such bound: NaN.
        """
        model, solver = problem.model, self.inner_solver
        if not solver.plain_gd or not (solver.uses_eta or model.linear_in_params):
            return jnp.asarray(jnp.nan, x.dtype)
        return model.gd_stability_bound(model.featurize(x), y, problem.lambda_inner)

    def tracks_bound(self, problem: Problem, x: jax.Array) -> bool:
        """Whether the bound is tracked between exact refreshes (``config.exact_bound_every``): plain GD on a
        model linear in θ with r = min(m, p) ≥ ``TRACK_MIN_RANK`` (static: decided by shapes)."""
        if self.config.exact_bound_every <= 1 or not problem.model.linear_in_params or not self.inner_solver.plain_gd:
            return False
        p = problem.model.num_features(x.shape[1], x.dtype)
        return min(x.shape[0], p) >= TRACK_MIN_RANK

    def bound_state(self, problem: Problem, x, y, vec=None, step=None):
        """(stability bound, tracking vector) for X̃ = x. Exact where the bound is not tracked (vector of
        shape (0,)); where it is, exact at the start and every ``exact_bound_every`` steps, else tracked from
        ``vec`` by `gram_top_tracked` (an upper estimate of σ²_max, so a bound at or below the exact one
        while the tracking holds; ``benchmarks/results/bound_tracking.md`` measures how close)."""
        if not self.tracks_bound(problem, x):
            return self.bound(problem, x, y), jnp.zeros((0,), x.dtype)
        F = jax.lax.stop_gradient(problem.model.featurize(x))
        if vec is None:
            top, vec = gram_top_eigenpair(F)
        else:
            top, vec = jax.lax.cond(step % self.config.exact_bound_every == 0, lambda: gram_top_eigenpair(F),
                                    lambda: gram_top_tracked(F, vec, TRACK_LANCZOS_STEPS))
        return bound_from_top(top, F.shape[0], problem.lambda_inner).astype(x.dtype), vec

    def init(self, problem: Problem, params: DistillParams, key: jax.Array | None = None) -> DistillState:
        """The initial outer-loop state for initial parameters (pure; jit-able). ``key`` draws the model
        pool's members (needed only with ``config.model_pool``)."""
        bound, vec = self.bound_state(problem, params.x, params.y)
        pool = age = None
        if self.config.model_pool is not None:
            if key is None:
                raise ValueError("A model pool needs a key for its initial members: init(problem, params, key).")
            mp, model = self.config.model_pool, problem.model
            pool = model.sample_init(key, model.featurize(params.x), params.y.shape[1], mp.size)
            age = (jnp.arange(mp.size) * mp.max_age // mp.size).astype(jnp.int32)   # resets spread over time
        return DistillState(
            params=params, opt_state=self.opt.init(params), q=jnp.asarray(self.config.Q, jnp.int32),
            prev_loss=jnp.asarray(jnp.inf, params.x.dtype), step=jnp.asarray(0, jnp.int32),
            eta_min=self.config.eta_floor * params.eta, failed=jnp.asarray(False),
            bound=bound, bad_steps=jnp.asarray(0, jnp.int32), bound_vec=vec, pool=pool, pool_age=age)

    def _advance_pool(self, problem: Problem, state: DistillState, idx, new: DistillParams, key):
        """The members ``idx`` trained ``advance`` more inner steps on the updated set (no gradient); those
        that reach ``max_age`` replaced by fresh draws. Returns (pool, ages)."""
        mp, model = self.config.model_pool, problem.model
        new = jax.lax.stop_gradient(new)
        F = model.featurize(new.x)
        chosen = jax.tree_util.tree_map(lambda a: a[idx], state.pool)
        trained = self.inner_solver.solve(model, Support(F, new.y, new.eta, problem.lambda_inner), chosen,
                                          mp.advance, mp.advance).thetas
        age = state.pool_age[idx] + mp.advance
        fresh = model.sample_init(key, F, new.y.shape[1], idx.shape[0])
        old = age >= mp.max_age
        trained = jax.tree_util.tree_map(
            lambda t, f: jnp.where(old.reshape((-1,) + (1,) * (t.ndim - 1)), f, t), trained, fresh)
        pool = jax.tree_util.tree_map(lambda P, t: P.at[idx].set(t.astype(P.dtype)), state.pool, trained)
        return pool, state.pool_age.at[idx].set(jnp.where(old, 0, age))

    # ------------------------------------------------------------------ losses
    @staticmethod
    def support(problem: Problem, params: DistillParams) -> Support:
        """The distilled set as the inner solver sees it: Φ(X̃), Ỹ, η̃, λ_I."""
        return Support(problem.model.featurize(params.x), params.y, params.eta, problem.lambda_inner)

    def outer_loss(self, problem: Problem, params: DistillParams, XB, YB, theta0s, mask, num_steps):
        """Σ_q (or mean over q) of L^(q) = data term + λ_O/2 (‖X̃‖² + ‖Ỹ‖²) (Def. 2.5, eq. 7).

        Returns (objective, (mean L^(q), mean data term)) over the active initialisations.
        """
        cfg, model = self.config, problem.model
        sol = self.inner_solver.solve(model, self.support(problem, params), theta0s, num_steps, cfg.max_T)
        FB = model.featurize(XB) if problem.objective.needs_batch else None
        data = problem.objective.data_losses(sol, model, FB, YB)
        reg = 0.5 * problem.lambda_outer * (jnp.sum(params.x ** 2) + jnp.sum(params.y ** 2))
        q = jnp.sum(mask)
        total = jnp.sum(jnp.where(mask, data + reg, 0.0))
        data_mean = jnp.sum(jnp.where(mask, data, 0.0)) / q
        return (total if cfg.reduction == "sum" else total / q), (total / q, data_mean)

    def evaluation_losses(self, problem: Problem, params: DistillParams, Xv, Yv, key, num_steps, mesh=None,
                          Xm=None, Ym=None):
        """(held-out loss, training objective) after one inner solve from ``max_q`` fixed θ₀ draws, no λ_O.

        The held-out loss is the row objective's data term on (Xv, Yv) (``None`` when Xv is None); the
        training objective that of an objective carrying its data, e.g. ``FullDataLoss``, or for objectives
        that need a batch the row objective's data term on fixed training rows (Xm, Ym) (``None`` when they
        are not given). With the θ₀ draws and rows fixed, both are deterministic functions of the distilled set.
        One compilation serves both. With a ``mesh`` (see `sharding`) the θ₀ draws
        are split over its ``"q"`` axis.
        """
        model = problem.model
        F = model.featurize(params.x)
        theta0s = sharding.split_leading(model.sample_init(key, F, params.y.shape[1], self.config.max_q), mesh,
                                         sharding.Q_AXIS)
        sol = self.inner_solver.solve(model, Support(F, params.y, params.eta, problem.lambda_inner), theta0s,
                                      num_steps, self.config.max_T)
        held = None if Xv is None else jnp.mean(
            problem.objective.row_objective().data_losses(sol, model, model.featurize(Xv), Yv))
        if not problem.objective.needs_batch:
            train = jnp.mean(problem.objective.data_losses(sol, model, None, None))
        elif Xm is not None:
            train = jnp.mean(problem.objective.row_objective().data_losses(sol, model, model.featurize(Xm), Ym))
        else:
            train = None
        return held, train

    # ------------------------------------------------------------------ one outer step
    def step(self, problem: Problem, state: DistillState, XB, YB, run_key: jax.Array, mesh=None):
        """One outer step (Algorithm 1 lines 4–13 and the A.7 schedules) on the batch (XB, YB). Pure.

        ``XB``, ``YB`` are ``None`` for objectives that carry their data (``objective.needs_batch`` False).

        With a ``mesh`` the Q initialisations are split over its ``"q"`` axis (each device trains Q/k inner
        models) and the batch rows over its ``"batch"`` axis; the sums over them become all-reduces. The
        draws themselves do not depend on the mesh."""
        cfg = self.config
        p = state.params
        s = state.step + 1
        _, k_theta = jax.random.split(jax.random.fold_in(run_key, s))
        if cfg.model_pool is None:
            theta0s = problem.model.sample_init(k_theta, problem.model.featurize(p.x[:1]), p.y.shape[-1], cfg.max_q)
        else:                                   # FRePo: start from Q members of the pool of partly trained models
            pool_idx = jax.random.choice(jax.random.fold_in(k_theta, 2), cfg.model_pool.size, (cfg.max_q,),
                                         replace=False)
            theta0s = jax.tree_util.tree_map(lambda a: a[pool_idx], state.pool)
        theta0s = sharding.split_leading(theta0s, mesh, sharding.Q_AXIS)
        if problem.objective.needs_batch:
            XB, YB = sharding.split_leading((XB, YB), mesh, sharding.BATCH_AXIS)
        mask = jnp.arange(cfg.max_q) < state.q
        num_steps = self.inner_solver.training_steps(problem.model, jax.random.fold_in(k_theta, 1), cfg.T_at(s))

        (obj, (loss, data_loss)), grads = jax.value_and_grad(self.outer_loss, argnums=1, has_aux=True)(
            problem, p, XB, YB, theta0s, mask, num_steps)
        if isinstance(self.opt, optax.GradientTransformationExtraArgs):
            # line-search optimizers (optax.lbfgs) re-evaluate the objective of this step's batch and θ₀ draws
            def value_fn(params):
                return self.outer_loss(problem, params, XB, YB, theta0s, mask, num_steps)[0]
            updates, opt_state = self.opt.update(grads, state.opt_state, p, value=obj, grad=grads,
                                                 value_fn=value_fn)
        else:
            updates, opt_state = self.opt.update(grads, state.opt_state, p)
        if self.learning_rates is not None:
            lr = self.learning_rates
            updates = DistillParams(*(u * lr[i].astype(u.dtype) for i, u in enumerate(updates)))
        new = optax.apply_updates(p, updates)
        if problem.x_keep is not None:          # columns constant over the training rows stay at their value, 0
            new = new._replace(x=new.x * problem.x_keep.astype(new.x.dtype))
        # carried in the state: next step's ratio reuses it
        new_bound, new_vec = self.bound_state(problem, new.x, new.y, state.bound_vec, s)
        new = new._replace(eta=self._project_eta(problem, new.eta, state.eta_min, new_bound))
        finite = jnp.isfinite(loss) & all_finite(grads) & all_finite(new)

        q = state.q
        if cfg.q_schedule is not None:
            grew = loss >= cfg.q_schedule.threshold * state.prev_loss
            q = jnp.where(grew, jnp.minimum(q + 1, cfg.q_schedule.max_q), q)

        pool, pool_age = state.pool, state.pool_age
        if cfg.model_pool is not None:
            pool, pool_age = self._advance_pool(problem, state, pool_idx, new, jax.random.fold_in(k_theta, 3))
            pool, pool_age = tree_where(finite, (pool, pool_age), (state.pool, state.pool_age))

        bad = jnp.where(finite, 0, state.bad_steps + 1)
        # a non-finite step is retried with half the inner learning rate (the usual cause: η̃ past the edge
        # of stability of a nonlinear inner loss, which the local bound at θ₀ cannot foresee)
        retry = p._replace(eta=jnp.maximum(0.5 * p.eta, state.eta_min))
        new_state = DistillState(
            params=tree_where(finite, new, retry), opt_state=tree_where(finite, opt_state, state.opt_state),
            q=jnp.where(finite, q, state.q),
            prev_loss=jnp.where(finite, loss, state.prev_loss), step=jnp.where(finite, s, state.step),
            eta_min=state.eta_min, failed=bad >= MAX_BAD_STEPS, bound=jnp.where(finite, new_bound, state.bound),
            bad_steps=bad, bound_vec=jnp.where(finite, new_vec, state.bound_vec), pool=pool, pool_age=pool_age)
        metrics = StepMetrics(loss, data_loss, state.q, jnp.asarray(num_steps, jnp.int32), p.eta,
                              p.eta / state.bound, finite)
        return new_state, metrics

    def _project_eta(self, problem, eta, eta_min, bound):
        """η̃ ∈ [η̃_min, cap · bound] (the cap where a stability bound applies): positive and stable."""
        eta = jnp.maximum(eta, eta_min)
        if self.config.eta_cap is not None:
            eta = jnp.where(jnp.isnan(bound), eta, jnp.minimum(eta, self.config.eta_cap * bound))
        return eta
