"""Counting what JAX compiles, from its own ``jax.monitoring`` events (no counters inside traced code).

`CompileLog` is a context manager: every new program JAX lowers (``jaxpr_to_mlir_module_duration``: a jit
cache miss) and compiles (``backend_compile_duration``; a hit in the persistent cache skips this one) while
it is open is counted, with the seconds spent tracing, lowering and compiling. ``distill`` records its own
in ``result.meta.bilevel.compilations``.
"""

from __future__ import annotations

import threading

import jax

_TRACE = "/jax/core/compile/jaxpr_trace_duration"
_LOWER = "/jax/core/compile/jaxpr_to_mlir_module_duration"
_COMPILE = "/jax/core/compile/backend_compile_duration"
_lock = threading.Lock()
_open: list[CompileLog] = []
_registered = False


def _listener(event: str, duration: float, **_kwargs) -> None:
    if event not in (_TRACE, _LOWER, _COMPILE):
        return
    with _lock:
        logs = list(_open)
    for log in logs:
        if log._thread == threading.get_ident():
            if event == _TRACE:          # also shape inference (eval_shape): not a program by itself
                log.trace_seconds += duration
            elif event == _LOWER:        # a new program (compiled, or read from the persistent cache)
                log.programs += 1
                log.trace_seconds += duration
            else:
                log.compiles += 1
                log.compile_seconds += duration


class CompileLog:
    """Programs lowered and compiled (and the seconds spent) by this thread while the context is open."""

    def __init__(self):
        self.programs = self.compiles = 0
        self.trace_seconds = self.compile_seconds = 0.0
        self._thread = threading.get_ident()

    def __enter__(self) -> CompileLog:
        global _registered
        with _lock:
            if not _registered:
                jax.monitoring.register_event_duration_secs_listener(_listener)
                _registered = True
            self._thread = threading.get_ident()
            _open.append(self)
        return self

    def __exit__(self, *exc) -> None:
        with _lock:
            _open.remove(self)

    def summary(self) -> dict:
        """``programs``: new programs lowered (each jit cache miss); ``backend_compiles``: those XLA compiled (not
        found in the persistent cache); ``seconds``: time spent tracing, lowering and compiling."""
        return {"programs": self.programs, "backend_compiles": self.compiles,
                "seconds": round(self.trace_seconds + self.compile_seconds, 4)}
