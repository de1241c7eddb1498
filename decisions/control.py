"""The global control group: customers who never get an action, so the effect can be measured.

Membership is a salted hash of the customer id, so it is the same in every run, for every model
version, and anyone can recompute it: a customer is in the group when the first 15 hex digits of
``sha256(salt + ":" + customer_id)`` read as an integer are below ``share * 16**15``. In
PostgreSQL, for instance: ``('x' || substr(encode(sha256(convert_to(salt || ':' || id, 'UTF8')),
'hex'), 1, 15))::bit(60)::bigint < share * 16^15``.
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl

_DIGITS = 15
_SPACE = 16**_DIGITS


def control_group(customer_ids: pl.Series, *, share: float, salt: str) -> pl.Series:
    """Boolean Series ``control_group``: True for the customers in the global control group."""
    # hashlib has no vectorised form; sha256 is kept because anyone can recompute it anywhere.
    draws = np.fromiter((_draw(cid, salt) for cid in customer_ids.cast(pl.String).fill_null("")),
                        dtype=np.int64, count=customer_ids.len())
    return pl.Series("control_group", draws < share * _SPACE)


def in_control_group(customer_id: str | None, *, share: float, salt: str) -> bool:
    """:func:`control_group` of one customer, without a Series (the API's small requests)."""
    return _draw(customer_id or "", salt) < share * _SPACE


def _draw(customer_id: str, salt: str) -> int:
    return int(hashlib.sha256(f"{salt}:{customer_id}".encode()).hexdigest()[:_DIGITS], 16)
