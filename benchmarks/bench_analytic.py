"""A first ``distill_analytic`` call: compiled programs and CPU seconds, beside other checkouts.

    python benchmarks/bench_analytic.py [--compare PATH ...] [--repeats 5]   # writes results/analytic.{md,json}

Each measurement is a fresh process (``import jaxdistill`` excluded from the times): the KRR paper's analytic set on
diabetes (m = 1, λ = 1), then with real rows (m = 5), then with random Fourier features (m = 3, λ = 1, as
``docs/howto/models.md`` uses them). Programs come from ``jax.monitoring`` (``CompileLog``); CPU is the process's
CPU seconds for the call. Medians of ``--repeats`` rounds, checkouts interleaved.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import _results  # noqa: E402

PROBE = r'''
import json, time, warnings
warnings.simplefilter("ignore")
import jax
import jaxdistill as jd
from jaxdistill import datasets
from jaxdistill._src.core.compile_log import CompileLog
X, Y = datasets.load("diabetes")
distill_analytic = jd.distill_analytic      # loaded before the clock (names load on first use)
rff = jd.RandomFourierFeatures(jax.random.PRNGKey(0), 10, 8)
out = {}
for name, kw in (("m=1", dict(m=1, lam=1.0)), ("m=5, real rows", dict(m=5, lam=1.0)),
                 ("m=1, Fourier features", dict(m=1, lam=1.0, feature_map=rff))):
    t = time.process_time()
    with CompileLog() as log:
        distill_analytic(X, Y, **kw)
    out[name] = {"programs": log.summary()["programs"], "cpu_s": time.process_time() - t}
print(json.dumps(out))
'''


def main():
    paths, repeats = _results.checkouts(__doc__, repeats=5)
    runs = {p: [] for p in paths}
    for _ in range(repeats):
        for p in paths:
            got = subprocess.run([sys.executable, "-c", PROBE], env=dict(os.environ, PYTHONPATH=os.path.abspath(p)),
                                 cwd=p, capture_output=True, text=True, check=True)
            runs[p].append(json.loads(got.stdout))
    rows = []
    for p in paths:
        cases = runs[p][0].keys()
        rows.append({"checkout": os.path.abspath(p), "commit": _results.commit_of(p),
                     **{c: {"programs": runs[p][0][c]["programs"],
                            "cpu_s": statistics.median(r[c]["cpu_s"] for r in runs[p])} for c in cases}})
    env = _results.environment()
    cases = [c for c in rows[0] if c not in ("checkout", "commit")]
    lines = ["# A first distill_analytic call", "", f"Machine: {env}. Command: `python benchmarks/bench_analytic.py "
             f"--compare <older checkout>`. Fresh processes, median CPU seconds of {repeats} interleaved rounds; "
             "programs compiled by the call (each case after the ones before it in the same process).", "",
             "| commit | " + " | ".join(f"{c}: programs, CPU s" for c in cases) + " |", "|---|" + "---:|" * len(cases)]
    for r in rows:
        lines.append(f"| {r['commit']} | " + " | ".join(f"{r[c]['programs']}, {r[c]['cpu_s']:.2f}" for c in cases)
                     + " |")
    _results.save("analytic", env, rows, lines)


if __name__ == "__main__":
    main()
