"""Pinning a local run to its lease's cores: which CPUs those are on this machine, and the cpuset cgroup that
keeps the run there.

A lease's core ids are physical cores, numbered like the first hardware thread of each core; a run gets each
core with its sibling threads (`thread_siblings_list` in sysfs). Two mechanisms pin it, the second only where
the server may create cpuset cgroups:

- CPU affinity (`sched_setaffinity`), set by the supervisor on bubblewrap and inherited by every process of the
  run. Works everywhere, but it is a hint: a process may call `sched_setaffinity` itself and widen it to any CPU
  of its cgroup's cpuset.
- A cpuset cgroup per run (`<parent>/gpulease/<run>.<supervisor pid>` with `cpuset.cpus` the run's CPUs), the
  supervisor moving bubblewrap into it. The kernel then intersects every affinity the run asks for with the
  cpuset, so it cannot widen; cgroupfs is not mounted in the sandbox, so it cannot leave. cgroup v1 (a cpuset
  hierarchy) and v2 (cpuset enabled in the parent's `cgroup.subtree_control`) both work.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gpulease.domain.cpu import cpuset

SYS_CPU = Path("/sys/devices/system/cpu")
GROUP = "gpulease"  # the folder under which each run's cpuset is made; never removed (others may share it)


class CpuPinningError(Exception):
    """The lease's cores cannot be pinned on this machine; the message says why."""


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """The Linux list format (`0-3,8`) as sorted ids; '' is empty."""
    ids: set[int] = set()
    for item in text.strip().split(","):
        if not item:
            continue
        low, _, high = item.partition("-")
        ids.update(range(int(low), int(high or low) + 1))
    return tuple(sorted(ids))


def host_cpus(cores: Sequence[int], sys_cpu: Path = SYS_CPU) -> tuple[int, ...]:
    """The CPUs (hardware threads) a run on these physical cores may use: each core and its siblings."""
    try:
        online = set(parse_cpu_list((sys_cpu / "online").read_text()))
    except OSError:
        online = set(os.sched_getaffinity(0))
    missing = sorted(set(cores) - online)
    if missing:
        raise CpuPinningError(
            f"the lease's cores {list(missing)} are not online CPUs of this machine (online: "
            f"{format_cpu_list(online)}); the inventory describes this node with more cores than it has"
        )
    cpus: set[int] = set()
    for core in cores:
        try:
            siblings = parse_cpu_list((sys_cpu / f"cpu{core}" / "topology" / "thread_siblings_list").read_text())
        except OSError:
            siblings = (core,)
        cpus.update(s for s in siblings if s in online)
        cpus.add(core)
    return tuple(sorted(cpus))


def format_cpu_list(ids: Iterable[int]) -> str:
    return cpuset(frozenset(ids))


@dataclass(frozen=True)
class CpusetHierarchy:
    """Where runs' cpuset cgroups are made: `parent`/gpulease/…, in a v1 cpuset hierarchy or in cgroup v2."""

    mount: Path  # the hierarchy's mount point
    parent: Path  # the cgroup under which the gpulease folder is made
    version: int  # 1 or 2

    def to_json(self) -> dict[str, object]:
        return {"mount": str(self.mount), "parent": str(self.parent), "version": self.version}

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> CpusetHierarchy:
        return cls(Path(str(raw["mount"])), Path(str(raw["parent"])), int(str(raw["version"])))

    @property
    def group(self) -> Path:
        return self.parent / GROUP


def find_cpuset_hierarchy(choice: str = "auto") -> CpusetHierarchy | None:
    """The hierarchy to make runs' cpusets in: `off` none; a path, that cgroup (v2: with cpuset in its
    subtree_control, or settable there); `auto`, the cpuset hierarchy of this process's cgroup where this
    process may make cgroups in it. None where there is none, or it cannot be written."""
    if choice == "off":
        return None
    mounts = _cgroup_mounts()
    if choice != "auto":
        path = Path(choice)
        for mount, version in mounts:
            if path == mount or mount in path.parents:
                found = CpusetHierarchy(mount, path, version)
                return found if _usable(found) else None
        return None
    own = _own_cgroups()
    for mount, version in mounts:  # v1 cpuset first: v2 needs delegation, rarely set up in a container
        key = "cpuset" if version == 1 else ""
        if key in own:
            found = CpusetHierarchy(mount, mount / own[key].lstrip("/"), version)
            if _usable(found):
                return found
    return None


def _cgroup_mounts() -> list[tuple[Path, int]]:
    """(mount point, version) of the cpuset v1 hierarchy and the cgroup v2 one, v1 first."""
    v1: list[tuple[Path, int]] = []
    v2: list[tuple[Path, int]] = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        head, _, tail = line.partition(" - ")
        fields, after = head.split(), tail.split()
        if len(fields) < 5 or len(after) < 3:
            continue
        point = Path(fields[4].replace("\\040", " "))
        if after[0] == "cgroup" and "cpuset" in after[2].split(","):
            v1.append((point, 1))
        elif after[0] == "cgroup2":
            v2.append((point, 2))
    return v1 + v2


def _own_cgroups(pid: str = "self") -> dict[str, str]:
    """This process's cgroup per v1 controller ('cpuset', …) and for v2 ('')."""
    found: dict[str, str] = {}
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            found[name] = path
    return found


def _usable(h: CpusetHierarchy) -> bool:
    """The gpulease folder exists or can be made under `h.parent`, with cpus a run's cpuset can take."""
    try:
        _prepare_group(h)
    except OSError:
        return False
    return True


def _prepare_group(h: CpusetHierarchy) -> None:
    group = h.group
    if h.version == 2:
        controllers = (h.parent / "cgroup.subtree_control").read_text().split()
        if "cpuset" not in controllers:
            (h.parent / "cgroup.subtree_control").write_text("+cpuset")  # EBUSY where parent holds processes
        group.mkdir(exist_ok=True)
        if "cpuset" not in (group / "cgroup.subtree_control").read_text().split():
            (group / "cgroup.subtree_control").write_text("+cpuset")
        return
    group.mkdir(exist_ok=True)
    for name in ("cpuset.cpus", "cpuset.mems"):  # a new v1 cpuset is empty and takes no task until filled
        if not (group / name).read_text().strip():
            (group / name).write_text((h.parent / name).read_text().strip() or "0")


def enter_cpuset(h: CpusetHierarchy, name: str, cpus: Sequence[int]) -> Path:
    """Make the run's cpuset `name` with `cpus` and move this process into it (its children to come inherit
    it); returns the cgroup's folder. OSError where the kernel refuses."""
    _prepare_group(h)
    path = h.group / name
    path.mkdir()
    try:
        if h.version == 1:
            (path / "cpuset.mems").write_text((h.group / "cpuset.mems").read_text().strip() or "0")
        (path / "cpuset.cpus").write_text(format_cpu_list(cpus))
        (path / "cgroup.procs").write_text(str(os.getpid()))
    except OSError:
        with contextlib.suppress(OSError):
            path.rmdir()
        raise
    return path


def leave_cpuset(h: CpusetHierarchy, home: Path) -> None:
    """Move this process back to `home` (the cgroup it was in), leaving the run's cpuset to the run."""
    (home / "cgroup.procs").write_text(str(os.getpid()))


def own_cgroup(h: CpusetHierarchy) -> Path:
    """This process's cgroup folder in `h`."""
    own = _own_cgroups().get("cpuset" if h.version == 1 else "", "/")
    return h.mount / own.lstrip("/")


def remove_cpuset(path: Path, timeout_s: float = 5.0) -> bool:
    """Remove a run's cpuset once its last process is gone (exiting tasks leave it a moment later)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            path.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() >= deadline:
                return False
        time.sleep(0.02)
