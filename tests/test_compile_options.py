"""The library's CPU compile options (``jd.set_cpu_compile_options``): results agree with XLA's defaults to
float rounding, a new option set is a new program, and options the user names in ``XLA_FLAGS`` win.

Fresh processes: the suite itself compiles everything with its own ``XLA_FLAGS`` (conftest.py), which by
design override the library's options, so the options are only exercised where ``XLA_FLAGS`` does not name them.
"""

import json
import os
import subprocess
import sys

CHILD = r"""
import json, sys
import jax
import numpy as np
compiles = []
jax.monitoring.register_event_duration_secs_listener(
    lambda e, d, **k: compiles.append(k.get("fun_name")) if e.endswith("backend_compile_duration") else None)
import jaxdistill as jd
from jaxdistill import datasets
X, Y = datasets.load("diabetes")
Xtr, Ytr, Xte, Yte = datasets.train_test_split(X, Y, 0.2, key=0)
out = {}
for label, opts in (("library", jd.set_cpu_compile_options), ("xla", lambda: jd.set_cpu_compile_options(None, None))):
    opts()
    compiles.clear()
    res = jd.distill(Xtr, Ytr, m=8, key=0, steps=40, eval_every=20, progress=False)
    r2 = jd.evaluate(res, Xte, Yte, Xtr, Ytr, key=0, n_inits=4).row("distilled")["r2"] if sys.argv[1] else None
    out[label] = {"x": np.asarray(res.x).tolist(), "r2": r2, "chunk_compiles": compiles.count("jit(_run_chunk)")}
print("RESULT " + json.dumps(out))
"""


def _run(xla_flags: str, evaluate: bool):
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags)
    proc = subprocess.run([sys.executable, "-c", CHILD, "1" if evaluate else ""], capture_output=True, text=True,
                          env=env, timeout=600)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert line, proc.stderr[-3000:]
    return json.loads(line[0][7:])


def test_library_options_agree_with_xla_defaults_and_user_flags_win():
    import numpy as np

    # no user flags: the library's options, then XLA's defaults — each its own compiled chunk program
    out = _run("", evaluate=True)
    lib, xla = out["library"], out["xla"]
    assert lib["chunk_compiles"] == 1 and xla["chunk_compiles"] == 1
    np.testing.assert_allclose(lib["x"], xla["x"], rtol=1e-4, atol=1e-5)
    assert abs(lib["r2"] - xla["r2"]) < 1e-4
    # the user's XLA_FLAGS name both options: changing the library's setting compiles nothing new
    flags = "--xla_cpu_use_fusion_emitters=false --xla_backend_optimization_level=1"
    out = _run(flags, evaluate=False)
    assert out["library"]["chunk_compiles"] == 1 and out["xla"]["chunk_compiles"] == 0
    assert out["library"]["x"] == out["xla"]["x"]


ROUTING = r"""
import json
import jax
import flax.linen as nn
import numpy as np
compiles = []
jax.monitoring.register_event_duration_secs_listener(
    lambda e, d, **k: compiles.append(k.get("fun_name")) if e.endswith("backend_compile_duration") else None)
import jaxdistill as jd
rng = np.random.default_rng(0)
X = rng.normal(size=(200, 3)).astype(np.float32)
Y = X @ np.ones((3, 1), np.float32)
mlp = jd.FlaxModel(nn.Dense(1))                       # flax: not linear in θ as far as the library knows
kw = dict(m=4, key=0, steps=20, eval_every=10, progress=False, T=5)
out = {}
for label, model, setting in (("linear", None, {}), ("linear, other nonlinear options", None, {"nonlinear": None}),
                              ("mlp", mlp, {"nonlinear": None}), ("mlp, library options", mlp, {})):
    jd.set_cpu_compile_options(**setting)
    compiles.clear()
    jd.distill(X, Y, model=model, **kw)
    out[label] = compiles.count("jit(_run_chunk)")
print("RESULT " + json.dumps(out))
"""


def test_programs_of_nonlinear_models_have_their_own_options():
    """The outer loop of a model not linear in θ compiles with the ``nonlinear`` option set: changing that set
    recompiles an MLP's loop and leaves a linear model's compiled loop in use."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
    proc = subprocess.run([sys.executable, "-c", ROUTING], capture_output=True, text=True, env=env, timeout=600)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert line, proc.stderr[-3000:]
    out = json.loads(line[0][7:])
    assert out == {"linear": 1, "linear, other nonlinear options": 0, "mlp": 1, "mlp, library options": 1}
