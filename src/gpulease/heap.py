"""Keeping the garbage collector off the server's big, lasting data.

A full collection walks every object the process holds, with every thread stopped. Once the screening index is
built the server holds about a million objects, and a full collection takes 0.46-0.5 s (114 ms with the imported
code alone): a pause every request in flight waits out. Objects frozen once they are built are left out of every
later collection; they are still freed when nothing refers to them (only a reference cycle among them would stay).

While such a structure is being built, the collector would walk it again and again as it grows: a first screening
in a fresh folder (the lists loaded, the index built) took 10.6-11.5 s with the collector on and 7.4-7.7 s with it
paused, for the same peak memory.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


def freeze() -> None:
    """Collect what is garbage now, then leave everything still alive out of every later collection."""
    gc.collect()
    gc.freeze()


@contextmanager
def collector_paused() -> Iterator[None]:
    """No collection while a large, lasting structure is built (nested and from several threads alike; the collector
    is on again when the last one ends, if it was on before the first). Process-wide: other threads collect nothing
    meanwhile either, so keep it to bulk loads that take seconds, not to requests."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
