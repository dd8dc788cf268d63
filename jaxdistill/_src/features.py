"""Feature maps Φ: R^d → R^p used by models that are linear in their parameters.

A feature map is a small object with one required method, :meth:`FeatureMap.__call__`, that maps a
*single* input ``x`` of shape ``(d,)`` to features of shape ``(p,)``. Batched application is
derived with :func:`jax.vmap` (override :meth:`FeatureMap.batch` when a faster batched form
exists, as :class:`Identity` does). This mirrors ott-jax's ``CostFn`` with its vmapped
``all_pairs``.

The inner model of the regression paper is ``f_θ(x) = Φ(x)ᵀθ`` (eq. 2), so every feature map here
plugs straight into :class:`jaxdistill.LinearModel`.
"""

from __future__ import annotations

import abc

import jax
import jax.numpy as jnp


class FeatureMap(abc.ABC):
    """Abstract feature map Φ: R^d → R^p.

    Subclasses implement :meth:`__call__` for one input. Feature maps must be pure functions of
    their input (any randomness is drawn at construction time from an explicit key), so that they
    can be used under :func:`jax.jit` and differentiated with respect to the input.
    """

    @abc.abstractmethod
    def __call__(self, x: jax.Array) -> jax.Array:
        """Map one input ``x`` of shape ``(d,)`` to features of shape ``(p,)``."""

    def batch(self, X: jax.Array) -> jax.Array:
        """Map a batch ``X`` of shape ``(n, d)`` to features of shape ``(n, p)``."""
        return jax.vmap(self)(X)

    def output_dim(self, d: int) -> int:
        """Feature dimension p for inputs of dimension ``d`` (found by shape evaluation)."""
        return jax.eval_shape(self, jax.ShapeDtypeStruct((d,), jnp.float32)).shape[0]


class Identity(FeatureMap):
    """Φ(x) = x: plain linear regression, the setting of the regression paper's analysis."""

    def __call__(self, x: jax.Array) -> jax.Array:
        return x

    def batch(self, X: jax.Array) -> jax.Array:
        return X

    def output_dim(self, d: int) -> int:
        return d

    def __repr__(self) -> str:
        return "Identity()"
