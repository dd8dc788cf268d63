"""Scale-out (README "Scaling out"): runs over several devices equal the one-device run, and the work
really is split. CPU devices are simulated (conftest sets --xla_force_host_platform_device_count=4)."""

import warnings

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
        np.testing.assert_allclose(other.history.loss, one.history.loss, rtol=1e-12)
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
    problem = jd.Problem(model, 1e-3, cfg.lambda_outer, jd.BatchLoss())
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


# ---------------------------------------------------------------- several processes
WORKER = r"""
import sys
import jax
import jaxdistill as jd              # first, as a user's script would: importing must not start the backend
from jaxdistill import datasets
jax.config.update("jax_enable_x64", True)
jax.distributed.initialize(f"localhost:{sys.argv[1]}", num_processes=2, process_id=int(sys.argv[2]))
X, Y = datasets.load("diabetes")
pid, out = jax.process_index(), sys.argv[3]
assert jax.process_count() == 2 and len(jax.devices()) == 4 and len(jax.local_devices()) == 2
KW = dict(m=10, steps=20, eval_every=10, progress=False, Q=4, theta0_scale=1.0, T=15)
# the full-data objective: each process accumulates the statistics of its own rows
full = jd.distill(X, Y, mesh=4, checkpoint=f"{out}/full.ckpt", **KW)
# a sampled objective, batches split over the processes' devices
batch = jd.distill(X, Y, mesh=4, objective="batch", batch_size=64, inner_solver=jd.UnrolledGD(), **KW)
# the KRR paper's analytic set from a file both processes see, each reading half of its rows
disk = jd.distill_analytic(jd.NpySource(f"{out}/x.npy", f"{out}/y.npy"), None, 20, lam=1.0)
if pid == 0:
    full.save(f"{out}/full.npz")
    batch.save(f"{out}/batch.npz")
    disk.save(f"{out}/disk.npz")
print("process", pid, "done:", full.meta["devices"])
"""


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one(diabetes, tmp_path):
    """Two real processes (jax.distributed on localhost, 2 CPU devices each) give the one-process result."""
    import os
    import subprocess
    import sys
    flags = " ".join(f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f)
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": flags + " --xla_force_host_platform_device_count=2"}
    X, Y = diabetes
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(port), str(i), str(tmp_path)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    logs = [p.communicate(timeout=240)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(logs)[-3000:]
    assert "done: 4 cpu devices (q=4) in 2 process(es)" in logs[1]
    assert sorted(os.listdir(tmp_path)) == ["batch.npz", "disk.npz", "full.ckpt", "full.npz", "x.npy", "y.npy"]
    KW = dict(m=10, steps=20, eval_every=10, progress=False, Q=4, theta0_scale=1.0, T=15)
    refs = {"full": jd.distill(X, Y, **KW),
            "batch": jd.distill(X, Y, objective="batch", batch_size=64, inner_solver=jd.UnrolledGD(), **KW)}
    for name, ref in refs.items():
        got = jd.load(tmp_path / f"{name}.npz")
        np.testing.assert_allclose(got.x, ref.x, rtol=0, atol=1e-10, err_msg=name)
        np.testing.assert_allclose(got.history.loss, ref.history.loss, rtol=1e-10, err_msg=name)
        assert got.status == ref.status
    ref = jd.distill_analytic(X, Y, 20, lam=1.0)
    np.testing.assert_allclose(jd.load(tmp_path / "disk.npz").x, ref.x, rtol=0, atol=1e-11)


# ---------------------------------------------------------------- data on disk
def test_analytic_sets_from_files_equal_the_in_memory_ones(diabetes, tmp_path):
    X, Y = diabetes
    np.save(tmp_path / "x.npy", X.astype(np.float32))
    np.save(tmp_path / "y.npy", Y)
    src = jd.NpySource(tmp_path / "x.npy", tmp_path / "y.npy")
    X32 = np.load(tmp_path / "x.npy")
    rff = jd.RandomFourierFeatures(jax.random.PRNGKey(0), X.shape[1], 8)
    for fmap in (None, rff):
        mem = jd.distill_analytic(X32, Y, 20, lam=1.0, feature_map=fmap)
        disk = jd.distill_analytic(src, None, 20, lam=1.0, feature_map=fmap)
        assert disk.status == "exact" and disk.meta["n_train"] == X.shape[0]
        np.testing.assert_allclose(disk.x, mem.x, rtol=0, atol=1e-11)
        np.testing.assert_allclose(disk.predict(X[:50]), mem.predict(X[:50]), rtol=1e-10)
    # a stream of blocks that cannot seek (digits, 10 targets, m = k)
    Xd, Yd = datasets.load("digits")
    stream = jd.BlockSource(lambda: ((Xd[i:i + 97], Yd[i:i + 97]) for i in range(0, len(Xd), 97)), d=64, d_out=10)
    np.testing.assert_allclose(jd.distill_analytic(stream, None, 10).x, jd.distill_analytic(Xd, Yd, 10).x,
                               rtol=0, atol=1e-10)


def test_statistics_and_full_data_objective_from_a_source(rng, tmp_path):
    """Against numpy on the whole array: the moments (one pass, blocks of 37 rows), the standardised Gram
    matrices and the full-data objective's value and gradient."""
    X = rng.normal(size=(500, 6)) * [1, 10, 1e-3, 1e4, 1, 1] + [0, 5, 0, -1e5, 3, 0]
    Y = X @ rng.normal(size=(6, 2)) + rng.normal(size=(500, 2))
    st = jd.sufficient_statistics(jd.ArraySource(X, Y), block_rows=37)
    Xs, Ys = (X - X.mean(0)) / X.std(0), (Y - Y.mean(0)) / Y.std(0)
    np.testing.assert_allclose(st.standardizer.x_scale, X.std(0), rtol=1e-12)
    for got, want in ((st.FtF, Xs.T @ Xs), (st.FtY, Xs.T @ Ys), (st.YtY, Ys.T @ Ys)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-9)
    # float32 rows (read as they are, centred into float64): numpy's float64 statistics of the same values
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    st32 = jd.sufficient_statistics(jd.ArraySource(X32, Y32), block_rows=37)
    X64, Y64 = X32.astype(np.float64), Y32.astype(np.float64)
    Xs, Ys = (X64 - X64.mean(0)) / X64.std(0), (Y64 - Y64.mean(0)) / Y64.std(0)
    for got, want in ((st32.FtF, Xs.T @ Xs), (st32.FtY, Xs.T @ Ys), (st32.YtY, Ys.T @ Ys)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-9)
    model = jd.LinearModel(jd.Polynomial(2))
    np.save(tmp_path / "x.npy", Xs)
    np.save(tmp_path / "y.npy", Ys)
    obj = jd.FullDataLoss.from_source(model, jd.NpySource(tmp_path / "x.npy", tmp_path / "y.npy"), block_rows=64)
    F = np.asarray(model.featurize(jax.numpy.asarray(Xs)))
    theta = rng.normal(size=(F.shape[1], 2))

    def direct(th):
        return 0.5 * jax.numpy.sum((F @ th - Ys) ** 2) / len(F)
    assert float(obj.value(theta)) == pytest.approx(float(direct(theta)), rel=1e-10)
    np.testing.assert_allclose(jax.grad(obj.value)(theta), jax.grad(direct)(theta), rtol=1e-9, atol=1e-12)


def test_bad_files_are_refused_clearly(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((10, 3)))
    np.save(tmp_path / "y9.npy", np.zeros(9))
    np.save(tmp_path / "y.npy", np.zeros(10))
    np.save(tmp_path / "xf.npy", np.asfortranarray(np.zeros((10, 3))))
    with pytest.raises(ValueError, match="same n"):
        jd.NpySource(tmp_path / "x.npy", tmp_path / "y9.npy")
    # Fortran order (what np.save(frame.to_numpy()) writes) is read, a block at a time, to the same statistics (#42)
    rng = np.random.default_rng(0)
    Xc, yc = rng.normal(size=(1000, 4)), rng.normal(size=(1000, 1))
    np.save(tmp_path / "xc.npy", Xc)
    np.save(tmp_path / "xF.npy", np.asfortranarray(Xc))
    np.save(tmp_path / "yc.npy", yc)
    a = jd.sufficient_statistics(jd.NpySource(tmp_path / "xc.npy", tmp_path / "yc.npy"), block_rows=300)
    b = jd.sufficient_statistics(jd.NpySource(tmp_path / "xF.npy", tmp_path / "yc.npy"), block_rows=300)
    np.testing.assert_array_equal(a.FtF, b.FtF)
    np.testing.assert_array_equal(jd.NpySource(tmp_path / "xF.npy", tmp_path / "yc.npy").take([5, 2])[0], Xc[[5, 2]])
    with pytest.raises(ValueError, match="No such file"):
        jd.NpySource(tmp_path / "nope.npy", tmp_path / "y.npy")
    raw = (tmp_path / "x.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(raw[:-40])
    with pytest.raises(ValueError, match="truncated"):
        jd.NpySource(tmp_path / "cut.npy", tmp_path / "y.npy")
    # non-finite values: the error names them, and no numpy RuntimeWarning from inside the pass comes before it
    X = np.ones((10, 3))
    X[7, 1] = np.nan
    X[0, 2], X[1, 2] = np.inf, -np.inf              # inf − inf in the first rows' mean and in the products
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError, match="non-finite"):
            jd.sufficient_statistics(jd.ArraySource(X, np.zeros(10)))
        Y = np.zeros(10, np.float32)
        Y[8] = np.inf                               # the second block of 5 rows, its row 3
        with pytest.raises(ValueError, match="Y block has 1 non-finite values .* first at row 3"):
            jd.sufficient_statistics(jd.ArraySource(np.ones((10, 3), np.float32), Y), block_rows=5)


def test_statistics_of_shifted_columns_and_a_first_row_outlier_keep_their_digits(rng):
    """The rows' cross products are summed around one shift and re-centred. Columns at 1e8 + N(0, 1) and
    1e-3·N(0, 1) − 3e-3, and a first row 10⁶ standard deviations out (the worst place for a shift), in blocks of
    128 rows: the statistics equal centred ones computed in extended precision (np.longdouble) to 1e-11
    (measured 3e-15; 9711c95, which merged each block's rounded mean, 1.2e-7)."""
    X = rng.normal(size=(1000, 3)) * [1, 1e-3, 1] + [1e8, -3e-3, 0]
    X[0, 2] = 1e6
    y = X[:, 0] - 1e8 + X[:, 2] + rng.normal(size=1000)
    st = jd.sufficient_statistics(jd.ArraySource(X, y), block_rows=128)
    Z = np.concatenate([X, y[:, None]], axis=1).astype(np.longdouble)
    Z = (Z - Z.mean(0)) / np.sqrt(((Z - Z.mean(0)) ** 2).mean(0))
    ref = np.asarray(Z.T @ Z, np.float64)
    np.testing.assert_allclose(st.standardizer.x_scale, np.asarray(X.astype(np.longdouble).std(0), float), rtol=1e-12)
    np.testing.assert_allclose(st.FtF, ref[:3, :3], rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(st.FtY, ref[:3, 3:], rtol=1e-11, atol=1e-11)
