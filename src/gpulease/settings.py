"""Every knob in one typed object, read from GPULEASE_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

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
    log_json: bool = False

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gpulease.db').resolve()}"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"


@lru_cache
def get_settings() -> Settings:
    return Settings()
