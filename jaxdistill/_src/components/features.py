"""Feature maps Φ: R^d → R^p used by models that are linear in their parameters.

A feature map is a [`Component`][jaxdistill.Component] (an immutable pytree: its random weights are
leaves) with one required method, [`FeatureMap.__call__`][jaxdistill.FeatureMap.__call__], mapping a *single* input
``x`` of shape ``(d,)`` to features of shape ``(p,)``. Batched application is derived with `jax.vmap`
(override [`FeatureMap.batch`][jaxdistill.FeatureMap.batch] when a faster batched form exists), as ott-jax's ``CostFn``
derives ``all_pairs``. The inner model of the regression paper is ``f_θ(x) = Φ(x)ᵀθ`` (eq. 2).
"""

from __future__ import annotations

import abc
import itertools
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxdistill._src.core.component import Component
from jaxdistill._src.core.jit import jit
from jaxdistill._src.core.keys import as_key
from jaxdistill._src.core.validate import MAX_SIZE, check_float, check_int


class FeatureMap(Component):
    """Abstract feature map Φ: R^d → R^p. Implement `__call__` for one input.

    Feature maps must be pure functions of their input; randomness is drawn at construction from an
    explicit key and kept as array attributes (pytree leaves), so a map can be passed through
    `jax.jit`, saved, compared and restored.
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

    def __call__(self, x):
        return x

    def batch(self, X):
        return X

    def output_dim(self, d: int) -> int:
        return d


class Polynomial(FeatureMap):
    """All monomials of degree 1..``degree`` (and a constant 1 if ``bias``): Φ(x) = (1, x_i, x_i x_j, …).

    Not surjective (its image is a curved manifold), so it has no inverse.
    """

    def __init__(self, degree: int = 2, bias: bool = True):
        self.degree = check_int("Polynomial degree", degree, 1)
        self.bias = bool(bias)

    def __call__(self, x):
        feats = [jnp.ones((1,), x.dtype)] if self.bias else []
        d = x.shape[0]
        for k in range(1, self.degree + 1):
            idx = jnp.asarray(list(itertools.combinations_with_replacement(range(d), k)))
            feats.append(jnp.prod(x[idx], axis=1))
        return jnp.concatenate(feats)


class RandomFourierFeatures(FeatureMap):
    r"""Φ(x) = √(2/p) cos(Wx + b), W ~ N(0, I/ℓ²), b ~ U[0, 2π): approximates the RBF kernel of
    length-scale ℓ (Rahimi & Recht). For p ≤ d it maps onto the box (−√(2/p), √(2/p))^p, and
    `inverse` returns the minimum-norm preimage of features inside that box (KRR paper, §KRR
    with surjective feature maps):

    $$
    \Phi(x) = \sqrt{2/p}\,\cos(Wx + b), \qquad W \sim \mathcal N(0, I/\ell^2),\quad b \sim U[0, 2\pi) .
    $$

    Args:
      key: PRNG key for W and b.
      d: input dimension.
      p: number of features.
      lengthscale: ℓ > 0.
    """

    def __init__(self, key: jax.Array, d: int, p: int, lengthscale: float = 1.0):
        d = check_int("RandomFourierFeatures d", d, 1, MAX_SIZE)
        p = check_int("RandomFourierFeatures p", p, 1, MAX_SIZE)
        lengthscale = check_float("RandomFourierFeatures lengthscale", lengthscale, positive=True)
        kw, kb = jax.random.split(as_key(key))
        self.W = jax.random.normal(kw, (p, d)) / lengthscale
        self.b = jax.random.uniform(kb, (p,), maxval=2 * jnp.pi)
        self.p, self.d, self.lengthscale = p, d, lengthscale

    def __call__(self, x):
        return jnp.sqrt(2.0 / self.p) * jnp.cos(self.W.astype(x.dtype) @ x + self.b.astype(x.dtype))

    def batch(self, X):
        return jnp.sqrt(2.0 / self.p) * jnp.cos(X @ self.W.astype(X.dtype).T + self.b.astype(X.dtype))

    @property
    def amplitude(self) -> float:
        return math.sqrt(2.0 / self.p)

    def inverse(self, F: jax.Array) -> jax.Array:
        """Minimum-norm X with Φ(X) = F (rows), using the principal branch of arccos.

        Raises ``ValueError`` if p > d (not surjective) or an entry lies outside [−√(2/p), √(2/p)].
        """
        if self.p > self.d:
            raise ValueError(f"RandomFourierFeatures with p = {self.p} > d = {self.d} is not surjective; "
                             "use p <= d to invert it.")
        a = self.amplitude
        peak = float(np.max(np.abs(np.asarray(F))))            # on the host: a check, not a program
        if peak > a * (1 + 1e-12):
            raise ValueError(f"Features outside the range of Φ (|F| must be <= {a:.4g}, got {peak:.4g}); scale the "
                             "labels of the distilled set down.")
        return _fourier_inverse(self.W, self.b, jnp.asarray(F), a)


@jit
def _fourier_inverse(W, b, F, a):
    """The arithmetic of `RandomFourierFeatures.inverse`: one compiled program per shape."""
    z = jnp.arccos(jnp.clip(F / a, -1.0, 1.0)) - b.astype(F.dtype)
    return z @ jnp.linalg.pinv(W.astype(F.dtype)).T


class RandomReLUNet(FeatureMap):
    """A frozen random fully-connected net with leaky-ReLU activations, square layers (width = d).

    Φ(x) = σ(W_L σ(⋯ σ(W_1 x))), W_l ~ N(0, 2/d) (invertible almost surely), σ(z) = max(z, αz) with
    0 < α < 1. Every layer is a bijection of R^d, so Φ is bijective and `inverse` is exact:
    x = W_1⁻¹ σ⁻¹(⋯ W_L⁻¹ σ⁻¹(f)) — the KRR paper's invertible / fully-connected surjective maps.
    """

    def __init__(self, key: jax.Array, d: int, depth: int = 2, negative_slope: float = 0.2):
        d, depth = check_int("RandomReLUNet d", d, 1, MAX_SIZE), check_int("RandomReLUNet depth", depth, 1)
        alpha = check_float("negative_slope", negative_slope)
        if not 0 < alpha < 1:
            raise ValueError(f"negative_slope must be in (0, 1) for invertibility, got {negative_slope}.")
        keys = jax.random.split(as_key(key), depth)
        self.Ws = tuple(jax.random.normal(k, (d, d)) * jnp.sqrt(2.0 / d) for k in keys)
        self.alpha, self.d, self.depth = alpha, d, depth

    def __call__(self, x):
        return self.batch(x[None])[0]

    def batch(self, X):
        for W in self.Ws:
            Z = X @ W.astype(X.dtype).T
            X = jnp.where(Z >= 0, Z, self.alpha * Z)
        return X

    def inverse(self, F: jax.Array) -> jax.Array:
        """Exact preimage X (rows) of features F (rows): one compiled program per shape."""
        return _relu_inverse(tuple(self.Ws), jnp.asarray(F), self.alpha)


@partial(jit, static_argnames="alpha")
def _relu_inverse(Ws, F, alpha: float):
    X = F
    for W in reversed(Ws):
        z = jnp.where(X >= 0, X, X / alpha)
        X = jnp.linalg.solve(W.astype(F.dtype), z.T).T
    return X


class FlaxFeatureMap(FeatureMap):
    """Any flax module with frozen parameters as a fixed feature map: Φ(x) = module.apply(params, x).

    The parameters are pytree leaves (saved with a result); the module is static (loading a result
    made with it asks for the module again). No inverse in general; pass ``inverse_fn`` if invertible.
    """

    def __init__(self, module, params, inverse_fn=None):
        self.module, self.params, self.inverse_fn = module, params, inverse_fn

    def __call__(self, x):
        return self.module.apply(self.params, x[None])[0]

    def batch(self, X):
        return self.module.apply(self.params, X)

    def inverse(self, F):
        if self.inverse_fn is None:
            raise NotImplementedError("This FlaxFeatureMap has no inverse_fn.")
        return self.inverse_fn(F)
