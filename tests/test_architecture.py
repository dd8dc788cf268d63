"""The package's shape: no import cycles between its modules (top-level or deferred imports alike), and no
JAX work at import time, so ``jax.distributed.initialize()`` may follow ``import jaxdistill``."""

import ast
import os
import pathlib
import subprocess
import sys

import jaxdistill

ROOT = pathlib.Path(jaxdistill.__file__).parent


def _module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jaxdistill"):
                target = node.module
                for alias in node.names:          # "from jaxdistill._src.io import checkpoint" names a module
                    if f"{target}.{alias.name}" in modules:
                        deps.add(f"{target}.{alias.name}")
                if target in modules:
                    deps.add(target)
        # a package's __init__ re-exports; a module does not depend on its own package's __init__ for that
        graph[name] = {d for d in deps if d != name and not name.startswith(d + ".")}
    return graph


def _cycles(graph):
    found, state = [], {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def test_no_import_cycles():
    graph = {k: v for k, v in _graph().items() if k != "jaxdistill"}     # the public __init__ imports everything
    cycles = _cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]


def test_import_does_no_jax_work_so_distributed_initialize_can_follow():
    """`import jaxdistill` then `jax.distributed.initialize(...)` (one process, coordinator on loopback)."""
    code = ("import jaxdistill, jax, socket\n"
            "from jax._src import xla_bridge\n"
            "assert not xla_bridge.backends_are_initialized(), 'import jaxdistill started the JAX backend'\n"
            "s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()\n"
            "jax.distributed.initialize(coordinator_address=f'127.0.0.1:{port}', num_processes=1, process_id=0)\n"
            "print(jax.process_count(), jax.device_count())\n")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split()[0] == "1"


def test_every_internal_import_resolves():
    """Deferred imports (inside functions) run only on some paths: check each names something that exists."""
    import importlib
    missing = []
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jaxdistill"):
                mod = importlib.import_module(node.module)
                for alias in node.names:
                    if not hasattr(mod, alias.name):
                        try:
                            importlib.import_module(f"{node.module}.{alias.name}")
                        except ImportError:
                            missing.append(f"{path.relative_to(ROOT)}: from {node.module} import {alias.name}")
    assert not missing, missing
