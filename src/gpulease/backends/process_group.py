"""Process groups: how a run and everything it forks are stopped together.

Every run is started as the leader of its own session and process group, so one signal to the group
reaches its children and grandchildren too. Liveness is read from /proc, where zombies (exited but not
yet reaped) are not counted: a zombie holds no GPU memory and cannot be killed any further.
A process that calls setsid() itself leaves the group; catching that needs cgroups (see docs/ray.md), or,
for the local backend's sandboxed runs, a PID namespace: every process of a sandbox is found by its
namespace, and when the namespace's first process dies the kernel kills the rest.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

_PROC = Path("/proc")


def _stat_fields(pid: int) -> tuple[str, int] | None:
    """(state, pgrp) of a process, or None when it is gone."""
    try:
        raw = (_PROC / str(pid) / "stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    rest = raw[raw.rindex(b")") + 2 :].split()
    return rest[0].decode(), int(rest[2])


def process_start_ticks(pid: int) -> int | None:
    """When the process started (clock ticks since boot), to tell a pid from a later reuse of it."""
    try:
        raw = (_PROC / str(pid) / "stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    try:
        return int(raw.rsplit(b")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def process_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    if _PROC.is_dir():
        fields = _stat_fields(pid)
        return fields is not None and fields[0] not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group `pgid`."""
    if not _PROC.is_dir():  # not Linux: the kernel's answer counts zombies too, which errs on the safe side
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    members = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None and fields[1] == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def wait_group_gone(pgid: int, timeout_s: float, poll_s: float = 0.05) -> bool:
    """Wait until no live member of the group remains; True if that happened within `timeout_s`."""
    deadline = time.monotonic() + max(timeout_s, 0.0)
    while True:
        if not group_members(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


def terminate_group(pgid: int, grace_s: float, kill_wait_s: float = 5.0) -> bool:
    """SIGTERM the whole group, SIGKILL whatever is still alive after `grace_s`.

    Returns True if SIGKILL was needed. Raises RuntimeError if something survives SIGKILL
    (a process stuck in uninterruptible sleep), because GPUs are then still held.
    """
    signal_group(pgid, signal.SIGTERM)
    if wait_group_gone(pgid, grace_s):
        return False
    signal_group(pgid, signal.SIGKILL)
    if not wait_group_gone(pgid, kill_wait_s):
        raise RuntimeError(f"process group {pgid} still alive after SIGKILL: {group_members(pgid)}")
    return True


def pid_namespace(pid: int) -> int | None:
    """The inode that names the PID namespace of `pid`, or None when it is gone or not ours to inspect."""
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None


def namespace_members(namespace: int) -> list[int]:
    """Live (non-zombie) processes, as this machine numbers them, inside the PID namespace `namespace`."""
    members = []
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and pid_namespace(int(entry.name)) == namespace:
            fields = _stat_fields(int(entry.name))
            if fields is not None and fields[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return members


def catches_signal(pid: int, sig: int) -> bool:
    """True when `pid` has installed a handler for `sig` (its SigCgt mask in /proc), so the signal informs
    it rather than applying the default action, which for SIGUSR1 would end it."""
    try:
        status = (_PROC / str(pid) / "status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    return False
