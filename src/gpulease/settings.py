"""Every knob in one typed object, read from GPULEASE_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GPULEASE_", extra="ignore")

    data_dir: Path = Path(".gpulease")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default: an SQLite file under data_dir")
    tick_seconds: float = Field(default=1.0, description="how often lease start/end/preemption is checked")
    stop_grace_s: float = Field(default=10.0, description="SIGTERM→SIGKILL grace at lease end")
    compute_thresholds: tuple[float, ...] = Field(
        default=(1e24, 1e25, 1e26), description="cumulative training operations that put a customer in review"
    )
    telemetry_interval_s: float = Field(default=15.0, description="NVML sampling period for leased GPUs")
    redflag_recent_incorporation_days: int = Field(default=365, description="a company younger than this…")
    redflag_large_request_gpus: int = Field(default=64, description="…asking for this many GPUs is a red flag")
    redflag_countries_of_concern: tuple[str, ...] | None = Field(
        default=None, description="ISO codes; default: Country Groups D:5 and E (see compliance/redflags.py)"
    )
    redflag_disabled: tuple[str, ...] = Field(default=(), description="red-flag rules switched off, by name")
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
    log_json: bool = False
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
