"""A stratified, deterministic sample of customers, so training scales with the sample.

LightGBM learns from per-customer rows; past a few million customers more rows add little
accuracy and cost memory and hours. ``retain train --sample-customers N`` (default 2,000,000)
trains and backtests on about ``N`` customers (each stratum's share rounded up: at most one
more per stratum), drawn *before* any feature is built, so memory scales with the sample and
not with the shop. The probabilistic models still fit
every customer (their fit runs on the grouped RFM summary, ``models.btyd.grouped_rfm``).

The sample is stratified by what the models learn from and what they predict, so a rare
stratum (the loyal few, the recently lapsed) keeps its share rather than its luck:

- orders: purchase days before the last horizon, bucketed 0 (first bought within it), 1, 2,
  3-4, 5-9, 10+;
- recency: days since the last purchase at the start of the last horizon, bucketed
  0-29, 30-89, 90-179, 180-364, 365+ (and "new" for the customers with no purchase before it);
- label: whether the customer bought within the last horizon ``[as_of - H, as_of)``, the
  outcome of the latest training origin.

Every stratum keeps ``ceil(size * N / customers)`` of its customers: the same rate everywhere,
so the sample needs no weights, and no stratum drops out. Within a stratum the customers kept
are those with the smallest :func:`customer_hash`, a function of the id's UTF-8 bytes alone
(FNV-1a 64 then the splitmix64 finaliser): the same customers on every run, on every machine
and in every engine (a Spark job keeps a customer by the same rule: ``row_number()`` over the
stratum ordered by this hash).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl
import pyarrow as pa

from retain.features.customers import rfm_summary
from retain.features.orders import Frame

DEFAULT_SAMPLE_CUSTOMERS = 2_000_000
ORDER_BUCKETS = (1, 2, 3, 5, 10)  # lower bounds: 1, 2, 3-4, 5-9, 10+ (0: none before)
RECENCY_BUCKETS = (0, 30, 90, 180, 365)  # lower bounds in days
STRATA = ("orders_bucket", "recency_bucket", "label")

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def customer_hash(customer_ids: pl.Series) -> np.ndarray:
    """A uint64 per id: FNV-1a 64 over its UTF-8 bytes, then splitmix64's finaliser (FNV's
    low bits alone are poorly mixed for short ids such as ``C0000001``). Loops over byte
    positions, not customers: ids are short."""
    column = pa.chunked_array([customer_ids.cast(pl.String).to_arrow()]).cast(pa.large_binary())
    array = column.combine_chunks()
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[array.offset:array.offset + len(array) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(1, np.uint8)
    if data.size == 0:
        data = np.zeros(1, np.uint8)
    starts, lengths = offsets[:-1], np.diff(offsets)
    h = np.full(len(starts), _FNV_OFFSET, dtype=np.uint64)
    for j in range(int(lengths.max(initial=0))):
        inside = lengths > j
        byte = data[np.minimum(starts + j, data.size - 1)].astype(np.uint64)
        h = np.where(inside, (h ^ byte) * _FNV_PRIME, h)
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


def customer_strata(transactions: Frame, as_of: date, horizon_days: int) -> pl.DataFrame:
    """``customer_id, orders_bucket, recency_bucket, label`` for every customer with a
    purchase before ``as_of`` (buckets as in the module doc; ``recency_bucket`` -1 = new)."""
    origin = as_of - timedelta(days=horizon_days)
    before, now = rfm_summary(transactions, origin), rfm_summary(transactions, as_of)
    joined = now.select("customer_id", pl.col("frequency").alias("now")).join(
        before.select("customer_id", "frequency", (pl.col("T") - pl.col("recency")).alias("since")),
        on="customer_id", how="left")
    orders = pl.col("frequency") + 1

    def bucket(value: pl.Expr, bounds: tuple[int, ...]) -> pl.Expr:
        return pl.sum_horizontal([(value >= b).cast(pl.Int8) for b in bounds])

    new = pl.col("frequency").is_null()
    return joined.select(
        "customer_id",
        pl.when(new).then(0).otherwise(bucket(orders, ORDER_BUCKETS)).cast(pl.Int8)
        .alias("orders_bucket"),
        pl.when(new).then(-1).otherwise(bucket(pl.col("since"), RECENCY_BUCKETS) - 1).cast(pl.Int8)
        .alias("recency_bucket"),
        (new | (pl.col("now") > pl.col("frequency"))).alias("label"),
    )


@dataclass(frozen=True)
class CustomerSample:
    """The customers kept and, per stratum, how many there were and how many were kept."""

    customer_ids: pl.Series
    customers: int
    strata: pl.DataFrame  # orders_bucket, recency_bucket, label, customers, sampled

    @property
    def sampled(self) -> int:
        return self.customer_ids.len()

    def of(self, transactions: Frame) -> pl.DataFrame:
        """The transactions of the sampled customers only."""
        return transactions.lazy().filter(pl.col("customer_id").is_in(self.customer_ids.implode())).collect()

    def summary(self) -> dict:
        """Plain values for MLflow and the backtest metrics."""
        return {"customers": self.sampled, "of_customers": self.customers,
                "strata": self.strata.height, "stratified_by": list(STRATA),
                "table": self.strata.to_dicts()}

    def line(self) -> str:
        return (f"a stratified sample of {self.sampled:,} of {self.customers:,} customers "
                f"({self.strata.height} strata by orders, recency and last-horizon purchase)")


def draw_sample(transactions: Frame, as_of: date, horizon_days: int,
                sample_customers: int) -> CustomerSample | None:
    """The stratified sample of about ``sample_customers`` customers (each stratum's
    share rounded up), or None when the shop has no more customers than that."""
    return select_sample(customer_strata(transactions, as_of, horizon_days), sample_customers)


def select_sample(strata: pl.DataFrame, sample_customers: int) -> CustomerSample | None:
    """The sample from :func:`customer_strata`'s frame, however it was computed (an engine
    that builds the strata per customer-hash partition collects them and draws here)."""
    total = strata.height
    if total <= sample_customers:
        return None
    rate = sample_customers / total
    ranked = strata.with_columns(pl.Series("hash", customer_hash(strata["customer_id"]))).with_columns(
        pl.len().over(STRATA).alias("stratum_size"),
        pl.col("hash").rank("ordinal").over(STRATA).alias("rank"))
    keep = pl.col("rank") <= (pl.col("stratum_size").cast(pl.Float64) * rate).ceil()
    kept = ranked.filter(keep)
    table = (ranked.group_by(STRATA).agg(pl.len().alias("customers"), keep.sum().alias("sampled"))
             .sort(STRATA))
    return CustomerSample(kept["customer_id"].sort(), total, table)


__all__ = ["DEFAULT_SAMPLE_CUSTOMERS", "STRATA", "CustomerSample", "customer_hash",
           "customer_strata", "draw_sample", "select_sample"]
