"""The tool around the library: data sets, experiment files, CLI, checkpoint/resume, plots."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import jaxdistill as jd
from jaxdistill import cli, datasets
from jaxdistill._src.io import files as jio
from jaxdistill._src.io.experiment import Experiment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small(rng, n=160, d=5):
    X = rng.normal(size=(n, d))
    return X, X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)


# ------------------------------------------------------------------ data sets
def test_ar_windows_and_chronological_split():
    X, Y = datasets.ar_windows(np.arange(10.0), lags=3)
    np.testing.assert_array_equal(X[0], [0, 1, 2])
    assert Y[0, 0] == 3 and X.shape == (7, 3) and Y[-1, 0] == 9
    Xtr, Ytr, Xte, Yte = datasets.train_test_split(X, Y, 0.3, shuffle=False)
    assert Ytr[-1, 0] < Yte[0, 0]                      # no future row in training
    with pytest.raises(ValueError, match="lags"):
        datasets.ar_windows(np.arange(4.0), lags=5)


@pytest.mark.parametrize("name, shape", [("co2", (2276, 8)), ("sunspots", (297, 12)), ("randhie", (20190, 9)),
                                         ("fair", (6366, 8)), ("diabetes", (442, 10)), ("digits", (1797, 64))])
def test_bundled_datasets_load_finite(name, shape):
    kw = {"lags": 8} if name == "co2" else {}
    X, Y = datasets.load(name, **kw)
    assert X.shape == shape and Y.shape[0] == shape[0] and np.isfinite(X).all() and np.isfinite(Y).all()


def test_diabetes_equals_scikit_learns_value_for_value_without_importing_it():
    import subprocess
    import sys

    from sklearn.datasets import load_diabetes
    X, Y = datasets.load("diabetes")
    Xs, ys = load_diabetes(return_X_y=True)
    np.testing.assert_array_equal(X, Xs)                  # bit for bit: the same steps, the same files
    np.testing.assert_array_equal(Y[:, 0], ys)
    code = ("import sys; from jaxdistill import datasets; datasets.load('diabetes'); "
            "print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


def test_unknown_dataset_and_csv(tmp_path):
    with pytest.raises(ValueError, match="available"):
        datasets.load("mnist")
    p = tmp_path / "d.csv"
    p.write_text("a,b,y\n1,2,3\n4,5,6\n7,8,9.5\n")
    X, Y = datasets.load_csv(str(p), target="y")
    np.testing.assert_array_equal(X, [[1, 2], [4, 5], [7, 8]])
    np.testing.assert_array_equal(Y[:, 0], [3, 6, 9.5])
    p.write_text("a,y\n1,x\n2,3\n")
    with pytest.raises(ValueError, match="non-numeric"):
        datasets.load_csv(str(p))


# ------------------------------------------------------------------ experiment files
def test_experiment_files_round_trip_and_overrides(tmp_path):
    for f in os.listdir(os.path.join(ROOT, "configs")):
        exp = Experiment.from_file(os.path.join(ROOT, "configs", f))
        assert Experiment.from_dict(json.loads(json.dumps(exp.to_dict()))) == exp
    exp = Experiment.from_file(os.path.join(ROOT, "configs", "co2.json"))
    e2 = exp.with_overrides(["m=7", "seed=3", "dataset.lags=4", 'q_schedule={"max_q": 12}', "inner_lr=null"])
    assert (e2.config.m, e2.seed, e2.dataset["lags"], e2.config.q_schedule.max_q) == (7, 3, 4, 12)
    with pytest.raises(ValueError, match="Unknown setting 'bogus'"):
        exp.with_overrides(["bogus=1"])
    with pytest.raises(ValueError, match="key=value"):
        exp.with_overrides(["m"])
    with pytest.raises(ValueError, match="T must be"):
        exp.with_overrides(["T=0"])


# ------------------------------------------------------------------ checkpoint / resume
def test_interrupted_run_resumes_to_the_identical_result(rng, tmp_path, run_interrupted):
    X, Y = small(rng)
    kw = dict(m=6, steps=120, eval_every=20, key=3, progress=False, q_schedule=jd.QSchedule(max_q=12),
              optimizer_x=__import__("optax").adam(0.01))
    full = jd.distill(X, Y, **kw)
    path = tmp_path / "run.ckpt"
    run_interrupted(3, lambda: jd.distill(X, Y, checkpoint=path, **kw))   # Ctrl-C after the third checkpoint
    resumed = jd.distill(X, Y, checkpoint=path, **kw)
    np.testing.assert_array_equal(resumed.x, full.x)
    np.testing.assert_array_equal(resumed.y, full.y)
    assert resumed.inner_lr == full.inner_lr
    for k in full.history:
        if k != "eval_time":                                 # wall-clock seconds differ between runs
            np.testing.assert_array_equal(resumed.history[k], full.history[k])


def test_checkpoint_of_another_run_or_corrupt_is_refused(rng, tmp_path):
    X, Y = small(rng)
    path = tmp_path / "run.ckpt"
    jd.distill(X, Y, m=6, steps=40, eval_every=20, progress=False, checkpoint=path)
    with pytest.raises(ValueError, match=r"different run: its config \(first difference: m\) differs"):
        jd.distill(X, Y, m=7, steps=40, eval_every=20, progress=False, checkpoint=path)
    with pytest.raises(ValueError, match="different run: its data differs"):
        jd.distill(X + 1, Y, m=6, steps=40, eval_every=20, progress=False, checkpoint=path)
    with pytest.raises(ValueError, match="different run: its key differs"):
        jd.distill(X, Y, m=6, steps=40, eval_every=20, progress=False, checkpoint=path, key=9)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        jd.distill(X, Y, m=6, steps=40, eval_every=20, progress=False, checkpoint=path)
    out = jd.distill(X, Y, m=6, steps=40, eval_every=20, progress=False, checkpoint=path, resume=False)
    assert out.history.loss.size == 40


def test_failed_write_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    jio.atomic_write_bytes(path, b"old contents")

    def broken_replace(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        jio.atomic_write_bytes(path, b"new contents that never land")
    assert path.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_cli_run_killed_then_resumed_matches_uninterrupted(tmp_path):
    """SIGKILL a real `jaxdistill run` after its first checkpoint; rerunning the command finishes the run
    and gives the same distilled set as an uninterrupted run."""
    exp = {"dataset": {"name": "diabetes"}, "seed": 1,
           "config": {"m": 8, "steps": 3000, "T": 10, "eval_every": 100}}
    (tmp_path / "e.json").write_text(json.dumps(exp))
    cmd = [sys.executable, "-m", "jaxdistill.cli", "run", "e.json", "--no-progress", "--no-eval"]
    proc = subprocess.Popen(cmd + ["--out", "a.npz"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    ck = tmp_path / "a.npz.ckpt"
    t0 = time.time()
    while not ck.exists() and time.time() - t0 < 120 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ck.exists(), "the run produced no checkpoint before being killed"
    assert not (tmp_path / "a.npz").exists(), "the run finished before it could be killed; make it longer"
    # the resumed run and an uninterrupted reference, side by side
    runs = [subprocess.Popen(cmd + args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for args in (["--out", "a.npz"], ["--out", "b.npz", "--no-checkpoint"])]
    assert [r.wait() for r in runs] == [0, 0]
    a, b = jd.load(tmp_path / "a.npz"), jd.load(tmp_path / "b.npz")
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.history.loss, b.history.loss)


# ------------------------------------------------------------------ CLI and plots
def test_cli_run_evaluate_plot(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exp = {"dataset": {"name": "sunspots", "lags": 6}, "seed": 0, "config": {"m": 8, "steps": 60, "eval_every": 20},
           "output": "out/s.npz"}
    (tmp_path / "e.json").write_text(json.dumps(exp))
    assert cli.main(["run", "e.json", "--no-progress", "--set", "T=20"]) == 0
    text = capsys.readouterr().out
    assert "random subset, ridge" in text and "saved to out/s.npz" in text
    assert cli.main(["evaluate", "out/s.npz"]) == 0
    table = capsys.readouterr().out
    assert "full data, ridge" in table
    assert cli.main(["evaluate", "out/s.npz", "--json"]) == 0          # the same table, as JSON with row ids
    rep = json.loads(capsys.readouterr().out)
    assert rep["result"] == "out/s.npz" and rep["status"] == jd.load("out/s.npz").status and rep["m"] == 8
    assert [r["id"] for r in rep["rows"]] == ["distilled", "distilled_ridge", "subset", "subset_ridge", "leverage",
                                             "kmeans", "kcenter", "full", "full_cv", "mean", "naive"]
    assert f"{rep['rows'][0]['r2']:.4g}" in table                 # the numbers the markdown table printed
    assert cli.main(["plot", "out/s.npz", "--out", "png"]) == 0
    assert sorted(os.listdir("png")) == ["loss.png", "predictions.png", "projection.png"]
    assert cli.main(["run", "missing.json"]) == 2
    assert "No experiment file" in capsys.readouterr().err
    assert cli.main(["run", "e.json", "--set", "m=0"]) == 2
    assert "m must be an integer" in capsys.readouterr().err


def test_experiment_data_paths_are_relative_to_the_experiment_file(tmp_path, monkeypatch, capsys):
    X, Y = datasets.load("diabetes")
    (tmp_path / "exp").mkdir()
    np.save(tmp_path / "exp" / "X.npy", X)
    np.save(tmp_path / "exp" / "Y.npy", Y)
    exp = {"dataset": {"name": "npy", "x": "X.npy", "y": "Y.npy"}, "config": {"m": 5, "steps": 20, "eval_every": 10}}
    (tmp_path / "exp" / "e.json").write_text(json.dumps(exp))
    monkeypatch.chdir(tmp_path)                         # run from elsewhere: X.npy is not in the working dir
    assert cli.main(["run", "exp/e.json", "--no-eval", "--no-checkpoint", "--out", "o.npz"]) == 0
    assert (tmp_path / "o.npz").exists()                 # outputs: relative to the working directory
    # stderr is not a terminal here (a batch job): progress comes as plain log lines, ending with the status
    log = capsys.readouterr().err.splitlines()
    assert log[0].startswith("compiling") and log[-1].startswith(jd.load(tmp_path / "o.npz").status + " after")
    assert any(line.startswith("step ") and "/20" in line and "elapsed" in line and "left" in line for line in log)
    assert not any("nan" in line for line in log)
    assert cli.main(["evaluate", "o.npz"]) == 0          # the stored (absolute) paths find the data again
    assert "full data, ridge" in capsys.readouterr().out


def test_plot_digits(tmp_path):
    X, Y = datasets.load("digits")
    out = jd.distill(X[:400], Y[:400], m=10, steps=20, eval_every=10, progress=False)
    # the initial rows recorded are the real rows X̃ started from (init="real")
    first = out.history.eval_step[0] == 0
    assert first and len(out.meta["init_rows"]) == 10 and len(set(out.meta["init_rows"])) == 10
    from jaxdistill.plots import plot_images, save_all
    paths = save_all(out, tmp_path, X[:400], X[400:500], Y[400:500], images=True)
    assert "images.png" in [os.path.basename(p) for p in paths]
    fig = plot_images(out, X[:400])
    assert len(fig.axes) == 20                               # an initial row and a distilled row
    a0 = fig.axes[0].images[0].get_array()
    np.testing.assert_allclose(np.asarray(a0).ravel(), X[out.meta["init_rows"][0]])


def test_error_vs_m_sweep_and_its_cli(tmp_path, capsys):
    X, Y = datasets.load("diabetes")
    Xtr, Ytr, Xte, Yte = datasets.split("diabetes", X, Y)
    kw = dict(steps=60, eval_every=30)
    res = jd.error_vs_m(Xtr, Ytr, Xte, Yte, [2, 8], seeds=[1], n_subsets=2, **kw)
    assert [(r["m"], r["seed"]) for r in res.rows] == [(2, 1), (8, 1)]
    # the distilled MSE is that of the set distil() returns for the same m and key, scored here directly
    out = jd.distill(Xtr, Ytr, m=8, key=1, progress=False, **kw)
    mse = float(np.mean((out.predict(Xte) - Yte) ** 2))
    assert res.rows[1]["distilled_mse"] == pytest.approx(mse, rel=1e-6)
    assert len({r["full_mse"] for r in res.rows}) == 1            # one full-data model per seed's split
    assert "| 8 |" in res.to_markdown()
    (tmp_path / "e.json").write_text('{"dataset": {"name": "diabetes"}, "config": {"steps": 60, "eval_every": 30}}')
    code = cli.main(["sweep", str(tmp_path / "e.json"), "--m", "8", "--seeds", "0", "1", "--out",
                     str(tmp_path / "sw")])
    assert code == 0
    assert {p.name for p in (tmp_path / "sw").iterdir()} == {"sweep.md", "sweep.json", "sweep.png"}
    summary = json.loads((tmp_path / "sw" / "sweep.json").read_text())["summary"]
    assert summary[0]["m"] == 8 and summary[0]["seeds"] == 2
    assert "best random subset" in capsys.readouterr().out
    with pytest.raises(ValueError, match="smaller than the number of training rows"):
        jd.error_vs_m(Xtr, Ytr, Xte, Yte, [5000])


def test_plots_show_baselines_every_output_the_targets_and_eta(tmp_path):
    """digits as 10-output regression: evaluate's per-row "loss" is the held-out curve's quantity (½ MSE
    per row, standardised; checked against its MSE output by output) and the loss plot draws each as a
    dot on the test-row panel; η̃ and its bound on their own panel; a prediction panel per output (titled with the
    output and the procedure); the projection coloured by target."""
    import matplotlib.pyplot as plt

    from jaxdistill.plots import plot_history, plot_predictions, save_all
    X, Y = datasets.load("digits")
    Xtr, Ytr, Xte, Yte = X[:400], Y[:400], X[400:500], Y[400:500]
    out = jd.distill(Xtr, Ytr, m=10, steps=20, eval_every=10, progress=False)
    rep = jd.evaluate(out, Xte, Yte, Xtr, Ytr, n_subsets=2)
    scale2 = out.standardizer.y_scale ** 2
    pred = out.predict(Xte)
    own = 0.5 * np.mean(np.sum((pred - Yte) ** 2 / scale2, axis=1))        # independent: from predict()
    assert rep.row("distilled")["loss"] == pytest.approx(own, rel=1e-6)
    refs = {r["method"]: r["loss"] for r in rep.rows if not r["method"].startswith("distilled")}
    ax = plot_history(out, references=refs)
    test_panel = [a for a in ax.figure.axes if "test rows" in a.get_title(loc="left")][0]   # their own panel
    dots = np.concatenate([line.get_xdata() for line in test_panel.get_lines()])
    assert sorted(dots) == pytest.approx(sorted(refs.values()))
    assert "full data, ridge" in [t.get_text() for t in test_panel.get_yticklabels()]
    lower = [a for a in ax.figure.axes if a is not ax and a is not test_panel][0]   # η̃ on its own panel
    np.testing.assert_allclose(lower.get_lines()[0].get_ydata(), out.history.eta)
    bound = out.history.eta / out.history.stability_ratio
    np.testing.assert_allclose(lower.get_lines()[1].get_ydata(), bound)
    assert "η̃" in lower.get_ylabel() and "bound" in lower.get_ylabel()
    # one-hot targets: a confusion matrix with the accuracy, not ten 0/1 scatter plots
    paths = save_all(out, tmp_path, Xtr, Xte, Yte, Y_train=Ytr, report=rep)
    assert {os.path.basename(p) for p in paths} == {"loss.png", "projection.png", "confusion.png"}
    from jaxdistill.plots import plot_confusion
    cax = plot_confusion(out, Xte, Yte, report=rep)
    acc = np.mean(pred.argmax(1) == Yte.argmax(1))
    assert f"accuracy {100 * acc:.1f} %" in cax.get_title()
    counts = np.asarray(cax.images[0].get_array())
    assert counts.shape == (10, 10) and np.allclose(counts.sum(1)[Yte.sum(0) > 0], 1)
    with pytest.raises(ValueError, match="one-hot"):
        plot_confusion(out, Xte, Yte * 2)
    fig, axes = plt.subplots(1, 2)
    plot_predictions(out, Xte, Yte, axes[0], output=3, pred=pred)
    title = " ".join(axes[0].get_title(loc="left").split())          # wrapped to the axes' width
    assert title.startswith("held-out predictions (output 3, R²")
    assert "trained on the distilled set" in title
    plt.close("all")


def test_cli_output_into_a_closed_pipe_is_not_a_traceback():
    """`jaxdistill datasets | head -1`: the reader closes the pipe early; the command stops quietly."""
    proc = subprocess.Popen([sys.executable, "-m", "jaxdistill.cli", "--no-cache", "datasets"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()                      # nobody reads: every write meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait() == 141 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_every_cli_option_has_help_and_the_version_is_printed(capsys):
    import argparse
    top = cli.parser()
    subs = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {a.dest}" for name, p in [("", top), *subs.choices.items()] for a in p._actions
               if not isinstance(a, argparse._HelpAction) and not a.help]
    assert missing == []
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"jaxdistill {jd.__version__}"


def test_cli_checks_output_paths_before_the_run_and_never_loses_a_finished_one(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exp = {"dataset": {"name": "diabetes"}, "config": {"m": 4, "steps": 20, "T": 5, "eval_every": 10}}
    (tmp_path / "e.json").write_text(json.dumps(exp))
    (tmp_path / "afile").write_text("")
    (tmp_path / "adir").mkdir()
    base = ["run", "e.json", "--no-progress", "--no-eval"]
    for out, says in (("afile/r.npz", "afile' is a file, not a folder"), ("adir", "'adir' is a directory")):
        assert cli.main(base + ["--out", out]) == 2
        err = capsys.readouterr()
        assert says in err.err and "Traceback" not in err.err and "training rows" not in err.out  # no compute ran
    assert cli.main(["demo", "--save", "adir", "--no-progress"]) == 2
    assert "'adir' is a directory" in capsys.readouterr().err
    # the target becomes unwritable while the run computes (simulated: the first save fails): the finished
    # result goes to a rescue file in the working directory, and the message says where
    real, calls = jd.DistillOutput.save, []

    def failing_once(self, path):
        calls.append(path)
        if len(calls) == 1:
            raise OSError(28, f"Cannot write {path!r}: No space left on device")
        return real(self, path)
    monkeypatch.setattr(jd.DistillOutput, "save", failing_once)
    assert cli.main(base + ["--out", "sub/r.npz", "--no-checkpoint"]) == 1
    err = capsys.readouterr().err
    rescued = calls[1]
    assert os.path.dirname(rescued) == str(tmp_path) and f"saved to {rescued!r} instead" in err
    assert "No space left on device" in err and "sub/r.npz" in err
    assert jd.load(rescued).x.shape == (4, 10)
    # --print-config shows the output and checkpoint the run would use, --out included
    assert cli.main(["run", "e.json", "--out", "x/y.npz", "--print-config"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["output"] == "x/y.npz" and shown["checkpoint"] == "x/y.npz.ckpt"


def test_demo_save_works_with_evaluate_and_plot_and_the_figures_draw_the_baselines(tmp_path, capsys, monkeypatch):
    """`demo --save` records its experiment like `run`: `evaluate` scores it on the same split and `plot` draws
    every figure; the predictions figure draws the full-data ridge model's predictions, which equal an
    independent numpy ridge on the training rows standardised by their own means and deviations."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "--steps", "30", "--no-progress", "--save", "d.npz"]) == 0
    capsys.readouterr()
    assert cli.main(["evaluate", "d.npz", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    out = jd.load("d.npz")
    X, Y = datasets.load("diabetes")
    Xtr, Ytr, Xte, Yte = datasets.split("diabetes", X, Y, 0.2, key=0)
    mse = float(np.mean((out.predict(Xte) - Yte) ** 2))
    assert rows["distilled"]["mse"] == pytest.approx(mse, rel=1e-6)
    assert cli.main(["plot", "d.npz", "--out", "figs"]) == 0
    assert {p.name for p in (tmp_path / "figs").iterdir()} == {"loss.png", "projection.png", "predictions.png"}
    from jaxdistill.plots import plot_predictions
    rep = jd.evaluate(out, Xte, Yte, Xtr, Ytr, n_subsets=2, coresets=())
    mx, sx, my, sy = Xtr.mean(0), Xtr.std(0), Ytr.mean(0), Ytr.std(0)     # the given rows' own units (#43)
    Xs, ys = (Xtr - mx) / sx, (Ytr - my) / sy
    theta = np.linalg.solve(Xs.T @ Xs + len(Xs) * out.lambda_inner * np.eye(Xs.shape[1]), Xs.T @ ys)
    ridge = ((Xte - mx) / sx @ theta) * sy + my
    ax = plot_predictions(out, Xte, Yte, report=rep)
    hollow, filled = ax.collections[0], ax.collections[1]
    np.testing.assert_allclose(hollow.get_offsets()[:, 1], ridge[:, 0], rtol=1e-6)
    np.testing.assert_allclose(filled.get_offsets()[:, 1], np.ravel(out.predict(Xte)), rtol=1e-9)
    assert "diabetes" in ax.get_title(loc="left")
    assert any(t.get_text().startswith("full data, ridge, R²") for t in ax.get_legend().get_texts())
