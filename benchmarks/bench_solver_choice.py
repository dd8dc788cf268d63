"""The default inner solver for linear models, chosen by cost: is the choice the faster one?

    python benchmarks/bench_solver_choice.py     # writes benchmarks/results/solver_choice.{md,json}

For m = p ∈ {30, 100, 300, 1000}, T ∈ {5, 20, 100, 1000} and Q ∈ {1, 8}: one compiled outer step (float32,
θ₀ ~ N(0, I), a batch of 32 rows) with the scan (`UnrolledGD`) and with the fast path (`ExactLinearGD`: doubling
below r = `SPECTRAL_FROM`, one eigendecomposition from there),
timed side by side (median of 3 × 2 calls after a warm-up), and what `default_inner_solver` picks for those
shapes. Both solvers give the same θ_T and meta-gradient to rounding (tests/test_exact_linear_gd.py), so the choice
is about time only. Both steps include the Lemma 2.4 stability bound (an eigvalsh of the m × m Gram matrix),
which is the same for both. Timed with one BLAS thread, as `distill` runs its compiled loop.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _results as results  # noqa: E402
from bench_outer_step import jax_step_timer  # noqa: E402

import jaxdistill as jd  # noqa: E402
from jaxdistill._src import defaults  # noqa: E402
from jaxdistill._src.core.threads import single_blas_thread  # noqa: E402
from jaxdistill._src.inner.exact_linear import SPECTRAL_FROM  # noqa: E402


def main():
    rows = []
    for r in (30, 100, 300, 1000):
        for T in (5, 20, 100, 1000):
            for q in (1, 8):
                with single_blas_thread():            # as distill() runs its compiled loop
                    scan, _ = jax_step_timer(r, r, T, jd.UnrolledGD(), n=2000, q=q, reps=3, inner=2)
                    exact, _ = jax_step_timer(r, r, T, jd.ExactLinearGD(), n=2000, q=q, reps=3, inner=2)
                pick = type(jd.default_inner_solver(jd.LinearModel(), r, r, T, q)).__name__
                picked = scan if pick == "UnrolledGD" else exact
                row = {"m": r, "p": r, "T": T, "Q": q, "scan_ms": 1e3 * scan, "exact_ms": 1e3 * exact,
                       "picked": pick, "picked_over_best": picked / min(scan, exact)}
                rows.append(row)
                print(f"m = p = {r:4d}  T {T:4d}  Q {q}:  scan {row['scan_ms']:8.2f} ms  exact {row['exact_ms']:8.2f}"
                      f" ms  picks {pick:13s} ({row['picked_over_best']:.2f}× the faster)", flush=True)
    env = results.environment("float32")
    ratios = [r["picked_over_best"] for r in rows]
    slow = [r for r in rows if r["picked_over_best"] > 1.25]
    exact_only = [max(r["exact_ms"], 1e-9) / min(r["scan_ms"], r["exact_ms"]) for r in rows]
    lines = ["# Default inner solver for linear models: the cost rule against measurement", "",
             f"`python benchmarks/bench_solver_choice.py` — {env}. One compiled outer step, ms (median), both "
             "solvers side by side; `picked` is `default_inner_solver(LinearModel(), m, p, T, Q)`.", "",
             "| m = p | T | Q | scan ms | fast path ms | faster | picked | picked ÷ faster |",
             "|---:|---:|---:|---:|---:|---|---|---:|"]
    for r in rows:
        faster = "scan" if r["scan_ms"] < r["exact_ms"] else "fast path"
        lines.append(f"| {r['m']} | {r['T']} | {r['Q']} | {r['scan_ms']:.2f} | {r['exact_ms']:.2f} | {faster} | "
                     f"{'scan' if r['picked'] == 'UnrolledGD' else 'fast path'} | {r['picked_over_best']:.2f} |")
    off = ", ".join("m = {m}, T = {T}, Q = {Q}".format(**r) for r in slow) or "none"
    lines += ["", f"- the picked solver's time ÷ the faster one's: median {sorted(ratios)[len(ratios) // 2]:.2f}, "
              f"worst {max(ratios):.2f}; {len(slow)} of {len(rows)} shapes more than 1.25× off ({off}).",
              f"- always taking the fast path (the 0.5 default): worst {max(exact_only):.1f}× the faster.",
              "- the rule: scan when SCAN_FLOP_PENALTY · T · Q · d_out · 2mp < c · r³, r = min(m, p), with "
              f"c = 2⌈log₂ T⌉ for doubling (r < SPECTRAL_FROM = {SPECTRAL_FROM}) and c = SPECTRAL_COST = "
              f"{defaults.SPECTRAL_COST:g} for the eigendecomposition; SCAN_FLOP_PENALTY = "
              f"{defaults.SCAN_FLOP_PENALTY:g} (the scan's thin products are slower per flop than square ones)."]
    results.save("solver_choice", env, rows, lines, scan_flop_penalty=defaults.SCAN_FLOP_PENALTY,
                 spectral_cost=defaults.SPECTRAL_COST, spectral_from=SPECTRAL_FROM,
                 rule="scan if SCAN_FLOP_PENALTY·T·Q·d_out·2mp < c·min(m,p)³, c = 2⌈log2 T⌉ below SPECTRAL_FROM "
                      "else SPECTRAL_COST")


if __name__ == "__main__":
    main()
