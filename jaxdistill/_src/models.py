"""Inner models ``apply(θ, x)`` trained by the inner loop, and their initial distributions p(θ₀).

An :class:`InnerModel` has three parts:

* :meth:`InnerModel.featurize` — a fixed, θ-independent transform of the inputs, computed once per
  outer step *outside* the inner loop (identity for generic models, Φ for :class:`LinearModel`);
* :meth:`InnerModel.init` — one draw θ₀ ~ p(θ₀), a pytree;
* :meth:`InnerModel.apply` — predictions ``(n, d_out)`` from parameters and featurized inputs.

Models that are linear in θ (``linear_in_params = True``) unlock the exact closed forms, the
stability bound of Lemma 2.4 and the T-independent fast path.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxdistill._src.features import FeatureMap, Identity

PyTree = Any


class InnerModel(abc.ABC):
    """Abstract inner model f_θ trained on the distilled data by the inner loop."""

    #: True when ``apply(θ, F) = F @ θ`` for a single weight matrix θ of shape (p, d_out).
    linear_in_params: bool = False

    def featurize(self, X: jax.Array) -> jax.Array:
        """Fixed transform of a batch of inputs, hoisted out of the inner loop (default: none)."""
        return X

    @abc.abstractmethod
    def init(self, key: jax.Array, features: jax.Array, d_out: int) -> PyTree:
        """Draw one θ₀ ~ p(θ₀) for featurized inputs shaped like ``features`` (n, p)."""

    @abc.abstractmethod
    def apply(self, params: PyTree, features: jax.Array) -> jax.Array:
        """Predictions of shape ``(n, d_out)`` for featurized inputs ``features`` (n, p)."""


class LinearModel(InnerModel):
    """f_θ(x) = Φ(x)ᵀθ with θ of shape (p, d_out), θ₀ ~ N(0, σ²I) (the regression paper, eq. 2).

    Args:
      feature_map: the fixed feature map Φ (default :class:`Identity`).
      init_scale: σ, the standard deviation of the Gaussian p(θ₀) (default 1, as in Algorithm 1's
        experiments). ``0`` starts every inner run from θ₀ = 0 (deterministic, Q = 1 suffices).
    """

    linear_in_params = True

    def __init__(self, feature_map: FeatureMap | None = None, init_scale: float = 1.0):
        if init_scale < 0:
            raise ValueError(f"init_scale must be >= 0, got {init_scale}.")
        self.feature_map = Identity() if feature_map is None else feature_map
        self.init_scale = float(init_scale)

    def featurize(self, X: jax.Array) -> jax.Array:
        return self.feature_map.batch(X)

    def init(self, key: jax.Array, features: jax.Array, d_out: int) -> jax.Array:
        shape = (features.shape[-1], d_out)
        return self.init_scale * jax.random.normal(key, shape, dtype=features.dtype)

    def apply(self, params: jax.Array, features: jax.Array) -> jax.Array:
        return features @ params

    def __repr__(self) -> str:
        return f"LinearModel(feature_map={self.feature_map!r}, init_scale={self.init_scale})"


class FlaxModel(InnerModel):
    """Any ``flax.linen`` module as the inner model; p(θ₀) is the module's own initialiser.

    Args:
      module: a ``flax.linen.Module`` mapping inputs ``(n, d)`` to outputs ``(n, d_out)``.
      init_fn: optional ``init_fn(key, x) -> params`` replacing ``module.init``.

    Example:
      >>> import flax.linen as nn
      >>> class MLP(nn.Module):
      ...     @nn.compact
      ...     def __call__(self, x):
      ...         return nn.Dense(1)(nn.tanh(nn.Dense(16)(x)))
      >>> model = FlaxModel(MLP())
    """

    def __init__(self, module: Any, init_fn: Callable[[jax.Array, jax.Array], PyTree] | None = None):
        self.module = module
        self._init_fn = init_fn

    def init(self, key: jax.Array, features: jax.Array, d_out: int) -> PyTree:
        x = features[:1]
        if self._init_fn is not None:
            return self._init_fn(key, x)
        return self.module.init(key, x)

    def apply(self, params: PyTree, features: jax.Array) -> jax.Array:
        out = self.module.apply(params, features)
        return out if out.ndim == 2 else out.reshape(out.shape[0], -1)

    def __repr__(self) -> str:
        return f"FlaxModel({type(self.module).__name__})"


def sq_norm(tree: PyTree) -> jax.Array:
    """Squared Euclidean / Frobenius norm of all leaves of a pytree, ‖θ‖²."""
    leaves = jax.tree_util.tree_leaves(tree)
    return sum(jnp.sum(jnp.square(leaf)) for leaf in leaves)


def inner_loss(model: InnerModel, params: PyTree, F: jax.Array, Y: jax.Array,
               lambda_inner: jax.Array) -> jax.Array:
    """Inner loss of Def. 2.1: ℓ(x̃, θ) = 1/(2m) ‖f_θ(X̃) − Ỹ‖² + λ_I/2 ‖θ‖².

    Args:
      model: the inner model.
      params: θ, a pytree.
      F: featurized distilled inputs Φ(X̃), shape (m, p).
      Y: distilled targets Ỹ, shape (m, d_out).
      lambda_inner: λ_I ≥ 0.
    """
    m = F.shape[0]
    resid = model.apply(params, F) - Y
    return 0.5 / m * jnp.sum(jnp.square(resid)) + 0.5 * lambda_inner * sq_norm(params)


def stability_bound(F: jax.Array, lambda_inner: jax.Array) -> jax.Array:
    """Largest stable inner learning rate of Lemma 2.4, eq. (5): 2m / (σ²_max + mλ_I).

    σ²_max is the largest eigenvalue of Φ(X̃)ᵀΦ(X̃), computed from the smaller of the two Gram
    matrices. Gradient descent on the inner loss of a linear-in-θ model converges iff η̃ is below
    this value.
    """
    m, p = F.shape
    gram = F @ F.T if m <= p else F.T @ F
    sigma2_max = jnp.linalg.eigvalsh(gram)[-1]
    return 2.0 * m / (sigma2_max + m * lambda_inner)
