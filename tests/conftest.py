import os

# The tests run many small programs: compiling them dominates the suite, and XLA's backend optimisation
# passes buy nothing at these sizes (3m40s instead of 5m20s on 2 cores, same results). Set before JAX
# starts; subprocesses (the CLI tests) inherit it. Benchmarks and users keep the default.
# XLA's newer CPU fusion emitters compile ~40 % slower here than the classic ones (measured on this suite's
# flax MLP run: 8.3 → 5.0 s for a distillation, 7.8 → 4.5 s for its evaluation; identical results).
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
                           " --xla_cpu_use_fusion_emitters=false").strip()
# Four simulated CPU devices for the sharding tests (tests/test_scaling.py); everything else runs on the
# first, as it would on a one-device machine.
if "xla_force_host_platform_device_count" not in os.environ["XLA_FLAGS"]:
    os.environ["XLA_FLAGS"] += " --xla_force_host_platform_device_count=4"
# JAX's persistent compilation cache, one folder per test session shared by the xdist workers and the
# subprocesses (CLI runs, the two-process test): the same programs are compiled by many tests. A fresh folder
# per session, so that nothing compiled by an earlier run on this machine changes what compiles.
os.environ.setdefault("JAXDISTILL_CACHE", __import__("tempfile").mkdtemp(prefix="jaxdistill-test-xla-"))

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
__import__("jaxdistill").enable_compilation_cache(min_compile_time_s=0.1)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def problem(rng):
    """A small random linear problem: distilled (m=5, d=8) with d_out=1 and a real batch of 12."""
    m, d, b = 5, 8, 12
    Xt = rng.normal(size=(m, d))
    Yt = rng.normal(size=(m, 1))
    theta0 = rng.normal(size=(d, 1))
    XB = rng.normal(size=(b, d))
    YB = XB @ rng.normal(size=(d, 1)) + 0.1 * rng.normal(size=(b, 1))
    return {k: jax.numpy.asarray(v) for k, v in dict(Xt=Xt, Yt=Yt, theta0=theta0, XB=XB, YB=YB).items()}


@pytest.fixture
def run_interrupted(monkeypatch):
    """``run_interrupted(after, fn)``: call ``fn()`` (a checkpointed run) as if Ctrl-C hit right after its
    ``after``-th checkpoint was written; the checkpoint file is then what a killed run leaves."""
    from jaxdistill._src.io import checkpoint as ckpt
    real = ckpt.save_checkpoint

    def run(after, fn):
        calls = {"n": 0}

        def dying(*a, **k):
            real(*a, **k)
            calls["n"] += 1
            if calls["n"] == after:
                raise KeyboardInterrupt

        monkeypatch.setattr(ckpt, "save_checkpoint", dying)
        try:
            with pytest.raises(KeyboardInterrupt):
                fn()
        finally:
            monkeypatch.setattr(ckpt, "save_checkpoint", real)
    return run


@pytest.fixture
def cli_here(tmp_path, monkeypatch, capsys):
    """Run the CLI in this process (seconds faster than a new one) from ``tmp_path``: (exit code, stderr)."""
    from jaxdistill import cli
    monkeypatch.chdir(tmp_path)

    def run(args):
        code = cli.main(args)
        return code, capsys.readouterr().err
    return run
