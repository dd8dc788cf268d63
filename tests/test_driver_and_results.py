"""The driver's callbacks and the typed results, through the public API: a user's callback, the metrics
loggers (CSV, JSONL, TensorBoard), resume with a logger, Status / History / RunInfo, EvalReport exports."""

import csv
import json
import struct

import numpy as np
import pytest

import jaxdistill as jd
from jaxdistill import datasets

KW = dict(m=8, T=10, Q=2, steps=100, eval_every=20, patience=None, progress=False)


@pytest.fixture(scope="module")
def diabetes():
    X, Y = datasets.load("diabetes")
    return X[:300], Y[:300]


class Recorder(jd.Callback):
    """A user's callback in a few lines: records what it sees; ends the run at ``stop_at``."""

    def __init__(self, stop_at=None):
        self.stop_at, self.seen, self.started, self.ended = stop_at, [], None, None

    def on_start(self, run):
        self.started = run.step

    def on_evaluation(self, run):
        self.seen.append((run.step, run.metrics["monitored"], run.metrics["eta"]))
        return self.stop_at is not None and run.step >= self.stop_at

    def on_end(self, run):
        self.ended = (run.status, run.result.m)


def test_a_user_callback_sees_every_evaluation_and_can_stop_the_run(diabetes):
    X, Y = diabetes
    rec = Recorder()
    out = jd.distill(X, Y, callbacks=[rec], **KW)
    h = out.history
    assert rec.started == 0 and [s for s, _, _ in rec.seen] == list(h.eval_step) == [0, 20, 40, 60, 80, 100]
    np.testing.assert_array_equal([v for _, v, _ in rec.seen], h.monitored)
    assert rec.ended == (out.status, 8)
    # ending the run from a callback: status "stopped" (a success), the budget not spent
    stop = Recorder(stop_at=40)
    cut = jd.Distiller(**{k: v for k, v in KW.items() if k != "progress"}).fit(X, Y, callbacks=[stop])
    assert cut.status == jd.Status.STOPPED and cut.ok and cut.history.steps == 40
    assert cut.meta.bilevel.steps_run == 40 and "callback" in cut.status.message
    # the same 40 steps as the full run's first 40 (the callback changes nothing it does not end)
    np.testing.assert_array_equal(cut.history.loss, h.loss[:40])


def test_callbacks_must_be_callback_objects(diabetes):
    X, Y = diabetes
    with pytest.raises(ValueError, match="Callback"):
        jd.distill(X, Y, callbacks=[print], **KW)


def test_metrics_logger_writes_csv_and_jsonl_matching_the_history(diabetes, tmp_path):
    X, Y = diabetes
    out = jd.distill(X, Y, callbacks=[jd.MetricsLogger(tmp_path / "m.csv"), jd.MetricsLogger(tmp_path / "m.jsonl")],
                     **KW)
    with open(tmp_path / "m.csv") as f:
        rows = list(csv.DictReader(f))
    lines = [json.loads(ln) for ln in (tmp_path / "m.jsonl").read_text().splitlines()]
    h = out.history
    for got in (rows, lines):
        assert [int(float(r["step"])) for r in got] == list(h.eval_step)
        np.testing.assert_allclose([float(r["monitored"]) for r in got], h.monitored, rtol=1e-12)
        np.testing.assert_allclose([float(r["val_loss"]) for r in got], h.val_loss, rtol=1e-12)
        # η̃ after s steps is the one step s + 1 used
        np.testing.assert_allclose([float(r["eta"]) for r in got[:-1]], h.eta[np.asarray(h.eval_step[:-1])],
                                   rtol=1e-12)
    # the best value column is the running minimum of the monitored loss
    np.testing.assert_allclose([float(r["best"]) for r in rows], np.minimum.accumulate(h.monitored), rtol=1e-12)
    with pytest.raises(ValueError, match=r"\.csv or \.jsonl"):
        jd.MetricsLogger(tmp_path / "m.txt")


def test_metrics_log_of_a_resumed_run_equals_an_uninterrupted_one(diabetes, tmp_path, run_interrupted):
    X, Y = diabetes
    log = tmp_path / "r.csv"
    run_interrupted(2, lambda: jd.distill(X, Y, checkpoint=tmp_path / "r.ckpt", callbacks=[jd.MetricsLogger(log)],
                                          **KW))
    resumed = jd.distill(X, Y, checkpoint=tmp_path / "r.ckpt", callbacks=[jd.MetricsLogger(log)], **KW)
    jd.distill(X, Y, callbacks=[jd.MetricsLogger(tmp_path / "u.csv")], **KW)
    strip = lambda p: [r[:-1] for r in csv.reader(open(p))]  # noqa: E731 - drop the elapsed-seconds column
    assert strip(log) == strip(tmp_path / "u.csv")
    assert len(strip(log)) == 1 + resumed.history.eval_step.size


def _tensorboard_scalars(logdir):
    """(tag, step, value) of every scalar in the event files under ``logdir`` (TFRecord framing, Event protos)."""
    from tensorboardX.proto import event_pb2
    out = []
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        i = 0
        while i < len(data):
            (length,) = struct.unpack("<Q", data[i:i + 8])
            ev = event_pb2.Event.FromString(data[i + 12:i + 12 + length])
            i += 12 + length + 4
            out += [(v.tag, ev.step, v.simple_value) for v in ev.summary.value]
    return out


def test_tensorboard_logger(diabetes, tmp_path):
    pytest.importorskip("tensorboardX")
    X, Y = diabetes
    out = jd.distill(X, Y, callbacks=[jd.TensorBoardLogger(tmp_path / "tb")], **KW)
    scalars = _tensorboard_scalars(tmp_path / "tb")
    mon = [(s, v) for t, s, v in scalars if t == "distill/monitored"]
    assert [s for s, _ in mon] == list(out.history.eval_step)
    np.testing.assert_allclose([v for _, v in mon], out.history.monitored, rtol=1e-6)   # stored as float32


def test_status_is_an_enum_with_a_message_for_every_member():
    assert {s.value for s in jd.Status} == {"converged", "budget", "exact", "stopped", "diverged", "no_progress",
                                            "unstable", "nonfinite"}
    assert all(s.message for s in jd.Status)
    assert {s for s in jd.Status if s.ok} == {jd.Status.CONVERGED, jd.Status.BUDGET, jd.Status.EXACT,
                                             jd.Status.STOPPED}
    assert jd.Status.CONVERGED == "converged" and f"{jd.Status.NONFINITE}" == "nonfinite"
    assert jd.Status.of("success") is jd.Status.BUDGET          # 0.2.0 files
    with pytest.raises(ValueError, match="Unknown status"):
        jd.Status.of("fine")


def test_run_info_is_split_by_what_made_it(diabetes, tmp_path):
    """RunInfo's parts: a bilevel run fills `bilevel` only, a KRR-paper set `krr_paper` only, a moment set neither;
    0.8's flat attributes warn and name the part; a file's flat dict (as 0.8 wrote it) goes into the parts and comes
    back the same, key order included."""
    X, Y = diabetes
    run = jd.distill(X, Y, **KW).meta
    analytic = jd.distill_analytic(X, Y, m=5).meta
    moments = jd.distill_moments(X, Y, m=20).meta
    assert isinstance(run.bilevel, jd.BilevelInfo) and run.krr_paper is None and run.command is None
    assert run.bilevel.steps_run == 100 and run["steps_run"] == 100 and run.get("theta") is None
    assert isinstance(analytic.krr_paper, jd.KRRPaperInfo) and analytic.bilevel is None
    assert analytic.krr_paper.max_rel_WS_error < 1e-8 and "theta" in analytic and "steps_run" not in analytic
    assert moments.bilevel is None and moments.krr_paper is None and moments.kind == "moments"
    with pytest.warns(DeprecationWarning, match=r"meta\.bilevel\.steps_run"):
        assert run.steps_run == 100
    with pytest.warns(DeprecationWarning, match=r"meta\.krr_paper\.theta"):
        assert run.theta is None
    file_08 = {"objective": "FullDataLoss()", "n_train": 270, "steps_run": 7, "init_rows": [1, 2], "lam_s": 0.5,
               "experiment": {"seed": 0}, "privacy": None, "written_by_a_later_version": 1}
    info = jd.RunInfo.from_dict(file_08)
    assert (info.bilevel.steps_run, info.krr_paper.lambda_s, info.command.experiment) == (7, 0.5, {"seed": 0})
    assert info.extra == {"written_by_a_later_version": 1} and info.init_rows == [1, 2]
    expected = {"written_by_a_later_version": 1, "objective": "FullDataLoss()", "n_train": 270, "steps_run": 7,
                "init_rows": [1, 2], "lambda_s": 0.5, "experiment": {"seed": 0}}         # 0.8's order
    assert info.to_dict() == expected and list(info.to_dict()) == list(expected)
    assert jd.RunInfo(steps_run=7, lambda_s=0.5) == jd.RunInfo(bilevel=jd.BilevelInfo(steps_run=7),
                                                              krr_paper=jd.KRRPaperInfo(lambda_s=0.5))
    assert info.replace(quality={"warning": None}).bilevel.quality == {"warning": None}
    with pytest.raises(TypeError, match="bilevel must be a BilevelInfo"):
        jd.RunInfo(bilevel={"steps_run": 3})


def test_results_are_typed_and_survive_a_file(diabetes, tmp_path):
    X, Y = diabetes
    out = jd.distill(X, Y, **KW)
    assert isinstance(out.history, jd.History) and isinstance(out.meta, jd.RunInfo)
    assert isinstance(out.status, jd.Status)
    assert out.history.steps == 100 and out.meta.bilevel.steps_run == 100 and out.meta.n_train == 270
    assert out.meta.bilevel.compilations["programs"] >= 0
    out.save(tmp_path / "r.npz")
    back = jd.load(tmp_path / "r.npz")
    assert isinstance(back.status, jd.Status) and back.status == out.status
    assert back.meta.bilevel.steps_run == 100 and back.meta.saved_with == jd.__version__
    for k in out.history:
        np.testing.assert_array_equal(getattr(back.history, k), getattr(out.history, k))
    steps, evals = out.history.to_pandas()
    assert list(steps.index[:2]) == [1, 2] and list(evals.index) == list(out.history.eval_step)
    with pytest.warns(DeprecationWarning, match="use history.loss"):       # one way: the attribute
        np.testing.assert_array_equal(out.history["loss"], out.history.loss)
    with pytest.warns(DeprecationWarning), pytest.raises(KeyError, match="fields are"):
        out.history["losses"]


def test_eval_report_rows_have_stable_ids_and_export(diabetes):
    pd = pytest.importorskip("pandas")
    X, Y = diabetes
    out = jd.distill(X[:250], Y[:250], **KW)
    rep = jd.evaluate(out, X[250:], Y[250:], X[:250], Y[:250], n_subsets=3)
    assert rep.ids == ["distilled", "distilled_ridge", "subset", "subset_ridge", "leverage", "kmeans", "kcenter",
                       "full", "full_cv", "mean"]
    df = rep.to_pandas()
    assert isinstance(df, pd.DataFrame) and list(df.index) == rep.ids
    assert df.loc["full", "r2"] == rep.row("full")["r2"]
    d = json.loads(rep.to_json())
    assert d["n_test"] == 50 and [r["id"] for r in d["rows"]] == rep.ids
    with pytest.raises(KeyError, match="rows are"):
        rep.row("distilled, T-step GD")            # printed labels are not ids


def test_every_json_the_library_writes_is_strict(tmp_path, capsys, monkeypatch):
    """A value that is not finite (R² on constant targets, a NaN in the run information) is null, never a bare NaN
    that strict JSON parsers (RFC 8259) refuse."""
    import json

    def strict(text):
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))

    X = np.random.default_rng(0).normal(size=(60, 3))
    Y = X @ np.ones((3, 1))
    out = jd.distill_moments(X, Y, m=6)
    rep = jd.evaluate(out, X[:5], np.ones((5, 1)), X, Y, n_subsets=2, coresets=())   # constant test targets
    assert np.isnan(rep.row("distilled")["r2"])
    assert strict(rep.to_json())["rows"][0]["r2"] is None
    info = out.replace(meta=out.meta.replace(best_monitored_loss=float("nan"), extra={"score": float("inf")}))
    assert strict(json.dumps(info.meta.to_dict()))["score"] is None
    info.to_csv(tmp_path / "s.csv")
    strict((tmp_path / "s.csv.json").read_text())


def test_callbacks_given_as_a_generator_run_and_a_non_bool_answer_is_refused(tmp_path):
    X = np.random.default_rng(0).normal(size=(80, 3))
    Y = X @ np.ones((3, 1))
    logs = [tmp_path / "a.csv", tmp_path / "b.csv"]
    jd.Distiller(m=5, steps=40, eval_every=20).fit(X, Y, callbacks=(jd.MetricsLogger(p) for p in logs))
    assert all(p.read_text().count("\n") >= 3 for p in logs)            # both ran: the generator was not consumed

    class Stringly(jd.Callback):
        def on_evaluation(self, run):
            return "False"
    with pytest.raises(ValueError, match="returned 'False'.*must return True"):
        jd.distill(X, Y, m=5, steps=40, eval_every=20, progress=False, callbacks=[Stringly()])
    with pytest.raises(ValueError, match="callbacks=\\[...\\]"):
        jd.distill(X, Y, m=5, steps=40, progress=False, callbacks=jd.MetricsLogger(tmp_path / "c.csv"))
