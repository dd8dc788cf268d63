"""The unrolled scan against independent closed forms, in float64 (regression paper, A.4–A.5)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxdistill as jd
from jaxdistill import testing as cf

ETA, LAM = 0.05, 1e-3


def scan_theta(p, T, eta=ETA, lam=LAM, theta0=None):
    theta0 = p["theta0"] if theta0 is None else theta0
    return jd.UnrolledGD().train(jd.LinearModel(), jd.Support(p["Xt"], p["Yt"], eta, lam), theta0, T, T)


def scan_data_loss(Xt, Yt, eta, p, T, lam=LAM):
    th = jd.UnrolledGD().train(jd.LinearModel(), jd.Support(Xt, Yt, eta, lam), p["theta0"], T, T)
    r = p["XB"] @ th - p["YB"]
    return 0.5 / p["XB"].shape[0] * jnp.sum(r ** 2)


def rel(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


@pytest.mark.parametrize("T", [1, 2, 7, 40])
def test_scan_matches_corrected_closed_form(problem, T):
    assert rel(jax.jit(scan_theta, static_argnums=1)(problem, T),
               cf.theta_T(problem["Xt"], problem["Yt"], ETA, LAM, T, problem["theta0"])) < 1e-10
    assert rel(scan_theta(problem, T),
               cf.theta_T_ridge_form(problem["Xt"], problem["Yt"], ETA, LAM, T, problem["theta0"])) < 1e-10


def test_scan_matches_python_loop_T3(problem):
    """Eq. (3) written out by hand: θ ← θ − η̃ (X̃ᵀ(X̃θ − Ỹ)/m + λ_I θ), three times."""
    Xt, Yt, th = (np.asarray(problem[k]) for k in ("Xt", "Yt", "theta0"))
    m = Xt.shape[0]
    for _ in range(3):
        th = th - ETA * (Xt.T @ (Xt @ th - Yt) / m + LAM * th)
    np.testing.assert_allclose(scan_theta(problem, 3), th, rtol=1e-12)


def test_eq4_as_printed_disagrees_with_scan(problem):
    """Erratum 1: eq. (4) of the paper gives βB instead of γB at T = 1 and is off for all T."""
    for T in (1, 7):
        printed = cf.theta_T_eq4_as_printed(problem["Xt"], problem["Yt"], ETA, LAM, T, problem["theta0"])
        assert rel(printed, scan_theta(problem, T)) > 0.05


def test_long_run_converges_to_ridge(problem):
    """T → ∞: θ_T → (X̃ᵀX̃ + mλ_I I)⁻¹X̃ᵀỸ, the ridge solution on the distilled data."""
    lam = 0.05
    theta = scan_theta(problem, 4000, eta=0.2, lam=lam)
    assert rel(theta, cf.ridge(problem["Xt"], problem["Yt"], lam)) < 1e-8


def test_meta_gradient_T1_matches_eqs_10_11(problem):
    p = problem
    g = jax.grad(scan_data_loss, argnums=(0, 1, 2))(p["Xt"], p["Yt"], ETA, p, 1)
    gX, gY, geta = cf.meta_grad_T1(p["Xt"], p["Yt"], ETA, LAM, p["theta0"], p["XB"], p["YB"])
    assert rel(g[0], gX) < 1e-10
    assert rel(g[1], gY) < 1e-10
    assert abs(float(g[2]) - float(geta)) < 1e-10 * max(1.0, abs(float(geta)))


@pytest.mark.parametrize("T", [2, 5, 25])
def test_meta_gradient_general_T_matches_adjoint_sums(problem, T):
    p = problem
    g = jax.grad(scan_data_loss, argnums=(0, 1, 2))(p["Xt"], p["Yt"], ETA, p, T)
    gX, gY, geta = cf.meta_grad(p["Xt"], p["Yt"], ETA, LAM, T, p["theta0"], p["XB"], p["YB"])
    assert rel(g[0], gX) < 1e-10
    assert rel(g[1], gY) < 1e-10
    assert abs(float(g[2]) - float(geta)) < 1e-10 * max(1.0, abs(float(geta)))


def test_check_grads_through_scan(problem):
    p = problem
    f = jax.jit(lambda Xt, Yt, eta: scan_data_loss(Xt, Yt, eta, p, 6))   # one compilation per derivative order
    check_grads(f, (p["Xt"], p["Yt"], jnp.asarray(ETA)), order=2, modes=("rev",), eps=1e-5, atol=1e-6, rtol=1e-6)


def test_directional_finite_difference_of_outer_loss(problem, rng):
    """The full outer objective of the solver (Def. 2.5 incl. λ_O) against central differences."""
    p = problem
    cfg = jd.DistillConfig(m=5, T=9, Q=3, batch_size=12, inner_lr=ETA, lambda_outer=0.01)
    solver = jd.BilevelSolver(cfg, jd.UnrolledGD(), jd.make_optimizer(cfg))
    problem = jd.Problem(jd.LinearModel(), lambda_inner=1e-3, lambda_outer=cfg.lambda_outer)
    params = jd.DistillParams(p["Xt"], p["Yt"], jnp.asarray(ETA))
    theta0s = jnp.asarray(rng.normal(size=(3, 8, 1)))
    mask = jnp.ones(3, bool)
    f = jax.jit(lambda prm: solver.outer_loss(problem, prm, p["XB"], p["YB"], theta0s, mask, 9)[0])
    g = jax.grad(f)(params)
    direction = jax.tree_util.tree_map(lambda a: jnp.asarray(rng.normal(size=a.shape)), params)
    h = 1e-6
    plus = jax.tree_util.tree_map(lambda a, v: a + h * v, params, direction)
    minus = jax.tree_util.tree_map(lambda a, v: a - h * v, params, direction)
    fd = (f(plus) - f(minus)) / (2 * h)
    pairs = zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(direction), strict=True)
    an = sum(jnp.sum(a * v) for a, v in pairs)
    assert abs(float(fd - an)) < 1e-7 * max(1.0, abs(float(an)))
