"""Settings: flags win over ``RETAIN_*`` environment variables, which win over defaults."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of retain. Environment: ``RETAIN_<NAME>``, e.g. ``RETAIN_HORIZON_DAYS=60``,
    ``RETAIN_COLUMN_MAP='{"customer_id": "client_code"}'``."""

    model_config = SettingsConfigDict(env_prefix="RETAIN_", extra="ignore")

    transactions: str | None = Field(None, description="Transactions: CSV, Excel, Parquet or database URL")
    query: str | None = Field(None, description="SQL query when transactions is a database URL")
    as_of: date | None = Field(None, description="Scores and features use data strictly before it")
    horizon_days: int = Field(90, ge=1, le=3650, description="Prediction horizon in days")
    on_bad_rows: Literal["fail", "skip"] = "fail"
    column_map: dict[str, str] = Field(default_factory=dict, description="contract -> your column")
    encoding: str | None = Field(None, description="File encoding when not UTF-8, e.g. cp1251")
    date_format: str | None = Field(None, description="strftime format of the ts column")
    drop_duplicates: bool = Field(False, description="Drop lines identical to an earlier one")
    # Beside the defaults (features.contract.CANCELLED_STATUSES / RETURNED_STATUSES); the
    # environment gives a JSON list: RETAIN_CANCELLED_STATUSES='["Аннулирован клиентом"]'.
    cancelled_statuses: list[str] = Field(
        default_factory=list, description="Status values of a cancelled line (left out)")
    returned_statuses: list[str] = Field(
        default_factory=list, description="Status values of a returned line (a refund)")
    # Side tables the served report (/ui/report) reads beside the transactions.
    customers: str | None = Field(None, description="Customers table: CSV, Excel, Parquet or database URL")
    contacts: str | None = Field(None, description="Contacts log: CSV, Excel, Parquet or database URL")
    costs: str | None = Field(None, description="Acquisition costs: acquisition_channel, month, spend")
    # Decisions.
    rules: str | None = Field(None, description="Decision rules YAML (default: built-in rules)")
    lang: Literal["en", "ru"] = Field("en", description="Language of the decision reasons")
    # Serving (``retain serve``).
    # A secret as a whole: pydantic would otherwise quote a key in a validation error.
    api_keys: SecretStr | None = Field(
        None, description='API key -> scopes, JSON: {"k1": ["score"], "k2": ["score", "export"]}'
    )
    allow_no_auth: bool = Field(False, description="Dev only: serve without API keys when none is set")
    store_url: str = Field(
        "sqlite:///retain.db", repr=False,  # a database URL may hold a password
        description="Database URL of the score store",
    )
    model_alias: str = Field("champion", min_length=1, description="Registry alias to serve")
    reload_interval: float = Field(
        60.0, ge=0, description="Seconds between checks for a moved model alias; 0 = never"
    )
    max_request_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Larger bodies get 413")
    load_retry_interval: float = Field(
        5.0, gt=0, description="Seconds between attempts to load a model while none is loaded"
    )
    max_header_bytes: int = Field(
        64 * 1024, ge=1024, description="Larger request headers get 431 (retain serve)"
    )


# Settings whose flag is not the field's name with dashes.
FLAG_NAMES = {"column_map": "--map", "cancelled_statuses": "--cancelled-status",
              "returned_statuses": "--returned-status"}


class SettingsError(ValueError):
    """A setting a flag or a ``RETAIN_*`` variable gave that retain cannot use: one line."""


def settings(**flags: Any) -> Settings:
    """Settings from flags given on the command line (None = not given) over the environment.
    A wrong value is a :class:`SettingsError` naming the flag or the variable it came from."""
    import re

    from pydantic import ValidationError
    from pydantic_settings import SettingsError as SourceError

    given = {name: value for name, value in flags.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise SettingsError(described(exc, given)) from None
    except SourceError as exc:  # a variable that is not JSON where JSON is read
        field = re.search(r'field "(\w+)"', str(exc))
        name = f"RETAIN_{field.group(1).upper()}" if field else "a RETAIN_ variable"
        example = (""", e.g. '{"customer_id": "client_code"}'"""
                   if name == "RETAIN_COLUMN_MAP" else "")
        raise SettingsError(f"{name}: not valid JSON{example}") from None


def described(exc: Any, given: dict[str, Any]) -> str:
    """pydantic's errors of ``exc`` as "--flag: what is wrong" or "RETAIN_NAME: ...", never
    the value itself (a key or a database password may be one)."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        name = str(error["loc"][0]) if error["loc"] else ""
        where = (FLAG_NAMES.get(name, "--" + name.replace("_", "-")) if name in given
                 else f"RETAIN_{name.upper()}")
        lines.append(f"{where}: {error['msg']}")
    return "; ".join(lines)
