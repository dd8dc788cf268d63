"""Nonlinear inner models as first-class: inner optimizers, RaT-BPTT, implicit differentiation, the GD
stability bound of a nonlinear model, the step guard. Each against an independent reference."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxdistill as jd
from jaxdistill import testing as cf

ETA, LAM = 0.05, 1e-3


def outer_loss(solver, model, Xt, Yt, eta, th0s, XB, YB, T, lam=LAM):
    sol = solver.solve(model, jd.Support(model.featurize(Xt), Yt, eta, lam), th0s, T, T)
    return jnp.sum(jd.BatchLoss().data_losses(sol, model, model.featurize(XB), YB))


def meta_grad(solver, model, p, th0s, T, lam=LAM, eta=ETA):
    f = lambda Xt, Yt, e: outer_loss(solver, model, Xt, Yt, e, th0s, p["XB"], p["YB"], T, lam)  # noqa: E731
    return jax.jit(jax.grad(f, argnums=(0, 1, 2)))(p["Xt"], p["Yt"], eta)   # one compilation, not one per op


def rel(a, b):
    return float(jnp.linalg.norm(a - b)) / max(1e-300, float(jnp.linalg.norm(b)))


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(1, param_dtype=jnp.float64)(nn.tanh(nn.Dense(6, param_dtype=jnp.float64)(x)))


# ---------------------------------------------------------------- implicit differentiation
def test_implicit_equals_the_ridge_meta_gradient_at_convergence(problem):
    """Implicit differentiation at θ* = the T → ∞ limit: jax.grad of the closed-form ridge outer loss."""
    p = problem
    lam = 0.05
    m = p["Xt"].shape[0]
    eta = float(m / (np.linalg.eigvalsh(np.asarray(p["Xt"]).T @ np.asarray(p["Xt"]))[-1] + m * lam))  # ½ bound

    def ridge_loss(Xt, Yt):
        m, d = Xt.shape
        th = jnp.linalg.solve(Xt.T @ Xt / m + lam * jnp.eye(d), Xt.T @ Yt / m)
        return 0.5 / p["XB"].shape[0] * jnp.sum((p["XB"] @ th - p["YB"]) ** 2)

    ref = jax.grad(ridge_loss, argnums=(0, 1))(p["Xt"], p["Yt"])
    gx, gy, ge = meta_grad(jd.UnrolledGD(adjoint=jd.Implicit()), jd.LinearModel(), p, p["theta0"][None], 3000,
                           lam, eta)
    assert rel(gx, ref[0]) < 1e-9 and rel(gy, ref[1]) < 1e-9
    assert float(ge) == 0.0          # θ* does not depend on η̃
    # the forward value is the T-step iterate itself (here converged to the ridge solution)
    support = jd.Support(p["Xt"], p["Yt"], eta, lam)
    th = jd.UnrolledGD(adjoint=jd.Implicit()).train(jd.LinearModel(), support, p["theta0"], 3000)
    np.testing.assert_allclose(th, jd.UnrolledGD().train(jd.LinearModel(), support, p["theta0"], 3000),
                               rtol=1e-12, atol=1e-14)


def test_implicit_approximates_the_unroll_of_an_mlp_at_large_T(problem):
    model = jd.FlaxModel(MLP())
    th0s = model.sample_init(jax.random.PRNGKey(0), problem["Xt"], 1, 1)
    lam, T = 0.5, 300
    eta = 0.45 * float(jax.jit(model.gd_stability_bound)(problem["Xt"], problem["Yt"], lam))
    ref = meta_grad(jd.UnrolledGD(adjoint=jd.Unrolled()), model, problem, th0s, T, lam, eta)
    imp = meta_grad(jd.UnrolledGD(adjoint=jd.Implicit()), model, problem, th0s, T, lam, eta)
    assert rel(imp[0], ref[0]) < 1e-3 and rel(imp[1], ref[1]) < 1e-3


# ---------------------------------------------------------------- inner optimizers
def _adam_by_hand(loss, theta, eta, T, b1=0.9, b2=0.999, eps=1e-8):
    """Adam written out (Kingma & Ba, Algorithm 1), a Python loop: no optax, no scan."""
    mom, vel = jnp.zeros_like(theta), jnp.zeros_like(theta)
    for t in range(1, T + 1):
        g = jax.grad(loss)(theta)
        mom = b1 * mom + (1 - b1) * g
        vel = b2 * vel + (1 - b2) * g * g
        theta = theta - eta * (mom / (1 - b1 ** t)) / (jnp.sqrt(vel / (1 - b2 ** t)) + eps)
    return theta


def test_inner_adam_equals_adam_written_out(problem):
    p, T = problem, 8
    solver = jd.UnrolledGD(optimizer=optax.adam(1.0))

    def ours(Xt, Yt, eta):
        return outer_loss(solver, jd.LinearModel(), Xt, Yt, eta, p["theta0"][None], p["XB"], p["YB"], T)

    def by_hand(Xt, Yt, eta):
        m = Xt.shape[0]
        loss = lambda th: 0.5 / m * jnp.sum((Xt @ th - Yt) ** 2) + 0.5 * LAM * jnp.sum(th ** 2)  # noqa: E731
        th = _adam_by_hand(loss, p["theta0"], eta, T)
        return 0.5 / p["XB"].shape[0] * jnp.sum((p["XB"] @ th - p["YB"]) ** 2)

    args = (p["Xt"], p["Yt"], 0.01)
    np.testing.assert_allclose(ours(*args), by_hand(*args), rtol=1e-12)
    for a, b in zip(jax.grad(ours, argnums=(0, 1, 2))(*args), jax.grad(by_hand, argnums=(0, 1, 2))(*args),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-13)


def test_inner_sgd_of_rate_one_is_plain_gd_and_momentum_differs(problem):
    """optax.sgd(1.0) through the per-θ₀ vmap path = the default stacked GEMM path (two code paths)."""
    th0s = jnp.stack([problem["theta0"], -problem["theta0"]])
    ref = meta_grad(jd.UnrolledGD(), jd.LinearModel(), problem, th0s, 12)
    got = meta_grad(jd.UnrolledGD(optimizer=optax.sgd(1.0)), jd.LinearModel(), problem, th0s, 12)
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-14)
    mom = meta_grad(jd.UnrolledGD(optimizer=optax.sgd(1.0, momentum=0.9)), jd.LinearModel(), problem, th0s, 12)
    assert rel(mom[0], ref[0]) > 1e-3
    with pytest.raises(ValueError, match="optax.GradientTransformation"):
        jd.UnrolledGD(optimizer="adam")


def test_distill_with_an_inner_optimizer_learns_its_scale(rng):
    X = rng.normal(size=(200, 3))
    Y = np.tanh(X @ rng.normal(size=(3, 1)))
    out = jd.distill(X, Y, m=8, steps=40, T=6, Q=2, eval_every=20, progress=False, key=0,
                     model=jd.FlaxModel(MLP()), inner_solver=jd.UnrolledGD(optimizer=optax.adam(1.0)))
    assert out.ok and np.isnan(out.history.stability_ratio).all()   # no GD bound for Adam
    assert out.history.eta[0] == pytest.approx(0.01)               # DEFAULT_ETA, then learned
    assert out.history.eta[-1] != out.history.eta[0]
    assert "inner optimizer" in out.procedure()
    assert np.isfinite(out.predict(X[:5])).all()


# ---------------------------------------------------------------- RaT-BPTT
def test_random_window_draws_N_in_K_to_T_and_truncates_there(problem):
    p, K, T = problem, 3, 12
    solver = jd.UnrolledGD(adjoint=jd.RandomWindow(K))
    Ns = [int(solver.training_steps(jd.LinearModel(), jax.random.PRNGKey(i), T)) for i in range(200)]
    assert min(Ns) == K and max(Ns) == T
    N = Ns[0]
    c = cf.theta_T(p["Xt"], p["Yt"], ETA, LAM, N - K, p["theta0"])

    def oracle(Xt, Yt, eta):  # the last K of N steps from θ_{N−K} held constant, explicit powers
        th = cf.theta_T(Xt, Yt, eta, LAM, K, c)
        return 0.5 / p["XB"].shape[0] * jnp.sum((p["XB"] @ th - p["YB"]) ** 2)

    ref = jax.grad(oracle, argnums=(0, 1, 2))(p["Xt"], p["Yt"], ETA)
    got = jax.grad(lambda *a: outer_loss(solver, jd.LinearModel(), *a, p["theta0"][None], p["XB"], p["YB"], N),
                   argnums=(0, 1, 2))(p["Xt"], p["Yt"], ETA)
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


# ---------------------------------------------------------------- the stability bound of a nonlinear model
def test_gd_bound_of_a_model_declared_nonlinear_equals_lemma_2_4(problem):
    """A bias-free Dense layer is linear in θ but goes through the Hessian power iteration."""
    Xt, Yt = problem["Xt"], problem["Yt"]
    dense = jd.FlaxModel(nn.Dense(1, use_bias=False, param_dtype=jnp.float64))
    m = Xt.shape[0]
    lemma = 2 * m / (np.linalg.eigvalsh(np.asarray(Xt).T @ np.asarray(Xt))[-1] + m * LAM)
    assert float(dense.gd_stability_bound(Xt, Yt, LAM)) == pytest.approx(lemma, rel=1e-6)
    assert float(jd.LinearModel().gd_stability_bound(Xt, Yt, LAM)) == pytest.approx(lemma, rel=1e-12)


def test_gd_bound_of_an_mlp_is_two_over_the_top_hessian_eigenvalue(problem):
    model = jd.FlaxModel(MLP())
    Xt, Yt = problem["Xt"], problem["Yt"]
    theta0 = model.init(jax.random.PRNGKey(20240), Xt[:1], 1)
    flat, unravel = jax.flatten_util.ravel_pytree(theta0)
    H = jax.jit(jax.hessian(lambda v: model.loss(unravel(v), Xt, Yt, LAM)))(flat)   # dense, explicit
    top = np.abs(np.linalg.eigvalsh(np.asarray(H))).max()
    assert float(jax.jit(model.gd_stability_bound)(Xt, Yt, LAM)) == pytest.approx(2 / top, rel=1e-9)


def test_nonlinear_runs_respect_the_bound_and_never_succeed_with_nan_predictions(rng):
    X = rng.normal(size=(200, 3))
    Y = np.sin(X @ rng.normal(size=(3, 1)))
    kw = dict(m=8, steps=30, T=10, Q=2, eval_every=15, progress=False, key=0, model=jd.FlaxModel(MLP()),
              optimizer_eta=optax.sgd(50.0))          # pushes η̃ upwards hard
    capped = jd.distill(X, Y, **kw)
    assert np.nanmax(capped.history.stability_ratio) <= 0.9 + 1e-9
    with pytest.raises(ValueError, match="stability bound of plain GD on this nonlinear model"):
        jd.distill(X, Y, inner_lr=1e3, **kw)
    assert not capped.ok or np.isfinite(capped.predict(X)).all()
    # uncapped and pushed far past the bound (a linear model, cheap to compile): non-finite steps are retried
    # at half η̃, a divergence restarts from the best state with halved rates, and when that does not cure them the
    # run fails (η̃ past the bound: unstable) — it never succeeds with NaN predictions
    wild = jd.distill(X, Y, m=8, steps=30, T=20, eval_every=15, progress=False, eta_cap=None,
                      optimizer_eta=optax.sgd(1e4), inner_solver=jd.UnrolledGD())
    assert not wild.ok and wild.status in ("nonfinite", "diverged", "unstable")


# ---------------------------------------------------------------- model pool (FRePo)
def test_model_pool_starts_from_its_members_and_trains_them_on(rng):
    """One outer step by hand (numpy, a plain GD loop) against BilevelSolver.step with a pool: the meta-gradient
    starts from the chosen members; after the update they are trained `advance` more GD steps on the updated set,
    and a member reaching `max_age` is replaced by a fresh draw with age 0."""
    m, d, T, lam, eta = 5, 3, 4, 1e-3, 0.1
    pool_cfg = jd.ModelPool(size=6, advance=3, max_age=4)
    cfg = jd.DistillConfig(m=m, steps=1, T=T, Q=2, batch_size=12, lambda_inner=lam, model_pool=pool_cfg,
                           outer_optimizer="sgd", lr_x=0.1, lr_y=0.1, lr_eta=0.0, eta_cap=None)
    model = jd.LinearModel(init_scale=1.0)
    solver = jd.BilevelSolver(cfg, jd.UnrolledGD(), jd.make_optimizer(cfg))
    problem = jd.Problem(model, lam, 1e-3)
    Xt, Yt = rng.normal(size=(m, d)), rng.normal(size=(m, 1))
    XB = rng.normal(size=(12, d))
    YB = XB @ rng.normal(size=(d, 1))
    state = solver.init(problem, jd.DistillParams(jnp.asarray(Xt), jnp.asarray(Yt), jnp.asarray(eta)),
                        jax.random.PRNGKey(1))
    np.testing.assert_array_equal(state.pool_age, [0, 0, 1, 2, 2, 3])            # ages spread over [0, max_age)
    new, _ = jax.jit(lambda st: solver.step(problem, st, jnp.asarray(XB), jnp.asarray(YB), jax.random.PRNGKey(2)))(
        state)
    pool0, pool1 = np.asarray(state.pool), np.asarray(new.pool)
    moved = [i for i in range(6) if not np.array_equal(pool0[i], pool1[i])]
    assert len(moved) == 2 and all(new.pool_age[i] != state.pool_age[i] for i in moved)

    def gd(theta, X, Y, steps):
        for _ in range(steps):
            theta = theta - eta * (X.T @ (X @ theta - Y) / m + lam * theta)
        return theta

    def outer(X, Y, starts):                           # the data term of the outer loss, mean over the Q members
        return np.mean([0.5 * np.mean((XB @ gd(th, X, Y, T) - YB) ** 2) for th in starts])

    # the meta-gradient from the two moved members (central differences), then plain SGD with the λ_O penalty
    h, starts = 1e-6, [pool0[i] for i in moved]
    grad = np.zeros_like(Xt)
    for idx in np.ndindex(*Xt.shape):
        e = np.zeros_like(Xt)
        e[idx] = h
        grad[idx] = (outer(Xt + e, Yt, starts) - outer(Xt - e, Yt, starts)) / (2 * h)
    x_new = Xt - 0.1 * (grad + 1e-3 * Xt)
    np.testing.assert_allclose(new.params.x, x_new, rtol=1e-6, atol=1e-9)
    for i in moved:
        if state.pool_age[i] + 3 >= 4:                     # reached max_age: a fresh draw, age 0
            assert new.pool_age[i] == 0
        else:
            np.testing.assert_allclose(pool1[i], gd(pool0[i], np.asarray(new.params.x), np.asarray(new.params.y), 3),
                                       rtol=1e-10)
            assert new.pool_age[i] == state.pool_age[i] + 3


def test_model_pool_runs_resume_exactly_and_are_refused_where_meaningless(rng, tmp_path, run_interrupted):
    X = rng.normal(size=(120, 3))
    Y = np.sin(X[:, :1]) + 0.1 * rng.normal(size=(120, 1))
    kw = dict(m=6, steps=40, T=5, Q=2, eval_every=10, progress=False, model=jd.LinearModel(init_scale=1.0),
              model_pool={"size": 4, "max_age": 12})
    full = jd.distill(X, Y, **kw)
    assert full.config.model_pool == jd.ModelPool(size=4, max_age=12)
    run_interrupted(2, lambda: jd.distill(X, Y, checkpoint=tmp_path / "c", **kw))
    resumed = jd.distill(X, Y, checkpoint=tmp_path / "c", **kw)           # the pool is part of the checkpoint
    np.testing.assert_array_equal(resumed.x, full.x)
    np.testing.assert_array_equal(resumed.history.loss, full.history.loss)
    with pytest.raises(ValueError, match="model_pool.size .* must be >= the 8 initialisations"):
        jd.distill(X, Y, m=6, model_pool=jd.ModelPool(size=4))
    with pytest.raises(ValueError, match="KernelRidge has no θ₀ to keep in a pool"):
        jd.distill(X, Y, m=6, model_pool=jd.ModelPool(), inner_solver=jd.KernelRidge())


def test_evaluate_of_a_nonlinear_model_on_many_rows_says_how_its_full_data_rows_were_trained(rng):
    """Over 25,000 training rows the full data's step size is chosen on 20,000 fitted and 5,000 scored rows and its
    rows are trained from 2 θ₀ draws (evaluate's cost); below, the 80/20 split and n_inits // 4 draws. Each row's
    procedure says which, and the full-data predictions are finite either way."""
    n = 26_000
    X = rng.normal(size=(n + 200, 2)).astype(np.float32)
    Y = (X[:, :1] - 0.5 * X[:, 1:]).astype(np.float32)
    model = jd.FlaxModel(nn.Dense(1))
    out = jd.distill(X[:300], Y[:300], m=4, T=2, steps=10, eval_every=10, progress=False, model=model)
    big = jd.evaluate(out, X[n:], Y[n:], X[:n], Y[:n], n_subsets=2)           # n_inits 32: 8 draws, 2 here
    small = jd.evaluate(out, X[n:], Y[n:], X[:2000], Y[:2000], n_subsets=2)
    for row_id in ("full", "full_long"):
        assert "20,000 training rows fitted and 5,000 others scored; 2 θ₀ draws" in big.row(row_id)["procedure"]
        assert "a 20 % split of the training rows)" in small.row(row_id)["procedure"]
        assert np.isfinite(big.row(row_id)["r2"]) and big.row(row_id)["r2"] > 0.9


class _NotDeclaredPlainGD(jd.UnrolledGD):
    """The same training, without the declaration that lets evaluate continue one GD run from another."""
    plain_gd = False


def test_full_data_rows_continuing_the_t_step_run_equal_the_rows_trained_from_scratch(rng):
    """Under the library's plain GD the 10·T-step full-data row continues the T-step run's θ when both choose the
    same step size (GD for T then 9·T steps is GD for 10·T steps); any other solver (here a subclass that does not
    declare plain GD) trains it from θ₀. The two give the same rows, and the continued one is exercised (both rows
    name the same step size)."""
    import dataclasses
    X = rng.normal(size=(700, 2))
    Y = X[:, :1] - 0.5 * X[:, 1:] + 0.05 * rng.normal(size=(700, 1))
    out = jd.distill(X[:300], Y[:300], m=4, T=3, steps=10, eval_every=10, progress=False,
                     model=jd.FlaxModel(nn.Dense(1)))
    args = (X[600:], Y[600:], X[:600], Y[:600])
    continued = jd.evaluate(out, *args, n_subsets=2)
    scratch = jd.evaluate(dataclasses.replace(out, inner_solver=_NotDeclaredPlainGD()), *args, n_subsets=2)
    steps = [continued.row(r)["procedure"].split("step size ")[1].split(" ")[0] for r in ("full", "full_long")]
    assert steps[0] == steps[1]
    for row_id in ("full", "full_long", "subset"):   # the same GD steps (flax keeps float32 parameters), compiled apart
        np.testing.assert_allclose(continued.predictions[row_id], scratch.predictions[row_id], rtol=1e-5, atol=1e-6)
