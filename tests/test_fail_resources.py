"""Issue #25, resources: a run that does not fit in memory names what sets its size."""


import json
import os

import jax
import numpy as np
import pytest

import jaxdistill as jd
from jaxdistill import datasets


@pytest.mark.parametrize("error", [MemoryError("cannot allocate"),
                                   jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to "
                                                              "allocate 1.00TiB."),
                                   # under `ulimit -v`, a library loaded lazily (LAPACK through SciPy) cannot map
                                   # its code: seen at 1.6 GiB on this machine, a traceback from inside an import
                                   ImportError("libgfortran.so.5: failed to map segment from shared object")])
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


def test_logging_and_progress_never_take_a_run_with_them(tmp_path):
    """#43: a full disk under a MetricsLogger (a real one: the file-size limit of the process), or a progress stream
    that is closed mid-run, used to end the run; now each warns once and the run finishes."""
    import subprocess
    import sys
    import textwrap
    code = textwrap.dedent("""
        import resource, signal, warnings
        import numpy as np
        import jaxdistill as jd
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)          # writes past the limit fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (150, 150))   # a disk that fills after 150 bytes
        X = np.random.default_rng(0).normal(size=(80, 3))
        Y = X @ np.ones((3, 1)) + np.random.default_rng(1).normal(size=(80, 1))
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            out = jd.distill(X, Y, m=5, steps=200, eval_every=10, progress=False,
                             callbacks=[jd.MetricsLogger("metrics.csv")])
        print(out.ok, out.meta.bilevel.steps_run, sum("MetricsLogger failed" in str(w.message) for w in seen))
    """)
    env = {k: v for k, v in os.environ.items() if k != "JAXDISTILL_CACHE"}
    got = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env,
                         timeout=300)
    assert got.returncode == 0, got.stderr[-2000:]
    ok, steps, warned = got.stdout.split()
    assert ok == "True" and int(steps) > 10 and warned == "1"
    assert (tmp_path / "metrics.csv").stat().st_size <= 150

    import io
    stream = io.StringIO()
    X = np.random.default_rng(0).normal(size=(80, 3))
    Y = X @ np.ones((3, 1)) + np.random.default_rng(1).normal(size=(80, 1))

    class CloseAt(jd.Callback):
        def on_evaluation(self, run):
            if run.step >= 20:
                stream.close()                                   # the terminal went away
    with pytest.warns(RuntimeWarning, match="ProgressCallback failed"):
        out = jd.distill(X, Y, m=5, steps=60, eval_every=10, progress=False,
                         callbacks=[CloseAt(), jd.ProgressCallback(stream, log_every=0.0)])
    assert out.ok and out.meta.bilevel.steps_run == 60


def test_a_torn_jsonl_log_does_not_block_resume(tmp_path):
    X = np.random.default_rng(0).normal(size=(80, 3))
    Y = X @ np.ones((3, 1)) + np.random.default_rng(1).normal(size=(80, 1))
    log, ckpt = tmp_path / "m.jsonl", tmp_path / "run.ckpt"
    kw = dict(m=5, eval_every=10, progress=False, checkpoint=ckpt)
    jd.distill(X, Y, steps=30, callbacks=[jd.MetricsLogger(log)], **kw)
    with open(log, "a") as f:
        f.write('{"step": 40, "lo')                             # killed while writing a line
    out = jd.distill(X, Y, steps=60, callbacks=[jd.MetricsLogger(log)], **kw)
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert out.meta.bilevel.steps_run == 60 and steps == sorted(set(steps)) and steps[-1] == 60


def test_synthetic_data_too_large_for_memory_is_refused_before_jax_aborts():
    """#43: `jaxdistill run` on a synthetic set larger than memory ended with signal 6 (JAX's allocator aborts) or a
    RESOURCE_EXHAUSTED traceback; the size is now checked against the available memory first: one line, exit 2."""
    import subprocess
    import sys
    got = subprocess.run([sys.executable, "-m", "jaxdistill.cli", "run", "configs/diabetes.json", "--set",
                          "dataset.name=synthetic", "--set", "dataset.n=1000000000", "--no-progress",
                          "--no-checkpoint"], capture_output=True, text=True, timeout=120,
                         cwd=os.path.join(os.path.dirname(__file__), ".."))
    assert got.returncode == 2, got.stderr[-1500:]
    assert "Traceback" not in got.stderr
    assert "synthetic data of 1,000,000,000 × 100 needs about" in got.stderr and "Lower n or d" in got.stderr


TRUNCATE = r"""
import os, sys, numpy as np, jaxdistill as jd
path = sys.argv[1]
rng = np.random.default_rng(0)
X = np.lib.format.open_memmap(path + "X.npy", mode="w+", dtype=np.float32, shape=(20000, 8))
X[:] = rng.normal(size=X.shape)
Y = (X[:, :1] * 2.0).astype(np.float32)
np.save(path + "Y.npy", Y)
X.flush(); del X
Xm = np.load(path + "X.npy", mmap_mode="r")

class Truncate(jd.Callback):
    def on_evaluation(self, view):
        with open(path + "X.npy", "r+b") as f:    # another program shortens the file mid-run
            f.truncate(4096)
        return False

try:
    jd.distill(Xm, np.load(path + "Y.npy"), m=5, steps=200, eval_every=50, batch_size=256, objective="batch",
               progress=False, callbacks=[Truncate()])
except ValueError as e:
    print("ValueError:", e)
"""


def test_a_memory_map_truncated_mid_run_is_an_error_not_sigbus(tmp_path):
    """#43: a memory-mapped input truncated during a run killed the process with SIGBUS; the file behind a map is
    checked before each chunk's gathers, so the run ends with a message saying what happened and what to do."""
    import subprocess
    import sys
    got = subprocess.run([sys.executable, "-c", TRUNCATE, str(tmp_path) + "/"], capture_output=True, text=True,
                         timeout=300)
    assert got.returncode == 0, (got.returncode, got.stderr[-1500:])      # -7 is SIGBUS
    assert "ValueError:" in got.stdout and "was truncated while being read" in got.stdout, got.stdout[-800:]
