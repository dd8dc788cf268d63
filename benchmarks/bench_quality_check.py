"""How often the held-out quality check is right (issue #43): its QualityWarning against the test rows' verdict.

Runs `distill` on bundled data sets over a grid of m, step budgets (1 step at a tiny rate gives sets worse than
random rows; hundreds give good ones) and seeds, each with its default 10 % held-out rows, and records the check's
numbers (`out.meta.bilevel.quality`). Then `evaluate` says on the test rows (never seen by the run) whether the
distilled set, trained by its procedure, beat random subsets of m training rows trained to the ridge limit (the
check's comparison).

For rules on the same runs — 0.8's (warn when the held-out loss exceeds the subsets' mean, z = 0) and margins of z
standard errors of the difference over the held-out rows (`meta.bilevel.quality["difference_se"]`; the library's is
`QUALITY_Z`) — the table counts false alarms (a warning where the set beat the subsets on the test rows) and misses
(no warning where it lost). The margin was chosen on these runs: the table shows the neighbours too.

    python benchmarks/bench_quality_check.py          # ~5 min on 2 cores

Results: results/quality_check.{md,json}.
"""

from __future__ import annotations

import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

DATASETS = ("diabetes", "autompg", "fair", "sunspots")
MS = (3, 5, 10, 20)
BUDGETS = ((1, 1e-6), (20, None), (300, None))      # (steps, outer rate: tiny gives a set worse than real rows)
SEEDS = (0, 1, 2, 3)


def main():
    import jaxdistill as jd
    from jaxdistill import datasets
    for n in jd.__all__:
        getattr(jd, n)
    rows, t0 = [], time.perf_counter()
    for name in DATASETS:
        X, Y = datasets.load(name)
        Xtr, Ytr, Xte, Yte = datasets.split(name, X, Y, 0.2, key=0)
        for m in MS:
            for steps, rate in BUDGETS:
                for seed in SEEDS:
                    kw = {} if rate is None else {"lr_x": rate, "lr_y": rate}
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        out = jd.distill(Xtr, Ytr, m=m, key=seed, steps=steps, progress=False, **kw)
                        q = out.meta.bilevel.quality
                        if not q or "note" in q:
                            continue
                        rep = jd.evaluate(out, Xte, Yte, Xtr, Ytr, n_subsets=10, coresets=(), key=seed)
                    test_dist, test_sub = rep.row("distilled")["loss"], rep.row("subset_ridge")["loss"]
                    rows.append({"dataset": name, "m": m, "steps": steps, "seed": seed, **{
                        k: q[k] for k in ("distilled_loss", "subset_mean_loss", "difference_se", "held_out_rows")},
                        "test_distilled_loss": test_dist, "test_subset_loss": test_sub,
                        "old_rule": bool(q["distilled_loss"] > q["subset_mean_loss"]),
                        "new_rule": "warning" in q, "lost_on_test": bool(test_dist > test_sub)})
        print(f"{name}: {len(rows)} runs so far, {time.perf_counter() - t0:.0f} s", flush=True)
    lost = np.array([r["lost_on_test"] for r in rows])
    lines = ["# The held-out quality check against the test rows", "",
             f"{len(rows)} runs: {', '.join(DATASETS)} × m ∈ {list(MS)} × budgets {[b[0] for b in BUDGETS]} steps "
             f"(1 step at outer rate 1e-6: sets worse than real rows) × seeds {list(SEEDS)}, default 10 % held-out "
             "rows. *Lost on test*: the distilled set's test loss (its procedure) above random subsets' trained to the "
             f"ridge limit (the check's comparison). {int(lost.sum())} of {len(rows)} runs lost on the test rows.", "",
             "| rule: warn when held-out loss > subsets' mean + z × SE of the difference | warnings | false alarms "
             "(warned, won on test) | misses (silent, lost on test) |",
             "|---|---:|---:|---:|"]
    summary = {}
    from jaxdistill._src.distiller import QUALITY_Z
    for z in sorted({0.0, 0.5, 1.0, 2.0, QUALITY_Z}):
        fired = np.array([r["distilled_loss"] > r["subset_mean_loss"] + z * r["difference_se"] for r in rows])
        fa, miss = int(np.sum(fired & ~lost)), int(np.sum(~fired & lost))
        summary[f"z={z:g}"] = {"warnings": int(fired.sum()), "false_alarms": fa, "misses": miss}
        label = ("z = 0: 0.8's rule (above the subsets' mean)" if z == 0 else f"z = {z:g}") + \
            (" — the library's" if z == QUALITY_Z else "")
        lines.append(f"| {label} | {int(fired.sum())} | {fa} ({fa / max(1, int((~lost).sum())):.1%} of the "
                     f"{int((~lost).sum())} won) | {miss} ({miss / max(1, int(lost.sum())):.1%} of the "
                     f"{int(lost.sum())} lost) |")
    assert all(r["new_rule"] == (r["distilled_loss"] > r["subset_mean_loss"] + QUALITY_Z * r["difference_se"])
               for r in rows)           # the recorded warnings are the rule above
    seen = [r for r in rows if r["lost_on_test"] and r["distilled_loss"] <= r["subset_mean_loss"]]
    lines += ["", f"Of the {int(lost.sum())} runs that lost on the test rows, {len(seen)} looked at least as good as "
              "the subsets on their held-out rows: no rule on those rows can see them."]
    import _results
    _results.save("quality_check", _results.environment(), rows, lines, summary=summary)


if __name__ == "__main__":
    main()
