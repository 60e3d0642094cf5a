"""The entrypoint of every gpulease Ray job: runs the customer's command inside the lease's placement group.

The Ray Jobs API cannot target a placement group, so each job runs this driver instead of the command:

    python -m gpulease.backends.ray_driver --placement-group gpulease-lease-7 --run-id r1 \\
        --gpus 0,1 [--gpus 2,3 ...] -- cmd args

It looks the placement group up by name, places one `RunHost` actor in each bundle (one bundle per
leased node, in lease order) with the bundle's GPUs and CPUs, and each actor runs the command in its own
process group with CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES set to that node's leased indices ("" for a
CPU lease) and, where the lease has cores there (`--cores 0-3,8` per bundle), pinned to them: Ray counts
CPUs but does not pin them, so the actor sets the command's CPU affinity (the cores and their hardware
threads) before it starts, which the command inherits and could widen again (docs/ray.md).
The command's output is copied to this driver's stdout, which is the job log, and the driver exits
with the command's exit code (128 + signal when it was killed), so the job's status is the run's.

The customer's environment arrives base64-encoded JSON in GPULEASE_RUN_ENV (set by the backend in the
job's runtime_env) rather than on the command line, to keep it out of process listings.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from gpulease.backends.base import LeasedGpus
from gpulease.backends.cpus import CpuPinningError, format_cpu_list, host_cpus, parse_cpu_list
from gpulease.backends.process_group import group_members, terminate_group

RUN_ENV_VAR = "GPULEASE_RUN_ENV"
_POLL_S = 0.2
# What a run inherits from the Ray worker: enough to find programs and speak UTF-8, nothing secret.
_INHERITED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "HOME", "USER", "LOGNAME")
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Sets the CPU affinity, then becomes the command (subprocess has no affinity option, and a preexec_fn is
# unsafe in a threaded actor).
_PIN = "import os, sys; os.sched_setaffinity(0, map(int, sys.argv[1].split(','))); os.execvp(sys.argv[2], sys.argv[2:])"


def run_environment(spec_env: dict[str, str], gpus: LeasedGpus) -> dict[str, str]:
    """The environment of a Ray run: a minimal base, the customer's variables, then the lease's GPUs.

    The GPU variables are written last so a customer cannot widen what the lease owns.
    CUDA_DEVICE_ORDER=PCI_BUS_ID makes CUDA number devices as NVML and nvidia-smi do; CUDA's
    default (fastest first) could map index 0 to a GPU the lease does not own.
    """
    env = {k: os.environ[k] for k in _INHERITED_ENV if k in os.environ}
    env.setdefault("PATH", _DEFAULT_PATH)
    env["PYTHONUNBUFFERED"] = "1"  # so a Python run's log streams line by line
    if gpus.cores:  # a thread per leased core, not per CPU of the node (the customer may set another)
        env["OMP_NUM_THREADS"] = str(len(gpus.cores))
    env.update(spec_env)
    env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    env["CUDA_VISIBLE_DEVICES"] = gpus.visible_devices
    env["NVIDIA_VISIBLE_DEVICES"] = gpus.visible_devices
    env["GPULEASE_LEASE_ID"] = str(gpus.lease_id)
    env.pop("GPULEASE_CPUS", None)  # the RunHost sets it where it pins the run
    env.pop("GPULEASE_CORES", None)
    if gpus.cores:
        env["GPULEASE_CORES"] = str(len(gpus.cores))
    return env


class RunHost:
    """Hosts one node's share of a run: the command's process group and its output.

    Used as a threaded Ray actor (max_concurrency > 1) so `terminate` and `drain` can be called
    while the command runs.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._output = bytearray()
        self._process: subprocess.Popen[bytes] | None = None
        self._exit_code: int | None = None
        self._terminated = False

    def where(self) -> dict[str, Any]:
        """Node and Ray's own GPU assignment, for the log line that makes mismatches visible."""
        import ray

        context = ray.get_runtime_context()
        return {"node_id": context.get_node_id(), "ray_gpu_ids": [str(g) for g in ray.get_gpu_ids()]}

    def start(self, command: list[str], env: dict[str, str], cwd: str | None, cores: str = "") -> None:
        """Start the command; pinned to `cores` (a cpuset of the lease's cores on this node) when given."""
        if self._terminated:  # stopped before it began: never start it
            with self._lock:
                self._exit_code = -signal.SIGTERM
            return
        if cores:
            try:
                cpus = format_cpu_list(host_cpus(parse_cpu_list(cores)))
            except CpuPinningError as exc:
                with self._lock:
                    self._output += f"[gpulease] cannot pin the run: {exc}\n".encode()
                    self._exit_code = 1
                return
            env = {**env, "GPULEASE_CPUS": cpus}
            command = [sys.executable, "-c", _PIN, cpus, *command]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            with self._lock:
                self._output += line
        code = self._process.wait()
        # Whatever the command left running in its group must not outlive the run.
        if group_members(self._process.pid):
            terminate_group(self._process.pid, grace_s=5.0)
        with self._lock:
            self._exit_code = code

    def drain(self) -> tuple[bytes, int | None, bool]:
        """Output since the last call, the exit code once the command and its output are done,
        and whether it was terminated on request."""
        with self._lock:
            data = bytes(self._output)
            self._output.clear()
            return data, self._exit_code, self._terminated

    def terminate(self, grace_s: float) -> None:
        """SIGTERM the command's process group, SIGKILL whatever is left after `grace_s`."""
        self._terminated = True
        if self._process is not None:
            terminate_group(self._process.pid, grace_s)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gpulease.backends.ray_driver")
    parser.add_argument("--placement-group", required=True)
    parser.add_argument("--namespace", default="gpulease")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--lease-id", type=int, default=0)
    parser.add_argument("--gpus", action="append", required=True, help="leased indices of one bundle")
    parser.add_argument("--cores", action="append", default=None, help="leased cores of one bundle (cpuset)")
    parser.add_argument("--cwd", default=None)
    parser.add_argument("--stop-grace", type=float, default=10.0)
    parser.add_argument("--wait-placement-s", type=float, default=60.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    if not args.command:
        parser.error("no command after --")
    return args


def exit_status(code: int) -> int:
    """A process exit status as a shell reports it: 128 + signal number for a killed command."""
    return 128 - code if code < 0 else code


def _say(message: str) -> None:
    sys.stdout.buffer.write(f"[gpulease] {message}\n".encode())
    sys.stdout.buffer.flush()


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    import ray
    from ray.util.placement_group import get_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    customer_env = json.loads(base64.b64decode(os.environ.get(RUN_ENV_VAR, "") or b"e30=") or "{}")
    # The driver's own output is the job log: keep Ray's worker log forwarding and chatter out of it.
    ray.init(address="auto", namespace=args.namespace, log_to_driver=False, logging_level=logging.WARNING)
    # After ray.init, which installs its own SIGTERM handler that would end the driver on the spot.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        pg = get_placement_group(args.placement_group)
    except ValueError:
        _say(f"placement group {args.placement_group} does not exist: the lease is not active")
        return 1
    if not pg.wait(args.wait_placement_s):
        _say(f"placement group {args.placement_group} is not placed after {args.wait_placement_s}s")
        return 1
    bundles = pg.bundle_specs
    if len(bundles) != len(args.gpus):
        _say(f"the lease has {len(bundles)} node(s) but the run names GPUs for {len(args.gpus)}")
        return 1
    cores = args.cores or [""] * len(args.gpus)
    if len(cores) != len(args.gpus):
        _say(f"the run names cores for {len(cores)} node(s) and GPUs for {len(args.gpus)}")
        return 1

    host_class: Any = ray.remote(RunHost)
    hosts: list[Any] = []
    for index, bundle in enumerate(bundles):
        hosts.append(
            host_class.options(
                name=f"gpulease-run-{args.run_id}-{index}",
                namespace=args.namespace,
                num_gpus=bundle.get("GPU", 0),
                num_cpus=bundle.get("CPU", 0),
                max_concurrency=4,
                max_restarts=0,
                scheduling_strategy=PlacementGroupSchedulingStrategy(
                    placement_group=pg, placement_group_bundle_index=index
                ),
            ).remote()
        )
    places = ray.get([h.where.remote() for h in hosts])
    for index, (gpus, place) in enumerate(zip(args.gpus, places, strict=True)):
        indices = tuple(int(i) for i in gpus.split(",") if i)
        leased = LeasedGpus(args.lease_id, place["node_id"], indices, cores=parse_cpu_list(cores[index]))
        env = run_environment(customer_env, leased)
        env["GPULEASE_RUN_ID"] = args.run_id
        env["GPULEASE_NODE_RANK"] = str(index)
        env["GPULEASE_NUM_NODES"] = str(len(hosts))
        # Ray counts GPUs per node; which physical ones a lease owns is gpulease's to say (docs/ray.md).
        _say(
            f"run {args.run_id} node {index} ({place['node_id'][:12]}): "
            f"GPUs {leased.visible_devices or 'none'} (ray assigned {','.join(place['ray_gpu_ids'])})"
            + (f", cores {leased.cpuset}" if leased.cores else "")
        )
        ray.get(hosts[index].start.remote(args.command, env, args.cwd, leased.cpuset))

    prefix = [f"[node {i}] ".encode() if len(hosts) > 1 else b"" for i in range(len(hosts))]
    codes: list[int | None] = [None] * len(hosts)
    stopping = False
    terminated = False
    while any(c is None for c in codes):
        if stop.is_set() and not stopping:
            stopping = True
            ray.get([h.terminate.remote(args.stop_grace) for h in hosts])
        for index, (data, code, by_request) in enumerate(ray.get([h.drain.remote() for h in hosts])):
            terminated = terminated or by_request
            if data:
                if prefix[index]:
                    data = b"".join(prefix[index] + line for line in data.splitlines(keepends=True))
                sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()
            codes[index] = code
        if any(c is None for c in codes):
            time.sleep(_POLL_S)
    if terminated and not stop.is_set():
        # The backend terminated the command and is about to stop this job; waiting for that
        # makes the job STOPPED rather than FAILED with the command's signal exit status.
        stop.wait(timeout=30)
    for host in hosts:
        ray.kill(host)
    final = next((c for c in codes if c), 0)
    assert final is not None
    return exit_status(final)


if __name__ == "__main__":
    sys.exit(main())
