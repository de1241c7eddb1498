"""The simulated shop: schema, determinism, and the behaviour its ground truth promises."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl
import pytest

from retain.simulate import SimulatedShop, simulate_shop, write_shop

AS_OF = date(2026, 7, 1)
AS_OF_TS = datetime(2026, 7, 1)
FUTURE_DAYS = 365

LINES_SCHEMA = {
    "customer_id": pl.String,
    "order_id": pl.String,
    "ts": pl.Datetime("us"),
    "amount": pl.Float64,
    "product_id": pl.String,
    "quantity": pl.Int64,
    "channel": pl.String,
}
SCHEMAS = {
    "transactions": LINES_SCHEMA,
    "future_transactions": LINES_SCHEMA,
    "customers": {
        "customer_id": pl.String,
        "signup_ts": pl.Datetime("us"),
        "acquisition_channel": pl.String,
        "consent_email": pl.Boolean,
        "consent_sms": pl.Boolean,
        "consent_push": pl.Boolean,
        "consent_whatsapp": pl.Boolean,
        "consent_telegram": pl.Boolean,
    },
    "contacts": {
        "customer_id": pl.String,
        "ts": pl.Datetime("us"),
        "channel": pl.String,
        "campaign": pl.String,
        "cost": pl.Float64,
        "control": pl.Boolean,
    },
    "truth": {
        "customer_id": pl.String,
        "behaviour_type": pl.String,
        "control": pl.Boolean,
        "alive_at_as_of": pl.Boolean,
        "dropout_ts": pl.Datetime("us"),
        "mean_interval_days": pl.Float64,
        "orders_next_90d": pl.Int64,
        "revenue_next_90d": pl.Float64,
        "next_order_ts": pl.Datetime("us"),
        "first_order_ts": pl.Datetime("us"),
        "offer_response": pl.String,
        "offer_uplift": pl.Float64,
    },
    "caused_orders": {
        "customer_id": pl.String,
        "order_id": pl.String,
        "ts": pl.Datetime("us"),
        "revenue": pl.Float64,
        "contact_ts": pl.Datetime("us"),
        "channel": pl.String,
    },
}
FRAMES = tuple(SCHEMAS)


@pytest.fixture(scope="module")
def shop() -> SimulatedShop:
    return simulate_shop(4000, seed=7, as_of=AS_OF, future_days=FUTURE_DAYS)


@pytest.fixture(scope="module")
def orders(shop: SimulatedShop) -> pl.DataFrame:
    """One row per order over history and future, with the gap since the customer's previous one."""
    lines = pl.concat([shop.transactions, shop.future_transactions])
    return (
        lines.group_by("customer_id", "order_id")
        .agg(
            pl.col("ts").first(),
            (pl.col("quantity") > 0).sum().alias("items"),
            pl.col("amount").sum(),
        )
        .sort("customer_id", "ts")
        .with_columns(gap_days=pl.col("ts").diff().over("customer_id").dt.total_seconds() / 86_400)
        .join(shop.truth, on="customer_id")
    )


def test_frames_have_the_documented_columns_and_dtypes(shop):
    for name in FRAMES:
        assert getattr(shop, name).schema == pl.Schema(SCHEMAS[name]), name
    assert shop.as_of == AS_OF
    n = shop.truth.height
    assert shop.customers.height == n
    assert shop.truth["customer_id"].n_unique() == n
    assert shop.customers["customer_id"].to_list() == shop.truth["customer_id"].to_list()
    assert shop.truth["customer_id"][42] == "C0000042"


def test_values_come_from_the_documented_vocabularies(shop):
    lines = pl.concat([shop.transactions, shop.future_transactions])
    assert set(lines["channel"].unique()) == {"web", "app", "store", "marketplace"}
    assert lines["product_id"].str.contains(r"^P\d{4}$").all()
    assert set(shop.customers["acquisition_channel"].unique()) == {
        "seo",
        "paid_search",
        "social",
        "referral",
        "offline",
    }
    assert set(shop.contacts["channel"].unique()) == {
        "email",
        "sms",
        "push",
        "whatsapp",
        "telegram",
    }
    assert shop.contacts["campaign"].str.contains(r"^\d{4}-\d{2}-promo$").all()
    assert set(shop.truth["behaviour_type"].unique()) == {"stock_up", "hedonist", "occasional"}
    shares = shop.truth["behaviour_type"].value_counts(normalize=True)
    share = dict(zip(shares["behaviour_type"], shares["proportion"], strict=True))
    assert share["stock_up"] == pytest.approx(0.25, abs=0.03)
    assert share["hedonist"] == pytest.approx(0.20, abs=0.03)
    assert share["occasional"] == pytest.approx(0.55, abs=0.03)


def test_the_same_seed_gives_identical_frames_and_another_seed_does_not():
    first = simulate_shop(600, seed=3)
    again = simulate_shop(600, seed=3)
    other = simulate_shop(600, seed=4)
    for name in FRAMES:
        assert getattr(first, name).equals(getattr(again, name)), name
    assert not first.transactions.equals(other.transactions)
    assert not first.truth.equals(other.truth)


def test_history_is_before_as_of_and_future_inside_the_window(shop):
    assert shop.transactions["ts"].max() < AS_OF_TS
    future = shop.future_transactions["ts"]
    assert future.min() >= AS_OF_TS
    assert future.max() < AS_OF_TS + timedelta(days=FUTURE_DAYS)
    assert shop.contacts["ts"].max() < AS_OF_TS


def test_lines_are_sorted_and_an_order_is_one_customer_at_one_time(shop):
    for lines in (shop.transactions, shop.future_transactions):
        assert lines.equals(lines.sort("customer_id", "ts", maintain_order=True))
    lines = pl.concat([shop.transactions, shop.future_transactions])
    per_order = lines.group_by("order_id").agg(
        pl.col("customer_id").n_unique(), pl.col("ts").n_unique(), pl.col("channel").n_unique()
    )
    assert (per_order.drop("order_id") == 1).to_numpy().all()


def test_about_one_percent_of_lines_are_followed_by_their_return(shop):
    lines = shop.transactions.with_row_index()
    returns = lines.filter(pl.col("quantity") < 0)
    assert returns.height / lines.height == pytest.approx(0.01, abs=0.004)
    assert (returns["amount"] < 0).all()
    previous = lines.join(
        returns.select(pl.col("index") - 1, "order_id", "product_id", "quantity", "amount"),
        on="index",
        suffix="_return",
    )
    assert previous.height == returns.height
    assert (previous["order_id"] == previous["order_id_return"]).all()
    assert (previous["product_id"] == previous["product_id_return"]).all()
    assert (previous["quantity"] == -previous["quantity_return"]).all()
    assert (previous["amount"] == -previous["amount_return"]).all()
    unit_price = lines["amount"] / lines["quantity"]
    assert unit_price.min() >= 49 and unit_price.max() <= 4999
    assert lines["quantity"].abs().min() >= 1


def test_control_customers_are_never_messaged_and_only_control_rows_are_free(shop):
    control_share = shop.truth["control"].mean()
    assert control_share == pytest.approx(0.075, abs=0.02)
    contacts = shop.contacts.join(
        shop.truth.select("customer_id", truth_control="control"), on="customer_id"
    )
    assert (contacts["control"] == contacts["truth_control"]).all()
    assert contacts.filter(pl.col("control"))["cost"].eq(0).all()
    assert contacts.filter(~pl.col("control"))["cost"].gt(0).all()
    costs = contacts.filter(~pl.col("control")).group_by("channel").agg(pl.col("cost").unique())
    assert dict(zip(costs["channel"], costs["cost"].to_list(), strict=True)) == {
        "email": [0.1],
        "sms": [3.0],
        "push": [0.05],
        "whatsapp": [2.5],
        "telegram": [0.2],
    }
    assert contacts.filter(pl.col("control")).height > 0


def test_contacts_use_consented_channels_and_reach_only_existing_buyers(shop):
    consent_columns = [c for c in shop.customers.columns if c.startswith("consent_")]
    consented = shop.customers.unpivot(
        on=consent_columns, index="customer_id", variable_name="channel", value_name="ok"
    ).with_columns(pl.col("channel").str.strip_prefix("consent_"))
    contacts = shop.contacts.join(consented, on=["customer_id", "channel"], how="left")
    assert contacts["ok"].all()
    first = contacts.join(shop.truth.select("customer_id", "first_order_ts"), on="customer_id")
    assert (first["first_order_ts"] < first["ts"]).all()
    per_campaign = shop.contacts.group_by("customer_id", "campaign").len()
    assert per_campaign["len"].max() == 1
    assert shop.contacts.equals(shop.contacts.sort("customer_id", "ts", maintain_order=True))


def test_some_customers_are_new_some_bought_once_and_some_gave_no_consent(shop, orders):
    truth = shop.truth
    new = truth.filter(pl.col("first_order_ts") >= AS_OF_TS - timedelta(days=30)).height
    assert 0.02 < new / truth.height < 0.15
    history = orders.filter(pl.col("ts") < AS_OF_TS).group_by("customer_id").len()
    assert 0.1 < (history["len"] == 1).mean() < 0.6
    no_consent = shop.customers.select(~pl.any_horizontal(pl.col("^consent_.*$"))).to_series()
    assert 0.05 < no_consent.mean() < 0.2
    signup = shop.customers.join(truth, on="customer_id")
    assert (signup["signup_ts"] <= signup["first_order_ts"]).all()


def test_behaviour_types_differ_in_cadence_regularity_and_basket(orders):
    per_customer = (
        orders.filter(pl.col("ts") < AS_OF_TS)
        .group_by("customer_id", "behaviour_type")
        .agg(
            n=pl.len(),
            cv=pl.col("gap_days").std() / pl.col("gap_days").mean(),
            median_gap=pl.col("gap_days").median(),
            items=pl.col("items").mean(),
        )
    )

    def by_type(min_orders: int, column: str) -> dict[str, float]:
        medians = (
            per_customer.filter(pl.col("n") >= min_orders)
            .group_by("behaviour_type")
            .agg(pl.col(column).median())
        )
        return dict(zip(medians["behaviour_type"], medians[column], strict=True))

    cv, items, gap = by_type(5, "cv"), by_type(5, "items"), by_type(3, "median_gap")
    assert cv["stock_up"] < 0.6 < cv["hedonist"]
    assert items["stock_up"] >= 4
    assert items["hedonist"] <= 2
    assert gap["hedonist"] < 10
    assert gap["occasional"] > 3 * gap["hedonist"]


def test_truth_agrees_with_the_future_transactions(shop):
    horizon = AS_OF_TS + timedelta(days=90)
    future = shop.future_transactions
    next_90 = (
        future.filter(pl.col("ts") < horizon)
        .group_by("customer_id")
        .agg(orders=pl.col("order_id").n_unique(), revenue=pl.col("amount").sum())
    )
    first = future.group_by("customer_id").agg(first=pl.col("ts").min())
    truth = (
        shop.truth.join(next_90, on="customer_id", how="left")
        .join(first, on="customer_id", how="left")
        .with_columns(pl.col("orders", "revenue").fill_null(0))
    )
    assert (truth["orders_next_90d"] == truth["orders"]).all()
    assert truth["revenue_next_90d"].to_numpy() == pytest.approx(truth["revenue"].to_numpy())
    assert truth["next_order_ts"].equals(truth["first"], check_names=False)
    assert truth["orders_next_90d"].gt(0).mean() > 0.1


def test_truth_first_order_and_dropout_match_the_orders(shop, orders):
    span = orders.group_by("customer_id").agg(first=pl.col("ts").min(), last=pl.col("ts").max())
    truth = shop.truth.join(span, on="customer_id")
    assert truth["first_order_ts"].equals(truth["first"], check_names=False)
    dropped = truth.filter(pl.col("dropout_ts").is_not_null())
    # Nobody orders after dropping out: the dropout is right after the last order.
    assert dropped["dropout_ts"].equals(dropped["last"], check_names=False)
    assert (
        truth["alive_at_as_of"]
        == (truth["dropout_ts"].is_null() | (truth["dropout_ts"] >= AS_OF_TS))
    ).all()
    assert 0.2 < truth["alive_at_as_of"].mean() < 0.8


def test_customers_who_dropped_out_have_no_future_orders(shop):
    gone = shop.truth.filter(~pl.col("alive_at_as_of"))
    assert gone.height > 0
    assert gone["orders_next_90d"].eq(0).all()
    assert gone["next_order_ts"].is_null().all()
    assert shop.future_transactions.join(gone, on="customer_id").height == 0


def test_customers_slow_down_before_they_drop_out(orders):
    # log(last gap / median of the earlier gaps) for customers with at least six orders.
    stretch = (
        orders.drop_nulls("gap_days")
        .group_by("customer_id")
        .agg(
            n=pl.len(),
            last=pl.col("gap_days").last(),
            earlier=pl.col("gap_days").head(pl.len() - 1).median(),
            dropped=pl.col("dropout_ts").first().is_not_null(),
        )
        .filter(pl.col("n") >= 5)
        .with_columns(log_stretch=(pl.col("last") / pl.col("earlier")).log())
    )
    leavers = stretch.filter(pl.col("dropped"))["log_stretch"].mean()
    stayers = stretch.filter(~pl.col("dropped"))["log_stretch"].mean()
    assert leavers > 0.3
    assert leavers > stayers + 0.2


def test_contacts_cause_extra_orders_that_the_control_group_does_not_get():
    # Orders in the week after a contact minus orders in the week before (which removes each
    # customer's own rate), for customers who had not dropped out: treated minus control is the
    # uplift per contact, 3-8% by channel.
    shop = simulate_shop(20_000, seed=11, control_share=0.5)
    orders = shop.transactions.select("customer_id", "order_id", order_ts="ts").unique()
    week = pl.duration(days=7)
    contacts = (
        shop.contacts.with_row_index("contact")
        .join(shop.truth.select("customer_id", "dropout_ts"), on="customer_id")
        .filter(pl.col("dropout_ts").is_null() | (pl.col("ts") < pl.col("dropout_ts")))
    )
    around = (
        contacts.join(orders, on="customer_id")
        .filter(pl.col("order_ts").is_between(pl.col("ts") - week, pl.col("ts") + week, "left"))
        .group_by("contact")
        .agg(change=(pl.col("order_ts") >= pl.col("ts")).sum().cast(pl.Int64) * 2 - pl.len())
    )
    change = (
        contacts.join(around, on="contact", how="left")
        .group_by("control")
        .agg(pl.col("change").fill_null(0).mean())
    )
    by_group = dict(zip(change["control"], change["change"], strict=True))
    assert 0.03 < by_group[False] - by_group[True] < 0.07


@pytest.fixture(scope="module")
def offer_shop() -> SimulatedShop:
    return simulate_shop(20_000, seed=3, offer_share=0.5)


def test_offers_are_off_by_default_and_leave_the_other_draws_alone(shop):
    assert "offer" not in shop.contacts.columns
    with_offers = simulate_shop(4000, seed=7, as_of=AS_OF, future_days=FUTURE_DAYS,
                                offer_share=0.3)
    # The same customers, campaigns and types (baskets and signup times are drawn afresh).
    assert with_offers.customers.drop("signup_ts").equals(shop.customers.drop("signup_ts"))
    assert with_offers.contacts.drop("offer").equals(shop.contacts)
    assert with_offers.truth.select("customer_id", "behaviour_type", "offer_response",
                                    "offer_uplift").equals(
        shop.truth.select("customer_id", "behaviour_type", "offer_response", "offer_uplift"))


def test_offers_go_at_random_to_treated_contacts_only(offer_shop):
    contacts = offer_shop.contacts.join(
        offer_shop.truth.select("customer_id", "offer_response"), on="customer_id")
    assert set(contacts["offer"].unique()) == {"none", "discount_10"}
    assert (contacts.filter(pl.col("control"))["offer"] == "none").all()
    # Randomised: about half of the treated rows in every response type carry the discount.
    shares = (contacts.filter(~pl.col("control")).group_by("offer_response")
              .agg((pl.col("offer") == "discount_10").mean().alias("share")))
    assert shares["share"].is_between(0.47, 0.53).all()


def test_response_types_follow_what_the_transactions_show(offer_shop):
    truth = offer_shop.truth
    share = truth.group_by("behaviour_type").agg(
        (pl.col("offer_response") == "persuadable").mean().alias("persuadable"),
        (pl.col("offer_response") == "sleeping_dog").mean().alias("sleeping_dog"))
    by = {row["behaviour_type"]: row for row in share.iter_rows(named=True)}
    assert by["hedonist"]["persuadable"] > by["stock_up"]["persuadable"] + 0.15
    assert by["occasional"]["sleeping_dog"] > by["hedonist"]["sleeping_dog"] + 0.15
    # Sure things order fast, lost causes slowly.
    interval = truth.group_by("offer_response").agg(pl.col("mean_interval_days").median())
    median = dict(zip(interval["offer_response"], interval["mean_interval_days"], strict=True))
    assert median["sure_thing"] * 3 < median["lost_cause"]


def test_discounts_move_persuadables_up_and_sleeping_dogs_down(offer_shop):
    # Orders in the 30 days after a treated contact, with the discount minus without, per true
    # type: the randomised offers measure each type's true uplift.
    orders = (pl.concat([offer_shop.transactions, offer_shop.future_transactions])
              .select("customer_id", "order_id", order_ts="ts").unique())
    contacts = (
        offer_shop.contacts.filter(~pl.col("control")).with_row_index("contact")
        .join(offer_shop.truth.select("customer_id", "dropout_ts", "offer_response",
                                      "offer_uplift"), on="customer_id")
        .filter(pl.col("dropout_ts").is_null() | (pl.col("ts") < pl.col("dropout_ts")))
    )
    counted = (contacts.join(orders, on="customer_id")
               .filter(pl.col("order_ts").is_between(pl.col("ts"),
                                                     pl.col("ts") + pl.duration(days=30), "left"))
               .group_by("contact").len("orders"))
    effect = (
        contacts.join(counted, on="contact", how="left")
        .with_columns(pl.col("orders").fill_null(0))
        .group_by("offer_response")
        .agg((pl.col("orders").filter(pl.col("offer") == "discount_10").mean()
              - pl.col("orders").filter(pl.col("offer") == "none").mean()).alias("measured"),
             pl.col("offer_uplift").mean().alias("true"))
    )
    by = {row["offer_response"]: row for row in effect.iter_rows(named=True)}
    assert by["persuadable"]["measured"] > 0.2
    assert by["sleeping_dog"]["measured"] < -0.1
    assert abs(by["sure_thing"]["measured"]) < 0.05
    assert abs(by["lost_cause"]["measured"]) < 0.05
    for kind in ("persuadable", "sleeping_dog"):
        assert by[kind]["measured"] == pytest.approx(by[kind]["true"], abs=0.1)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_write_shop_round_trips(tmp_path, fmt):
    shop = simulate_shop(300, seed=5)
    paths = write_shop(shop, tmp_path / "out", fmt=fmt)
    assert set(paths) == set(FRAMES)
    for name, path in paths.items():
        assert path == tmp_path / "out" / f"{name}.{fmt}"
        if fmt == "parquet":
            read = pl.read_parquet(path)
        else:
            read = pl.read_csv(path, schema=SCHEMAS[name])
        assert read.equals(getattr(shop, name)), name


def test_write_shop_rejects_an_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="fmt"):
        write_shop(simulate_shop(50), tmp_path, fmt="xlsx")


def test_caused_orders_are_the_treated_contacts_extra_orders_with_their_revenue(shop):
    caused = shop.caused_orders
    assert caused.height > 0
    lines = pl.concat([shop.transactions, shop.future_transactions])
    net = lines.group_by("order_id").agg(pl.col("amount").sum().alias("net"),
                                         pl.col("customer_id").first().alias("owner"))
    joined = caused.join(net, on="order_id", how="left")
    assert joined["net"].null_count() == 0  # every caused order is a real order
    assert (joined["net"] - joined["revenue"]).abs().max() < 1e-6
    assert (joined["owner"] == joined["customer_id"]).all()
    control = shop.truth.filter("control")["customer_id"]
    assert not caused["customer_id"].is_in(control.implode()).any()
    delay = caused["ts"] - caused["contact_ts"]
    assert delay.min() >= timedelta(0) and delay.max() < timedelta(days=7)


def test_the_command_refuses_a_future_shorter_than_the_truths_horizon(tmp_path):
    """`--future-days 10` was accepted and ended in an internal error (exit 3)."""
    from typer.testing import CliRunner

    from retain.cli import app

    result = CliRunner().invoke(app, ["simulate", "--customers", "50", "--future-days", "10",
                                      "--out", str(tmp_path / "shop")])
    assert result.exit_code == 2 and "--future-days" in result.output
    assert "90" in result.output and not (tmp_path / "shop").exists()
    done = CliRunner().invoke(app, ["simulate", "--customers", "50", "--history-days", "60",
                                    "--future-days", "90", "--out", str(tmp_path / "shop")])
    assert done.exit_code == 0, done.output
