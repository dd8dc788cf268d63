"""How the library compiles its programs on the CPU: XLA's classic loop emitters and LLVM at optimisation level 1
for every program but one kind, the fusion emitters at level 1 for the outer loop of a model not linear in θ, and
level 0 for tiny programs without loops that a call runs once (key derivations, θ₀ draws).

XLA's CPU compiler spends most of a first result compiling: with its defaults the outer-loop chunk of a diabetes
run compiled in ~0.9 s and ran its 550 steps in ~0.3 s. Two options of XLA's own halve that (``benchmarks/results/
compile_options.md``, side by side on one pinned core): ``xla_cpu_use_fusion_emitters=False`` (the classic
elemental emitters instead of the newer MLIR fusion emitters) and ``xla_backend_optimization_level=1`` (LLVM at
-O1 instead of -O2/-O3). Every linear program measured compiles about 2× faster and its outer step runs 0–7 %
faster at shapes A–D (the exact fast path's step, 20–27 % slower at d = 1000; see the table). Level 0 halves compile
time again but makes loops far slower (the linear evaluation's baselines at m = 200, T = 200 ran in 0.2 s at full
optimisation and had not finished after 50 s at level 0), so it is kept for programs without loops.

Which of the two emitters is faster depends on the program, measured on one pinned core: programs of models linear
in θ (matmuls and sums) run as fast or faster with the classic emitters at every shape A–D, but a flax MLP's step
(tanh activations) ran 30 % slower with them than with the fusion emitters (12.6 against 8.9 ms at m = 50, T = 50,
Q = 8; the fusion emitters at level 1 also beat XLA's defaults, 10.4 ms, and compile in 3.8 s against their 5.5 s).
``evaluate``'s program for an MLP, by contrast, ran 9 % faster with the classic emitters. So the outer loop
(``jit(..., by_model=True)``), when it takes a model *not* linear in θ (directly or as a problem's ``.model``),
compiles with ``NONLINEAR_OPTIONS`` (the fusion emitters, LLVM at level 1), and every other program with
``CPU_OPTIONS`` (``benchmarks/results/compile_options.md``, all programs under all three option sets).

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

#: XLA options of the outer loop of a model not linear in θ (see the module docs)
NONLINEAR_OPTIONS = {"xla_backend_optimization_level": 1}

_settings = {"options": CPU_OPTIONS, "run_once": RUN_ONCE, "nonlinear": NONLINEAR_OPTIONS}


def set_cpu_compile_options(options: dict | None = CPU_OPTIONS, run_once: dict | None = RUN_ONCE,
                            nonlinear: dict | None = NONLINEAR_OPTIONS) -> None:
    """Choose the XLA options of jaxdistill's own programs on the CPU, for programs compiled from now on.

    By default programs of models linear in θ compile with XLA's classic loop emitters and LLVM at optimisation
    level 1 (``CPU_OPTIONS``), which roughly halves compile time, and the outer loop of other models (a flax MLP)
    with the fusion emitters at level 1 (``NONLINEAR_OPTIONS``), under which their activations run faster; measured
    side by side on one core in ``benchmarks/results/compile_options.md``. For XLA's defaults everywhere:

    ```python
    jd.set_cpu_compile_options(None, None, None)   # XLA's defaults for library programs compiled from now on
    jd.set_cpu_compile_options()                   # back to jaxdistill's
    ```

    Results agree to float rounding either way. Options you set in ``XLA_FLAGS`` always win; GPU and TPU
    programs never get these options; your own ``jax.jit`` programs are untouched.

    Args:
      options: XLA debug options (``{"xla_...": value}``) of every library program, or ``None`` for XLA's
        defaults.
      run_once: those of the tiny loop-free programs a call runs once (key derivations, θ₀ draws); ``None``
        for XLA's defaults. Level 0 halves their compile time; do not use it for programs with loops.
      nonlinear: those of the outer loop of a model not linear in θ (in place of ``options``); ``None`` for
        XLA's defaults.

    Returns:
      None; programs compiled from now on use the options (those compiled already keep theirs).
    """
    _settings["options"], _settings["run_once"], _settings["nonlinear"] = options, run_once, nonlinear


def _options_key(options: dict | None, xla_flags: str) -> tuple | None:
    """``options`` less those the user names in ``XLA_FLAGS`` (theirs apply to every program), as a hashable
    key (None: XLA's defaults)."""
    kept = tuple(sorted((k, v) for k, v in (options or {}).items() if f"--{k}=" not in xla_flags))
    return kept or None


def _nonlinear(args, kwargs) -> bool:
    """Whether a call's arguments hold a model not linear in θ, directly or as a problem's ``.model``."""
    for a in (*args, *kwargs.values()):
        linear = getattr(a, "linear_in_params", None)
        if linear is None:
            linear = getattr(getattr(a, "model", None), "linear_in_params", None)
        if linear is False:
            return True
    return False


class _Jitted:
    """``jax.jit(fun, **kwargs)`` whose compiler options are chosen per call: on the CPU the library's options for
    the program's kind (`NONLINEAR_OPTIONS` for a ``by_model`` program whose arguments hold a model not linear in
    θ), XLA's defaults on other backends. One ``jax.jit`` object per option set, so the usual tracing and
    compilation caches apply unchanged."""

    def __init__(self, fun, which: str, kwargs: dict, by_model: bool = False):
        self._fun, self._which, self._kwargs, self._jits, self._by_model = fun, which, kwargs, {}, by_model
        functools.update_wrapper(self, fun)

    def _jit(self, args, kwargs):
        which = "nonlinear" if self._by_model and _nonlinear(args, kwargs) else self._which
        cpu = jax.default_backend() == "cpu"
        key = _options_key(_settings[which] if cpu else None, os.environ.get("XLA_FLAGS", ""))
        f = self._jits.get(key)
        if f is None:
            f = self._jits[key] = jax.jit(self._fun, compiler_options=dict(key) if key else None, **self._kwargs)
        return f

    def __call__(self, *args, **kwargs):
        return self._jit(args, kwargs)(*args, **kwargs)

    def lower(self, *args, **kwargs):
        return self._jit(args, kwargs).lower(*args, **kwargs)

    def _cache_size(self) -> int:
        return sum(f._cache_size() for f in self._jits.values())


def _decorator(which: str, fun, kwargs, by_model: bool = False):
    if fun is None:
        return lambda f: _Jitted(f, which, kwargs, by_model)
    return _Jitted(fun, which, kwargs, by_model)


def jit(fun=None, *, by_model: bool = False, **kwargs):
    """``jax.jit`` with the library's CPU options (`CPU_OPTIONS`); usable as ``@jit`` or
    ``@partial(jit, static_argnames=...)``. ``by_model``: `NONLINEAR_OPTIONS` for calls whose arguments hold a
    model not linear in θ (the outer loop; see the module docs)."""
    return _decorator("options", fun, kwargs, by_model)


def jit_once(fun=None, **kwargs):
    """``jax.jit`` with `RUN_ONCE`'s options on the CPU, for a tiny program without loops that a call runs once;
    usable as ``@jit_once`` or ``@partial(jit_once, static_argnames=...)``."""
    return _decorator("run_once", fun, kwargs)
