"""Noise calibration and privacy accounting for the private release, from Google's ``dp-accounting``.

The release (`release.py`) is one or two Gaussian mechanisms on sums of clipped rows: the augmented second-moment
matrix (sensitivity Δ₁ under adding or removing one row) and, for AdaSSP's regularisation, the smallest eigenvalue of
the centred scatter matrix (sensitivity Δ₂). Each is noised with standard deviation Δᵢ·σ/√wᵢ, the shares wᵢ summing
to 1; σ is the smallest noise multiplier for which their composition is (ε, δ)-DP, found by
``dp_accounting.calibrate_dp_mechanism`` with the privacy-loss-distribution accountant (``PLDAccountant``, whose
Gaussian is the analytic Gaussian mechanism of Balle & Wang, ICML 2018: tight, not the classical
σ = √(2 ln(1.25/δ))/ε bound). Nothing here is hand-written accounting: the one formula in this package's tests,
μ-GDP's δ(ε) (Dong, Roth & Su 2022, Cor. 2.13), is the independent check of this calibration.

``dp-accounting`` is an optional dependency (``pip install 'jaxdistill[privacy]'``); its pins (``attrs<24``,
``dm-tree``, ``mpmath``) are why it is not a core one.
"""

from __future__ import annotations

import functools
import math

#: the neighbouring relation every release here is private under
NEIGHBOURS = "add or remove one row"


def dp_accounting():
    """The ``dp_accounting`` module, or an ImportError that says how to install it."""
    try:
        import dp_accounting as dpa
        from dp_accounting import pld  # noqa: F401 - the accountant used below
    except ImportError:
        raise ImportError("Private releases need Google's dp-accounting for calibrating the noise: "
                          "pip install 'jaxdistill[privacy]' (or pip install dp-accounting).") from None
    return dpa


def accountant_name() -> str:
    """What calibrated the noise, with the library's version (recorded with every private set)."""
    from importlib import metadata
    try:
        version = metadata.version("dp-accounting")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return f"dp-accounting {version} PLDAccountant (add/remove neighbours)"


def _event(dpa, sigma: float, shares: tuple[float, ...]):
    return dpa.ComposedDpEvent([dpa.GaussianDpEvent(sigma / math.sqrt(w)) for w in shares])


@functools.lru_cache(maxsize=256)
def noise_multiplier(epsilon: float, delta: float, shares: tuple[float, ...] = (1.0,)) -> float:
    """The smallest σ such that Gaussian mechanisms of sensitivity 1 and noise σ/√wᵢ (wᵢ = ``shares``, Σwᵢ = 1),
    composed, are (ε, δ)-DP under add/remove-one neighbours. Cached: the same (ε, δ, shares) calibrates once."""
    dpa = dp_accounting()
    sigma = dpa.calibrate_dp_mechanism(dpa.pld.PLDAccountant, lambda s: _event(dpa, s, shares),
                                       float(epsilon), float(delta))
    sigma = float(sigma)
    # calibrate_dp_mechanism searches to a tolerance: keep the side that meets the target
    while epsilon_of(sigma, delta, shares) > epsilon:
        sigma *= 1.0 + 1e-6
    return sigma


def epsilon_of(sigma: float, delta: float, shares: tuple[float, ...] = (1.0,)) -> float:
    """ε at δ of the composed mechanisms of `noise_multiplier` with noise multiplier σ (the accountant's answer)."""
    dpa = dp_accounting()
    acc = dpa.pld.PLDAccountant()
    acc.compose(_event(dpa, float(sigma), shares))
    return float(acc.get_epsilon(float(delta)))
