"""The bubblewrap sandbox a local run executes in: who it runs as, what it sees, what it may write.

A run gets its own PID, IPC, UTS, cgroup and mount namespaces (and, by default, network namespace). Its
filesystem is a fresh tmpfs holding: the host's /usr (and the /bin, /lib… links into it) read-only, a
minimal /etc (a generated passwd/group and the files programs need to resolve names, load libraries and
check certificates), a private home and /tmp per lease (writable, owned by the customer's uid), a read-only
/run/gpulease with the preemption notice, a minimal /dev with only the leased /dev/nvidiaN nodes (plus
nvidiactl and nvidia-uvm when present) and a /proc of its own PID namespace. The server's data folder, its
database and its code are not mounted at all, and are covered with an empty tmpfs should an operator bind
a folder that contains them.

This module only decides; `supervisor.py` starts bubblewrap. bubblewrap runs as the customer's uid and
mounts the lease's folders by path, so the sandbox folder must sit under folders others may search (x).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from gpulease.backends.base import LeasedGpus
from gpulease.domain.cpu import cpuset

HOME = "/home/customer"
USER = "customer"
NOTICE_DIR = "/run/gpulease"
NOTICE_FILE = f"{NOTICE_DIR}/preemption-notice"
# Device nodes every CUDA process opens besides its GPUs'; /dev/nvidia-modeset (display) is left out.
SHARED_NVIDIA_DEVICES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools")
# What a program needs from /etc to load libraries, resolve names and check TLS certificates.
ETC_ENTRIES = (
    "alternatives",
    "ca-certificates",
    "ca-certificates.conf",
    "debian_version",
    "gai.conf",
    "host.conf",
    "hosts",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "mime.types",
    "nsswitch.conf",
    "os-release",
    "pki",
    "protocols",
    "resolv.conf",
    "services",
    "ssl",
    "timezone",
    "OpenCL",
    "vulkan",
    "glvnd",
)
# Top-level names that are links into /usr on merged-/usr systems, real folders on older ones.
USR_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_UID_BASE = 2_000_000_000  # far from login users (1000+), systemd's dynamic users and nspawn ranges

Network = Literal["none", "host"]


class SandboxUnavailable(Exception):
    """bubblewrap is missing, or this machine does not allow the namespaces it needs."""


@dataclass(frozen=True)
class SandboxPolicy:
    """How local runs are confined; one per backend, built from the server's settings.

    `root`: where the per-lease home and /tmp folders live (on the server's side; never mounted whole).
    `uid_base`: a customer's runs get uid and gid `uid_base + customer id` when the server runs as root;
      otherwise they keep the server's uid (see README, "What the local backend isolates").
    `network`: "none" gives each run an empty network namespace (loopback only); "host" shares the host's.
    `device_dir`: where the /dev/nvidia* nodes are looked up (tests point it at fake nodes).
    `ro_paths`: extra host folders made visible read-only at the same path (a conda install, a dataset).
    `hidden`: folders never visible, even under an `ro_paths` entry (the data folder, the code).
    `max_processes`: RLIMIT_NPROC of a customer's uid, so a fork bomb stops at its own limit.
    `cpuset_cgroup`: where a run pinned to its lease's cores gets a cpuset cgroup of its own, which it cannot
      widen (see cpus.py): "auto" (this process's cpuset hierarchy, where it may make cgroups), "off"
      (CPU affinity only), or a cgroup folder.
    """

    root: Path
    uid_base: int = DEFAULT_UID_BASE
    network: Network = "none"
    device_dir: Path = Path("/dev")
    ro_paths: tuple[Path, ...] = ()
    hidden: tuple[Path, ...] = field(default_factory=tuple)
    max_processes: int = 4096
    bwrap: str = "bwrap"
    cpuset_cgroup: str = "auto"

    def identity(self, customer_id: int | None) -> tuple[int, int] | None:
        """(uid, gid) a customer's runs execute as, or None when this server cannot switch users."""
        if os.geteuid() != 0:
            return None
        uid = self.uid_base + (customer_id or 0)
        if uid >= 2**32 - 1:  # (uid_t)-1 means "no change" to the kernel
            raise SandboxUnavailable(f"customer {customer_id}: uid {uid} is out of range; lower the uid base")
        return uid, uid

    def bwrap_path(self) -> str:
        found = shutil.which(self.bwrap)
        if found is None:
            raise SandboxUnavailable(
                "the local backend runs every command in a bubblewrap sandbox, and `bwrap` is not installed "
                "(Debian/Ubuntu: apt-get install bubblewrap)"
            )
        return found


@dataclass(frozen=True)
class LeaseFolders:
    """A lease's folders on the server's side; every run of the lease shares them."""

    base: Path

    @property
    def home(self) -> Path:
        return self.base / "home"

    @property
    def tmp(self) -> Path:
        return self.base / "tmp"

    @property
    def notice_dir(self) -> Path:
        return self.base / "run"

    @property
    def etc(self) -> Path:
        return self.base / "etc"

    @property
    def notice_file(self) -> Path:
        return self.notice_dir / Path(NOTICE_FILE).name


def lease_folders(policy: SandboxPolicy, lease_id: int) -> LeaseFolders:
    return LeaseFolders(policy.root / f"lease-{lease_id}")


def prepare_lease_folders(policy: SandboxPolicy, lease_id: int, customer_id: int | None) -> LeaseFolders:
    """Create the lease's home and /tmp (owned by the customer's uid, private) and its /etc files."""
    folders = lease_folders(policy, lease_id)
    policy.root.mkdir(parents=True, exist_ok=True)
    os.chmod(policy.root, 0o711)  # others may not list which leases have folders
    ident = policy.identity(customer_id)
    if ident is not None:
        _check_reachable(policy.root)
    folders.base.mkdir(mode=0o711, exist_ok=True)
    for private in (folders.home, folders.tmp):
        private.mkdir(mode=0o700, exist_ok=True)
        if ident is not None:
            os.chown(private, *ident)
    folders.notice_dir.mkdir(mode=0o755, exist_ok=True)
    folders.etc.mkdir(mode=0o755, exist_ok=True)
    uid, gid = ident if ident is not None else (os.getuid(), os.getgid())
    (folders.etc / "passwd").write_text(
        f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"{USER}:x:{uid}:{gid}:gpulease customer {customer_id}:{HOME}:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )
    (folders.etc / "group").write_text(f"root:x:0:\n{USER}:x:{gid}:\nnogroup:x:65534:\n")
    return folders


def _check_reachable(root: Path) -> None:
    """bubblewrap runs as the customer's uid and mounts the lease's folders by path, so every folder above
    them must be searchable by others (x, not r: nobody can list them)."""
    for folder in [root.resolve(), *root.resolve().parents]:
        if not os.stat(folder).st_mode & 0o001:
            raise SandboxUnavailable(
                f"the sandbox folder {root} is not reachable by the customers' uids: {folder} lacks the "
                f"search bit for others (chmod o+x {folder}), or set GPULEASE_SANDBOX_DIR to a folder that is"
            )


def remove_lease_folders(policy: SandboxPolicy, lease_id: int) -> None:
    """Delete a lease's folders once nothing of it runs (rmtree does not follow the customer's links)."""
    shutil.rmtree(lease_folders(policy, lease_id).base, ignore_errors=True)


def write_notice(folders: LeaseFolders, deadline: datetime) -> bool:
    """Write the preemption notice (the deadline, ISO 8601 UTC, one line); False if it was already there."""
    if deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=UTC)
    text = deadline.astimezone(UTC).isoformat() + "\n"
    target = folders.notice_file
    try:
        if target.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    folders.notice_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)  # a run polling the file never reads half a line
    return True


def run_environment(
    spec_env: dict[str, str],
    gpus: LeasedGpus,
    run_id: str,
    *,
    base: dict[str, str] | None = None,
    cpus: Sequence[int] = (),
) -> dict[str, str]:
    """A run's whole environment: gpulease's defaults, the customer's variables, then what it may not change.

    Nothing is inherited from the server. The GPU variables come last so a customer cannot widen what the
    lease owns; CUDA_DEVICE_ORDER=PCI_BUS_ID makes CUDA number devices as NVML and nvidia-smi do, where
    CUDA's default (fastest first) could map index 0 to a GPU the lease does not own. A CPU lease's run gets
    CUDA_VISIBLE_DEVICES="" (no GPU). Where the run is pinned to `cpus` (the lease's cores and their hardware
    threads), GPULEASE_CPUS lists them and GPULEASE_CORES counts the cores; OMP_NUM_THREADS defaults to the
    cores (OpenMP, MKL and OpenBLAS would otherwise start a thread per CPU of the machine).
    """
    env = {
        "PATH": DEFAULT_PATH,
        "HOME": HOME,
        "USER": USER,
        "LOGNAME": USER,
        "SHELL": "/bin/sh",
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
        "PYTHONUNBUFFERED": "1",  # so a Python run's log streams line by line
    }
    if cpus:
        env["OMP_NUM_THREADS"] = str(len(gpus.cores))
    env.update(base or {})
    env.update(spec_env)
    env["GPULEASE_LEASE_ID"] = str(gpus.lease_id)
    env["GPULEASE_RUN_ID"] = run_id
    env["GPULEASE_NOTICE_FILE"] = NOTICE_FILE
    env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    env["CUDA_VISIBLE_DEVICES"] = gpus.visible_devices
    env["NVIDIA_VISIBLE_DEVICES"] = gpus.visible_devices
    for key in ("GPULEASE_CPUS", "GPULEASE_CORES"):
        env.pop(key, None)
    if cpus:
        env["GPULEASE_CPUS"] = cpuset(tuple(cpus))
        env["GPULEASE_CORES"] = str(len(gpus.cores))
    return env


def sandbox_arguments(
    policy: SandboxPolicy,
    folders: LeaseFolders,
    gpus: LeasedGpus,
    command: Sequence[str],
    cwd: str | None,
) -> list[str]:
    """bubblewrap's arguments for one run, the command last."""
    args: list[str] = [
        "--unshare-user",
        "--disable-userns",  # no nested user namespaces: they would hand the run capabilities again
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        f"lease-{gpus.lease_id}",
        "--die-with-parent",  # the supervisor gone, the run goes too: nothing uses GPUs unwatched
        "--new-session",
    ]
    if policy.network == "none":
        args.append("--unshare-net")
    args += ["--ro-bind", "/usr", "/usr"]
    for name in USR_LINKS:
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            args += ["--ro-bind", str(host), f"/{name}"]
    for name in ETC_ENTRIES:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    args += ["--ro-bind", str(folders.etc / "passwd"), "/etc/passwd"]
    args += ["--ro-bind", str(folders.etc / "group"), "/etc/group"]
    for extra in policy.ro_paths:
        args += ["--ro-bind-try", str(extra), str(extra)]
    args += ["--proc", "/proc", "--dev", "/dev"]
    # A CPU lease's run gets no NVIDIA device at all, not even the shared ones.
    shared = list(SHARED_NVIDIA_DEVICES) if gpus.indices else []
    for name in [f"nvidia{i}" for i in gpus.indices] + shared:
        node = policy.device_dir / name
        if node.exists():
            args += ["--dev-bind", str(node), f"/dev/{name}"]
    # /dev read-only but for /dev/shm (POSIX shared memory: PyTorch data loaders and NCCL need it).
    args += ["--tmpfs", "/dev/shm", "--remount-ro", "/dev"]
    args += ["--bind", str(folders.home), HOME]
    args += ["--bind", str(folders.tmp), "/tmp"]
    args += ["--ro-bind", str(folders.notice_dir), NOTICE_DIR]
    for hidden in _hidden_under_binds(policy):
        args += ["--tmpfs", str(hidden), "--remount-ro", str(hidden)]
    args += ["--remount-ro", "/"]  # the sandbox's own root: no writing beside the run's folders
    workdir = HOME if not cwd else cwd if cwd.startswith("/") else f"{HOME}/{cwd}"
    args += ["--chdir", workdir, "--", *command]
    return args


def _hidden_under_binds(policy: SandboxPolicy) -> list[Path]:
    """Hidden folders that would otherwise show through a read-only bind (e.g. code installed in /usr)."""
    visible = [Path("/usr"), *policy.ro_paths]
    hidden = {h.resolve() for h in policy.hidden}
    outermost = [h for h in hidden if not any(other in h.parents for other in hidden)]  # covers its insides
    return sorted(h for h in outermost if h.is_dir() and any(h == v or v in h.parents for v in visible))
