"""The documentation cannot rot: every ```python block of the README and the docs pages runs, every example
script runs on small settings, every public name has an API-reference entry, and the docstring examples pass.

A page's blocks run in order, as a reader copies them, in a fresh interpreter with no hidden prelude (every name
a page uses, it defines or imports itself), in a fresh folder holding the data files the pages name as the
reader's own: ``my_data.csv`` (the diabetes table with its target named ``price``), ``X.npy`` and ``Y.npy``. A
block that cannot run here (several hosts, a GPU) is marked ``<!-- no-test: reason -->`` on the line above it
and must give the reason.
"""

from __future__ import annotations

import doctest
import enum
import importlib
import inspect
import pathlib
import re
import sys
import warnings

import numpy as np
import pytest

import jaxdistill as jd

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = ["README.md"] + sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md")
                               if "snippets" not in p.parts)
BLOCK = re.compile(r"(?:<!--\s*no-test:(?P<why>[^>]*)-->\s*\n)?```python[^\n]*\n(?P<code>.*?)```", re.S)
#: runs a page's blocks (JSON list on stdin) in order in one namespace of a fresh interpreter
RUNNER = """
import json, sys, warnings
warnings.simplefilter("ignore")                  # pages show results; warnings are tested elsewhere
namespace = {"__name__": "__docs__"}
for i, code in json.load(sys.stdin):
    try:
        exec(compile(code, f"block {i}", "exec"), namespace)
    except Exception as e:
        print(f"python block {i} fails: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
"""
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))


def blocks(page: str) -> list[tuple[str | None, str]]:
    """(reason it is not run or None, code) of every python block of a page; snippet includes are skipped
    (they include files tested on their own: the examples)."""
    text = (ROOT / page).read_text()
    return [(m["why"], m["code"]) for m in BLOCK.finditer(text) if not m["code"].lstrip().startswith("--8<--")]


def test_the_pages_have_code_and_every_skip_gives_its_reason():
    counted = {page: blocks(page) for page in PAGES}
    assert sum(len(b) for b in counted.values()) >= 15
    for page, bs in counted.items():
        for why, code in bs:
            assert why is None or len(why.strip()) > 10, f"{page}: a no-test block must say why: {code[:60]!r}"


@pytest.fixture
def page_folder(tmp_path, monkeypatch):
    from sklearn.datasets import load_diabetes
    frame = load_diabetes(as_frame=True).frame.rename(columns={"target": "price"})
    frame.to_csv(tmp_path / "my_data.csv", index=False)
    np.save(tmp_path / "X.npy", frame.drop(columns="price").to_numpy())
    np.save(tmp_path / "Y.npy", frame[["price"]].to_numpy())
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("page", [p for p in PAGES if any(why is None for why, _ in blocks(p))])
def test_every_code_block_of_the_page_runs_as_copied(page, page_folder):
    """In a fresh interpreter (the default float32 of a user's session, not the suite's float64), no prelude."""
    import json
    import os
    import subprocess
    todo = [(i + 1, code) for i, (why, code) in enumerate(blocks(page)) if why is None]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(ROOT)
    got = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(todo), capture_output=True, text=True,
                         cwd=page_folder, env=env, timeout=600)
    assert got.returncode == 0, f"{page}: {got.stderr[-3000:]}"


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_runs_on_small_settings(name, tmp_path, monkeypatch, capsys):
    """Run in this process (as ``python examples/NAME.py`` would, from its folder): a fresh interpreter per
    example would add JAX's and matplotlib's start-up to each."""
    import runpy
    monkeypatch.setenv("JAXDISTILL_EXAMPLES_SMALL", "1")
    monkeypatch.setenv("JAXDISTILL_EXAMPLES_OUT", str(tmp_path))
    monkeypatch.chdir(ROOT / "examples")
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    monkeypatch.delitem(sys.modules, "_common", raising=False)       # re-read the settings above
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runpy.run_path(str(ROOT / "examples" / f"{name}.py"), run_name="__main__")
    import matplotlib.pyplot as plt
    from figure_helpers import figure_problems
    problems = [p for num in plt.get_fignums() for p in figure_problems(plt.figure(num))]
    plt.close("all")
    assert problems == [], problems                  # readable ticks, short legends (tests/test_figures.py)
    assert capsys.readouterr().out.strip(), "every example prints its result"
    assert (tmp_path / f"{name}.png").exists(), "every example writes the figure the gallery shows"
    gallery = (ROOT / "docs" / "examples.md").read_text()
    assert f'--8<-- "examples/{name}.py"' in gallery and f"examples/figures/{name}.png" in gallery


def _public_names() -> set[str]:
    """Every public name: jaxdistill's own (not its re-exported modules) and those of its public modules
    (functions and classes defined in jaxdistill, and upper-case constants)."""
    top = {n: getattr(jd, n) for n in jd.__all__}           # the names load on first use (PEP 562)
    names = {f"jaxdistill.{n}" for n, v in top.items() if not n.startswith("_") and not inspect.ismodule(v)}
    for module in ("datasets", "coresets", "sklearn", "plots", "analysis", "testing"):
        mod = importlib.import_module(f"jaxdistill.{module}")
        for n, v in vars(mod).items():
            ours = (inspect.isfunction(v) or inspect.isclass(v)) and v.__module__.startswith("jaxdistill")
            reexport = getattr(jd, n, None) is v                 # documented under its top-level name
            if not n.startswith("_") and not reexport and (ours or (n.isupper() and not inspect.ismodule(v))):
                names.add(f"jaxdistill.{module}.{n}")
    return names


def test_the_api_reference_states_how_many_public_names_there_are():
    names = _public_names()
    oracles = {n for n in names if n.startswith("jaxdistill.testing.")}
    page = (ROOT / "docs" / "reference" / "api.md").read_text()
    assert f"**{len(names) - len(oracles)} public names** in this reference, besides the {len(oracles)} test oracles" \
        in page


def test_every_public_name_has_an_api_reference_entry():
    """The reference is split by concept (docs/reference/*.md); every public name has an entry on one page, once."""
    entries = [e for page in sorted((ROOT / "docs" / "reference").glob("*.md"))
               for e in re.findall(r"^::: ([\w.]+)", page.read_text(), re.M)]
    missing = sorted(_public_names() - set(entries))
    assert not missing, f"add these to a page of docs/reference/: {missing}"
    assert len(entries) == len(set(entries)), "a name documented on two pages"


def _undocumented_arguments(obj) -> list[str]:
    """Parameters of ``obj`` not named in its docstring's Args (or, for a record, Attributes) section."""
    doc = inspect.getdoc(obj) or ""
    if inspect.isclass(obj) and issubclass(obj, enum.Enum):
        return [] if "Attributes:" in doc else ["its members (an Attributes section)"]
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return []
    section = "".join(doc.split(head, 1)[1] for head in ("Args:", "Attributes:") if head in doc)
    missing = [name for name, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               and name != "self" and not re.search(rf"\b{re.escape(name)}\b", section)]
    args = re.split(r"^\S", doc.split("Args:", 1)[1], flags=re.M)[0] if "Args:" in doc else ""
    entries = re.findall(r"^  (\S[^:]*):", args, re.M)        # one entry per parameter (griffe warns otherwise)
    explicit = not any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params.values())
    return missing + [f"Args entry {e!r} (not one parameter)" for e in entries if explicit and e not in params]


def test_every_public_name_documents_its_arguments_and_what_it_returns():
    """Every public function and class (the test oracles of jaxdistill.testing aside, as in the count) names each of
    its parameters in an Args (or Attributes) section, and every function says what it returns."""
    problems = {}
    for full in sorted(_public_names()):
        if full.startswith("jaxdistill.testing."):
            continue
        *mod, name = full.split(".")
        obj = getattr(importlib.import_module(".".join(mod)), name)
        if not callable(obj):
            continue
        missing = _undocumented_arguments(obj)
        if not inspect.isclass(obj) and "Returns:" not in (inspect.getdoc(obj) or ""):
            missing.append("a Returns section")
        if missing:
            problems[full] = missing
    assert not problems, f"document these in the docstrings: {problems}"


def _entry_points():
    return [jd.distill, jd.distill_analytic, jd.distill_moments, jd.evaluate, jd.Distiller, jd.DistillConfig,
            jd.DistillOutput, jd.load, jd.choose_ridge, jd.error_vs_m, jd.sufficient_statistics,
            jd.private_statistics, jd.PrivateStatistics, jd.distill_private, jd.ParquetSource, jd.DaskSource,
            jd.SufficientStats, jd.RunInfo,
            importlib.import_module("jaxdistill.datasets").load,
            importlib.import_module("jaxdistill.sklearn").DistillRegressor]


@pytest.mark.parametrize("obj", _entry_points(), ids=lambda o: o.__name__)
def test_entry_points_document_args_returns_and_a_runnable_example(obj, tmp_path, monkeypatch):
    doc = inspect.getdoc(obj) or ""
    assert ("Args:" in doc or "Attributes:" in doc) and ("Returns:" in doc or inspect.isclass(obj)), obj.__name__
    assert ">>>" in doc and ("References:" in doc or "Raises:" in doc or inspect.isclass(obj)), obj.__name__
    monkeypatch.chdir(tmp_path)
    finder, runner = doctest.DocTestFinder(recurse=False), doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for test in finder.find(obj, obj.__name__, globs={"jd": jd, "np": np}):
            runner.run(test)
    assert runner.failures == 0 and runner.tries > 0


def test_ci_runs_exactly_the_readme_test_command_and_the_readme_stays_short():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    assert len(commands) >= 2 and "jaxdistill demo" in commands[0] and "pytest" in commands[1]
    assert commands[1] in (ROOT / ".ci" / "run").read_text().splitlines()
    assert "mkdocs build --strict" in commands[1]
    assert len(readme.splitlines()) <= 150
    for name in ("LICENSE", "CHANGELOG.md", "CITATION.cff", "jaxdistill/py.typed"):
        assert (ROOT / name).is_file(), name
