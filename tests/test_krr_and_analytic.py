"""Feature maps, kernels, the KRR inner solver and the analytic distilled sets of the KRR paper (float64)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxdistill as jd


def data(rng, n=80, d=6, k=1):
    X = rng.normal(size=(n, d))
    return X, X @ rng.normal(size=(d, k)) + 0.1 * rng.normal(size=(n, k))


def independent_ridge(F, Y, lam):
    """Normal equations / pseudo-inverse in numpy, written independently of the library."""
    F, Y = np.asarray(F), np.asarray(Y)
    if lam == 0:
        return np.linalg.pinv(F) @ Y
    return F.T @ np.linalg.solve(F @ F.T + lam * np.eye(F.shape[0]), Y)


def assert_reproduces(res, Xfull, Yfull, lam, fmap):
    """W_S = W: the model trained on the distilled set equals the original model."""
    F = np.asarray(fmap.batch(jnp.asarray(Xfull)))
    theta_star = np.linalg.solve(F.T @ F + lam * np.eye(F.shape[1]), F.T @ Yfull) if lam > 0 else \
        np.linalg.pinv(F) @ Yfull
    theta_s = independent_ridge(fmap.batch(jnp.asarray(res.x)), res.y, res.meta["lam_s"])
    assert np.linalg.norm(theta_s - theta_star) <= 1e-8 * np.linalg.norm(theta_star)


def feature_maps(d):
    key = jax.random.PRNGKey(3)
    return {"identity": jd.Identity(), "relu_net": jd.RandomReLUNet(key, d, depth=2),
            "rff": jd.RandomFourierFeatures(key, d, p=d, lengthscale=3.0)}


@pytest.mark.parametrize("fmap_name", ["identity", "relu_net", "rff"])
@pytest.mark.parametrize("k, m", [(1, 1), (2, 2), (2, 5)])
@pytest.mark.parametrize("lam_s", [0.0, 1e-3])
def test_analytic_set_reproduces_original_model(rng, fmap_name, k, m, lam_s):
    X, Y = data(rng, k=k)
    fmap = feature_maps(X.shape[1])[fmap_name]
    lam = 0.5
    if fmap_name == "rff" and (lam_s > 0 or m > k):
        # Bounded features: the exact target features may fall outside Φ's range; then it must say so.
        try:
            res = jd.distill_analytic(X, Y, m, lam=lam, lam_s=lam_s, feature_map=fmap, key=1, standardize=False)
        except ValueError as exc:
            assert "range" in str(exc) or "admissible" in str(exc)
            return
    else:
        res = jd.distill_analytic(X, Y, m, lam=lam, lam_s=lam_s, feature_map=fmap, key=1, standardize=False)
    assert res.x.shape == (m, X.shape[1]) and res.y.shape == (m, k)
    assert_reproduces(res, X, Y, lam, fmap)


def test_m_greater_than_k_stays_close_to_real_rows_when_possible(rng):
    X, Y = data(rng, n=60, d=4)
    # m = 8 ≥ d = 4: real rows already reproduce θ*
    res = jd.distill_analytic(X, Y, 8, lam=0.0, key=0, standardize=False)
    idx = np.asarray(jax.random.choice(jax.random.PRNGKey(0), 60, (8,), replace=False))
    np.testing.assert_allclose(res.x, X[idx], atol=1e-10)


def test_impossible_cases_are_reported(rng):
    X, Y = data(rng, k=3)
    with pytest.raises(ValueError, match=r"m = 2 < k = 3"):
        jd.distill_analytic(X, Y, 2)
    with pytest.raises(ValueError, match=r"largest λ_S .* is 1/\(4σ'_max²\) = "):
        jd.distill_analytic(X, Y, 3, lam_s=1e6)
    with pytest.raises(ValueError, match="no inverse"):
        jd.distill_analytic(X, Y, 3, feature_map=jd.Polynomial(2))


def test_inverses_are_exact(rng):
    X = jnp.asarray(rng.normal(size=(10, 5)))
    net = jd.RandomReLUNet(jax.random.PRNGKey(0), 5, depth=3)
    np.testing.assert_allclose(net.inverse(net.batch(X)), X, atol=1e-10)
    rff = jd.RandomFourierFeatures(jax.random.PRNGKey(1), 5, p=4)
    np.testing.assert_allclose(rff.batch(rff.inverse(rff.batch(X))), rff.batch(X), atol=1e-10)
    with pytest.raises(ValueError, match="not surjective"):
        jd.RandomFourierFeatures(jax.random.PRNGKey(1), 3, p=5).inverse(jnp.zeros((1, 5)))


def test_feature_maps_shapes_and_flax_module(rng):
    x = jnp.asarray(rng.normal(size=(7, 3)))
    assert jd.Polynomial(2).batch(x).shape == (7, 1 + 3 + 6)
    assert jd.Polynomial(2).output_dim(3) == 10
    mod = nn.Dense(4)
    params = mod.init(jax.random.PRNGKey(0), x)
    fm = jd.FlaxFeatureMap(mod, params)
    np.testing.assert_allclose(fm.batch(x), mod.apply(params, x))
    np.testing.assert_allclose(fm(x[0]), mod.apply(params, x[:1])[0])


def test_rff_approximates_rbf(rng):
    X = jnp.asarray(rng.normal(size=(6, 3)))
    rff = jd.RandomFourierFeatures(jax.random.PRNGKey(0), 3, p=20000, lengthscale=1.5)
    np.testing.assert_allclose(jd.FeatureKernel(rff).matrix(X, X), jd.RBF(1.5).matrix(X, X), atol=0.03)


def test_relu_kernels_match_a_wide_random_network(rng):
    """NNGP: E[f(x)f(y)] over random one-hidden-layer ReLU nets of width 20000 (σ_w² = 2)."""
    X = jnp.asarray(rng.normal(size=(5, 4)))
    width, d = 20000, 4
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    W1 = jax.random.normal(k1, (d, width)) * jnp.sqrt(2.0 / d)
    H = jax.nn.relu(X @ W1)
    emp = 2.0 * H @ H.T / width                         # readout weights with variance 2/width
    np.testing.assert_allclose(jd.ReLUNNGP(depth=1).matrix(X, X), emp, rtol=0.05, atol=0.05)
    # Kernel matrices are symmetric PSD and the pointwise call agrees with the matrix.
    for kern in (jd.ReLUNNGP(depth=2), jd.ReLUNTK(depth=2), jd.RBF(2.0)):
        K = np.asarray(kern.matrix(X, X))
        np.testing.assert_allclose(K, K.T, atol=1e-12)
        assert np.linalg.eigvalsh(K).min() > -1e-10
        assert float(kern(X[0], X[1])) == pytest.approx(float(K[0, 1]))


def test_ntk_gradient_is_finite_on_the_diagonal(rng):
    X = jnp.asarray(rng.normal(size=(4, 3)))
    g = jax.grad(lambda X: jnp.sum(jd.ReLUNTK(depth=2).matrix(X, X)))(X)
    assert np.all(np.isfinite(np.asarray(g)))


def test_kernel_ridge_solver_is_the_limit_of_the_scan(rng):
    F = jnp.asarray(rng.normal(size=(5, 4)))
    Y = jnp.asarray(rng.normal(size=(5, 1)))
    FB = jnp.asarray(rng.normal(size=(9, 4)))
    YB = jnp.asarray(rng.normal(size=(9, 1)))
    lam = 0.05
    th0 = jnp.zeros((2, 4, 1))
    model = jd.LinearModel()

    def loss(solver, T):
        return jd.BatchLoss().data_losses(solver.solve(model, jd.Support(F, Y, 0.1, lam), th0, T, T), model, FB, YB)

    scan = loss(jd.UnrolledGD(), 4000)
    krr = loss(jd.KernelRidge(), 0)
    np.testing.assert_allclose(krr, scan, rtol=1e-9)
    np.testing.assert_allclose(loss(jd.KernelRidge(jd.FeatureKernel(jd.Identity())), 0), krr, rtol=1e-12)


def test_kip_style_distillation_with_ntk_and_labels(rng):
    X = rng.normal(size=(300, 3))
    Y = np.sin(X[:, :1]) + X[:, 1:2] * X[:, 2:3]
    solver = jd.KernelRidge(jd.ReLUNTK(depth=1))
    out = jd.distill(X, Y, m=10, steps=150, eval_every=50, lambda_inner=1e-4, lr_eta=0.0, progress=False,
                     inner_solver=solver, optimizer_x=__import__("optax").adam(0.02),
                     optimizer_y=__import__("optax").adam(0.02))
    assert out.ok
    assert out.history.val_loss[-1] < 0.7 * out.history.val_loss[0]
    rep = jd.evaluate(out, X[:60], Y[:60], X, Y, n_subsets=5)
    assert rep.row("distilled")["mse"] < rep.row("subset")["mse"]


def test_rank_deficient_targets_and_inconsistent_labels(rng):
    """Centred one-hot targets make θ* rank k − 1; labels predicted by θ* still work (θ* rows lie in
    their row space), while labels whose row space misses θ* are refused."""
    X = rng.normal(size=(90, 6))
    Y = np.eye(3)[rng.integers(0, 3, size=90)]
    Y = Y - Y.mean(0)
    res = jd.distill_analytic(X, Y, 5, lam=0.1, key=2, standardize=False)                # real init: labels = X₀θ*
    assert_reproduces(res, X, Y, 0.1, jd.Identity())
    bad = np.zeros((5, 3))
    bad[:, 0] = 1.0
    with pytest.raises(ValueError, match="not in the row space of the labels"):
        jd.distill_analytic(X, Y, 5, lam=0.1, labels=bad, standardize=False)


def test_analytic_set_reproduces_the_full_model_on_mnist5k():
    """KRR paper, Table 4's premise on real MNIST images: ridge on the analytic set equals ridge on all
    4000 training images (W_S = W), and so predicts the 1000 test images identically — for m = k from no
    real rows (linear) and m = 100 from real rows (leaky-ReLU net features)."""
    from jaxdistill import datasets
    from jaxdistill._src.core.linalg import ridge_unnormalised
    X, Y = datasets.load("mnist5k")
    Xtr, Ytr, Xte, Yte = datasets.split("mnist5k", X, Y)
    assert Xtr.shape == (4000, 784) and Xte.shape == (1000, 784)
    assert np.all(Ytr.sum(0) == 400) and np.all(Yte.sum(0) == 100)          # the documented per-class split
    for fmap, m in ((None, 10), (jd.RandomReLUNet(jax.random.PRNGKey(3), 784, depth=1), 100)):
        out = jd.distill_analytic(Xtr, Ytr, m, lam=1.0, feature_map=fmap)
        F = out.model.featurize(jnp.asarray(out.x))
        W_S = ridge_unnormalised(F, jnp.asarray(out.y), 0.0)
        # independent oracle: the full-data ridge model computed here with numpy, in float64
        Phi = np.asarray(out.model.featurize(jnp.asarray(out.standardizer.x(Xtr))), np.float64)
        W = np.linalg.solve(Phi.T @ Phi + np.eye(Phi.shape[1]), Phi.T @ out.standardizer.y(Ytr))
        np.testing.assert_allclose(np.asarray(W_S), W, atol=1e-7 * np.abs(W).max())
        Fte = np.asarray(out.model.featurize(jnp.asarray(out.standardizer.x(Xte))))
        pred_full = out.standardizer.y_inverse(Fte @ W)
        np.testing.assert_allclose(out.predict(Xte), pred_full, atol=1e-6)     # finite, and the full model's
        assert np.mean(np.argmax(out.predict(Xte), 1) == np.argmax(Yte, 1)) > 0.8


def test_relu_kernel_diagonals_are_exact_in_float32(rng):
    """k(x, x) in closed form: the cosine is 1 at every layer, so with σ_w² = 2, σ_b² = 0 every Σ^l(x, x) equals
    Σ⁰ = 2‖x‖²/d and Θ^L(x, x) = (L + 1) Σ⁰. In float32 the diagonal must be right to float32 rounding (it was
    off by 1e-4: arccos of a cosine computed as 1 − ε)."""
    X = jnp.asarray(rng.normal(size=(50, 64)), jnp.float32)       # (7 × 5 happened to round exactly)
    sigma0 = 2 * np.sum(np.asarray(X, np.float64) ** 2, 1) / 64
    for L in (1, 3):
        ntk = np.diag(np.asarray(jd.ReLUNTK(depth=L).matrix(X, X), np.float64))
        nngp = np.diag(np.asarray(jd.ReLUNNGP(depth=L).matrix(X, X), np.float64))
        np.testing.assert_allclose(ntk, (L + 1) * sigma0, rtol=3e-6)
        np.testing.assert_allclose(nngp, sigma0, rtol=3e-6)
        assert float(jd.ReLUNTK(depth=L)(X[2], X[2])) == pytest.approx((L + 1) * sigma0[2], rel=3e-6)
    # off the diagonal nothing changes: the float32 matrix is the float64 one to float32 accuracy there
    K32 = np.asarray(jd.ReLUNTK(depth=2).matrix(X, X), np.float64)
    K64 = np.asarray(jd.ReLUNTK(depth=2).matrix(X.astype(jnp.float64), X.astype(jnp.float64)))
    off = ~np.eye(50, dtype=bool)
    np.testing.assert_allclose(K32[off], K64[off], rtol=1e-5)
