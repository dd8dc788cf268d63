"""The bilevel solver: Algorithm 1 of the regression paper (appendix A.3), jit-compiled.

One outer step (lines 4–13): sample a batch of b real pairs and Q initialisations θ₀ ~ p(θ₀); run
the inner solver (T steps of gradient descent as a ``lax.scan``, ``vmap``ped over θ₀); evaluate the
outer loss of Def. 2.5 on the batch; take ``jax.grad`` through the inner loop with respect to X̃, Ỹ
and η̃; update each with its own optax transformation (plain gradient descent by default, eq. 7).

:meth:`BilevelSolver.step` is a pure function of (state, data, key). :meth:`BilevelSolver.run`
executes ``eval_every`` steps per call of one compiled ``lax.scan`` (one compilation for the whole
run: the q and T schedules are masks, and the final partial chunk is padded with no-op steps).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdistill._src.config import DistillConfig
from jaxdistill._src.inner import InnerSolver, default_inner_solver
from jaxdistill._src.models import InnerModel, LinearModel, stability_bound


class DistillParams(NamedTuple):
    """What the outer loop learns: X̃ (m, d), Ỹ (m, d_out), η̃ (scalar)."""

    x: jax.Array
    y: jax.Array
    eta: jax.Array


class DistillState(NamedTuple):
    """Carry of the outer loop."""

    params: DistillParams
    opt_state: tuple
    q: jax.Array          # active initialisations (int32)
    prev_loss: jax.Array  # last outer loss, for the q schedule
    step: jax.Array       # outer steps done (int32)
    eta_min: jax.Array    # floor keeping η̃ > 0
    failed: jax.Array     # a non-finite loss or gradient was met (bool)
    bound: jax.Array      # stability bound of Lemma 2.4 for the current X̃ (NaN if not linear in θ)


class StepMetrics(NamedTuple):
    """Per-step record: outer loss (mean over active θ₀ of L^(q), Def. 2.5), its data term
    1/(2b)‖f_{θ_T}(X_B) − Y_B‖² alone, q, T_s, η̃ used, η̃ / stability bound (NaN for models not
    linear in θ), and whether the step was finite."""

    loss: jax.Array
    data_loss: jax.Array
    q: jax.Array
    T: jax.Array
    eta: jax.Array
    stability_ratio: jax.Array
    finite: jax.Array


class BilevelSolver:
    """Algorithm 1 with its inner solver and outer optimizers.

    Args:
      config: a :class:`DistillConfig`.
      model: the inner model (default: :class:`LinearModel` with identity features, θ₀ ~ N(0, I)).
      inner_solver: how θ_T is computed (default: :class:`ExactLinearGD` for models linear in θ, which
        is exact and T-independent; :class:`UnrolledGD`, the scan, otherwise).
      optimizer_x, optimizer_y, optimizer_eta: any ``optax.GradientTransformation``; the defaults are
        plain gradient descent ``optax.sgd(lr)`` with ``config.lr_x``, ``lr_y``, ``lr_eta`` (eq. 7 and
        Algorithm 1 line 13). With ``lr_eta = 0`` and no ``optimizer_eta``, η̃ stays fixed.
    """

    def __init__(self, config: DistillConfig, model: InnerModel | None = None,
                 inner_solver: InnerSolver | None = None,
                 optimizer_x: optax.GradientTransformation | None = None,
                 optimizer_y: optax.GradientTransformation | None = None,
                 optimizer_eta: optax.GradientTransformation | None = None):
        self.config = config
        self.model = LinearModel() if model is None else model
        self.inner_solver = default_inner_solver(self.model) if inner_solver is None else inner_solver
        self.inner_solver.check(self.model)
        self.opt_x = optax.sgd(config.lr_x) if optimizer_x is None else optimizer_x
        self.opt_y = optax.sgd(config.lr_y) if optimizer_y is None else optimizer_y
        if optimizer_eta is None:
            optimizer_eta = optax.sgd(config.lr_eta) if config.lr_eta > 0 else optax.set_to_zero()
        self.opt_eta = optimizer_eta
        self.num_traces = 0  # how many times the chunk runner was traced (compilations)
        self._run_chunk = jax.jit(self._chunk)

    # ----------------------------------------------------------------- initial state
    def init_params(self, key: jax.Array, X: jax.Array, Y: jax.Array) -> DistillParams:
        """X̃₀, Ỹ₀ (Algorithm 1 line 2) and η̃₀ (line 1); checks η̃₀ against Lemma 2.4."""
        cfg = self.config
        n = X.shape[0]
        kx, ky = jax.random.split(key)
        if cfg.init == "real":
            idx = jax.random.choice(kx, n, (cfg.m,), replace=False)
            x0, y0 = X[idx], Y[idx]
        else:
            x0 = cfg.init_std * jax.random.normal(kx, (cfg.m, X.shape[1]), X.dtype)
            y0 = cfg.init_std * jax.random.normal(ky, (cfg.m, Y.shape[1]), Y.dtype)
        eta0 = self._initial_eta(x0)
        return DistillParams(x0, y0, jnp.asarray(eta0, X.dtype))

    def _initial_eta(self, x0) -> float:
        cfg = self.config
        if not self.model.linear_in_params:
            return 0.01 if cfg.inner_lr is None else cfg.inner_lr
        bound = float(stability_bound(self.model.featurize(x0), cfg.lambda_inner))
        if cfg.inner_lr is None:
            return 0.5 * bound
        if cfg.inner_lr >= bound:
            raise ValueError(
                f"inner_lr = {cfg.inner_lr:g} is at or above the stability bound of Lemma 2.4, "
                f"η̃ < 2m/(σ²_max + mλ_I) = {bound:.6g}, for the initial distilled set: the inner loop "
                f"would diverge. Choose inner_lr < {bound:.6g} (e.g. {0.5 * bound:.3g}), or "
                "inner_lr=None to use half the bound.")
        return cfg.inner_lr

    def init(self, key: jax.Array, X: jax.Array, Y: jax.Array,
             params: DistillParams | None = None) -> DistillState:
        """Initial outer-loop state (``params`` overrides the random initial distilled set)."""
        params = self.init_params(key, X, Y) if params is None else params
        opt_state = (self.opt_x.init(params.x), self.opt_y.init(params.y), self.opt_eta.init(params.eta))
        return DistillState(
            params=params, opt_state=opt_state, q=jnp.asarray(self.config.Q, jnp.int32),
            prev_loss=jnp.asarray(jnp.inf, X.dtype), step=jnp.asarray(0, jnp.int32),
            eta_min=self.config.eta_floor * params.eta, failed=jnp.asarray(False),
            bound=self._bound(params.x))

    def _bound(self, x):
        """Stability bound of Lemma 2.4 for distilled inputs x; NaN for models not linear in θ."""
        if not self.model.linear_in_params:
            return jnp.asarray(jnp.nan, x.dtype)
        return stability_bound(jax.lax.stop_gradient(self.model.featurize(x)), self.config.lambda_inner)

    # ----------------------------------------------------------------- losses
    def sample_theta0(self, key: jax.Array, F: jax.Array, d_out: int, num: int):
        """``num`` draws θ₀ ~ p(θ₀), stacked on axis 0 (Algorithm 1 line 5)."""
        return jax.vmap(lambda k: self.model.init(k, F, d_out))(jax.random.split(key, num))

    def outer_loss(self, params: DistillParams, XB, YB, theta0s, mask, num_steps):
        """Σ_q (or mean over q) of L^(q) = 1/(2b)‖f_{θ_T^(q)}(X_B) − Y_B‖² + λ_O/2 (‖X̃‖² + ‖Ỹ‖²).

        Def. 2.5 summed over the active initialisations as in eq. (7). Returns (objective, (mean L^(q),
        mean data term)).
        """
        cfg = self.config
        F = self.model.featurize(params.x)
        FB = self.model.featurize(XB)
        data = self.inner_solver.data_losses(self.model, F, params.y, params.eta, cfg.lambda_inner,
                                             theta0s, FB, YB, num_steps, cfg.max_T)
        reg = 0.5 * cfg.lambda_outer * (jnp.sum(params.x ** 2) + jnp.sum(params.y ** 2))
        per_q = data + reg
        q = jnp.sum(mask)
        total = jnp.sum(jnp.where(mask, per_q, 0.0))
        mean = total / q
        data_mean = jnp.sum(jnp.where(mask, data, 0.0)) / q
        return (total if cfg.reduction == "sum" else mean), (mean, data_mean)

    # ----------------------------------------------------------------- one outer step
    def step(self, state: DistillState, X: jax.Array, Y: jax.Array, run_key: jax.Array):
        """One outer step (Algorithm 1 lines 4–13 and the A.7 schedules). Pure; jit-able."""
        cfg = self.config
        p = state.params
        s = state.step + 1
        k_batch, k_theta = jax.random.split(jax.random.fold_in(run_key, s))
        b = min(cfg.batch_size, X.shape[0])
        idx = jax.random.choice(k_batch, X.shape[0], (b,), replace=False)
        XB, YB = X[idx], Y[idx]
        theta0s = self.sample_theta0(k_theta, self.model.featurize(p.x[:1]), Y.shape[1], cfg.max_q)
        mask = jnp.arange(cfg.max_q) < state.q
        num_steps = cfg.T_at(s)

        (_, (loss, data_loss)), grads = jax.value_and_grad(self.outer_loss, has_aux=True)(
            p, XB, YB, theta0s, mask, num_steps)
        ux, sx = self.opt_x.update(grads.x, state.opt_state[0], p.x)
        uy, sy = self.opt_y.update(grads.y, state.opt_state[1], p.y)
        ue, se = self.opt_eta.update(grads.eta, state.opt_state[2], p.eta)
        new_x = optax.apply_updates(p.x, ux)
        new_bound = self._bound(new_x)  # carried in the state: next step's ratio reuses it
        new_eta = jnp.maximum(optax.apply_updates(p.eta, ue), state.eta_min)
        if cfg.eta_cap is not None and self.model.linear_in_params:
            new_eta = jnp.minimum(new_eta, cfg.eta_cap * new_bound)
        new_params = DistillParams(new_x, optax.apply_updates(p.y, uy), new_eta)
        finite = jnp.isfinite(loss) & _all_finite(grads) & _all_finite(new_params)

        q = state.q
        if cfg.q_schedule is not None:
            grew = loss >= cfg.q_schedule.threshold * state.prev_loss
            q = jnp.where(grew, jnp.minimum(q + 1, cfg.q_schedule.max_q), q)

        ratio = p.eta / state.bound  # NaN for models not linear in θ

        keep = lambda new, old: jax.tree_util.tree_map(lambda a, c: jnp.where(finite, a, c), new, old)  # noqa: E731
        new_state = DistillState(
            params=keep(new_params, p), opt_state=keep((sx, sy, se), state.opt_state),
            q=jnp.where(finite, q, state.q), prev_loss=jnp.where(finite, loss, state.prev_loss),
            step=jnp.where(finite, s, state.step), eta_min=state.eta_min, failed=~finite,
            bound=jnp.where(finite, new_bound, state.bound))
        metrics = StepMetrics(loss, data_loss, state.q, jnp.asarray(num_steps, jnp.int32), p.eta, ratio, finite)
        return new_state, metrics

    def _chunk(self, state, X, Y, run_key, valid):
        """``len(valid)`` outer steps in one ``lax.scan``; steps with valid=False are no-ops."""
        self.num_traces += 1

        def body(st, v):
            def skip(st):
                nan = jnp.asarray(jnp.nan, st.params.eta.dtype)
                return st, StepMetrics(nan, nan, st.q, jnp.asarray(0, jnp.int32), nan, nan, jnp.asarray(False))
            return jax.lax.cond(v & ~st.failed, lambda st: self.step(st, X, Y, run_key), skip, st)

        return jax.lax.scan(body, state, valid)

    # ----------------------------------------------------------------- held-out loss
    def held_out_loss(self, params: DistillParams, Xv, Yv, key, num_steps) -> jax.Array:
        """Mean over ``max_q`` fixed θ₀ draws of 1/(2n)‖f_{θ_T}(X_v) − Y_v‖² (no λ_O term)."""
        cfg = self.config
        F = self.model.featurize(params.x)
        theta0s = self.sample_theta0(key, F[:1], Yv.shape[1], cfg.max_q)
        losses = self.inner_solver.data_losses(self.model, F, params.y, params.eta, cfg.lambda_inner,
                                               theta0s, self.model.featurize(Xv), Yv, num_steps, cfg.max_T)
        return jnp.mean(losses)

    # ----------------------------------------------------------------- the run
    def run(self, state: DistillState, X, Y, run_key, validation=None,
            progress: Callable[[dict[str, Any]], None] | None = None, stop_at: int | None = None,
            history: dict | None = None, on_chunk: Callable[[DistillState, dict], None] | None = None):
        """Run outer steps until ``config.steps`` (or ``stop_at``) are done or a step is non-finite.

        Step s draws its randomness from ``fold_in(run_key, s)``, so a run split into segments with
        ``stop_at`` and resumed from the returned state is identical to an uninterrupted run.

        Returns (final_state, history) with history a dict of numpy arrays: per step ``loss``,
        ``data_loss``, ``q``, ``T``, ``eta``, ``stability_ratio``; per evaluation ``eval_step``,
        ``val_loss``. ``history`` (from an earlier segment) is extended; ``on_chunk(state, history)``
        is called on the host after every compiled chunk (checkpointing, logging).
        """
        cfg = self.config
        chunk = min(cfg.eval_every, cfg.steps)
        eval_fn = jax.jit(self.held_out_loss) if validation is not None else None
        eval_key = jax.random.fold_in(run_key, 0)  # steps use s >= 1
        fields = [f for f in StepMetrics._fields if f != "finite"]
        prev = history or {}
        recs = [{f: np.asarray(prev[f]) for f in fields}] if prev.get("loss") is not None else []
        eval_steps = list(np.asarray(prev.get("eval_step", []), np.int64))
        val_losses = list(np.asarray(prev.get("val_loss", []), np.float64))

        def assemble():
            hist = {f: np.concatenate([r[f] for r in recs]) if recs else np.zeros(0) for f in fields}
            hist["eval_step"] = np.asarray(eval_steps, np.int64)
            hist["val_loss"] = np.asarray(val_losses, np.float64)
            return hist

        t0 = time.perf_counter()
        done = int(state.step)
        last = cfg.steps if stop_at is None else min(stop_at, cfg.steps)
        if eval_fn is not None and done == 0:
            eval_steps.append(0)
            val_losses.append(float(eval_fn(state.params, validation[0], validation[1], eval_key, cfg.T_at(1))))
        while done < last and not bool(state.failed):
            n_valid = min(chunk, last - done)
            valid = jnp.arange(chunk) < n_valid
            state, met = self._run_chunk(state, X, Y, run_key, valid)
            met = jax.tree_util.tree_map(np.asarray, met)
            ok = met.finite
            recs.append({f: getattr(met, f)[ok] for f in fields})
            done = int(state.step)
            info = {"step": done, "steps": cfg.steps, "loss": float(met.loss[ok][-1]) if ok.any() else float("nan"),
                    "eta": float(state.params.eta), "elapsed": time.perf_counter() - t0}
            if eval_fn is not None:
                v = float(eval_fn(state.params, validation[0], validation[1], eval_key, cfg.T_at(max(done, 1))))
                eval_steps.append(done)
                val_losses.append(v)
                info["val_loss"] = v
            if on_chunk is not None:
                on_chunk(state, assemble())
            if progress is not None:
                progress(info)
        return state, assemble()


def _all_finite(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))
