"""The Ray backend: a lease is a placement group pinned to its nodes, a run is a Ray job.

Pinning: every Ray node carries the label `ray.io/node-id` (Ray 2.60 sets it); gpulease resolves the
lease's node name to a Ray node (its `gpulease.io/node` label, else hostname, IP or node id) and gives
each bundle a `bundle_label_selector` on that node id. Unlike the older `node:<ip>` custom resource,
this stays right when several Ray nodes share an IP (KubeRay pods behind one host) and the GCS
refuses to place the bundle anywhere else: an unplaceable lease stays PENDING instead of drifting.

Runs are Ray jobs (`submission_id` = run id) whose entrypoint is `gpulease.backends.ray_driver`,
which runs the command in actors placed in the lease's bundles. See docs/ray.md.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shlex
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import ray
from ray.job_submission import JobStatus, JobSubmissionClient
from ray.util.placement_group import (
    get_placement_group,
    placement_group,
    remove_placement_group,
)

import gpulease
from gpulease.backends.base import (
    BackendError,
    LeasedGpus,
    RunSpec,
    RunState,
    RunStatus,
    validate_spec,
)
from gpulease.backends.ray_driver import RUN_ENV_VAR

NODE_LABEL = "gpulease.io/node"
RAY_NODE_ID_LABEL = "ray.io/node-id"
_LEASE_META = "gpulease_lease_id"
_STATES = {
    JobStatus.PENDING: RunState.PENDING,
    JobStatus.RUNNING: RunState.RUNNING,
    JobStatus.SUCCEEDED: RunState.SUCCEEDED,
    JobStatus.FAILED: RunState.FAILED,
    JobStatus.STOPPED: RunState.STOPPED,
}


def _ray_nodes() -> list[dict[str, Any]]:
    return list(ray.nodes())  # type: ignore[no-untyped-call]


def placement_group_name(lease_id: int) -> str:
    return f"gpulease-lease-{lease_id}"


def placement_strategy(gpus: list[LeasedGpus]) -> str:
    """One bundle per leased node: STRICT_PACK keeps a one-node lease whole, STRICT_SPREAD keeps
    a multi-node lease's bundles on distinct nodes (the label selectors then say which ones)."""
    return "STRICT_PACK" if len(gpus) == 1 else "STRICT_SPREAD"


def driver_entrypoint(spec: RunSpec, python: str, namespace: str, stop_grace_s: float) -> str:
    """The job's entrypoint: the gpulease driver, told which placement group and GPUs to use."""
    argv = [
        python, "-m", "gpulease.backends.ray_driver",
        "--placement-group", placement_group_name(spec.lease_id),
        "--namespace", namespace,
        "--run-id", spec.run_id,
        "--lease-id", str(spec.lease_id),
        "--stop-grace", str(stop_grace_s),
    ]  # fmt: skip
    for part in spec.gpus:
        argv += ["--gpus", part.visible_devices]
    if any(part.cores for part in spec.gpus):
        for part in spec.gpus:
            argv += ["--cores", part.cpuset]
    if spec.cwd:
        argv += ["--cwd", spec.cwd]
    return shlex.join([*argv, "--", *spec.command])


class RayBackend:
    """Runs leases on an existing Ray cluster.

    `address`: the GCS address (`HEAD:6379`, or "auto" on a cluster node).
    `dashboard_url`: the Jobs API (`http://HEAD:8265`).
    `driver_python`: the Python on the cluster that runs the driver; this interpreter by default,
      right when the cluster shares this machine's environment (use "python" for a remote image).
    `pythonpath`: put on the driver's PYTHONPATH so it can import gpulease; by default the directory
      this gpulease was imported from; "" when gpulease is installed on the cluster.
    `cpus_per_bundle`: the CPU a GPU lease reserves on each node besides its GPUs when gpulease does not know
      the lease's cores there (a lease with cores reserves one Ray CPU per core: see `bundle`).
    `stop_grace_s`: SIGTERM-to-SIGKILL grace the driver uses when Ray stops a job by itself.
    """

    name = "ray"

    def __init__(
        self,
        address: str = "auto",
        dashboard_url: str = "http://127.0.0.1:8265",
        namespace: str = "gpulease",
        driver_python: str | None = None,
        pythonpath: str | None = None,
        cpus_per_bundle: float = 1.0,
        placement_timeout_s: float = 30.0,
        stop_grace_s: float = 10.0,
    ) -> None:
        self._namespace = namespace
        self._driver_python = driver_python or sys.executable
        here = str(Path(gpulease.__file__).resolve().parent.parent)
        self._pythonpath = here if pythonpath is None else pythonpath
        self._cpus_per_bundle = cpus_per_bundle
        self._placement_timeout_s = placement_timeout_s
        self._stop_grace_s = stop_grace_s
        self._lock = threading.Lock()
        self._leases: dict[int, list[LeasedGpus]] = {}
        self._we_connected = False
        try:
            if not ray.is_initialized():
                ray.init(address=address, namespace=namespace, log_to_driver=False)
                self._we_connected = True
            self._jobs = JobSubmissionClient(dashboard_url)
        except Exception as exc:  # ray raises ConnectionError, RuntimeError, ValueError...
            raise BackendError(
                f"cannot reach the Ray cluster (GCS {address}, Jobs API {dashboard_url}): {exc}"
            ) from exc

    # -- leases -----------------------------------------------------------------------------------

    def ray_node_id(self, node: str) -> str:
        """The Ray node id of the inventory node `node`."""
        alive = [n for n in _ray_nodes() if n.get("Alive")]
        matchers: list[Callable[[dict[str, Any]], bool]] = [
            lambda n: n.get("Labels", {}).get(NODE_LABEL) == node,
            lambda n: n.get("NodeManagerHostname") == node,
            lambda n: n.get("NodeManagerAddress") == node,
            lambda n: n.get("NodeID") == node,
        ]
        for match in matchers:
            found = [n for n in alive if match(n)]
            if len(found) == 1:
                return str(found[0]["NodeID"])
            if len(found) > 1:
                raise BackendError(f"{len(found)} Ray nodes answer to {node!r}; label each with {NODE_LABEL}")
        raise BackendError(
            f"no live Ray node is {node!r}: start it with --labels {NODE_LABEL}={node} "
            "or name it by its hostname or IP in the inventory"
        )

    def bundle(self, part: LeasedGpus) -> dict[str, float]:
        """The lease's bundle on one node: its GPUs, one Ray CPU per leased core (`cpus_per_bundle` where the
        lease's cores are not known) and a CPU lease's memory. A CPU lease asks for no GPU."""
        bundle: dict[str, float] = {"CPU": float(len(part.cores)) if part.cores else self._cpus_per_bundle}
        if part.indices:
            bundle["GPU"] = len(part.indices)
        if part.memory_gib is not None:
            bundle["memory"] = float(part.memory_gib * 2**30)
        return bundle

    def lease_started(self, lease_id: int, gpus: list[LeasedGpus]) -> None:
        name = placement_group_name(lease_id)
        gpu_total = {str(n["NodeID"]): n.get("Resources", {}).get("GPU", 0) for n in _ray_nodes()}
        node_ids = []
        for part in gpus:
            node_id = self.ray_node_id(part.node)
            if part.indices and max(part.indices) >= gpu_total.get(node_id, 0):
                raise BackendError(
                    f"lease {lease_id}: node {part.node!r} has {gpu_total.get(node_id, 0):g} GPUs in Ray, "
                    f"the lease names index {max(part.indices)}"
                )
            node_ids.append(node_id)
        try:
            pg = get_placement_group(name)  # already there: the control plane restarted
        except ValueError:
            pg = placement_group(
                bundles=[self.bundle(p) for p in gpus],
                strategy=placement_strategy(gpus),
                name=name,
                lifetime="detached",  # outlives this process; removed by lease_ended only
                bundle_label_selector=[{RAY_NODE_ID_LABEL: node_id} for node_id in node_ids],
            )
        if not pg.wait(self._placement_timeout_s):
            remove_placement_group(pg)
            raise BackendError(
                f"lease {lease_id}: Ray could not reserve {[self.bundle(p) for p in gpus]} on "
                f"{[p.node for p in gpus]} within {self._placement_timeout_s:g}s; Ray's free GPUs, CPUs or memory "
                "on those nodes are too few (something outside gpulease is using them?)"
            )
        with self._lock:
            self._leases[lease_id] = list(gpus)

    def lease_ended(self, lease_id: int, grace_s: float) -> None:
        with self._lock:
            self._leases.pop(lease_id, None)
        live = [
            job.submission_id
            for job in self._jobs.list_jobs()
            if (job.metadata or {}).get(_LEASE_META) == str(lease_id)
            and job.submission_id is not None
            and not job.status.is_terminal()
        ]
        if live:
            with ThreadPoolExecutor(max_workers=min(len(live), 16)) as pool:
                list(pool.map(lambda run_id: self.stop(run_id, grace_s), live))
        try:
            pg = get_placement_group(placement_group_name(lease_id))
        except ValueError:
            return
        # Removing the group also kills any actor still in it: the last line of defence.
        remove_placement_group(pg)

    # -- runs -------------------------------------------------------------------------------------

    def start(self, spec: RunSpec) -> None:
        validate_spec(spec)
        with self._lock:
            leased = self._leases.get(spec.lease_id)
        if leased is None:
            raise BackendError(f"run {spec.run_id}: lease {spec.lease_id} is not active")
        by_node = {p.node: p for p in leased}
        if [p.node for p in spec.gpus] != [p.node for p in leased]:
            raise BackendError(
                f"run {spec.run_id}: a Ray run uses every node of its lease, in lease order "
                f"({[p.node for p in leased]})"
            )
        for part in spec.gpus:
            if not set(part.indices) <= set(by_node[part.node].indices):
                raise BackendError(
                    f"run {spec.run_id} asks for GPUs {part.indices} on {part.node!r}, "
                    f"which lease {spec.lease_id} does not own"
                )
            if not set(part.cores) <= set(by_node[part.node].cores):
                raise BackendError(
                    f"run {spec.run_id} asks for cores {part.cpuset} on {part.node!r}, "
                    f"which lease {spec.lease_id} does not own"
                )
        # A run that names no cores gets the lease's (the driver pins it to them).
        spec = replace(spec, gpus=[p if p.cores else replace(p, cores=by_node[p.node].cores) for p in spec.gpus])
        env_vars = {
            RUN_ENV_VAR: base64.b64encode(json.dumps(spec.env).encode()).decode(),
            # Ray's own SIGTERM-to-SIGKILL wait for the driver; it must cover the driver's grace.
            "RAY_JOB_STOP_WAIT_TIME_S": str(int(self._stop_grace_s) + 15),
        }
        if self._pythonpath:
            env_vars["PYTHONPATH"] = self._pythonpath
        runtime_env: dict[str, Any] = {"env_vars": env_vars}
        if spec.image is not None:
            # Ray runs the job's workers in this image with podman; it needs Ray, Python and
            # gpulease at the cluster's versions inside (docs/ray.md).
            runtime_env["image_uri"] = spec.image
        try:
            self._jobs.submit_job(
                entrypoint=driver_entrypoint(spec, self._driver_python, self._namespace, self._stop_grace_s),
                submission_id=spec.run_id,
                runtime_env=runtime_env,
                metadata={_LEASE_META: str(spec.lease_id), "gpulease_run_id": spec.run_id},
            )
        except Exception as exc:  # the Jobs client raises RuntimeError carrying the HTTP answer
            raise BackendError(f"run {spec.run_id}: Ray refused the job: {exc}") from exc

    def status(self, run_id: str) -> RunStatus:
        try:
            info = self._jobs.get_job_info(run_id)
        except RuntimeError as exc:
            raise BackendError(f"no run {run_id} in Ray: {exc}") from exc
        return RunStatus(
            state=_STATES[info.status],
            exit_code=info.driver_exit_code,
            started_at=info.start_time / 1000 if info.start_time else None,
            ended_at=info.end_time / 1000 if info.end_time else None,
            message=info.message,
        )

    def stop(self, run_id: str, grace_s: float) -> RunStatus:
        """Terminate the command's process groups with exactly `grace_s`, then stop the job."""
        if self.status(run_id).state.finished:
            return self.status(run_id)
        hosts = []
        for index in range(64):  # one host actor per leased node
            try:
                hosts.append(ray.get_actor(f"gpulease-run-{run_id}-{index}", namespace=self._namespace))
            except ValueError:
                break
        if hosts:
            # An actor that died or hung is left to stop_job and the placement group's removal.
            with contextlib.suppress(ray.exceptions.RayError, TimeoutError):
                ray.get([h.terminate.remote(grace_s) for h in hosts], timeout=grace_s + 15)
        self._jobs.stop_job(run_id)
        deadline = time.monotonic() + grace_s + 20
        while time.monotonic() < deadline:
            status = self.status(run_id)
            if status.state.finished:
                return status
            time.sleep(0.2)
        return self.status(run_id)

    def read_logs(self, run_id: str, offset: int = 0) -> tuple[bytes, int]:
        try:
            data = self._jobs.get_job_logs(run_id).encode()
        except RuntimeError as exc:
            raise BackendError(f"no logs for run {run_id} in Ray: {exc}") from exc
        return data[offset:], max(offset, len(data))

    def reattach(self, run_id: str, lease_id: int, log_path: Path) -> RunStatus:
        """Ray owns its jobs: a restarted control plane only asks for their status."""
        return self.status(run_id)

    def notify_preemption(self, lease_id: int, deadline: datetime) -> None:
        """Not delivered to Ray jobs yet: they learn of preemption from the lease's end (docs/ray.md)."""

    def close(self) -> None:
        """Disconnect; runs and placement groups stay with the cluster, which owns them."""
        if self._we_connected and ray.is_initialized():
            ray.shutdown()
