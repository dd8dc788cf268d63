"""``distill()``: the one-call entry point, a thin builder over problem / solver / output."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdistill._src import checkpoint as ckpt
from jaxdistill._src import progress as progress_lib
from jaxdistill._src.config import DistillConfig
from jaxdistill._src.data import Standardizer, check_xy
from jaxdistill._src.inner import InnerSolver
from jaxdistill._src.models import InnerModel
from jaxdistill._src.output import DistillOutput
from jaxdistill._src.solver import BilevelSolver
from jaxdistill._src.version import __version__


def distill(X, Y, m: int | None = None, *, key: jax.Array | int | None = None,
            config: DistillConfig | None = None, model: InnerModel | None = None,
            inner_solver: InnerSolver | None = None,
            optimizer_x: optax.GradientTransformation | None = None,
            optimizer_y: optax.GradientTransformation | None = None,
            optimizer_eta: optax.GradientTransformation | None = None,
            validation: tuple[Any, Any] | None = None, progress: bool | None = None,
            raise_on_failure: bool = False, checkpoint: str | os.PathLike | None = None,
            checkpoint_every: int | None = None, resume: bool = True, **overrides) -> DistillOutput:
    """Distil a regression data set (X, Y) into m synthetic points (X̃, Ỹ) and an inner learning rate η̃.

    Runs Algorithm 1 of Mahowald et al. (*Toward Dataset Distillation for Regression Problems*,
    appendix A.3): outer gradient descent (eq. 7) on the outer loss of Def. 2.5, whose gradient is
    taken through T steps of inner gradient descent (eq. 3) from Q random initialisations.

    Args:
      X: real inputs, shape (n, d).
      Y: real targets, shape (n,) or (n, d_out).
      m: number of distilled points (overrides ``config.m``).
      key: ``jax.random`` key or integer seed (default 0). The whole run is a function of it.
      config: a :class:`DistillConfig`; ``**overrides`` replace single fields of it.
      model: inner model (default linear, θ₀ ~ N(0, I)).
      inner_solver: how θ_T is computed (default: the exact fast path :class:`ExactLinearGD` for
        linear models, the scan :class:`UnrolledGD` otherwise).
      optimizer_x, optimizer_y, optimizer_eta: optax transformations replacing plain gradient descent.
      validation: optional held-out (X_val, Y_val) in original units; if omitted,
        ``config.validation_fraction`` of the rows are held out for monitoring.
      progress: print a progress line (default: when stderr is a terminal).
      raise_on_failure: raise ``FloatingPointError`` if the run stops at a non-finite loss,
        instead of returning the last finite state with ``status="nonfinite"``.
      checkpoint: path of a checkpoint file, written atomically every ``checkpoint_every`` steps
        (default: every ``eval_every`` steps) and at the end. If it exists and ``resume`` is true, the
        run continues from it and ends exactly as the uninterrupted run would.
      checkpoint_every: steps between checkpoints (rounded up to a multiple of ``eval_every``).
      resume: continue from an existing checkpoint (``False`` overwrites it).

    Returns:
      A :class:`DistillOutput`.

    Example:
      >>> from sklearn.datasets import load_diabetes
      >>> X, y = load_diabetes(return_X_y=True)
      >>> out = jaxdistill.distill(X, y, m=20)        # doctest: +SKIP
      >>> out.X.shape, out.Y.shape                     # doctest: +SKIP
      ((20, 10), (20, 1))
    """
    config = DistillConfig() if config is None else config
    if m is not None:
        overrides["m"] = m
    if overrides:
        config = config.replace(**overrides)
        config.__post_init__()  # replace() bypasses validation in flax.struct
    X, Y = check_xy(X, Y, config.m)
    seed = None
    if key is None:
        key = 0
    if isinstance(key, (int, np.integer)):
        seed = int(key)
        key = jax.random.PRNGKey(seed)
    k_split, k_init, k_run = jax.random.split(key, 3)

    if validation is not None:
        Xv, Yv = _check_val(validation, X, Y)
        Xtr, Ytr = X, Y
    elif config.validation_fraction > 0:
        perm = np.asarray(jax.random.permutation(k_split, X.shape[0]))
        k = int(round(config.validation_fraction * X.shape[0]))
        Xv, Yv, Xtr, Ytr = X[perm[:k]], Y[perm[:k]], X[perm[k:]], Y[perm[k:]]
    else:
        Xv = Yv = None
        Xtr, Ytr = X, Y
    if config.m >= Xtr.shape[0]:
        raise ValueError(f"m = {config.m} must be smaller than the {Xtr.shape[0]} training rows left after "
                         "holding out validation data; lower m or validation_fraction.")

    std = Standardizer.fit(Xtr, Ytr) if config.standardize else Standardizer.identity(X.shape[1], Y.shape[1])
    dtype = jnp.result_type(float)
    to_j = lambda a: jnp.asarray(a, dtype)  # noqa: E731
    Xj, Yj = to_j(std.x(Xtr)), to_j(std.y(Ytr))
    val = None if Xv is None else (to_j(std.x(Xv)), to_j(std.y(Yv)))

    solver = BilevelSolver(config, model=model, inner_solver=inner_solver, optimizer_x=optimizer_x,
                           optimizer_y=optimizer_y, optimizer_eta=optimizer_eta)
    state = solver.init(k_init, Xj, Yj)
    history, on_chunk = None, None
    if checkpoint is not None:
        expect = {"config": config.to_dict(), "key": np.asarray(jax.random.key_data(key)).tolist()
                  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else np.asarray(key).tolist(),
                  "data": ckpt.fingerprint(Xj, Yj), "model": repr(solver.model),
                  "inner_solver": repr(solver.inner_solver)}
        if resume and os.path.exists(checkpoint):
            state, history, _ = ckpt.load_checkpoint(checkpoint, state, expect)
        every = max(1, -(-(checkpoint_every or config.eval_every) // config.eval_every))
        counter = {"chunks": 0}

        def on_chunk(st, hist):
            counter["chunks"] += 1
            if counter["chunks"] % every == 0 or int(st.step) >= config.steps or bool(st.failed):
                ckpt.save_checkpoint(checkpoint, st, hist, expect)
    show = sys.stderr.isatty() if progress is None else progress
    bar = progress_lib.ProgressBar(config.steps) if show else None
    t0 = time.perf_counter()
    state, hist = solver.run(state, Xj, Yj, k_run, validation=val, progress=bar, history=history,
                             on_chunk=on_chunk)
    wall = time.perf_counter() - t0
    if bar is not None:
        bar.close()

    if bool(state.failed):
        status = "nonfinite"
    elif np.nanmax(np.append(hist["stability_ratio"], 0.0)) >= 1.0:
        status = "unstable"
    else:
        status = "success"
    out = DistillOutput(
        x=np.asarray(state.params.x), y=np.asarray(state.params.y), inner_lr=float(state.params.eta),
        history=hist, config=config, standardizer=std, status=status, seed=seed,
        meta={"model": repr(solver.model), "inner_solver": repr(solver.inner_solver),
              "optimizers": [_describe(o, d) for o, d in ((optimizer_x, "sgd(lr_x)"), (optimizer_y, "sgd(lr_y)"),
                                                        (optimizer_eta, "sgd(lr_eta)"))],
              "n_train": int(Xtr.shape[0]), "n_validation": 0 if Xv is None else int(Xv.shape[0]),
              "wall_time_s": wall, "compilations": solver.num_traces,
              "jaxdistill_version": __version__, "jax_version": jax.__version__,
              "backend": jax.default_backend()})
    if status == "nonfinite" and raise_on_failure:
        raise FloatingPointError(
            f"Distillation met a non-finite outer loss or gradient after {int(state.step)} steps. "
            "Lower lr_x / lr_y / lr_eta or inner_lr, or standardise the data (standardize=True).")
    return out


def _check_val(validation, X, Y):
    from jaxdistill._src.data import as_2d_float
    Xv = as_2d_float("validation X", validation[0], allow_1d=False)
    Yv = as_2d_float("validation Y", validation[1], allow_1d=True)
    if Xv.shape[1] != X.shape[1] or Yv.shape[1] != Y.shape[1] or Xv.shape[0] != Yv.shape[0]:
        raise ValueError(f"validation data shapes {Xv.shape}, {Yv.shape} do not match the training data "
                         f"({X.shape[1]} input and {Y.shape[1]} output columns, one row per example).")
    return Xv, Yv


def _describe(opt, default: str) -> str:
    return default if opt is None else type(opt).__name__
