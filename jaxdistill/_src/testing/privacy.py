"""A test-only switch for the private release: scale (or switch off) its calibrated noise, so that an audit can show
it finds the leak of an under-calibrated release (its negative control). Never use it for data you share."""

from __future__ import annotations

import contextlib

from jaxdistill._src.privacy import release


@contextlib.contextmanager
def noise_scale(factor: float):
    """Within the block, releases use ``factor`` × their calibrated noise (0: none). Their guarantee then says
    ``NOT PRIVATE``. For tests of audits only.

    Args:
      factor: the multiple of the calibrated noise standard deviation (0 switches the noise off).

    Examples:
      >>> import jaxdistill as jd
      >>> from jaxdistill import datasets
      >>> from jaxdistill.testing import noise_scale
      >>> X, Y = datasets.load("diabetes")
      >>> with noise_scale(0.0):
      ...     rel = jd.private_statistics(X, Y, x_range=(-1, 1), y_range=(0, 500), epsilon=1.0, delta=1e-6)
      >>> rel.n, "NOT PRIVATE" in rel.guarantee
      (442.0, True)
    """
    old = release._TEST_NOISE_SCALE
    release._TEST_NOISE_SCALE = float(factor)
    try:
        yield
    finally:
        release._TEST_NOISE_SCALE = old
