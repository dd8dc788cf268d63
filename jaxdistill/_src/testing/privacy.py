"""A test-only switch for the private release: scale (or switch off) its calibrated noise, so that an audit can show
it finds the leak of an under-calibrated release (its negative control). Never use it for data you share."""

from __future__ import annotations

import contextlib

from jaxdistill._src.privacy import release


@contextlib.contextmanager
def noise_scale(factor: float):
    """Within the block, releases use ``factor`` × their calibrated noise (0: none). Their guarantee then says
    ``NOT PRIVATE``. For tests of audits only."""
    old = release._TEST_NOISE_SCALE
    release._TEST_NOISE_SCALE = float(factor)
    try:
        yield
    finally:
        release._TEST_NOISE_SCALE = old
