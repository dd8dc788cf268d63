"""Bad input: each case either works correctly or raises a ValueError that names the setting (issue classes:
silently wrong numbers, crashes and lost work, files, unclear errors)."""

import json
import os
import stat
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxdistill as jd
from jaxdistill import datasets

SMALL = dict(steps=20, T=5, Q=2, eval_every=10, progress=False)


def linear(rng, n=120, d=4):
    X = rng.normal(size=(n, d))
    return X, X @ rng.normal(size=(d, 1)) + 0.05 * rng.normal(size=(n, 1))


# ------------------------------------------------------------------ silently wrong before
def test_held_out_and_test_rows_too_far_out_for_the_compute_dtype_are_refused_by_row(rng):
    # finite in float64, but 1e25 training standard deviations out squares to inf in the compute dtype: the
    # held-out loss would be inf and the run end `nonfinite` at step 0 with advice about learning rates
    X, Y = linear(rng)
    limit = np.sqrt(np.finfo(jnp.result_type(float)).max)
    Xv = X[:10].copy()
    Xv[4, 2] = 10 * limit
    with pytest.raises(ValueError, match=r"X column 2 .* \(held-out row 4\).*float"):
        jd.distill(X, Y, m=6, validation=(Xv, Y[:10]), **SMALL)
    # the same row among evaluate's test rows made its table's MSE and R² NaN: refused the same way
    out = jd.distill(X, Y, m=6, **SMALL)
    with pytest.raises(ValueError, match=r"X_test column 2 .* \(test row 4\).*float"):
        jd.evaluate(out, Xv, Y[:10])
    # and by predict, which had blamed the distilled set ("ill-conditioned") after a RuntimeWarning from a cast
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError, match=r"X_new column 2 .* \(new row 4\).*float"):
            out.predict(Xv)
    Xv[4, 2] = 1e3                                       # far out but representable: a run as usual
    assert jd.distill(X, Y, m=6, validation=(Xv, Y[:10]), **SMALL).ok
    assert np.isfinite(jd.evaluate(out, Xv, Y[:10]).rows[0]["mse"])
    assert np.all(np.isfinite(out.predict(Xv)))


@pytest.mark.parametrize("scale, dtype", [(1e19, np.float32), (1e-30, np.float32), (1e-200, np.float64),
                                          (1e200, np.float64)])
def test_extreme_column_scales_are_standardised_exactly(rng, scale, dtype):
    X, Y = linear(rng)
    Xs = (X * scale).astype(dtype)
    out = jd.distill(Xs, Y, m=6, **SMALL)
    assert out.ok and np.all(np.isfinite(out.x))
    sd = out.standardizer.x_scale
    # the scale found is the columns' standard deviation (of the training rows), not 1 ("constant column")
    assert np.all(np.isfinite(sd)) and np.all(np.abs(np.log10(sd / scale)) < 1)
    np.testing.assert_allclose(out.predict(Xs[:20]), jd.distill(X, Y, m=6, **SMALL).predict(X[:20]), rtol=1e-4,
                               atol=1e-4 * float(np.abs(Y).max()))


@pytest.mark.parametrize("make, match", [
    (lambda: jd.RBF(0), "lengthscale"), (lambda: jd.RBF(float("nan")), "lengthscale"),
    (lambda: jd.RandomFourierFeatures(jax.random.PRNGKey(0), 3, 4, lengthscale=0), "lengthscale"),
    (lambda: jd.ReLUNTK(weight_var=-2), "weight_var"), (lambda: jd.ReLUNTK(depth=1.7), "depth"),
    (lambda: jd.ReLUNNGP(bias_var=-1), "bias_var"), (lambda: jd.Polynomial(2.7), "degree"),
    (lambda: jd.RandomReLUNet(jax.random.PRNGKey(0), 3, depth=0), "depth"),
    (lambda: jd.LinearModel(init_scale=float("inf")), "init_scale"),
    (lambda: jd.KernelRidge(jitter=-1.0), "jitter"), (lambda: jd.Truncated(0), "K"),
    (lambda: jd.DistillConfig(standardize="false"), "standardize"),
    (lambda: jd.DistillConfig(lr_x="0.1"), "lr_x"), (lambda: jd.DistillConfig(T=2.5), "T"),
    (lambda: jd.DistillConfig(q_schedule={"max_q": 6, "bogus": 1}), "q_schedule"),
    (lambda: jd.DistillConfig(q_schedule=6), "q_schedule"),
    (lambda: jd.DistillConfig.from_dict([]), "mapping"),
])
def test_invalid_settings_are_errors_naming_the_setting(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("kw, match", [({"lam": float("nan")}, "lam"), ({"lam": float("inf")}, "lam"),
                                       ({"lam_s": float("nan")}, "lam_s"), ({"lam": -1.0}, "lam")])
def test_analytic_rejects_non_numbers(rng, kw, match):
    X, Y = linear(rng)
    with pytest.raises(ValueError, match=match):
        jd.distill_analytic(X, Y, 2, **kw)


def test_numpy_scalars_and_python_dicts_are_accepted(rng):
    X, Y = linear(rng)
    out = jd.distill(X, Y, m=np.int64(5), lr_x=np.float32(0.1), q_schedule={"max_q": 4}, key=np.int32(3), **SMALL)
    assert out.m == 5 and out.config.q_schedule == jd.QSchedule(max_q=4) and out.seed == 3
    with pytest.raises(ValueError, match="key must be an integer seed"):
        jd.distill(X, Y, m=5, key=1.7, **SMALL)


def test_kernel_ridge_without_regularisation_is_right_for_a_singular_gram(rng):
    """λ_I = 0 with a rank-deficient distilled set (repeated rows): the minimum-norm interpolant, as lstsq."""
    F = rng.normal(size=(4, 3))
    F = np.vstack([F, F[:2]])                        # 6 × 3, rank 3: K = FFᵀ is singular
    Y = rng.normal(size=(6, 1))
    FB = rng.normal(size=(9, 3))
    model = jd.LinearModel()
    sol = jd.KernelRidge().solve(model, jd.Support(jnp.asarray(F), jnp.asarray(Y), 0.0, 0.0),
                                jnp.zeros((1, 3, 1)), 0, 0)
    theta = np.linalg.lstsq(F, Y, rcond=None)[0]
    np.testing.assert_allclose(np.asarray(sol.predict(jnp.asarray(FB)))[0], FB @ theta, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("kernel, rtol", [(jd.ReLUNNGP(depth=2), 1e-9), (jd.ReLUNTK(depth=2), 1e-7)])
def test_relu_kernels_are_homogeneous_down_to_tiny_norms(rng, kernel, rtol):
    """With σ_b² = 0 the arc-cosine kernels are homogeneous of degree 2: K(cx, cy) = c² K(x, y) (before:
    an absolute clamp gave relative errors up to 1e8 at norm 3e-12). The NTK's diagonal still loses ~1e-8
    (arccos at c → 1), hence its looser tolerance."""
    X = jnp.asarray(rng.normal(size=(4, 3)))
    K = np.asarray(kernel.matrix(X, X))
    for c in (1e-6, 3e-12, 1e-150):
        np.testing.assert_allclose(np.asarray(kernel.matrix(c * X, c * X)) / c ** 2, K, rtol=rtol)


def test_evaluation_on_degenerate_test_sets(rng):
    X, Y = linear(rng)
    out = jd.distill(X, Y, m=5, **SMALL)
    with pytest.raises(ValueError, match="at least 2 rows"):
        jd.evaluate(out, X[:1], Y[:1], X, Y)
    rep = jd.evaluate(out, X[:5], np.ones((5, 1)), X, Y, n_subsets=2)    # constant targets: R² undefined
    assert all(np.isnan(r["r2"]) or np.isfinite(r["r2"]) for r in rep.rows)
    assert not any(r["r2"] == -np.inf for r in rep.rows)


def test_unknown_dataset_options_are_errors():
    with pytest.raises(ValueError, match=r"no option\(s\) \['lag'\]; its options are \['lags'\]"):
        datasets.load("sunspots", lag=8)
    with pytest.raises(ValueError, match="takes no options"):
        datasets.load("diabetes", lags=3)
    with pytest.raises(ValueError, match="lags must be an integer"):
        datasets.load("sunspots", lags="abc")


# ------------------------------------------------------------------ crashes and lost work
@pytest.mark.parametrize("n, m", [(5, 2), (4, 1), (6, 3)])
def test_tiny_data_sets_work_or_say_what_to_change(rng, n, m):
    X, Y = linear(rng, n=n, d=2)
    out = jd.distill(X, Y, m=m, **SMALL)
    assert out.meta["n_validation"] >= 1 and np.all(np.isfinite(out.x))
    with pytest.raises(ValueError, match="lower m or validation_fraction"):
        jd.distill(X, Y, m=n - 1, **SMALL)


def test_a_checkpoint_that_cannot_be_written_does_not_lose_the_run(rng, tmp_path):
    X, Y = linear(rng)
    with pytest.warns(UserWarning, match="Could not write the checkpoint"):
        out = jd.distill(X, Y, m=5, checkpoint=tmp_path / "missing_dir" / "c.ckpt", **SMALL)
    assert out.history.loss.size == 20 and "checkpoint_error" in out.meta


# ------------------------------------------------------------------ files
def test_saved_files_respect_the_umask_and_refuse_odd_targets(rng, tmp_path):
    X, Y = linear(rng)
    out = jd.distill(X, Y, m=5, **SMALL)
    old = os.umask(0o022)
    try:
        out.save(tmp_path / "r.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "r.npz").st_mode) == 0o644
    os.symlink(tmp_path / "r.npz", tmp_path / "link.npz")
    with pytest.raises(ValueError, match="symbolic link"):
        out.save(tmp_path / "link.npz")
    with pytest.raises(ValueError, match="is a directory; give a file name"):
        out.save(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        out.save(tmp_path / "nope" / "r.npz")
    assert sorted(os.listdir(tmp_path)) == ["link.npz", "r.npz"]       # no temporary files left


KILLED_WHILE_SAVING = """
import os, signal, sys
import jaxdistill as jd
out = jd.load(sys.argv[1])
os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)     # killed just before the final rename
out.save(sys.argv[2])
"""


def test_a_save_killed_before_its_rename_leaves_nothing_behind(rng, tmp_path):
    """kill -9 between writing the temporary file and renaming it: the target is untouched, and the complete
    temporary file it leaves is removed by the next save into that folder (not one of a live writer)."""
    import subprocess
    import sys
    X, Y = linear(rng)
    out = jd.distill(X, Y, m=5, **SMALL)
    out.save(tmp_path / "r.npz")
    (tmp_path / "target.npz").write_bytes(b"previous")
    proc = subprocess.run([sys.executable, "-c", KILLED_WHILE_SAVING, str(tmp_path / "r.npz"),
                           str(tmp_path / "target.npz")], env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert proc.returncode == -9
    left = [p for p in os.listdir(tmp_path) if p.endswith(".part")]
    assert len(left) == 1 and (tmp_path / "target.npz").read_bytes() == b"previous"
    live = tmp_path / left[0].replace(left[0].split("-")[2], str(os.getpid()), 1)   # same name, a live writer
    live.write_bytes(b"being written")
    out.save(tmp_path / "other.npz")
    assert sorted(p for p in os.listdir(tmp_path) if p.endswith(".part")) == [live.name]
    np.testing.assert_array_equal(jd.load(tmp_path / "other.npz").x, out.x)


def test_hand_edited_result_files_are_refused(rng, tmp_path):
    X, Y = linear(rng)
    out = jd.distill(X, Y, m=5, **SMALL)
    out.save(tmp_path / "r.npz")
    with np.load(tmp_path / "r.npz") as z:
        files = dict(z)
    for key, bad in (("x", np.full((5, 4), np.nan)), ("y", np.zeros((3, 1))), ("std_x_scale", -np.ones(4))):
        np.savez(tmp_path / "bad.npz", **{**files, key: bad})
        with pytest.raises(ValueError, match="was changed after jaxdistill wrote it"):     # the checksum
            jd.load(tmp_path / "bad.npz")
        meta = json.loads(files["__meta__"].tobytes().decode())
        del meta["checksum"]                             # as a 0.7 file (no checksum): the values themselves
        np.savez(tmp_path / "bad.npz", **{**files, key: bad,
                                          "__meta__": np.frombuffer(json.dumps(meta).encode(), np.uint8)})
        with pytest.raises(ValueError, match="inconsistent"):
            jd.load(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="is a directory"):
        jd.load(tmp_path)


@pytest.mark.parametrize("text,says", [
    ('{"dataset": {"name": "diabetes"}, "seed": null}', "seed must be an integer"),
    ('{"dataset": {"name": "diabetes"}, "seed": 1.5}', "seed must be an integer"),
    ('{"dataset": {"name": "npy", "x": "X.npy"}}', r"needs the file entries \['x', 'y'\]"),
    ('{"dataset": {"name": "csv"}}', r"needs the file entries \['path'\]"),
    ("null", "must be a JSON object"),
    ("[1, 2]", "must be a JSON object"),
    ('{"dataset": null}', 'needs "dataset"'),
    ('{"dataset": {"name": "diabetes"}, "output": 3}', '"output" must be a file path'),
])
def test_malformed_experiment_files_are_one_line_errors_not_tracebacks(tmp_path, capsys, text, says):
    from jaxdistill import cli
    path = tmp_path / "e.json"
    path.write_text(text)
    assert cli.main(["run", str(path), "--no-progress", "--out", str(tmp_path / "r.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxdistill: error:") and "Traceback" not in err
    import re
    assert re.search(says, err), err


@pytest.mark.parametrize("text,target,says", [
    ("a, b, y\n1, 2, 3\n4, 5, 6\n\n7, 8, 9\n\n", "y", None),                 # spaces, blank lines: fine
    ("a,b,y\n1,2,3\n4,,6\n7,8,9\n", "y", r"line 3, column 'b': an empty cell"),
    ("a,b,y\n1,2,3\n4,NA,6\n7,8,9\n", "y", r"line 3, column 'b'.*'NA'"),
    ("a,b,y\n1,red,3\n4,5,6\n7,8,9\n", "y", r"line 2, column 'b': the non-numeric value 'red'"),
    ("a,b,y\n1,2,3\n4,5,6\n7,8,9\n", "price", r"no column 'price'; its columns are \['a', 'b', 'y'\]"),
    ("a,b,y\n1,2,3\n4,5\n7,8,9\n", "y", "line 3 has 2 values"),
    ("a,b,y\n1,2,3\n4,5,inf\n7,8,9\n", "y", "not a finite number"),
])
def test_load_csv_names_the_line_and_column_of_bad_cells(tmp_path, text, target, says):
    path = tmp_path / "d.csv"
    path.write_text(text)
    if says is None:
        X, Y = datasets.load_csv(str(path), target=target)
        np.testing.assert_array_equal(X, [[1, 2], [4, 5], [7, 8]])
        np.testing.assert_array_equal(Y, [[3], [6], [9]])
        X, Y, names, y_name = datasets.load_csv(str(path), target="a", return_names=True)
        assert names == ["b", "y"] and y_name == "a"
        assert X[:, 0].tolist() == [2, 5, 8] and Y.ravel().tolist() == [1, 4, 7]
    else:
        with pytest.raises(ValueError, match=says):
            datasets.load_csv(str(path), target=target)


def test_cli_evaluate_refuses_data_that_changed_since_the_run(tmp_path, capsys):
    from jaxdistill import cli
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", X @ [1.0, 2.0, 3.0])
    exp = {"dataset": {"name": "npy", "x": str(tmp_path / "X.npy"), "y": str(tmp_path / "Y.npy")},
           "config": {"m": 4, "steps": 20, "eval_every": 10}}
    (tmp_path / "e.json").write_text(__import__("json").dumps(exp))
    out = str(tmp_path / "r.npz")
    assert cli.main(["run", str(tmp_path / "e.json"), "--no-progress", "--no-eval", "--out", out]) in (0, 1)
    assert cli.main(["evaluate", out]) == 0
    np.save(tmp_path / "Y.npy", X @ [1.0, 2.0, 3.5])                  # the data file changes afterwards
    capsys.readouterr()
    assert cli.main(["evaluate", out]) == 2
    assert "not those it was distilled" in capsys.readouterr().err
