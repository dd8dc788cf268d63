"""Issue #25, resources: a run that does not fit in memory names what sets its size."""


import jax
import pytest

import jaxdistill as jd
from jaxdistill import datasets


@pytest.mark.parametrize("error", [MemoryError("cannot allocate"),
                                   jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to "
                                                              "allocate 1.00TiB.")])
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
