"""The compiled loop's LAPACK calls, single-threaded: XLA's thread pool and OpenBLAS's own threads fight.

On the CPU, JAX runs `eigh` (the stability bound of Lemma 2.4, every outer step) through LAPACK from SciPy's
OpenBLAS, which starts its own threads while XLA's pool is busy with the step. On 2 cores the step at d = 1000,
m = 100, T = 100, Q = 8 took 4.69 ms with OpenBLAS's default threads and 3.22 ms with one (1.46×; 1.04× at
d = 100; `benchmarks/results/blas_threads.md`). `single_blas_thread()` sets every loaded BLAS to one thread for the
duration of a compiled loop, with `threadpoolctl` (scikit-learn's; a dependency of jaxdistill for this), and restores
them after: the host's own numpy work outside the loop (statistics passes) keeps its threads.
``JAXDISTILL_BLAS_THREADS`` (an integer) overrides the limit; ``0`` leaves the libraries alone.
"""

from __future__ import annotations

import contextlib
import os


def single_blas_thread():
    """A context in which loaded BLAS libraries use one thread (see the module docs); a no-op without threadpoolctl."""
    limit = os.environ.get("JAXDISTILL_BLAS_THREADS", "1")
    try:
        n = int(limit)
    except ValueError:
        raise ValueError(f"JAXDISTILL_BLAS_THREADS must be an integer (0: leave BLAS alone), got {limit!r}.") from None
    if n <= 0:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")
