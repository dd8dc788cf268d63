"""How the library compiles its programs: the outer loop at XLA's full optimisation, programs that a call runs
once at backend optimisation level 0.

A first ``distill()`` or ``evaluate()`` spends most of its time compiling (``benchmarks/results/compile.md``).
Programs run once per call — the evaluation's baselines, the initial state, θ₀ draws, key derivations,
predictions — gain little from LLVM's optimisations and compile about twice as fast without them; the outer
step, the held-out evaluation inside a run and the statistics pass over the data run many times and keep them.
The option is per program (``jax.jit(..., compiler_options=...)``): nothing global changes for the user's own
programs.
"""

from __future__ import annotations

import jax

#: XLA options of a program a call runs once (see the module docs)
RUN_ONCE = {"xla_backend_optimization_level": 0}


def jit_once(fun=None, **kwargs):
    """``jax.jit`` with `RUN_ONCE`'s options, for a program a call runs once; usable as ``@jit_once`` or
    ``@partial(jit_once, static_argnames=...)``."""
    if fun is None:
        return lambda f: jax.jit(f, compiler_options=RUN_ONCE, **kwargs)
    return jax.jit(fun, compiler_options=RUN_ONCE, **kwargs)
