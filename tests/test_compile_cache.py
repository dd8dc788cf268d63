"""The persistent compilation cache: opt-in from Python, and a program read from it gives the result a fresh
compilation gives, bit for bit (each case in fresh processes: the cache only matters across processes)."""

import json
import os
import subprocess
import sys

CHILD = r"""
import hashlib, json, sys
import jax
hits = []
jax.monitoring.register_event_listener(lambda e, **k: hits.append(e) if e.endswith("cache_hits") else None)
import jaxdistill as jd
from jaxdistill import datasets
if sys.argv[1] == "on":
    jd.enable_compilation_cache()
X, Y = datasets.load("diabetes")
Xtr, Ytr, Xte, Yte = datasets.train_test_split(X, Y, 0.2, key=0)
out = jd.distill(Xtr, Ytr, m=8, key=0, steps=30, eval_every=10, progress=False)
rep = jd.evaluate(out, Xte, Yte, Xtr, Ytr, key=0, n_inits=4)
digest = hashlib.sha256(jax.device_get(out.x).tobytes() + jax.device_get(out.y).tobytes()).hexdigest()
print("RESULT " + json.dumps({"hits": len(hits), "x": digest, "r2": rep.row("distilled")["r2"]}))
"""


def _run(mode, cache):
    env = dict(os.environ, JAXDISTILL_CACHE=str(cache), JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, env=env, timeout=600)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert line, proc.stderr[-3000:]
    return json.loads(line[0][7:])


def test_cached_programs_give_the_same_result_bit_for_bit_and_the_library_writes_nothing_unasked(tmp_path):
    cache = tmp_path / "xla"
    plain = _run("off", cache)                      # the library alone: no cache folder, nothing on disk
    assert not cache.exists()
    cold = _run("on", cache)                        # fills the folder
    files = sorted(p.name for p in cache.iterdir())
    assert cold["hits"] == 0 and len(files) >= 5, files
    warm = _run("on", cache)                        # a later process reads every program back
    assert warm["hits"] >= len(files), (warm, files)
    assert plain["x"] == cold["x"] == warm["x"]
    assert plain["r2"] == cold["r2"] == warm["r2"]
