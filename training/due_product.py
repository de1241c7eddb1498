"""Fit the due-product ranker on stacked origins, and keep it only where it beats the simple
rule: "the customer's most bought product" (the first of the same candidates).

Judged like the backtest: on the customers who ordered in the horizon after an origin, the hit
rate is the share whose first order there holds the predicted product. The ranker is kept only
when a paired bootstrap over customers puts the whole 95% interval of its gain above zero; a
gain within noise is a tie, and ties go to the simpler rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import polars as pl

from retain.features.labels import next_purchase_basket
from retain.features.orders import Frame
from retain.features.products import product_candidates
from retain.models.due_product import DueProductRanker, candidates
from retain.training.metrics import paired_bootstrap


def fit_due_product_ranker(transactions: Frame, origins: Sequence[date], horizon_days: int,
                           *, random_state: int = 0) -> DueProductRanker:
    """A ranker trained on every origin's candidates and next baskets, stacked.

    Raises ValueError when the log has no product ids or nothing to rank (no customer ordered
    again after any origin, or every candidate had the same outcome)."""
    frames, baskets = [], []
    for origin in origins:
        products = product_candidates(transactions, origin)
        basket = next_purchase_basket(transactions, origin, horizon_days)
        frames.append(products.with_columns(pl.lit(origin).alias("as_of")))
        baskets.append(basket.with_columns(pl.lit(origin).alias("as_of")))
    products = pl.concat(frames) if frames else pl.DataFrame()
    if products.height == 0:
        raise ValueError("the transactions have no product ids before any origin: no products "
                         "to rank (the due product needs a product_id column)")
    basket = pl.concat(baskets)
    if basket.height == 0:
        raise ValueError(f"no customer bought a product within {horizon_days} days after any "
                         "origin: nothing to rank")
    return DueProductRanker(random_state=random_state).fit(products, basket)


def due_product_hits(transactions: Frame, origin: date, horizon_days: int,
                     ranker: DueProductRanker | None = None) -> pl.DataFrame:
    """``customer_id, hit`` per customer who ordered a product in the horizon and had a candidate
    before ``origin``: whether their first order there holds the predicted product (the
    ranker's top candidate; without a ranker, the most bought one)."""
    chosen = due_choice(product_candidates(transactions, origin), ranker)
    basket = next_purchase_basket(transactions, origin, horizon_days)
    ordered = basket.select("customer_id").unique()
    return (
        chosen.join(ordered, on="customer_id", how="semi")
        .join(basket.with_columns(pl.lit(True).alias("hit")), on=["customer_id", "product_id"],
              how="left")
        .select("customer_id", pl.col("hit").fill_null(False))
        .sort("customer_id")
    )


def due_choice(products: pl.DataFrame, ranker: DueProductRanker | None) -> pl.DataFrame:
    """``customer_id, product_id``: each customer's top candidate."""
    rows = candidates(products)
    if ranker is None:
        return rows.filter(pl.col("purchase_rank") == 1).select("customer_id", "product_id")
    score = pl.Series("score", ranker.scores(rows))
    return (rows.with_columns(score).sort(["customer_id", "score", "purchase_rank"],
                                          descending=[False, True, False])
            .group_by("customer_id", maintain_order=True).first()
            .select("customer_id", "product_id"))


def choose_due_product(transactions: Frame, fit_origins: Sequence[date], eval_origin: date,
                       horizon_days: int, *, random_state: int = 0,
                       ) -> tuple[DueProductRanker | None, dict]:
    """Fit on ``fit_origins``, judge both on ``eval_origin`` (whose horizon must be known and
    not overlap what the ranker learned from), keep the ranker only on a clear win.

    Returns ``(ranker or None, figures)``; figures: ``hit_rate_ranker, hit_rate_baseline, diff,
    lo, hi, customers, verdict`` ("ranker", or "baseline" with the reason). A ranker that cannot
    be fitted (no product ids, nothing to rank) is a "baseline" verdict, not an error."""
    late = [o for o in fit_origins if o + timedelta(days=horizon_days) > eval_origin]
    if late:
        raise ValueError(f"fit origin {late[0]} has a horizon past the evaluation origin "
                         f"{eval_origin}: the ranker would learn the outcomes it is judged on")
    figures: dict = {"hit_rate_ranker": float("nan"), "hit_rate_baseline": float("nan"),
                     "diff": float("nan"), "lo": float("nan"), "hi": float("nan"),
                     "customers": 0}
    try:
        ranker = fit_due_product_ranker(transactions, fit_origins, horizon_days,
                                        random_state=random_state)
    except ValueError as exc:
        return None, {**figures, "verdict": f"baseline: the ranker could not be fitted ({exc})"}
    ranked = due_product_hits(transactions, eval_origin, horizon_days, ranker)
    baseline = due_product_hits(transactions, eval_origin, horizon_days)
    # Same candidates, same customers: both lists hold every customer with a candidate who ordered.
    paired = ranked.join(baseline, on="customer_id", suffix="_baseline")
    ranker_hits = paired["hit"].to_numpy()
    baseline_hits = paired["hit_baseline"].to_numpy()
    gain = paired_bootstrap("hit_rate", ranker_hits, ranker_hits, baseline_hits, seed=random_state)
    diff, lo, hi = gain.diff, gain.lo, gain.hi
    figures.update(hit_rate_ranker=float(ranker_hits.mean()) if paired.height else float("nan"),
                   hit_rate_baseline=float(baseline_hits.mean()) if paired.height else float("nan"),
                   diff=diff, lo=lo, hi=hi, customers=paired.height)
    if paired.height and lo > 0:
        return ranker, {**figures, "verdict": "ranker"}
    reason = ("no customer ordered after the evaluation origin" if not paired.height
              else "a tie within noise" if hi >= 0 else "the ranker is worse")
    return None, {**figures, "verdict": f"baseline: {reason}"}


MIN_FIT_HISTORY_DAYS = 60  # as training.backtest.MIN_ORIGIN_HISTORY_DAYS: history before an origin


def due_product_choice(history: Frame, as_of: date, horizon_days: int, n_origins: int,
                       origin_step_days: int, *, random_state: int = 0,
                       ) -> tuple[DueProductRanker | None, dict]:
    """What ``retain train`` scores the due product with: the ranker fitted on origins before
    ``as_of - horizon`` and judged on that last horizon, or the most bought product.

    Returns ``(ranker or None, choice)``; ``choice`` has the per-task shape of the backtest
    (``training.backtest.TaskChoice.as_dict``): kind ("gbm" for the ranker, "baseline"), name,
    reason, verdict and, when measured, metric "hit_rate", value, alternative,
    alternative_value, diff, lo, hi (positive diff = the chosen one is better)."""
    eval_origin = as_of - timedelta(days=horizon_days)
    first = history.lazy().select(pl.col("ts").min()).collect().item()
    fit = [eval_origin - timedelta(days=horizon_days + k * origin_step_days)
           for k in range(n_origins)]
    fit = sorted(o for o in fit if first is not None
                 and (o - first.date()).days >= MIN_FIT_HISTORY_DAYS)
    baseline = {"kind": "baseline", "name": "top_product", "verdict": "not measured"}
    if not fit:
        return None, {**baseline, "reason": "the history is too short to fit and judge a ranker"}
    ranker, figures = choose_due_product(history, fit, eval_origin, horizon_days,
                                         random_state=random_state)
    if not figures["customers"]:
        return None, {**baseline, "reason": figures["verdict"].removeprefix("baseline: ")}
    chosen, other = ("ranker", "baseline") if ranker is not None else ("baseline", "ranker")
    sign = 1.0 if ranker is not None else -1.0
    lo, hi = sorted((sign * figures["lo"], sign * figures["hi"]))
    verdict = "better" if lo > 0 else "worse" if hi < 0 else "tie"
    return ranker, {
        "kind": "gbm" if ranker is not None else "baseline",
        "name": "ranker" if ranker is not None else "top_product",
        "reason": "" if ranker is not None else figures["verdict"].removeprefix("baseline: "),
        "verdict": verdict, "metric": "hit_rate",
        "value": figures[f"hit_rate_{chosen}"], "alternative": "top_product"
        if ranker is not None else "ranker", "alternative_value": figures[f"hit_rate_{other}"],
        "diff": sign * figures["diff"], "lo": lo, "hi": hi, "customers": figures["customers"],
    }


def main(argv: Sequence[str] | None = None) -> None:
    """The figures in docs/due_product.md: on a simulated shop, fit on origins whose horizons end
    by the as-of date, judge on the simulated 90 days after it."""
    import argparse

    from retain.simulate import simulate_shop

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--horizon-days", type=int, default=90)
    parser.add_argument("--origins", type=int, default=4)
    args = parser.parse_args(argv)
    shop = simulate_shop(args.customers, seed=args.seed)
    transactions = pl.concat([shop.transactions, shop.future_transactions])
    h = args.horizon_days
    origins = [shop.as_of - timedelta(days=h * k) for k in range(args.origins, 0, -1)]
    _, figures = choose_due_product(transactions, origins, shop.as_of, h)
    print(f"| {args.customers:,} | {args.seed} | {figures['customers']:,} | "
          f"{figures['hit_rate_ranker']:.3f} | {figures['hit_rate_baseline']:.3f} | "
          f"{figures['diff']:+.3f} [{figures['lo']:+.3f}, {figures['hi']:+.3f}] | "
          f"{figures['verdict']} |")


__all__ = ["choose_due_product", "due_product_choice", "due_product_hits",
           "fit_due_product_ranker"]


if __name__ == "__main__":
    main()
