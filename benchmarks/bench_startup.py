"""Start-up: ``import jaxdistill`` and ``jaxdistill --help`` in fresh processes, beside other checkouts.

    python benchmarks/bench_startup.py [--compare PATH ...] [--repeats 7]   # writes results/startup.{md,json}

Each measurement is a new Python process (wall seconds, median of ``--repeats``, the checkouts interleaved round by
round so that the machine's load falls on all of them alike). ``import`` is ``python -c "import jaxdistill"``;
``--help`` is ``python -m jaxdistill.cli --help``; ``first name`` is ``import jaxdistill; jaxdistill.distill`` (what a
script pays before its first call: JAX itself).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import _results  # noqa: E402

PROBES = {"import": "import jaxdistill", "first name": "import jaxdistill; jaxdistill.distill"}


def _once(path: str, what: str) -> float:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(path))
    cmd = [sys.executable, "-m", "jaxdistill.cli", "--help"] if what == "--help" else [sys.executable, "-c",
                                                                                        PROBES[what]]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=path, check=True, capture_output=True)
    return time.perf_counter() - t0


def main():
    paths, repeats = _results.checkouts(__doc__, repeats=7)
    whats = ("import", "--help", "first name")
    times = {(p, w): [] for p in paths for w in whats}
    for _ in range(repeats):
        for p in paths:
            for w in whats:
                times[p, w].append(_once(p, w))
    rows = []
    for p in paths:
        rows.append({"checkout": os.path.abspath(p), "commit": _results.commit_of(p),
                     **{w: statistics.median(times[p, w]) for w in whats},
                     "all": {w: times[p, w] for w in whats}})
    env = _results.environment()
    lines = ["# Start-up", "", f"Machine: {env}. Command: `python benchmarks/bench_startup.py --compare <older "
             f"checkout>`. Wall seconds of a fresh process, median of {repeats} interleaved rounds.", "",
             "| commit | `import jaxdistill` | `jaxdistill --help` | import + first name (`jd.distill`) |",
             "|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['commit']} | {r['import']:.2f} | {r['--help']:.2f} | {r['first name']:.2f} |")
    _results.save("startup", env, rows, lines)


if __name__ == "__main__":
    main()
