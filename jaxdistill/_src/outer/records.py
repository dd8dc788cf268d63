"""Typed records of a run: its [`Status`][jaxdistill.Status], its [`History`][jaxdistill.History] (arrays) and its
[`RunInfo`][jaxdistill.RunInfo].

Plain host-side values (numpy arrays, Python numbers): they are what results carry, files store and
callbacks see. Nothing here is traced.
"""

from __future__ import annotations

import dataclasses
import enum
import warnings
from typing import Any

import numpy as np

from jaxdistill._src.core.validate import json_safe


class Status(str, enum.Enum):
    """How a run ended (optimistix's ``RESULTS``, as a string enum: ``Status.CONVERGED == "converged"``).

    Only `ok` statuses (``converged``, ``budget``, ``exact``, ``stopped``) are successes; each member's
    `message` says what it means and, for failures, what to change.

    Attributes:
      CONVERGED: the monitored loss stopped improving; the best state is returned (success).
      BUDGET: all steps were run while the monitored loss still improved (success).
      EXACT: a closed-form result, no iterations (success).
      STOPPED: a callback ended the run (success).
      DIVERGED: the monitored loss rose above ``divergence_factor`` × its best value.
      NO_PROGRESS: the distilled set never beat its initial value.
      UNSTABLE: η̃ crossed the stability bound of Lemma 2.4.
      NONFINITE: a step met a non-finite loss or gradient.
    """

    CONVERGED = "converged"
    BUDGET = "budget"
    EXACT = "exact"
    STOPPED = "stopped"
    DIVERGED = "diverged"
    NO_PROGRESS = "no_progress"
    UNSTABLE = "unstable"
    NONFINITE = "nonfinite"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def ok(self) -> bool:
        """Whether the result is usable as it is (a success)."""
        return self in (Status.CONVERGED, Status.BUDGET, Status.EXACT, Status.STOPPED)

    @property
    def message(self) -> str:
        """What the status means, and for a failure what to change."""
        return _MESSAGES[self]

    @classmethod
    def of(cls, value) -> Status:
        """The member for ``value`` (a member or its string; 0.2.0's ``"success"`` reads as ``budget``)."""
        if isinstance(value, cls):
            return value
        if value == "success":
            return cls.BUDGET
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"Unknown status {value!r}; statuses are {[s.value for s in cls]}.") from None


class QualityWarning(UserWarning):
    """The distilled set did worse on the held-out rows than same-size baselines trained on the training rows
    (mean random subset): the run may have ended well, but the set is not worth having as it is. Raise it
    with ``warnings.simplefilter("error", jd.QualityWarning)``; the numbers are in ``out.meta.bilevel.quality``."""


class ProcedureBoundWarning(UserWarning):
    """A distilled set that reproduces only its own training procedure (``out.transfers`` is False) was exported
    to a format other learners read (``to_csv``, ``to_pandas``): learners other than that procedure can score far
    below random rows on it. [`distill_moments`][jaxdistill.distill_moments] gives rows that every learner of second
    moments fits exactly as on all training rows."""


_MESSAGES = {
    Status.CONVERGED: "the monitored loss stopped improving (patience ran out): the best state is returned",
    Status.BUDGET: "all steps were run while the monitored loss was still improving: raise steps for more",
    Status.EXACT: "a closed-form result (no iterations)",
    Status.STOPPED: "a callback ended the run: the state it returns is a valid distilled set",
    Status.DIVERGED: "the monitored loss rose above divergence_factor × its best value: lower lr_x / lr_y / lr_eta "
                     "(or T), or use an adaptive optimizer",
    Status.NO_PROGRESS: "the distilled set never beat its initial value: raise lr_x / lr_y or steps",
    Status.UNSTABLE: "η̃ crossed the stability bound of Lemma 2.4: keep eta_cap set (default 0.9)",
    Status.NONFINITE: "a step met a non-finite loss or gradient: lower lr_x / lr_y / lr_eta or inner_lr, "
                      "or standardise the data (standardize=True)",
}

#: per outer step
STEP_FIELDS = ("loss", "data_loss", "q", "T", "eta", "stability_ratio")
#: per evaluation
EVAL_FIELDS = ("eval_step", "monitored", "eval_time", "val_loss")
_DTYPES = {"eval_step": np.int64, "monitored": np.float64, "eval_time": np.float64, "val_loss": np.float64}


@dataclasses.dataclass(frozen=True)
class History:
    """What a run recorded, as numpy arrays: the first six per outer step, the last four per evaluation (every
    ``eval_every`` steps). ``history.loss`` is the access (``to_dict`` gives a plain dict; ``history["loss"]``
    is deprecated).

    Attributes:
      loss: the outer loss of Def. 2.5, the mean over the active θ₀.
      data_loss: the same without the λ_O term.
      q: active initialisations.
      T: inner steps.
      eta: the η̃ used.
      stability_ratio: η̃ / the stability bound (NaN where none applies).
      eval_step: the step of each evaluation.
      monitored: the loss the stopping rule watched.
      eval_time: seconds since the start (compilation included).
      val_loss: the held-out loss (empty when no rows were held out).
    """

    loss: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    data_loss: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    q: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    T: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    eta: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    stability_ratio: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    eval_step: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))
    monitored: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    eval_time: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    val_loss: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))

    @property
    def steps(self) -> int:
        """Outer steps recorded."""
        return int(np.asarray(self.loss).size)

    def __getitem__(self, name: str) -> np.ndarray:
        """Deprecated: ``history.loss``, not ``history["loss"]`` (``to_dict()`` gives a plain dict)."""
        warnings.warn(f'history["{name}"] is deprecated: use history.{name} (or history.to_dict()).',
                      DeprecationWarning, stacklevel=2)
        if name not in STEP_FIELDS + EVAL_FIELDS:
            raise KeyError(f"History has no {name!r}; its fields are {list(STEP_FIELDS + EVAL_FIELDS)}.")
        return getattr(self, name)

    def get(self, name: str, default=None):
        """Deprecated: ``history.loss``, or ``history.to_dict().get(name)``."""
        warnings.warn(f"history.get({name!r}) is deprecated: use history.{name} (or history.to_dict().get).",
                      DeprecationWarning, stacklevel=2)
        return getattr(self, name) if name in STEP_FIELDS + EVAL_FIELDS else default

    def __iter__(self):
        return iter(STEP_FIELDS + EVAL_FIELDS)

    def keys(self):
        return list(STEP_FIELDS + EVAL_FIELDS)

    def items(self):
        return [(k, getattr(self, k)) for k in STEP_FIELDS + EVAL_FIELDS]

    def to_dict(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(getattr(self, k)) for k in STEP_FIELDS + EVAL_FIELDS}

    @classmethod
    def from_dict(cls, d: dict | History | None) -> History:
        """From a dict of arrays (a file's or a checkpoint's); missing fields are empty, unknown ones refused."""
        if isinstance(d, History):
            return d
        d = d or {}
        unknown = sorted(set(d) - set(STEP_FIELDS + EVAL_FIELDS))
        if unknown:
            raise ValueError(f"Unknown history field(s) {unknown}; fields are {list(STEP_FIELDS + EVAL_FIELDS)}.")
        return cls(**{k: np.asarray(v, _DTYPES.get(k)) for k, v in d.items()})

    def to_pandas(self):
        """(per-step DataFrame indexed by step, per-evaluation DataFrame indexed by eval_step); needs pandas."""
        import pandas as pd
        steps = pd.DataFrame({k: np.asarray(getattr(self, k)) for k in STEP_FIELDS},
                             index=pd.RangeIndex(1, self.steps + 1, name="step"))
        evals = {k: np.asarray(getattr(self, k)) for k in ("monitored", "eval_time")}
        if np.asarray(self.val_loss).size == np.asarray(self.eval_step).size:
            evals["val_loss"] = np.asarray(self.val_loss)
        return steps, pd.DataFrame(evals, index=pd.Index(np.asarray(self.eval_step), name="eval_step"))


@dataclasses.dataclass(frozen=True)
class BilevelInfo:
    """What a bilevel run ([`distill`][jaxdistill.distill], [`Distiller`][jaxdistill.Distiller]) records: its
    [`RunInfo`][jaxdistill.RunInfo]'s ``bilevel`` part (None for a result made otherwise).

    Attributes:
      objective: the outer objective (repr).
      optimizer: the outer optimizer's fingerprint (16 hex digits).
      n_validation: rows held out.
      wall_time_s: seconds of the run (compilation included).
      steps_run: outer steps done.
      returned_step: the step whose state is returned (the best monitored one with ``restore_best``).
      monitor: what the stopping rule watched.
      best_monitored_loss: the best monitored value.
      compilations: programs compiled by the call, from ``jax.monitoring`` events:
        ``{"programs": …, "backend_compiles": …, "seconds": …}`` (new programs lowered; those XLA compiled, not
        found in the persistent cache; seconds of tracing, lowering and compiling).
      jaxdistill_version: the version that ran it.
      jax_version: JAX's version.
      backend: JAX's backend (``"cpu"``, ``"gpu"``, ``"tpu"``).
      devices: the devices it ran on.
      checkpoint_error: why a checkpoint could not be written (the run went on), if that happened.
      quality: the check of the distilled set against same-size baselines on the held-out rows (see
        [`QualityWarning`][jaxdistill.QualityWarning]): their held-out losses, how much the check can see (the
        held-out rows, the subsets' ``subset_loss_std`` and the standard error of their mean, ``subset_mean_se``: a
        distilled loss within a few of those of the mean is a tie, not a verdict) and a ``warning`` if the
        distilled set lost.
    """

    objective: str | None = None
    optimizer: str | None = None
    n_validation: int | None = None
    wall_time_s: float | None = None
    steps_run: int | None = None
    returned_step: int | None = None
    monitor: str | None = None
    best_monitored_loss: float | None = None
    compilations: dict | None = None
    jaxdistill_version: str | None = None
    jax_version: str | None = None
    backend: str | None = None
    devices: Any = None
    checkpoint_error: str | None = None
    quality: dict | None = None


@dataclasses.dataclass(frozen=True)
class KRRPaperInfo:
    """What a KRR-paper set ([`distill_analytic`][jaxdistill.distill_analytic]) records: its
    [`RunInfo`][jaxdistill.RunInfo]'s ``krr_paper`` part (None for a result made otherwise).

    Attributes:
      original_lambda: λ of the original ridge model.
      lambda_s: λ_S of the distilled one.
      theta: θ* in standardised units.
      max_rel_WS_error: the check of W_S (largest relative error).
    """

    original_lambda: float | None = None
    lambda_s: float | None = None
    theta: list | None = None
    max_rel_WS_error: float | None = None


@dataclasses.dataclass(frozen=True)
class CommandInfo:
    """What the command line (``jaxdistill run``, ``jaxdistill sweep``) records: its
    [`RunInfo`][jaxdistill.RunInfo]'s ``command`` part (None for a result made in Python).

    Attributes:
      experiment: the experiment file's settings.
      data_fingerprint: the data's fingerprint.
    """

    experiment: dict | None = None
    data_fingerprint: str | None = None


_PARTS = {"bilevel": BilevelInfo, "krr_paper": KRRPaperInfo, "command": CommandInfo}
_PART_OF = {f.name: part for part, cls in _PARTS.items() for f in dataclasses.fields(cls)}
# A saved file's ``meta`` keys in the order 0.8 wrote them (one flat dict, whatever made the result); fields added
# since follow in their declared order (`_FILE_KEYS`).
_FILE_KEYS_08 = (
    "kind", "objective", "optimizer", "n_train", "n_validation", "wall_time_s", "steps_run", "returned_step", "monitor",
    "best_monitored_loss", "init_rows", "compilations", "jaxdistill_version", "jax_version", "backend", "devices",
    "saved_with", "checkpoint_error", "lambda_choice", "quality", "original_lambda", "lambda_s",
    "full_data_lambda_inner", "theta", "max_rel_WS_error", "experiment", "data_fingerprint", "privacy")


@dataclasses.dataclass(frozen=True, init=False)
class RunInfo:
    """What is known about how a result was made, split by what made it: fields every kind of result may carry,
    and one part per producer — ``bilevel`` ([`BilevelInfo`][jaxdistill.BilevelInfo]: a run of
    [`distill`][jaxdistill.distill] or [`Distiller`][jaxdistill.Distiller]), ``krr_paper``
    ([`KRRPaperInfo`][jaxdistill.KRRPaperInfo]: a set of [`distill_analytic`][jaxdistill.distill_analytic]) and
    ``command`` ([`CommandInfo`][jaxdistill.CommandInfo]: ``jaxdistill run``) —, None where that producer had no
    part (``out.meta.bilevel is None`` for a set built from statistics).

    A saved file holds it as one flat dict (``to_dict``), and it reads as that dict too: ``meta["steps_run"]``,
    ``meta.get("privacy")``, ``"theta" in meta`` look up any key, a part's or ``extra``'s. The constructor and
    [`replace`][jaxdistill.RunInfo.replace] take a part's fields by their flat names as well (``RunInfo(steps_run=3)``
    fills ``bilevel``).

    Attributes:
      kind: what made it (None for a bilevel run; ``"analytic (KRR paper)"``, ``"moments"``, …).
      n_train: rows the set was made from (or the statistics' n).
      init_rows: a bilevel run or a moment set: rows of the caller's X that started X̃ (``init="real"``), or None.
      saved_with: a loaded result: the version that saved the file.
      lambda_choice: every result but a KRR-paper set: how λ_I was set: ``{"method": "given" | "gcv" | "fallback",
        "lambda": …}`` (GCV adds ``df``, ``n``, ``grid`` and a ``description``; fallback a ``why``).
      full_data_lambda_inner: a set built from statistics: the full-data λ_I it reproduces.
      privacy: a set made from a private release: its guarantee — ε, δ, the neighbouring relation, the clipping
        bounds, the mechanism, the accountant and versions (per party for a sum of releases) —, the set's
        construction and its ridge penalty; None for a set of raw rows.
      bilevel: a bilevel run's record ([`BilevelInfo`][jaxdistill.BilevelInfo]), or None.
      krr_paper: a KRR-paper set's record ([`KRRPaperInfo`][jaxdistill.KRRPaperInfo]), or None.
      command: the command line's record ([`CommandInfo`][jaxdistill.CommandInfo]), or None.
      extra: anything else (e.g. entries of files written by other versions).

    Examples:
      A bilevel run fills ``bilevel``; a set built from statistics has no such part:

      >>> from jaxdistill import datasets
      >>> X, Y = datasets.load("diabetes")
      >>> meta = jd.distill(X, Y, m=10, steps=40, progress=False).meta
      >>> meta.bilevel.steps_run, meta["steps_run"], meta.krr_paper is None
      (40, 40, True)
      >>> jd.distill_moments(X, Y, m=20).meta.bilevel is None
      True
    """

    kind: str | None = None
    n_train: int | None = None
    init_rows: list | None = None
    saved_with: str | None = None
    lambda_choice: dict | None = None
    full_data_lambda_inner: float | None = None
    privacy: dict | None = None
    bilevel: BilevelInfo | None = None
    krr_paper: KRRPaperInfo | None = None
    command: CommandInfo | None = None
    extra: dict = dataclasses.field(default_factory=dict)

    _RENAMED = {"lam": "original_lambda", "lam_s": "lambda_s"}

    def __init__(self, **fields):
        unknown = sorted(set(fields) - _SETTABLE - {"extra"})
        if unknown:
            raise TypeError(f"RunInfo got unknown field(s) {unknown}; put other entries in extra={{...}}.")
        for name in _COMMON:
            object.__setattr__(self, name, fields.get(name))
        object.__setattr__(self, "extra", dict(fields.get("extra") or {}))
        for part, cls in _PARTS.items():
            flat = {k: v for k, v in fields.items() if _PART_OF.get(k) == part}
            record = fields.get(part)
            if record is not None and not isinstance(record, cls):
                raise TypeError(f"RunInfo's {part} must be a {cls.__name__} or None, got {type(record).__name__}.")
            if flat:
                record = dataclasses.replace(record or cls(), **flat)
            object.__setattr__(self, part, record)

    def __getattr__(self, name: str):
        """0.8's flat attributes (``meta.steps_run``): deprecated, each names its part."""
        part = _PART_OF.get(name)
        if part is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        warnings.warn(f"meta.{name} is deprecated: use meta.{part}.{name} (None where meta.{part} is None), "
                      f"or meta.get({name!r}).", DeprecationWarning, stacklevel=2)
        return self._flat(name)

    def _flat(self, name: str):
        part = _PART_OF.get(name)
        if part is None:
            return getattr(self, name) if name in _COMMON else self.extra.get(name)
        record = self.__dict__[part]
        return None if record is None else getattr(record, name)

    def __getitem__(self, name: str):
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def get(self, name: str, default=None):
        """A saved file's key (a common field's, a part's or ``extra``'s), or ``default`` where it is not set.

        Args:
          name: the key (0.7's ``lam`` / ``lam_s`` read as ``original_lambda`` / ``lambda_s``).
          default: what to return where the key is not set.

        Returns:
          The value, or ``default``.
        """
        value = self._flat(self._RENAMED.get(name, name))
        return default if value is None else value

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def replace(self, **changes) -> RunInfo:
        """A copy with ``changes``: fields, a part's fields by their flat names, parts, or other keys (into
        ``extra``).

        Args:
          **changes: the new values.

        Returns:
          The new `RunInfo`.
        """
        fields = {name: getattr(self, name) for name in (*_COMMON, *_PARTS)}
        extra = {k: v for k, v in changes.items() if k not in _SETTABLE and k != "extra"}
        return RunInfo(**{**fields, **{k: v for k, v in changes.items() if k in _SETTABLE}},
                       extra={**self.extra, **changes.get("extra", {}), **extra})

    def to_dict(self) -> dict[str, Any]:
        """The keys that are set, as the one flat dict a saved file holds and strict JSON can hold (``extra``
        entries merged in; a value that is not finite is None).

        Returns:
          The dict.
        """
        out = {k: v for k in _FILE_KEYS if (v := self._flat(k)) is not None}
        return json_safe({**self.extra, **out})

    @classmethod
    def from_dict(cls, d: dict | RunInfo | None) -> RunInfo:
        """From a flat dict (a saved file's ``meta``; 0.7's ``lam``/``lam_s`` keys read as their new names).

        Args:
          d: the dict (a `RunInfo` is returned as it is; None gives an empty one).

        Returns:
          The `RunInfo`, each key in its part; keys it does not know go to ``extra``.
        """
        if isinstance(d, RunInfo):
            return d
        d = {cls._RENAMED.get(k, k): v for k, v in (d or {}).items()}
        return cls(**{k: v for k, v in d.items() if k in _FILE_KEYS},
                   extra={k: v for k, v in d.items() if k not in _FILE_KEYS})


#: the fields every kind of result may carry: RunInfo's own, besides its parts and ``extra``
_COMMON = tuple(f.name for f in dataclasses.fields(RunInfo) if f.name not in _PARTS and f.name != "extra")

#: every key `RunInfo.to_dict` may write: 0.8's in its order, then any field added since
_FILE_KEYS = _FILE_KEYS_08 + tuple(k for k in (*_COMMON, *_PART_OF) if k not in _FILE_KEYS_08)
#: what the constructor and `RunInfo.replace` take by name (besides ``extra``): fields, parts, and parts' fields
_SETTABLE = frozenset((*_COMMON, *_PARTS, *_PART_OF))
