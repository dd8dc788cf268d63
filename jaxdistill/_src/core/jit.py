"""How the library compiles its programs: everything at XLA's full optimisation except tiny programs without loops
that a call runs once (key derivations, θ₀ draws), compiled at backend optimisation level 0.

Level 0 halves the compile time of a program but can make its loops far slower: the linear evaluation's
baselines at m = 200, T = 200 ran in 0.2 s at full optimisation and had not finished after 50 s at level 0, and
a warm-cache evaluate() of an MLP ran 2.3 → 6.7 s. So only programs without loops over data or steps use it. The
option is per program (``jax.jit(..., compiler_options=...)``): nothing global changes for the user's own
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
