"""The Slurm backend: gpulease decides and places leases, Slurm is told the decision.

A lease of whole nodes becomes a Slurm **reservation** of those nodes for the lease's window
(`<prefix>-lease-<id>`, `Accounts=` the customer's Slurm account, `Users=` its Slurm users and the
gpulease service user), created as soon as the lease is booked, so Slurm keeps every other job off
those nodes for the window and the tenant may also submit to it directly (`sbatch --reservation=`).
A lease of part of a node becomes, while it is active, an **allocation** (`salloc --no-shell`) on the
chosen node, pinned to the leased GPU indices. Runs are `srun` job steps: a job in the reservation,
or a step (`--overlap`) inside the allocation. The `srun` client runs on this machine, so its output
is the run's log and its exit status the run's exit code, with no shared file system needed.

Exact GPU indices: Slurm picks GPUs by count, never by index, unless each GPU is its own GRES
type. When a node's gres.conf names its GPUs `idx0`..`idxN` (`gpu_type_template`), gpulease asks for
`--gres=gpu:idx3:1,gpu:idx5:1` and Slurm itself allocates, accounts and (with cgroups) confines
exactly those GPUs; CUDA_VISIBLE_DEVICES is Slurm's. On nodes with untyped GPUs gpulease asks for
`--gres=gpu:N` and sets CUDA_VISIBLE_DEVICES to the leased indices inside the step itself, which is
right only without device cgroups (Slurm's accounting then names other indices). See docs/slurm.md.

Everything gpulease creates carries its name prefix, so `sync_leases` can compare Slurm's state
with the leases it is given and mend the difference (after a restart too).
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import math
import os
import re
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from gpulease.backends.base import (
    BackendError,
    LeasedGpus,
    RunSpec,
    RunState,
    RunStatus,
    read_log_file,
    validate_spec,
)

log = logging.getLogger("gpulease.slurm")

SLURM_TIME = "%Y-%m-%dT%H:%M:%S"
# Job states in which a job still holds (or is about to hold) its resources.
LIVE_JOB_STATES = frozenset(
    {"PENDING", "CONFIGURING", "RUNNING", "SUSPENDED", "COMPLETING", "RESIZING", "REQUEUED", "STOPPED", "SIGNALING"}
)
# Node state words that mean "do not place work here".
UNHEALTHY_NODE_STATES = frozenset(
    {"down", "drain", "drained", "draining", "fail", "failing", "maint", "unknown", "no_respond", "not_responding",
     "powered_down", "powering_down", "power_down", "inval", "invalid", "future", "reboot_requested"}
)  # fmt: skip
_LEASE_STATES = ("scheduled", "active", "suspended")
_SETTLE_S = 5.0  # how long lease end waits for Slurm to call cancelled jobs done
_RETRY_S = 3.0  # how soon a lease Slurm refused is tried again
_RUN_ENV_BASE = ("PATH", "LANG", "LC_ALL", "HOME", "USER", "LOGNAME")


def parse_slurm_time(value: str) -> datetime | None:
    """A time Slurm printed (we run its commands with TZ=UTC); None for Unknown/None/empty."""
    value = value.strip()
    if not value or value in ("Unknown", "None", "N/A", "(null)"):
        return None
    return datetime.strptime(value, SLURM_TIME).replace(tzinfo=UTC)


def slurm_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime(SLURM_TIME)


def minutes_until(start: datetime, end: datetime) -> int:
    """Slurm time limits are whole minutes: round up, at least one."""
    return max(1, math.ceil((end - start).total_seconds() / 60))


def gres_count(tres: str, name: str = "gres/gpu") -> int:
    """The count of `name` in a TRES string such as `cpu=1,gres/gpu=2,node=1`."""
    for part in tres.split(","):
        key, _, value = part.partition("=")
        if key == name:
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


@dataclass(frozen=True)
class LeaseWindow:
    """What gpulease tells Slurm about one lease: whose it is, when, and which GPUs."""

    lease_id: int
    customer_id: int
    state: str  # scheduled | active | suspended
    starts_at: datetime
    ends_at: datetime | None
    gpus: tuple[LeasedGpus, ...]

    def __post_init__(self) -> None:
        if self.state not in _LEASE_STATES:
            raise ValueError(f"lease {self.lease_id}: Slurm mirrors leases in {_LEASE_STATES}, not {self.state!r}")


@dataclass(frozen=True)
class SlurmNode:
    """One node as Slurm reports it (sinfo)."""

    name: str
    state: str  # sinfo's long form: idle, mixed, allocated, down*, drained, draining, idle+drain ...
    reason: str | None
    gpu_types: tuple[str | None, ...]  # GRES type of each GPU, in Slurm's order; None where untyped

    @property
    def gpus(self) -> int:
        return len(self.gpu_types)

    @property
    def available(self) -> bool:
        """False when Slurm will not run work here: down, drained or draining, failing, not responding."""
        words = set(re.split(r"[+~#!%$@^-]", self.state.lower().rstrip("*"))) - {""}
        return not self.state.endswith("*") and not (words & UNHEALTHY_NODE_STATES)


@dataclass(frozen=True)
class SlurmJobRecord:
    """One job as Slurm's accounting (sacct) recorded it."""

    job_id: str
    name: str
    account: str
    user: str
    reservation: str | None
    state: str
    exit_code: int | None
    start: datetime | None
    end: datetime | None
    elapsed_s: int
    gpus: int
    nodes: str

    @property
    def gpu_seconds(self) -> int:
        return self.elapsed_s * self.gpus


@dataclass(frozen=True)
class ReservationRecord:
    """One reservation as Slurm's accounting (sacctmgr show reservation) recorded it."""

    name: str
    start: datetime | None
    end: datetime | None


@dataclass
class _Mirror:
    """What Slurm holds for one lease."""

    lease_id: int
    kind: Literal["reservation", "allocation"]
    nodes: tuple[str, ...]
    access: tuple[str | None, tuple[str, ...]]  # (account, users) the reservation admits
    end: datetime | None  # reservation EndTime / the time an allocation's limit runs to; None: unlimited
    job_id: str | None = None  # the allocation's job id
    started: datetime | None = None  # the allocation's start (its time limit counts from here)
    gpus: tuple[LeasedGpus, ...] = ()
    account: str | None = None


@dataclass
class _Run:
    spec: RunSpec
    process: subprocess.Popen[bytes]
    job_name: str
    started_at: float
    stop_requested: bool = False
    ended_at: float | None = None
    exit_code: int | None = None
    message: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def status(self) -> RunStatus:
        if self.exit_code is None:
            state = RunState.RUNNING
        elif self.stop_requested:
            state = RunState.STOPPED
        elif self.exit_code == 0:
            state = RunState.SUCCEEDED
        else:
            state = RunState.FAILED
        return RunStatus(state, self.exit_code, self.started_at, self.ended_at, self.message)


class SlurmCommands:
    """Slurm's command-line tools, run with the configured SLURM_CONF and TZ=UTC (so times parse)."""

    def __init__(self, bin_dir: str | None = None, conf: str | None = None, timeout_s: float = 15.0) -> None:
        self.bin_dir = bin_dir
        self.conf = conf
        self.timeout_s = timeout_s

    def path(self, tool: str) -> str:
        if self.bin_dir:
            return str(Path(self.bin_dir) / tool)
        found = shutil.which(tool)
        if found is None:
            raise BackendError(f"Slurm's {tool} is not on PATH; set GPULEASE_SLURM_BIN_DIR")
        return found

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env["TZ"] = "UTC"
        if self.conf:
            env["SLURM_CONF"] = self.conf
        return env

    def run(self, tool: str, *args: str, timeout_s: float | None = None, ok: Iterable[str] = ()) -> str:
        """Run `tool args`; its stdout. Raises BackendError with Slurm's message unless it matches `ok`."""
        argv = [self.path(tool), *args]
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                env=self.env(),
                timeout=timeout_s or self.timeout_s,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise BackendError(f"Slurm did not answer within {exc.timeout:g}s: {shlex.join(argv)}") from exc
        except OSError as exc:
            raise BackendError(f"cannot run Slurm's {tool}: {exc}") from exc
        if done.returncode != 0:
            message = (done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}").splitlines()
            text = " ".join(line.strip() for line in message[-3:])
            if any(pattern in text for pattern in ok):
                return done.stdout
            raise BackendError(f"{tool} {' '.join(args[:2])}: {text}")
        return done.stdout + (done.stderr if tool == "salloc" else "")


class SlurmBackend:
    """Mirrors leases into an existing Slurm cluster and runs their commands as Slurm job steps.

    `commands`: where Slurm's tools are and which slurm.conf they use.
    `name_prefix`: reservations and jobs gpulease creates are called `<prefix>-lease-<id>` and
      `<prefix>-run-<run id>`; nothing else with that prefix may exist in the cluster.
    `partition`: the partition for allocations and runs (Slurm's default when None).
    `account_template` / `accounts`: the Slurm account of customer N (explicit map first).
    `users`: Slurm user names per customer, admitted to its reservations besides the account.
    `service_user`: the user these commands run as (admitted to every reservation; owns the runs).
    `manage_accounts`: create a missing customer account with sacctmgr and associate the service
      user and the customer's users with it (needs slurmdbd; skipped where accounting is off).
    `gpu_type_template`: the GRES type that names GPU `index` on a node (docs/slurm.md).
    `allocation_timeout_s`: how long `salloc` may wait for a partial lease's GPUs to be free.
    `resync_s`: how often Slurm's own view is read back in full (between, the backend trusts what it did).
    """

    name = "slurm"

    def __init__(
        self,
        commands: SlurmCommands | None = None,
        name_prefix: str = "gpulease",
        partition: str | None = None,
        account_template: str = "gpulease-c{customer_id}",
        accounts: dict[int, str] | None = None,
        users: dict[int, list[str]] | None = None,
        service_user: str | None = None,
        manage_accounts: bool = True,
        gpu_type_template: str = "idx{index}",
        allocation_timeout_s: float = 10.0,
        resync_s: float = 30.0,
        stop_grace_s: float = 10.0,
    ) -> None:
        self.commands = commands or SlurmCommands()
        self.prefix = name_prefix
        self.partition = partition
        self.account_template = account_template
        self.accounts = dict(accounts or {})
        self.users = {k: list(v) for k, v in (users or {}).items()}
        self.service_user = service_user or getpass.getuser()
        self.manage_accounts = manage_accounts
        self.gpu_type_template = gpu_type_template
        self.allocation_timeout_s = allocation_timeout_s
        self.resync_s = resync_s
        self.stop_grace_s = stop_grace_s
        self._lock = threading.RLock()  # mirrors and runs
        self._mirrors: dict[int, _Mirror] = {}
        self._errors: dict[int, str] = {}
        self._retry_at: dict[int, float] = {}
        self._runs: dict[str, _Run] = {}
        self._doomed: set[str] = set()  # reservations to delete once Slurm lets them go
        self._nodes: dict[str, SlurmNode] = {}
        self._nodes_read_at = 0.0
        self._synced_at: float | None = None
        self._known_accounts: set[str] = set()
        self.accounting_checked_at: float | None = None  # monotonic; kept for services/slurm_mirror.py
        try:
            self.commands.run("scontrol", "ping", ok=())
        except BackendError as exc:
            raise BackendError(f"cannot reach the Slurm controller: {exc}") from exc

    # -- names --------------------------------------------------------------------------------------

    def lease_name(self, lease_id: int) -> str:
        """The reservation (whole nodes) or allocation job (part of a node) of a lease."""
        return f"{self.prefix}-lease-{lease_id}"

    def run_name(self, run_id: str) -> str:
        return f"{self.prefix}-run-{run_id}"

    def _lease_id_of(self, name: str) -> int | None:
        head = f"{self.prefix}-lease-"
        if name.startswith(head) and name[len(head) :].isdigit():
            return int(name[len(head) :])
        return None

    def account_of(self, customer_id: int) -> str:
        return self.accounts.get(customer_id) or self.account_template.format(customer_id=customer_id)

    # -- nodes --------------------------------------------------------------------------------------

    def node_states(self) -> dict[str, SlurmNode]:
        """Every node Slurm knows, with its state; `available` is False for down, drained, failing nodes."""
        out = self.commands.run("sinfo", "-h", "-N", "-o", "%N|%T|%G|%E")
        nodes: dict[str, SlurmNode] = {}
        for line in out.splitlines():
            if not line.strip():
                continue
            name, state, gres, reason = [*line.split("|", 3), "", "", ""][:4]
            nodes[name] = SlurmNode(
                name=name,
                state=state,
                reason=None if reason in ("none", "") else reason,
                gpu_types=_gpu_types(gres),
            )
        with self._lock:
            self._nodes, self._nodes_read_at = nodes, time.monotonic()
        return nodes

    def _node(self, name: str) -> SlurmNode:
        with self._lock:
            node = self._nodes.get(name)
            fresh = time.monotonic() - self._nodes_read_at < self.resync_s
        if node is None or not fresh:
            node = self.node_states().get(name)
        if node is None:
            raise BackendError(f"Slurm has no node {name!r}; inventory node names must be Slurm NodeNames")
        return node

    def _typed(self, node: SlurmNode) -> bool:
        """True when every GPU of the node is its own GRES type, so Slurm can be asked for exact indices."""
        if not self.gpu_type_template:
            return False
        want = tuple(self.gpu_type_template.format(index=i) for i in range(node.gpus))
        return bool(want) and tuple(sorted(t or "" for t in node.gpu_types)) == tuple(sorted(want))

    def gres_request(self, part: LeasedGpus) -> str | None:
        """The --gres value that gets exactly `part`'s GPUs (typed nodes) or as many (untyped nodes); None for
        a CPU lease, which asks Slurm for no GPU."""
        if not part.indices:
            return None
        node = self._node(part.node)
        if max(part.indices) >= node.gpus:
            raise BackendError(
                f"lease {part.lease_id}: Slurm node {part.node!r} has {node.gpus} GPUs, "
                f"the lease names index {max(part.indices)}"
            )
        if self._typed(node):
            return ",".join(f"gpu:{self.gpu_type_template.format(index=i)}:1" for i in sorted(part.indices))
        return f"gpu:{len(part.indices)}"

    def _whole_nodes(self, gpus: Sequence[LeasedGpus]) -> bool:
        """Every GPU of every node: a reservation. A CPU lease (cores, no GPU) is always an allocation."""
        return all(p.indices and len(p.indices) == self._node(p.node).gpus for p in gpus)

    @staticmethod
    def cpu_request(part: LeasedGpus) -> list[str]:
        """What an allocation asks Slurm for besides GPUs: the lease's cores on the node (one task with that many
        CPUs) and a CPU lease's memory. Slurm picks which cores; with task/affinity or task/cgroup it binds the
        lease's runs to them."""
        args = [f"--cpus-per-task={len(part.cores)}"] if part.cores else []
        if part.memory_gib is not None:
            args.append(f"--mem={part.memory_gib}G")
        return args

    # -- accounts -----------------------------------------------------------------------------------

    def _ensure_account(self, customer_id: int) -> str:
        account = self.account_of(customer_id)
        if not self.manage_accounts or account in self._known_accounts:
            return account
        try:
            found = self.commands.run("sacctmgr", "-n", "-P", "list", "account", account, "format=account")
        except BackendError as exc:
            # No slurmdbd (or it is down): Slurm then takes any account name as given; where accounts
            # are enforced, the submission itself will say the account is missing.
            log.warning("cannot look up Slurm account %s: %s", account, exc)
            return account
        if account not in found.split():
            self.commands.run(
                "sacctmgr", "-i", "add", "account", account, f"Description=gpulease customer {customer_id}",
                f"Organization={account}",
            )  # fmt: skip
        for user in [self.service_user, *self.users.get(customer_id, [])]:
            self.commands.run("sacctmgr", "-i", "add", "user", user, f"account={account}", ok=("Nothing new added",))
        self._known_accounts.add(account)
        return account

    # -- leases: mirroring ----------------------------------------------------------------------------

    def sync_leases(self, windows: Sequence[LeaseWindow], grace_s: float | None = None) -> dict[int, str]:
        """Make Slurm hold what these leases (every booked, active or suspended lease on Slurm nodes) need.

        Creates missing reservations and allocations, moves their ends when leases were extended, and
        releases what Slurm holds for leases no longer in `windows`. Returns the leases Slurm refused, with
        Slurm's reason; they are tried again after a short back-off.
        """
        grace = self.stop_grace_s if grace_s is None else grace_s
        wanted = {w.lease_id: w for w in windows}
        with self._lock:
            for name in sorted(self._doomed):
                self._delete_reservation(name)
            if self._synced_at is None or time.monotonic() - self._synced_at >= self.resync_s:
                self._read_back()
            leaving = [(lid, *self._detach(lid)) for lid in list(self._mirrors) if lid not in wanted]
        # Ending leases wait out their grace period without the lock, so other leases are not held up.
        for lease_id, mirror, runs in leaving:
            try:
                self._stop_lease(lease_id, mirror, runs, grace_s=grace)
            except BackendError as exc:
                log.warning("lease %d: could not give Slurm's resources back yet: %s", lease_id, exc)
                with self._lock:
                    self._synced_at = None  # read Slurm back next time, and try again
        with self._lock:
            now_mono = time.monotonic()
            for window in windows:
                if self._retry_at.get(window.lease_id, 0.0) > now_mono:
                    continue
                try:
                    self._apply(window)
                except BackendError as exc:
                    self._errors[window.lease_id] = str(exc)
                    self._retry_at[window.lease_id] = now_mono + _RETRY_S
                else:
                    self._errors.pop(window.lease_id, None)
                    self._retry_at.pop(window.lease_id, None)
            for lease_id in [lid for lid in self._errors if lid not in wanted]:
                self._errors.pop(lease_id, None)
                self._retry_at.pop(lease_id, None)
            return {lid: msg for lid, msg in self._errors.items()}

    def _apply(self, w: LeaseWindow) -> None:
        now = datetime.now(UTC)
        if self._whole_nodes(w.gpus):
            self._apply_reservation(w, now)
        elif len(w.gpus) != 1:
            raise BackendError(f"lease {w.lease_id}: part of a node, but on {len(w.gpus)} nodes")
        elif w.state == "scheduled":
            return  # Slurm cannot hold a few GPUs of a node ahead of time; the allocation comes at the start
        else:
            self._apply_allocation(w, now)

    def _access(self, w: LeaseWindow) -> tuple[str | None, tuple[str, ...]]:
        if w.state == "suspended":  # compliance hold: the GPUs stay held, the tenant is locked out
            return None, (self.service_user,)
        users = self.users.get(w.customer_id, [])
        # Slurm admits a job to a reservation that names users only if the job's user is one of them.
        return self._ensure_account(w.customer_id), ((self.service_user, *users) if users else ())

    def _apply_reservation(self, w: LeaseWindow, now: datetime) -> None:
        name = self.lease_name(w.lease_id)
        nodes = tuple(p.node for p in w.gpus)
        access = self._access(w)
        end = None if w.ends_at is None else max(w.ends_at, now + timedelta(seconds=60))
        mirror = self._mirrors.get(w.lease_id)
        if mirror is not None and (mirror.kind != "reservation" or mirror.nodes != nodes or mirror.access != access):
            # Other nodes (the lease was moved) or other tenants (a compliance hold began or ended): made
            # anew, because how "Users=-name" reads (remove, or deny) differs between Slurm versions.
            self._release(w.lease_id, self.stop_grace_s)
            mirror = None
        account, users = access
        access_args = [f"Accounts={account}" if account else "", f"Users={','.join(users)}" if users else ""]
        if mirror is None:
            start = "now" if w.starts_at <= now else slurm_time(w.starts_at)
            self.commands.run(
                "scontrol", "create", "reservation", f"ReservationName={name}", f"StartTime={start}",
                f"EndTime={slurm_time(end)}" if end else "Duration=UNLIMITED",
                f"Nodes={','.join(nodes)}", *[a for a in access_args if a],
                *([f"PartitionName={self.partition}"] if self.partition else []),
            )  # fmt: skip
            self._mirrors[w.lease_id] = _Mirror(
                w.lease_id, "reservation", nodes, access, end, gpus=w.gpus, account=account
            )
            return
        if mirror.end != end:
            change = f"EndTime={slurm_time(end)}" if end else "Duration=UNLIMITED"
            self.commands.run("scontrol", "update", f"ReservationName={name}", change)
            self._extend_runs(w.lease_id, end)
            mirror.end = end
        mirror.gpus = w.gpus

    def _apply_allocation(self, w: LeaseWindow, now: datetime) -> None:
        name = self.lease_name(w.lease_id)
        part = w.gpus[0]
        mirror = self._mirrors.get(w.lease_id)
        if mirror is not None and (mirror.kind != "allocation" or mirror.nodes != (part.node,)):
            self._release(w.lease_id, self.stop_grace_s)
            mirror = None
        # The allocation's time limit runs a minute past the lease: gpulease stops runs at the end
        # with its grace period; the limit is Slurm's own backstop should gpulease be down then.
        end = None if w.ends_at is None else w.ends_at + timedelta(minutes=1)
        if mirror is None:
            account = self._ensure_account(w.customer_id)
            out = self.commands.run(
                "salloc", "--no-shell", f"--job-name={name}", f"--account={account}",
                *([f"--partition={self.partition}"] if self.partition else []),
                "--nodes=1", "--ntasks=1", f"--nodelist={part.node}",
                *([f"--gres={gres}"] if (gres := self.gres_request(part)) else []), *self.cpu_request(part),
                f"--time={minutes_until(now, end) if end else 'UNLIMITED'}",
                f"--immediate={max(1, int(self.allocation_timeout_s))}",
                f"--comment=gpulease lease {w.lease_id}",
                timeout_s=self.allocation_timeout_s + 30,
            )  # fmt: skip
            found = re.search(r"Granted job allocation (\d+)", out)
            if found is None:
                raise BackendError(f"lease {w.lease_id}: salloc granted nothing: {out.strip()[-300:]}")
            self._mirrors[w.lease_id] = _Mirror(
                w.lease_id, "allocation", (part.node,), (account, ()), end, job_id=found.group(1), started=now,
                gpus=w.gpus, account=account,
            )  # fmt: skip
            return
        if mirror.end != end and mirror.job_id is not None:
            started = mirror.started or now
            limit = "UNLIMITED" if end is None else str(minutes_until(started, end))
            self.commands.run("scontrol", "update", f"JobId={mirror.job_id}", f"TimeLimit={limit}")
            mirror.end = end
        mirror.gpus = w.gpus

    def _extend_runs(self, lease_id: int, end: datetime | None) -> None:
        """Runs in a reservation carry a time limit up to the lease's end: move it with the lease."""
        for job_id, job_name, _, _, start in self._jobs(reservation=self.lease_name(lease_id)):
            if not job_name.startswith(f"{self.prefix}-run-"):
                continue
            limit = "UNLIMITED" if end is None else str(minutes_until(start or datetime.now(UTC), end) + 1)
            self.commands.run("scontrol", "update", f"JobId={job_id}", f"TimeLimit={limit}")

    def _read_back(self) -> None:
        """Rebuild what gpulease holds in Slurm from Slurm itself (first sync, and every `resync_s`)."""
        mirrors: dict[int, _Mirror] = {}
        out = self.commands.run("scontrol", "show", "reservation", "-o", ok=("No reservations in the system",))
        for line in out.splitlines():
            fields = dict(re.findall(r"(\w+)=(\S*)", line))
            lease_id = self._lease_id_of(fields.get("ReservationName", ""))
            if lease_id is None or fields["ReservationName"] in self._doomed:
                continue
            old = self._mirrors.get(lease_id)
            users = tuple(u for u in fields.get("Users", "").split(",") if u and u != "(null)")
            account = fields.get("Accounts", "")
            mirrors[lease_id] = _Mirror(
                lease_id,
                "reservation",
                tuple(_expand_nodes(self.commands, fields.get("Nodes", ""))),
                (None if account in ("", "(null)") else account, users),
                None
                if fields.get("Duration", "").upper() == "UNLIMITED"
                else parse_slurm_time(fields.get("EndTime", "")),
                gpus=old.gpus if old else (),
                account=account if account not in ("", "(null)") else (old.account if old else None),
            )
        for job_id, job_name, account, nodes, start in self._jobs(name_prefix=f"{self.prefix}-lease-"):
            lease_id = self._lease_id_of(job_name)
            if lease_id is None:
                continue
            old = self._mirrors.get(lease_id)
            mirrors[lease_id] = _Mirror(
                lease_id, "allocation", tuple(_expand_nodes(self.commands, nodes)), (account, ()),
                old.end if old else None, job_id=job_id, started=start, gpus=old.gpus if old else (), account=account,
            )  # fmt: skip
        self._mirrors = mirrors
        self._synced_at = time.monotonic()

    def _jobs(
        self, reservation: str | None = None, name_prefix: str | None = None
    ) -> list[tuple[str, str, str, str, datetime | None]]:
        """Live jobs (id, name, account, nodes, start) in `reservation` or whose name starts with `name_prefix`."""
        args = ["-h", "-a", "-o", "%i|%j|%a|%N|%S|%T|%v"]
        if reservation:
            args += ["-R", reservation]
        out = self.commands.run("squeue", *args, ok=("Invalid reservation",))
        jobs = []
        for line in out.splitlines():
            parts = line.split("|")
            if len(parts) < 7 or parts[5] not in LIVE_JOB_STATES:
                continue
            if reservation and parts[6] != reservation:
                continue
            if name_prefix and not parts[1].startswith(name_prefix):
                continue
            start = parse_slurm_time(parts[4]) if parts[5] != "PENDING" else None
            jobs.append((parts[0], parts[1], parts[2], parts[3], start))
        return jobs

    # -- leases: the ExecutionBackend side -----------------------------------------------------------

    def lease_started(self, lease_id: int, gpus: list[LeasedGpus]) -> None:
        """Slurm must already hold the lease (sync_leases does that when it is booked or starts). Held by another
        gpulease process (the one running the clock, when several serve one database), it is read back from Slurm."""
        with self._lock:
            mirror = self._mirrors.get(lease_id)
            if mirror is None:
                self._read_back()
                mirror = self._mirrors.get(lease_id)
            error = self._errors.get(lease_id)
        if mirror is None:
            raise BackendError(
                f"lease {lease_id} has no reservation or allocation in Slurm yet"
                + (f": Slurm refused it: {error}" if error else "; try again in a few seconds")
            )
        if not mirror.gpus:
            mirror.gpus = tuple(gpus)

    def lease_ended(self, lease_id: int, grace_s: float) -> None:
        self._release(lease_id, grace_s)

    def _release(self, lease_id: int, grace_s: float) -> None:
        """Stop everything running for the lease (SIGTERM, SIGKILL after the grace), then hand Slurm's
        reservation or allocation back. Jobs the tenant submitted to the reservation itself go too."""
        self._stop_lease(lease_id, *self._detach(lease_id), grace_s=grace_s)

    def _detach(self, lease_id: int) -> tuple[_Mirror | None, list[_Run]]:
        """Forget the lease (under the lock), so nothing new starts on it; what is left to stop."""
        with self._lock:
            mirror = self._mirrors.pop(lease_id, None)
            self._errors.pop(lease_id, None)
            runs = [r for r in self._runs.values() if r.spec.lease_id == lease_id and not r.done.is_set()]
            for run in runs:
                run.stop_requested = True
        return mirror, runs

    def _stop_lease(self, lease_id: int, mirror: _Mirror | None, runs: list[_Run], grace_s: float) -> None:
        """The slow half of releasing a lease (a grace period long); runs without the lock held."""
        name = self.lease_name(lease_id)
        job_ids = (
            [j[0] for j in self._jobs(reservation=name)] if (mirror is None or mirror.kind == "reservation") else []
        )
        if mirror is not None and mirror.kind == "allocation" and mirror.job_id:
            job_ids.append(mirror.job_id)  # signalling the allocation signals every step in it
        elif mirror is None:
            job_ids += [j[0] for j in self._jobs(name_prefix=name) if j[1] == name]
        allocation = mirror.job_id if mirror is not None and mirror.kind == "allocation" else None
        self._terminate([j for j in dict.fromkeys(job_ids) if j], grace_s, {allocation} if allocation else set())
        for run in runs:
            if not run.done.wait(timeout=_SETTLE_S):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(run.process.pid, 9)  # the srun client itself; its job is being cancelled
        if mirror is None or mirror.kind == "reservation":
            self._delete_reservation(name)

    def _terminate(self, job_ids: list[str], grace_s: float, allocations: set[str] | None = None) -> None:
        """SIGTERM every process of these jobs (or steps), SIGKILL after `grace_s`, then cancel them.

        An allocation (`allocations`) runs nothing itself: it counts as done once its steps are.
        SIGKILL goes to each step by id: Slurm turns a job-wide SIGKILL into its own cancel sequence,
        which waits KillWait first. A tenant's batch script gets SIGTERM at once and Slurm's cancel
        sequence (SIGKILL after KillWait) at the end of the grace period."""
        if not job_ids:
            return
        allocations = allocations or set()
        ok = ("Invalid job id", "completing", "completed", "Job script not specified")
        self.commands.run("scancel", "--signal=TERM", *job_ids, ok=ok)
        batch = [j for j in job_ids if "." not in j and j not in allocations]
        if batch:
            self.commands.run("scancel", "--batch", "--signal=TERM", *batch, ok=ok)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and self._live(job_ids, allocations):
            time.sleep(0.2)
        if self._live(job_ids, allocations):
            steps = self._steps(job_ids)
            if steps:
                self.commands.run("scancel", "--signal=KILL", *steps, ok=ok)
        self.commands.run("scancel", *[j for j in job_ids if "." not in j] or job_ids, ok=ok)
        # The processes are signalled; Slurm still waits for the kernel to reap them before it calls the
        # job done, which may take a while. Give it a moment, not forever: a busy reservation is deleted
        # on a later sync.
        deadline = time.monotonic() + _SETTLE_S
        while time.monotonic() < deadline and self._live(job_ids, set(), completing=True):
            time.sleep(0.2)

    def _steps(self, job_ids: list[str]) -> list[str]:
        """The running steps (`job.step`) of these jobs, or these steps themselves; not batch or extern."""
        jobs = sorted({j.split(".")[0] for j in job_ids})
        out = self.commands.run("squeue", "-h", "-s", "-j", ",".join(jobs), "-o", "%i", ok=("Invalid job id",))
        steps = [line.strip() for line in out.splitlines() if line.strip()]
        wanted = set(job_ids)
        return [
            step for step in steps if step.split(".")[-1].isdigit() and (step in wanted or step.split(".")[0] in wanted)
        ]

    def _live(self, job_ids: list[str], allocations: set[str], completing: bool = False) -> bool:
        """Whether any of these jobs (or steps) still runs; with `completing`, still has processes at all."""
        jobs = sorted({j.split(".")[0] for j in job_ids})
        out = self.commands.run("squeue", "-h", "-s", "-j", ",".join(jobs), "-o", "%i", ok=("Invalid job id",))
        steps = {line.strip() for line in out.splitlines() if line.strip()}
        out = self.commands.run("squeue", "-h", "-j", ",".join(jobs), "-o", "%i|%T", ok=("Invalid job id",))
        states = dict(line.split("|", 1) for line in out.splitlines() if "|" in line)
        for job in job_ids:
            if "." in job:
                if job in steps:
                    return True
            elif job in allocations:
                if any(step.split(".")[0] == job for step in steps):
                    return True
            elif states.get(job) in LIVE_JOB_STATES and (completing or states.get(job) != "COMPLETING"):
                return True
        return False

    def _delete_reservation(self, name: str) -> bool:
        """Delete a reservation; while jobs in it are still completing Slurm refuses ("busy"), and the
        deletion is tried again on every sync until it goes."""
        try:
            self.commands.run("scontrol", "delete", f"ReservationName={name}", ok=("Invalid reservation name",))
        except BackendError:
            with self._lock:
                self._doomed.add(name)
            return False
        with self._lock:
            self._doomed.discard(name)
        return True

    # -- runs ---------------------------------------------------------------------------------------

    def start(self, spec: RunSpec) -> None:
        validate_spec(spec)
        if spec.image is not None:
            raise BackendError(
                f"run {spec.run_id} asks for image {spec.image!r}: the Slurm backend runs commands on the "
                "nodes directly (use the command's own container runtime, e.g. enroot or apptainer)"
            )
        with self._lock:
            mirror = self._mirrors.get(spec.lease_id)
            if mirror is None:
                raise BackendError(f"run {spec.run_id}: lease {spec.lease_id} is not active in Slurm")
            if spec.run_id in self._runs:
                raise BackendError(f"run {spec.run_id} was already started")
            owned = {p.node: p for p in mirror.gpus}
            parts = []
            for part in spec.gpus:
                mine = owned.get(part.node)
                if mine is None or not set(part.indices) <= set(mine.indices):
                    raise BackendError(
                        f"run {spec.run_id} asks for GPUs {part.indices} on {part.node!r}, "
                        f"which lease {spec.lease_id} does not own"
                    )
                if not set(part.cores) <= set(mine.cores):
                    raise BackendError(
                        f"run {spec.run_id} asks for cores {part.cpuset} on {part.node!r}, "
                        f"which lease {spec.lease_id} does not own"
                    )
                parts.append(part if part.cores else replace(part, cores=mine.cores))
            spec = replace(spec, gpus=parts)  # a run that names no cores gets the lease's
            argv = self.srun_argv(spec, mirror)
            spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(spec.log_path, "ab", buffering=0) as log:
                try:
                    process = subprocess.Popen(
                        argv,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=self.run_environment(spec),
                        start_new_session=True,  # a signal to the server does not reach the run's srun
                        close_fds=True,
                    )
                except OSError as exc:
                    raise BackendError(f"run {spec.run_id} could not start srun: {exc}") from exc
            run = _Run(spec=spec, process=process, job_name=self.run_name(spec.run_id), started_at=time.time())
            self._runs[spec.run_id] = run
        threading.Thread(target=self._reap, args=(run,), name=f"srun-{spec.run_id}", daemon=True).start()

    def srun_argv(self, spec: RunSpec, mirror: _Mirror) -> list[str]:
        """The srun command line of a run: a job in the lease's reservation, or a step in its allocation."""
        argv = [
            self.commands.path("srun"),
            "--quiet",
            f"--job-name={self.run_name(spec.run_id)}",
            "--kill-on-bad-exit=1",
        ]
        if spec.cwd:
            argv.append(f"--chdir={spec.cwd}")
        if mirror.kind == "allocation":
            argv += [f"--jobid={mirror.job_id}", "--overlap", "--nodes=1", "--ntasks=1"]
            part = spec.gpus[0]
            if part.cores:
                # The allocation's cores: task/affinity binds a task given all of a step's CPUs to them by itself
                # (auto binding); an explicit --cpu-bind would override the site's TaskPluginParam.
                argv.append(f"--cpus-per-task={len(part.cores)}")
        else:
            requests = {self.gres_request(p) or "" for p in spec.gpus}  # whole GPU nodes: never ""
            if len(requests) != 1:
                raise BackendError(
                    f"run {spec.run_id}: its nodes need different GPU requests ({sorted(requests)}); "
                    "Slurm gives one request to every node of a job"
                )
            argv += [
                f"--reservation={self.lease_name(spec.lease_id)}",
                f"--account={mirror.account}",
                *([f"--partition={self.partition}"] if self.partition else []),
                f"--nodes={len(spec.gpus)}", f"--nodelist={','.join(p.node for p in spec.gpus)}",
                "--ntasks-per-node=1", "--exclusive", f"--gres={requests.pop()}",
            ]  # fmt: skip
            if mirror.end is not None:
                argv.append(f"--time={minutes_until(datetime.now(UTC), mirror.end) + 1}")
        # Slurm names no GPU for a CPU lease (CUDA_VISIBLE_DEVICES unset: every GPU), nor for untyped GPUs.
        pin_gpus = not all(p.indices and self._typed(self._node(p.node)) for p in spec.gpus)
        if pin_gpus or any(p.cores for p in spec.gpus):
            script = (CPUS_PROLOGUE if any(p.cores for p in spec.gpus) else "") + (
                visible_devices_script(spec.gpus) if pin_gpus else 'exec "$@"\n'
            )
            argv += ["/bin/sh", "-c", script, self.run_name(spec.run_id)]
        return [*argv, *spec.command]

    def run_environment(self, spec: RunSpec) -> dict[str, str]:
        """The srun client's environment, which srun hands to the tasks: a minimal base (nothing of the
        server's own secrets), the customer's variables, then what gpulease sets."""
        env = {k: os.environ[k] for k in _RUN_ENV_BASE if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env["PYTHONUNBUFFERED"] = "1"
        cores = {len(p.cores) for p in spec.gpus}
        if len(cores) == 1 and 0 not in cores:  # OpenMP, MKL, OpenBLAS: a thread per leased core, not per CPU
            env["OMP_NUM_THREADS"] = str(next(iter(cores)))
        env.update(spec.env)
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        env["GPULEASE_LEASE_ID"] = str(spec.lease_id)
        env["GPULEASE_RUN_ID"] = spec.run_id
        for key in ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "SLURM_JOB_ID", "SLURM_JOBID"):
            env.pop(key, None)  # Slurm sets the GPU variables; a job id here would redirect srun
        for key in ("GPULEASE_CPUS", "GPULEASE_CORES"):  # gpulease's word, not the customer's
            env.pop(key, None)
        if len(cores) == 1 and 0 not in cores:
            env["GPULEASE_CORES"] = str(cores.pop())
        return self.commands.env(env)

    def _reap(self, run: _Run) -> None:
        code = run.process.wait()
        # Not under self._lock: lease end holds it while it waits for this very event.
        run.ended_at = time.time()
        if run.stop_requested:
            run.message = "stopped at lease end" if code != 0 else "exited 0 while being stopped"
        else:
            run.message = f"exited with code {code}"
        run.exit_code = code  # last: status() reads a run as finished from here on
        run.done.set()

    def _job_id_of_run(self, run: _Run) -> str | None:
        """The Slurm job (reservation runs) or job step (allocation runs) of a run, once srun has made it."""
        mirror = self._mirrors.get(run.spec.lease_id)
        if mirror is not None and mirror.kind == "allocation" and mirror.job_id:
            out = self.commands.run("squeue", "-h", "-s", "-j", mirror.job_id, "-o", "%i|%j", ok=("Invalid job id",))
            for line in out.splitlines():
                step, _, step_name = line.partition("|")
                if step_name == run.job_name:
                    return step
            return None
        out = self.commands.run("squeue", "-h", "-a", "-n", run.job_name, "-o", "%i")
        return out.split()[0] if out.split() else None

    def status(self, run_id: str) -> RunStatus:
        with self._lock:
            run = self._runs.get(run_id)
        if run is not None:
            return run.status()
        return self._status_from_slurm(run_id)

    def _status_from_slurm(self, run_id: str) -> RunStatus:
        """A run this process did not start (the control plane restarted): ask Slurm."""
        name = self.run_name(run_id)
        if self.commands.run("squeue", "-h", "-a", "-n", name, "-o", "%i").split():
            return RunStatus(RunState.RUNNING, None, None, None, "running in Slurm (started before a restart)")
        out = self.commands.run("squeue", "-h", "-a", "-s", "-o", "%i|%j")
        if any(line.endswith(f"|{name}") for line in out.splitlines()):
            return RunStatus(RunState.RUNNING, None, None, None, "running in Slurm (started before a restart)")
        records = [r for r in self.accounting(datetime.now(UTC) - timedelta(days=7)) if r.name == name]
        if records:
            rec = records[-1]
            state = RunState.SUCCEEDED if rec.state == "COMPLETED" and rec.exit_code == 0 else RunState.FAILED
            if rec.state == "CANCELLED":
                state = RunState.STOPPED
            return RunStatus(
                state, rec.exit_code, rec.start.timestamp() if rec.start else None,
                rec.end.timestamp() if rec.end else None, f"Slurm recorded {rec.state}",
            )  # fmt: skip
        raise BackendError(f"no run {run_id} in Slurm")

    def stop(self, run_id: str, grace_s: float) -> RunStatus:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                raise BackendError(f"no run {run_id} in the Slurm backend")
            if run.done.is_set():
                return run.status()
            run.stop_requested = True
            job = self._job_id_of_run(run)
        if job is not None:
            self._terminate([job], grace_s)
        if not run.done.wait(timeout=10):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.process.pid, 15)  # srun not yet given a job: it cancels its request
            run.done.wait(timeout=10)
        return run.status()

    def read_logs(self, run_id: str, offset: int = 0) -> tuple[bytes, int]:
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            raise BackendError(f"no run {run_id} in the Slurm backend")
        return read_log_file(run.spec.log_path, offset)

    def reattach(self, run_id: str, lease_id: int, log_path: Path) -> RunStatus:
        """Runs on Slurm are not re-attached one by one: after a restart the mirror adopts the lease's
        reservations and allocations, and a run's final state comes from `sacct` (see docs/slurm.md)."""
        raise BackendError(f"run {run_id} of lease {lease_id} is not re-attached by the Slurm backend")

    def notify_preemption(self, lease_id: int, deadline: datetime) -> None:
        """Not delivered on Slurm yet: the run learns of the end by SIGTERM at the deadline (docs/slurm.md)."""
        return None

    def close(self) -> None:
        """Forget the srun clients; the jobs, reservations and allocations belong to the leases and stay."""
        with self._lock:
            self._runs.clear()

    # -- accounting ---------------------------------------------------------------------------------

    def accounting(self, since: datetime, until: datetime | None = None) -> list[SlurmJobRecord]:
        """Jobs Slurm's accounting recorded between `since` and `until` (now), all users, allocations only."""
        args = [
            "-a", "-X", "-P", "-n", "--noconvert", "-S", slurm_time(since),
            "-E", slurm_time(until or datetime.now(UTC) + timedelta(minutes=1)),
            "-o", "JobIDRaw,JobName,Account,User,Reservation,State,ExitCode,Start,End,ElapsedRaw,AllocTRES,NodeList",
        ]  # fmt: skip
        out = self.commands.run("sacct", *args)
        records = []
        for line in out.splitlines():
            parts = line.split("|")
            if len(parts) < 12:
                continue
            code, _, _signal = parts[6].partition(":")
            records.append(
                SlurmJobRecord(
                    job_id=parts[0],
                    name=parts[1],
                    account=parts[2],
                    user=parts[3],
                    reservation=parts[4] or None,
                    state=parts[5].split()[0] if parts[5] else "",
                    exit_code=int(code) if code.isdigit() else None,
                    start=parse_slurm_time(parts[7]),
                    end=parse_slurm_time(parts[8]),
                    elapsed_s=int(parts[9]) if parts[9].isdigit() else 0,
                    gpus=gres_count(parts[10]),
                    nodes=parts[11],
                )
            )
        return records

    def reservation_records(self, since: datetime) -> list[ReservationRecord]:
        """Reservations of gpulease leases as Slurm's accounting recorded them (start, end) since `since`."""
        out = self.commands.run(
            "sacctmgr", "-n", "-P", "show", "reservation", f"start={slurm_time(since)}", "format=name,timestart,timeend"
        )
        records = []
        for line in out.splitlines():
            parts = line.split("|")
            if len(parts) >= 3 and self._lease_id_of(parts[0]) is not None:
                records.append(ReservationRecord(parts[0], parse_slurm_time(parts[1]), parse_slurm_time(parts[2])))
        return records

    def lease_of_record(self, rec: SlurmJobRecord) -> int | None:
        """The lease a recorded job belongs to: its reservation, or its name (an allocation)."""
        if rec.reservation:
            found = self._lease_id_of(rec.reservation)
            if found is not None:
                return found
        return self._lease_id_of(rec.name)

    def is_run(self, rec: SlurmJobRecord) -> bool:
        return rec.name.startswith(f"{self.prefix}-run-")


# A step's first words where the run is bound to cores: GPULEASE_CPUS says which CPUs Slurm bound it to (the ids
# are Slurm's choice, not gpulease's, see docs/slurm.md).
CPUS_PROLOGUE = (
    "GPULEASE_CPUS=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status); export GPULEASE_CPUS\n"
)


def visible_devices_script(gpus: Sequence[LeasedGpus]) -> str:
    """A POSIX sh prologue that sets CUDA_VISIBLE_DEVICES to the leased indices of the node it runs on
    (for nodes whose GPUs Slurm counts but does not name), then runs the command."""
    cases = "".join(f"  {shlex.quote(p.node)}) v={p.visible_devices} ;;\n" for p in gpus)
    return (
        'case "$SLURMD_NODENAME" in\n'
        f"{cases}"
        '  *) echo "gpulease: node $SLURMD_NODENAME is not part of this lease" >&2; exit 97 ;;\n'
        "esac\n"
        "CUDA_VISIBLE_DEVICES=$v NVIDIA_VISIBLE_DEVICES=$v; export CUDA_VISIBLE_DEVICES NVIDIA_VISIBLE_DEVICES\n"
        'exec "$@"\n'
    )


def _gpu_types(gres: str) -> tuple[str | None, ...]:
    """GPU types from sinfo's %G, e.g. `gpu:idx0:1,gpu:idx1:1(S:0)` or `gpu:8` or `gpu:a100:4(S:0-1)`."""
    types: list[str | None] = []
    for item in re.split(r",(?![^()]*\))", gres):
        item = re.sub(r"\(.*\)$", "", item.strip())
        parts = item.split(":")
        if not parts or parts[0] != "gpu":
            continue
        if len(parts) == 2 and parts[1].isdigit():
            types += [None] * int(parts[1])
        elif len(parts) >= 3 and parts[2].isdigit():
            types += [parts[1]] * int(parts[2])
        elif len(parts) == 2:
            types.append(parts[1])
    return tuple(types)


def _expand_nodes(commands: SlurmCommands, nodes: str) -> list[str]:
    """Slurm's compressed host list (`n[01-03]`) as names."""
    if not nodes or nodes in ("(null)", "None"):
        return []
    if "[" not in nodes:
        return nodes.split(",")
    return commands.run("scontrol", "show", "hostnames", nodes).split()
