"""How the meta-gradient is taken (``UnrolledGD(adjoint=...)``), each against an independent reference."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxdistill as jd
from jaxdistill import testing as cf

ETA, LAM = 0.05, 1e-3


def data_loss(solver, model, Xt, Yt, eta, th0s, XB, YB, T):
    sol = solver.solve(model, jd.Support(model.featurize(Xt), Yt, eta, LAM), th0s, T, T)
    return jnp.sum(jd.BatchLoss().data_losses(sol, model, model.featurize(XB), YB))


def grads(solver, model, p, th0s, T):
    f = lambda Xt, Yt, eta: data_loss(solver, model, Xt, Yt, eta, th0s, p["XB"], p["YB"], T)  # noqa: E731
    return jax.jit(jax.grad(f, argnums=(0, 1, 2)))(p["Xt"], p["Yt"], ETA)   # one compilation, not one per op


def close(a, b, tol):
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        assert float(jnp.linalg.norm(u - v)) <= tol * max(1.0, float(jnp.linalg.norm(v)))


@pytest.mark.parametrize("adjoint", [jd.Checkpointed(), jd.Checkpointed(segment_length=1),
                                     jd.Checkpointed(segment_length=4)])
def test_checkpointed_equals_unrolled_on_a_linear_model(problem, adjoint):
    th0s = problem["theta0"][None]
    ref = grads(jd.UnrolledGD(), jd.LinearModel(), problem, th0s, 23)
    close(grads(jd.UnrolledGD(adjoint=adjoint), jd.LinearModel(), problem, th0s, 23), ref, 1e-12)


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(nn.tanh(nn.Dense(6)(x)))


def test_checkpointed_equals_unrolled_on_an_mlp(problem):
    model = jd.FlaxModel(MLP())
    th0s = model.sample_init(jax.random.PRNGKey(0), problem["Xt"], 1, 2)
    ref = grads(jd.UnrolledGD(), model, problem, th0s, 10)
    # flax keeps its parameters in float32 (param_dtype): equal to float32 rounding
    close(grads(jd.UnrolledGD(adjoint=jd.Checkpointed()), model, problem, th0s, 10), ref, 1e-6)


@pytest.mark.parametrize("K", [1, 3, 9])
def test_truncated_matches_the_closed_form_of_the_truncated_gradient(problem, K):
    """Truncated BPTT through the last K of T steps = the gradient of the closed form
    θ_T = M^K c + γ Σ_{k<K} M^k B with c = θ_{T−K} held constant (explicit powers, no scan)."""
    T, p = 12, problem
    c = cf.theta_T(p["Xt"], p["Yt"], ETA, LAM, T - K, p["theta0"])

    def oracle(Xt, Yt, eta):
        th = cf.theta_T(Xt, Yt, eta, LAM, K, c)
        return 0.5 / p["XB"].shape[0] * jnp.sum((p["XB"] @ th - p["YB"]) ** 2)

    ref = jax.grad(oracle, argnums=(0, 1, 2))(p["Xt"], p["Yt"], ETA)
    close(grads(jd.UnrolledGD(adjoint=jd.Truncated(K)), jd.LinearModel(), p, p["theta0"][None], T), ref, 1e-10)
    # K ≥ T: the full unroll
    full = grads(jd.UnrolledGD(), jd.LinearModel(), p, p["theta0"][None], T)
    close(grads(jd.UnrolledGD(adjoint=jd.Truncated(T)), jd.LinearModel(), p, p["theta0"][None], T), full, 1e-12)


def test_adjoint_is_a_field_of_distill(rng):
    X = rng.normal(size=(120, 3))
    Y = X @ rng.normal(size=(3, 1))
    kw = dict(m=5, steps=20, T=10, Q=2, eval_every=10, progress=False, key=1)
    a = jd.distill(X, Y, inner_solver=jd.UnrolledGD(), **kw)
    b = jd.distill(X, Y, inner_solver=jd.UnrolledGD(adjoint=jd.Checkpointed()), **kw)
    np.testing.assert_allclose(a.x, b.x, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="either adjoint"):
        jd.UnrolledGD(adjoint=jd.Unrolled(), checkpoint=True)
