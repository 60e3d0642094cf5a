"""Every knob in one typed object, read from GPULEASE_* environment variables."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GPULEASE_", extra="ignore")

    data_dir: Path = Field(
        default=Path(".gpulease"),
        description="this host's folder: the SQLite file, run logs, the audit signing key and checkpoint file",
    )
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default: an SQLite file under data_dir")
    tick_seconds: float = Field(default=1.0, description="how often lease start/end/preemption is checked")
    request_threads: int = Field(
        default=40,
        ge=1,
        le=200,
        description="threads serving requests at once (anyio's default is 40); requests waiting on a lock in the "
        "database hold one each",
    )
    work_slots: int = Field(
        default=0,
        ge=0,
        le=200,
        description="units of work (one transaction each) this process runs at once; the others wait their turn "
        "without using the CPU. 0: twice the CPUs. Dozens of request threads running at once spent half their CPU "
        "handing the interpreter's lock to each other",
    )
    clock_takeover_s: float = Field(
        default=1.0,
        gt=0,
        description="several servers on one PostgreSQL: how often one without the lease clock tries to take it over",
    )
    stop_grace_s: float = Field(default=10.0, description="SIGTERM→SIGKILL grace at lease end")
    compute_thresholds: tuple[float, ...] = Field(
        default=(1e24, 1e25, 1e26), description="cumulative training operations that put a customer in review"
    )
    telemetry_interval_s: float = Field(
        default=15.0,
        description="NVML sampling period for leased GPUs: this host's GPUs by index, for leases on `local` nodes "
        "(indexes the host lacks are skipped, each named once in the log)",
    )
    redflag_recent_incorporation_days: int = Field(default=365, description="a company younger than this…")
    redflag_large_request_gpus: int = Field(default=64, description="…asking for this many GPUs is a red flag")
    redflag_countries_of_concern: tuple[str, ...] | None = Field(
        default=None, description="ISO codes; default: Country Groups D:5 and E (see compliance/redflags.py)"
    )
    redflag_disabled: tuple[str, ...] = Field(default=(), description="red-flag rules switched off, by name")
    redflag_transshipment_terms: tuple[str, ...] | None = Field(
        default=None,
        description="words in a name, address or end use that mark a free-trade zone, freight forwarder or "
        "re-exporter (rule transshipment_risk); default: compliance/redflags.py TRANSSHIPMENT_TERMS",
    )
    cpu_leases_on_gpu_nodes: bool = Field(
        default=False,
        description="CPU leases may use the free cores of GPU nodes (never the share kept for their GPUs), once no "
        "CPU node fits",
    )
    compute_threshold_action: Literal["block", "allow"] = Field(
        default="block",
        description="a booking whose projected compute crosses a threshold: block (review before it starts) or "
        "allow (booked, and a report goes to review)",
    )
    compute_projection_open_ended_days: int = Field(
        default=30, description="how long an open-ended booking is assumed to run when its compute is projected"
    )
    lists_max_age_days: int = Field(
        default=30, description="`lists status`, the API and the dashboard warn about lists published longer ago"
    )
    lists_max_shrink: float = Field(
        default=0.10, description="a list load removing more than this share of a list's entries is refused"
    )
    ray_address: str | None = Field(default=None, description="Ray GCS address (HOST:6379) for ray clusters")
    ray_dashboard_url: str = Field(default="http://127.0.0.1:8265", description="Ray dashboard / Jobs API URL")
    rate_limit_per_s: float = Field(default=50.0, description="requests per second per key (0: no limit)")
    rate_limit_burst: int = Field(default=200, description="requests a key may send at once before the rate applies")
    max_body_bytes: int = Field(
        default=1 << 20, ge=0, description="largest request body accepted (413 above it; 0: no limit)"
    )
    idempotency_wait_s: float = Field(
        default=10.0, description="how long a duplicate request waits for the first one with its Idempotency-Key"
    )
    session_hours: float = Field(default=8.0, description="how long a dashboard sign-in lasts")
    audit_seal_interval_s: float = Field(default=1.0, description="how often new audit records are chained")
    audit_checkpoint_interval_s: float = Field(
        default=10.0, description="at most how often a checkpoint of a growing audit log is signed"
    )
    audit_signing_key_file: Path | None = Field(
        default=None, description="Ed25519 private key (PEM) for checkpoints; default: made on first use in data_dir"
    )
    audit_public_keys: tuple[str, ...] = Field(
        default=(), description="further keys (as `gpulease audit public-key` prints them) trusted after a key change"
    )
    slurm_bin_dir: str | None = Field(default=None, description="where scontrol, sbatch, srun... are; default: PATH")
    slurm_conf: str | None = Field(default=None, description="SLURM_CONF for those commands; default: Slurm's own")
    slurm_partition: str | None = Field(default=None, description="partition for allocations and runs")
    slurm_name_prefix: str = Field(
        default="gpulease", description="names of the reservations and jobs gpulease makes; unique per installation"
    )
    slurm_account_template: str = Field(
        default="gpulease-c{customer_id}", description="the Slurm account of a customer without an explicit one"
    )
    slurm_accounts: dict[int, str] = Field(default_factory=dict, description='JSON {"customer id": "account"}')
    slurm_users: dict[int, list[str]] = Field(
        default_factory=dict, description='JSON {"customer id": ["slurm user", ...]} admitted to its reservations'
    )
    slurm_manage_accounts: bool = Field(
        default=True, description="create missing customer accounts and associations with sacctmgr"
    )
    slurm_gpu_type_template: str = Field(
        default="idx{index}", description='GRES type naming GPU {index} on a node; "" = GPUs counted, not named'
    )
    slurm_accounting_interval_s: float = Field(
        default=300.0, description="how often Slurm's accounting (sacct) is compared with gpulease's usage"
    )
    slurm_accounting_tolerance_s: float = Field(
        default=120.0, description="per GPU: how far Slurm's and gpulease's seconds may differ before an alert"
    )
    slurm_node_poll_s: float = Field(
        default=10.0, description="how often the clock reads Slurm's node states (down, drained: a node failure)"
    )
    log_json: bool = Field(default=False, description="log one JSON object per line instead of text")
    sandbox_dir: Path | None = Field(
        default=None, description="per-lease home and /tmp of local runs; default data_dir/sandboxes (must be o+x)"
    )
    sandbox_uid_base: int = Field(
        default=2_000_000_000, ge=1000, description="a customer's local runs get uid/gid base + customer id (root)"
    )
    sandbox_network: Literal["none", "host"] = Field(
        default="none", description="local runs: none (loopback only) or host (share the host's network)"
    )
    sandbox_device_dir: Path = Field(default=Path("/dev"), description="where /dev/nvidia* nodes are found")
    sandbox_ro_paths: tuple[Path, ...] = Field(
        default=(), description="extra host folders local runs see read-only (e.g. /opt/conda, datasets)"
    )
    sandbox_max_processes: int = Field(default=4096, ge=16, description="processes per customer uid (RLIMIT_NPROC)")
    sandbox_cpuset_cgroup: str = Field(
        default="auto",
        description="local runs pinned to a lease's cores get a cpuset cgroup here: auto, off (affinity only), "
        "or a cgroup folder",
    )
    spend_limit_notice_s: int = Field(
        default=300,
        ge=0,
        description="notice a running on-demand/interruptible lease gets when its customer's "
        "monthly spend limit is reached, before it is ended",
    )
    lease_ending_soon_s: int = Field(
        default=900, ge=0, description="how long before a lease's end the customer is told"
    )
    webhook_allow_private_targets: bool = Field(
        default=False, description="let webhooks deliver to loopback/private addresses (tests, closed networks)"
    )
    webhook_timeout_s: float = Field(default=10.0, description="how long a webhook delivery may take")
    webhook_max_attempts: int = Field(default=8, ge=1, description="attempts before a delivery is given up")
    webhook_retry_base_s: float = Field(default=30.0, description="first retry after this; doubles each time")
    webhook_retry_cap_s: float = Field(default=3600.0, description="longest wait between two attempts")
    webhook_poll_s: float = Field(default=2.0, description="how often the delivery worker looks for due deliveries")

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gpulease.db').resolve()}"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def audit_key_path(self) -> Path:
        return self.audit_signing_key_file or self.data_dir / "audit-signing-key.pem"

    @property
    def audit_checkpoint_path(self) -> Path:
        """Where every signed checkpoint is appended, for an operator to ship elsewhere."""
        return self.data_dir / "audit-checkpoints.jsonl"

    @property
    def sandboxes_dir(self) -> Path:
        return self.sandbox_dir or self.data_dir / "sandboxes"


@lru_cache
def get_settings() -> Settings:
    return Settings()


def _shown(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list | dict):
        return json.dumps(list(value) if isinstance(value, tuple) else value, default=str)
    return str(value)


def reference() -> str:
    """Every setting as a Markdown table (environment variable, default, meaning), drawn from `Settings` itself:
    docs/deploy.md carries it, and a test keeps the two the same (`python -m gpulease.settings` prints it)."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    rows = ["| setting | default | what it means |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = _shown(field.get_default(call_default_factory=True))
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{prefix}{name.upper()}` | `{default}` | {meaning} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(reference(), end="")
