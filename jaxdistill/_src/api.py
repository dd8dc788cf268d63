"""``distill()``: the one-call entry point, a thin builder over problem / solver / driver / result."""

from __future__ import annotations

import os
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdistill._src.components.models import InnerModel, LinearModel
from jaxdistill._src.core import sharding
from jaxdistill._src.core.fingerprint import flat_description
from jaxdistill._src.core.keys import as_key, key_to_list, seed_of
from jaxdistill._src.inner.base import InnerSolver
from jaxdistill._src.inner.exact_linear import ExactLinearGD
from jaxdistill._src.inner.unrolled import UnrolledGD
from jaxdistill._src.io import checkpoint as ckpt
from jaxdistill._src.outer import driver
from jaxdistill._src.outer.step import BilevelSolver, DistillParams, make_optimizer
from jaxdistill._src.outer.stopping import SUCCESS, advice
from jaxdistill._src.problem.config import DistillConfig
from jaxdistill._src.problem.data import prepare
from jaxdistill._src.problem.full_data import MAX_AUTO_FEATURES, FullDataLoss
from jaxdistill._src.problem.objectives import BatchLoss, ExpectedBatchLoss, Objective
from jaxdistill._src.problem.problem import Problem
from jaxdistill._src.report.progress import ProgressBar
from jaxdistill._src.result import DistillOutput
from jaxdistill._src.version import __version__

#: the scan's thin matrix products (p × m by m × Q·d_out) run at about a fifth of the speed per flop of the
#: doubling path's square r × r products (measured on 2 CPU cores: benchmarks/results/solver_choice.md)
SCAN_FLOP_PENALTY = 5.0


def default_inner_solver(model: InnerModel, m: int | None = None, p: int | None = None, T: int | None = None,
                         q: int = 1, d_out: int = 1) -> InnerSolver:
    """The cheaper exact inner solver for the shapes given; the unrolled scan for nonlinear models.

    For a model linear in θ both :class:`ExactLinearGD` (closed form by doubling) and :class:`UnrolledGD`
    (the scan) give the same θ_T and meta-gradient to rounding (tested); their costs differ: about
    2·⌈log₂ T⌉·r³ flops for the doubling path (r = min(m, p)) against T·Q·d_out·2·m·p for the scan, whose
    thin products are ``SCAN_FLOP_PENALTY`` times slower per flop. The doubling path wins for small r or
    long T (every bundled data set at the defaults), the scan for wide problems with few steps (m = p =
    1000, T = 100: 1.7× faster). Without the shapes: the doubling path.
    """
    if not model.linear_in_params:
        return UnrolledGD()
    if m is None or p is None or T is None:
        return ExactLinearGD()
    r = min(m, p)
    doubling = 2.0 * max(1, int(T).bit_length()) * float(r) ** 3
    scan = SCAN_FLOP_PENALTY * float(T) * q * d_out * 2.0 * m * p
    return UnrolledGD() if scan < doubling else ExactLinearGD()


def default_objective(model: InnerModel, inner_solver: InnerSolver, d: int, kind: str = "auto") -> Objective:
    """The outer objective named by ``kind`` (``config.objective``): ``"batch"``, ``"full_data"``, or
    ``"auto"``, the exact full-data objective where it applies, else Def. 2.5 on sampled batches.

    ``"auto"`` gives :class:`FullDataLoss` for models linear in θ trained to a parameter vector (GD
    solvers) with at most ``MAX_AUTO_FEATURES`` features (its statistics are a p×p matrix), and
    :class:`BatchLoss` otherwise. ``expectation=True`` solvers get the exact expectation over θ₀ in
    either case.
    """
    expectation = getattr(inner_solver, "expectation", False)
    full = kind == "full_data" or (kind == "auto" and model.linear_in_params and inner_solver.uses_theta0
                                   and model.num_features(d) <= MAX_AUTO_FEATURES)
    if full:
        return FullDataLoss(expectation=expectation)
    return ExpectedBatchLoss() if expectation else BatchLoss()


def _warn_untrained_theta0(model, data, m: int) -> None:
    """Lemma 2.3: with θ₀ ~ N(0, σ²I), σ > 0 and m < p, GD on m points never moves θ₀ outside their span."""
    scale = getattr(model, "init_scale", 0.0)
    if not model.linear_in_params or not scale:
        return
    p = model.num_features(data.d)
    if m < p:
        warnings.warn(
            f"θ₀ ~ N(0, {scale:g}²I) with m = {m} distilled points and p = {p} features: the part of θ₀ outside "
            f"the span of the {m} points (dimension ≥ {p - m}) is never trained (Lemma 2.3) and stays as noise "
            "in every prediction of the T-step model. Use LinearModel(..., init_scale=0) (the default) or m >= p.",
            stacklevel=3)


def _monitor_before_0_7(config, problem, data) -> str:
    """The monitor a checkpoint written before 0.7 (no "monitor" entry) was run with: the held-out loss for
    sampled objectives whenever rows were held out, the sampled batch loss when none were."""
    if not problem.objective.needs_batch:
        return "held_out" if config.monitor == "held_out" and data.n_validation > 0 else "objective"
    return "held_out" if data.n_validation > 0 and config.monitor != "objective" else "batch_loss"


def _identity(config, key, data, problem, solver, theta_shapes) -> dict:
    # `steps` is a budget, not part of the run's identity: a finished run resumes with a larger one
    settings = {k: v for k, v in config.to_dict().items() if k != "steps"}
    return {"config": settings, "key": key_to_list(key), "data": data.fingerprint(),
            "monitor": driver.monitor_mode(config, problem, data.n_validation > 0),
            "problem": {**flat_description(problem, "problem"), "problem.theta0_shapes": str(theta_shapes)},
            "inner_solver": flat_description(solver.inner_solver, "inner_solver"),
            "optimizer": solver.optimizer.key}


def distill(X, Y, m: int | None = None, *, key: jax.Array | int | None = None,
            config: DistillConfig | None = None, model: InnerModel | None = None,
            inner_solver: InnerSolver | None = None, objective: Objective | str | None = None,
            optimizer: optax.GradientTransformation | None = None,
            optimizer_x: optax.GradientTransformation | None = None,
            optimizer_y: optax.GradientTransformation | None = None,
            optimizer_eta: optax.GradientTransformation | None = None,
            validation=None, progress: bool | None = None, raise_on_failure: bool = False,
            checkpoint: str | os.PathLike | None = None, checkpoint_every: int | None = None,
            resume: bool = True, mesh=None, **overrides) -> DistillOutput:
    """Distil a regression data set (X, Y) into m synthetic points (X̃, Ỹ) and an inner learning rate η̃.

    Runs Algorithm 1 of Mahowald et al. (*Toward Dataset Distillation for Regression Problems*,
    appendix A.3): outer gradient descent (eq. 7) on the outer loss of Def. 2.5, whose gradient is
    taken through T steps of inner gradient descent (eq. 3) from Q random initialisations.

    Args:
      X: real inputs, shape (n, d) (a NumPy array or memory map; never copied whole).
      Y: real targets, shape (n,) or (n, d_out).
      m: number of distilled points (overrides ``config.m``).
      key: ``jax.random`` key or integer seed (default 0). The whole run is a function of it.
      config: a :class:`DistillConfig`; ``**overrides`` replace single fields of it.
      model: inner model (default :class:`LinearModel`, identity features, θ₀ = 0; ``theta0_scale`` sets σ).
      inner_solver: how θ_T is computed (default :func:`default_inner_solver`: for linear models the
        cheaper of two exact solvers for these shapes — the closed form :class:`ExactLinearGD`, or the
        scan :class:`UnrolledGD` for wide problems with few steps; the scan otherwise).
      objective: the outer objective, an :class:`Objective` or a name for ``config.objective``
        (``"auto"``, ``"batch"``, ``"full_data"``) (default :func:`default_objective`: the exact
        :class:`FullDataLoss` over all training rows for linear models, :class:`BatchLoss`, Def. 2.5
        on sampled batches of ``batch_size`` rows, otherwise).
      optimizer: one optax transformation over (X̃, Ỹ, η̃) (a :class:`DistillParams`); or use the
        per-part shorthands ``optimizer_x``, ``optimizer_y``, ``optimizer_eta`` (default plain
        ``config.outer_optimizer`` with ``lr_x``, ``lr_y``; gradient descent with ``lr_eta`` on η̃).
      validation: optional held-out (X_val, Y_val) in original units; if omitted,
        ``config.validation_fraction`` of the rows are held out for monitoring.
      progress: show progress (default: when stderr is a terminal).
      raise_on_failure: raise if the run fails instead of returning the result with its status:
        ``FloatingPointError`` for ``nonfinite``, ``RuntimeError`` for ``diverged``, ``no_progress``
        and ``unstable`` (statuses: ``jaxdistill.STATUSES``; ``converged`` and ``budget`` succeed).
      checkpoint: path of a checkpoint file, written atomically every ``checkpoint_every`` steps
        (default: every ``eval_every``) and at the end. If it exists and ``resume`` is true, the run
        continues from it and ends exactly as the uninterrupted run would. A checkpoint that cannot
        be written is reported with a warning; the run and its result are kept.
      checkpoint_every: steps between checkpoints (rounded up to a multiple of ``eval_every``).
      resume: continue from an existing checkpoint (``False`` overwrites it). ``steps`` may differ from
        the checkpointed run's: a run that ended with status ``budget`` continues to the new budget, and
        ends exactly as one run with that budget would.
      mesh: run over several devices: a device count k (the Q initialisations split over the first k
        devices) or a ``jax.sharding.Mesh`` with axes ``"q"`` and/or ``"batch"`` (the outer batch's rows
        split too). The result equals the one-device run to floating-point tolerance; Q (and
        ``batch_size``) must divide evenly. Across processes (after ``jax.distributed.initialize``)
        every process calls ``distill`` with the same arguments; only process 0 writes the checkpoint.
        See README "Scaling out".

    Returns:
      A :class:`DistillOutput` holding the distilled set, its model and training procedure.

    Example:
      >>> from sklearn.datasets import load_diabetes
      >>> X, y = load_diabetes(return_X_y=True)
      >>> out = jaxdistill.distill(X, y, m=20)        # doctest: +SKIP
      >>> out.predict(X[:3])                           # doctest: +SKIP
    """
    if config is None:
        config = DistillConfig()
    elif not isinstance(config, DistillConfig):
        raise ValueError(f"config must be a DistillConfig, got {type(config).__name__}; use "
                         "DistillConfig.from_dict(...) for a dict.")
    if m is not None:
        overrides["m"] = m
    if overrides:
        fields = set(DistillConfig.__dataclass_fields__)
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(f"Unknown setting(s) {unknown}; DistillConfig fields are {sorted(fields)}.")
        config = config.replace(**overrides)
    seed = seed_of(key)
    key = as_key(key)
    k_split, k_init, k_run = jax.random.split(key, 3)
    if model is None:
        model = LinearModel(init_scale=config.theta0_scale or 0.0)
    elif config.theta0_scale is not None:
        raise ValueError("theta0_scale applies to the default model only; with model=... set its own "
                         "initialisation (e.g. LinearModel(feature_map, init_scale=1.0)).")
    if not isinstance(model, InnerModel):
        raise ValueError(f"model must be a jaxdistill InnerModel (LinearModel, FlaxModel, ...), got {model!r}.")
    if inner_solver is not None and not isinstance(inner_solver, InnerSolver):
        raise ValueError(f"inner_solver must be a jaxdistill InnerSolver, got {inner_solver!r}.")
    if isinstance(objective, str):               # a name: the config's objective setting
        config, objective = config.replace(objective=objective), None
    if objective is not None and not isinstance(objective, Objective):
        raise ValueError(f"objective must be a jaxdistill Objective (BatchLoss, FullDataLoss, ...), got {objective!r}.")
    mesh = sharding.as_mesh(mesh)
    data = prepare(X, Y, m=config.m, key=k_split, validation_fraction=config.validation_fraction,
                   standardize=config.standardize, validation=validation)
    if inner_solver is None:
        inner_solver = default_inner_solver(model, config.m, model.num_features(data.d), config.max_T,
                                            config.max_q, data.d_out)
    inner_solver.check(model)
    if config.model_pool is not None and not inner_solver.uses_theta0:
        raise ValueError(f"model_pool needs an inner solver that trains from θ₀ (UnrolledGD, ExactLinearGD); "
                         f"{type(inner_solver).__name__} has no θ₀ to keep in a pool. Set model_pool=None.")
    solver = BilevelSolver(config, inner_solver, make_optimizer(config, optimizer, optimizer_x, optimizer_y,
                                                                optimizer_eta))
    if objective is None:
        objective = default_objective(model, inner_solver, data.d, config.objective)
    objective.check(model, inner_solver)
    batch_rows = min(config.batch_size, data.n_train) if objective.needs_batch else None
    sharding.check_divisible(mesh, config.max_q, batch_rows)
    if config.outer_optimizer == "lbfgs" and optimizer is None:
        deterministic = not objective.needs_batch and (
            getattr(objective, "expectation", False) or getattr(model, "init_scale", None) == 0)
        if not deterministic:
            raise ValueError("outer_optimizer='lbfgs' needs a deterministic outer objective (its line search compares "
                             "values): the full-data objective (objective='full_data' / 'auto' with a linear model) "
                             "with θ₀ = 0 or with the exact expectation over θ₀ (ExactLinearGD(expectation=True)). "
                             "Use 'adam' for sampled objectives.")
    problem = Problem(model, config.lambda_inner, config.lambda_outer, objective.bind(model, data))
    _warn_untrained_theta0(model, data, config.m)
    traces0 = dict(driver.TRACES)          # compilations of this call, the initial state's included
    state = driver.initial_params(solver, problem, data, k_init, mesh)

    history, on_chunk, notes = None, None, {}
    tracker = driver.make_tracker(config)
    if checkpoint is not None:
        theta_shapes = jax.tree_util.tree_map(
            lambda s: list(s.shape), jax.eval_shape(lambda: model.init(
                jax.random.PRNGKey(0), model.featurize(jnp.zeros((1, data.d), data.dtype)), data.d_out)))
        identity = _identity(config, key, data, problem, solver, theta_shapes)
        if resume and os.path.exists(checkpoint):
            state, history, extra = ckpt.load_checkpoint(
                checkpoint, state, identity, missing={"monitor": _monitor_before_0_7(config, problem, data)})
            tracker.load_arrays(extra)
        every = max(1, -(-(checkpoint_every or config.eval_every) // config.eval_every))
        counter = {"chunks": 0}

        def on_chunk(st, hist, tr):
            counter["chunks"] += 1
            due = counter["chunks"] % every == 0 or int(st.step) >= config.steps or bool(st.failed) or tr.stopped
            if due and jax.process_index() == 0:      # several processes: one writer
                try:
                    ckpt.save_checkpoint(checkpoint, st, hist, identity, tr.to_arrays())
                except (OSError, ValueError) as exc:
                    if "checkpoint_error" not in notes:
                        warnings.warn(f"Could not write the checkpoint: {exc}. The run goes on; its result is "
                                      "returned as usual (save it with out.save(path)).", stacklevel=4)
                    notes["checkpoint_error"] = str(exc)

    show = sys.stderr.isatty() if progress is None else bool(progress)
    running = int(state.step) < config.steps and not tracker.stopped and not bool(state.failed)
    bar = ProgressBar(config.steps, start_step=int(state.step)) if show and running else None
    t0 = time.perf_counter()
    state, hist, tracker = driver.run(solver, problem, data, state, k_run, progress=bar, history=history,
                                      on_chunk=on_chunk, tracker=tracker, mesh=mesh)
    wall = time.perf_counter() - t0
    status = driver.status_of(state, hist, tracker)
    if bar is not None:
        bar.close(f"{status} after {int(state.step)} steps")

    params, step = state.params, int(state.step)
    if config.restore_best and tracker.best_params is not None:
        params, step = DistillParams(*tracker.best_params), tracker.best_step
    T_used = config.T_at(max(step, 1))
    out = DistillOutput(
        x=np.asarray(params.x), y=np.asarray(params.y),
        inner_lr=float(params.eta) if inner_solver.uses_eta else None, history=hist, config=config,
        standardizer=data.standardizer, status=status, model=model, inner_solver=inner_solver,
        lambda_inner=config.lambda_inner, T=T_used if inner_solver.uses_eta else None, seed=seed,
        meta={"objective": repr(problem.objective), "optimizer": solver.optimizer.key[:16],
              "n_train": data.n_train, "n_validation": data.n_validation, "wall_time_s": wall,
              "steps_run": int(state.step), "returned_step": step,
              "monitor": driver.MONITOR_LABELS[driver.monitor_mode(config, problem, data.n_validation > 0)],
              "init_rows": None if (rows := driver.initial_rows(config, data, k_init)) is None else rows.tolist(),
              "best_monitored_loss": tracker.best_value if np.isfinite(tracker.best_value) else None,
              "compilations": {k: driver.TRACES[k] - traces0[k] for k in driver.TRACES},
              "jaxdistill_version": __version__, "jax_version": jax.__version__,
              "backend": jax.default_backend(), "devices": sharding.describe(mesh), **notes})
    if status not in SUCCESS and raise_on_failure:
        err = FloatingPointError if status == "nonfinite" else RuntimeError
        raise err(f"Distillation ended with status {status!r} after {int(state.step)} steps: {advice(status)}. "
                  "(Pass raise_on_failure=False to get the result with its status instead.)")
    return out
