"""The exact full-data objective (FullDataLoss): equal to the loss over all rows computed directly,
in float64, for value and gradient; equal, as a whole run, to full-batch BatchLoss; the default for
linear models."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_diabetes

import jaxdistill as jd


def _direct(model, X, Y):
    F = model.featurize(jnp.asarray(X))
    return lambda th: 0.5 / X.shape[0] * jnp.sum((F @ th - Y) ** 2)


@pytest.mark.parametrize("features", [jd.Identity(), jd.Polynomial(2),
                                      jd.RandomFourierFeatures(jax.random.PRNGKey(3), 5, 40)])
def test_value_and_gradient_equal_direct_loss_over_all_rows(features):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 5)) * np.array([1, 2, 3, 0.5, 1e-3])     # a badly scaled column
    Y = X[:, :2] @ rng.normal(size=(2, 3)) + 0.3 * rng.normal(size=(1000, 3))
    model = jd.LinearModel(features)
    obj = jd.FullDataLoss.from_data(model, X, Y, chunk_rows=300)         # 4 chunks, the last one padded
    direct = _direct(model, X, Y)
    p = model.featurize(jnp.asarray(X[:1])).shape[1]
    for scale in (0.0, 0.1, 3.0):
        th = jnp.asarray(scale * rng.normal(size=(p, 3)))
        v, d = float(obj.value(th)), float(direct(th))
        assert abs(v - d) <= 1e-10 * max(1.0, abs(d)), (v, d)
        g, gd = jax.grad(obj.value)(th), jax.grad(direct)(th)
        assert float(jnp.max(jnp.abs(g - gd))) <= 1e-10 * max(1.0, float(jnp.max(jnp.abs(gd))))
    # at the least-squares solution the value is the minimum, never negative
    F = np.asarray(model.featurize(jnp.asarray(X)))
    th_ls = np.linalg.lstsq(F, Y, rcond=None)[0]
    assert float(obj.value(jnp.asarray(th_ls))) == pytest.approx(float(direct(jnp.asarray(th_ls))), rel=1e-9)


@pytest.mark.parametrize("case", ["theta0_zero", "expectation"])
def test_whole_run_equals_full_batch_batchloss(case):
    """FullDataLoss (O(p²) per step) and BatchLoss on every training row (O(n·p)) are the same objective."""
    X, y = load_diabetes(return_X_y=True)
    if case == "theta0_zero":
        kw = dict(model=jd.LinearModel(jd.Polynomial(2)))
        batch = jd.BatchLoss()
    else:
        kw = dict(model=jd.LinearModel(init_scale=0.5), inner_solver=jd.ExactLinearGD(expectation=True))
        batch = jd.ExpectedBatchLoss()
    kw["lambda_inner"] = 1e-3          # "auto" would give the full-data objective a ridge term, not the batch one
    a = jd.distill(X, y, m=12, steps=60, eval_every=20, objective=jd.FullDataLoss(expectation=case == "expectation"),
                   **kw)
    b = jd.distill(X, y, m=12, steps=60, eval_every=20, objective=batch, batch_size=10 ** 6, **kw)
    np.testing.assert_allclose(a.history.loss, b.history.loss, rtol=1e-10)
    np.testing.assert_allclose(a.x, b.x, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(a.history.val_loss, b.history.val_loss, rtol=1e-10)
    assert "FullDataLoss" in a.meta["objective"] and "n_rows=398" in a.meta["objective"]


def test_default_objective_choice():
    assert isinstance(jd.default_objective(jd.LinearModel(), jd.ExactLinearGD(), 10), jd.FullDataLoss)
    assert jd.default_objective(jd.LinearModel(), jd.ExactLinearGD(expectation=True), 10).expectation
    assert isinstance(jd.default_objective(jd.LinearModel(), jd.KernelRidge(), 10), jd.BatchLoss)
    # a p×p statistic is not built for very wide feature maps
    assert isinstance(jd.default_objective(jd.LinearModel(jd.Polynomial(2)), jd.ExactLinearGD(), 200), jd.BatchLoss)


def test_unbound_and_unsuitable_uses_say_what_to_do():
    with pytest.raises(ValueError, match="from_data"):
        jd.FullDataLoss().value(jnp.zeros((3, 1)))
    import flax.linen as nn
    X, y = load_diabetes(return_X_y=True)
    with pytest.raises(ValueError, match="linear in θ"):
        jd.distill(X, y, m=5, steps=2, model=jd.FlaxModel(nn.Dense(1)), objective=jd.FullDataLoss())
    with pytest.raises(ValueError, match="ExactLinearGD"):
        jd.distill(X, y, m=5, steps=2, objective=jd.FullDataLoss(expectation=True), inner_solver=jd.UnrolledGD())
