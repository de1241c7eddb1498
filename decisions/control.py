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

from retain.features.segments import bool_column

_DIGITS = 15
_SPACE = 16**_DIGITS


def control_group(customer_ids: pl.Series, *, share: float, salt: str) -> pl.Series:
    """Boolean Series ``control_group``: True for the customers in the global control group
    (a null id is drawn as the empty string, an integer id as its text)."""
    if not isinstance(customer_ids.dtype, pl.String):
        customer_ids = customer_ids.cast(pl.String)
    # hashlib has no vectorised form; sha256 is kept because anyone can recompute it anywhere.
    threshold = share * _SPACE
    members = np.fromiter(
        (int(hashlib.sha256(f"{salt}:{cid or ''}".encode()).hexdigest()[:_DIGITS], 16)
         < threshold for cid in customer_ids.to_list()), dtype=bool, count=customer_ids.len())
    # polars' direct constructor: pl.Series(numpy) spends ~20 us in checks on one customer.
    return bool_column("control_group", members)


def hash_fraction(customer_ids: pl.Series, *, salt: str) -> np.ndarray:
    """Per customer a number in [0, 1) drawn by the same salted sha256 as the control group (the
    first 15 hex digits over ``16**15``): the same in every run and for one customer alone.
    Use a salt of its own, or the draw follows control membership."""
    if not isinstance(customer_ids.dtype, pl.String):
        customer_ids = customer_ids.cast(pl.String)
    return np.fromiter(
        (int(hashlib.sha256(f"{salt}:{cid or ''}".encode()).hexdigest()[:_DIGITS], 16) / _SPACE
         for cid in customer_ids.to_list()), dtype=np.float64, count=customer_ids.len())
