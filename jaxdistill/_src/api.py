"""``distill()``: the one-call entry point, a thin wrapper over [`Distiller`][jaxdistill.Distiller] and its
callbacks."""

from __future__ import annotations

import os
from collections.abc import Sequence

import jax
import optax

from jaxdistill._src.components.models import InnerModel
from jaxdistill._src.distiller import Distiller
from jaxdistill._src.inner.base import InnerSolver
from jaxdistill._src.outer.callbacks import Callback, CheckpointCallback, callback_list, default_callbacks
from jaxdistill._src.problem.config import DistillConfig
from jaxdistill._src.problem.objectives import Objective
from jaxdistill._src.result import DistillOutput


def distill(X, Y=None, m: int | None = None, *, key: jax.Array | int | None = None,
            config: DistillConfig | None = None, model: InnerModel | None = None,
            inner_solver: InnerSolver | None = None, objective: Objective | str | None = None,
            optimizer: optax.GradientTransformation | None = None,
            optimizer_x: optax.GradientTransformation | None = None,
            optimizer_y: optax.GradientTransformation | None = None,
            optimizer_eta: optax.GradientTransformation | None = None,
            validation=None, progress: bool | None = None, raise_on_failure: bool = False,
            checkpoint: str | os.PathLike | None = None, checkpoint_every: int | None = None,
            resume: bool = True, mesh=None, callbacks: Sequence[Callback] = (), **overrides) -> DistillOutput:
    r"""Distil a regression data set (X, Y) into m synthetic points (X̃, Ỹ) and an inner learning rate η̃.

    Runs Algorithm 1 of Mahowald et al. (*Toward Dataset Distillation for Regression Problems*,
    appendix A.3): outer gradient descent (eq. 7) on the outer loss of Def. 2.5, whose gradient is
    taken through T steps of inner gradient descent (eq. 3) from Q random initialisations:

    $$
    \theta_{t+1} = \theta_t - \tilde\eta\,\nabla_\theta\,\ell(\tilde X, \tilde Y, \theta_t), \qquad
    \ell = \frac{1}{2m}\lVert f_\theta(\tilde X) - \tilde Y\rVert^2 + \frac{\lambda_I}{2}\lVert\theta\rVert^2,
    $$

    $$
    (\tilde X, \tilde Y, \tilde\eta) \leftarrow \text{optax step on } \nabla \sum_{q=1}^{Q} L^{(q)}, \qquad
    L^{(q)} = \frac{1}{2b}\lVert f_{\theta_T^{(q)}}(X_B) - Y_B\rVert^2
      + \frac{\lambda_O}{2}\big(\lVert\tilde X\rVert^2 + \lVert\tilde Y\rVert^2\big).
    $$

    Args:
      X: real inputs, shape (n, d) (a NumPy array or memory map, never copied whole; a pandas, polars or Arrow
        table, columns matched by name later). Or, with Y None, a [`RowSource`][jaxdistill.RowSource] (a Parquet
        data set, a Dask cluster's rows) or saved [`SufficientStats`][jaxdistill.SufficientStats]: the run then
        optimises their exact full-data objective (default model; no held-out rows; λ_I by GCV on the statistics).
      Y: real targets, shape (n,) or (n, d_out); None with a source or statistics.
      m: number of distilled points (overrides ``config.m``).
      key: ``jax.random`` key or integer seed (default 0). The whole run is a function of it.
      config: a [`DistillConfig`][jaxdistill.DistillConfig]; ``**overrides`` replace single fields of it.
      model: inner model (default [`LinearModel`][jaxdistill.LinearModel], identity features, θ₀ = 0; ``theta0_scale``
        sets σ).
      inner_solver: how θ_T is computed (default [`default_inner_solver`][jaxdistill.default_inner_solver]: for linear
        models the cheaper of two exact solvers for these shapes — the closed form
        [`ExactLinearGD`][jaxdistill.ExactLinearGD], or the scan [`UnrolledGD`][jaxdistill.UnrolledGD] for wide problems
        with few steps; the scan otherwise).
      objective: the outer objective, an [`Objective`][jaxdistill.Objective] or a name for ``config.objective``
        (``"auto"``, ``"batch"``, ``"full_data"``) (default [`default_objective`][jaxdistill.default_objective]: the
        exact [`FullDataLoss`][jaxdistill.FullDataLoss] over all training rows for linear models,
        [`BatchLoss`][jaxdistill.BatchLoss], Def. 2.5 on sampled batches of ``batch_size`` rows, otherwise).
      optimizer: one optax transformation over (X̃, Ỹ, η̃) (a [`DistillParams`][jaxdistill.DistillParams]); or use the
        per-part shorthands ``optimizer_x``, ``optimizer_y``, ``optimizer_eta`` (default plain
        ``config.outer_optimizer`` with ``lr_x``, ``lr_y``; gradient descent with ``lr_eta`` on η̃).
      validation: optional held-out (X_val, Y_val) in original units; if omitted,
        ``config.validation_fraction`` of the rows are held out for monitoring.
      progress: show progress (default: when stderr is a terminal).
      raise_on_failure: raise if the run fails instead of returning the result with its status:
        ``FloatingPointError`` for ``nonfinite``, ``RuntimeError`` for ``diverged``, ``no_progress``
        and ``unstable`` (the statuses are [`jaxdistill.Status`][jaxdistill.Status]; ``converged``, ``budget``,
        ``exact`` and ``stopped`` succeed).
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
        See the docs, "Many devices and hosts".
      callbacks: more [`Callback`][jaxdistill.Callback] objects (e.g. ``MetricsLogger("metrics.csv")``), run after the
        checkpoint and before the progress display. ``Distiller(...).fit(...)`` is the same run as an object.

    Returns:
      A [`DistillOutput`][jaxdistill.DistillOutput] holding the distilled set, its model and training procedure.

    Raises:
      ValueError: bad input — NaN or inf, wrong shapes, an unknown or out-of-range setting, a learning rate
        beyond the stability bound — with what to change; nothing is computed.
      FloatingPointError: with ``raise_on_failure=True``, a run that met a non-finite value.
      RuntimeError: with ``raise_on_failure=True``, a run that diverged, made no progress or was unstable.

    Examples:
      >>> import jaxdistill as jd
      >>> from jaxdistill import datasets
      >>> X, Y = datasets.load("diabetes")
      >>> out = jd.distill(X, Y, m=20, key=0, steps=200, progress=False)
      >>> out.X.shape, out.Y.shape, out.ok
      ((20, 10), (20, 1), True)
      >>> out.predict(X[:2]).shape
      (2, 1)

    References:
      J. Mahowald, R. Srinivasan, A. Wang. *Toward Dataset Distillation for Regression Problems*. The
        University of Texas at Austin, preprint. Algorithm 1 (appendix A.3), eqs. (3) and (7), Def. 2.5.
    """
    callbacks = callback_list(callbacks)
    if checkpoint is not None:
        callbacks.insert(0, CheckpointCallback(checkpoint, every=checkpoint_every, resume=resume))
    callbacks += default_callbacks(progress)
    if m is not None:
        overrides["m"] = m
    distiller = Distiller(config, model=model, inner_solver=inner_solver, objective=objective, optimizer=optimizer,
                          optimizer_x=optimizer_x, optimizer_y=optimizer_y, optimizer_eta=optimizer_eta, mesh=mesh,
                          **overrides)
    return distiller.fit(X, Y, key=key, validation=validation, callbacks=callbacks,
                         raise_on_failure=raise_on_failure)
