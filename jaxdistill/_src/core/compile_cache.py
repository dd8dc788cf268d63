"""JAX's persistent compilation cache, as an explicit opt-in (library code never changes JAX's config
on its own; the CLI turns this on for its runs)."""

from __future__ import annotations

import os


def enable_compilation_cache(path: str | os.PathLike | None = None, min_compile_time_s: float = 0.0) -> str:
    """Cache compiled programs on disk so that a fresh process reuses them (a repeat run skips compiling).

    Args:
      path: cache folder (default ``$JAXDISTILL_CACHE`` or ``~/.cache/jaxdistill/xla``).
      min_compile_time_s: only programs that took at least this long to compile are stored.

    Returns:
      The folder used.
    """
    import jax

    path = os.fspath(path or os.environ.get("JAXDISTILL_CACHE") or
                     os.path.join(os.path.expanduser("~"), ".cache", "jaxdistill", "xla"))
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time_s))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
