"""``benchmarks/gpu_suite.py --smoke`` runs end to end on the CPU (the suite is for a GPU machine; this keeps it
runnable): every part produces its rows and the JSON + markdown are written with the device and precision."""

import json
import os
import sys
import warnings

BENCH = os.path.join(os.path.dirname(__file__), "..", "benchmarks")


def test_gpu_suite_smoke(tmp_path):
    sys.path.insert(0, BENCH)
    try:
        import gpu_suite
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)        # constant image borders in mnist5k
            rows = gpu_suite.main(["--smoke", "--out", str(tmp_path)])
    finally:
        sys.path.remove(BENCH)
    assert {r["part"] for r in rows} == {"outer step", "meta-gradient", "sharded run", "quality", "KRR analytic"}
    saved = json.loads((tmp_path / "gpu_suite.json").read_text())
    assert "device" in saved["environment"] and "x64" in saved["environment"] and len(saved["rows"]) == len(rows)
    table = (tmp_path / "gpu_suite.md").read_text()
    assert table.count("| outer step |") == 2 and "SMOKE" in table
    assert all(r["median_s"] > 0 for r in rows if r["part"] in ("outer step", "meta-gradient"))
