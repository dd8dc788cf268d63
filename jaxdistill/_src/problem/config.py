"""Immutable settings of a distillation run, validated on construction.

[`DistillConfig`][jaxdistill.DistillConfig] holds every hyper-parameter of Algorithm 1 (regression paper, appendix A.3)
and of its appendix-A.7 refinements. It is a frozen ``flax.struct`` dataclass whose fields are all
static (``pytree_node=False``): they fix shapes (m, T, Q, b) or are constants closed over by the
compiled step, so one run compiles once. Configs round-trip through plain dicts
([`DistillConfig.to_dict`][jaxdistill.DistillConfig.to_dict] /
[`DistillConfig.from_dict`][jaxdistill.DistillConfig.from_dict]) for files and the CLI.

Named configs: [`paper_a7`][jaxdistill.paper_a7] reproduces the regression paper's experiment; the class defaults
are chosen for users (see the docs' "Settings" page for what differs and why).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax.numpy as jnp
from flax import struct

from jaxdistill._src.core.validate import check_bool, check_float, check_int


def _static(default):
    return struct.field(pytree_node=False, default=default)


@struct.dataclass
class QSchedule:
    """Appendix A.7: q ← min(q + 1, max_q) when loss_s ≥ threshold · loss_{s−1}.

    Design: the step always draws ``max_q`` initialisations and masks those with index ≥ q, so a
    change of q never recompiles; the cost of a step is that of ``max_q`` initialisations.

    Attributes:
      max_q: the most initialisations q grows to (the paper: 60).
      threshold: q grows when the outer loss rose to at least this × the previous step's (the paper: 1.02).
    """

    max_q: int = _static(60)
    threshold: float = _static(1.02)

    def __post_init__(self):
        object.__setattr__(self, "max_q", check_int("q_schedule.max_q", self.max_q, 1))
        object.__setattr__(self, "threshold", check_float("q_schedule.threshold", self.threshold, positive=True))


@struct.dataclass
class TSchedule:
    """Appendix A.7: T_s = T + int(growth · T · (1 − e^{−s/tau})), growing from T to T + int(growth·T).

    The paper writes t ← t + int(t/2 · (1 − e^{−s/300})); read as a recurrence applied at every
    outer step it would grow T geometrically without bound, so we read it (as its Figure 1's
    "modest increases" suggest) as a schedule relative to the initial T, with growth = 1/2.
    Design: the scan runs ``max_steps(T)`` iterations and masks iterations t ≥ T_s, so a change of
    T_s never recompiles; the cost of a step is that of ``max_steps(T)`` inner steps (at most
    1.5× T, about 1.04× the average T_s of a 2500-step run).

    Attributes:
      tau: the schedule's time constant in outer steps (the paper: 300).
      growth: T grows towards T + int(growth · T) (the paper's reading: 1/2).
    """

    tau: float = _static(300.0)
    growth: float = _static(0.5)

    def __post_init__(self):
        object.__setattr__(self, "tau", check_float("t_schedule.tau", self.tau, positive=True))
        object.__setattr__(self, "growth", check_float("t_schedule.growth", self.growth, lo=0.0))

    def max_steps(self, T: int) -> int:
        return T + int(self.growth * T)

    def steps_at(self, T: int, s):
        """T_s for outer step s (1-based); works on Python ints and traced arrays."""
        if isinstance(s, int):
            return T + int(self.growth * T * (1.0 - math.exp(-s / self.tau)))
        inc = jnp.floor(self.growth * T * (1.0 - jnp.exp(-s.astype(jnp.float32) / self.tau)))
        return T + inc.astype(jnp.int32)


@struct.dataclass
class ModelPool:
    """A pool of partially trained inner models (FRePo, Zhou et al., NeurIPS 2022, "model pool").

    Instead of starting the T inner steps of every outer step from fresh draws θ₀ ~ p(θ₀), each outer step
    starts them from Q members of a pool of ``size`` parameter vectors; after the outer update those Q
    members are trained ``advance`` more inner GD steps on the updated distilled set (no gradient flows
    through this), and a member that has been trained ``max_age`` steps is replaced by a fresh draw. The
    distilled set is thus fitted to models at every stage of training up to ``max_age`` + T steps, while
    each meta-gradient still unrolls only T steps. Initial ages are spread over [0, max_age) so that resets
    do not come all at once. Evaluation is unchanged: T steps from fresh θ₀.

    Attributes:
      size: parameter vectors in the pool (at least Q, the initialisations each step takes from it).
      advance: inner GD steps each chosen member is trained after an outer update.
      max_age: inner steps after which a member is replaced by a fresh draw.
    """

    size: int = _static(16)
    advance: int = _static(1)
    max_age: int = _static(100)

    def __post_init__(self):
        object.__setattr__(self, "size", check_int("model_pool.size", self.size, 1))
        object.__setattr__(self, "advance", check_int("model_pool.advance", self.advance, 1))
        object.__setattr__(self, "max_age", check_int("model_pool.max_age", self.max_age, 1))


_INITS = ("real", "random")
_REDUCTIONS = ("mean", "sum")
_OBJECTIVES = ("auto", "batch", "full_data")
_OPTIMIZERS = ("adam", "sgd", "lbfgs")
_MONITORS = ("auto", "held_out", "objective")


class _Schedules:
    """What the q and T schedules make of Q and T, for both configs (`DistillConfig`, `StepConfig`): one home."""

    @property
    def max_q(self) -> int:
        """Initialisations drawn per step (Q, or the q schedule's maximum)."""
        return self.Q if self.q_schedule is None else self.q_schedule.max_q

    @property
    def max_T(self) -> int:
        """Inner steps the compiled inner loop runs (T, or the T schedule's maximum)."""
        return self.T if self.t_schedule is None else self.t_schedule.max_steps(self.T)

    def T_at(self, s):
        """Inner steps used at outer step s (1-based)."""
        return self.T if self.t_schedule is None else self.t_schedule.steps_at(self.T, s)


@struct.dataclass
class DistillConfig(_Schedules):
    """Settings of Algorithm 1. Symbols follow the regression paper.

    Attributes:
      m: number of distilled points (rows of X̃, Ỹ).
      steps: S, number of outer (distillation) steps.
      T: inner gradient-descent steps per initialisation (initial T when ``t_schedule`` is set).
      Q: initialisations θ₀ ~ p(θ₀) per outer step (initial q when ``q_schedule`` is set).
      batch_size: b, real pairs per outer step (capped at the number of training rows). The default 2048
        makes every data set of up to 2048 training rows one full batch — the exact training objective, no
        sampling noise. For an MLP (``benchmarks/results/nonlinear.md``) this lifted held-out R² on diabetes
        from 0.454 / 0.457 (b = 128) to 0.492 / 0.493 at m = 20 / 50, at the same step time. Models linear in
        θ use the exact full-data objective whatever b is.
      inner_lr: η̃₀. ``None`` picks half the stability bound of Lemma 2.4 for the initial distilled
        set (linear models) or 0.01 (other models).
      lr_x, lr_y, lr_eta: α_x, α_y, α_η, step sizes on X̃, Ỹ, η̃ (used when no optax optimizer is
        passed): ``outer_optimizer`` on X̃ and Ỹ, plain gradient descent on η̃. ``lr_eta = 0`` keeps η̃ fixed.
      outer_optimizer: ``"adam"`` (default: Adam on X̃ and Ỹ, median 3.5× fewer outer steps to the
        same held-out loss than 0.2's gradient descent, ``benchmarks/results/quality.md``), ``"sgd"``
        (eq. 7's plain gradient descent, the paper's) or ``"lbfgs"`` (``optax.lbfgs`` with its zoom line
        search over X̃, Ỹ and η̃ together, ignoring lr_*; only for deterministic objectives: the
        full-data objective with θ₀ = 0 or the exact expectation over θ₀).
      lambda_inner: λ_I of the inner loss (Def. 2.1), a number ≥ 0, or ``"auto"`` (default): for models linear
        in θ trained to the exact full-data objective (the default for them), λ is chosen by generalised
        cross-validation on the training rows' sufficient statistics (``problem/ridge_cv.py``; one
        eigendecomposition of ΦᵀΦ, no extra pass over the rows), and the outer objective becomes the ridge loss
        with that λ (``FullDataLoss(ridge=λ)``): the distilled set then targets the cross-validated ridge model
        instead of the least-squares fit, which overfits where rows are few (25 rows of diabetes: test R² 0.38
        against 0.27). The choice is in ``out.lambda_inner`` and ``out.meta.lambda_choice`` and in
        ``evaluate``'s notes. Other models and objectives use 1e-3 (0.7's default), recorded the same way. A
        number keeps the paper's objective (no penalty on θ_T) with that λ_I.
      lambda_outer: λ_O (Def. 2.5), the ridge penalty on the distilled set (X̃, Ỹ).
      init: ``"real"`` starts X̃, Ỹ from a random subset of the training rows; ``"random"`` from
        N(0, init_std²) as in Algorithm 1 line 2.
      init_std: standard deviation of the random initialisation.
      reduction: ``"sum"`` takes the meta-gradient of Σ_q L^(q) as in eq. (7); ``"mean"`` of its
        mean, which keeps step sizes independent of Q.
      q_schedule, t_schedule: the appendix A.7 refinements, or ``None``.
      model_pool: a [`ModelPool`][jaxdistill.ModelPool] (or a dict of its entries): start the inner runs from a pool of
        partially trained models instead of fresh θ₀ draws (FRePo); ``None`` (default): fresh draws.
      eta_floor: η̃ is kept ≥ eta_floor · η̃₀ so it stays positive.
      exact_bound_every: where the stability bound of Lemma 2.4 is costly (models linear in θ with
        r = min(m, p) ≥ 64: an ``eigh`` of an r × r matrix, O(r³), every step), it is computed exactly
        every this many outer steps and tracked in between by 8 Lanczos steps warm-started at the last top
        eigenvector, O(m·p) (``core.linalg.gram_top_tracked``). 1: exact every step. Smaller problems
        are exact every step whatever this says.
      eta_cap: for models linear in θ, η̃ is kept ≤ eta_cap × the stability bound of Lemma 2.4 of
        the current X̃ after each update (``None``: no cap; the run may then cross the bound and
        diverge, which is reported).
      standardize: standardise X and Y with training-set statistics (kept with the result).
      validation_fraction: fraction of the given rows held out to report the held-out loss
        (``history.val_loss``; the stopping rule watches it with ``monitor="held_out"``; never used for
        the meta-gradient); 0 disables it.
      eval_every: steps between held-out evaluations (also the chunk of compiled steps).
      patience: stop when the monitored loss (see ``monitor``) has not
        improved by a relative ``min_improvement`` for this many evaluations in a row (status
        ``converged``); ``None`` runs all ``steps``. ``steps`` is the budget either way.
      min_improvement: relative improvement of the best monitored loss that counts as progress.
      divergence_factor: stop at once (status ``diverged``) when the monitored loss exceeds this
        multiple of its best value.
      objective: the outer objective when ``distill(objective=...)`` is not given: ``"auto"`` (the exact
        full-data loss for linear models, where it applies; see ``jaxdistill.default_objective``),
        ``"batch"`` (Def. 2.5 on sampled batches of ``batch_size`` rows, as in the paper) or
        ``"full_data"``.
      monitor: what the stopping rule and ``restore_best`` watch: ``"auto"`` / ``"objective"`` (the training
        objective as a deterministic function of the distilled set: the exact objective where it carries
        its data — ``FullDataLoss`` — else the loss on all training rows, or a fixed sample of
        ``batch_size`` of them, after the inner run from fixed θ₀ draws) or ``"held_out"`` (the held-out
        loss, whenever rows are held out). Held-out splits are small where distillation is used: 24 rows
        on sunspots at the defaults. Measured (``benchmarks/results/monitor.md``, MLP, 4 data sets × m =
        10, 20, 50): the training loss gave mean test R² 0.696 against 0.687, and ended no run at its
        initial set, where the held-out loss kept sunspots' initial 50 rows (0.659 against 0.754); for
        linear models on sunspots it picked the initial set (test R² 0.80), the exact objective a
        converged one (0.86, ``quality.md``). The held-out loss is recorded either way.
      restore_best: return the state with the best monitored loss (``False``: the last state).
      theta0_scale: σ of p(θ₀) = N(0, σ²I) for the default model (``LinearModel``) when no ``model`` is
        passed; ``None`` keeps the model's default, θ₀ = 0. ``paper_a7()`` sets 1 (the paper's N(0, I)).

    Examples:
      >>> import jaxdistill as jd
      >>> config = jd.DistillConfig(m=10, T=20)
      >>> config.replace(m=30).m, jd.DistillConfig.from_dict(config.to_dict()) == config
      (30, True)
      >>> jd.paper_a7().lambda_inner      # the regression paper's settings, as a named config
      0.001

    References:
      J. Mahowald, R. Srinivasan, A. Wang. *Toward Dataset Distillation for Regression Problems*. The
        University of Texas at Austin, preprint. Algorithm 1 and appendix A.7.
    """

    m: int = _static(10)
    steps: int = _static(5000)
    T: int = _static(50)
    Q: int = _static(8)
    batch_size: int = _static(2048)
    inner_lr: float | None = _static(None)
    lr_x: float = _static(0.01)
    lr_y: float = _static(0.01)
    lr_eta: float = _static(0.01)
    lambda_inner: float | str = _static("auto")
    lambda_outer: float = _static(1e-3)
    init: str = _static("real")
    init_std: float = _static(1.0)
    reduction: str = _static("mean")
    q_schedule: QSchedule | None = _static(None)
    t_schedule: TSchedule | None = _static(None)
    model_pool: ModelPool | None = _static(None)
    eta_floor: float = _static(1e-3)
    eta_cap: float | None = _static(0.9)
    exact_bound_every: int = _static(16)
    standardize: bool = _static(True)
    validation_fraction: float = _static(0.1)
    eval_every: int = _static(50)
    theta0_scale: float | None = _static(None)
    patience: int | None = _static(10)
    min_improvement: float = _static(1e-3)
    divergence_factor: float = _static(10.0)
    restore_best: bool = _static(True)
    monitor: str = _static("auto")
    objective: str = _static("auto")
    outer_optimizer: str = _static("adam")

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass, normalise in place
        for name, lo in (("m", 1), ("steps", 1), ("T", 1), ("Q", 1), ("batch_size", 1), ("eval_every", 1),
                         ("exact_bound_every", 1)):
            set_(name, check_int(name, getattr(self, name), lo))
        if self.inner_lr is not None:
            set_("inner_lr", check_float("inner_lr", self.inner_lr, positive=True))
        if isinstance(self.lambda_inner, str):
            if self.lambda_inner != "auto":
                raise ValueError(f"lambda_inner must be a number >= 0 or 'auto', got {self.lambda_inner!r}.")
        else:
            set_("lambda_inner", check_float("lambda_inner", self.lambda_inner, lo=0.0))
        for name in ("lr_x", "lr_y", "lr_eta", "lambda_outer", "init_std"):
            set_(name, check_float(name, getattr(self, name), lo=0.0))
        if self.init not in _INITS:
            raise ValueError(f"init must be one of {_INITS}, got {self.init!r}.")
        if self.outer_optimizer not in _OPTIMIZERS:
            raise ValueError(f"outer_optimizer must be one of {_OPTIMIZERS}, got {self.outer_optimizer!r}.")
        if self.monitor not in _MONITORS:
            raise ValueError(f"monitor must be one of {_MONITORS}, got {self.monitor!r}.")
        if self.objective not in _OBJECTIVES:
            raise ValueError(f"objective must be one of {_OBJECTIVES}, got {self.objective!r}.")
        if self.reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {self.reduction!r}.")
        if self.theta0_scale is not None:
            set_("theta0_scale", check_float("theta0_scale", self.theta0_scale, lo=0.0))
        if self.eta_cap is not None:
            set_("eta_cap", check_float("eta_cap", self.eta_cap, positive=True, hi=1.0))
        set_("eta_floor", check_float("eta_floor", self.eta_floor, positive=True))
        if not self.eta_floor < 1:
            raise ValueError(f"eta_floor must be in (0, 1), got {self.eta_floor}.")
        set_("validation_fraction", check_float("validation_fraction", self.validation_fraction, lo=0.0))
        if not self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}.")
        set_("standardize", check_bool("standardize", self.standardize))
        set_("restore_best", check_bool("restore_best", self.restore_best))
        if self.patience is not None:
            set_("patience", check_int("patience", self.patience, 1))
        set_("min_improvement", check_float("min_improvement", self.min_improvement, lo=0.0))
        if not self.min_improvement < 1:
            raise ValueError(f"min_improvement must be in [0, 1), got {self.min_improvement}.")
        set_("divergence_factor", check_float("divergence_factor", self.divergence_factor, positive=True))
        if not self.divergence_factor > 1:
            raise ValueError(f"divergence_factor must be > 1, got {self.divergence_factor}.")
        for name, cls in (("q_schedule", QSchedule), ("t_schedule", TSchedule), ("model_pool", ModelPool)):
            v = getattr(self, name)
            if isinstance(v, dict):
                try:
                    set_(name, cls(**v))
                except TypeError as exc:
                    fields = [f.name for f in dataclasses.fields(cls)]
                    raise ValueError(f"{name} {v!r} is not valid: {exc}; its entries are {fields}.") from None
            elif v is not None and not isinstance(v, cls):
                raise ValueError(f"{name} must be a {cls.__name__}, a dict of its entries, or None; got {v!r}.")
        if self.q_schedule is not None and self.q_schedule.max_q < self.Q:
            raise ValueError(f"q_schedule.max_q ({self.q_schedule.max_q}) must be >= Q ({self.Q}).")
        if self.model_pool is not None and self.model_pool.size < self.max_q:
            raise ValueError(f"model_pool.size ({self.model_pool.size}) must be >= the {self.max_q} initialisations "
                             "drawn per step (Q, or q_schedule.max_q): each step starts from that many members.")

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (QSchedule, TSchedule, ModelPool)):
                v = {g.name: getattr(v, g.name) for g in dataclasses.fields(v)}
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DistillConfig:
        if not isinstance(d, dict):
            raise ValueError(f"A config must be a mapping of DistillConfig settings, got {type(d).__name__} {d!r}.")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"Unknown DistillConfig settings {sorted(unknown)}; valid ones are {sorted(names)}.")
        return cls(**d)


#: λ_I used by ``lambda_inner="auto"`` where it cannot choose (models not linear in θ, sampled objectives)
FALLBACK_LAMBDA_INNER = 1e-3

#: the fields of [`DistillConfig`][jaxdistill.DistillConfig] that the compiled outer step reads: they fix its program
#: (shapes, loop lengths, branches). Every other field is read on the host only (data preparation, the driver, the
#: stopping rule, checkpoints) or enters the compiled step as a traced value (the learning rates), so changing it
#: compiles nothing.
STEP_FIELDS = ("T", "Q", "reduction", "q_schedule", "t_schedule", "model_pool", "eta_floor", "eta_cap",
               "exact_bound_every")


def _DEFAULT(name: str):  # noqa: N802 - reads as a constant in the field list below
    return DistillConfig.__dataclass_fields__[name].default


@struct.dataclass
class StepConfig(_Schedules):
    """What fixes the compiled outer step: the subset `STEP_FIELDS` of a [`DistillConfig`][jaxdistill.DistillConfig].

    [`BilevelSolver`][jaxdistill.BilevelSolver] carries this, not the whole config, so runs that differ only in
    host-side settings (``steps``, ``patience``, ``min_improvement``, ``divergence_factor``,
    ``restore_best``, ``eval_every``, a checkpoint, …) or in the outer learning rates (traced values) share
    one compiled program. Build it with `of`.

    Attributes:
      T, Q, reduction, q_schedule, t_schedule, model_pool, eta_floor, eta_cap, exact_bound_every: the
        [`DistillConfig`][jaxdistill.DistillConfig] fields of the same names (their defaults too).
    """

    # DistillConfig's own defaults (one source of truth)
    T: int = _static(_DEFAULT("T"))
    Q: int = _static(_DEFAULT("Q"))
    reduction: str = _static(_DEFAULT("reduction"))
    q_schedule: QSchedule | None = _static(None)
    t_schedule: TSchedule | None = _static(None)
    model_pool: ModelPool | None = _static(None)
    eta_floor: float = _static(_DEFAULT("eta_floor"))
    eta_cap: float | None = _static(_DEFAULT("eta_cap"))
    exact_bound_every: int = _static(_DEFAULT("exact_bound_every"))

    @classmethod
    def of(cls, config: DistillConfig | StepConfig) -> StepConfig:
        """The step's part of ``config`` (a [`DistillConfig`][jaxdistill.DistillConfig], or a ``StepConfig`` returned as
        is)."""
        if isinstance(config, StepConfig):
            return config
        return cls(**{name: getattr(config, name) for name in STEP_FIELDS})



def paper_a7(T: int = 100, m: int = 100, steps: int = 2500) -> DistillConfig:
    """The regression paper's appendix A.7 / §2.3 experiment.

    α_x = α_y = 0.0025, α_η = 0.00025, η̃₀ = 0.05, b = 32, q = 30, λ_I = λ_O = 0.001, S = 2500,
    random initialisation, θ₀ ~ N(0, I), Σ_q reduction (eq. 7), sampled batches (Def. 2.5), all S steps
    and the last state returned (no stopping rule), the q and T schedules (max_q is not given in the
    paper; we use 60), 80/20 split. η̃ is capped at 0.9 × the stability bound: the paper does not say
    how η̃ stays stable, and without a cap α_η = 0.00025 pushes it over the bound of Lemma 2.4 within a
    few steps on its own synthetic data (the run then diverges). Not a good default for users: plain
    gradient descent with these step sizes needs thousands of steps, and random initialisation wastes
    the real data.

    Args:
      T: inner steps (the paper: 100, growing by its T schedule).
      m: distilled points.
      steps: outer steps S.

    Returns:
      A [`DistillConfig`][jaxdistill.DistillConfig] with these settings.
    """
    return DistillConfig(
        m=m, steps=steps, T=T, Q=30, batch_size=32, inner_lr=0.05, lr_x=0.0025, lr_y=0.0025,
        lr_eta=0.00025, lambda_inner=1e-3, lambda_outer=1e-3, init="random", reduction="sum",
        q_schedule=QSchedule(max_q=60), t_schedule=TSchedule(), standardize=False, eta_cap=0.9,
        validation_fraction=0.2, eval_every=50, theta0_scale=1.0, objective="batch", patience=None,
        restore_best=False, outer_optimizer="sgd",
    )
