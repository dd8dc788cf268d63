"""Kernels k(x, x') for kernel ridge regression, with or without explicit features.

A [`Kernel`][jaxdistill.Kernel] is a [`Component`][jaxdistill.Component] with one required method,
[`Kernel.__call__`][jaxdistill.Kernel.__call__] on two single inputs; the Gram matrix
[`Kernel.matrix`][jaxdistill.Kernel.matrix] is derived with a double `jax.vmap` (override it when a batched form is
cheaper, as the built-ins do).

The infinite-width ReLU kernels follow the arc-cosine recursion (Cho & Saul 2009; Jacot et al.
2018; Arora et al. 2019), written here. With weight variance σ_w² and bias variance σ_b²:

    Σ⁰(x, x') = σ_w² xᵀx'/d + σ_b²
    Σ^l = σ_w² √(Σ^{l−1}_{xx} Σ^{l−1}_{x'x'}) J(c)/(2π) + σ_b²,       c = Σ^{l−1}_{xx'}/√(⋯),
    Σ̇^l = σ_w² (π − arccos c)/(2π),    J(c) = √(1 − c²) + (π − arccos c) c,
    Θ^l = Σ^l + Σ̇^l Θ^{l−1},   Θ⁰ = Σ⁰;    NNGP = Σ^L, NTK = Θ^L  (L hidden layers).
"""

from __future__ import annotations

import abc

import jax
import jax.numpy as jnp

from jaxdistill._src.components.features import FeatureMap
from jaxdistill._src.core.component import Component
from jaxdistill._src.core.validate import check_float, check_int


class Kernel(Component):
    """Abstract positive semi-definite kernel."""

    @abc.abstractmethod
    def __call__(self, x: jax.Array, y: jax.Array) -> jax.Array:
        """k(x, y) for single inputs of shape (d,)."""

    def matrix(self, X: jax.Array, Y: jax.Array) -> jax.Array:
        """Gram matrix K[i, j] = k(X_i, Y_j), shape (n_X, n_Y)."""
        return jax.vmap(lambda x: jax.vmap(lambda y: self(x, y))(Y))(X)


class FeatureKernel(Kernel):
    """k(x, y) = Φ(x)ᵀΦ(y) for an explicit feature map."""

    def __init__(self, feature_map: FeatureMap):
        self.feature_map = feature_map

    def __call__(self, x, y):
        return self.feature_map(x) @ self.feature_map(y)

    def matrix(self, X, Y):
        return self.feature_map.batch(X) @ self.feature_map.batch(Y).T


class RBF(Kernel):
    r"""k(x, y) = exp(−‖x − y‖² / (2ℓ²)), ℓ > 0:

    $$
    k(x, y) = \exp\!\Big(-\frac{\lVert x - y\rVert^2}{2\ell^2}\Big) .
    $$
    """

    def __init__(self, lengthscale: float = 1.0):
        self.lengthscale = check_float("RBF lengthscale", lengthscale, positive=True)

    def __call__(self, x, y):
        return jnp.exp(-jnp.sum((x - y) ** 2) / (2 * self.lengthscale ** 2))

    def matrix(self, X, Y):
        sq = jnp.sum(X ** 2, 1)[:, None] + jnp.sum(Y ** 2, 1)[None, :] - 2 * X @ Y.T
        return jnp.exp(-jnp.maximum(sq, 0.0) / (2 * self.lengthscale ** 2))


@jax.custom_jvp
def _arccos(c):
    return jnp.arccos(jnp.clip(c, -1.0, 1.0))


@_arccos.defjvp
def _arccos_jvp(primals, tangents):
    # The derivative −1/√(1 − c²) is infinite at c = ±1, where c is the constant 1 on the diagonal
    # (k(x, x)); bounding it keeps ∞ · 0 from turning gradients into NaN.
    (c,), (dc,) = primals, tangents
    return _arccos(c), -dc / jnp.sqrt(jnp.maximum(1.0 - c ** 2, 1e-12))


@jax.custom_jvp
def _J(c):
    """J(c) = √(1 − c²) + (π − arccos c)c; its derivative π − arccos c is finite at c = ±1."""
    c = jnp.clip(c, -1.0, 1.0)
    return jnp.sqrt(jnp.maximum(1.0 - c ** 2, 0.0)) + (jnp.pi - jnp.arccos(c)) * c


@_J.defjvp
def _J_jvp(primals, tangents):
    (c,), (dc,) = primals, tangents
    return _J(c), (jnp.pi - jnp.arccos(jnp.clip(c, -1.0, 1.0))) * dc


def _sqrt0(a):
    """√a with derivative 0 at a = 0 (a zero input row when σ_b² = 0). The kernels are positively homogeneous
    there, k(tx, y) = t·k(x, y), so no derivative exists at x = 0; 0 is the usual choice (as ReLU′(0) = 0) and keeps
    jax.grad finite — √'s own derivative, ∞, times the 0 of the other factor gave NaN."""
    pos = a > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, a, 1.0)), 0.0)


class _ReLUArcCos(Kernel):
    def __init__(self, depth: int = 1, weight_var: float = 2.0, bias_var: float = 0.0):
        self.depth = check_int("depth (hidden layers)", depth, 1)
        self.weight_var = check_float("weight_var", weight_var, positive=True)
        self.bias_var = check_float("bias_var", bias_var, lo=0.0)

    def _recursion(self, X, Y, same=False):
        """(Σ^L, Θ^L) for all pairs of rows. ``same`` (a bool, or a traced one): Y is X, so the diagonal pairs a
        point with itself and its cosine is exactly 1 at every layer. Computed as sxy/norm it is 1 − O(ε), and
        arccos there is ill-conditioned: θ = √(2ε) ≈ 3e-4 in float32, a 1e-4 relative error in the NTK diagonal."""
        d = X.shape[1]
        sxy = self.weight_var * X @ Y.T / d + self.bias_var
        sxx = self.weight_var * jnp.sum(X ** 2, 1) / d + self.bias_var
        syy = self.weight_var * jnp.sum(Y ** 2, 1) / d + self.bias_var
        ntk = sxy
        for _ in range(self.depth):
            # √sxx·√syy rather than √(sxx·syy): the product underflows for inputs of tiny norm, and the
            # kernel is homogeneous when σ_b² = 0, so only a relative quantity may decide anything.
            norm = _sqrt0(sxx)[:, None] * _sqrt0(syy)[None, :]
            pos = norm > 0
            c = jnp.where(pos, sxy / jnp.where(pos, norm, 1.0), 0.0)
            if same is not False:
                c = jnp.where(jnp.eye(c.shape[0], c.shape[1], dtype=bool) & pos & same, 1.0, c)
            theta = _arccos(c)
            J = _J(c)
            sdot = self.weight_var * (jnp.pi - theta) / (2 * jnp.pi)
            sxy = self.weight_var * norm * J / (2 * jnp.pi) + self.bias_var
            sxx = self.weight_var * sxx / 2 + self.bias_var   # J(1) = π
            syy = self.weight_var * syy / 2 + self.bias_var
            ntk = sxy + sdot * ntk
        return sxy, ntk

    def matrix(self, X, Y):
        return self._recursion(X, Y, same=Y is X)[self._which]

    def __call__(self, x, y):
        out = self._recursion(x[None], y[None], same=jnp.all(x == y))    # k(x, x) exact as well
        return out[self._which][0, 0]


class ReLUNNGP(_ReLUArcCos):
    """Infinite-width fully-connected ReLU network, NNGP kernel Σ^L (``depth`` = L hidden layers)."""

    _which = 0     # Σ^L


class ReLUNTK(_ReLUArcCos):
    """Infinite-width fully-connected ReLU network, neural tangent kernel Θ^L (``depth`` = L hidden layers)."""

    _which = 1     # Θ^L
