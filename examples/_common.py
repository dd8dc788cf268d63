"""Shared by the examples: small settings under test, and where figures go.

``JAXDISTILL_EXAMPLES_SMALL=1`` (set by the test suite) shrinks every run so that each example finishes in
seconds; ``JAXDISTILL_EXAMPLES_OUT`` redirects the figures (default: ``examples/figures/``, which the docs'
gallery shows)."""

import os

SMALL = os.environ.get("JAXDISTILL_EXAMPLES_SMALL") == "1"
OUT = os.environ.get("JAXDISTILL_EXAMPLES_OUT") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")


def steps(full: int) -> int:
    """The outer-step budget: ``full`` normally, a hundred under test."""
    return min(full, 100) if SMALL else full


def small(full, test):
    """``full`` normally, ``test`` under the test suite (fewer inner steps, draws or rows)."""
    return test if SMALL else full


def figure_path(name: str) -> str:
    os.makedirs(OUT, exist_ok=True)
    return os.path.join(OUT, name)
