"""The result of a distillation run: the distilled set, the learned η̃, the history and a status."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxdistill._src.config import DistillConfig
from jaxdistill._src.data import Standardizer, as_2d_float

#: Status values. ``success``: all steps finite and η̃ below the stability bound throughout;
#: ``unstable``: finished, but η̃ exceeded the bound of Lemma 2.4 at some step;
#: ``nonfinite``: stopped early at a non-finite loss or gradient (the last finite state is kept).
STATUSES = ("success", "unstable", "nonfinite")


@dataclasses.dataclass(frozen=True)
class DistillOutput:
    """Distilled set and everything needed to use, reproduce and judge it.

    Attributes:
      x: distilled inputs X̃ (m, d) in the standardised space the inner model is trained in.
      y: distilled targets Ỹ (m, d_out), standardised likewise.
      inner_lr: the learned inner learning rate η̃.
      history: dict of numpy arrays — per outer step ``loss`` (Def. 2.5, mean over θ₀), its data
        term ``data_loss`` (without λ_O), ``q``,
        ``T``, ``eta``, ``stability_ratio`` (η̃ / bound of Lemma 2.4); per evaluation ``eval_step``,
        ``val_loss`` (held-out outer data loss).
      config: the :class:`DistillConfig` used.
      standardizer: the statistics mapping original units to the standardised space.
      status: one of :data:`STATUSES`.
      seed: the integer seed of the run key (``None`` if a raw key was given).
      meta: free-form metadata (model and solver descriptions, timings, library version).
    """

    x: np.ndarray
    y: np.ndarray
    inner_lr: float
    history: dict[str, np.ndarray]
    config: DistillConfig
    standardizer: Standardizer
    status: str
    seed: int | None = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def m(self) -> int:
        return self.x.shape[0]

    @property
    def X(self) -> np.ndarray:
        """Distilled inputs in the original units of the data."""
        return self.standardizer.x_inverse(self.x)

    @property
    def Y(self) -> np.ndarray:
        """Distilled targets in the original units of the data."""
        return self.standardizer.y_inverse(self.y)

    @property
    def max_stability_ratio(self) -> float:
        r = self.history.get("stability_ratio", np.zeros(0))
        return float(np.nanmax(r)) if r.size and np.isfinite(r).any() else float("nan")

    def fit_ridge(self, lam: float | None = None) -> np.ndarray:
        """Ridge weights on the distilled set (the T → ∞ limit of the inner loop), identity features."""
        from jaxdistill._src.closed_form import ridge
        lam = self.config.lambda_inner if lam is None else lam
        return np.asarray(ridge(jnp.asarray(self.x), jnp.asarray(self.y), lam))

    def predict(self, X_new, lam: float | None = None) -> np.ndarray:
        """Predictions in original units of the ridge model fitted on the distilled set.

        For the model trained by T inner steps from random θ₀, use :func:`jaxdistill.evaluate`.
        """
        X_new = as_2d_float("X_new", X_new, allow_1d=False)
        if X_new.shape[1] != self.x.shape[1]:
            raise ValueError(f"X_new has {X_new.shape[1]} columns; the distilled set has {self.x.shape[1]}.")
        theta = self.fit_ridge(lam)
        return self.standardizer.y_inverse(self.standardizer.x(X_new) @ theta)

    def save(self, path) -> None:
        """Write this result to one self-describing ``.npz`` file (atomically). See :func:`load`."""
        from jaxdistill._src.io import save
        save(self, path)

    def summary(self) -> str:
        h = self.history
        last = float(h["loss"][-1]) if h["loss"].size else float("nan")
        first = float(h["loss"][0]) if h["loss"].size else float("nan")
        lines = [f"DistillOutput: m={self.m}, d={self.x.shape[1]}, d_out={self.y.shape[1]}, status={self.status}",
                 f"  steps run {h['loss'].size}/{self.config.steps}, outer loss {first:.4g} -> {last:.4g}",
                 f"  inner_lr {self.inner_lr:.4g}, max eta/bound {self.max_stability_ratio:.3g}"]
        if h["val_loss"].size:
            lines.append(f"  held-out loss {h['val_loss'][0]:.4g} -> {h['val_loss'][-1]:.4g}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()

