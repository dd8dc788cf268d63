"""Bad input is rejected before any compute; results round-trip through one file."""

import os

import numpy as np
import pytest

import jaxdistill as jd


@pytest.fixture
def data(rng):
    X = rng.normal(size=(60, 4))
    return X, X @ rng.normal(size=4)


@pytest.mark.parametrize("mutate, match", [
    (lambda X, Y: (np.where(np.arange(60)[:, None] == 7, np.nan, X), Y), r"non-finite.*row 7"),
    (lambda X, Y: (X, np.where(np.arange(60) == 3, np.inf, Y)), r"Y has 1 non-finite"),
    (lambda X, Y: (X[:50], Y), r"X has 50 rows but Y has 60"),
    (lambda X, Y: (X[:, 0], Y), r"X must be 2-D"),
    (lambda X, Y: (X[None], Y), r"X must be 2-D"),
    (lambda X, Y: (X.astype(str), Y), r"dtype"),
    (lambda X, Y: (X > 0, Y), r"dtype bool"),
    (lambda X, Y: (X.astype(complex), Y), r"dtype complex"),
])
def test_bad_data_rejected(data, mutate, match):
    X, Y = mutate(*data)
    with pytest.raises(ValueError, match=match):
        jd.distill(X, Y, m=5, progress=False)


@pytest.mark.parametrize("m, match", [(0, "integer >= 1"), (-3, "integer >= 1"), (60, "smaller than"),
                                      (2.5, "integer >= 1"), (57, "after holding out")])
def test_bad_m_rejected(data, m, match):
    with pytest.raises(ValueError, match=match):
        jd.distill(*data, m=m, progress=False)


@pytest.mark.parametrize("kw, match", [({"T": 0}, "T must be"), ({"lr_x": -1.0}, "lr_x"),
                                       ({"init": "zeros"}, "init must be"), ({"inner_lr": float("nan")}, "inner_lr"),
                                       ({"reduction": "max"}, "reduction"), ({"bogus": 1}, "bogus")])
def test_bad_settings_rejected(data, kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        jd.distill(*data, m=5, progress=False, **kw)


def test_integer_inputs_are_accepted(data):
    X, Y = data
    out = jd.distill(np.round(X * 10).astype(int), Y, m=5, steps=5, eval_every=5, progress=False)
    assert out.x.dtype.kind == "f"


def test_save_load_round_trip(tmp_path, data):
    X, Y = data
    out = jd.distill(X * 3 + 1, Y * 10 - 2, m=5, steps=20, eval_every=10, key=7, progress=False)
    path = tmp_path / "d.npz"
    out.save(path)
    back = jd.load(path)
    np.testing.assert_array_equal(back.x, out.x)
    np.testing.assert_array_equal(back.Y, out.Y)
    assert back.inner_lr == out.inner_lr and back.seed == 7 and back.status == out.status
    assert back.config == out.config
    for k, v in out.history.items():
        np.testing.assert_array_equal(getattr(back.history, k), v)
    np.testing.assert_allclose(back.predict(X[:5] * 3 + 1), out.predict(X[:5] * 3 + 1))
    assert back.meta["saved_with"] == jd.__version__
    assert [p for p in os.listdir(tmp_path) if p != "d.npz"] == []  # no temp files left behind


def test_load_errors(tmp_path, data):
    with pytest.raises(FileNotFoundError, match="No distilled-set file"):
        jd.load(tmp_path / "missing.npz")
    out = jd.distill(*data, m=5, steps=5, eval_every=5, progress=False)
    good = tmp_path / "good.npz"
    out.save(good)
    blob = good.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        jd.load(tmp_path / "trunc.npz")
    np.savez(tmp_path / "foreign.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a distilled-set file written by jaxdistill"):
        jd.load(tmp_path / "foreign.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        jd.load(tmp_path / "text.npz")


def test_standardisation_stats_bring_predictions_back_to_original_units(data):
    X, Y = data
    Xo, Yo = X * 5 + 100, Y * 1000 + 50
    out = jd.distill(Xo, Yo, m=8, steps=200, eval_every=50, progress=False)
    pred = out.predict(Xo)
    assert pred.shape == Yo.shape                  # 1-D targets in, 1-D predictions out
    assert np.mean((pred - Yo) ** 2) < 0.05 * np.var(Yo)
