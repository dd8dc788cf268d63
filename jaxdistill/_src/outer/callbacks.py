"""Callbacks: what runs on the host between compiled chunks of a distillation.

One small protocol ([`Callback`][jaxdistill.Callback]): ``on_start(run)`` before the first step, ``on_evaluation(run)``
after every evaluation (every ``eval_every`` steps; return ``True`` to end the run, status ``stopped``) and
``on_end(run)`` when the run is over. ``run`` is a [`RunView`][jaxdistill.RunView]: the step, this evaluation's metrics,
the state, the history so far, the settings. Nothing here enters a compiled function, so adding,
removing or changing callbacks never recompiles.

Shipped: [`ProgressCallback`][jaxdistill.ProgressCallback] (a line on stderr),
[`CheckpointCallback`][jaxdistill.CheckpointCallback] (exact resume), [`MetricsLogger`][jaxdistill.MetricsLogger] (CSV
or JSONL), [`TensorBoardLogger`][jaxdistill.TensorBoardLogger] (needs ``tensorboardX``). The stopping rule,
[`StoppingRule`][jaxdistill.StoppingRule], follows the same protocol and is always run first (it decides the status).

A callback of your own is a few lines::

    class StopAtLoss(jd.Callback):
        def on_evaluation(self, run):
            return run.metrics["monitored"] < 0.1      # True ends the run (status "stopped")
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import warnings
from typing import Any

import jax
import numpy as np

from jaxdistill._src.outer.progress import ProgressBar
from jaxdistill._src.outer.records import History, Status


class RunView:
    """What a callback sees of a running distillation (read it; do not modify it).

    Args:
      config: as below (the driver builds the view; callbacks receive it).
      state: as below.
      stopping: as below.
      history_fn: a function giving `history` when it is read.
      identity_fn: a function giving `identity` when it is read.

    Attributes:
      config: the run's [`DistillConfig`][jaxdistill.DistillConfig].
      step: outer steps done.
      start_step: the step the run started (or resumed) at.
      metrics: this evaluation's values: ``step``, ``loss`` (outer data loss of the last step), ``eta``,
        ``monitored`` (what the stopping rule watches), ``best`` (its best value so far), ``val_loss`` (when
        rows are held out), ``elapsed`` (seconds since the start).
      state: the outer loop's [`DistillState`][jaxdistill.DistillState] (on the device).
      stopping: the [`StoppingRule`][jaxdistill.StoppingRule] (best step and value, patience left).
      status: the final [`Status`][jaxdistill.Status] (in ``on_end`` only; else None).
      result: the [`DistillOutput`][jaxdistill.DistillOutput] (in ``on_end`` only; else None).
      identity: what identifies this run in a checkpoint (settings, key, data, components).
    """

    def __init__(self, config, state, stopping, history_fn, identity_fn):
        self.config, self.state, self.stopping = config, state, stopping
        self.step = self.start_step = int(state.step)
        self.metrics: dict[str, float] = {}
        self.status: Status | None = None
        self.result = None
        self._history_fn, self._identity_fn, self._identity = history_fn, identity_fn, None
        self._restored = None

    @property
    def history(self) -> History:
        """The history so far (assembled on request)."""
        return self._history_fn()

    @property
    def identity(self) -> dict:
        if self._identity is None:
            self._identity = self._identity_fn()
        return self._identity

    @property
    def finished(self) -> bool:
        """Whether no more steps will run (budget spent, stopping rule ended it, or the step failed)."""
        return self.step >= self.config.steps or bool(self.stopping.stopped) or bool(self.state.failed)

    def restore(self, state, history: dict, stopping_arrays: dict) -> None:
        """Continue from a saved state (for checkpointing callbacks, in ``on_start``)."""
        self._restored = (state, history)
        self.state, self.step, self.start_step = state, int(state.step), int(state.step)
        self.stopping.load_arrays(stopping_arrays)

    def take_restored(self):
        """(state, history) handed to `restore` since the last call, or None (for the driver, once per callback)."""
        restored, self._restored = self._restored, None
        return restored


class Callback:
    """Base class of callbacks: override the hooks you need (all optional)."""

    #: callbacks that may restore a saved state (checkpoints) start before the others
    restores: bool = False
    #: a side channel (logging, progress): if one of its hooks fails, it warns once and is switched off, and the run
    #: goes on without it (`call_hook`); a callback that is not one (a stopping rule of yours) fails the run
    side_channel: bool = False

    def on_start(self, run: RunView) -> None:
        """Before the first step (or after a resume)."""

    def on_evaluation(self, run: RunView) -> bool | None:
        """After each evaluation; return True to end the run (status ``stopped``)."""

    def on_end(self, run: RunView) -> None:
        """When the run is over (``run.status`` and ``run.result`` are set)."""


class StoppingRule(Callback):
    """When a run ends and which state it returns: a stopping rule on the monitored loss.

    At every evaluation it sees the monitored loss — the training objective from fixed θ₀ draws on fixed
    rows (the default), or the held-out loss (``monitor="held_out"``):

    * it keeps the **best** parameters seen (lowest monitored loss, the initial set included), which the run
      returns when ``config.restore_best`` is set;
    * **converged**: the best loss has not improved by a relative ``min_improvement`` for ``patience``
      evaluations in a row (``patience=None`` never stops early);
    * **nonfinite**: the monitored (or held-out) loss is NaN/inf; **diverged**: the monitored loss rose above
      ``divergence_factor`` × its best value. Both stop the run at once.

    Host-side Python with a dict-of-arrays form, saved in checkpoints: a resumed run makes the same decisions.

    Args:
      patience: evaluations without a relative improvement of ``min_improvement`` before the run converges
        (None: never stops early).
      min_improvement: the relative improvement of the best monitored loss that counts.
      divergence_factor: the run diverged when the monitored loss rises above this × its best value.
    """

    def __init__(self, patience: int | None, min_improvement: float, divergence_factor: float):
        self.patience, self.min_improvement, self.divergence_factor = patience, min_improvement, divergence_factor
        self.best_value = np.inf
        self.best_step = -1
        self.best_params: tuple[np.ndarray, ...] | None = None
        self.since_best = 0
        self.stopped = ""          # "", "converged", "diverged" or "nonfinite"
        self.recovered_at: list[int] = []   # steps at which a divergence was recovered from (`recover`)

    @classmethod
    def from_config(cls, config) -> StoppingRule:
        return cls(config.patience, config.min_improvement, config.divergence_factor)

    def on_evaluation(self, run: RunView) -> bool:
        m = run.metrics
        v = m.get("val_loss")
        # a non-finite held-out loss ends the run (nonfinite) whatever is monitored
        self.update(m["step"], v if v is not None and not np.isfinite(v) else m["monitored"], run.state.params)
        m["best"] = self.best_value
        return bool(self.stopped)

    def update(self, step: int, value: float | None, params) -> None:
        """Record the monitored loss after ``step`` steps, with the parameters it belongs to."""
        if value is None:
            return
        if not np.isfinite(value):
            self.stopped = "nonfinite"
            return
        if value > self.divergence_factor * self.best_value:
            self.stopped = "diverged"
            return
        if self.best_params is None or value < self.best_value * (1.0 - self.min_improvement):
            self.since_best = 0
        else:
            self.since_best += 1
        if value < self.best_value:
            self.best_value, self.best_step = float(value), int(step)
            self.best_params = tuple(np.array(a) for a in params)
        if self.patience is not None and self.since_best >= self.patience:
            self.stopped = "converged"

    def recover(self, step: int) -> None:
        """Go on after a divergence at ``step`` (the driver restores the best state with lower outer rates)."""
        self.recovered_at.append(int(step))
        self.stopped, self.since_best = "", 0

    def status(self, failed: bool, crossed_bound: bool, interrupted: bool = False) -> Status:
        if failed or self.stopped == "nonfinite":
            return Status.NONFINITE
        if self.stopped == "diverged":
            return Status.DIVERGED
        if crossed_bound:
            return Status.UNSTABLE
        if self.best_step == 0 and self.best_params is not None:
            return Status.NO_PROGRESS
        if self.stopped:
            return Status.of(self.stopped)
        return Status.STOPPED if interrupted else Status.BUDGET

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {"best_value": np.float64(self.best_value), "best_step": np.int64(self.best_step),
               "since_best": np.int64(self.since_best), "stopped": np.str_(self.stopped),
               "recovered_at": np.asarray(self.recovered_at, np.int64)}
        for i, a in enumerate(self.best_params or ()):
            out[f"best_param_{i}"] = a
        return out

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.best_value = float(arrays["best_value"])
        self.best_step = int(arrays["best_step"])
        self.since_best = int(arrays["since_best"])
        self.stopped = str(arrays["stopped"])
        self.recovered_at = [int(s) for s in np.asarray(arrays.get("recovered_at", np.zeros(0, np.int64)))]
        params = [arrays[k] for k in sorted(k for k in arrays if k.startswith("best_param_"))]
        self.best_params = tuple(params) if params else None


class ProgressCallback(Callback):
    """Progress on ``stream`` (default stderr): on a terminal one line rewritten in place; elsewhere a log line
    every ``log_every`` seconds and a closing line with the status. Shows the step, the outer data loss, the
    held-out loss, η̃, elapsed time, the rate and the time left. A stream that fails (closed, a broken pipe) is
    reported once; the run goes on.

    Args:
      stream: where to write (default ``sys.stderr``).
      log_every: seconds between log lines when the stream is not a terminal.
    """

    side_channel = True

    def __init__(self, stream=None, log_every: float = 10.0):
        self.stream, self.log_every, self.bar = stream, log_every, None

    def on_start(self, run: RunView) -> None:
        self.bar = None if run.finished else ProgressBar(run.config.steps, stream=self.stream,
                                                          log_every=self.log_every, start_step=run.step)

    def on_evaluation(self, run: RunView) -> None:
        if self.bar is not None and run.step > run.start_step:
            self.bar({**run.metrics, "steps": run.config.steps})

    def on_end(self, run: RunView) -> None:
        if self.bar is not None:
            self.bar.close(f"{run.status} after {run.step} steps")


class CheckpointCallback(Callback):
    """Writes the full run state to ``path`` atomically every ``every`` steps (default: every evaluation) and at
    the end; with ``resume`` (default) a run whose checkpoint exists continues from it and ends exactly as the
    uninterrupted run would (same keys, optimizer state, stopping rule). A checkpoint of another run (settings,
    key, data, components) is refused, naming what differs. ``steps`` is a budget, not identity. A checkpoint
    that cannot be written is reported once as a warning; the run goes on (``result.meta.bilevel.checkpoint_error``).
    Across processes only process 0 writes.

    Args:
      path: the checkpoint file.
      every: steps between checkpoints (rounded up to a multiple of ``eval_every``; default: every evaluation).
      resume: continue from an existing checkpoint at ``path`` (False overwrites it).
    """

    restores = True     # run before other callbacks' on_start: they see the resumed step

    def __init__(self, path: str | os.PathLike, every: int | None = None, resume: bool = True):
        self.path, self.every, self.resume = os.fspath(path), every, resume
        self.error: str | None = None
        self._count, self._saved_step = 0, None

    def on_start(self, run: RunView) -> None:
        from jaxdistill._src.io import checkpoint as ckpt
        self._count, self._saved_step, self.error = 0, None, None
        if os.path.exists(self.path) and not os.path.isdir(self.path) and not os.path.isfile(self.path):
            raise ValueError(f"The checkpoint path {self.path!r} is a device, pipe or socket, not a file: a checkpoint "
                             "can neither be read from nor written to it. Give a file path such as 'run.ckpt'.")
        if self.resume and os.path.exists(self.path):
            state, history, extra = ckpt.load_checkpoint(self.path, run.state, run.identity)
            run.restore(state, history, extra)

    def _save(self, run: RunView) -> None:
        from jaxdistill._src.io import checkpoint as ckpt
        if jax.process_index() != 0:           # several processes: one writer
            return
        try:
            ckpt.save_checkpoint(self.path, run.state, run.history.to_dict(), run.identity,
                                 run.stopping.to_arrays())
            self._saved_step = run.step
        except (OSError, ValueError) as exc:
            if self.error is None:
                warnings.warn(f"Could not write the checkpoint: {exc}. The run goes on; its result is returned as "
                              "usual (save it with out.save(path)).", stacklevel=2)
            self.error = str(exc)

    def on_evaluation(self, run: RunView) -> None:
        if run.step == run.start_step:
            return
        self._count += 1
        every = max(1, -(-(self.every or run.config.eval_every) // run.config.eval_every))
        if self._count % every == 0 or run.finished:
            self._save(run)

    def on_end(self, run: RunView) -> None:
        if run.step > run.start_step and self._saved_step != run.step:
            self._save(run)


_LOG_FIELDS = ("step", "loss", "eta", "monitored", "best", "val_loss", "elapsed")


class MetricsLogger(Callback):
    """One row per evaluation in a CSV (``.csv``) or JSON-lines (``.jsonl``) file: step, outer data loss, η̃,
    the monitored loss and its best value, the held-out loss (empty / null when none) and the elapsed seconds.
    Written and flushed at each evaluation, so the file can be followed while the run goes on. On a resumed
    run, rows after the resume step are dropped and the file continues (a torn last line, from a run killed while
    writing it, is dropped too). A file that cannot be written (a full disk) is reported once; the run goes on.

    Args:
      path: the file, named ``*.csv`` or ``*.jsonl`` (its format follows the name).
    """

    side_channel = True

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.kind = os.path.splitext(self.path)[1].lower()
        if self.kind not in (".csv", ".jsonl"):
            raise ValueError(f"MetricsLogger writes .csv or .jsonl files; got {self.path!r}. Name the file "
                             "'metrics.csv' or 'metrics.jsonl'.")
        from jaxdistill._src.io.files import check_writable
        check_writable(self.path)                # a link, a directory, a name too long: refused before the run
        self._file = None

    def _kept_rows(self, before: int) -> list[str]:
        if not os.path.isfile(self.path):
            return []
        with open(self.path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        kept = []
        for ln in lines[1:] if self.kind == ".csv" else lines:
            try:
                step = int(float(ln.split(",")[0])) if self.kind == ".csv" else int(json.loads(ln)["step"])
            except (ValueError, KeyError, TypeError, IndexError):   # a torn or foreign line: not a row of this run
                continue
            if step < before:
                kept.append(ln)
        return kept

    def _write(self, row: dict) -> None:
        if self.kind == ".csv":
            csv.writer(self._file).writerow(["" if v is None else v for v in row.values()])
        else:
            self._file.write(json.dumps({k: _json_number(v) for k, v in row.items()}) + "\n")
        self._file.flush()

    def on_start(self, run: RunView) -> None:
        keep = self._kept_rows(run.step) if run.step > 0 else []
        self._file = open(self.path, "w", encoding="utf-8", newline="")
        if self.kind == ".csv":
            self._file.write(",".join(_LOG_FIELDS) + "\n")
        for ln in keep:
            self._file.write(ln + "\n")
        if run.step > 0:          # resumed: the resume step's evaluation is in the saved history
            h = run.history
            self._write({"step": run.step, "loss": float(h.data_loss[-1]) if h.data_loss.size else None,
                         "eta": float(run.state.params.eta), "monitored": float(h.monitored[-1]),
                         "best": run.stopping.best_value,
                         "val_loss": float(h.val_loss[-1]) if h.val_loss.size else None,
                         "elapsed": float(h.eval_time[-1])})
        self._file.flush()

    def on_evaluation(self, run: RunView) -> None:
        if self._file is None or (run.step == run.start_step and run.step > 0):
            return
        self._write({k: run.metrics.get(k) for k in _LOG_FIELDS})

    def on_end(self, run: RunView) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _json_number(v: Any):
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return v if math.isfinite(v) else str(v)      # JSON has no NaN/inf: written as "nan" / "inf"
    return v


class TensorBoardLogger(Callback):
    """The evaluation metrics as TensorBoard scalars under ``logdir`` (``distill/loss``, ``distill/eta``,
    ``distill/monitored``, ``distill/val_loss``). Needs the optional extra: ``pip install "jaxdistill[tensorboard]"``
    (``tensorboardX``). A writer that fails is reported once; the run goes on.

    Args:
      logdir: the TensorBoard log folder (created when the run starts).
    """

    side_channel = True

    def __init__(self, logdir: str | os.PathLike):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise ImportError("TensorBoardLogger needs tensorboardX: pip install 'jaxdistill[tensorboard]'.") from None
        self.logdir, self._writer_cls, self._writer = os.fspath(logdir), SummaryWriter, None

    def on_start(self, run: RunView) -> None:
        self._writer = self._writer_cls(self.logdir)

    def on_evaluation(self, run: RunView) -> None:
        for k in ("loss", "eta", "monitored", "val_loss"):
            v = run.metrics.get(k)
            if v is not None and np.isfinite(v):
                self._writer.add_scalar(f"distill/{k}", float(v), run.step)

    def on_end(self, run: RunView) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def call_hook(cb: Callback, hook: str, run: RunView):
    """``cb.<hook>(run)``. A side channel (``cb.side_channel``: logging, progress) that fails warns once and is switched
    off for the rest of the run: logging and progress never take a run with them. Any other callback's failure is
    raised."""
    if getattr(cb, "_switched_off", False):
        return None
    try:
        return getattr(cb, hook)(run)
    except Exception as exc:  # noqa: BLE001 - a side channel's failure of any kind is reported, not fatal
        if not cb.side_channel:
            raise
        cb._switched_off = True
        warnings.warn(f"{type(cb).__name__} failed in {hook} ({type(exc).__name__}: {exc}); the run goes on without "
                      "it (its output stops here).", RuntimeWarning, stacklevel=2)
        return None


def callback_list(callbacks) -> list[Callback]:
    """``callbacks`` as a list, checked: a generator is read once, here (not consumed by a check and then found
    empty); a single Callback, or anything that is not one, is refused with what to pass instead."""
    if isinstance(callbacks, Callback):
        raise ValueError(f"callbacks must be a list of Callback objects; got one ({callbacks!r}): pass "
                         "callbacks=[...].")
    try:
        callbacks = list(callbacks)
    except TypeError:
        raise ValueError(f"callbacks must be a list of Callback objects, got {callbacks!r}.") from None
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise ValueError(f"callbacks must be jaxdistill Callback objects (subclass jd.Callback), got {cb!r}.")
    return callbacks


def default_callbacks(progress: bool | None) -> list[Callback]:
    """The progress display where it is wanted (default: when stderr is a terminal)."""
    show = sys.stderr.isatty() if progress is None else bool(progress)
    return [ProgressCallback()] if show else []
