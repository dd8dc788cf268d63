"""Analytic distilled sets (no optimisation)."""
