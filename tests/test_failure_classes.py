"""Classes of failure from issue #25, each with generated cases and one oracle: a one-line message naming what
to change — ValueError / FileNotFoundError from the API, exit 2 from the CLI — or the correct result; never a
traceback or a hang (subprocesses run under a timeout)."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxdistill as jd
from jaxdistill import datasets

CLI = [sys.executable, "-m", "jaxdistill.cli"]


def _cli(args, tmp_path, env=None, timeout=120):
    """Run the CLI in a new process (where the environment or a possible hang matters); return (exit code,
    stderr). A hang fails the test at ``timeout``."""
    res = subprocess.run(CLI + args, cwd=tmp_path, capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})})
    return res.returncode, res.stderr


@pytest.fixture
def cli_here(tmp_path, monkeypatch, capsys):
    """Run the CLI in this process (seconds faster than a new one) from ``tmp_path``: (exit code, stderr)."""
    from jaxdistill import cli
    monkeypatch.chdir(tmp_path)

    def run(args):
        code = cli.main(args)
        return code, capsys.readouterr().err
    return run


def _one_line_error(code, err):
    assert code == 2, err
    assert "Traceback" not in err and err.startswith("jaxdistill: error:"), err


# ------------------------------------------------------------------ paths of the wrong kind (and hangs)
@pytest.fixture
def odd_paths(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "folder").mkdir()
    np.savez(tmp_path / "two.npz", a=np.zeros(3), b=np.zeros(3))
    (tmp_path / "text.npy").write_text("not an array\n")
    return {"fifo": fifo, "folder": tmp_path / "folder", "npz as npy": tmp_path / "two.npz",
            "text as npy": tmp_path / "text.npy"}


@pytest.mark.parametrize("kind", ["fifo", "folder"])
@pytest.mark.parametrize("reader", ["load", "load_csv"])
def test_api_readers_refuse_paths_that_are_not_files(odd_paths, kind, reader):
    fn = jd.load if reader == "load" else datasets.load_csv
    with pytest.raises(ValueError, match="named pipe|not a regular|folder|directory"):
        fn(odd_paths[kind])


@pytest.mark.parametrize("command", ["run", "evaluate", "plot"])
def test_cli_refuses_paths_that_are_not_files_without_hanging(odd_paths, tmp_path, cli_here, command):
    _one_line_error(*_cli([command, str(odd_paths["fifo"])], tmp_path, timeout=60))   # a new process: a hang ends
    _one_line_error(*cli_here([command, str(odd_paths["folder"])]))


@pytest.mark.parametrize("kind,says", [("npz as npy", "npz archive"), ("text as npy", "not a readable .npy"),
                                       ("fifo", "named pipe"), ("folder", "folder")])
def test_experiment_data_files_of_the_wrong_kind(odd_paths, tmp_path, cli_here, kind, says):
    np.save(tmp_path / "Y.npy", np.zeros(20))
    exp = {"dataset": {"name": "npy", "x": str(odd_paths[kind]), "y": "Y.npy"}, "config": {"m": 3, "steps": 5}}
    (tmp_path / "e.json").write_text(json.dumps(exp))
    code, err = cli_here(["run", "e.json", "--no-checkpoint", "--out", "o.npz"])
    _one_line_error(code, err)
    assert says in err and "allow_pickle" not in err


# ------------------------------------------------------------------ malformed structure
def _nested(depth):
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("where", ["file", "--set"])
def test_deeply_nested_json_is_a_clear_error(tmp_path, cli_here, where):
    exp = {"dataset": {"name": "diabetes"}, "config": {"m": 3, "steps": 5}}
    if where == "file":
        (tmp_path / "e.json").write_text('{"dataset": ' + _nested(100_000) + "}")
        args = ["run", "e.json"]
    else:
        (tmp_path / "e.json").write_text(json.dumps(exp))
        args = ["run", "e.json", "--set", "m=" + _nested(5_000)]
    _one_line_error(*cli_here(args))


@pytest.mark.parametrize("target,says", [(None, "target must be"), ([0], "target must be"),
                                         (1.0, "target must be"), (True, "target must be"),
                                         ("missing", "no column 'missing'")])
def test_csv_target_of_the_wrong_kind_never_picks_a_column_by_accident(tmp_path, target, says):
    (tmp_path / "d.csv").write_text("a,b,c\n1,2,3\n4,5,6\n7,8,9\n")
    with pytest.raises(ValueError, match=says):
        datasets.load_csv(tmp_path / "d.csv", target=target)


@pytest.mark.parametrize("text,says", [
    ("a,b,a\n1,2,3\n4,5,6\n7,8,9\n", "more than once"),              # the second 'a' silently became a feature
    ("1,2,3\n4,5,6\n7,8,9\n", "looks like data, not a header"),     # the first row was silently lost
    ("a,,c\n1,2,3\n4,5,6\n", "empty column name"),
])
def test_csv_headers_that_would_lose_or_misplace_data(tmp_path, text, says):
    (tmp_path / "d.csv").write_text(text)
    with pytest.raises(ValueError, match=says):
        datasets.load_csv(tmp_path / "d.csv", target="a" if text.startswith("a") else -1)


@pytest.mark.parametrize("entry", [{"test_fraction": "0.2"}, {"test_fraction": None}, {"test_fraction": [0.2]},
                                   {"test_fraction": 1.5}, {"shuffle": "no"}, {"name": "synthetic", "n": -5},
                                   {"name": "synthetic", "n": 10.5}, {"name": "synthetic", "noise": "high"},
                                   {"name": "sunspots", "lags": "twelve"}])
def test_dataset_options_of_the_wrong_type(tmp_path, cli_here, entry):
    exp = {"dataset": {"name": "diabetes", **entry}, "config": {"m": 3, "steps": 5}}
    (tmp_path / "e.json").write_text(json.dumps(exp))
    code, err = cli_here(["run", "e.json", "--no-checkpoint"])
    _one_line_error(code, err)
    assert next(k for k in entry if k != "name") in err


@pytest.mark.parametrize("out", ["existing_file", "/dev/null", "e.json", "data.csv"])
def test_output_paths_are_checked_before_the_computation(tmp_path, cli_here, out):
    (tmp_path / "existing_file").write_text("keep me")
    (tmp_path / "data.csv").write_text("a,b\n1,2\n3,4\n5,6\n7,8\n9,10\n11,12\n13,14\n")
    exp = {"dataset": {"name": "csv", "path": "data.csv", "target": "b"}, "config": {"m": 2, "steps": 5}}
    (tmp_path / "e.json").write_text(json.dumps(exp))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    for args in (["sweep", "e.json", "--m", "2", "--seeds", "0", "--out", out],
                 ["run", "e.json", "--no-checkpoint", "--out", out]):
        if args[0] == "run" and out in ("existing_file", "/dev/null"):
            continue                    # a result file may replace an earlier file of that name
        code, err = cli_here(args)
        _one_line_error(code, err)
        assert "distilled" not in err      # refused before computing anything
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


# ------------------------------------------------------------------ environment
@pytest.mark.parametrize("platform", ["gpu", "cuda", "tpu", "cpux"])
def test_a_platform_this_machine_lacks_is_named_not_a_traceback(tmp_path, platform):
    code, err = _cli(["demo", "--steps", "5"], tmp_path, env={"JAX_PLATFORMS": platform})
    _one_line_error(code, err)
    assert f"JAX_PLATFORMS='{platform}'" in err and "JAX_PLATFORMS=cpu" in err


@pytest.mark.parametrize("redirect", ["stdout closed", "stdout full", "stderr closed"])
def test_closed_or_full_streams_do_not_end_the_work(tmp_path, redirect):
    """``>&-``, ``>/dev/full``, ``2>&-`` (with progress on): the run completes and saves its result."""
    exp = {"dataset": {"name": "diabetes"}, "config": {"m": 3, "steps": 10, "eval_every": 5}}
    (tmp_path / "e.json").write_text(json.dumps(exp))
    shell = {"stdout closed": ">&-", "stdout full": ">/dev/full", "stderr closed": "2>&-"}[redirect]
    cmd = " ".join(CLI + ["run", "e.json", "--no-checkpoint", "--no-eval", "--out", "o.npz"]) + f" {shell}"
    res = subprocess.run(cmd, shell=True, cwd=tmp_path, capture_output="stderr" not in redirect, text=True,
                         timeout=120, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert res.returncode == 0, res.stderr
    assert jd.load(tmp_path / "o.npz").m == 3
    if redirect != "stderr closed":
        assert "Traceback" not in res.stderr and "cannot write to stdout" in res.stderr


def test_checkpoint_path_that_is_a_device_and_validation_rows_named_as_such():
    X, Y = datasets.load("diabetes")
    with pytest.raises(ValueError, match="device, pipe or socket"):
        jd.distill(X, Y, m=3, steps=5, checkpoint="/dev/null", progress=False)
    Xv = X[:20].copy()
    Xv[5, 1] = np.nan
    with pytest.raises(ValueError, match="the validation X has 1 non-finite value.*row 5"):
        jd.distill(X, Y, m=3, steps=5, validation=(Xv, Y[:20]), progress=False)
    out = jd.distill_analytic(X[:300], Y[:300], m=2, lam=1.0)
    with pytest.raises(ValueError, match="X_train has 300 rows but Y_train has 299"):
        jd.evaluate(out, X[300:], Y[300:], X[:300], Y[:299])


def test_a_float64_checkpoint_resumed_in_float32_says_so(tmp_path):
    """The compute dtype is the first entry of a run's identity: its message names it, not an array."""
    code = ("import jax, numpy as np, jaxdistill as jd\n"
            "from jaxdistill import datasets\n"
            "X, Y = datasets.load('diabetes')\n"
            "try:\n"
            f"    jd.distill(X, Y, m=3, steps=10, eval_every=5, checkpoint={str(tmp_path / 'c.ckpt')!r},\n"
            "               progress=False)\n"
            "except ValueError as e:\n"
            "    print(e)\n")
    X, Y = datasets.load("diabetes")
    jd.distill(X, Y, m=3, steps=10, eval_every=5, checkpoint=tmp_path / "c.ckpt", progress=False)   # float64 here
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "JAX_PLATFORMS": "cpu", "JAX_ENABLE_X64": "0"})
    assert "dtype ('float64' there, 'float32' here)" in res.stdout, res.stdout + res.stderr


# ------------------------------------------------------------------ messages that mislead
@pytest.fixture(scope="module")
def analytic():
    X, Y = datasets.load("diabetes")
    return X, Y, jd.distill_analytic(X[:300], Y[:300], m=2, lam=1.0)


@pytest.mark.parametrize("kwargs,says", [(dict(n_subsets=-1), "n_subsets"), (dict(n_subsets=0), "n_subsets"),
                                         (dict(n_inits=0), "n_inits"), (dict(n_inits=2.5), "n_inits"),
                                         (dict(last_value_column=99), "last_value_column")])
def test_evaluate_arguments_are_checked_before_any_compute(analytic, kwargs, says):
    X, Y, out = analytic
    with pytest.raises(ValueError, match=says):
        jd.evaluate(out, X[300:], Y[300:], X[:300], Y[:300], **kwargs)


# ------------------------------------------------------------------ kernel gradients at the origin
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


# ------------------------------------------------------------------ resources
@pytest.mark.parametrize("error", [MemoryError("cannot allocate"),
                                   jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to "
                                                              "allocate 1.00TiB.")])
def test_a_run_that_does_not_fit_names_what_sets_its_size(monkeypatch, error):
    """XLA's RESOURCE_EXHAUSTED (or a MemoryError) from the compiled step becomes a message naming n, d, m, Q, T
    and the batch with an estimate (simulated here: a real one would take this machine's memory)."""
    from jaxdistill._src.outer import driver

    def exhausted(*args, **kwargs):
        raise error
    monkeypatch.setattr(driver, "_run_chunk", exhausted)
    X, Y = datasets.load("diabetes")
    with pytest.raises(MemoryError, match=r"n = 442 rows, d = 10 .* m = 5 .* Q = 8 .* T = 50 .* batch of 442 "
                                          r"rows: about .* GiB"):
        jd.distill(X, Y, m=5, steps=5, validation_fraction=0.0, progress=False)
    monkeypatch.setattr(driver, "_run_chunk", lambda *a, **k: (_ for _ in ()).throw(
        jax.errors.JaxRuntimeError("INTERNAL: something else")))
    with pytest.raises(jax.errors.JaxRuntimeError, match="INTERNAL"):       # other runtime errors pass through
        jd.distill(X, Y, m=5, steps=5, validation_fraction=0.0, progress=False)


def test_kip_with_zero_rows_in_its_distilled_set_trains():
    """0.7 ended this run `nonfinite` (advice: lower lr_x): the NTK's gradient at the 4 zero rows the set started
    from was NaN."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    X[::2] = 0.0
    y = X.sum(1) + 0.1 * rng.normal(size=200)
    out = jd.distill(X, y, m=10, steps=60, eval_every=20, inner_solver=jd.KernelRidge(jd.ReLUNTK()),
                     standardize=False, progress=False)
    assert np.all(X[np.asarray(out.meta.init_rows)] == 0, axis=1).sum() == 4
    assert out.ok and np.all(np.isfinite(out.x)) and out.history.steps == 60
