"""The driver: runs the pure outer step in compiled chunks, with held-out evaluation, progress,
checkpoint hooks and a status. Everything that touches the host lives here, not in the step.

Compiled functions are module-level ``jit``s (``core.jit``: ``jax.jit`` with the library's CPU options) whose
arguments are the solver and problem pytrees, so every run with equal settings and shapes reuses them (a second
``distill()`` compiles nothing).
A compiled call executes ``CHUNK_STEPS`` steps in one ``lax.scan``; steps past the next evaluation are
no-ops, so neither ``eval_every`` nor ``steps`` is part of the compiled program (one compilation per
settings and shapes, schedules included). Only the solver's [`StepConfig`][jaxdistill.StepConfig] is static; the
host-side settings (budget, stopping rule, evaluation cadence, checkpoints) are read here, between calls. Batches for a
chunk are drawn on the device as indices (step s uses ``fold_in(run_key, s)``), gathered on the host and
sent with the chunk; full-batch runs (b ≥ n_train) keep the training rows on the device instead.

With a ``mesh`` (`sharding`) the same functions run over its devices: state and
problem replicated, each batch's rows split over the ``"batch"`` axis, the θ₀ draws over ``"q"``. Across
several processes every process runs this driver on the same (replicated) host data; only process 0
writes checkpoints.
"""

from __future__ import annotations

import dataclasses
import time
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxdistill._src.core import keys, sharding
from jaxdistill._src.core.jit import jit
from jaxdistill._src.data.arrays import TrainData, on_device, standardize_on_device
from jaxdistill._src.outer.callbacks import RunView, StoppingRule, call_hook
from jaxdistill._src.outer.records import EVAL_FIELDS, History, Status
from jaxdistill._src.outer.step import BilevelSolver, DistillParams, DistillState, StepMetrics
from jaxdistill._src.problem.problem import Problem

#: η̃₀ where no stability bound applies (an inner optimizer other than GD): a scale for updates of lr 1
DEFAULT_ETA = 0.01
#: outer steps per compiled call (a fixed length: evaluation cadence and budget stay host-side settings)
CHUNK_STEPS = 50


@partial(jit, static_argnames=("full_batch", "mesh"), by_model=True)
def _run_chunk(solver: BilevelSolver, problem: Problem, state: DistillState, XB, YB, stats, run_key, valid,
               full_batch: bool, mesh=None):
    """``len(valid)`` outer steps in one ``lax.scan``; steps with valid=False are no-ops. Batches (chunk, b, ·)
    are raw rows standardised here when ``stats`` is given, else already standardised."""

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


@partial(jit, static_argnames=("chunk", "b"))
def _draw_indices(run_key, start, n_train, chunk: int, b: int):
    """Batch row indices (chunk, b) for steps start+1 … start+chunk: uniform, with replacement."""
    def one(s):
        k_batch, _ = jax.random.split(jax.random.fold_in(run_key, s))
        return jax.random.randint(k_batch, (b,), 0, n_train)
    return jax.vmap(one)(start + 1 + jnp.arange(chunk))


@partial(jit, static_argnames=("mesh",))
def _init(solver: BilevelSolver, problem: Problem, x0, y0, eta0, key, mesh=None):
    """Initial state; where ``eta0`` is negative (``inner_lr=None``) η̃₀ = half the stability bound, or
    ``DEFAULT_ETA`` where no bound applies (inner optimizers other than GD)."""
    bound = solver.bound(problem, x0, y0)
    eta = jnp.where(eta0 < 0, jnp.where(jnp.isnan(bound), DEFAULT_ETA, 0.5 * bound), eta0).astype(x0.dtype)
    return sharding.replicated((solver.init(problem, DistillParams(x0, y0, eta), key), bound), mesh)


@partial(jit, static_argnames=("mesh",))
def _evaluate(solver, problem, params, Xv, Yv, key, num_steps, mesh=None, Xm=None, Ym=None):
    return sharding.replicated(
        solver.evaluation_losses(problem, params, Xv, Yv, key, num_steps, mesh, Xm, Ym), mesh)


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
    return np.asarray(keys.first_of_split_choice(key, data.n_train, config.m))


def initial_rows(config, data: TrainData, key: jax.Array) -> np.ndarray | None:
    """Rows of the caller's X that start X̃₀ (``init="real"``), or None for a random start."""
    return data.train[_initial_indices(config, data, key)] if config.init == "real" else None


def initial_params(solver: BilevelSolver, problem: Problem, data: TrainData, key: jax.Array, config,
                   mesh=None) -> DistillState:
    """X̃₀, Ỹ₀ (Algorithm 1 line 2) and η̃₀ (line 1) and the initial state; checks η̃₀ against Lemma 2.4.
    ``config``: the run's [`DistillConfig`][jaxdistill.DistillConfig] (``init``, ``m``, ``init_std``, ``inner_lr``)."""
    cfg = config
    if cfg.init == "real":
        x0, y0 = data.rows(_initial_indices(cfg, data, key))
    else:
        kx, ky = jax.random.split(key)
        x0 = cfg.init_std * jax.random.normal(kx, (cfg.m, data.d), data.dtype)
        if problem.x_keep is not None:          # constant columns start (and stay) at their training value, 0
            x0 = x0 * problem.x_keep.astype(x0.dtype)
        y0 = cfg.init_std * jax.random.normal(ky, (cfg.m, data.d_out), data.dtype)
    eta0 = cfg.inner_lr if cfg.inner_lr is not None else -1.0   # not NaN: processes compare what they place
    put = partial(sharding.put_replicated, mesh=mesh)
    k_pool = keys.fold_in(key, 7)                       # the model pool's initial members (if any)
    state, bound = _init(put(solver), put(problem), put(x0), put(y0), put(on_device(eta0, data.dtype)),
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


def status_of(state: DistillState, history: History, stopping: StoppingRule, interrupted: bool = False) -> Status:
    """The run's [`Status`][jaxdistill.Status]."""
    crossed = np.nanmax(np.append(history.stability_ratio, 0.0)) >= 1.0
    return stopping.status(bool(state.failed), bool(crossed), interrupted)


#: the per-step fields a run records (``finite`` only filters them)
_STEP_FIELDS = tuple(f for f in StepMetrics._fields if f != "finite")


class _Setup(NamedTuple):
    """What every chunk and evaluation of a run reads, placed on the devices once."""

    solver: BilevelSolver
    problem: Problem
    data: TrainData
    config: object
    run_key: jax.Array
    eval_key: jax.Array
    mesh: object
    b: int                       # rows per sampled batch
    full_batch: bool             # every step sees all training rows (or no batch at all)
    full: tuple | None           # all training rows on the device (a batch objective over all of them)
    raw: bool                    # batches gathered raw and standardised on the device
    device_stats: object
    validation: tuple | None
    mode: str                    # what the stopping rule watches (`monitor_mode`)
    monitor_rows: tuple          # the fixed rows of the "train_loss" monitor, else (None, None)


def _setup(solver, problem, data: TrainData, config, run_key, mesh) -> _Setup:
    put = partial(sharding.put_replicated, mesh=mesh)
    b = min(config.batch_size, data.n_train)
    full_batch = not problem.objective.needs_batch or config.batch_size >= data.n_train
    full = put(data.all_train()) if problem.objective.needs_batch and full_batch else None
    raw = data.raw_batches and not full_batch
    validation = put(data.validation())
    eval_key = keys.fold_in(run_key, 0)  # steps use s >= 1
    mode = monitor_mode(config, problem, validation is not None)
    monitor_rows = (None, None)
    if mode == "train_loss":   # fixed rows: all training rows, or a fixed sample of b of them
        monitor_rows = full if full is not None else put(data.rows(np.asarray(
            _draw_indices(eval_key, 0, data.n_train, 1, b))[0]))
    return _Setup(put(solver), put(problem), data, config, run_key, eval_key, mesh, b, full_batch, full, raw,
                  put(data.device_standardizer() if raw else None), validation, mode, monitor_rows)


@dataclasses.dataclass
class _Progress:
    """The driver's state between compiled calls, in one record: the outer state, the per-step records of every
    chunk, the evaluations so far, the clock (seconds spent before a resume, and this segment's start) and whether
    a callback asked to stop."""

    state: DistillState
    recs: list = dataclasses.field(default_factory=list)
    evals: dict = dataclasses.field(default_factory=lambda: {k: [] for k in EVAL_FIELDS})
    t_offset: float = 0.0
    t0: float = 0.0
    interrupted: bool = False

    def history(self) -> History:
        hist = {f: np.concatenate([r[f] for r in self.recs]) if self.recs else np.zeros(0) for f in _STEP_FIELDS}
        return History.from_dict({**hist, **{k: np.asarray(v) for k, v in self.evals.items()}})

    def resume(self, state: DistillState, prev: History) -> None:
        """Continue a checkpointed run: its state, its history and its clock."""
        self.state = state
        self.recs = [{f: np.asarray(getattr(prev, f)) for f in _STEP_FIELDS}] if prev.loss.size else []
        self.evals = {k: list(np.asarray(getattr(prev, k))) for k in EVAL_FIELDS}
        self.t_offset = float(self.evals["eval_time"][-1]) if self.evals["eval_time"] else 0.0

    def finished(self, config, stopping: StoppingRule) -> bool:
        return (int(self.state.step) >= config.steps or bool(self.state.failed) or stopping.stopped
                or self.interrupted)


def run(solver: BilevelSolver, problem: Problem, data: TrainData, state: DistillState, run_key: jax.Array,
        config, *, callbacks=(), stopping: StoppingRule | None = None, mesh=None, identity_fn=None):
    """Run outer steps until ``config.steps`` are done, the stopping rule ends the run, a callback asks to stop
    or a step is non-finite. Returns (final_state, [`History`][jaxdistill.History], stopping rule, the
    [`RunView`][jaxdistill.RunView] with the run's status).

    Step s draws its randomness from ``fold_in(run_key, s)``, so a run split into segments and resumed from a
    checkpoint ([`CheckpointCallback`][jaxdistill.CheckpointCallback]) is identical to an uninterrupted run. Evaluations
    (the held-out loss and the monitored loss) come every ``config.eval_every`` steps counted from the start (or resume)
    and after the last step; callbacks run after each, the stopping rule first. ``mesh``: run over these devices
    (see `sharding`). The run's state between compiled calls is one `_Progress` record.
    """
    setup = _setup(solver, problem, data, config, run_key, mesh)
    stopping = StoppingRule.from_config(config) if stopping is None else stopping
    progress = _Progress(sharding.put_replicated(state, mesh=mesh))
    view = RunView(config, progress.state, stopping, progress.history, identity_fn or (lambda: {}))
    ordered = sorted(callbacks, key=lambda c: not c.restores)
    for cb in ordered:
        call_hook(cb, "on_start", view)
        restored = view.take_restored()
        if restored is not None:              # a checkpoint was resumed: continue its state and history
            progress.resume(sharding.put_replicated(restored[0], mesh=mesh), History.from_dict(restored[1]))
            view.state = progress.state
    base_rates = setup.solver.learning_rates
    setup = _recover(setup, progress, stopping, base_rates)     # a resumed run: the rates (and a pending restart)
    progress.t0 = time.perf_counter()
    if int(progress.state.step) == 0:
        progress.interrupted = _evaluation(setup, progress, view, stopping, ordered, 0, float("nan"))
    while not progress.finished(config, stopping):
        last_loss = _segment(setup, progress)
        progress.interrupted = _evaluation(setup, progress, view, stopping, ordered, int(progress.state.step),
                                           last_loss)
        setup = _recover(setup, progress, stopping, base_rates)
    hist = progress.history()
    view.status = status_of(progress.state, hist, stopping, progress.interrupted)
    return progress.state, hist, stopping, view


#: a run that diverges goes back to its best state with its outer learning rates halved, at most this many times
MAX_RECOVERIES = 2


def _recover(setup: _Setup, progress: _Progress, stopping: StoppingRule, base_rates) -> _Setup:
    """After a divergence (the stopping rule's ``diverged``), restore the best state seen and go on with the outer
    learning rates halved, at most `MAX_RECOVERIES` times (recorded in the stopping rule, so a resumed run makes the
    same decisions; not where the rates are not the library's, a custom optimizer's). Returns the setup whose solver
    carries the rates of the recoveries so far (a traced leaf: nothing recompiles)."""
    can = base_rates is not None and stopping.best_params is not None
    if can and stopping.stopped == "diverged" and len(stopping.recovered_at) < MAX_RECOVERIES:
        stopping.recover(int(progress.state.step))
        solver = setup.solver.replace(learning_rates=base_rates * 0.5 ** len(stopping.recovered_at))
        best = [sharding.put_replicated(a, mesh=setup.mesh) for a in stopping.best_params]
        key = keys.fold_in(setup.run_key, 2 ** 31 - len(stopping.recovered_at))      # a model pool's new members
        fresh, _ = _init(solver, setup.problem, best[0], best[1], best[2], key, setup.mesh)
        old = progress.state
        progress.state = fresh._replace(step=old.step, eta_min=old.eta_min, q=old.q)
        return setup._replace(solver=solver)
    if can and stopping.recovered_at and setup.solver.learning_rates is base_rates:
        return setup._replace(solver=setup.solver.replace(learning_rates=base_rates * 0.5 **
                                                          len(stopping.recovered_at)))
    return setup


def _segment(setup: _Setup, progress: _Progress) -> float:
    """The steps up to the next evaluation, in calls of `CHUNK_STEPS` compiled steps (a non-finite step ends it).
    Returns the outer data loss of the last finite step (NaN if none)."""
    config, data = setup.config, setup.data
    done = int(progress.state.step)
    attempts = min(config.eval_every, config.steps - done)   # steps tried before the next evaluation
    last_loss = float("nan")
    while attempts > 0 and not bool(progress.state.failed):
        n_valid = min(CHUNK_STEPS, attempts)
        attempts -= n_valid
        valid = np.arange(CHUNK_STEPS) < n_valid
        if setup.full_batch:
            (XB, YB), stats = (setup.full if setup.full is not None else (None, None)), None
        else:
            # every slot's draw (no-op slots get rows of the right shape; each step's draw is its own)
            XB, YB = data.rows(np.asarray(_draw_indices(setup.run_key, done, data.n_train, CHUNK_STEPS, setup.b)),
                               raw=setup.raw)
            XB, YB = sharding.put_rows((XB, YB), setup.mesh, sharding.BATCH_AXIS, dim=1)
            stats = setup.device_stats if setup.raw else None
        progress.state, met = _run_chunk(setup.solver, setup.problem, progress.state, XB, YB, stats, setup.run_key,
                                         sharding.put_replicated(valid, mesh=setup.mesh), setup.full_batch,
                                         setup.mesh)
        met = jax.tree_util.tree_map(np.asarray, met)
        ok = met.finite
        progress.recs.append({f: getattr(met, f)[ok] for f in _STEP_FIELDS})
        if ok.any():
            last_loss = float(met.data_loss[ok][-1])
        done = int(progress.state.step)
    return last_loss


def _evaluation(setup: _Setup, progress: _Progress, view: RunView, stopping: StoppingRule, callbacks, step: int,
                loss: float) -> bool:
    """Evaluate after ``step`` steps: the held-out loss (if rows are held out) and the monitored one, then the
    callbacks (the stopping rule first). Returns whether a callback asked to stop."""
    st = progress.state
    Xv, Yv = setup.validation if setup.validation is not None else (None, None)
    v, obj = _evaluate(setup.solver, setup.problem, st.params, Xv, Yv, setup.eval_key,
                       setup.solver.config.T_at(max(step, 1)), setup.mesh, *setup.monitor_rows)
    v = None if v is None else float(v)
    mon = v if setup.mode == "held_out" else float(obj)
    elapsed = time.perf_counter() - progress.t0
    evals = progress.evals
    evals["eval_step"].append(step)
    evals["monitored"].append(mon)
    if v is not None:
        evals["val_loss"].append(v)
    evals["eval_time"].append(progress.t_offset + elapsed)
    view.state, view.step = st, step
    view.metrics = {"step": step, "loss": loss, "eta": float(st.params.eta), "monitored": mon,
                    "elapsed": elapsed, **({"val_loss": v} if v is not None else {})}
    stopping.on_evaluation(view)
    stop = False
    for cb in callbacks:
        asked = call_hook(cb, "on_evaluation", view)
        if asked is not None and not isinstance(asked, (bool, np.bool_)):
            raise ValueError(f"{type(cb).__name__}.on_evaluation returned {asked!r} ({type(asked).__name__}); it must "
                             "return True (end the run), False or None (go on). A string such as 'False' is not "
                             "taken as a boolean.")
        stop = bool(asked) or stop
    return stop
