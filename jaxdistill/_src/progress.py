"""A dependency-free progress line for long runs, fed from the host between compiled chunks."""

from __future__ import annotations

import sys


class ProgressBar:
    """Prints ``[####....] step/steps loss η̃ val steps/s`` on one line of stderr, updated per chunk."""

    def __init__(self, total: int, width: int = 24, stream=None):
        self.total = total
        self.width = width
        self.stream = sys.stderr if stream is None else stream

    def __call__(self, info: dict) -> None:
        frac = min(info["step"] / self.total, 1.0)
        fill = int(frac * self.width)
        rate = info["step"] / info["elapsed"] if info["elapsed"] > 0 else float("nan")
        val = f" val {info['val_loss']:.4g}" if "val_loss" in info else ""
        line = (f"\r[{'#' * fill}{'.' * (self.width - fill)}] {info['step']}/{self.total} "
                f"loss {info['loss']:.4g} eta {info['eta']:.3g}{val} {rate:.0f} steps/s")
        self.stream.write(line)
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()
