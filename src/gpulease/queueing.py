"""Locks that serve their waiters first come, first served.

Python's own (threading.RLock, threading.Semaphore) let any waiter win when they are released, often the thread
that released them and asks again at once. Under 32 clients some requests then waited for most of a second while
others went round again. These hand the lock, or the slot, over to the longest waiter directly, so each wait is
about the length of the queue ahead of it.
"""

from __future__ import annotations

import threading
from collections import deque


class FairSemaphore:
    """At most `slots` holders at once; the others queue in order."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("a semaphore needs at least one slot")
        self._mutex = threading.Lock()
        self._free = slots
        self._waiters: deque[threading.Lock] = deque()

    def acquire(self, *, first: bool = False) -> None:
        """Take a slot, waiting for it in order; `first`: ahead of every waiter (one that has waited its turn
        already and must run again)."""
        with self._mutex:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return
            turn = threading.Lock()
            turn.acquire()
            if first:
                self._waiters.appendleft(turn)
            else:
                self._waiters.append(turn)
        turn.acquire()  # released by a holder that handed its slot over (the count stays as it was)

    def try_acquire(self, timeout: float = 0.0) -> bool:
        """Take a slot if one is free and nobody is waiting for one (never ahead of the queue), or, with a
        `timeout`, if one comes to this caller's turn within that many seconds; False otherwise."""
        with self._mutex:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return True
            if timeout <= 0:
                return False
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        if turn.acquire(timeout=timeout):
            return True
        with self._mutex:
            if turn in self._waiters:  # still queued: leave the queue
                self._waiters.remove(turn)
                return False
        turn.acquire()  # handed over while it gave up: it is this caller's (free at once)
        return True

    def release(self) -> None:
        with self._mutex:
            if not self._waiters:
                self._free += 1
                return
            turn = self._waiters.popleft()
        turn.release()

    def __enter__(self) -> FairSemaphore:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


class FairLock:
    """A re-entrant lock (a thread holding it may take it again) handed over in the order it was asked for: a
    one-slot FairSemaphore and the thread holding it."""

    def __init__(self) -> None:
        self._turns = FairSemaphore(1)
        self._owner: int | None = None  # set and cleared by the holder only: another thread never reads its own id
        self._depth = 0

    def acquire(self) -> None:
        me = threading.get_ident()
        if self._owner == me:
            self._depth += 1
            return
        self._turns.acquire()
        self._owner, self._depth = me, 1

    def try_acquire(self, timeout: float = 0.0) -> bool:
        """Take it if it is free and nobody waits for it, or this thread holds it already; with a `timeout`, also
        if it comes to this thread's turn within that many seconds. False otherwise, holding nothing."""
        me = threading.get_ident()
        if self._owner == me:
            self._depth += 1
            return True
        if not self._turns.try_acquire(timeout):
            return False
        self._owner, self._depth = me, 1
        return True

    def release(self) -> None:
        if self._owner != threading.get_ident():
            raise RuntimeError("FairLock released by a thread that does not hold it")
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            self._turns.release()

    def is_owned(self) -> bool:
        """Whether the calling thread holds it."""
        return self._owner == threading.get_ident()

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()
