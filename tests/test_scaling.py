"""Scale-out (README "Scaling out"): runs over several devices equal the one-device run, and the work
really is split. CPU devices are simulated (conftest sets --xla_force_host_platform_device_count=4)."""

import jax
import numpy as np
import pytest
from jax.sharding import Mesh

import jaxdistill as jd
from jaxdistill import datasets

# a sampled objective (batches drawn every step) and Q random initialisations: both get split
KW = dict(m=10, steps=60, eval_every=20, progress=False, Q=4, theta0_scale=1.0, objective="batch", batch_size=64,
          inner_solver=jd.UnrolledGD(), T=15)


@pytest.fixture(scope="module")
def diabetes():
    return datasets.load("diabetes")


def test_four_devices_equal_one(diabetes):
    X, Y = diabetes
    assert len(jax.devices()) >= 4, "conftest should simulate 4 CPU devices"
    one = jd.distill(X, Y, **KW)
    four = jd.distill(X, Y, mesh=4, **KW)
    grid = jd.distill(X, Y, mesh=Mesh(np.asarray(jax.devices()[:4]).reshape(2, 2), ("q", "batch")), **KW)
    assert four.meta["devices"] == "4 cpu devices (q=4) in 1 process(es)"
    for other in (four, grid):
        np.testing.assert_allclose(other.x, one.x, rtol=0, atol=1e-12)
        np.testing.assert_allclose(other.history["loss"], one.history["loss"], rtol=1e-12)
        assert other.inner_lr == pytest.approx(one.inner_lr, rel=1e-12) and other.status == one.status


def test_the_step_really_is_split_over_the_mesh(diabetes):
    """The compiled outer step of a 4-device run: each device holds Q/4 of the initialisations and b/4 of
    the batch rows (the partitioned program's shapes), and the sums over them are all-reduces."""
    X, Y = diabetes
    Y = np.reshape(Y, (-1, 1))
    Xs, Ys = (X - X.mean(0)) / X.std(0), (Y - Y.mean()) / Y.std()
    Q, b, m, d = 8, 64, 10, X.shape[1]
    cfg = jd.DistillConfig(m=m, Q=Q, T=5, batch_size=b)
    model = jd.LinearModel(init_scale=1.0)
    solver = jd.BilevelSolver(cfg, jd.UnrolledGD(), jd.make_optimizer(cfg))
    problem = jd.Problem(model, cfg.lambda_inner, cfg.lambda_outer, jd.BatchLoss())
    params = jd.DistillParams(jax.numpy.asarray(Xs[:m]), jax.numpy.asarray(Ys[:m]), jax.numpy.asarray(0.1))
    state = solver.init(problem, params)
    mesh = Mesh(np.asarray(jax.devices()[:4]).reshape(2, 2), ("q", "batch"))
    XB, YB = jax.numpy.asarray(Xs[:b]), jax.numpy.asarray(Ys[:b])
    step = jax.jit(solver.step, static_argnames="mesh")
    text = step.lower(problem, state, XB, YB, jax.random.PRNGKey(0), mesh=mesh).compile().as_text()
    assert f"f64[{Q // 2},{d},1]" in text and f"f64[{b // 2},{d}]" in text     # per-device shards
    assert f"f64[{Q},{d},1]" not in text and f"f64[{b},{d}]" not in text      # never whole on one device
    assert "all-reduce" in text
    # and the step itself equals the unsharded one
    new, met = step(problem, state, XB, YB, jax.random.PRNGKey(0), mesh=mesh)
    ref, ref_met = step(problem, state, XB, YB, jax.random.PRNGKey(0))
    np.testing.assert_allclose(new.params.x, ref.params.x, rtol=0, atol=1e-13)
    assert float(met.loss) == pytest.approx(float(ref_met.loss), rel=1e-13)


def test_mesh_settings_are_checked(diabetes):
    X, Y = diabetes
    with pytest.raises(ValueError, match="Q .* cannot be split evenly .* use Q = 4"):
        jd.distill(X, Y, mesh=4, **{**KW, "Q": 3})
    with pytest.raises(ValueError, match="batch_size = 63 .* multiple of 2"):
        jd.distill(X, Y, mesh=Mesh(np.asarray(jax.devices()[:4]).reshape(2, 2), ("q", "batch")),
                   **{**KW, "batch_size": 63})
    with pytest.raises(ValueError, match="JAX sees 4 .*xla_force_host_platform_device_count"):
        jd.distill(X, Y, mesh=64, **KW)
    with pytest.raises(ValueError, match="axes must be named"):
        jd.distill(X, Y, mesh=Mesh(np.asarray(jax.devices()[:2]), ("data",)), **KW)
