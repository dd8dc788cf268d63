"""The driver: runs the pure outer step in compiled chunks, with held-out evaluation, progress,
checkpoint hooks and a status. Everything that touches the host lives here, not in the step.

Compiled functions are module-level ``jax.jit``s whose arguments are the solver and problem pytrees,
so every run with equal settings and shapes reuses them (a second ``distill()`` compiles nothing).
A chunk executes ``eval_every`` steps in one ``lax.scan``; the final partial chunk is padded with
no-op steps (one compilation per run whatever its length, schedules included). Batches for a chunk
are drawn on the device as indices (step s uses ``fold_in(run_key, s)``), gathered on the host and
sent with the chunk; full-batch runs (b ≥ n_train) keep the training rows on the device instead.

With a ``mesh`` (:mod:`~jaxdistill._src.core.sharding`) the same functions run over its devices: state and
problem replicated, each batch's rows split over the ``"batch"`` axis, the θ₀ draws over ``"q"``. Across
several processes every process runs this driver on the same (replicated) host data; only process 0
writes checkpoints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxdistill._src.core import sharding
from jaxdistill._src.outer.step import BilevelSolver, DistillParams, DistillState, StepMetrics
from jaxdistill._src.outer.stopping import Tracker
from jaxdistill._src.problem.data import TrainData, standardize_on_device
from jaxdistill._src.problem.problem import Problem

#: η̃₀ where no stability bound applies (an inner optimizer other than GD): a scale for updates of lr 1
DEFAULT_ETA = 0.01
#: how many times each compiled function was traced in this process (compilations of new settings)
TRACES = {"chunk": 0, "init": 0, "held_out": 0}



@partial(jax.jit, static_argnames=("full_batch", "mesh"))
def _run_chunk(solver: BilevelSolver, problem: Problem, state: DistillState, XB, YB, stats, run_key, valid,
               full_batch: bool, mesh=None):
    """``len(valid)`` outer steps in one ``lax.scan``; steps with valid=False are no-ops. Batches (chunk, b, ·)
    are raw rows standardised here when ``stats`` is given, else already standardised."""
    TRACES["chunk"] += 1

    def body(st, xs):
        v, xb, yb = xs if not full_batch else (xs, XB, YB)
        if stats is not None:
            xb, yb = standardize_on_device(stats, xb, yb)

        def skip(st):
            nan = jnp.asarray(jnp.nan, st.params.eta.dtype)
            return st, StepMetrics(nan, nan, st.q, jnp.asarray(0, jnp.int32), nan, nan, jnp.asarray(False))

        return jax.lax.cond(v & ~st.failed, lambda st: solver.step(problem, st, xb, yb, run_key, mesh), skip, st)

    # what comes back is whole on every device (and process): the host reads it
    return sharding.replicated(jax.lax.scan(body, state, valid if full_batch else (valid, XB, YB)), mesh)


@partial(jax.jit, static_argnames=("chunk", "b"))
def _draw_indices(run_key, start, n_train, chunk: int, b: int):
    """Batch row indices (chunk, b) for steps start+1 … start+chunk: uniform, with replacement."""
    def one(s):
        k_batch, _ = jax.random.split(jax.random.fold_in(run_key, s))
        return jax.random.randint(k_batch, (b,), 0, n_train)
    return jax.vmap(one)(start + 1 + jnp.arange(chunk))


@partial(jax.jit, static_argnames=("mesh",))
def _init(solver: BilevelSolver, problem: Problem, x0, y0, eta0, key, mesh=None):
    """Initial state; where ``eta0`` is negative (``inner_lr=None``) η̃₀ = half the stability bound, or
    ``DEFAULT_ETA`` where no bound applies (inner optimizers other than GD)."""
    TRACES["init"] += 1
    bound = solver.bound(problem, x0, y0)
    eta = jnp.where(eta0 < 0, jnp.where(jnp.isnan(bound), DEFAULT_ETA, 0.5 * bound), eta0).astype(x0.dtype)
    return sharding.replicated((solver.init(problem, DistillParams(x0, y0, eta), key), bound), mesh)


@partial(jax.jit, static_argnames=("mesh",))
def _evaluate(solver, problem, params, Xv, Yv, y1, key, num_steps, mesh=None, Xm=None, Ym=None):
    TRACES["held_out"] += 1
    return sharding.replicated(
        solver.evaluation_losses(problem, params, Xv, Yv, y1, key, num_steps, mesh, Xm, Ym), mesh)


#: how each monitor mode is named in results and summaries
MONITOR_LABELS = {"held_out": "held-out loss", "objective": "exact training objective",
                  "train_loss": "training loss (fixed rows and θ₀ draws)"}


def monitor_mode(config, problem: Problem, has_validation: bool) -> str:
    """What the stopping rule watches: ``held_out`` (the held-out loss), ``objective`` (the exact,
    deterministic training objective, for objectives that carry their data) or ``train_loss`` (for
    sampled objectives: the loss on up to ``batch_size`` fixed training rows after training from fixed θ₀
    draws, a deterministic function of the distilled set)."""
    if config.monitor == "held_out" and has_validation:
        return "held_out"
    return "train_loss" if problem.objective.needs_batch else "objective"


def _initial_indices(config, data: TrainData, key: jax.Array) -> np.ndarray:
    """Positions among the training rows of the m rows that start X̃₀ when ``init="real"``."""
    return np.asarray(jax.random.choice(jax.random.split(key)[0], data.n_train, (config.m,), replace=False))


def initial_rows(config, data: TrainData, key: jax.Array) -> np.ndarray | None:
    """Rows of the caller's X that start X̃₀ (``init="real"``), or None for a random start."""
    return data.train[_initial_indices(config, data, key)] if config.init == "real" else None


def initial_params(solver: BilevelSolver, problem: Problem, data: TrainData, key: jax.Array,
                   mesh=None) -> DistillState:
    """X̃₀, Ỹ₀ (Algorithm 1 line 2) and η̃₀ (line 1) and the initial state; checks η̃₀ against Lemma 2.4."""
    cfg = solver.config
    kx, ky = jax.random.split(key)
    if cfg.init == "real":
        x0, y0 = data.rows(_initial_indices(cfg, data, key))
    else:
        x0 = cfg.init_std * jax.random.normal(kx, (cfg.m, data.d), data.dtype)
        y0 = cfg.init_std * jax.random.normal(ky, (cfg.m, data.d_out), data.dtype)
    eta0 = cfg.inner_lr if cfg.inner_lr is not None else -1.0   # not NaN: processes compare what they place
    put = partial(sharding.put_replicated, mesh=mesh)
    k_pool = jax.random.fold_in(key, 7)                 # the model pool's initial members (if any)
    state, bound = _init(put(solver), put(problem), put(x0), put(y0), put(jnp.asarray(eta0, data.dtype)),
                         put(k_pool), mesh)
    if cfg.inner_lr is not None and solver.inner_solver.uses_eta and cfg.inner_lr >= float(bound):
        b = float(bound)
        which = ("the stability bound of Lemma 2.4, η̃ < 2m/(σ²_max + mλ_I)" if problem.model.linear_in_params else
                 "the stability bound of plain GD on this nonlinear model, η̃ < 2/λ_max of the inner loss's "
                 "Hessian at θ₀")
        raise ValueError(
            f"inner_lr = {cfg.inner_lr:g} is at or above {which} = {b:.6g}, for the initial distilled set: the "
            f"inner loop would diverge. Choose inner_lr < {b:.6g} (e.g. {0.5 * b:.3g}), or "
            "inner_lr=None to use half the bound.")
    return state


def status_of(state: DistillState, history: dict, tracker: Tracker) -> str:
    """The run's status (see :mod:`jaxdistill._src.outer.stopping`)."""
    crossed = np.nanmax(np.append(history["stability_ratio"], 0.0)) >= 1.0
    return tracker.status(bool(state.failed), bool(crossed))


def make_tracker(config) -> Tracker:
    return Tracker(config.patience, config.min_improvement, config.divergence_factor)


def run(solver: BilevelSolver, problem: Problem, data: TrainData, state: DistillState, run_key: jax.Array,
        progress: Callable[[dict[str, Any]], None] | None = None, stop_at: int | None = None,
        history: dict | None = None, on_chunk: Callable[[DistillState, dict, Tracker], None] | None = None,
        tracker: Tracker | None = None, mesh=None):
    """Run outer steps until ``config.steps`` (or ``stop_at``) are done, the stopping rule ends the run
    (``tracker``, see :mod:`~jaxdistill._src.outer.stopping`) or a step is non-finite.

    Step s draws its randomness from ``fold_in(run_key, s)``, so a run split into segments and resumed
    from the returned state (and tracker) is identical to an uninterrupted run.

    Returns (final_state, history, tracker), history a dict of numpy arrays: per step ``loss``,
    ``data_loss``, ``q``, ``T``, ``eta``, ``stability_ratio``; per evaluation ``eval_step``,
    ``monitored`` (the loss the stopping rule watches, see :func:`monitor_mode`), ``eval_time``
    (seconds since the run started, compilation included) and ``val_loss`` (the held-out loss, when
    rows are held out; else empty).
    ``history`` from an earlier segment is extended; ``on_chunk(state, history, tracker)`` is called
    after every chunk. ``mesh``: run over these devices (see :mod:`~jaxdistill._src.core.sharding`).
    """
    put = partial(sharding.put_replicated, mesh=mesh)
    solver, problem, state = put(solver), put(problem), put(state)
    cfg = solver.config
    chunk = min(cfg.eval_every, cfg.steps)
    b = min(cfg.batch_size, data.n_train)
    if not problem.objective.needs_batch:   # the objective carries its data: send a 1-row placeholder
        full_batch, full = True, (jnp.zeros((1, data.d), data.dtype), jnp.zeros((1, data.d_out), data.dtype))
    else:
        full_batch = cfg.batch_size >= data.n_train
        full = data.all_train() if full_batch else None
    raw = data.raw_batches and not full_batch
    device_stats = data.device_standardizer() if raw else None
    validation = put(data.validation())
    eval_key = jax.random.fold_in(run_key, 0)  # steps use s >= 1
    fields = [f for f in StepMetrics._fields if f != "finite"]
    prev = history or {}
    recs = [{f: np.asarray(prev[f]) for f in fields}] if prev.get("loss") is not None else []
    eval_steps = list(np.asarray(prev.get("eval_step", []), np.int64))
    monitored = list(np.asarray(prev.get("monitored", []), np.float64))
    held = list(np.asarray(prev.get("val_loss", []), np.float64))
    eval_times = list(np.asarray(prev.get("eval_time", []), np.float64))
    t_offset = eval_times[-1] if eval_times else 0.0
    mode = monitor_mode(cfg, problem, validation is not None)
    y1 = put(jnp.zeros((1, data.d_out), data.dtype))
    if full_batch:
        full = put(full)
    monitor_rows = (None, None)
    if mode == "train_loss":   # fixed rows: all training rows, or a fixed sample of b of them
        monitor_rows = full if full_batch else put(data.rows(np.asarray(_draw_indices(eval_key, 0, data.n_train,
                                                                                       1, b))[0]))
    device_stats = put(device_stats)

    def assemble():
        hist = {f: np.concatenate([r[f] for r in recs]) if recs else np.zeros(0) for f in fields}
        hist["eval_step"] = np.asarray(eval_steps, np.int64)
        hist["monitored"] = np.asarray(monitored, np.float64)
        hist["eval_time"] = np.asarray(eval_times, np.float64)
        hist["val_loss"] = np.asarray(held, np.float64)
        return hist

    def record(step, st):
        """Evaluate after ``step`` steps: the held-out loss (if rows are held out) and the monitored one."""
        Xv, Yv = validation if validation is not None else (None, None)
        v, obj = _evaluate(solver, problem, st.params, Xv, Yv, y1, eval_key, cfg.T_at(max(step, 1)), mesh,
                           *monitor_rows)
        v = None if v is None else float(v)
        mon = v if mode == "held_out" else float(obj)
        eval_steps.append(step)
        monitored.append(mon)
        if v is not None:
            held.append(v)
        eval_times.append(t_offset + time.perf_counter() - t0)
        # a non-finite held-out loss ends the run (nonfinite) whatever is monitored
        tracker.update(step, v if v is not None and not np.isfinite(v) else mon, st.params)
        return v

    tracker = make_tracker(cfg) if tracker is None else tracker
    t0 = time.perf_counter()
    done = int(state.step)
    last = cfg.steps if stop_at is None else min(stop_at, cfg.steps)
    if done == 0:
        record(0, state)
    while done < last and not bool(state.failed) and not tracker.stopped:
        n_valid = min(chunk, last - done)
        valid = jnp.arange(chunk) < n_valid
        if full_batch:
            (XB, YB), stats = full, None
        else:
            XB, YB = data.rows(np.asarray(_draw_indices(run_key, done, data.n_train, chunk, b)), raw=raw)
            XB, YB = sharding.put_rows((XB, YB), mesh, sharding.BATCH_AXIS, dim=1)
            stats = device_stats if raw else None
        state, met = _run_chunk(solver, problem, state, XB, YB, stats, run_key, put(valid), full_batch, mesh)
        met = jax.tree_util.tree_map(np.asarray, met)
        ok = met.finite
        recs.append({f: getattr(met, f)[ok] for f in fields})
        done = int(state.step)
        info = {"step": done, "steps": cfg.steps, "loss": float(met.data_loss[ok][-1]) if ok.any() else float("nan"),
                "eta": float(state.params.eta), "elapsed": time.perf_counter() - t0}
        v = record(done, state)
        if v is not None:
            info["val_loss"] = v
        if on_chunk is not None:
            on_chunk(state, assemble(), tracker)
        if progress is not None:
            progress(info)
    return state, assemble(), tracker
