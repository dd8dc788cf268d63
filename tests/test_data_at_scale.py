"""Data where it lives: polars and Arrow at the boundary, Parquet data sets read by column name, the statistics pass
on a Dask cluster, and the statistics as a file that a set can be distilled from.

Oracles: the in-memory float64 statistics of the same rows (numpy), scikit-learn's least squares on all rows, and
bit equality with the array path where the arithmetic is the same (same blocks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import jaxdistill as jd
from jaxdistill import datasets

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pl = pytest.importorskip("polars")


@pytest.fixture(scope="module")
def diabetes():
    X, Y = datasets.load("diabetes")
    return X, Y.ravel(), [f"f{j}" for j in range(X.shape[1])]


# ------------------------------------------------------------------------------------------ polars and Arrow
def test_polars_and_arrow_inputs_are_read_by_name_and_predictions_come_back_in_their_kind(diabetes):
    X, y, cols = diabetes
    frame = pl.DataFrame({c: X[:, j] for j, c in enumerate(cols)})
    out = jd.distill_moments(frame, pl.Series("target", y), m=12)
    assert out.schema.feature_names == tuple(cols) and out.schema.target_names == ("target",)
    shuffled = frame.select(cols[::-1])                       # reordered columns: identical predictions
    p = out.predict(shuffled)
    assert isinstance(p, pl.Series) and p.name == "target"
    np.testing.assert_array_equal(p.to_numpy(), out.predict(X))
    table = pa.table({c: X[:, j].astype(np.float32) for j, c in enumerate(cols)})
    out32 = jd.distill_moments(table, pa.array(y), m=12)
    assert out32.schema.dtype == "float32"                  # float32 columns stay float32
    q = out32.predict(table.select(cols[::-1]))
    assert isinstance(q, pa.Array)
    np.testing.assert_allclose(q.to_numpy(), out32.predict(X.astype(np.float32)), rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match=r"missing \['f9'\]"):
        out.predict(frame.drop("f9"))
    Ftr, ytr, Fte, yte = datasets.train_test_split(frame, pl.Series("target", y), 0.2, key=0)   # polars stays polars
    Ttr, _, _, _ = datasets.train_test_split(table, pa.array(y), 0.2, key=0)
    assert isinstance(Ftr, pl.DataFrame) and isinstance(yte, pl.Series) and isinstance(Ttr, pa.Table)
    np.testing.assert_array_equal(Ttr.column("f3").to_numpy(), Ftr["f3"].to_numpy().astype(np.float32))
    fit = jd.distill_moments(Ftr, ytr, m=12)
    a = jd.evaluate(fit, Fte.select(cols[::-1]), yte, Ftr, ytr, n_subsets=2, coresets=())
    b = jd.evaluate(fit, Fte.to_numpy(), yte.to_numpy(), Ftr.to_numpy(), ytr.to_numpy(), n_subsets=2, coresets=())
    assert a.row("full")["r2"] == b.row("full")["r2"] and a.row("distilled")["r2"] == b.row("distilled")["r2"]


def test_polars_and_arrow_nulls_are_refused_by_row_and_non_numbers_by_name(diabetes):
    X, y, cols = diabetes
    frame = pl.DataFrame({c: X[:, j] for j, c in enumerate(cols)})
    with_null = frame.with_columns(pl.when(pl.int_range(pl.len()) == 37).then(None).otherwise(pl.col("f3"))
                                   .alias("f3"))
    with pytest.raises(ValueError, match="first at row 37.*null"):
        jd.distill_moments(with_null, y, m=12)
    with pytest.raises(ValueError, match=r"'f2' \(Categorical\)"):
        jd.distill_moments(frame.with_columns(pl.col("f2").cast(pl.String).cast(pl.Categorical)), y, m=12)
    table = pa.table({c: X[:, j] for j, c in enumerate(cols)})
    with pytest.raises(ValueError, match="first at row 5"):
        jd.distill_moments(table.set_column(1, "f1", pa.array([None if i == 5 else v for i, v in
                                                               enumerate(X[:, 1])])), y, m=12)
    with pytest.raises(ValueError, match=r"'f4' \(string\)"):
        jd.distill_moments(table.set_column(4, "f4", pa.array(["a"] * len(y))), y, m=12)
    with pytest.raises(ValueError, match=r"'f0' \(bool\)"):
        jd.distill_moments(table.set_column(0, "f0", pa.array(X[:, 0] > 0)), y, m=12)


# ------------------------------------------------------------------------------------------ Parquet
def _write_parts(folder, table, cuts, row_group):
    os.makedirs(folder, exist_ok=True)
    for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        pq.write_table(table.slice(a, b - a), os.path.join(folder, f"part-{i}.parquet"), row_group_size=row_group)


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(0)
    n = 6000
    X = (rng.normal(size=(n, 6)) * [1, 2, 3, 1, 1, 5] + [0, 10, -3, 1e3, 0, 7]).astype(np.float32)
    Y = (X @ np.linspace(-1, 1, 6) + rng.normal(size=n)).astype(np.float32)
    cols = [f"x{j}" for j in range(6)]
    years = np.repeat([2020, 2021, 2022], n // 3)
    table = pa.table({**{c: X[:, j] for j, c in enumerate(cols)}, "y": Y, "year": years})
    return X, Y, cols, table


def test_a_parquet_file_gives_the_array_path_statistics_bit_for_bit(rows, tmp_path):
    X, Y, cols, table = rows
    pq.write_table(table, tmp_path / "one.parquet", row_group_size=1024)
    src = jd.ParquetSource(tmp_path / "one.parquet", features=cols, target="y")
    assert (src.n_rows, src.d, src.d_out, src.feature_names) == (6000, 6, 1, tuple(cols))
    a = jd.sufficient_statistics(src, block_rows=1024)
    b = jd.sufficient_statistics(jd.ArraySource(X, Y), block_rows=1024)
    for k in ("FtF", "FtY", "YtY"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    for u, v in zip(a.standardizer, b.standardizer, strict=True):
        np.testing.assert_array_equal(u, v)


def test_a_partitioned_parquet_directory_reads_its_files_in_order_with_bounded_blocks(rows, tmp_path):
    X, Y, cols, table = rows
    cuts = [0, 1, 1700, 1700 + 2048, 6000]          # a one-row file, uneven files
    _write_parts(tmp_path / "parts", table, cuts, 500)
    src = jd.ParquetSource(tmp_path / "parts", features=cols, target="y")
    blocks = list(src.blocks(300))
    assert max(b[0].shape[0] for b in blocks) <= 300
    np.testing.assert_array_equal(np.concatenate([b[0] for b in blocks]), X)
    same = jd.BlockSource(lambda: iter(blocks), d=6)  # the same blocks from memory: the same arithmetic
    a, b = jd.sufficient_statistics(src, block_rows=300), jd.sufficient_statistics(same)
    np.testing.assert_array_equal(a.FtF, b.FtF)
    ref = jd.sufficient_statistics(jd.ArraySource(X.astype(np.float64), Y.astype(np.float64)))
    np.testing.assert_allclose(a.FtF, ref.FtF, rtol=1e-12, atol=1e-9)
    rows_ = np.array([5999, 0, 1700, 3747, 12])
    xs, ys = src.take(rows_)
    np.testing.assert_array_equal(xs, X[rows_])
    np.testing.assert_array_equal(ys[:, 0], Y[rows_])
    shards = [np.concatenate([x for x, _ in src.shard(i, 3).blocks(700)]) for i in range(3)]
    np.testing.assert_array_equal(np.concatenate(shards), X)           # each process reads its range
    import pyarrow.dataset as ds
    recent = jd.ParquetSource(tmp_path / "parts", features=cols[:2], target="y", filter=ds.field("year") >= 2021)
    assert recent.n_rows == 4000 and recent.d == 2
    np.testing.assert_array_equal(recent.read_all()[0], X[2000:, :2])


def test_parquet_refusals_say_what_to_change(rows, tmp_path):
    X, Y, cols, table = rows
    pq.write_table(table, tmp_path / "t.parquet")
    with pytest.raises(ValueError, match=r"no column\(s\) \['nope'\]; its columns are \['x0'"):
        jd.ParquetSource(tmp_path / "t.parquet", features=["x0", "nope"], target="y")
    with pytest.raises(ValueError, match="Name the target"):
        jd.ParquetSource(tmp_path / "t.parquet")
    with pytest.raises(ValueError, match="No such file"):
        jd.ParquetSource(tmp_path / "missing.parquet", target="y")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ValueError, match="not a readable Parquet"):
        jd.ParquetSource(tmp_path / "junk.parquet", target="y")
    text = table.append_column("label", pa.array(["a"] * table.num_rows))
    pq.write_table(text, tmp_path / "s.parquet")
    with pytest.raises(ValueError, match=r"'label' \(string\)"):
        jd.ParquetSource(tmp_path / "s.parquet", target="y")
    nulls = table.set_column(2, "x2", pa.array([None if i == 4321 else float(v) for i, v in enumerate(X[:, 2])]))
    pq.write_table(nulls, tmp_path / "n.parquet", row_group_size=1000)
    src = jd.ParquetSource(tmp_path / "n.parquet", features=cols, target="y")
    with pytest.raises(ValueError, match="null.*'x2' at row 4321"):
        jd.sufficient_statistics(src)


def test_a_parquet_source_works_in_distill_analytic_distill_and_evaluate(diabetes, tmp_path):
    X, y, cols = diabetes
    Xtr, ytr, Xte, yte = datasets.train_test_split(X, y, 0.2, key=0)
    pq.write_table(pa.table({**{c: Xtr[:, j] for j, c in enumerate(cols)}, "target": ytr}), tmp_path / "tr.parquet",
                   row_group_size=100)
    pq.write_table(pa.table({**{c: Xte[:, cols.index(c)] for c in cols[::-1]}, "target": yte}),
                   tmp_path / "te.parquet")                # another column order: matched by name
    src = jd.ParquetSource(tmp_path / "tr.parquet", target="target")
    a = jd.distill_analytic(src, m=5, lam=1.0, key=0)
    b = jd.distill_analytic(Xtr, ytr, m=5, lam=1.0, key=0)
    np.testing.assert_allclose(a.predict(Xte), b.predict(Xte), rtol=1e-9, atol=1e-9)
    out = jd.distill(src, m=12, steps=100, progress=False)
    assert out.meta.n_train == Xtr.shape[0] and out.schema.feature_names == tuple(cols)
    test = jd.ParquetSource(tmp_path / "te.parquet", target="target")
    report = jd.evaluate(out, test, None, src, None, n_subsets=2, coresets=())
    direct = jd.evaluate(out, Xte, yte, Xtr, ytr, n_subsets=2, coresets=())
    assert report.row("full")["r2"] == pytest.approx(direct.row("full")["r2"], abs=1e-12)
    assert report.row("distilled")["r2"] == pytest.approx(direct.row("distilled")["r2"], abs=1e-12)


def test_an_experiment_file_reads_a_parquet_data_set_by_column_names(diabetes, tmp_path):
    X, y, cols = diabetes
    pq.write_table(pa.table({**{c: X[:, j] for j, c in enumerate(cols)}, "target": y}), tmp_path / "d.parquet")
    spec = {"dataset": {"parquet": "d.parquet", "features": cols[:4], "target": "target"},
            "config": {"m": 8, "steps": 50}, "output": str(tmp_path / "out.npz")}
    (tmp_path / "exp.json").write_text(json.dumps(spec))
    got = subprocess.run([sys.executable, "-m", "jaxdistill.cli", "run", str(tmp_path / "exp.json"), "--no-eval",
                          "--no-progress", "--no-checkpoint"], capture_output=True, text=True, cwd=tmp_path,
                         timeout=300)
    assert got.returncode == 0, got.stderr[-2000:]
    saved = jd.load(tmp_path / "out.npz")
    assert saved.schema.feature_names == tuple(cols[:4])
    spec["dataset"] = {"parquet": "d.parquet"}
    with pytest.raises(ValueError, match="names its target column"):
        from jaxdistill._src.io.experiment import Experiment
        Experiment.from_dict(spec)


# ------------------------------------------------------------------------------------------ Dask
@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c, \
            distributed.Client(c) as client:
        yield client


def _offset_rows(n=4000, seed=1):
    rng = np.random.default_rng(seed)
    X = 1e8 + rng.normal(size=(n, 4))                  # columns at 1e8 + N(0, 1)
    Y = (X - 1e8) @ np.array([[1.0], [-2.0], [0.5], [0.0]]) + 1e8 + rng.normal(size=(n, 1))
    return X, Y


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def test_the_statistics_pass_runs_on_a_dask_local_cluster_and_merges_exactly(cluster):
    import dask
    import dask.array as da
    import dask.dataframe as dd
    import pandas as pd
    X, Y = _offset_rows()
    ref = jd.sufficient_statistics(jd.ArraySource(X, Y))
    frame = pd.DataFrame(X, columns=list("abcd")).assign(y=Y[:, 0])
    cuts = [0, 0, 1, 1, 1300, 1301, 2500, 4000]        # empty, one-row and uneven partitions
    ddf = dd.from_delayed([dask.delayed(frame.iloc[a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)],
                          meta=frame.iloc[:0])
    src = jd.DaskSource(ddf, target="y")
    st = jd.sufficient_statistics(src)
    assert st.n == 4000 and st.schema.feature_names == tuple("abcd")
    for k in ("FtF", "FtY", "YtY"):
        assert _rel(getattr(st, k), getattr(ref, k)) < 1e-12, k
    assert _rel(st.standardizer.x_mean, ref.standardizer.x_mean) < 1e-15
    assert _rel(st.standardizer.x_scale, ref.standardizer.x_scale) < 1e-12
    arrays = jd.DaskSource(da.from_array(X, chunks=(900, 2)), da.from_array(Y[:, 0], chunks=1100))
    assert _rel(jd.sufficient_statistics(arrays).FtF, ref.FtF) < 1e-12
    rows = np.array([3999, 0, 1300, 7])
    np.testing.assert_array_equal(src.take(rows)[0], X[rows])


def test_a_feature_map_runs_on_the_dask_workers(cluster):
    import dask.dataframe as dd
    import jax
    import pandas as pd
    X, Y = _offset_rows(1500, seed=2)
    frame = pd.DataFrame(X, columns=list("abcd")).assign(y=Y[:, 0])
    rff = jd.RandomFourierFeatures(jax.random.key(0), 4, 32)
    got = jd.sufficient_statistics(jd.DaskSource(dd.from_pandas(frame, npartitions=4), target="y"), rff)
    ref = jd.sufficient_statistics(jd.ArraySource(X, Y), rff)
    assert got.FtF.shape == (32, 32)
    assert _rel(got.FtF, ref.FtF) < 1e-12 and _rel(got.FtY, ref.FtY) < 1e-12   # float64 on the workers too


def test_a_non_finite_row_on_a_worker_is_named_by_its_partition(cluster):
    import dask.dataframe as dd
    import pandas as pd
    X, Y = _offset_rows(900, seed=3)
    frame = pd.DataFrame(X, columns=list("abcd")).assign(y=Y[:, 0])
    frame.iloc[450, 1] = np.nan
    with pytest.raises(ValueError, match=r"Partition 1 .*first at row 150"):
        jd.sufficient_statistics(jd.DaskSource(dd.from_pandas(frame, npartitions=3, sort=False), target="y"))
    with pytest.raises(ValueError, match=r"no column\(s\) \['z'\]"):
        jd.DaskSource(dd.from_pandas(frame, npartitions=3), features=["a", "z"], target="y")
    raw = dd.from_pandas(frame, npartitions=3)                 # a bare Dask frame would be pulled into memory
    with pytest.raises(ValueError, match=r"DaskSource\(frame, target='y'\)"):
        jd.sufficient_statistics(raw)
    with pytest.raises(ValueError, match="X is a Dask DataFrame: wrap it"):
        jd.distill(raw, raw["y"], m=2, progress=False)


# ------------------------------------------------------------------------------------------ statistics as a file
def test_saved_statistics_round_trip_and_a_tampered_file_is_refused(diabetes, tmp_path):
    X, y, cols = diabetes
    import pandas as pd
    stats = jd.sufficient_statistics(jd.ArraySource(X, y), names=cols)
    stats.save(tmp_path / "s.npz")
    back = jd.SufficientStats.load(tmp_path / "s.npz")
    for k in ("FtF", "FtY", "YtY"):
        np.testing.assert_array_equal(getattr(back, k), getattr(stats, k))
    assert back.n == stats.n and back.schema.feature_names == tuple(cols)
    raw = bytearray((tmp_path / "s.npz").read_bytes())
    i = raw.index(np.asarray(stats.FtF, np.float64).tobytes()[:16])      # a flipped bit: the archive's CRC
    raw[i + 3] ^= 1
    (tmp_path / "t.npz").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="Bad CRC"):
        jd.SufficientStats.load(tmp_path / "t.npz")
    with np.load(tmp_path / "s.npz") as z:                # an edit that rewrites a valid archive: the checksum
        files = {k: z[k] for k in z.files}
    files["FtF"] = files["FtF"].copy()
    files["FtF"][0, 0] *= 1.000001
    np.savez(tmp_path / "e.npz", **files)
    with pytest.raises(ValueError, match="changed after jaxdistill wrote it"):
        jd.SufficientStats.load(tmp_path / "e.npz")
    out = jd.distill_moments(X, y, m=12)
    out.save(tmp_path / "result.npz")
    with pytest.raises(ValueError, match="not saved statistics"):
        jd.SufficientStats.load(tmp_path / "result.npz")
    # the moment set from the file alone fits the same least squares as all rows (scikit-learn, independent)
    from sklearn.linear_model import LinearRegression
    got = jd.distill_moments(back, m=12, key=3)
    full = LinearRegression().fit(pd.DataFrame(X, columns=cols), y)
    small = LinearRegression().fit(got.X, got.Y.ravel(), sample_weight=got.weights)
    np.testing.assert_allclose(small.coef_, full.coef_, rtol=1e-9)
    np.testing.assert_allclose(small.intercept_, full.intercept_, rtol=1e-9)


def test_statistics_with_a_feature_map_reload_and_distil_the_analytic_set(diabetes, tmp_path):
    import jax
    X, y, cols = diabetes
    relu = jd.RandomReLUNet(jax.random.key(1), X.shape[1], 6)
    stats = jd.sufficient_statistics(jd.ArraySource(X, y), relu)
    stats.save(tmp_path / "f.npz")
    back = jd.SufficientStats.load(tmp_path / "f.npz")
    assert type(back.feature_map) is jd.RandomReLUNet
    a = jd.distill_analytic(back, m=1, lam=1.0, feature_map=back.feature_map)
    b = jd.distill_analytic(X, y, m=1, lam=1.0, feature_map=relu)
    np.testing.assert_allclose(a.predict(X[:50]), b.predict(X[:50]), rtol=1e-7, atol=1e-7)
    with pytest.raises(ValueError, match="made with the feature map RandomReLUNet"):
        jd.distill_analytic(back, m=1, lam=1.0)
    with pytest.raises(ValueError, match="distill_analytic"):
        jd.distill_moments(back, m=12)


def test_distill_from_statistics_keeps_every_check_of_the_row_path(diabetes, tmp_path):
    X, y, cols = diabetes
    stats = jd.sufficient_statistics(jd.ArraySource(X, y))
    with pytest.raises(ValueError, match="smaller than the 442 rows"):
        jd.distill(stats, m=442, progress=False)
    with pytest.raises(ValueError, match="pass Y=None"):
        jd.distill(stats, y, m=5, progress=False)
    with pytest.raises(ValueError, match="holds out no rows"):
        jd.distill(stats, m=5, validation=(X, y), progress=False)
    with pytest.raises(ValueError, match="default linear model"):
        jd.distill(stats, m=5, model=jd.LinearModel(init_scale=1.0), progress=False)
    with pytest.raises(ValueError, match="standardize=False"):
        jd.distill_moments(jd.sufficient_statistics(jd.ArraySource(X, y), standardize=False), m=12)
    with pytest.raises(ValueError, match="Pass the targets Y"):
        jd.distill(X, m=5, progress=False)
    Xtr, ytr, Xte, yte = datasets.train_test_split(X, y, 0.2, key=0)
    out = jd.distill(jd.sufficient_statistics(jd.ArraySource(Xtr, ytr)), m=10, steps=300, progress=False)
    assert out.meta.n_train == Xtr.shape[0] and out.meta.lambda_choice["method"] == "gcv"
    report = jd.evaluate(out, Xte, yte, Xtr, ytr, n_subsets=5, coresets=())
    assert report.row("distilled")["r2"] > report.row("subset")["r2"]


def test_a_missing_optional_library_says_how_to_install_it(monkeypatch, tmp_path):
    """pyarrow and dask are optional extras: without them the sources say which extra to install."""
    import sys
    monkeypatch.setitem(sys.modules, "pyarrow", None)             # as if not installed
    monkeypatch.setitem(sys.modules, "pyarrow.dataset", None)
    with pytest.raises(ImportError, match=r'pip install "jaxdistill\[arrow\]"'):
        jd.ParquetSource(tmp_path / "rows.parquet", target="y")
    monkeypatch.setitem(sys.modules, "dask", None)
    with pytest.raises(ImportError, match=r'pip install "jaxdistill\[dask\]"'):
        jd.DaskSource(np.zeros((3, 2)), np.zeros(3))
