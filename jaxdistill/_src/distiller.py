"""``Distiller``: the object that owns a run — builds the problem and solver, runs the driver with callbacks,
and returns a [`DistillOutput`][jaxdistill.DistillOutput].

What it builds from its arguments is fixed per ``fit`` call; the compiled program depends only on the
solver's [`StepConfig`][jaxdistill.StepConfig], the problem's components and the shapes (see ``docs/architecture.md``).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdistill._src.components.models import InnerModel, LinearModel
from jaxdistill._src.core import keys, sharding
from jaxdistill._src.core.compile_log import CompileLog
from jaxdistill._src.core.fingerprint import flat_description
from jaxdistill._src.core.keys import as_key, key_to_list, seed_of
from jaxdistill._src.core.linalg import ridge_host
from jaxdistill._src.core.threads import single_blas_thread
from jaxdistill._src.data.arrays import prepare, warn_constant
from jaxdistill._src.data.schema import read_pair
from jaxdistill._src.data.sources import RowSource, SufficientStats
from jaxdistill._src.defaults import default_inner_solver, default_objective, warn_untrained_theta0
from jaxdistill._src.inner.base import InnerSolver
from jaxdistill._src.outer import driver
from jaxdistill._src.outer.callbacks import Callback, CheckpointCallback, StoppingRule, call_hook, callback_list
from jaxdistill._src.outer.records import BilevelInfo, QualityWarning, RunInfo
from jaxdistill._src.outer.step import BilevelSolver, DistillParams, outer_optimizer
from jaxdistill._src.problem.config import FALLBACK_LAMBDA_INNER, DistillConfig
from jaxdistill._src.problem.full_data import FullDataLoss, linear_sufficient_stats
from jaxdistill._src.problem.objectives import Objective
from jaxdistill._src.problem.problem import Problem
from jaxdistill._src.problem.ridge_cv import choose_ridge
from jaxdistill._src.result import DistillOutput
from jaxdistill._src.version import __version__


def _config_of(config, overrides: dict) -> DistillConfig:
    if config is None:
        config = DistillConfig()
    elif not isinstance(config, DistillConfig):
        raise ValueError(f"config must be a DistillConfig, got {type(config).__name__}; use "
                         "DistillConfig.from_dict(...) for a dict.")
    if overrides:
        fields = set(DistillConfig.__dataclass_fields__)
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(f"Unknown setting(s) {unknown}; DistillConfig fields are {sorted(fields)}.")
        config = config.replace(**overrides)
    return config


def _choose_lambda(config, model, objective, data):
    """(λ_I, the objective bound to ``data``, how λ_I was chosen) — ``lambda_inner="auto"`` picks λ by GCV on the
    training rows' statistics where the objective is the exact full-data loss of a model linear in θ, and makes
    the objective the ridge loss with that λ (see ``DistillConfig.lambda_inner``)."""
    lam = config.lambda_inner
    if lam != "auto":
        return lam, objective.bind(model, data), {"method": "given", "lambda": float(lam)}
    if not (isinstance(objective, FullDataLoss) and not objective.bound and model.linear_in_params):
        why = ("the model is not linear in θ" if not model.linear_in_params else
               f"the objective is {type(objective).__name__}, not the exact full-data loss")
        return FALLBACK_LAMBDA_INNER, objective.bind(model, data), {
            "method": "fallback", "lambda": FALLBACK_LAMBDA_INNER,
            "why": f"lambda_inner='auto' chooses λ only from full-data statistics; {why}"}
    G, C, s, n = linear_sufficient_stats(model, data)
    choice = choose_ridge(G, C, s, n, centred=config.standardize)
    bound = objective.replace(ridge=choice.lam).with_statistics(G, C, s, n, data.dtype)
    held_out = int(data.n_validation) if data.val is not None else 0      # split off the given rows, not given apart
    return choice.lam, bound, choice.record(held_out)


def _out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is the run running out of memory: a MemoryError, XLA's RESOURCE_EXHAUSTED, or (under an
    address-space limit, ``ulimit -v``) a library that JAX or SciPy loads lazily failing to map its code into the
    address space ("failed to map segment", ENOMEM) — a traceback from deep inside an import otherwise."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc)
    if isinstance(exc, jax.errors.JaxRuntimeError):
        return "RESOURCE_EXHAUSTED" in text
    return "failed to map segment" in text or "Cannot allocate memory" in text or getattr(exc, "errno", None) == 12


#: random subsets of m training rows the held-out check of a finished run compares with
QUALITY_SUBSETS = 10
#: fewer held-out rows than this: the check is recorded but warns of nothing (two or three rows are noise)
QUALITY_MIN_ROWS = 10
#: the check warns when the distilled set's held-out loss exceeds the subsets' by more than this many standard errors
#: of the difference over the held-out rows (a conservative, unpaired SE). ``benchmarks/bench_quality_check.py``: on
#: 192 runs, 0.8's rule (z = 0) gave 8 false alarms in 177 runs that won on the test rows; z = 1 none, and it misses
#: 6 of the 15 that lost, 4 of which looked no worse on the held-out rows (unseeable); z = 2 misses 8
QUALITY_Z = 1.0


def _quality_check(out, data, config, problem, hist, step, key) -> dict | None:
    """The distilled set's held-out loss (recorded at the returned step) against the mean held-out loss of
    ``QUALITY_SUBSETS`` random subsets of m training rows, each trained to the ridge limit with the run's λ_I —
    in float64 on the host, no compilation. None where it does not apply (no held-out rows, a model not linear
    in θ, the held-out loss not recorded at the returned step)."""
    model = problem.model
    val = data._validation_host()
    if val is None or not model.linear_in_params or not len(hist.val_loss) or data.n_train <= config.m:
        return None
    at = np.flatnonzero(np.asarray(hist.eval_step) == step)
    if not at.size:
        return None
    distilled = float(np.asarray(hist.val_loss)[at[-1]])
    Xv, Yv = val
    fmap = getattr(model, "feature_map", None)
    identity = fmap is None or type(fmap).__name__ == "Identity"
    if not identity:
        return None                                # features would have to be computed on the device: skip
    rng = np.random.default_rng(np.asarray(keys.key_to_list(key), np.uint32).ravel())
    lam, m = float(problem.lambda_inner), config.m
    losses, per_row = [], np.zeros(Xv.shape[0])
    for _ in range(QUALITY_SUBSETS):
        rows = np.sort(data.train[rng.choice(data.n_train, m, replace=False)])
        F, Y = data.standardizer.x(data.X[rows]), data.standardizer.y(data.Y[rows])
        theta = ridge_host(F, Y, lam)
        row_loss = 0.5 * np.sum((Xv @ theta - Yv) ** 2, axis=1)
        per_row += row_loss / QUALITY_SUBSETS
        losses.append(float(row_loss.mean()))
    subset = float(np.mean(losses))
    # how much the check can see: which held-out rows happened to be drawn moves both losses. The distilled set's
    # per-row losses are not computed here (that would compile its procedure), so the difference's standard error
    # is taken as √2 × the subsets' per-row standard error (as if both spread alike, unpaired: conservative)
    n_val = Xv.shape[0]
    diff_se = float(np.sqrt(2.0) * np.std(per_row, ddof=1) / np.sqrt(n_val)) if n_val > 1 else float("inf")
    result = {"held_out_rows": int(n_val), "distilled_loss": distilled, "subset_mean_loss": subset,
              "subset_loss_std": float(np.std(losses)),
              "subset_mean_se": float(np.std(losses, ddof=1) / np.sqrt(QUALITY_SUBSETS)), "subsets": QUALITY_SUBSETS,
              "difference_se": diff_se, "z": QUALITY_Z,
              "subset_procedure": f"ridge with λ_I = {lam:.3g} on {m} random training rows"}
    if n_val < QUALITY_MIN_ROWS:
        result["note"] = f"only {n_val} held-out rows: too few to judge, no warning given"
    elif np.isfinite(distilled) and distilled > subset + QUALITY_Z * diff_se:
        advice = ("raise m or steps" if config.lambda_inner == "auto" else
                  "with a fixed lambda_inner the target may overfit (try lambda_inner='auto'), or raise m or steps")
        result["warning"] = (
            f"The distilled set's held-out loss ({distilled:.4g}, standardised units, {Xv.shape[0]} rows) is worse "
            f"than that of a random subset of {m} training rows trained to its ridge limit (mean {subset:.4g} over "
            f"{QUALITY_SUBSETS} subsets; by more than {QUALITY_Z:g} standard errors of the difference over these "
            f"rows): keeping m real rows would do better. Check the status and the held-out curve; {advice}.")
    return result


class Distiller:
    """A distillation run's settings and components; `fit` runs it on data.

    Args:
      config: a [`DistillConfig`][jaxdistill.DistillConfig]; ``**overrides`` replace single fields of it (``m=20``,
        ``steps=2000``).
      model: the inner model, as [`distill`][jaxdistill.distill] documents it (the one home of these arguments:
        ``distill`` builds this object and calls `fit`).
      inner_solver: as for ``distill``.
      objective: as for ``distill``.
      optimizer: as for ``distill``.
      optimizer_x: as for ``distill``.
      optimizer_y: as for ``distill``.
      optimizer_eta: as for ``distill``.
      mesh: as for ``distill``.

    Examples:
      >>> import jaxdistill as jd
      >>> from jaxdistill import datasets
      >>> X, Y = datasets.load("diabetes")
      >>> out = jd.Distiller(m=10, steps=100).fit(X, Y, key=0, callbacks=[jd.MetricsLogger("metrics.csv")])
      >>> out.meta.bilevel.steps_run <= 100, open("metrics.csv").readline().startswith("step")
      (True, True)

    References:
      J. Mahowald, R. Srinivasan, A. Wang. *Toward Dataset Distillation for Regression Problems*. The
        University of Texas at Austin, preprint. Algorithm 1.
    """

    def __init__(self, config: DistillConfig | None = None, *, model: InnerModel | None = None,
                 inner_solver: InnerSolver | None = None, objective: Objective | str | None = None,
                 optimizer: optax.GradientTransformation | None = None,
                 optimizer_x: optax.GradientTransformation | None = None,
                 optimizer_y: optax.GradientTransformation | None = None,
                 optimizer_eta: optax.GradientTransformation | None = None, mesh=None, **overrides):
        config = _config_of(config, overrides)
        if isinstance(objective, str):               # a name: the config's objective setting
            config, objective = config.replace(objective=objective), None
        if model is None:
            model = LinearModel(init_scale=config.theta0_scale or 0.0)
        elif config.theta0_scale is not None:
            raise ValueError("theta0_scale applies to the default model only; with model=... set its own "
                             "initialisation (e.g. LinearModel(feature_map, init_scale=1.0)).")
        if not isinstance(model, InnerModel):
            raise ValueError(f"model must be a jaxdistill InnerModel (LinearModel, FlaxModel, ...), got {model!r}.")
        if inner_solver is not None and not isinstance(inner_solver, InnerSolver):
            raise ValueError(f"inner_solver must be a jaxdistill InnerSolver, got {inner_solver!r}.")
        if objective is not None and not isinstance(objective, Objective):
            raise ValueError(f"objective must be a jaxdistill Objective (BatchLoss, FullDataLoss, ...), "
                             f"got {objective!r}.")
        self.config, self.model, self.inner_solver, self.objective = config, model, inner_solver, objective
        self.optimizer, self.learning_rates = outer_optimizer(config, optimizer, optimizer_x, optimizer_y,
                                                              optimizer_eta)
        self._custom_optimizer = optimizer is not None
        self.mesh = sharding.as_mesh(mesh)

    # ------------------------------------------------------------------ building
    def _build(self, data):
        config, model, mesh = self.config, self.model, self.mesh
        inner_solver = self.inner_solver
        if inner_solver is None:
            inner_solver = default_inner_solver(model, config.m, model.num_features(data.d), config.max_T,
                                                config.max_q, data.d_out)
        inner_solver.check(model)
        if config.model_pool is not None and not inner_solver.uses_theta0:
            raise ValueError(f"model_pool needs an inner solver that trains from θ₀ (UnrolledGD, ExactLinearGD); "
                             f"{type(inner_solver).__name__} has no θ₀ to keep in a pool. Set model_pool=None.")
        solver = BilevelSolver(config, inner_solver, self.optimizer, self.learning_rates)
        objective = self.objective or default_objective(model, inner_solver, data.d, config.objective)
        objective.check(model, inner_solver)
        batch_rows = min(config.batch_size, data.n_train) if objective.needs_batch else None
        sharding.check_divisible(mesh, config.max_q, batch_rows)
        if config.outer_optimizer == "lbfgs" and not self._custom_optimizer:
            deterministic = not objective.needs_batch and (inner_solver.expectation or model.init_scale == 0)
            if not deterministic:
                raise ValueError("outer_optimizer='lbfgs' needs a deterministic outer objective (its line search "
                                 "compares values): the full-data objective (objective='full_data' / 'auto' with a "
                                 "linear model) with θ₀ = 0 or with the exact expectation over θ₀ "
                                 "(ExactLinearGD(expectation=True)). Use 'adam' for sampled objectives.")
        lam, objective, lambda_choice = _choose_lambda(config, model, objective, data)
        keep = None
        if len(data.constant_x):
            keep = np.ones(data.d)
            keep[np.asarray(data.constant_x, int)] = 0.0
        problem = Problem(model, lam, config.lambda_outer, objective, x_keep=keep)
        return solver, problem, lambda_choice

    def _identity(self, key, data, problem, solver) -> dict:
        model, config = problem.model, self.config
        theta_shapes = jax.tree_util.tree_map(
            lambda s: list(s.shape), jax.eval_shape(lambda: model.init(
                jax.random.PRNGKey(0), model.featurize(jnp.zeros((1, data.d), data.dtype)), data.d_out)))
        # `steps` is a budget, not part of the run's identity: a finished run resumes with a larger one
        settings = {k: v for k, v in config.to_dict().items() if k != "steps"}
        # the compute dtype first: a float64 checkpoint resumed in float32 differs in every array, so say why
        return {"dtype": str(np.dtype(data.dtype)), "config": settings, "key": key_to_list(key),
                "data": data.fingerprint(),
                "monitor": driver.monitor_mode(config, problem, data.n_validation > 0),
                "problem": {**flat_description(problem, "problem"), "problem.theta0_shapes": str(theta_shapes)},
                "inner_solver": flat_description(solver.inner_solver, "inner_solver"),
                "optimizer": solver.optimizer.key}

    # ------------------------------------------------------------------ running
    def fit(self, X, Y=None, *, key: jax.Array | int | None = None, validation=None,
            callbacks: Sequence[Callback] = (), raise_on_failure: bool = False) -> DistillOutput:
        """Distil (X, Y) into ``config.m`` points (Algorithm 1 of Mahowald et al., appendix A.3).

        Args:
          X: as [`distill`][jaxdistill.distill] documents it (the one home of these arguments).
          Y: as for ``distill``.
          key: as for ``distill``.
          validation: as for ``distill``.
          callbacks: as for ``distill`` (its ``progress`` and ``checkpoint`` settings are callbacks here:
            `ProgressCallback`, `CheckpointCallback`).
          raise_on_failure: as for ``distill``.

        Returns:
          A [`DistillOutput`][jaxdistill.DistillOutput].

        Raises:
          ValueError: bad data or settings (before any compute), a checkpoint of another run.
        """
        callbacks = callback_list(callbacks)
        if isinstance(X, (RowSource, SufficientStats)):      # no rows in memory: the statistics route
            if Y is not None:
                raise ValueError("With a RowSource or statistics as X the targets come from it: pass Y=None.")
            from jaxdistill._src.analytic.from_stats import distill_statistics
            return distill_statistics(self, X, key, {"validation": validation, "callbacks": callbacks,
                                                     "raise_on_failure": raise_on_failure})
        if Y is None:
            raise ValueError("Pass the targets Y (or, as X, a RowSource or SufficientStats that holds them).")
        seed = seed_of(key)
        with CompileLog() as compiled:           # every program this call compiles, the key's included
            try:
                return self._fit(X, Y, key, seed, validation, callbacks, raise_on_failure, compiled)
            except (MemoryError, jax.errors.JaxRuntimeError, ImportError, OSError) as exc:
                if not _out_of_memory(exc):
                    raise
                raise MemoryError(self._memory_message(X, Y, exc)) from None

    def _memory_message(self, X, Y, exc) -> str:
        """What set the size of a run that did not fit, and roughly how much it asked for."""
        c = self.config
        n, d = (np.shape(X) + (0, 0))[:2]
        d_out = 1 if np.ndim(Y) == 1 else (np.shape(Y) + (1, 1))[1]
        try:
            p = self.model.num_features(int(d))
        except Exception:  # noqa: BLE001 - the estimate is a hint; the settings are the message
            p = d
        b = min(c.batch_size, n)
        # the scan keeps its unroll for the backward pass; the closed form (the default for linear models) does not
        unrolled = not self.model.linear_in_params or type(self.inner_solver).__name__ == "UnrolledGD"
        values = c.m * d + b * d + (c.max_q * c.max_T * p * d_out if unrolled else min(c.m, p) ** 2 * 8)
        size = 8 * values * (4 if unrolled else 1)       # float64 upper side; the meta-gradient keeps the unroll
        first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        return (f"The run did not fit in memory ({first}). Its size is set by n = {n} rows, d = {d} inputs "
                f"(p = {p} features), m = {c.m} distilled points, Q = {c.max_q} initialisations, T = {c.max_T} inner "
                f"steps and a batch of {b} rows: about {size / 2**30:.3g} GiB for the "
                + ("unrolled meta-gradient (Q·T·p·d_out values kept for the backward pass)" if unrolled else
                   "distilled set, a batch and the closed-form inner solve")
                + ". Lower Q, T or batch_size; for a long unroll use inner_solver=UnrolledGD(adjoint=Checkpointed()); "
                "or run over several devices (mesh=...).")

    def _fit(self, X, Y, key, seed, validation, callbacks, raise_on_failure, compiled):
        config, mesh = self.config, self.mesh
        key = as_key(key)
        X, Y, schema = read_pair(X, Y)
        if isinstance(validation, (tuple, list)) and len(validation) == 2:     # other forms: refused by prepare
            validation = schema.match_pair(*validation, names=("validation X", "validation Y"))
        k_split, k_init, k_run = keys.split3(key)
        data = prepare(X, Y, m=config.m, key=k_split, validation_fraction=config.validation_fraction,
                       standardize=config.standardize, validation=validation)
        schema = schema.replace(n_features=data.d, constant=tuple(int(j) for j in data.constant_x))
        warn_constant(schema.constant_names(), "X", stacklevel=5)
        warn_constant([(schema.target_names or [f"column {j}" for j in range(data.d_out)])[j]
                       for j in data.constant_y], "Y", stacklevel=5)
        solver, problem, lambda_choice = self._build(data)
        warn_untrained_theta0(problem.model, data, config.m)
        state = driver.initial_params(solver, problem, data, k_init, config, mesh)
        stopping = StoppingRule.from_config(config)
        t0 = time.perf_counter()
        with single_blas_thread():                  # the step's LAPACK eigh must not fight XLA's threads
            state, hist, stopping, view = driver.run(
                solver, problem, data, state, k_run, config, callbacks=callbacks, stopping=stopping, mesh=mesh,
                identity_fn=lambda: self._identity(key, data, problem, solver))
        wall = time.perf_counter() - t0
        status = view.status
        params, step = state.params, int(state.step)
        if config.restore_best and stopping.best_params is not None:
            params, step = DistillParams(*stopping.best_params), stopping.best_step
        inner = solver.inner_solver
        errors = [cb.error for cb in callbacks if isinstance(cb, CheckpointCallback) and cb.error]
        rows = driver.initial_rows(config, data, k_init)
        info = RunInfo(
            n_train=data.n_train, init_rows=None if rows is None else rows.tolist(), lambda_choice=lambda_choice,
            bilevel=BilevelInfo(
                objective=repr(problem.objective), optimizer=solver.optimizer.key[:16], n_validation=data.n_validation,
                wall_time_s=wall, steps_run=int(state.step), returned_step=step,
                monitor=driver.MONITOR_LABELS[driver.monitor_mode(config, problem, data.n_validation > 0)],
                best_monitored_loss=stopping.best_value if np.isfinite(stopping.best_value) else None,
                compilations=compiled.summary(), jaxdistill_version=__version__, jax_version=jax.__version__,
                backend=jax.default_backend(), devices=sharding.describe(mesh),
                checkpoint_error=errors[0] if errors else None),
            extra={"divergence_recoveries": {"at_steps": list(stopping.recovered_at),
                                             "outer_rates_scaled_by": 0.5 ** len(stopping.recovered_at)}}
            if stopping.recovered_at else {})
        out = DistillOutput(
            x=np.asarray(params.x), y=np.asarray(params.y),
            inner_lr=float(params.eta) if inner.uses_eta else None, history=hist, config=config,
            standardizer=data.standardizer, status=status, model=problem.model, inner_solver=inner,
            lambda_inner=problem.lambda_inner, T=config.T_at(max(step, 1)) if inner.uses_eta else None, seed=seed,
            meta=info, schema=schema)
        quality = _quality_check(out, data, config, problem, hist, step, k_init)
        if quality is not None:
            run = dataclasses.replace(info.bilevel, quality=quality)
            out = dataclasses.replace(out, meta=info.replace(bilevel=run))
            if quality.get("warning"):
                warnings.warn(QualityWarning(quality["warning"]), stacklevel=4)
        view.result = out
        for cb in sorted(callbacks, key=lambda c: not c.restores):
            call_hook(cb, "on_end", view)
        if not status.ok and raise_on_failure:
            err = FloatingPointError if status == "nonfinite" else RuntimeError
            raise err(f"Distillation ended with status {status.value!r} after {int(state.step)} steps: "
                      f"{status.message}. (Pass raise_on_failure=False to get the result with its status instead.)")
        return out
