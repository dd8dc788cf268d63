"""Issue #25, paths of the wrong kind and hangs: FIFOs, folders, devices, archives and text given as
arrays, output paths that are files, devices or the command's own inputs — a one-line error before any
compute, never a traceback or a hang (new processes under timeouts where a hang could happen)."""

import json
import os
import pathlib

import numpy as np
import pytest
from failure_helpers import one_line_error, run_cli  # noqa: E402

import jaxdistill as jd
from jaxdistill import datasets

ROOT = pathlib.Path(__file__).resolve().parents[1]


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
    one_line_error(*run_cli([command, str(odd_paths["fifo"])], tmp_path, timeout=60))   # a new process: a hang ends
    one_line_error(*cli_here([command, str(odd_paths["folder"])]))


@pytest.mark.parametrize("kind,says", [("npz as npy", "npz archive"), ("text as npy", "not a readable .npy"),
                                       ("fifo", "named pipe"), ("folder", "folder")])
def test_experiment_data_files_of_the_wrong_kind(odd_paths, tmp_path, cli_here, kind, says):
    np.save(tmp_path / "Y.npy", np.zeros(20))
    exp = {"dataset": {"name": "npy", "x": str(odd_paths[kind]), "y": "Y.npy"}, "config": {"m": 3, "steps": 5}}
    (tmp_path / "e.json").write_text(json.dumps(exp))
    code, err = cli_here(["run", "e.json", "--no-checkpoint", "--out", "o.npz"])
    one_line_error(code, err)
    assert says in err and "allow_pickle" not in err



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
        one_line_error(code, err)
        assert "distilled" not in err      # refused before computing anything
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_exports_and_logs_refuse_links_and_names_too_long_before_anything_is_written(tmp_path):
    """#43: loggers and to_csv wrote through symbolic links (results and checkpoints refuse them), and a name longer
    than the file system allows passed the pre-run check, so a finished run's save and rescue both failed."""
    X = np.random.default_rng(0).normal(size=(40, 3))
    out = jd.distill_moments(X, X @ np.ones(3), m=6)
    target = tmp_path / "elsewhere.csv"
    target.write_text("keep me\n")
    (tmp_path / "link.csv").symlink_to(target)
    with pytest.raises(ValueError, match="symbolic link"):
        out.to_csv(tmp_path / "link.csv")
    with pytest.raises(ValueError, match="symbolic link"):
        jd.MetricsLogger(tmp_path / "link.csv")
    assert target.read_text() == "keep me\n"
    long = tmp_path / ("x" * 300 + ".csv")
    with pytest.raises(ValueError, match="this file system allows 255"):
        out.to_csv(long)
    code, err = run_cli(["run", str(ROOT / "configs" / "diabetes.json"), "--out", "r" * 300 + ".npz"], tmp_path)
    one_line_error(code, err)                          # refused before the run, not after it
    assert "Choose a shorter name" in err


def test_archives_and_sources_say_what_they_are(tmp_path):
    """#43: a 3 MB zip bomb was decompressed in full before any check; an .npz with a pickled member was called 'not
    an .npz archive'; NpySource on a named pipe hung."""
    import zipfile
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.npy", b"\0" * (200 << 20))                  # 200 MB of zeros in a small file
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(ValueError, match="refusing to decompress"):
        jd.load(bomb)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"an \.npz archive but .* object \(pickled\) array"):
        jd.load(pickled)
    fifo = tmp_path / "x.npy"
    os.mkfifo(fifo)
    np.save(tmp_path / "y.npy", np.zeros(3))
    with pytest.raises(ValueError, match="not a regular file"):
        jd.NpySource(fifo, tmp_path / "y.npy")
