"""The global control group: the configured share, stable, and recomputable by anyone."""

from __future__ import annotations

import hashlib
import math

import polars as pl
import pytest

from retain.decisions.control import control_group
from retain.decisions.rules import default_rules

RULES = default_rules().control_group
N = 100_000


@pytest.fixture(scope="module")
def ids() -> pl.Series:
    return pl.Series("customer_id", [f"C{i:07d}" for i in range(N)])


@pytest.fixture(scope="module")
def members(ids) -> pl.Series:
    return control_group(ids, share=RULES.share, salt=RULES.salt)


def _by_hand(customer_id: str, share: float, salt: str) -> bool:
    """The documented formula, written out independently of the module."""
    digest = hashlib.sha256(f"{salt}:{customer_id}".encode()).hexdigest()
    return int(digest[:15], 16) < share * 16**15


def test_the_share_is_the_configured_one(members):
    assert members.name == "control_group" and members.dtype == pl.Boolean
    assert members.len() == N
    share = members.mean()
    sigma = math.sqrt(RULES.share * (1 - RULES.share) / N)
    assert RULES.share == 0.075
    assert abs(share - RULES.share) < 4 * sigma


@pytest.mark.parametrize("share", [0.0, 0.05, 0.1, 0.5])
def test_other_shares_are_honoured(ids, share):
    drawn = control_group(ids, share=share, salt=RULES.salt).mean()
    sigma = math.sqrt(max(share * (1 - share), 1e-12) / N)
    assert abs(drawn - share) <= 4 * sigma


def test_a_larger_share_keeps_everyone_of_the_smaller_one(ids):
    small = control_group(ids, share=0.05, salt=RULES.salt)
    large = control_group(ids, share=0.10, salt=RULES.salt)
    assert not (small & ~large).any()


def test_membership_is_deterministic_across_calls(ids, members):
    again = control_group(ids, share=RULES.share, salt=RULES.salt)
    assert again.equals(members)


def test_membership_does_not_depend_on_the_rest_of_the_batch(ids, members):
    frame = pl.DataFrame({"customer_id": ids, "member": members})
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=3)
    drawn = control_group(shuffled["customer_id"], share=RULES.share, salt=RULES.salt)
    assert drawn.to_list() == shuffled["member"].to_list()
    # In small batches, one customer at a time too.
    for start in range(0, 2000, 250):
        batch = frame.slice(start, 250)
        assert control_group(batch["customer_id"], share=RULES.share,
                             salt=RULES.salt).to_list() == batch["member"].to_list()
    for row in frame.head(50).iter_rows(named=True):
        alone = control_group(pl.Series([row["customer_id"]]), share=RULES.share,
                              salt=RULES.salt)
        assert alone.item() == row["member"]


def test_a_new_salt_draws_a_new_group(ids, members):
    other = control_group(ids, share=RULES.share, salt="another-salt")
    assert abs(other.mean() - RULES.share) < 0.01
    overlap = (members & other).sum() / members.sum()
    # Independent draws overlap by about the share itself, far from all.
    assert overlap < 0.2


def test_it_matches_the_documented_sha256_formula(ids, members):
    chosen = ids.head(2000).to_list()
    expected = [_by_hand(cid, RULES.share, RULES.salt) for cid in chosen]
    assert members.head(2000).to_list() == expected
    assert any(expected) and not all(expected)
    # Ids that are not the simulator's, including Cyrillic and an empty string.
    odd = ["42", " 7 ", "клиент-001", "", "a:b", "C0000001"]
    for salt in (RULES.salt, "s"):
        got = control_group(pl.Series(odd), share=0.5, salt=salt).to_list()
        assert got == [_by_hand(cid, 0.5, salt) for cid in odd]
        assert [control_group(pl.Series([cid]), share=0.5, salt=salt).item()
                for cid in odd] == got


def test_one_customer_at_a_time_agrees_with_the_series(ids, members):
    chosen = ids.head(5000).to_list()
    alone = [control_group(pl.Series([cid]), share=RULES.share, salt=RULES.salt).item()
             for cid in chosen]
    assert alone == members.head(5000).to_list()
    assert control_group(pl.Series([None], dtype=pl.String), share=0.5, salt="s").item() \
        == _by_hand("", 0.5, "s")


def test_integer_ids_are_hashed_as_their_text():
    as_int = control_group(pl.Series([1, 22, 333, 4444]), share=0.5, salt=RULES.salt)
    as_text = control_group(pl.Series(["1", "22", "333", "4444"]), share=0.5, salt=RULES.salt)
    assert as_int.to_list() == as_text.to_list()
