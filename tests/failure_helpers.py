"""Helpers of the failure-class tests (issue #25): run the CLI in a new process, and the one-line-error oracle."""

import os
import subprocess
import sys

CLI = [sys.executable, "-m", "jaxdistill.cli"]


def run_cli(args, tmp_path, env=None, timeout=120):
    """Run the CLI in a new process (where the environment or a possible hang matters); return (exit code,
    stderr). A hang fails the test at ``timeout``."""
    res = subprocess.run(CLI + args, cwd=tmp_path, capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})})
    return res.returncode, res.stderr


def one_line_error(code, err):
    """The oracle: exit 2 and one line starting 'jaxdistill: error:', never a traceback."""
    assert code == 2, err
    assert "Traceback" not in err and err.startswith("jaxdistill: error:"), err
