"""Settings: flags win over ``RETAIN_*`` environment variables, which win over defaults."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of retain. Environment: ``RETAIN_<NAME>``, e.g. ``RETAIN_HORIZON_DAYS=60``,
    ``RETAIN_COLUMN_MAP='{"customer_id": "client_code"}'``."""

    model_config = SettingsConfigDict(env_prefix="RETAIN_", extra="ignore")

    transactions: str | None = Field(None, description="Transactions: CSV, Parquet or database URL")
    query: str | None = Field(None, description="SQL query when transactions is a database URL")
    as_of: date | None = Field(None, description="Scores and features use data strictly before it")
    horizon_days: int = Field(90, ge=1, le=3650, description="Prediction horizon in days")
    on_bad_rows: Literal["fail", "skip"] = "fail"
    column_map: dict[str, str] = Field(default_factory=dict, description="contract -> your column")


def settings(**flags: Any) -> Settings:
    """Settings from flags given on the command line (None = not given) over the environment."""
    return Settings(**{name: value for name, value in flags.items() if value is not None})


@lru_cache
def get_settings() -> Settings:
    return Settings()
