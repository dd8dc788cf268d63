"""Differentially private releases of sufficient statistics and the distilled sets made from them."""
