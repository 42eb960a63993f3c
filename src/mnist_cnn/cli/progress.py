"""A progress bar for the long commands that are not training, on stderr, on a terminal only.

Training has Keras's own bar. For ``evaluate``, ``predict``, ``compare`` and
``export`` we draw a small line-rewriting bar from the standard library rather
than ``keras.utils.Progbar``, so that every command looks the same whether or
not it starts Keras (``compare`` and ``predict --engine onnx`` never do), and
rather than ``rich`` (installed with Keras), whose live display runs a refresh
thread that would have to share stderr with the log lines.

The library reports progress through a ``Progress`` callback,
``progress(done, total)``; ``total`` is None when the end is not known yet
(pictures read from folders). ``progress_bar`` gives the CLI one.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from typing import TextIO

from mnist_cnn.cli.common import showing

Progress = Callable[[int, "int | None"], None]
BAR_WIDTH = 30  # characters between the brackets
# Redraws at most this often: a terminal over SSH is slow, and the eye needs no more.
REDRAW_SECONDS = 0.1


class ProgressBar:
    """``label [=========>..........] 3/10``, redrawn in place with a carriage return."""

    def __init__(self, label: str, stream: TextIO) -> None:
        self.label = label
        self.stream = stream
        self.drawn = False
        self._last_draw = 0.0

    def __call__(self, done: int, total: int | None) -> None:
        finished = total is not None and done >= total
        now = time.monotonic()
        if not finished and self.drawn and now - self._last_draw < REDRAW_SECONDS:
            return
        self._last_draw = now
        if total:
            filled = min(BAR_WIDTH, BAR_WIDTH * done // total)
            arrow = ">" if filled < BAR_WIDTH else ""
            bar = "=" * filled + arrow + "." * (BAR_WIDTH - filled - len(arrow))
            line = f"{self.label} [{bar}] {done}/{total}"
        else:
            line = f"{self.label} {done}"
        # \r back to the line's start, \033[K clears what a longer line left.
        self.stream.write(f"\r{line}\033[K")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        """Clear the bar's line, so that the answer (and the next prompt) stands alone."""
        if self.drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _ignore(done: int, total: int | None) -> None:
    pass


@contextlib.contextmanager
def progress_bar(label: str, enabled: bool = True) -> Iterator[Progress]:
    """A ``Progress`` callback that draws on stderr when it is a terminal and -q was not given.

    Piped or redirected, or with -q (or not ``enabled``), the callback does
    nothing: a log file wants no carriage returns.
    """
    if not (enabled and sys.stderr.isatty() and showing(logging.INFO)):
        yield _ignore
        return
    bar = ProgressBar(label, sys.stderr)
    try:
        yield bar
    finally:
        bar.close()
