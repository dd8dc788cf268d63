"""A dependency-free progress display for long runs, fed from the host between compiled chunks.

On a terminal: one line rewritten in place. Elsewhere (batch jobs, logs): a plain line every
``log_every`` seconds and at the end. Shows the step, the outer *data* loss on the last batch, the
held-out loss, η̃, elapsed time, the current rate (steps/s over the last chunk) and the time left.
"""

from __future__ import annotations

import sys
import time


def _fmt_time(s: float) -> str:
    if s != s or s == float("inf"):
        return "?"
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class ProgressBar:
    """Progress of ``total`` outer steps on ``stream`` (default stderr)."""

    def __init__(self, total: int, width: int = 20, stream=None, log_every: float = 10.0, start_step: int = 0):
        self.total, self.width = total, width
        self.stream = sys.stderr if stream is None else stream
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.log_every = log_every
        self._t0 = time.perf_counter()
        self._last = (self._t0, start_step)
        self._logged = -float("inf")
        self._first = True
        self.stream.write("compiling the outer step… (once per settings and shapes)" + ("" if self.tty else "\n"))
        self.stream.flush()

    def __call__(self, info: dict) -> None:
        now = time.perf_counter()
        t_prev, s_prev = self._last
        rate = (info["step"] - s_prev) / (now - t_prev) if now > t_prev and not self._first else float("nan")
        self._last, self._first = (now, info["step"]), False
        left = (self.total - info["step"]) / rate if rate == rate and rate > 0 else float("nan")
        val = f"  held-out {info['val_loss']:.4g}" if "val_loss" in info else ""
        pace = f", {rate:.0f} steps/s, {_fmt_time(left)} left" if rate == rate and left == left else ""
        text = (f"{info['step']}/{self.total}  data loss {info['loss']:.4g}{val}  η̃ {info['eta']:.3g}  "
                f"{_fmt_time(now - self._t0)} elapsed{pace}")      # no pace until two chunks have run
        if self.tty:
            frac = min(info["step"] / self.total, 1.0)
            fill = int(frac * self.width)
            self.stream.write(f"\r\033[K[{'#' * fill}{'.' * (self.width - fill)}] {text}")
        elif now - self._logged >= self.log_every or info["step"] >= self.total:
            self.stream.write(f"step {text}\n")
            self._logged = now
        self.stream.flush()

    def close(self, summary: str = "") -> None:
        """End the display, with a closing line (e.g. the status) if given."""
        if self.tty:
            self.stream.write("\n")
        if summary:
            self.stream.write(f"{summary} ({_fmt_time(time.perf_counter() - self._t0)})\n")
        self.stream.flush()
