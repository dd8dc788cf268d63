"""How the library compiles its programs on the CPU: XLA's classic loop emitters and LLVM at optimisation level 1
for every program, level 0 for tiny programs without loops that a call runs once (key derivations, θ₀ draws).

XLA's CPU compiler spends most of a first result compiling: the outer-loop chunk of a diabetes run compiles in
~0.9 s and runs its 550 steps in ~0.3 s. Two options of XLA's own halve that (``benchmarks/results/
compile_options.md``, side by side on one pinned core): ``xla_cpu_use_fusion_emitters=False`` (the classic
elemental emitters instead of the newer MLIR fusion emitters) and ``xla_backend_optimization_level=1`` (LLVM at
-O1 instead of -O2/-O3). Every program measured compiles 2.2–2.8× faster; the outer step then runs 3–12 % faster
at d ≤ 100 and for a flax MLP, 7–12 % slower at d = 1000 (see the table). Level 0, by contrast, halves compile
time again but makes loops far slower (the linear evaluation's baselines at m = 200, T = 200 ran in 0.2 s at full
optimisation and had not finished after 50 s at level 0), so it is kept for programs without loops.

The options are per program (``jax.jit(..., compiler_options=...)``): nothing global changes for the user's own
programs. They apply only when JAX's default backend is the CPU; on a GPU or TPU the library's programs compile
with XLA's defaults. An option the user sets in ``XLA_FLAGS`` wins over the library's (the test suite, for
one, compiles everything at level 0). `set_cpu_compile_options` (public: ``jd.set_cpu_compile_options``)
changes them for programs compiled afterwards.
"""

from __future__ import annotations

import functools
import os

import jax

#: XLA options of every library program on the CPU (see the module docs)
CPU_OPTIONS = {"xla_cpu_use_fusion_emitters": False, "xla_backend_optimization_level": 1}
#: XLA options of a tiny program without loops that a call runs once (see the module docs)
RUN_ONCE = {"xla_cpu_use_fusion_emitters": False, "xla_backend_optimization_level": 0}

_settings = {"options": CPU_OPTIONS, "run_once": RUN_ONCE}


def set_cpu_compile_options(options: dict | None = CPU_OPTIONS, run_once: dict | None = RUN_ONCE) -> None:
    """Choose the XLA options of jaxdistill's own programs on the CPU, for programs compiled from now on.

    By default every program compiles with XLA's classic loop emitters and LLVM at optimisation level 1
    (``CPU_OPTIONS``), which roughly halves compile time; measured side by side on one core
    (``benchmarks/results/compile_options.md``) the outer step then runs 3–12 % *faster* at d ≤ 100 and for a
    flax MLP, but 7–12 % *slower* at d = 1000. For long runs on wide data, XLA's defaults may pay:

    ```python
    jd.set_cpu_compile_options(None)   # XLA's defaults for every library program compiled from now on
    jd.set_cpu_compile_options()       # back to jaxdistill's
    ```

    Results agree to float rounding either way. Options you set in ``XLA_FLAGS`` always win; GPU and TPU
    programs never get these options; your own ``jax.jit`` programs are untouched.

    Args:
      options: XLA debug options (``{"xla_...": value}``) of every library program, or ``None`` for XLA's
        defaults.
      run_once: those of the tiny loop-free programs a call runs once (key derivations, θ₀ draws); ``None``
        for XLA's defaults. Level 0 halves their compile time; do not use it for programs with loops.
    """
    _settings["options"], _settings["run_once"] = options, run_once


def _options_key(options: dict | None, xla_flags: str) -> tuple | None:
    """``options`` less those the user names in ``XLA_FLAGS`` (theirs apply to every program), as a hashable
    key (None: XLA's defaults)."""
    kept = tuple(sorted((k, v) for k, v in (options or {}).items() if f"--{k}=" not in xla_flags))
    return kept or None


class _Jitted:
    """``jax.jit(fun, **kwargs)`` whose compiler options are chosen per call: the library's CPU options when
    JAX's default backend is the CPU, XLA's defaults otherwise. One ``jax.jit`` object per option set, so
    the usual tracing and compilation caches apply unchanged."""

    def __init__(self, fun, which: str, kwargs: dict):
        self._fun, self._which, self._kwargs, self._jits = fun, which, kwargs, {}
        functools.update_wrapper(self, fun)

    def _jit(self):
        cpu = jax.default_backend() == "cpu"
        key = _options_key(_settings[self._which] if cpu else None, os.environ.get("XLA_FLAGS", ""))
        f = self._jits.get(key)
        if f is None:
            f = self._jits[key] = jax.jit(self._fun, compiler_options=dict(key) if key else None, **self._kwargs)
        return f

    def __call__(self, *args, **kwargs):
        return self._jit()(*args, **kwargs)

    def lower(self, *args, **kwargs):
        return self._jit().lower(*args, **kwargs)

    def _cache_size(self) -> int:
        return sum(f._cache_size() for f in self._jits.values())


def _decorator(which: str, fun, kwargs):
    if fun is None:
        return lambda f: _Jitted(f, which, kwargs)
    return _Jitted(fun, which, kwargs)


def jit(fun=None, **kwargs):
    """``jax.jit`` with the library's CPU options (`CPU_OPTIONS`); usable as ``@jit`` or
    ``@partial(jit, static_argnames=...)``."""
    return _decorator("options", fun, kwargs)


def jit_once(fun=None, **kwargs):
    """``jax.jit`` with `RUN_ONCE`'s options on the CPU, for a tiny program without loops that a call runs once;
    usable as ``@jit_once`` or ``@partial(jit_once, static_argnames=...)``."""
    return _decorator("run_once", fun, kwargs)
