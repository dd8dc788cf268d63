"""Issue #25, messages that misled: each now names what to change."""

import os
import subprocess
import sys

import numpy as np
import pytest

import jaxdistill as jd
from jaxdistill import datasets


def test_checkpoint_path_that_is_a_device_and_validation_rows_named_as_such():
    X, Y = datasets.load("diabetes")
    with pytest.raises(ValueError, match="device, pipe or socket"):
        jd.distill(X, Y, m=3, steps=5, checkpoint="/dev/null", progress=False)
    Xv = X[:20].copy()
    Xv[5, 1] = np.nan
    with pytest.raises(ValueError, match="the validation X has 1 non-finite value.*row 5"):
        jd.distill(X, Y, m=3, steps=5, validation=(Xv, Y[:20]), progress=False)
    out = jd.distill_analytic(X[:300], Y[:300], m=2, lam=1.0)
    with pytest.raises(ValueError, match="X_train has 300 rows but Y_train has 299"):
        jd.evaluate(out, X[300:], Y[300:], X[:300], Y[:299])


def test_a_float64_checkpoint_resumed_in_float32_says_so(tmp_path):
    """The compute dtype is the first entry of a run's identity: its message names it, not an array."""
    code = ("import jax, numpy as np, jaxdistill as jd\n"
            "from jaxdistill import datasets\n"
            "X, Y = datasets.load('diabetes')\n"
            "try:\n"
            f"    jd.distill(X, Y, m=3, steps=10, eval_every=5, checkpoint={str(tmp_path / 'c.ckpt')!r},\n"
            "               progress=False)\n"
            "except ValueError as e:\n"
            "    print(e)\n")
    X, Y = datasets.load("diabetes")
    jd.distill(X, Y, m=3, steps=10, eval_every=5, checkpoint=tmp_path / "c.ckpt", progress=False)   # float64 here
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "JAX_PLATFORMS": "cpu", "JAX_ENABLE_X64": "0"})
    assert "dtype ('float64' there, 'float32' here)" in res.stdout, res.stdout + res.stderr



@pytest.fixture(scope="module")
def analytic():
    X, Y = datasets.load("diabetes")
    return X, Y, jd.distill_analytic(X[:300], Y[:300], m=2, lam=1.0)


@pytest.mark.parametrize("kwargs,says", [(dict(n_subsets=-1), "n_subsets"), (dict(n_subsets=0), "n_subsets"),
                                         (dict(n_inits=0), "n_inits"), (dict(n_inits=2.5), "n_inits"),
                                         (dict(last_value_column=99), "last_value_column")])
def test_evaluate_arguments_are_checked_before_any_compute(analytic, kwargs, says):
    X, Y, out = analytic
    with pytest.raises(ValueError, match=says):
        jd.evaluate(out, X[300:], Y[300:], X[:300], Y[:300], **kwargs)



def test_kip_with_zero_rows_in_its_distilled_set_trains():
    """0.7 ended this run `nonfinite` (advice: lower lr_x): the NTK's gradient at the 4 zero rows the set started
    from was NaN."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    X[::2] = 0.0
    y = X.sum(1) + 0.1 * rng.normal(size=200)
    out = jd.distill(X, y, m=10, steps=60, eval_every=20, inner_solver=jd.KernelRidge(jd.ReLUNTK()),
                     standardize=False, progress=False)
    assert np.all(X[np.asarray(out.meta.init_rows)] == 0, axis=1).sum() == 4
    assert out.ok and np.all(np.isfinite(out.x)) and out.history.steps == 60
