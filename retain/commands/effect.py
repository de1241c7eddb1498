"""``retain effect``: what the messages earned against the global control group, with intervals."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from retain.commands.common import (
    CancelledStatusOpt,
    ChannelsRejectsOpt,
    DateFormatOpt,
    DropDuplicatesOpt,
    EffectRejectsOpt,
    EncodingOpt,
    MapOpt,
    MeasuredContactsOpt,
    OnBadRowsOpt,
    QueryOpt,
    ReturnedStatusOpt,
    RulesOpt,
    TransactionsOpt,
    example,
    fail,
    language_or_fail,
    load,
    load_side_table,
    parse_date,
    rules_or_fail,
    transaction_settings,
)
from retain.progress import console, step

if TYPE_CHECKING:
    from datetime import date

    import polars as pl
    from rich.table import Table

    from retain.decisions.rules import Rules
    from retain.serving.labels import Language

app = typer.Typer()
# Declared like `retain report --lang`: the tables' words only; --out keeps its column names
# and codes, which CRM scripts read.
TableLangOpt = Annotated[str, typer.Option(
    "--lang", metavar="<en|ru>", help="Language of the tables and notes printed; --out keeps "
    "its column names and codes.")]
# Both commands read the transactions up to --to: every line later means the span is too early.
_SPAN_HINT = "choose --from and --to within the transactions' dates"


def _say(key: str, lang: Language, **values) -> str:
    """The sentence ``key`` of the shared table (serving.ui_text) in ``lang``."""
    from retain.serving.ui_text import text

    return text(key, lang, **values)


def _report_word(english: str, key: str, lang: Language) -> str:
    """``english`` as the terminal always printed it, or the report's Russian word for the
    same figure (serving.ui_text ``key``), so the two never name it differently."""
    return english if lang == "en" else _say(key, lang)


def effect_caption(cuped: bool, lang: Language = "en") -> str:
    """What the two difference columns are: what was measured, and the estimate the lift and
    money columns use."""
    estimate = _say("cli.effect_cuped" if cuped else "cli.effect_no_cuped", lang)
    return _say("cli.effect_caption", lang, estimate=estimate)


def effect_table(rows: pl.DataFrame, title: str, confidence: float, limit: int = 60,
                 cuped: bool = True, lang: Language = "en", split: str | None = None) -> Table:
    """The rows as people read them: group sizes, the difference measured and the estimate
    with its interval, lift and money (the means are in the file). In Russian the split's
    codes (``split``: channel, goal or segment) and the metrics are shown as labels."""
    from rich.table import Table

    from retain.analytics.effect import ALL

    table = Table(title=title)
    for column in (_report_word("period", "col.period", lang), _say("cli.split", lang),
                   _say("cli.metric", lang)):
        table.add_column(column, no_wrap=True)
    # Figures fold onto a second line in a narrow terminal: cut to "1,23…" they misread.
    for column in (_say("cli.treated_control", lang),
                   _report_word("difference measured", "col.raw_difference", lang),
                   _say("cli.difference_estimate", lang, confidence=f"{confidence:.0%}"),
                   _report_word("lift", "col.relative_lift", lang),
                   _report_word("extra revenue", "col.incremental_revenue", lang),
                   _report_word("cost", "col.cost", lang), "ROMI"):
        table.add_column(column, justify="right", overflow="fold")
    too_few = _say("cli.too_few", lang)

    def number(value: float | None, digits: int) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    for row in rows.head(limit).iter_rows(named=True):
        spread = max(abs(row["ci_low"] or 0.0), abs(row["ci_high"] or 0.0))
        # Money in whole units where it is large (rubles), in cents where small (dollars).
        digits = (0 if spread >= 100 else 2) if row["metric"] == "revenue" else 3
        interval = (f"{number(row['difference'], digits)} [{number(row['ci_low'], digits)}, "
                    f"{number(row['ci_high'], digits)}]")
        if row["ci_low"] is None and row["difference"] is not None:
            # Below --min-group. Escaped: rich reads a bare "[too few]" as a style tag and
            # printed the estimate with neither interval nor reason.
            interval = f"{number(row['difference'], digits)} \\[{too_few}]"
        lift = "-" if row["relative_lift"] is None else f"{row['relative_lift']:+.0%}"
        romi = "-" if row["romi"] is None else f"{row['romi']:.1f}"
        metric = (row["metric"] if lang == "en"
                  else _say(f"effect.metric.{row['metric']}", lang))
        # Without --split every row is the whole log's ("all").
        key = (_code(lang, split, row["split"]) if split
               else _say("cli.all", lang) if row["split"] == ALL else row["split"])
        table.add_row(row["period"], key, metric,
                      f"{row['treated_customers']:,}/{row['control_customers']:,}",
                      number(row.get("raw_difference"), digits), interval,
                      lift, number(row["incremental_revenue"], 0), number(row["cost"], 0), romi)
    table.caption = effect_caption(cuped, lang)
    if rows.height > limit:
        table.caption += _say("cli.first_rows", lang, limit=limit, rows=f"{rows.height:,}")
    return table


def _assignments(store_url: str | None, split: str, starts: list, rules: Rules) -> pl.DataFrame:
    """Each customer's goal (the control group's replayed) and segment, with ``as_of``, from
    the score runs that decided the periods: for each period start the latest complete run on
    or before it, else the earliest run (said in a note)."""
    import polars as pl

    from retain.analytics.effect import planned_goals
    from retain.config import settings
    from retain.serving.store import COMPLETE, ScoreStore

    try:
        store = ScoreStore(settings(store_url=store_url).store_url).open()
    except (ValueError, ConnectionError, RuntimeError) as exc:
        raise fail(f"score store: {exc}") from None
    with store:
        runs = [run for run in store.runs(limit=1000) if run["status"] == COMPLETE]
        if not runs:
            raise fail(f"--split {split} needs each customer's {split} from a score run, and "
                       f"the score store {store.url} has none: run `retain score` first, or "
                       "give --store-url")
        chosen: dict[str, dict] = {}
        for start in starts:
            before = [run for run in runs if run["as_of"] <= start]
            run = (max(before, key=lambda r: (r["as_of"], r["finished_at"])) if before
                   else min(runs, key=lambda r: (r["as_of"], r["finished_at"])))
            if not before:
                console.print(f"[yellow]note:[/] no score run on or before {start}: its "
                              f"{split}s come from the earliest run, as of {run['as_of']}",
                              soft_wrap=True)
            chosen[run["run_id"]] = run
        frames = [store.scores(run_id) for run_id in chosen]
    scores = pl.concat(frames, how="diagonal_relaxed")
    return scores.select("customer_id", "segment", "as_of").with_columns(planned_goals(
        scores, replenish_within_days=rules.goals.replenish_within_days,
        none_below_churn_probability=rules.goals.none_below_churn_probability))


@app.command(epilog=example(
    "retain effect --transactions data/shop/transactions.parquet \\",
    "    --contacts data/shop/contacts.parquet \\",
    "    --from 2026-01-01 --to 2026-07-01 --by quarter --split channel \\",
    "    --out effect.csv"))
def effect(
    contacts: MeasuredContactsOpt = None,
    date_from: Annotated[str | None, typer.Option(
        "--from", metavar="<date>", help="First day measured (YYYY-MM-DD).",
        show_default=False)] = None,
    date_to: Annotated[str | None, typer.Option(
        "--to", metavar="<date>", help="Day after the last day measured (YYYY-MM-DD).",
        show_default=False)] = None,
    by: Annotated[str, typer.Option(
        "--by", metavar="<month|quarter>", help="One row per calendar month or quarter.")
    ] = "month",
    split: Annotated[str | None, typer.Option(
        "--split", metavar="<goal|channel|segment>",
        help="Also per channel (from the contacts log), or per goal or segment (from the "
        "score run in force at each period's start).", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Write the rows: .csv, or .json (the /v1/effect answer).")] = None,
    transactions: TransactionsOpt = None,
    store_url: Annotated[str | None, typer.Option(
        "--store-url", metavar="<url>", help="Score store database URL: goals and segments "
        "are read from it, and the measurement is kept there for GET /v1/effect. Env: "
        "RETAIN_STORE_URL; default sqlite:///retain.db in the working directory.")] = None,
    rules: RulesOpt = None,
    confidence: Annotated[float, typer.Option(
        "--confidence", min=0.5, max=0.999, help="Confidence of the intervals.")] = 0.9,
    resamples: Annotated[int, typer.Option(
        "--resamples", min=100, max=20_000, help="Bootstrap resamples.")] = 1000,
    cuped: Annotated[bool, typer.Option(
        "--cuped/--no-cuped", help="Narrow the intervals with each customer's past spend "
        "(CUPED).")] = True,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")] = 0,
    store: Annotated[bool, typer.Option(
        "--store/--no-store", help="Keep the measurement in the score store for GET "
        "/v1/effect; --no-store for a trial the API should not serve.")] = True,
    min_group: Annotated[int, typer.Option(
        "--min-group", min=1, help="Fewer customers than this on either side and the row's "
        "interval is left empty (too few to judge).")] = 30,
    column_map: MapOpt = None,
    on_bad_rows: OnBadRowsOpt = None,
    rejects: EffectRejectsOpt = None,
    query: QueryOpt = None,
    encoding: EncodingOpt = None,
    date_format: DateFormatOpt = None,
    drop_duplicates: DropDuplicatesOpt = None,
    cancelled_status: CancelledStatusOpt = None,
    returned_status: ReturnedStatusOpt = None,
    lang: TableLangOpt = "en",
) -> None:
    """Measure what the messages earned against the control group.

    Per period (and channel, goal or segment): revenue, orders and buyers per customer of the
    contacted and the control customers, the difference measured and its estimate with a
    confidence interval (bootstrap, narrowed by CUPED), the relative lift, incremental revenue,
    cost and ROMI.
    docs/effect.md defines each figure.
    """
    from retain.analytics.effect import (
        SPLITS,
        EffectError,
        measure_effect,
        too_small,
        unmatched_customers,
    )
    from retain.commands.common import write_frame, write_json
    from retain.config import settings
    from retain.serving.effect_store import write_effect
    from retain.serving.store import ScoreStore

    language = language_or_fail(lang)
    start, end = measured_span(date_from, date_to, by, example="--from 2026-01-01 --to 2026-07-01")
    if split is not None and split not in SPLITS:
        raise fail(f"--split: expected goal, channel or segment, got {split!r}")
    decision_rules, tx, log = measured_inputs(
        "effect", end, transactions, contacts, out, rules, rejects, on_bad_rows, column_map,
        query, encoding=encoding, date_format=date_format, drop_duplicates=drop_duplicates,
        cancelled_statuses=cancelled_status, returned_statuses=returned_status)
    assignments = None
    if split in ("goal", "segment"):
        from retain.analytics.effect import period_bounds

        starts = [first for _, first, _ in period_bounds(start, end, by)]  # type: ignore[arg-type]
        assignments = _assignments(store_url, split, starts, decision_rules)
    try:
        with step(f"Measuring the effect {start} to {end} by {by}"):
            rows = measure_effect(
                tx, log, start, end, by=by, split=split,  # type: ignore[arg-type]
                assignments=assignments, margin=decision_rules.offers.margin,
                response_days=decision_rules.channels.response_days, cuped=cuped,
                n_boot=resamples, confidence=confidence, seed=seed, min_group=min_group)
    except EffectError as exc:
        raise fail(str(exc)) from None
    effect_id, kept = None, _say("cli.not_kept_trial", language)
    try:
        if store:
            with ScoreStore(settings(store_url=store_url).store_url).open() as kept_in:
                effect_id = write_effect(kept_in, rows, date_from=start, date_to=end, by=by,
                                         split=split)
                kept = _say("cli.kept", language, url=kept_in.url)
    except (ValueError, ConnectionError, RuntimeError, OSError) as exc:
        effect_id, kept = None, _say("cli.not_kept", language, error=exc)
    title = (_say("cli.effect_title", language, start=start, end=end)
             + (_say(f"cli.effect_by.{split}", language) if split else ""))
    console.print(effect_table(rows, title, confidence, cuped=cuped, lang=language, split=split))
    unmatched = unmatched_customers(tx, log, start, end)
    if any(unknown for unknown, _ in unmatched.values()):
        (t_unknown, t_all), (c_unknown, c_all) = unmatched["treated"], unmatched["control"]
        console.print(
            "[yellow]note:[/] " + _say("cli.unmatched", language, t_unknown=f"{t_unknown:,}",
                                       t_all=f"{t_all:,}", c_unknown=f"{c_unknown:,}",
                                       c_all=f"{c_all:,}", end=end),
            soft_wrap=True)
    small = too_small(rows, min_group)
    if small:
        compared = rows.select("period", "split").unique().height
        console.print("[yellow]note:[/] " + _say("cli.too_few_note", language, small=f"{small:,}",
                                                 all=f"{compared:,}", min_group=min_group),
                      soft_wrap=True)
    if out is not None:
        if out.suffix.lower() == ".json":
            write_json(out, {"effect_id": effect_id, "date_from": start, "date_to": end,
                             "by": by, "split_by": split or "none",
                             "rows": rows.fill_nan(None).to_dicts()})
        else:
            write_frame(rows, out)
    # The margin is the rules' figure, not measured: say so when nobody set it.
    assumed = "" if settings(rules=rules).rules else _say("cli.margin_assumed", language)
    console.print(_say("cli.effect_done", language, rows=f"{rows.height:,}",
                       percent=int(confidence * 100), margin=f"{decision_rules.offers.margin:g}",
                       assumed=assumed)
                  + f"; {kept}" + (f"; {_say('cli.saved', language, out=out)}" if out else ""),
                  soft_wrap=True)


def uplift_caption(default_uplift: float | None, prior_messages: float | None = None,
                   lang: Language = "en") -> str:
    """What the two uplift columns are: what was measured, and the estimate the decisions
    use (shrunk toward the rules' default, so it stays positive where nothing worked)."""
    toward = (_say("cli.toward", lang) if default_uplift is None
              else _say("cli.toward_value", lang, value=f"{default_uplift:.1%}"))
    weight = ("" if prior_messages is None
              else _say("cli.weight", lang, messages=f"{prior_messages:,.0f}"))
    return _say("cli.uplift_caption", lang, toward=toward, weight=weight)


def channels_table(over_time: pl.DataFrame, title: str, default_uplift: float | None = None,
                   prior_messages: float | None = None, lang: Language = "en") -> Table:
    """One row per channel and period; ``default_uplift`` and ``prior_messages`` (the
    rules') say in the caption what the estimate is shrunk toward."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column(_report_word("period", "col.period", lang), no_wrap=True)
    table.add_column(_report_word("channel", "col.split", lang), no_wrap=True)
    # Figures fold onto a second line in a narrow terminal: cut to "1,1…" they misread.
    for column in (_say("cli.reach", lang), _say("cli.response", lang), _say("cli.control", lang),
                   _say("cli.uplift_measured", lang), _say("cli.uplift_estimate", lang),
                   _say("cli.revenue_per_contact", lang), _report_word("cost", "col.cost", lang),
                   _say("cli.return_per_cost", lang), _say("cli.status", lang)):
        table.add_column(column, justify="right", overflow="fold")

    def share(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    def number(value: float | None, digits: int) -> str:
        # A figure the period could not measure (no control row, no order) is null: a dash.
        return "-" if value is None else f"{value:,.{digits}f}"

    for row in over_time.iter_rows(named=True):
        table.add_row(
            str(row["period"]), _code(lang, "channel", row["channel"]), number(row["reach"], 0),
            share(row["response_rate"]), share(row["control_rate"]),
            share(row.get("raw_uplift")), share(row["uplift"]),
            number(row["incremental_revenue_per_contact"], 1), number(row["cost"], 0),
            number(row["return_per_cost"], 1), _code(lang, "channel_status", row["status"]))
    table.caption = uplift_caption(default_uplift, prior_messages, lang)
    return table


def _code(lang: Language, kind: str, code) -> str:
    """A code as printed: itself in English (as always), its label in Russian."""
    from retain.serving.labels import label

    return str(code) if lang == "en" or code is None else label(kind, str(code), lang)


def split_table(split: pl.DataFrame, title: str, lang: Language = "en") -> Table:
    from rich.table import Table

    table = Table(title=title)
    table.add_column(_report_word("channel", "col.split", lang), no_wrap=True)
    table.add_column(_say("cli.status", lang))
    table.add_column(_say("cli.last_period", lang), justify="right")
    table.add_column(_say("cli.next_period", lang), justify="right")
    for row in split.iter_rows(named=True):
        table.add_row(_code(lang, "channel", row["channel"]),
                      _code(lang, "channel_status", row["status"]),
                      f"{row['current_share']:.0%}", f"{row['recommended_share']:.0%}")
    return table


@app.command(epilog=example(
    "retain channels --transactions data/shop/transactions.parquet \\",
    "    --contacts data/shop/contacts.parquet \\",
    "    --from 2025-07-01 --to 2026-07-01 --by quarter --out channels.csv"))
def channels(
    contacts: MeasuredContactsOpt = None,
    date_from: Annotated[str | None, typer.Option(
        "--from", metavar="<date>", help="First day measured (YYYY-MM-DD).",
        show_default=False)] = None,
    date_to: Annotated[str | None, typer.Option(
        "--to", metavar="<date>", help="Day after the last day measured (YYYY-MM-DD).",
        show_default=False)] = None,
    by: Annotated[str | None, typer.Option(
        "--by", metavar="<month|quarter>", help="Period of each measurement. Default: the "
        "rules' channels.period.", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Write the per channel and period rows: .csv, or .json with the split.")
    ] = None,
    transactions: TransactionsOpt = None,
    rules: RulesOpt = None,
    column_map: MapOpt = None,
    on_bad_rows: OnBadRowsOpt = None,
    rejects: ChannelsRejectsOpt = None,
    query: QueryOpt = None,
    encoding: EncodingOpt = None,
    date_format: DateFormatOpt = None,
    drop_duplicates: DropDuplicatesOpt = None,
    cancelled_status: CancelledStatusOpt = None,
    returned_status: ReturnedStatusOpt = None,
    lang: TableLangOpt = "en",
) -> None:
    """Each channel per month or quarter, and the next split.

    Per channel and month or quarter: reach, response against the control group, the uplift
    measured and the estimate the decisions use (shrunk toward the rules' default), extra
    revenue per contact, cost and return per cost; the next period's shares follow the return
    per cost, and channels in maintenance keep a small share."""
    from retain.analytics.channels_over_time import (
        channels_over_time,
        period_labels,
        recommended_split,
    )
    from retain.commands.common import write_frame, write_json

    language = language_or_fail(lang)
    start, end = measured_span(date_from, date_to, by, example="--from 2025-07-01 --to 2026-07-01")
    decision_rules, tx, log = measured_inputs(
        "channels", end, transactions, contacts, out, rules, rejects, on_bad_rows, column_map,
        query, encoding=encoding, date_format=date_format, drop_duplicates=drop_duplicates,
        cancelled_statuses=cancelled_status, returned_statuses=returned_status)
    assert log is not None
    import polars as pl

    from retain.features.orders import midnight

    in_span = log.filter((pl.col("ts") >= midnight(start)) & (pl.col("ts") < midnight(end)))
    marked = pl.col("control").cast(pl.Boolean).fill_null(False)
    if in_span.filter(~marked).height and in_span.filter(marked).height == 0:
        # The same refusal as `retain effect`: uplift is measured against the control group.
        raise fail(
            f"the contacts log marks no control customer between {start} and {end}: the effect "
            "is measured against the global control group, whose customers must appear in the "
            "log with control = true for the campaigns that left them out")
    known = in_span.select("customer_id").unique().join(
        tx.select(pl.col("customer_id").cast(pl.String)).unique(), on="customer_id")
    if in_span.height and known.height == 0:
        raise fail(
            "no customer of the contacts log has an order in the transactions: both files "
            "must name customers with the same ids (a prefix or a different id column?)")
    with step(f"Measuring the channels {start} to {end}"):
        over_time = channels_over_time(tx, log, start, end, rules=decision_rules.channels,
                                       margin=decision_rules.offers.margin, by=by)
    if over_time.height == 0:
        raise fail(f"no message between {start} and {end} could be judged: a message counts "
                   "once its response window closed before --to, to a customer who had "
                   "ordered in the 180 days before it")
    split = recommended_split(over_time,
                              maintenance_share=decision_rules.channels.maintenance_share)
    period = by or decision_rules.channels.period
    over_time = period_labels(over_time, start, period)
    console.print(channels_table(
        over_time, _say("cli.channels_title", language, period=_say(f"cli.period.{period}", language),
                        start=start, end=end),
        decision_rules.channels.default_uplift, decision_rules.channels.prior_messages,
        language))
    console.print(split_table(split, _say("cli.split_title", language,
                                          period=over_time["period"].max()), language))
    if out is not None:
        if out.suffix.lower() == ".json":
            write_json(out, {"date_from": start, "date_to": end,
                             "by": by or decision_rules.channels.period,
                             "default_uplift": decision_rules.channels.default_uplift,
                             "prior_messages": decision_rules.channels.prior_messages,
                             "rows": over_time.to_dicts(), "split": split.to_dicts()})
        else:
            write_frame(over_time, out)
        console.print(_say("cli.saved", language, out=out))


def measured_span(date_from: str | None, date_to: str | None, by: str | None, *,
                  example: str) -> tuple[date, date]:
    """``[--from, --to)`` checked, and ``--by`` when given: one error line each."""
    start, end = parse_date(date_from, "--from"), parse_date(date_to, "--to")
    if start is None or end is None:
        raise fail("--from and --to are required: the first day measured and the day after "
                   f"the last, e.g. {example}")
    if end <= start:
        raise fail(f"--to {end} must be after --from {start}")
    if by is not None and by not in ("month", "quarter"):
        raise fail(f"--by: expected month or quarter, got {by!r}")
    return start, end


def measured_inputs(command: str, end: date, transactions, contacts, out: Path | None, rules,
                    rejects: Path | None, on_bad_rows, column_map, query, **reading):
    """What `retain effect` and `retain channels` both read: the rules, the transactions up to
    ``end`` and the contacts log, after the checks that need no data (one error line each)."""
    from retain.config import settings

    if not contacts:
        raise fail("--contacts is required: the log of the messages sent and of the control "
                   "group's rows (customer_id, ts, channel, campaign, cost, control)")
    if out is not None and out.suffix.lower() not in (".csv", ".json"):
        raise fail(f"{out}: unknown output type; use .csv or .json")
    decision_rules = rules_or_fail(settings(rules=rules).rules)
    config = transaction_settings(transactions, end.isoformat(), None, on_bad_rows, column_map,
                                  query, **reading)
    rejected = rejects or Path(f"{command}.rejected.csv")
    tx, _, _ = load(config, rejected, as_of_hint=_SPAN_HINT)
    log = load_side_table("contacts", contacts, config, rejected)
    return decision_rules, tx, log
