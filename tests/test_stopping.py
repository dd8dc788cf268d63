"""Runs that end when done: the stopping rule, the best state returned, honest statuses, and
checkpoints that carry the rule's state. Through the public API; held-out losses re-computed here
from the result's own predictions."""

import numpy as np
import pytest
from sklearn.datasets import load_diabetes

import jaxdistill as jd


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    perm = np.random.default_rng(0).permutation(len(y))
    tr, va = perm[:360], perm[360:]
    return X[tr], y[tr], X[va], y[va]


def _held_out(out, Xv, yv):
    """½ mean squared error in the standardised space: the held-out loss the rule monitors."""
    r = out.standardizer.y(out.predict(Xv).reshape(-1, 1)) - out.standardizer.y(yv.reshape(-1, 1))
    return 0.5 * float(np.mean(np.sum(r ** 2, axis=1)))


def test_converges_early_and_returns_the_best_state(diabetes):
    X, y, Xv, yv = diabetes
    out = jd.distill(X, y, m=10, steps=20000, eval_every=25, validation=(Xv, yv), monitor="held_out",
                     progress=False)
    assert out.status == "converged" and out.ok
    assert out.meta["steps_run"] < 20000
    hist = out.history.val_loss
    best = int(np.argmin(hist))
    assert out.meta["returned_step"] == out.history.eval_step[best]
    # the returned set's held-out loss, computed from its predictions, is the best one recorded
    assert _held_out(out, Xv, yv) == pytest.approx(hist[best], rel=1e-5)
    assert hist[best] < hist[0]
    # stopped because `patience` evaluations in a row brought < min_improvement
    cfg = out.config
    tail = hist[best + 1:]
    assert len(tail) >= cfg.patience - 1 or best == len(hist) - 1


def test_default_monitor_is_the_exact_training_objective_and_its_best_state_is_returned(diabetes):
    X, y, Xv, yv = diabetes
    out = jd.distill(X, y, m=10, steps=20000, eval_every=25, validation=(Xv, yv), progress=False)
    assert out.status == "converged" and "FullDataLoss" in out.meta["objective"]
    mon = out.history.monitored
    assert out.history.val_loss.size == mon.size          # the held-out loss is still recorded
    best = int(np.argmin(mon))
    assert out.meta["returned_step"] == out.history.eval_step[best]
    # the monitored value is the full-data training objective of the returned set, recomputed from predictions:
    # with lambda_inner="auto" the ridge loss ½ MSE + λ/2‖θ_T‖² (θ_T read back from the linear predictions)
    lam = out.lambda_inner
    assert out.meta.lambda_choice["method"] == "gcv" and 1e-6 < lam < 10
    Xs = out.standardizer.x(X)
    theta = np.linalg.lstsq(Xs, out.standardizer.y(out.predict(X).reshape(-1, 1)), rcond=None)[0]
    assert _held_out(out, X, y) + 0.5 * lam * float(np.sum(theta ** 2)) == pytest.approx(mon[best], rel=1e-6)


def test_budget_exhausted_while_improving_is_reported(diabetes):
    X, y, Xv, yv = diabetes
    out = jd.distill(X, y, m=10, steps=30, eval_every=10, lr_x=0.01, lr_y=0.01, validation=(Xv, yv),
                     progress=False)
    assert out.status == "budget" and out.ok and out.meta["steps_run"] == 30


def test_blow_up_is_diverged_not_success_and_the_best_state_is_kept():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 6))
    y = X @ rng.normal(size=6) + 0.1 * rng.normal(size=300)
    Xv, yv = X[240:], y[240:]
    kw = dict(m=10, steps=300, eval_every=10, lr_x=1e6, lr_y=1e6, validation=(Xv, yv), progress=False)
    out = jd.distill(X[:240], y[:240], **kw)
    assert out.status == "diverged" and not out.ok
    # the first evaluation after the blow-up, and after each of the MAX_RECOVERIES restarts from the best state
    from jaxdistill._src.outer.driver import MAX_RECOVERIES
    assert out.meta["steps_run"] == 10 * (1 + MAX_RECOVERIES)
    assert out.meta.get("divergence_recoveries")["at_steps"] == [10, 20]
    assert out.history.val_loss[-1] > 10 * out.history.val_loss[0]
    # the result is the best state (here the initial one), never the blown-up last one
    assert out.meta["returned_step"] == 0
    assert _held_out(out, Xv, yv) == pytest.approx(out.history.val_loss[0], rel=1e-6)
    with pytest.raises(RuntimeError, match="diverged.*lower lr_x"):
        jd.distill(X[:240], y[:240], raise_on_failure=True, **kw)


def test_a_run_that_never_improves_is_no_progress(diabetes):
    X, y, Xv, yv = diabetes
    out = jd.distill(X, y, m=10, steps=40, eval_every=10, lr_x=0.0, lr_y=0.0, lr_eta=0.0, validation=(Xv, yv),
                     progress=False)
    assert out.status == "no_progress" and not out.ok
    with pytest.raises(RuntimeError, match="no_progress"):
        jd.distill(X, y, m=10, steps=40, eval_every=10, lr_x=0.0, lr_y=0.0, lr_eta=0.0, validation=(Xv, yv),
                   progress=False, raise_on_failure=True)


def test_without_held_out_rows_a_sampled_objective_monitors_its_training_loss_on_fixed_rows(diabetes):
    X, y, _, _ = diabetes
    kw = dict(m=10, steps=20000, eval_every=25, validation_fraction=0.0, objective="batch", progress=False)
    out = jd.distill(X, y, **kw)
    assert out.status == "converged" and out.history.val_loss.size == 0
    assert out.meta["monitor"].startswith("training loss")
    mon = out.history.monitored
    assert mon.size == out.history.eval_step.size and mon.min() < mon[0]
    best = int(np.argmin(mon))
    assert out.meta["returned_step"] == out.history.eval_step[best]
    # all 360 rows fit one batch (b = 2048): the monitored value is the training loss of the returned set on
    # every row (θ₀ = 0 for the linear model), recomputed from its predictions
    assert _held_out(out, X, y) == pytest.approx(mon[best], rel=1e-6)
    # with b < n: a fixed sample of b rows, not the noisy loss of each step's batch
    small = jd.distill(X, y, batch_size=64, **{**kw, "steps": 100})
    assert small.meta["monitor"] == out.meta["monitor"] and small.history.monitored[0] != mon[0]


def test_paper_config_runs_every_step_and_returns_the_last_state():
    cfg = jd.paper_a7(T=5, m=10, steps=40).replace(eval_every=10)
    assert cfg.patience is None and not cfg.restore_best and cfg.objective == "batch"
    X, y = load_diabetes(return_X_y=True)
    out = jd.distill(X, y, config=cfg, progress=False, lr_x=1e-4, lr_y=1e-4)
    assert out.meta["steps_run"] == 40 and out.meta["returned_step"] == 40
    assert "BatchLoss" in out.meta["objective"]


def test_resume_after_interruption_makes_the_same_stop_decision(diabetes, tmp_path, run_interrupted):
    X, y, Xv, yv = diabetes
    kw = dict(m=8, steps=5000, eval_every=20, patience=3, validation=(Xv, yv), monitor="held_out", progress=False)
    full = jd.distill(X, y, **kw)
    assert full.status == "converged"
    run_interrupted(2, lambda: jd.distill(X, y, checkpoint=tmp_path / "c", **kw))
    resumed = jd.distill(X, y, checkpoint=tmp_path / "c", **kw)
    assert resumed.status == full.status
    assert resumed.meta["steps_run"] == full.meta["steps_run"]
    assert resumed.meta["returned_step"] == full.meta["returned_step"]
    np.testing.assert_array_equal(resumed.x, full.x)
    # a finished run's checkpoint is finished: running again does nothing more
    again = jd.distill(X, y, checkpoint=tmp_path / "c", **kw)
    np.testing.assert_array_equal(again.x, full.x)
    assert again.meta["steps_run"] == full.meta["steps_run"]


def _as_format(path, version):
    """Rewrite the checkpoint's format version (what an earlier jaxdistill wrote)."""
    import json
    files = dict(np.load(path))
    meta = json.loads(files["__meta__"].tobytes().decode())
    meta["format_version"] = version
    files["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **files)


def test_a_checkpoint_of_an_earlier_format_is_refused_naming_its_version(diabetes, tmp_path, run_interrupted):
    """0.8 factored the outer learning rates out of the optimizer (its state and identity changed): a 0.7
    checkpoint (format 5) is refused by version, not resumed into another run; a current one resumes exactly."""
    X, y, Xv, yv = diabetes
    kw = dict(m=8, steps=200, eval_every=20, patience=None, validation=(Xv, yv), progress=False)
    run_interrupted(2, lambda: jd.distill(X, y, checkpoint=tmp_path / "b.npz", **kw))
    resumed = jd.distill(X, y, checkpoint=tmp_path / "b.npz", **kw)
    np.testing.assert_array_equal(resumed.x, jd.distill(X, y, **kw).x)
    run_interrupted(2, lambda: jd.distill(X, y, checkpoint=tmp_path / "a.npz", **kw))
    _as_format(tmp_path / "a.npz", 5)
    with pytest.raises(ValueError, match=r"not a checkpoint of this jaxdistill version .* v5"):
        jd.distill(X, y, checkpoint=tmp_path / "a.npz", **kw)


@pytest.mark.parametrize("bad", [dict(patience=0), dict(min_improvement=1.0), dict(divergence_factor=1.0),
                                 dict(restore_best="yes"), dict(objective="all"),
                                 dict(monitor="val"), dict(outer_optimizer="rmsprop")])
def test_bad_stopping_settings_are_clear_errors(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        jd.DistillConfig(**bad)


def test_lbfgs_outer_optimizer_on_the_deterministic_objective(diabetes):
    X, y, Xv, yv = diabetes
    out = jd.distill(X, y, m=10, steps=150, eval_every=25, outer_optimizer="lbfgs", validation=(Xv, yv),
                     progress=False)
    assert out.ok and out.history.monitored.min() < 0.5 * out.history.monitored[0]
    with pytest.raises(ValueError, match="deterministic outer objective"):
        jd.distill(X, y, m=10, steps=5, outer_optimizer="lbfgs", objective="batch", progress=False)
    with pytest.raises(ValueError, match="deterministic outer objective"):
        jd.distill(X, y, m=10, steps=5, outer_optimizer="lbfgs", theta0_scale=1.0, progress=False)


def test_a_finished_run_is_extended_by_raising_its_step_budget(diabetes, tmp_path):
    X, y, Xv, yv = diabetes
    kw = dict(m=8, eval_every=20, validation=(Xv, yv), progress=False, lr_x=0.002, lr_y=0.002)
    short = jd.distill(X, y, steps=40, checkpoint=tmp_path / "c", **kw)
    assert short.status == "budget"
    longer = jd.distill(X, y, steps=100, checkpoint=tmp_path / "c", **kw)      # resumes at step 40
    straight = jd.distill(X, y, steps=100, **kw)
    assert longer.meta["steps_run"] == straight.meta["steps_run"] == 100
    np.testing.assert_array_equal(longer.x, straight.x)
    np.testing.assert_array_equal(longer.history.loss, straight.history.loss)
    assert longer.status == straight.status


def test_a_run_recovers_from_a_divergence_and_resumes_through_it(tmp_path):
    """#43: a run that diverges goes back to its best state with halved outer rates (at most MAX_RECOVERIES times)
    and records it; a run split at the recovery and resumed from its checkpoint ends exactly as the whole one."""
    from jaxdistill import datasets
    X, Y = datasets.load("diabetes")
    kw = dict(m=10, key=0, eval_every=20, lr_x=2.0, lr_y=2.0, divergence_factor=2.0, progress=False)
    whole = jd.distill(X, Y, steps=300, **kw)
    rec = whole.meta.get("divergence_recoveries")
    assert whole.ok and len(rec["at_steps"]) == 1 and rec["outer_rates_scaled_by"] == 0.5
    assert f"recovered from divergence at step(s) {rec['at_steps']}" in repr(whole)
    ckpt = tmp_path / "run.ckpt"
    first = jd.distill(X, Y, steps=rec["at_steps"][0], checkpoint=ckpt, **kw)      # ends at the recovery itself
    assert first.meta.get("divergence_recoveries")["at_steps"] == rec["at_steps"]
    again = jd.distill(X, Y, steps=300, checkpoint=ckpt, **kw)
    np.testing.assert_array_equal(again.x, whole.x)
    np.testing.assert_array_equal(again.history.loss, whole.history.loss)
