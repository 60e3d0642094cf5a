"""First come, first served: the locks that queue SQLite's writers and a server's units of work."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gpulease.queueing import FairLock, FairSemaphore
from gpulease.runtime import Runtime
from gpulease.settings import Settings


def _queue_up(waiting: Callable[[], int], start: Callable[[int], None], count: int) -> list[threading.Thread]:
    """Start `count` threads one after the other, each queued before the next starts."""
    threads = []
    for i in range(count):
        t = threading.Thread(target=start, args=(i,))
        t.start()
        threads.append(t)
        deadline = time.monotonic() + 5
        while waiting() < i + 1:
            assert time.monotonic() < deadline, "a thread did not queue"
            time.sleep(0.001)
    return threads


def test_slots_go_to_waiters_in_the_order_they_asked() -> None:
    sem = FairSemaphore(2)
    order: list[int] = []
    sem.acquire()
    sem.acquire()  # both slots taken

    def take_and_keep(i: int) -> None:
        sem.acquire()
        order.append(i)

    threads = _queue_up(lambda: len(sem._waiters), take_and_keep, 6)
    for k in range(6):  # one slot freed at a time (a slot is no thread's own): the next in line takes it and keeps it
        sem.release()
        deadline = time.monotonic() + 5
        while len(order) < k + 1:
            assert time.monotonic() < deadline, "no waiter took the slot"
            time.sleep(0.001)
    for t in threads:
        t.join(5)
    assert order == list(range(6))
    sem.release()
    sem.release()
    assert sem._free == 2  # every slot back


def test_a_waiter_asking_first_goes_ahead_of_the_queue() -> None:
    """A unit run again (its placement refused by the store) has waited its turn once: it takes the next slot."""
    sem = FairSemaphore(1)
    order: list[str] = []
    sem.acquire()

    def take(name: str, first: bool) -> None:
        sem.acquire(first=first)
        order.append(name)
        sem.release()

    threads = _queue_up(lambda: len(sem._waiters), lambda i: take(f"queued {i}", False), 3)
    again = threading.Thread(target=take, args=("again", True))
    again.start()
    deadline = time.monotonic() + 5
    while len(sem._waiters) < 4:
        assert time.monotonic() < deadline, "the retry did not queue"
        time.sleep(0.001)
    sem.release()
    for t in [*threads, again]:
        t.join(5)
    assert order == ["again", "queued 0", "queued 1", "queued 2"]


def test_no_more_than_the_slots_at_once() -> None:
    sem = FairSemaphore(3)
    inside, most = 0, 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        for _ in range(50):
            with sem:
                with guard:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.0002)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert most == 3


def test_a_semaphore_needs_a_slot() -> None:
    with pytest.raises(ValueError):
        FairSemaphore(0)


def test_the_lock_goes_to_its_waiters_in_the_order_they_asked() -> None:
    """Threads queued on SQLite's writer get it first come, first served (an RLock let any of them win: under
    32 clients some waited for most of a second while others went round again)."""
    lock = FairLock()
    order: list[int] = []
    lock.acquire()

    def take(i: int) -> None:
        with lock:
            order.append(i)

    threads = _queue_up(lambda: len(lock._turns._waiters), take, 6)
    lock.release()
    for t in threads:
        t.join(5)
    assert order == list(range(6))


def test_the_lock_is_reentrant_and_kept_by_its_holder() -> None:
    lock = FairLock()
    refused: list[BaseException] = []

    def release_elsewhere() -> None:
        try:
            lock.release()
        except RuntimeError as e:
            refused.append(e)

    with lock, lock:  # a transaction inside a transaction of the same thread
        other = threading.Thread(target=release_elsewhere)
        other.start()
        other.join(5)
    assert len(refused) == 1  # another thread cannot release it
    taken = threading.Event()

    def take() -> None:
        with lock:
            taken.set()

    t = threading.Thread(target=take)
    t.start()
    assert taken.wait(5)  # released as many times as taken: free
    t.join(5)


def test_taking_the_lock_now_answers_at_once() -> None:
    """`try_acquire` (a unit run on the event loop, which must not wait) takes the lock when it is free or held by
    the same thread, and otherwise answers False at once; a semaphore's, only while a slot is free."""
    lock = FairLock()

    def elsewhere() -> bool:
        got: list[bool] = []

        def attempt() -> None:
            got.append(lock.try_acquire())
            if got[0]:
                lock.release()

        t = threading.Thread(target=attempt)
        t.start()
        t.join(5)
        return got == [True]

    assert lock.try_acquire() and lock.try_acquire()  # free, then re-entered by its holder
    lock.release()
    assert not elsewhere()  # still held once by this thread
    lock.release()
    assert elsewhere()
    sem = FairSemaphore(2)
    assert sem.try_acquire() and sem.try_acquire()
    assert not sem.try_acquire()
    sem.release()
    assert sem.try_acquire()


def test_a_server_runs_at_most_its_work_slots_at_once_and_a_nested_unit_does_not_wait(tmp_path: Path) -> None:
    rt = Runtime(Settings(data_dir=tmp_path, work_slots=1), supervises_runs=False)
    try:
        entered = threading.Event()
        release = threading.Event()
        second_in = threading.Event()

        def first() -> None:
            # A unit inside a unit of the same thread takes no second slot (it would wait for ever).
            with rt.work(), rt.work():
                entered.set()
                release.wait(5)

        def second() -> None:
            with rt.work():
                second_in.set()

        a = threading.Thread(target=first)
        a.start()
        assert entered.wait(5)
        b = threading.Thread(target=second)
        b.start()
        assert not second_in.wait(0.3)  # the one slot is taken
        release.set()
        assert second_in.wait(5)
        a.join(5)
        b.join(5)
    finally:
        rt.close()
