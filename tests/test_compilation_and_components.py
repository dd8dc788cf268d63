"""The redesign's guarantees, through the public API: shared compilation, results that carry their model
(each checked against an independent computation), checkpoint identity, save/load of every component."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxdistill as jd

BACKEND_COMPILES = []
jax.monitoring.register_event_duration_secs_listener(
    lambda name, dur, **kw: BACKEND_COMPILES.append(name) if name.endswith("backend_compile_duration") else None)

KW = dict(steps=40, T=12, Q=2, eval_every=20, progress=False, validation_fraction=0.0)  # no held-out monitor


def regression(rng, n=160, d=3):
    X = rng.normal(size=(n, d)) * 3 + 1
    return X, np.sin(X[:, :1]) + 0.3 * X[:, 1:2] ** 2 + 0.1 * rng.normal(size=(n, 1))


class Sines(jd.FeatureMap):
    """A user-defined feature map (the README's example)."""

    def __call__(self, x):
        return jnp.concatenate([x, jnp.sin(x), jnp.cos(x)])


class MLP(nn.Module):
    width: int = 8

    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(nn.tanh(nn.Dense(self.width)(x)))


# ------------------------------------------------------------------ compilation is shared
def test_second_distill_with_equal_settings_compiles_nothing(rng):
    X, Y = regression(rng)
    kw = dict(KW, m=6, model=jd.LinearModel(jd.RandomFourierFeatures(jax.random.PRNGKey(0), 3, 16)))
    jd.distill(X, Y, optimizer_x=optax.adam(0.02), **kw)
    before = len(BACKEND_COMPILES)
    # other values, same shapes; a new (equal) optimizer object and a new (equal) feature map
    kw["model"] = jd.LinearModel(jd.RandomFourierFeatures(jax.random.PRNGKey(0), 3, 16))
    out = jd.distill(X + 1, Y * 2, key=5, optimizer_x=optax.adam(0.02), **kw)
    assert len(BACKEND_COMPILES) == before, BACKEND_COMPILES[before:]
    assert out.meta.bilevel.compilations["programs"] == 0
    jd.distill(X, Y, optimizer_x=optax.adam(0.03), **kw)           # another learning rate: compiles
    assert len(BACKEND_COMPILES) > before


def test_a_new_lambda_chosen_on_other_rows_compiles_nothing(rng):
    """lambda_inner="auto" picks λ_I from the data: other rows of the same shape give another λ, not another
    program (0.8 with "auto" recompiled the step and its evaluation for every new λ)."""
    X, Y = regression(rng, n=200)
    kw = dict(KW, m=6)
    first = jd.distill(X[:160], Y[:160], **kw)
    before = len(BACKEND_COMPILES)
    second = jd.distill(X[40:], Y[40:] + 0.5 * rng.normal(size=(160, 1)), **kw)
    assert second.lambda_inner != first.lambda_inner
    assert len(BACKEND_COMPILES) == before, BACKEND_COMPILES[before:]
    assert second.meta.bilevel.compilations["programs"] == 0


def test_components_are_immutable_pytrees():
    fm = jd.RandomFourierFeatures(jax.random.PRNGKey(0), 3, 5)
    leaves = jax.tree_util.tree_leaves(jd.LinearModel(fm))
    assert sorted(leaf.shape for leaf in leaves) == [(5,), (5, 3)]    # b, W: weights are leaves
    with pytest.raises(AttributeError, match="immutable"):
        fm.p = 7
    doubled = jax.jit(lambda m: m.replace(W=2 * m.W))(fm)               # through jit and back
    np.testing.assert_allclose(doubled.W, 2 * fm.W)
    assert doubled.p == 5 and isinstance(doubled, jd.RandomFourierFeatures)


def test_host_settings_and_learning_rates_compile_nothing(rng, tmp_path):
    """What the host alone reads (budget, stopping rule, cadence, what is returned, checkpoints) and the outer
    learning rates (traced) never recompile: counted from JAX's own compile events."""
    X, Y = regression(rng)
    base = dict(m=6, T=12, Q=2, progress=False, steps=40, eval_every=20)
    jd.distill(X, Y, **base)
    variants = [dict(steps=70), dict(patience=2), dict(min_improvement=0.05), dict(restore_best=False),
                dict(eval_every=10), dict(eval_every=7, steps=30), dict(divergence_factor=3.0),
                dict(lr_x=0.05, lr_y=0.002, lr_eta=0.02), dict(checkpoint=str(tmp_path / "run.ckpt")),
                dict(callbacks=[jd.MetricsLogger(tmp_path / "m.csv")])]
    for v in variants:
        before = len(BACKEND_COMPILES)
        out = jd.distill(X, Y, **{**base, **v})
        assert out.meta.bilevel.compilations["programs"] == 0 and len(BACKEND_COMPILES) == before, v
    jd.distill(X, Y, **{**base, "T": 13})                              # a new T is a new program
    assert len(BACKEND_COMPILES) > before


def test_traced_learning_rates_equal_the_optax_transformation_bitwise(rng):
    """The rates factored out of optax.adam(lr) (scale(-1), then × lr) give the same steps to the last bit as
    the self-contained transformation of make_optimizer."""
    X, Y = regression(rng)
    cfg = jd.DistillConfig(m=6, T=12, Q=2, steps=60, eval_every=20, lr_x=0.03, lr_y=0.007, lr_eta=0.004)
    a = jd.distill(X, Y, config=cfg, progress=False)
    b = jd.distill(X, Y, config=cfg, optimizer=jd.make_optimizer(cfg), progress=False)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.history.loss, b.history.loss)
    assert a.inner_lr == b.inner_lr


# ------------------------------------------------------------------ results carry their model
def _gd_from_zero(F, Y, eta, lam, T):
    """Independent: T steps of gradient descent on Def. 2.1 from θ₀ = 0, in numpy float64."""
    m = F.shape[0]
    th = np.zeros((F.shape[1], Y.shape[1]))
    for _ in range(T):
        th = th - eta * (F.T @ (F @ th - Y) / m + lam * th)
    return th


@pytest.mark.parametrize("fmap", ["sines", "rff"])
def test_predict_evaluate_plot_use_the_feature_map(rng, fmap, tmp_path):
    X, Y = regression(rng)
    Xte, Yte = regression(rng, n=60)
    phi = Sines() if fmap == "sines" else jd.RandomFourierFeatures(jax.random.PRNGKey(1), 3, 24, lengthscale=2.0)
    out = jd.distill(X, Y, m=10, model=jd.LinearModel(phi), **KW)
    std = out.standardizer
    F = np.asarray(phi.batch(jnp.asarray(out.x)))
    Fte = np.asarray(phi.batch(jnp.asarray(std.x(Xte))))
    # mean over θ₀ ~ N(0, I) of the T-step model = the model trained from θ₀ = 0 (θ_T is affine in θ₀)
    truth = std.y_inverse(Fte @ _gd_from_zero(F, out.y, out.inner_lr, out.lambda_inner, out.T))
    np.testing.assert_allclose(out.predict(Xte), truth, rtol=1e-8, atol=1e-8)
    ridge = np.linalg.solve(F.T @ F + out.m * out.lambda_inner * np.eye(F.shape[1]), F.T @ out.y)
    np.testing.assert_allclose(out.predict(Xte, limit=True), std.y_inverse(Fte @ ridge), rtol=1e-8, atol=1e-8)
    rep = jd.evaluate(out, Xte, Yte, X, Y, n_inits=4, n_subsets=3)
    r2 = 1 - np.sum((std.y_inverse(Fte @ ridge) - Yte) ** 2) / np.sum((Yte - Yte.mean()) ** 2)
    assert rep.row("distilled_ridge")["r2"] == pytest.approx(r2, rel=1e-9)
    from jaxdistill.plots import plot_predictions
    ax = plot_predictions(out, Xte, Yte)
    r2_gd = 1 - np.sum((truth[:, 0] - Yte[:, 0]) ** 2) / np.sum((Yte[:, 0] - Yte[:, 0].mean()) ** 2)
    assert f"R² {r2_gd:.3f}" in " ".join(ax.get_title(loc="left").split())


def test_kernel_ridge_result_predicts_with_its_kernel(rng):
    X, Y = regression(rng)
    Xte, _ = regression(rng, n=30)
    solver = jd.KernelRidge(jd.RBF(1.5))
    out = jd.distill(X, Y, m=8, inner_solver=solver, lambda_inner=1e-3, optimizer=optax.adam(0.01), **KW)
    assert out.inner_lr is None and out.T is None and "kernel ridge" in out.procedure()
    std = out.standardizer
    xs, xt = out.x, std.x(Xte)
    k = lambda A, B: np.exp(-((A[:, None, :] - B[None]) ** 2).sum(-1) / (2 * 1.5 ** 2))  # noqa: E731
    alpha = np.linalg.solve(k(xs, xs) + out.m * 1e-3 * np.eye(out.m), out.y)
    np.testing.assert_allclose(out.predict(Xte), std.y_inverse(k(xt, xs) @ alpha), rtol=1e-7, atol=1e-9)
    rows = [r["method"] for r in jd.evaluate(out, Xte, Xte[:, :1], X, Y, n_subsets=3).rows]
    assert rows == ["distilled", "random subset", "leverage-score sample", "k-means centroids", "k-center rows",
                    "full data", "mean of training targets"]


def test_flax_result_predicts_the_mean_of_its_procedure(rng):
    X, Y = regression(rng)
    Xte, _ = regression(rng, n=20)
    model = jd.FlaxModel(MLP(8))
    out = jd.distill(X, Y, m=8, model=model, inner_lr=0.1, optimizer=optax.adam(0.01), **KW)
    std = out.standardizer
    xs, ys, xt = (jnp.asarray(a) for a in (out.x, out.y, std.x(Xte)))
    loss = lambda p: 0.5 / 8 * jnp.sum((MLP(8).apply(p, xs) - ys) ** 2) + 0.5 * out.lambda_inner * sum(  # noqa: E731
        jnp.sum(a ** 2) for a in jax.tree_util.tree_leaves(p))
    preds, grad = [], jax.jit(jax.grad(loss))
    for k in jax.random.split(jax.random.PRNGKey(3), 4):                # independent plain loop
        p = MLP(8).init(k, xs[:1])
        for _ in range(out.T):
            p = jax.tree_util.tree_map(lambda a, g: a - out.inner_lr * g, p, grad(p))
        preds.append(MLP(8).apply(p, xt))
    truth = std.y_inverse(np.mean(preds, axis=0))
    np.testing.assert_allclose(out.predict(Xte, n_inits=4, key=3), truth, rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="nonlinear model has no closed-form limit"):
        out.predict(Xte, limit=True)


def test_analytic_result_shares_the_protocol(rng, tmp_path):
    X, Y = regression(rng)
    out = jd.distill_analytic(X, Y, 1, lam=2.0)
    # independent: ridge with an intercept = ridge on standardised columns (numpy)
    mx, sx, my, sy = X.mean(0), X.std(0), Y.mean(0), Y.std(0)
    Z, z = (X - mx) / sx, (Y - my) / sy
    theta = np.linalg.solve(Z.T @ Z + 2.0 * np.eye(3), Z.T @ z)
    np.testing.assert_allclose(out.predict(X[:7]), ((X[:7] - mx) / sx @ theta) * sy + my, rtol=1e-8)
    out.save(tmp_path / "a.npz")
    back = jd.load(tmp_path / "a.npz")
    np.testing.assert_allclose(back.predict(X[:7]), out.predict(X[:7]), rtol=1e-12)
    rep = jd.evaluate(back, X[:40], Y[:40], X, Y, n_subsets=2)
    assert rep.row("distilled")["r2"] == pytest.approx(rep.row("full")["r2"], abs=1e-9)


# ------------------------------------------------------------------ save / load every shipped component
K0 = jax.random.PRNGKey(2)
SHIPPED = {
    "identity": dict(model=jd.LinearModel()),
    "polynomial": dict(model=jd.LinearModel(jd.Polynomial(2))),
    "rff": dict(model=jd.LinearModel(jd.RandomFourierFeatures(K0, 3, 8))),
    "relu_net": dict(model=jd.LinearModel(jd.RandomReLUNet(K0, 3, depth=2))),
    "scan_checkpointed": dict(inner_solver=jd.UnrolledGD(adjoint=jd.Checkpointed())),
    "krr_linear": dict(inner_solver=jd.KernelRidge()),
    "krr_rbf": dict(inner_solver=jd.KernelRidge(jd.RBF(2.0))),
    "krr_nngp": dict(inner_solver=jd.KernelRidge(jd.ReLUNNGP(depth=2))),
    "krr_ntk": dict(inner_solver=jd.KernelRidge(jd.ReLUNTK(depth=1), jitter=1e-6)),
    "krr_features": dict(inner_solver=jd.KernelRidge(jd.FeatureKernel(jd.RandomReLUNet(K0, 3)))),
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_save_load_predict_round_trip(rng, tmp_path, name):
    X, Y = regression(rng)
    out = jd.distill(X, Y, m=6, steps=20, T=6, Q=2, eval_every=20, progress=False, validation_fraction=0.0,
                     **SHIPPED[name])
    out.save(tmp_path / "r.npz")
    back = jd.load(tmp_path / "r.npz")
    assert type(back.model) is type(out.model) and type(back.inner_solver) is type(out.inner_solver)
    assert repr(back.model) == repr(out.model) and repr(back.inner_solver) == repr(out.inner_solver)
    np.testing.assert_array_equal(back.predict(X[:9]), out.predict(X[:9]))


def test_user_components_are_asked_for_and_checked_on_load(rng, tmp_path):
    X, Y = regression(rng)
    for model in (jd.LinearModel(Sines()), jd.FlaxModel(MLP(4))):
        kw = {} if model.linear_in_params else {"inner_lr": 0.05}
        out = jd.distill(X, Y, m=6, steps=20, T=6, Q=2, eval_every=20, progress=False, model=model,
                         validation_fraction=0.0, **kw)
        out.save(tmp_path / "u.npz")
        with pytest.raises(ValueError, match=r"Pass it: jaxdistill.load\(.*model=\.\.\.\)"):
            jd.load(tmp_path / "u.npz")
        back = jd.load(tmp_path / "u.npz", model=model)
        np.testing.assert_allclose(back.predict(X[:5]), out.predict(X[:5]))
    with pytest.raises(ValueError, match=r"differs from the one .* \(first difference: model.module.width\)"):
        jd.load(tmp_path / "u.npz", model=jd.FlaxModel(MLP(5)))


# ------------------------------------------------------------------ checkpoint identity
@pytest.mark.parametrize("change, field", [
    (dict(optimizer_x=optax.adam(0.5)), "optimizer"),
    (dict(model=jd.LinearModel(jd.RandomFourierFeatures(jax.random.PRNGKey(1), 3, 8))), "problem"),
    (dict(model=jd.LinearModel(jd.RandomFourierFeatures(K0, 3, 8, lengthscale=2.0))), "problem"),
])
def test_checkpoint_of_other_settings_is_refused_naming_the_field(rng, tmp_path, change, field):
    X, Y = regression(rng)
    base = dict(m=6, steps=40, T=6, Q=2, eval_every=20, progress=False, optimizer_x=optax.adam(0.02),
                model=jd.LinearModel(jd.RandomFourierFeatures(K0, 3, 8)))
    jd.distill(X, Y, checkpoint=tmp_path / "c", **base)
    with pytest.raises(ValueError, match=rf"different run: its {field}"):
        jd.distill(X, Y, checkpoint=tmp_path / "c", **{**base, **change})


def test_checkpoint_of_another_flax_width_is_refused(rng, tmp_path):
    X, Y = regression(rng)
    kw = dict(m=6, steps=20, T=4, Q=2, eval_every=20, progress=False, inner_lr=0.05)
    jd.distill(X, Y, model=jd.FlaxModel(MLP(4)), checkpoint=tmp_path / "c", **kw)
    with pytest.raises(ValueError, match=r"its problem \(first difference: problem.model.module.width\)"):
        jd.distill(X, Y, model=jd.FlaxModel(MLP(6)), checkpoint=tmp_path / "c", **kw)


def test_user_defined_feature_map_resumes_exactly(rng, tmp_path, run_interrupted):
    X, Y = regression(rng)
    kw = dict(m=6, steps=60, T=6, Q=2, eval_every=20, progress=False, model=jd.LinearModel(Sines()))
    full = jd.distill(X, Y, **kw)
    run_interrupted(2, lambda: jd.distill(X, Y, checkpoint=tmp_path / "c", **kw))
    kw["model"] = jd.LinearModel(Sines())                              # a new instance, as in a new process
    resumed = jd.distill(X, Y, checkpoint=tmp_path / "c", **kw)
    np.testing.assert_array_equal(resumed.x, full.x)
    np.testing.assert_array_equal(resumed.history.loss, full.history.loss)


# ------------------------------------------------------------------ data path
def test_memory_mapped_input_is_used_in_place(rng, tmp_path):
    X, Y = regression(rng)
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    a = jd.distill(Xm, Y, m=6, **KW)
    b = jd.distill(X, Y, m=6, **KW)
    np.testing.assert_array_equal(a.x, b.x)


# ------------------------------------------------------------------ defaults (issue 10's first part)
def test_default_linear_model_starts_from_zero_and_the_paper_config_from_n01(rng):
    import warnings
    X = rng.normal(size=(150, 12))
    Y = X @ rng.normal(size=(12, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                      # the default (θ₀ = 0) warns about nothing
        out = jd.distill(X, Y, m=5, **KW)
    assert out.model.init_scale == 0.0 and "θ₀ = 0" in out.procedure()
    with pytest.warns(UserWarning, match=r"never trained \(Lemma 2.3\).*init_scale=0"):
        jd.distill(X, Y, m=5, model=jd.LinearModel(init_scale=1.0), **KW)
    paper = jd.paper_a7(T=5, m=5, steps=10)
    with pytest.warns(UserWarning, match="never trained"):
        out = jd.distill(X, Y, config=paper, progress=False)
    assert out.model.init_scale == 1.0
    with pytest.raises(ValueError, match="theta0_scale applies to the default model only"):
        jd.distill(X, Y, m=5, model=jd.LinearModel(), theta0_scale=1.0, **KW)


def test_naive_last_value_row_for_autoregressive_windows(rng):
    series = np.cumsum(rng.normal(size=300))
    X, Y = datasets_ar(series)
    out = jd.distill(X[:200], Y[:200], m=6, **KW)
    rep = jd.evaluate(out, X[200:], Y[200:], X[:200], Y[:200], n_subsets=2, last_value_column=-1)
    yt, naive = Y[200:, 0], X[200:, -1]
    r2 = 1 - np.sum((naive - yt) ** 2) / np.sum((yt - yt.mean()) ** 2)
    assert rep.row("naive")["r2"] == pytest.approx(r2, rel=1e-10)


def datasets_ar(series):
    from jaxdistill import datasets
    return datasets.ar_windows(series, lags=4)


def test_deprecated_second_ways_warn_and_name_their_replacement(tmp_path):
    """One obvious way per task: the older spellings still work, with a warning that names the replacement."""
    import importlib
    import sys
    X, Y = np.random.default_rng(0).normal(size=(40, 3)), np.random.default_rng(1).normal(size=(40, 1))
    out = jd.distill_moments(X, Y, m=6)
    with pytest.warns(DeprecationWarning, match=r"use out.save\(path\)"):
        jd.save(out, tmp_path / "a.npz")
    np.testing.assert_array_equal(jd.load(tmp_path / "a.npz").x, out.x)
    sys.modules.pop("jaxdistill.closed_form", None)
    with pytest.warns(DeprecationWarning, match="jaxdistill.testing"):
        old = importlib.import_module("jaxdistill.closed_form")
    assert old.theta_T is jd.testing.theta_T
    assert "save" not in jd.__all__                                     # deprecated names are not in the surface
    with pytest.warns(DeprecationWarning, match=r"use jaxdistill.load\(path\)"):
        np.testing.assert_array_equal(jd.DistillOutput.load(tmp_path / "a.npz").x, out.x)
    from jaxdistill import plots
    with pytest.warns(DeprecationWarning, match="use plot_images"):
        assert plots.plot_digits is not plots.plot_images               # still there, and warns
    with pytest.warns(DeprecationWarning, match="check one-hot targets themselves"):
        assert plots.is_one_hot(np.eye(3))


def test_blas_runs_on_one_thread_inside_the_compiled_loop_and_gets_its_threads_back():
    """#44: OpenBLAS's own threads (behind JAX's LAPACK eigh, the stability bound every step) fought XLA's pool: 1.36×
    per step at d = 1000 on 2 cores (benchmarks/results/blas_threads.md). During the run every loaded BLAS has one
    thread; afterwards each has what it had; JAXDISTILL_BLAS_THREADS=0 leaves them alone."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = {i["filepath"]: i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}
    seen = []

    class Look(jd.Callback):
        def on_evaluation(self, view):
            seen.append({i["filepath"]: i["num_threads"] for i in threadpoolctl.threadpool_info()
                         if i["user_api"] == "blas"})
            return False

    from jaxdistill import datasets
    X, Y = datasets.load("diabetes")
    jd.distill(X, Y, m=5, steps=20, eval_every=10, progress=False, callbacks=[Look()])
    assert seen and all(set(s.values()) == {1} for s in seen)
    after = {i["filepath"]: i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}
    assert {k: after[k] for k in before} == before
