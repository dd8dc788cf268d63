"""Every `jaxdistill …` command the docs show runs as shown, in page order, in a fresh folder holding the project's
`configs/` (what a reader of a clone has), and exits 0.

Commands are taken from the ```bash blocks of the docs pages and from inline code that starts with
`jaxdistill ` (placeholders in capitals, such as EXPERIMENT, RUN or COMMAND, and a bare `jaxdistill run` naming the
command in prose are not commands and are skipped). `jaxdistill demo` is run by tests/test_readme.py, which also
checks its numbers."""

from __future__ import annotations

import pathlib
import re
import shlex
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = sorted(p for p in (ROOT / "docs").rglob("*.md") if "snippets" not in p.parts)


def commands(page: pathlib.Path) -> list[str]:
    """The page's jaxdistill commands, in the order they appear."""
    text = page.read_text()
    found = []
    for block in re.finditer(r"```bash\n(.*?)```|`(jaxdistill [^`]+)`", text, re.S):
        lines = block[1].splitlines() if block[1] is not None else [block[2]]
        for line in lines:
            line = line.split(" #")[0].strip()
            words = line.split()
            if words[:1] == ["jaxdistill"] and len(words) > 1 + (words[1] in ("run", "plot", "evaluate", "sweep")) \
                    and not re.search(r"\b[A-Z]{3,}\b", line) and "demo" not in line:
                found.append(line)
    return found


CASES = [(p, commands(p)) for p in PAGES if commands(p)]


def test_the_docs_show_commands_and_this_test_finds_them():
    shown = {p.name: c for p, c in CASES}
    assert "cli.md" in shown and any("--seed 1" in c for c in shown["cli.md"])
    assert any(c.startswith("jaxdistill sweep configs/diabetes.json") for c in shown["cli.md"])


@pytest.mark.parametrize("page, cmds", CASES, ids=[p.name for p, _ in CASES])
def test_every_documented_command_runs_as_shown(page, cmds, tmp_path):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    for cmd in cmds:
        argv = [sys.executable, "-m", "jaxdistill.cli", *shlex.split(cmd)[1:]]
        got = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert got.returncode == 0, f"{page.name}: `{cmd}` exited {got.returncode}\n{got.stderr[-2000:]}"
