"""Issue #25, kernel gradients at the origin: finite, and true elsewhere (central differences)."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxdistill as jd


@pytest.mark.parametrize("kernel", [jd.ReLUNTK(1), jd.ReLUNTK(3), jd.ReLUNNGP(1), jd.ReLUNNGP(3)])
@pytest.mark.parametrize("same", [True, False])
def test_relu_kernel_gradients_are_finite_at_a_zero_row(kernel, same):
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.normal(size=(4, 3))).at[1].set(0.0)
    Y = X if same else jnp.asarray(rng.normal(size=(5, 3)))

    def f(X):
        return jnp.sum(kernel.matrix(X, X if same else Y) ** 2)
    g = jax.grad(f)(X)
    assert bool(jnp.all(jnp.isfinite(g)))
    # away from the zero row the gradient is the true one (central differences, float64)
    eps, u = 1e-6, jnp.zeros_like(X).at[2, 0].set(1.0)
    fd = (f(X + eps * u) - f(X - eps * u)) / (2 * eps)
    assert float(g[2, 0]) == pytest.approx(float(fd), rel=1e-5, abs=1e-8)
