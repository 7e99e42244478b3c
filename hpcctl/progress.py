"""Progress on stderr for the slow steps (planning, policy analysis).

A step's message shows only when the stream is a terminal and the step has run for longer than
`delay` seconds, and is cleared when it ends: piped or captured output never holds it, and fast
steps do not flicker.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

DELAY_S = 1.0
_CLEAR = "\r\033[K"


class Step:
    """One step: shows `message` after `delay` seconds on a terminal, clears it when done."""

    def __init__(self, stream: TextIO, message: str, delay: float = DELAY_S):
        self.stream = stream
        self.message = message
        self.shown = threading.Event()
        self._lock = threading.Lock()
        self._done = False
        self._timer: threading.Timer | None = None
        if _is_terminal(stream):
            self._timer = threading.Timer(delay, self._show)
            self._timer.daemon = True

    def _show(self) -> None:
        with self._lock:
            if self._done:
                return
            self.stream.write(self.message)
            self.stream.flush()
            self.shown.set()

    def start(self) -> None:
        if self._timer is not None:
            self._timer.start()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._done = True
            if self.shown.is_set():
                self.stream.write(_CLEAR)
                self.stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream is not a terminal
        return False


@contextmanager
def step(stream: TextIO, message: str, delay: float = DELAY_S) -> Iterator[Step]:
    current = Step(stream, message, delay)
    current.start()
    try:
        yield current
    finally:
        current.stop()
