"""Sets other learners can use: exact-moment sets checked against scikit-learn fitted on all rows (read back from
the exported CSV with pandas), what every set says it is valid for, and the cross-learner evaluation."""

import json
import pathlib
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import BayesianRidge, ElasticNet, Lasso, LinearRegression, Ridge

import jaxdistill as jd
from jaxdistill import datasets

ROOT = pathlib.Path(__file__).resolve().parents[1]
SMALL = dict(steps=40, eval_every=20, progress=False)
LEARNERS = [LinearRegression(), Ridge(alpha=3.0), Lasso(alpha=0.05), ElasticNet(alpha=0.01, l1_ratio=0.5)]


def _r2(pred, y):
    return 1 - np.sum((pred - y) ** 2) / np.sum((y - y.mean()) ** 2)


@pytest.mark.parametrize("name,m_extra", [("diabetes", 0), ("autompg", 9)])
def test_moment_set_read_back_from_csv_gives_every_linear_learner_its_full_data_fit(name, m_extra, tmp_path):
    X, Y = datasets.load(name)
    Xtr, Ytr, Xte, Yte = datasets.train_test_split(X, Y, 0.2, key=0)
    ytr, yte = Ytr[:, 0], Yte[:, 0]
    m = X.shape[1] + 2 + m_extra                                      # p + 2, and more
    out = jd.distill_moments(Xtr, Ytr, m=m, key=1)
    assert out.transfers and out.m == m and out.status == "exact"
    path = tmp_path / "set.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                # a set that transfers exports silently
        out.to_csv(path)
    df = pd.read_csv(path)
    w, y = df.pop("sample_weight").to_numpy(), df.pop("y").to_numpy()
    np.testing.assert_allclose(w, len(Xtr) / m, rtol=1e-15)
    for est in LEARNERS + [BayesianRidge()]:
        full = est.fit(Xtr, ytr)
        coef, icpt, r2 = full.coef_.copy(), full.intercept_, _r2(full.predict(Xte), yte)
        small = est.fit(df.to_numpy(), y, sample_weight=w)
        assert np.max(np.abs(small.coef_ - coef)) <= 1e-8 * np.max(np.abs(coef)), type(est).__name__
        assert abs(small.intercept_ - icpt) <= 1e-8 * abs(icpt)
        assert abs(_r2(small.predict(Xte), yte) - r2) <= 1e-9
    info = json.loads((tmp_path / "set.csv.json").read_text())
    assert info["transfers"] and info["weight_column"] == "sample_weight" and "second moments" in info["valid_for"]


def test_the_weighted_moments_equal_the_rows_moments_and_constant_columns_stay_constant():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, 6)) * [1, 10, 0.1, 1e3, 1, 1] + [0, 5, -2, 1e4, 7, 0]
    X[:, 5] = 2.5                                                     # a constant column
    Y = X[:, :2] @ [[1.0, 0.5], [-0.2, 0.1]] + rng.normal(size=(500, 2))
    with pytest.warns(UserWarning, match="constant"):
        out = jd.distill_moments(X, Y, m=9, init="real", key=0)      # rank 5 + 2 = 7 directions: m >= 8
    Z, Zd, w = np.hstack([X, Y]), np.hstack([out.X, out.Y]), out.weights
    np.testing.assert_allclose(w.sum(), 500, rtol=1e-15)
    np.testing.assert_allclose(w @ Zd, Z.sum(0), rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose((Zd * w[:, None]).T @ Zd, Z.T @ Z, rtol=1e-10)
    assert np.all(out.X[:, 5] == 2.5)
    with pytest.raises(ValueError, match="m >= 8"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)                  # the constant column, said above
        jd.distill_moments(X, Y, m=7)


def test_moment_set_predicts_full_data_ridge_and_survives_save_load_with_names(tmp_path):
    X, Y = datasets.load("diabetes")
    frame = pd.DataFrame(X, columns=[f"c{j}" for j in range(10)])
    y = pd.Series(Y[:, 0], name="progression")
    out = jd.distill_moments(frame, y, m=15, lambda_inner=0.1)
    # independent oracle: ridge with λ_I (Def. 2.1, normalised by the rows) on all standardised rows, in numpy
    mu, sd = X.mean(0), X.std(0)
    Xs, ys = (X - mu) / sd, (Y[:, 0] - Y.mean()) / Y.std()
    theta = np.linalg.solve(Xs.T @ Xs / len(X) + 0.1 * np.eye(10), Xs.T @ ys / len(X))
    pred = out.predict(frame.iloc[:5])
    assert isinstance(pred, pd.Series) and pred.name == "progression"
    np.testing.assert_allclose(pred.to_numpy(), (Xs[:5] @ theta) * Y.std() + Y.mean(), rtol=1e-10)
    out.save(tmp_path / "m.npz")
    again = jd.load(tmp_path / "m.npz")
    assert again.transfers and again.valid_for == out.valid_for and "valid for:" in repr(again)
    np.testing.assert_array_equal(again.weights, out.weights)
    table = again.to_pandas()
    assert list(table.columns) == list(frame.columns) + ["progression", "sample_weight"]
    assert table.attrs["transfers"] and table.attrs["weight_column"] == "sample_weight"


def test_moment_set_from_files_equals_the_in_memory_one(tmp_path):
    X, Y = datasets.load("diabetes")
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    a = jd.distill_moments(jd.NpySource(tmp_path / "x.npy", tmp_path / "y.npy"), None, m=14, key=2)
    b = jd.distill_moments(X, Y, m=14, key=2)
    np.testing.assert_allclose(a.X, b.X, rtol=1e-9, atol=1e-9)
    assert a.meta.get("moment_error") <= 1e-9


def test_bad_input_to_distill_moments_says_what_to_change():
    X, Y = datasets.load("diabetes")
    with pytest.raises(ValueError, match="m >= 12"):
        jd.distill_moments(X, Y, m=11)
    with pytest.raises(ValueError, match="init must be"):
        jd.distill_moments(X, Y, m=12, init="centroids")
    with pytest.raises(ValueError, match="Pass m"):
        jd.distill_moments(X, Y)
    bad = X.copy()
    bad[7, 2] = np.nan
    with pytest.raises(ValueError, match="row 7"):
        jd.distill_moments(bad, Y, m=12)


def test_a_procedure_bound_set_says_so_and_warns_when_exported(tmp_path):
    X, Y = datasets.load("diabetes")
    out = jd.distill(X, Y, m=5, key=0, **SMALL)
    assert not out.transfers and out.valid_for.startswith("procedure-bound: only 50 GD steps")
    assert "valid for: procedure-bound" in repr(out)
    with pytest.warns(jd.ProcedureBoundWarning, match="distill_moments"):
        out.to_csv(tmp_path / "set.csv")
    with pytest.warns(jd.ProcedureBoundWarning):
        frame = out.to_pandas()
    assert not frame.attrs["transfers"] and np.all(frame["sample_weight"] == 1.0)
    with pytest.raises(ValueError, match="weight='sample_weight'"):
        datasets.load_csv(tmp_path / "set.csv", target="y")
    Xb, Yb, w = datasets.load_csv(tmp_path / "set.csv", target="y", weight="sample_weight")
    np.testing.assert_allclose(Xb, out.X, rtol=1e-15)
    assert Xb.shape == (5, 10) and np.all(w == 1.0)
    analytic = jd.distill_analytic(X, Y, m=1, lam=1.0)
    assert "the KRR paper's analytic set" in analytic.valid_for and not analytic.transfers


def test_evaluate_trains_other_learners_on_every_set():
    X, Y = datasets.load("diabetes")
    Xtr, Ytr, Xte, Yte = datasets.train_test_split(X, Y, 0.2, key=0)
    out = jd.distill_moments(Xtr, Ytr, m=12)
    rep = jd.evaluate(out, Xte, Yte, Xtr, Ytr, n_subsets=3, coresets=("kmeans",),
                      learners={"ols": LinearRegression(), "ridge": Ridge(alpha=2.0)}, n_learner_draws=2)
    rows = {(r["learner"], r["set"]): r for r in rep.learners}
    assert set(rows) == {(lr, s) for lr in ("ols", "ridge") for s in ("distilled", "subset", "kmeans", "full")}
    for lr in ("ols", "ridge"):                 # exact: the learner's own full-data score, and a ratio of 1
        assert abs(rows[lr, "distilled"]["r2"] - rows[lr, "full"]["r2"]) <= 1e-9
        assert abs(rows[lr, "distilled"]["vs_full"] - 1) <= 1e-9 and rows[lr, "distilled"]["weighted"]
    assert rows["ols", "subset"]["r2_std"] > 0 and rows["ols", "full"]["vs_full"] == 1
    assert json.loads(rep.to_json())["learners"][0]["learner"] == "ols"
    assert "Other learners trained on each set" in str(rep)
    with pytest.raises(ValueError, match="pass X_train"):
        jd.evaluate(out, Xte, Yte, learners=True)
    with pytest.raises(ValueError, match="not a scikit-learn estimator"):
        jd.evaluate(out, Xte, Yte, Xtr, Ytr, learners=[object()])


def test_evaluate_says_a_procedure_bound_set_does_not_transfer():
    X, Y = datasets.load("diabetes")
    Xtr, Ytr, Xte, Yte = datasets.train_test_split(X, Y, 0.2, key=0)
    out = jd.distill(Xtr, Ytr, m=20, key=0, **SMALL)
    rep = jd.evaluate(out, Xte, Yte, Xtr, Ytr, n_subsets=2, coresets=(), learners=[LinearRegression()])
    assert any("procedure-bound" in note for note in rep.notes)
    assert {r["set"] for r in rep.learners} == {"distilled", "subset", "full"}


def test_cli_runs_a_moment_experiment_and_evaluates_it_with_other_learners(tmp_path, capsys, monkeypatch):
    from jaxdistill import cli
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", str(ROOT / "configs" / "diabetes.json"), "--set", "method=moments", "--set", "m=14",
                     "--out", "m.npz", "--no-progress", "--no-eval"]) == 0
    out = jd.load(tmp_path / "m.npz")
    assert out.transfers and out.m == 14 and out.meta.command.experiment["method"] == "moments"
    capsys.readouterr()
    assert cli.main(["evaluate", "m.npz", "--learners", "--coresets", "kmeans", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    ols = {r["set"]: r for r in report["learners"] if r["learner"] == "LinearRegression"}
    assert abs(ols["distilled"]["r2"] - ols["full"]["r2"]) <= 1e-9 and "kmeans" in ols
    with open("bad.json", "w") as f:
        json.dump({"dataset": {"name": "diabetes"}, "method": "magic"}, f)
    assert cli.main(["run", "bad.json"]) == 2
    assert '"method" must be one of' in capsys.readouterr().err


def test_the_sweep_trains_other_learners_too():
    X, Y = datasets.load("diabetes")
    Xtr, Ytr, Xte, Yte = datasets.train_test_split(X, Y, 0.2, key=0)
    sweep = jd.error_vs_m(Xtr, Ytr, Xte, Yte, [5], n_subsets=2, steps=40, eval_every=20,
                          learners={"ols": LinearRegression()})
    got = sweep.rows[0]["learners"]["ols"]
    assert {"distilled", "subset", "coreset", "full", "vs_full"} <= set(got)
    assert "| 5 | ols |" in str(sweep)


def test_a_dataframes_constant_column_is_named_in_the_warning():
    X = pd.DataFrame({"a": np.arange(50.0), "stuck": np.full(50, 0.1),
                      "b": np.random.default_rng(0).normal(size=50)})
    with pytest.warns(UserWarning, match="constant column\\(s\\) over the training rows: 'stuck'"):
        out = jd.distill_moments(X, pd.Series(np.arange(50.0), name="y"), m=5)
    assert np.all(out.to_pandas()["stuck"] == 0.1)


def test_the_clis_coreset_choices_are_the_librarys():
    """The CLI spells the coreset kinds out (importing them would start JAX for --help): they must stay equal."""
    from jaxdistill import cli, coresets
    action = next(a for sub in cli.parser()._subparsers._group_actions for name, p in sub.choices.items()
                  if name == "evaluate" for a in p._actions if a.dest == "coresets")
    assert tuple(action.choices) == coresets.KINDS and tuple(action.default) == coresets.CORESETS
