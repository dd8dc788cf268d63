"""mkdocs hook: publish the committed benchmark results (markdown tables and PNG figures) and the example
scripts' figures under ``results/`` and ``examples/`` of the site, so pages show them from where the scripts
wrote them (nothing is copied into the repository)."""

from __future__ import annotations

import os

from mkdocs.structure.files import File

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = (("benchmarks", "results", (".png",)), ("examples", "figures", (".png",)))


def on_files(files, config):
    for top, sub, exts in SHARED:
        folder = os.path.join(ROOT, top, sub)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if name.endswith(exts):
                files.append(File(f"{sub}/{name}" if top == "benchmarks" else f"{top}/{sub}/{name}",
                                  src_dir=os.path.join(ROOT, top) if top == "benchmarks" else ROOT,
                                  dest_dir=config["site_dir"], use_directory_urls=config["use_directory_urls"]))
    return files


INCLUDE = __import__("re").compile(r'^--8<-- "(benchmarks/results/[\w.-]+\.md)"\s*$', __import__("re").M)


def _demoted(path: str) -> str:
    """A committed results table, its headings moved two levels down so that it nests under the page's
    own section instead of starting a new page title."""
    import re
    with open(os.path.join(ROOT, path)) as f:
        text = f.read()
    return re.sub(r"^(#{1,4}) ", lambda m: "#" * min(len(m.group(1)) + 2, 6) + " ", text, flags=re.M)


def on_page_markdown(markdown, page, config, files):
    return INCLUDE.sub(lambda m: _demoted(m.group(1)), markdown)
