"""Where benchmark results go and how they are written: ``results/NAME.json`` (the measured rows and the
machine) and ``results/NAME.md`` (the table), committed with the code."""

from __future__ import annotations

import json
import os
import platform

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def environment(extra: str = "") -> str:
    """The machine and library versions, for the head of a results file."""
    import jax
    return (f"{platform.platform()}, {os.cpu_count()} CPUs, JAX {jax.__version__} ({jax.default_backend()})"
            + (f", {extra}" if extra else ""))


def save(name: str, env: str, rows: list, lines: list[str], **extra) -> None:
    """Write ``results/{name}.json`` ({"environment", "rows", **extra}) and ``results/{name}.md`` (``lines``)."""
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, f"{name}.json"), "w") as f:
        json.dump({"environment": env, "rows": rows, **extra}, f, indent=1)
    with open(os.path.join(OUT, f"{name}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def checkouts(doc: str, repeats: int | None = None):
    """The command line of a benchmark that compares checkouts: (the ``--compare`` paths then this checkout,
    ``--repeats`` or None where the benchmark takes no repeats)."""
    import argparse
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare", nargs="*", default=[], help="other checkouts to measure beside this one")
    if repeats is not None:
        ap.add_argument("--repeats", type=int, default=repeats, help=f"rounds, interleaved (default {repeats})")
    args = ap.parse_args()
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    return [*args.compare, here], getattr(args, "repeats", None)


def commit_of(path: str) -> str:
    """The short commit of the checkout at ``path`` (what a comparison row names)."""
    import subprocess
    return subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()


def load(name: str) -> tuple[list, str]:
    """(rows, environment) of a committed ``results/{name}.json`` — to rewrite its table without measuring."""
    with open(os.path.join(OUT, f"{name}.json")) as f:
        saved = json.load(f)
    return saved["rows"], saved["environment"]
