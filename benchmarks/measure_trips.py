"""How far a reader travels: the modules a user's X passes through from ``distill`` to the compiled step, and an
``evaluate`` result from the call to the returned report.

    python benchmarks/measure_trips.py [--compare PATH ...]   # writes results/trips.{md,json}

Method (defined here; the issue that asked for it does not record its own): every Python call into the package's
``_src`` modules is recorded with ``sys.setprofile`` — for ``distill`` from its entry until the outer step
(``BilevelSolver.step``) is first traced, for ``evaluate`` from its entry to its return. A reader follows the
trip function by function, reading each once: every distinct function, at its first call, is a **stop** (a loop
calling one function many times is one stop; comprehensions and lambdas belong to their caller; every public
name is loaded before the trip, so importing is not counted); a stop in a
module already visited, with another module read in between, is a **return**. ``calls`` counts every recorded
call, ``modules`` the distinct modules. Each checkout (``--compare`` paths: other checkouts of the repository,
e.g. ``git worktree add``) is measured in a fresh process on diabetes (``distill(X, Y, m=20, steps=50)``, then
``evaluate`` with the training rows).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import _results  # noqa: E402

PROBE = r'''
import json, os, sys, warnings
warnings.simplefilter("ignore")
import jaxdistill as jd
from jaxdistill import datasets
for name in getattr(jd, "__all__", ()):     # names that load on first use: loaded here, not counted in a trip
    getattr(jd, name)
root = os.path.join(os.path.dirname(jd.__file__), "_src")
X, Y = datasets.load("diabetes")
Xtr, Ytr, Xte, Yte = datasets.train_test_split(X, Y, 0.2, key=0)
trace, state = [], {"on": False, "stop_at": None}

def prof(frame, event, arg):
    if event != "call" or not state["on"]:
        return
    f = frame.f_code.co_filename
    if not f.startswith(root):
        return
    mod = os.path.relpath(f, root)[:-3].replace(os.sep, ".")
    trace.append((mod, frame.f_code.co_name))
    if state["stop_at"] and (mod, frame.f_code.co_name) == state["stop_at"]:
        state["on"] = False

def walk(calls):
    first, read, seen, returns, last, segments = [], set(), set(), 0, None, 0
    for mod, fn in calls:
        if (mod, fn) in read or fn.startswith("<"):        # comprehensions and lambdas are read with their caller
            continue
        read.add((mod, fn))
        first.append(f"{mod}.{fn}")
        returns += mod in seen and mod != last
        segments += mod != last
        seen.add(mod)
        last = mod
    return {"calls": len(calls), "stops": len(first), "returns": returns, "modules": len(seen),
            "segments": segments, "path": first}

sys.setprofile(prof)
state.update(on=True, stop_at=("outer.step", "step"))
out = jd.distill(Xtr, Ytr, m=20, key=0, steps=50, progress=False)
state["on"] = False
distill_trip = walk(trace)
trace.clear()
state.update(on=True, stop_at=None)
jd.evaluate(out, Xte, Yte, Xtr, Ytr)
state["on"] = False
sys.setprofile(None)
print(json.dumps({"distill": distill_trip, "evaluate": walk(trace)}))
'''


def measure(path: str) -> dict:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(path))
    got = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, cwd=path)
    if got.returncode:
        raise RuntimeError(got.stderr[-2000:])
    return {"checkout": os.path.abspath(path), "commit": _results.commit_of(path), **json.loads(got.stdout)}


def main():
    paths, _ = _results.checkouts(__doc__)
    rows = [measure(p) for p in paths]
    lines = ["# Trips through the code", "", f"Machine: {_results.environment()}. Command: "
             "`python benchmarks/measure_trips.py --compare <older checkout>`. Method: see the script's docstring "
             "(module stops along the recorded calls; a return is a stop in a module already visited).", "",
             "| commit | X: distill → compiled step: stops / returns (modules, module segments, calls) | evaluate "
             "result: stops / returns (modules, module segments, calls) |", "|---|---:|---:|"]
    for r in rows:
        d, e = r["distill"], r["evaluate"]
        lines.append(f"| {r['commit']} | {d['stops']} / {d['returns']} ({d['modules']}, {d['segments']}, "
                     f"{d['calls']}) | {e['stops']} / {e['returns']} ({e['modules']}, {e['segments']}, {e['calls']}) |")
    lines += ["", "A module segment is a run of consecutive stops in one module. The issue (#39) gave X 35 / 16 at "
              "0.7 and 59 / 26 when it was filed, an evaluate result 13 / 4 and 32 / 16, without its method. "
              "147e4d1 is 0.7's last commit before the redesign (6.5k lines of package, the issue's 'before'); 7c4b2ac "
              "is the code the issue describes (9.7k lines, `evaluate` 193 lines, `driver.run` 104). Its stops minus "
              "returns equal the "
              "modules visited here in two of the four cases (X at 0.7, the evaluate result at 7c4b2ac), but its "
              "stops are fewer than both the function stops and the module segments of any recorded call sequence, "
              "so it walked more coarsely than calls can be recorded; its targets (≤ 35 / 16, ≤ 15 / 5) cannot be "
              "checked with this method."]
    for r in rows:
        lines += ["", f"Stops of X at {r['commit']}: " + " → ".join(r["distill"]["path"]),
                  "", f"Stops of an evaluate result at {r['commit']}: " + " → ".join(r["evaluate"]["path"])]
    _results.save("trips", _results.environment(), rows, lines)


if __name__ == "__main__":
    main()
