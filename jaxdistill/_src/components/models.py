"""Inner models ``apply(θ, x)`` trained by the inner loop, and their initial distributions p(θ₀).

An [`InnerModel`][jaxdistill.InnerModel] is a [`Component`][jaxdistill.Component] with three parts:

* [`InnerModel.featurize`][jaxdistill.InnerModel.featurize] — a fixed, θ-independent transform of the inputs, computed
once per
  outer step *outside* the inner loop (identity for generic models, Φ for [`LinearModel`][jaxdistill.LinearModel]);
* [`InnerModel.init`][jaxdistill.InnerModel.init] — one draw θ₀ ~ p(θ₀), a pytree (`sample_init` draws many);
* [`InnerModel.apply`][jaxdistill.InnerModel.apply] — predictions ``(n, d_out)`` from parameters and featurized inputs.

Models that are linear in θ (``linear_in_params = True``) unlock the exact closed forms, the
stability bound of Lemma 2.4 and the T-independent fast path.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxdistill._src.components.features import FeatureMap, Identity
from jaxdistill._src.core.component import Component
from jaxdistill._src.core.jit import jit_once
from jaxdistill._src.core.linalg import hessian_top_eigenvalue, sq_norm, stability_bound
from jaxdistill._src.core.validate import check_float

PyTree = Any

#: seed of the fixed θ₀ draw (and Lanczos start vector) at which the stability bound of a nonlinear model is
#: taken. A seed, not a key: creating a key at import would start the JAX backend, after which
#: ``jax.distributed.initialize()`` can no longer be called.
BOUND_SEED = 20240


class InnerModel(Component):
    """Abstract inner model f_θ trained on the distilled data by the inner loop."""

    #: True when ``apply(θ, F) = F @ θ`` for a single weight matrix θ of shape (p, d_out).
    linear_in_params: bool = False
    #: σ when p(θ₀) = N(0, σ²I) (then the mean prediction after GD is the one from θ₀ = 0 for models linear in θ,
    #: and the expectation over θ₀ is analytic); None for any other initialiser (e.g. a flax module's)
    init_scale: float | None = None

    def featurize(self, X: jax.Array) -> jax.Array:
        """Fixed transform of a batch of inputs, hoisted out of the inner loop (default: none)."""
        return X

    def num_features(self, d: int, dtype=None) -> int:
        """p, the width of ``featurize`` for d inputs (shape inference only, nothing computed)."""
        dt = jnp.result_type(float) if dtype is None else dtype
        return jax.eval_shape(self.featurize, jax.ShapeDtypeStruct((1, d), dt)).shape[-1]

    @abc.abstractmethod
    def init(self, key: jax.Array, features: jax.Array, d_out: int) -> PyTree:
        """Draw one θ₀ ~ p(θ₀) for featurized inputs shaped like ``features`` (n, p)."""

    @abc.abstractmethod
    def apply(self, params: PyTree, features: jax.Array) -> jax.Array:
        """Predictions of shape ``(n, d_out)`` for featurized inputs ``features`` (n, p)."""

    def sample_init(self, key: jax.Array, features: jax.Array, d_out: int, num: int) -> PyTree:
        """``num`` draws θ₀ ~ p(θ₀) stacked on axis 0 (Algorithm 1, line 5)."""
        return jax.vmap(lambda k: self.init(k, features[:1], d_out))(jax.random.split(key, num))

    def loss(self, params: PyTree, F: jax.Array, Y: jax.Array, lambda_inner) -> jax.Array:
        r"""Inner loss of Def. 2.1: ℓ(x̃, θ) = 1/(2m) ‖f_θ(X̃) − Ỹ‖² + λ_I/2 ‖θ‖²,

        $$
        \ell(\tilde X, \theta) = \frac{1}{2m}\lVert f_\theta(\tilde X) - \tilde Y\rVert^2
          + \frac{\lambda_I}{2}\lVert\theta\rVert^2 .
        $$
        """
        resid = self.apply(params, F) - Y
        return 0.5 / F.shape[0] * jnp.sum(jnp.square(resid)) + 0.5 * lambda_inner * sq_norm(params)

    def gd_stability_bound(self, F: jax.Array, Y: jax.Array, lambda_inner) -> jax.Array:
        """Largest stable step size of plain GD on the inner loss over (F, Y): 2/λ_max(∇²_θ ℓ(θ₀)).

        The analogue of Lemma 2.4 for a model not linear in θ: λ_max is the top eigenvalue of the inner
        loss's Hessian at one fixed draw θ₀ (seed ``BOUND_SEED``), by 20 Lanczos steps on Hessian-vector products
        (``core.linalg.hessian_top_eigenvalue``). It is local — the curvature can grow along the trajectory —
        and Lanczos approaches λ_max from below, so keep a margin (``eta_cap``, default 0.9).
        """
        F, Y = jax.lax.stop_gradient(F), jax.lax.stop_gradient(Y)
        key = jax.random.PRNGKey(BOUND_SEED)
        theta0 = self.init(key, F[:1], Y.shape[-1])
        top = hessian_top_eigenvalue(lambda th: self.loss(th, F, Y, lambda_inner), theta0, key)
        return (2.0 / top).astype(F.dtype)

    @property
    def init_description(self) -> str:
        """How θ₀ is drawn, for evaluation labels."""
        return "θ₀ from the model's initialiser"


@functools.partial(jit_once, static_argnames=("d_out", "num"))
def _draw(model, key, features, d_out, num):
    return model.sample_init(key, features[:1], d_out, num)     # sliced here: an eager slice is a program too


def draw_inits(model: InnerModel, key: jax.Array, features: jax.Array, d_out: int, num: int) -> PyTree:
    """``model.sample_init`` compiled: one program per model and shape. Called outside a jitted function
    (evaluation, prediction), a flax initialiser would otherwise compile each of its primitives eagerly."""
    return _draw(model, key, features, int(d_out), int(num))


class LinearModel(InnerModel):
    r"""f_θ(x) = Φ(x)ᵀθ with θ of shape (p, d_out), θ₀ ~ N(0, σ²I) (the regression paper, eq. 2):

    $$
    f_\theta(x) = \Phi(x)^\top \theta, \qquad \theta_0 \sim \mathcal N(0, \sigma^2 I).
    $$

    Args:
      feature_map: the fixed feature map Φ (default [`Identity`][jaxdistill.Identity]).
      init_scale: σ, the standard deviation of the Gaussian p(θ₀). The default ``0`` starts every inner
        run from θ₀ = 0, as linear models are trained in practice. The paper's experiments use σ = 1
        (``paper_a7()``); with m < p the part of θ₀ outside the span of the m distilled rows is then
        never trained (Lemma 2.3) and stays as noise in every prediction.
    """

    linear_in_params = True

    def __init__(self, feature_map: FeatureMap | None = None, init_scale: float = 0.0):
        self.feature_map = Identity() if feature_map is None else feature_map
        if not isinstance(self.feature_map, FeatureMap):
            raise ValueError(f"feature_map must be a jaxdistill.FeatureMap, got {type(feature_map).__name__}.")
        self.init_scale = check_float("init_scale", init_scale, lo=0.0)

    def featurize(self, X):
        return self.feature_map.batch(X)

    def init(self, key, features, d_out):
        shape = (features.shape[-1], d_out)
        if self.init_scale == 0:       # no random draw at all: XLA compiles threefry slowly (2.8 s measured)
            return jnp.zeros(shape, features.dtype)
        return self.init_scale * jax.random.normal(key, shape, dtype=features.dtype)

    def sample_init(self, key, features, d_out, num):
        if self.init_scale == 0:
            return jnp.zeros((num, features.shape[-1], d_out), features.dtype)
        return super().sample_init(key, features, d_out, num)

    def apply(self, params, features):
        return features @ params

    def gd_stability_bound(self, F, Y, lambda_inner):
        """Lemma 2.4, eq. (5): 2m / (σ²_max + mλ_I), exact (σ_max the top singular value of F)."""
        return stability_bound(F, lambda_inner)

    @property
    def init_description(self) -> str:
        return "θ₀ = 0" if self.init_scale == 0 else f"θ₀ ~ N(0, {self.init_scale:g}²)"


class FlaxModel(InnerModel):
    """Any ``flax.linen`` module as the inner model; p(θ₀) is the module's own initialiser.

    Args:
      module: a ``flax.linen.Module`` mapping inputs ``(n, d)`` to outputs ``(n, d_out)``.
      init_fn: optional ``init_fn(key, x) -> params`` replacing ``module.init``.

    Examples:
      >>> import flax.linen as nn
      >>> class MLP(nn.Module):
      ...     @nn.compact
      ...     def __call__(self, x):
      ...         return nn.Dense(1)(nn.tanh(nn.Dense(16)(x)))
      >>> model = FlaxModel(MLP())
    """

    def __init__(self, module: Any, init_fn: Callable[[jax.Array, jax.Array], PyTree] | None = None):
        if not hasattr(module, "apply") or not hasattr(module, "init"):
            raise ValueError(f"FlaxModel needs a flax.linen Module, got {type(module).__name__}.")
        self.module = module
        self.init_fn = init_fn

    def init(self, key, features, d_out):
        x = features[:1]
        return self.init_fn(key, x) if self.init_fn is not None else self.module.init(key, x)

    def apply(self, params, features):
        out = self.module.apply(params, features)
        return out if out.ndim == 2 else out.reshape(out.shape[0], -1)
