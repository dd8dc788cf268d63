"""The README's tables and the docs' demo snippets are what `jaxdistill demo` prints: every row of both tables,
every number to rounding (the suite compiles with other XLA options than a user's run, so the last digits of the
GD rows may move)."""

import pathlib
import re

import numpy as np

from jaxdistill import cli

ROOT = pathlib.Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[+-]\d+)?")


def _table_rows(text: str) -> dict[str, list[str]]:
    """Markdown table rows by their first cell (header and separator lines left out)."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith(("| method", "| learner")):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def test_the_readme_tables_are_the_demos_output(capsys):
    assert cli.main(["demo", "--no-progress"]) == 0
    printed = _table_rows(capsys.readouterr().out)
    readme = _table_rows((ROOT / "README.md").read_text())
    assert len(readme) >= 16 and set(readme) <= set(printed), sorted(set(readme) - set(printed))
    for snippet in (ROOT / "docs" / "snippets").glob("demo_*.md"):
        rows = _table_rows(snippet.read_text())
        assert rows and all(readme.get(k) == v for k, v in rows.items()), snippet.name   # the same table
    for first, cells in readme.items():
        mine = printed[first]
        assert len(mine) == len(cells), first
        for a, b in zip(cells, mine, strict=True):
            x, y = [float(v) for v in NUMBER.findall(a)], [float(v) for v in NUMBER.findall(b)]
            assert len(x) == len(y) and np.allclose(x, y, rtol=2e-3, atol=2e-3), (first, a, b)
            assert NUMBER.sub("#", a) == NUMBER.sub("#", b), (first, a, b)
