"""The boundary with the user's data, through the public API: constant columns handled exactly (against numpy
ridge on the other columns), DataFrames matched by name, shapes and indices kept, misaligned or masked inputs
refused, and files that cannot lie (every edit refused)."""

import json
import warnings

import numpy as np
import pytest

import jaxdistill as jd
from jaxdistill import datasets

pd = pytest.importorskip("pandas")
SMALL = dict(steps=60, eval_every=20, T=10, Q=2, progress=False)
CONSTANTS = {"c_small": 0.1, "c_mid": 0.7, "c_big": 100000.1}


@pytest.fixture(scope="module")
def frame():
    X, Y = datasets.load("diabetes")
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    y = pd.Series(Y[:, 0], name="progression")
    return datasets.train_test_split(df, y, 0.2, key=0)


def _with_constants(df, delta=0.0):
    df = df.copy()
    for name, v in CONSTANTS.items():
        df[name] = v + delta
    return df


def _numpy_ridge(Xtr, ytr, Xte, lam_n):
    """Ridge on standardised columns, (XᵀX + lam_n I)⁻¹ Xᵀy, predictions in original units (an oracle)."""
    mu, sd = Xtr.mean(0), Xtr.std(0)
    ym, ys = ytr.mean(), ytr.std()
    A = (Xtr - mu) / sd
    w = np.linalg.solve(A.T @ A + lam_n * np.eye(A.shape[1]), A.T @ ((ytr - ym) / ys))
    return ((Xte - mu) / sd) @ w * ys + ym


# ------------------------------------------------------------------ constant columns
def test_constant_columns_contribute_nothing_and_are_named_once(frame):
    Xtr, ytr, Xte, yte = frame
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = jd.distill(_with_constants(Xtr), ytr, m=20, key=0, validation_fraction=0.0, **SMALL)
    said = [str(w.message) for w in caught if "constant column" in str(w.message)]
    assert len(said) == 1 and all(name in said[0] for name in CONSTANTS)
    assert out.schema.constant_names() == list(CONSTANTS) and out.ok
    # new rows whose "constant" columns read slightly off: no blow-up (0.7 predicted ~1e10 here)
    pred = out.predict(_with_constants(Xte, delta=0.001))
    base = jd.distill(Xtr, ytr, m=20, key=0, validation_fraction=0.0, **SMALL).predict(Xte)
    assert np.all(np.isfinite(pred)) and np.max(np.abs(pred - base)) < 1e-3 * np.std(yte)
    # the full-data ridge baseline on all columns equals numpy ridge on the non-constant ones
    rep = jd.evaluate(out, _with_constants(Xte, 0.001), yte, _with_constants(Xtr), ytr, n_subsets=2)
    oracle = _numpy_ridge(Xtr.to_numpy(), ytr.to_numpy(), Xte.to_numpy(), out.lambda_inner * len(Xtr))
    assert rep.row("full")["mse"] == pytest.approx(np.mean((oracle - yte.to_numpy()) ** 2), rel=1e-9)


def test_constant_columns_in_the_analytic_set_and_the_streaming_statistics(frame):
    Xtr, ytr, Xte, _ = frame
    lam = 2.0
    oracle = _numpy_ridge(Xtr.to_numpy(), ytr.to_numpy(), Xte.to_numpy(), lam)
    with pytest.warns(UserWarning, match="constant column"):
        mem = jd.distill_analytic(_with_constants(Xtr), ytr, m=1, lam=lam)
    np.testing.assert_allclose(mem.predict(_with_constants(Xte, 0.001)), oracle, rtol=1e-7)
    Xc = _with_constants(Xtr).to_numpy()
    with pytest.warns(UserWarning, match="constant column"):
        streamed = jd.distill_analytic(jd.ArraySource(Xc, ytr.to_numpy()), None, m=1, lam=lam)
    np.testing.assert_allclose(streamed.predict(_with_constants(Xte, 0.001).to_numpy()), oracle, rtol=1e-7)


# ------------------------------------------------------------------ names, order, shapes, indices
def test_dataframes_are_matched_by_column_name(frame):
    Xtr, ytr, Xte, yte = frame
    out = jd.distill(Xtr, ytr, m=10, key=0, **SMALL)
    assert out.schema.feature_names == tuple(Xtr.columns) and out.schema.target_names == ("progression",)
    pred = out.predict(Xte)
    assert isinstance(pred, pd.Series) and pred.name == "progression" and pred.index.equals(Xte.index)
    shuffled = Xte[list(reversed(Xte.columns))]
    np.testing.assert_array_equal(out.predict(shuffled).to_numpy(), pred.to_numpy())
    a = jd.evaluate(out, Xte, yte, n_subsets=2).row("distilled")["mse"]
    assert jd.evaluate(out, shuffled, yte, n_subsets=2).row("distilled")["mse"] == a
    with pytest.raises(ValueError, match=r"missing \['f3'\]; unexpected \['age'\]"):
        out.predict(Xte.rename(columns={"f3": "age"}))
    with pytest.raises(ValueError, match="has 9 columns"):
        out.predict(Xte.to_numpy()[:, :9])
    np.testing.assert_array_equal(out.predict(Xte.to_numpy()), pred.to_numpy())   # arrays: by position
    # the distilled set itself, with the original names
    with pytest.warns(jd.ProcedureBoundWarning):          # a GD set is procedure-bound: its export says so
        table = out.to_pandas()
    assert list(table.columns) == list(Xtr.columns) + ["progression", "sample_weight"] and len(table) == 10


def test_one_dimensional_targets_give_one_dimensional_predictions(frame):
    Xtr, ytr, Xte, yte = frame
    out = jd.distill(Xtr.to_numpy(), ytr.to_numpy(), m=10, key=0, **SMALL)
    pred = out.predict(Xte.to_numpy())
    assert pred.shape == (len(Xte),)
    # the user's own MSE is the right one (0.7 broadcast (n,) against (n, 1) to (n, n))
    mse = float(((yte.to_numpy() - pred) ** 2).mean())
    assert mse == pytest.approx(jd.evaluate(out, Xte.to_numpy(), yte.to_numpy()).row("distilled")["mse"], rel=1e-9)
    two = jd.distill(Xtr.to_numpy(), ytr.to_numpy()[:, None], m=10, key=0, **SMALL)
    assert two.predict(Xte.to_numpy()).shape == (len(Xte), 1)


def test_misaligned_indices_and_masked_arrays_are_refused(frame):
    Xtr, ytr, Xte, yte = frame
    with pytest.raises(ValueError, match="different indices"):
        jd.distill(Xtr.sample(frac=1.0, random_state=0), ytr, m=10, **SMALL)
    out = jd.distill(Xtr, ytr, m=10, **SMALL)
    with pytest.raises(ValueError, match="X_test and Y_test .* different indices"):
        jd.evaluate(out, Xte, yte.sample(frac=1.0, random_state=0))
    masked = np.ma.masked_equal(np.where(np.arange(Xtr.size).reshape(Xtr.shape) % 97 == 0, -999.0,
                                         Xtr.to_numpy()), -999.0)
    n_masked = int(np.ma.count_masked(masked))
    with pytest.raises(ValueError, match=f"masked array with {n_masked} masked entries"):
        jd.distill(masked, ytr.to_numpy(), m=10, **SMALL)
    with pytest.raises(ValueError, match="masked"):
        out.predict(np.ma.masked_equal(Xte.to_numpy(), Xte.to_numpy()[0, 0]))


def test_nullable_dtypes_are_read_and_non_numeric_columns_named(frame):
    """pandas' nullable dtypes (``convert_dtypes()``: Int64, Float64) are numbers: the same run as the float64
    frame. Their missing values are refused by row, and columns that are not numbers by name (both used to be
    one message: "dtype object ... encode categorical columns")."""
    Xtr, ytr, Xte, yte = frame
    out = jd.distill(Xtr, ytr, m=10, key=0, **SMALL)
    nullable = Xtr.astype("Float64")
    nullable["f1"] = (Xtr["f1"] > 0).astype("Int64")             # an integer column, as convert_dtypes gives
    plain = Xtr.assign(f1=(Xtr["f1"] > 0).astype(np.int64))
    got, want = (jd.distill(x, ytr.astype("Float64"), m=10, key=0, **SMALL) for x in (nullable, plain))
    np.testing.assert_array_equal(got.X, want.X)
    pd.testing.assert_series_equal(got.predict(Xte.assign(f1=(Xte["f1"] > 0).astype("Int64")).astype("Float64")),
                                   want.predict(Xte.assign(f1=(Xte["f1"] > 0).astype(np.int64))))
    with_na = nullable.copy()
    with_na.iloc[7, 3] = pd.NA
    with pytest.raises(ValueError, match=r"X has 1 non-finite .* first at row 7.*pd\.NA"):
        jd.distill(with_na, ytr, m=10, **SMALL)
    y_na = ytr.astype("Float64")
    y_na.iloc[4] = pd.NA
    with pytest.raises(ValueError, match=r"Y has 1 non-finite .* first at row 4"):
        jd.distill(Xtr, y_na, m=10, **SMALL)
    mixed = Xtr.assign(city="Oslo", kind=pd.Categorical(["a"] * len(Xtr)), flag=True)
    with pytest.raises(ValueError, match=r"X has columns that are not numbers: 'city' \(.*\), 'kind' \(category\), "
                                         r"'flag' \(bool\)\. Encode them"):
        jd.distill(mixed, ytr, m=10, **SMALL)
    with pytest.raises(ValueError, match=r"X_new has columns that are not numbers: 'f2'"):
        out.predict(Xte.assign(f2=Xte["f2"].astype(str)))


def test_split_and_csv_keep_pandas_objects(frame, tmp_path):
    Xtr, ytr, _, _ = frame
    a, b, c, d = datasets.train_test_split(Xtr, ytr, 0.25, key=1)
    assert isinstance(a, pd.DataFrame) and isinstance(b, pd.Series) and a.index.equals(b.index)
    assert len(c) == round(0.25 * len(Xtr)) and not set(a.index) & set(c.index)
    out = jd.distill(Xtr, ytr, m=10, **SMALL)
    with pytest.warns(jd.ProcedureBoundWarning):
        out.to_csv(tmp_path / "set.csv")
    X2, y2, w = datasets.load_csv(tmp_path / "set.csv", target="progression", as_frame=True, weight="sample_weight")
    assert list(X2.columns) == list(Xtr.columns) and y2.name == "progression"
    np.testing.assert_allclose(X2.to_numpy(), out.X, rtol=1e-15)
    np.testing.assert_allclose(y2.to_numpy(), out.Y[:, 0], rtol=1e-15)


def test_readme_example_works_with_a_dataframe(frame):
    Xtr, Ytr, Xte, Yte = frame
    out = jd.distill(Xtr, Ytr, m=20, key=0, progress=False)
    assert out.X.shape == (20, 10) and out.Y.shape == (20, 1) and out.inner_lr > 0
    assert out.predict(Xte).shape == out.predict(Xte, limit=True).shape == (len(Xte),)
    assert "distilled" in str(jd.evaluate(out, Xte, Yte, Xtr, Ytr))


# ------------------------------------------------------------------ files that cannot lie
def _rewrite(path, dest, meta_edit=None, arrays_edit=None, keep_checksum=False):
    """Edit a saved file as a user might by hand (meta JSON and arrays), dropping the checksum unless asked."""
    with np.load(path) as z:
        files = dict(z)
    meta = json.loads(files.pop("__meta__").tobytes().decode())
    if not keep_checksum:
        meta.pop("checksum")
    if meta_edit:
        meta_edit(meta)
    if arrays_edit:
        arrays_edit(files)
    files["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with open(dest, "wb") as f:              # np.savez(name) would append ".npz" to a ".ckpt" name
        np.savez(f, **files)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, frame):
    Xtr, ytr, _, _ = frame
    model = jd.LinearModel(jd.RandomFourierFeatures(0, Xtr.shape[1], 16))
    out = jd.distill(Xtr, ytr, m=10, key=0, model=model, **SMALL)
    path = tmp_path_factory.mktemp("files") / "r.npz"
    out.save(path)
    return out, path


@pytest.mark.parametrize("what,meta_edit,arrays_edit,says", [
    ("T removed", lambda m: m.pop("T"), None, "inner_lr .* with T None"),
    ("T changed", lambda m: m.update(T=3), None, r"T 3 \(the settings run 10"),
    ("inner_lr 1e6", lambda m: m.update(inner_lr=1e6), None, "above the stability bound"),
    ("lambda_inner", lambda m: m.update(lambda_inner=0.5), None, "lambda_inner 0.5 .the record of its choice says"),
    ("solver spec", lambda m: m["inner_solver_id"].update(fingerprint="0" * 64), None, "inner_solver"),
    ("RFF weights x2", None, lambda f: f.update({k: 2 * v for k, v in f.items() if k.startswith("c:model")}),
     "model"),
    ("schema width", lambda m: m["schema"].update(n_features=3), None, "schema"),
    ("settings", lambda m: m["config"].update(T=-1), None, "settings"),
])
def test_every_edit_of_a_result_file_is_refused(saved, tmp_path, what, meta_edit, arrays_edit, says):
    out, path = saved
    assert np.array_equal(jd.load(path).x, out.x)              # the file as written loads
    _rewrite(path, tmp_path / "edited.npz", meta_edit, arrays_edit, keep_checksum=True)
    with pytest.raises(ValueError, match="was changed after jaxdistill wrote it"):
        jd.load(tmp_path / "edited.npz")
    _rewrite(path, tmp_path / "old.npz", meta_edit, arrays_edit)   # no checksum: each value checked itself
    with pytest.raises(ValueError, match=says):
        jd.load(tmp_path / "old.npz")


def test_edited_checkpoints_are_refused(frame, tmp_path, run_interrupted):
    Xtr, ytr, _, _ = frame
    kw = dict(m=8, steps=100, eval_every=20, patience=None, progress=False)
    run_interrupted(2, lambda: jd.distill(Xtr, ytr, checkpoint=tmp_path / "c.ckpt", **kw))
    edits = {"history truncated": lambda f: f.update(hist_loss=f["hist_loss"][:10]),
             "step moved back": lambda f: f.update({k: np.asarray(20, v.dtype) for k, v in f.items()
                                                    if k.startswith("leaf_") and v.shape == () and int(v) == 40})}
    for edit in edits.values():
        _rewrite(tmp_path / "c.ckpt", tmp_path / "e.ckpt", arrays_edit=edit, keep_checksum=True)
        with pytest.raises(ValueError, match="was changed after jaxdistill wrote it"):
            jd.distill(Xtr, ytr, checkpoint=tmp_path / "e.ckpt", **kw)
        _rewrite(tmp_path / "c.ckpt", tmp_path / "e.ckpt", arrays_edit=edit)
        with pytest.raises(ValueError, match="carries no checksum"):
            jd.distill(Xtr, ytr, checkpoint=tmp_path / "e.ckpt", **kw)
    resumed = jd.distill(Xtr, ytr, checkpoint=tmp_path / "c.ckpt", **kw)    # the untouched one resumes exactly
    np.testing.assert_array_equal(resumed.x, jd.distill(Xtr, ytr, **kw).x)


def test_a_memory_mapped_analytic_distillation_reads_in_blocks(tmp_path):
    """distill_analytic on an np.memmap (not an NpySource) never holds a copy of the rows: peak traced host memory
    is a working set of a few 65536-row blocks, under half of the data here (0.7 standardised a float64 copy of
    all of it, then put it on the device), and the set equals the in-memory one."""
    import tracemalloc
    rng = np.random.default_rng(0)
    n, d = 400_000, 40                                          # 128 MB of float64
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float64, shape=(n, d))
    for i in range(0, n, 50_000):
        X[i:i + 50_000] = rng.normal(size=(50_000, d))
    Y = X[:, :3] @ np.ones((3, 1)) + 0.1 * rng.normal(size=(n, 1))
    X.flush()
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    tracemalloc.start()
    out = jd.distill_analytic(Xm, Y, m=1, lam=1.0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < X.nbytes / 2, f"peak {peak / 2**20:.1f} MiB for {X.nbytes / 2**20:.0f} MiB of data"
    ref = jd.distill_analytic(np.asarray(Xm), Y, m=1, lam=1.0)
    np.testing.assert_allclose(out.predict(np.asarray(Xm[:50])), ref.predict(np.asarray(Xm[:50])), rtol=1e-8)


EVALUATE_MEMORY = r"""
import sys
import numpy as np
import jaxdistill as jd
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
rng = np.random.default_rng(0)
X = rng.standard_normal((2_000_000, 50), dtype=np.float32)            # 381 MiB
y = X[:, :3].sum(1) + rng.standard_normal(X.shape[0], dtype=np.float32)
out = jd.distill(X[:2000], y[:2000], m=20, steps=50, progress=False)
kw = dict(n_subsets=4, coresets=())
small = jd.evaluate(out, X[:500], y[:500], X[:2000], y[:2000], **kw)   # compiles what does not depend on n
with open("/proc/self/clear_refs", "w") as f:                          # the peak counts from here (Linux >= 4.0)
    f.write("5")
base = status("VmRSS:")
rep = jd.evaluate(out, X[:20000], y[:20000], X, y, **kw)
print((status("VmHWM:") - base) / X.nbytes, rep.row("full")["r2"], rep.row("full_cv")["r2"])
"""


def test_evaluate_on_many_rows_holds_no_copy_of_them(tmp_path):
    """evaluate of a linear model reads the training rows block by block: the full-data rows come from float64
    cross products of one pass, subsets and coresets gather their own rows. In a fresh process, 2·10⁶ × 50 float32
    rows (381 MiB): the peak resident size over the size before the call stays under half the data (measured
    0.25-0.32; 0.8 held a compute-dtype copy of the rows and its device twin: 2.33× the data, measured with this
    script). The full-data ridge on these rows is y ≈ x₁ + x₂ + x₃ with unit noise: R² = 3/4 (scored on 20,000 of
    the rows)."""
    import os
    import subprocess
    import sys
    if not os.path.exists("/proc/self/clear_refs"):
        pytest.skip("needs Linux's /proc/self/clear_refs to reset the peak resident size")
    res = subprocess.run([sys.executable, "-c", EVALUATE_MEMORY], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    ratio, r2_full, r2_cv = (float(v) for v in res.stdout.split()[-3:])
    assert ratio < 0.5, f"evaluate's peak was {ratio:.2f} × the data"
    assert r2_full == pytest.approx(0.75, abs=0.01) and r2_cv == pytest.approx(0.75, abs=0.01)


def test_column_ranges_see_every_row_of_a_block():
    """The statistics passes take each column's min and max with 16 rows side by side; a column whose only other
    value lies in a block's last n % 16 rows, or mid-block, is not constant: the statistics and the standardiser
    equal numpy's on the same rows."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1003, 4))
    X[:, 1], X[:, 2] = 0.5, 0.5
    X[1002, 1], X[500, 2] = 0.7, 0.3                      # the last block's tail row; a row in the middle
    y = X[:, 0] + X[:, 1] + rng.normal(size=1003)
    Z = (X - X.mean(0)) / X.std(0)
    stats = jd.sufficient_statistics(jd.ArraySource(X, y), block_rows=256)      # blocks of 256, 256, 256, 235
    np.testing.assert_allclose(stats.FtF, Z.T @ Z, rtol=1e-9, atol=1e-9)
    out = jd.distill(X, y, m=4, steps=2, eval_every=1, validation_fraction=0.0, progress=False)
    np.testing.assert_allclose(out.standardizer.x_scale, X.std(0), rtol=1e-12)


def test_sparse_input_is_refused_with_how_to_convert():
    """#42: a scipy.sparse X was refused as 'dtype object … encode categorical columns'."""
    sp = pytest.importorskip("scipy.sparse")
    X = sp.random(50, 4, density=0.5, format="csr", random_state=0)
    with pytest.raises(ValueError, match=r"scipy.sparse matrix \(50 × 4.*X.toarray\(\)"):
        jd.distill(X, np.arange(50.0), m=5, progress=False)
