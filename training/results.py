"""``make results``: every model beside every baseline, on CDNOW and on a simulated shop.

    python -m training.results [--out docs/results.md] [--customers 20000] [--seed 42]

CDNOW runs as a user runs it: the whole file as lifetimes ships it, through ``retain train`` and
``retain evaluate`` at 1997-10-01: with Fader, Hardie & Lee's (2005) 39-week holdout (horizon
273 days: no backtest fits in 39 weeks of history, so the probabilistic models are chosen on the
history) and with the default 90 days. The simulated shop is judged on its true future.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import polars as pl

from retain.decisions.channels import channel_plan
from retain.decisions.decide import score_and_decide
from retain.decisions.rules import default_rules
from retain.features.samples import lifetimes_dataset_path
from retain.models.pipeline import ScoringPipeline
from retain.simulate import SimulatedShop, simulate_shop
from retain.training.backtest import (
    TrainConfig,
    choice_line,
    evaluate_pipeline,
    versus_best_baseline,
)
from retain.training.train import fit_chosen_pipeline, fit_decision_inputs
from retain.training.uplift import results_section as uplift_results_section

DUE_WITHIN_DAYS = 14
RULE_LAPSE_DAYS = 30

COLUMNS = {
    "churn": (("auc", "AUC"), ("pr_auc", "PR-AUC"), ("log_loss", "log loss"), ("brier", "Brier")),
    "value": (("mae", "MAE"), ("rmse", "RMSE"), ("spearman", "Spearman"), ("gini", "norm. Gini"),
              ("top_decile_capture", "top-decile capture")),
    "timing": (("mae_days", "MAE days"), ("coverage_p10_p90", "p10-p90 coverage")),
    "due_product": (("hit_rate", "hit rate (in the next order)"),),
}
TITLES = {"churn": "Churn: no order in the horizon", "value": "Revenue in the horizon",
          "timing": "Days to the next order (customers who ordered)",
          "due_product": "Which product is due (customers with a due product who ordered)"}


def markdown(metrics: dict) -> str:
    parts = []
    for task, columns in COLUMNS.items():
        parts.append(f"**{TITLES[task]}**\n")
        parts.append("| model | " + " | ".join(label for _, label in columns) + " |")
        parts.append("|---" * (len(columns) + 1) + "|")
        for model, values in metrics[task].items():
            cells = [f"{values[k]:.4f}" if k in values else "" for k, _ in columns]
            name = f"**{model}**" if model == "retain" else model
            parts.append(f"| {name} | " + " | ".join(cells) + " |")
        parts.append("")
    return "\n".join(parts)


CDNOW_AS_OF = "1997-10-01"
CDNOW_MAP = ("--map", "ts=date", "--map", "amount=dollar_value", "--map", "quantity=number_of_cds")


def run_cli(*args: str, cwd: Path) -> str:
    """``retain ARGS`` as a user runs it (a fresh process); its output, or the failure raised."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}",
           "COLUMNS": "1000", "RETAIN_LOG_DIR": str(cwd)}
    done = subprocess.run([sys.executable, "-m", "retain", *args], check=False, cwd=cwd, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"retain {args[0]} failed ({done.returncode}): "
                           f"{(done.stdout + done.stderr)[-2000:]}")
    return done.stdout + done.stderr  # progress goes to stderr


def versus_table(versus: dict) -> str:
    header = ("| task | metric | retain | best baseline | its value | retain minus it [95% "
              "interval] | verdict |")
    lines = [header, "|---" * 7 + "|"]
    for task, r in versus.items():
        lines.append(f"| {task} | {r['metric']} | {r['retain']:.4f} | {r['baseline']} | "
                     f"{r['baseline_value']:.4f} | {r['diff']:+.4f} [{r['lo']:+.4f}, "
                     f"{r['hi']:+.4f}] | {r['verdict']} |")
    return "\n".join(lines)


def cdnow_section(horizon_days: int) -> str:
    """CDNOW_master.txt as shipped, through ``retain train`` and ``retain evaluate`` at
    1997-10-01 (39 weeks of history), judged on the horizon after it."""
    cdnow = str(lifetimes_dataset_path("CDNOW_master.txt"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        trained = run_cli("train", "--transactions", cdnow, "--as-of", CDNOW_AS_OF,
                          "--horizon-days", str(horizon_days), *CDNOW_MAP, cwd=work)
        run_cli("evaluate", "--transactions", cdnow, "--as-of", CDNOW_AS_OF, *CDNOW_MAP,
                "--out", "evaluation.json", cwd=work)
        evaluation = json.loads((work / "evaluation.json").read_text())
    chosen = [line.strip().removeprefix("- model for ") for line in trained.splitlines()
              if line.strip().startswith("- model for ")]
    plan = next((line.strip() for line in trained.splitlines() if line.startswith("Data:")), "")
    return (
        f"## CDNOW as shipped, horizon {horizon_days} days, through the CLI\n\n"
        "```\n"
        f"retain train --transactions CDNOW_master.txt --as-of {CDNOW_AS_OF} --horizon-days "
        f"{horizon_days} {' '.join(CDNOW_MAP)}\n"
        f"retain evaluate --transactions CDNOW_master.txt --as-of {CDNOW_AS_OF} "
        f"{' '.join(CDNOW_MAP)} --out evaluation.json\n```\n\n"
        f"{evaluation['customers']:,} customers at {CDNOW_AS_OF}, judged on the "
        f"{horizon_days} days after it. {plan}\n\n"
        "Models chosen by `retain train` (on its own backtest inside the history):\n\n"
        + "\n".join(f"- {line}" for line in chosen) + "\n\n"
        "On the horizon after the as-of date, retain against the best baseline on the same "
        "customers (a tie when the paired-bootstrap interval holds zero):\n\n"
        f"{versus_table(evaluation['versus_best_baseline'])}\n\n"
        f"{markdown(evaluation['metrics'])}"
    )


def simulated_section(customers: int, seed: int) -> str:
    config = TrainConfig()
    shop = simulate_shop(customers, seed=seed)
    history = shop.transactions.with_columns(pl.col("quantity").cast(pl.Float64))
    everything = pl.concat([shop.transactions, shop.future_transactions]).with_columns(
        pl.col("quantity").cast(pl.Float64))
    # As ``retain train`` fits: backtest, per-task choice, final fit (so "retain" below is the
    # model scoring uses, not LightGBM alone).
    pipeline, backtested, _ = fit_chosen_pipeline(history, shop.as_of, config,
                                                   progress=lambda _: None)
    metrics, frame = evaluate_pipeline(pipeline, everything, shop.as_of, config)
    chosen = [choice_line(task, choice) for task, choice in backtested.get("choices", {}).items()]
    return (
        f"## Simulated shop ({customers:,} customers, seed {seed})\n\n"
        f"Trained on the history before {shop.as_of} ({history.height:,} rows, {config.n_origins} "
        f"origins {config.origin_step_days} days apart), judged on the simulator's true future "
        f"({frame.height:,} customers, horizon {config.horizon_days} days).\n\n"
        "Models chosen by the backtest, as `retain train` chooses them:\n\n"
        + "\n".join(f"- {line}" for line in chosen) + "\n\n"
        "On the true future, retain against the best baseline on the same customers:\n\n"
        f"{versus_table(versus_best_baseline(frame, metrics, shop.as_of))}\n\n"
        f"{markdown(metrics)}\n\n"
        + decisions_section(shop, history, pipeline, config.horizon_days)
    )


def decision_evidence(decided: pl.DataFrame, truth: pl.DataFrame, as_of: date,
                      horizon_days: int, seed: int = 0) -> pl.DataFrame:
    """retain's contacts against the rule "no order for a month -> discount" at the same
    number of contacts, on the true future: precision at k for customers who were really about
    to leave (alive, dropping out within the horizon) or due (ordering within
    ``DUE_WITHIN_DAYS``), and discounts handed to customers who ordered in the horizon anyway.
    The control group is left out of both."""
    start = pl.lit(as_of).cast(pl.Datetime("us"))
    outcome = truth.select(
        "customer_id",
        (pl.col("alive_at_as_of") & pl.col("dropout_ts").is_not_null()
         & (pl.col("dropout_ts") < start + pl.duration(days=horizon_days))).alias("leaving"),
        (pl.col("next_order_ts") < start + pl.duration(days=DUE_WITHIN_DAYS))
        .fill_null(False).alias("due"),
        (pl.col("orders_next_90d") > 0).alias("bought_anyway"),
    )
    joined = decided.join(outcome, on="customer_id", how="left").filter(~pl.col("control_group"))
    contacted = joined.filter(pl.col("channel").is_not_null())
    k = contacted.height
    since = pl.col("days_since_last_order")

    def rule(fires: pl.Expr) -> pl.DataFrame:
        lapsed = joined.filter(fires)
        return lapsed.sample(min(k, lapsed.height), seed=seed).with_columns(
            pl.lit("discount").alias("offer"))

    def row(name: str, chosen: pl.DataFrame) -> dict:
        discounts = chosen.filter(pl.col("offer") != "none")
        return {
            "policy": name, "contacts": chosen.height,
            "precision_leaving_or_due": (chosen["leaving"] | chosen["due"]).mean(),
            "precision_leaving": chosen["leaving"].mean(), "precision_due": chosen["due"].mean(),
            "discounts": discounts.height,
            "discounts_wasted": int(discounts["bought_anyway"].sum()),
        }

    return pl.DataFrame([
        row("retain decisions", contacted),
        row(f"no order for {RULE_LAPSE_DAYS}+ days -> discount", rule(since >= RULE_LAPSE_DAYS)),
        row(f"no order for {RULE_LAPSE_DAYS}-{2 * RULE_LAPSE_DAYS} days -> discount",
            rule(since.is_between(RULE_LAPSE_DAYS, 2 * RULE_LAPSE_DAYS, closed="left"))),
    ])


def decisions_section(shop: SimulatedShop, history: pl.DataFrame, pipeline: ScoringPipeline,
                      horizon_days: int) -> str:
    rules = default_rules()
    fit_decision_inputs(pipeline, history, shop.as_of, shop.contacts, rules,
                        progress=lambda _: None)
    decided = score_and_decide(pipeline, history, shop.as_of, rules=rules,
                               consents=shop.customers, contacts=shop.contacts)
    features, _ = pipeline.features(history, shop.as_of)
    decided = decided.join(features.select("customer_id", "days_since_last_order"),
                           on="customer_id")
    evidence = decision_evidence(decided, shop.truth, shop.as_of, horizon_days)
    header = ("| policy | contacts | precision: leaving or due | leaving | due | discounts | "
              "discounts to customers who bought anyway |")
    lines = [header, "|---" * 7 + "|"]
    for r in evidence.iter_rows(named=True):
        lines.append(f"| {r['policy']} | {r['contacts']:,} | {r['precision_leaving_or_due']:.3f} "
                     f"| {r['precision_leaving']:.3f} | {r['precision_due']:.3f} "
                     f"| {r['discounts']:,} | {r['discounts_wasted']:,} |")
    goals = decided.group_by("goal").len().sort("len", descending=True)
    plan = channel_plan(pipeline.channel_measurements, rules.channels)
    channels = ["| channel | cost | uplift (latest period) | typical uplift | status |",
                "|---|---|---|---|---|"]
    for r in plan.iter_rows(named=True):
        typical = "" if r["typical_uplift"] is None else f"{r['typical_uplift']:.4f}"
        channels.append(f"| {r['channel']} | {r['cost']:.2f} | {r['uplift']:.4f} | {typical} "
                        f"| {r['status']} |")
    control = decided["control_group"].mean()
    return (
        "### Decisions against the rule marketers use\n\n"
        f"One decision per customer at {shop.as_of} (built-in rules, consents from the "
        f"customers table, channels measured on the contacts log). The rule \"no order for a "
        f"month -> discount\" gets as many contacts, drawn at random from the customers it "
        f"fires on: every lapsed customer, or only those who lapsed in the last month. True future: *leaving* = alive at the as-of date and dropping out within "
        f"{horizon_days} days; *due* = ordering within {DUE_WITHIN_DAYS} days; *bought anyway* "
        f"= ordered within {horizon_days} days (no campaign ran after the as-of date). The global "
        f"control group ({control:.1%} of customers) is left out of both.\n\n"
        + "\n".join(lines) + "\n\n"
        + "Goals: " + ", ".join(f"{g} {n:,}" for g, n in goals.iter_rows()) + ".\n\n"
        + "Channels measured from the contacts log (uplift: response rate within 7 days minus "
        "the control group's, shrunk towards the default):\n\n" + "\n".join(channels)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/results.md"))
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    started = time.perf_counter()
    sections = [cdnow_section(273), cdnow_section(90),
                simulated_section(args.customers, args.seed),
                # Offers by uplift, trained on one shop with random offers, judged on another.
                uplift_results_section(args.customers, args.seed, args.seed + 1)[0]]
    text = (
        "# Results: retain beside the baselines\n\n"
        f"Generated by `make results` on {date.today()} in {time.perf_counter() - started:.0f} s. "
        "Baselines: recency rules (no order for 30 / 60 / 90 days = churned, and days since the "
        "last order as a score), BG/NBD and Pareto/NBD (probability of no order, expected "
        "orders), BG/NBD and Pareto/NBD x Gamma-Gamma revenue, the marketer's formula AOV x "
        "purchase frequency x lifetime, the customer's median interval for timing, and the "
        "customer's most bought product for the due product.\n\n" + "\n\n".join(sections)
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
