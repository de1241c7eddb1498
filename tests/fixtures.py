"""Small files shaped like real shop exports, with the quirks each shape really has.

- ``write_online_retail``: an invoice export as UCI "Online Retail" publishes it: ``InvoiceNo``
  (cancellations as their own invoices, ``C``-prefixed, with negative quantities; ``A``-prefixed
  "Adjust bad debt" lines with a negative price), ``StockCode``, ``Quantity``, ``InvoiceDate``
  like ``12/1/2010 8:26``, ``UnitPrice`` (some 0), ``CustomerID`` as floats (``17850.0``) and empty
  for guests, and some lines repeated. No amount column: ``--map price=UnitPrice``.
- ``write_cp1251``: a Russian-locale export (1C, Excel) in cp1251 with customers ``Иван`` and
  ``Петр``.
- ``write_cdnow_like``: CDNOW_master.txt's shape: a header, whitespace-padded columns, CRLF,
  dates as ``19970101``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

ONLINE_RETAIL_HEADER = ("InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,"
                        "CustomerID,Country")
ONLINE_RETAIL_MAP = [
    "--map", "customer_id=CustomerID", "--map", "order_id=InvoiceNo",
    "--map", "ts=InvoiceDate", "--map", "price=UnitPrice", "--map", "quantity=Quantity",
    "--map", "product_id=StockCode",
]
ONLINE_RETAIL_COLUMN_MAP = {
    "customer_id": "CustomerID", "order_id": "InvoiceNo", "ts": "InvoiceDate",
    "price": "UnitPrice", "quantity": "Quantity", "product_id": "StockCode",
}


@dataclass
class OnlineRetail:
    """What was written: counts a test can check the loader's report against."""

    path: Path
    lines: int
    guest_lines: int
    duplicated_lines: int
    float_id_lines: int
    cancellations: int
    start: datetime
    end: datetime


def _us(ts: datetime) -> str:
    # UCI's own format: month first, no leading zeros, minutes only.
    return f"{ts.month}/{ts.day}/{ts.year} {ts.hour}:{ts.minute:02d}"


def write_online_retail(path: Path, customers: int = 120, seed: int = 0,
                        start: datetime = datetime(2010, 12, 1, 8, 26),
                        days: int = 540, vouchers: int = 0,
                        encoding: str = "utf-8", two_digit_years: bool = False) -> OnlineRetail:
    """A year and a half of invoices of ``customers`` repeat buyers, with every quirk.

    ``vouchers`` adds guest lines selling ``Dotcomgiftshop Gift Voucher £20.00``: the real log's
    only non-ASCII text, so in ``encoding="latin-1"`` (as the copy most people download is
    saved) a pound sign is the one byte that is not UTF-8. ``two_digit_years`` writes dates as
    Excel saves the same log (``12/1/10 8:26``)."""
    rng = random.Random(seed)
    products = [f"{85000 + i}{rng.choice('ABC')}" for i in range(30)]
    prices = {p: round(rng.uniform(0.4, 12.0), 2) for p in products}
    rows: list[str] = []
    invoice = 536365
    guests = duplicates = float_ids = cancellations = 0

    def line(no: str, code: str, quantity: int, ts: datetime, price: float, customer: str) -> str:
        return f"{no},{code},ITEM {code},{quantity},{_us(ts)},{price},{customer},United Kingdom"

    for c in range(customers):
        cid = 12346 + c
        # Excel wrote most ids as floats; a few were exported as integers.
        customer = f"{cid}.0" if c % 5 else str(cid)
        favourites = rng.sample(products, 4)
        ts = start + timedelta(days=rng.uniform(0, 60), hours=rng.uniform(0, 8))
        interval = rng.uniform(15, 70)
        while ts < start + timedelta(days=days):
            invoice += 1
            basket = [(p, rng.randint(1, 24)) for p in rng.sample(favourites, rng.randint(1, 3))]
            for code, quantity in basket:
                rows.append(line(str(invoice), code, quantity, ts, prices[code], customer))
                float_ids += customer.endswith(".0")
            if rng.random() < 0.15:  # a free sample: a zero-price line
                rows.append(line(str(invoice), "POST", 1, ts, 0.0, customer))
                float_ids += customer.endswith(".0")
            if rng.random() < 0.08:  # the same line twice
                rows.append(rows[-1])
                duplicates += 1
                float_ids += customer.endswith(".0")
            if rng.random() < 0.12:  # a cancellation, its own invoice; sometimes a larger refund
                code, quantity = basket[0]
                back = quantity * (2 if rng.random() < 0.3 else 1)
                rows.append(line(f"C{invoice + 500000}", code, -back,
                                 ts + timedelta(days=rng.uniform(0.1, 5)), prices[code], customer))
                cancellations += 1
                float_ids += customer.endswith(".0")
            ts += timedelta(days=rng.expovariate(1 / interval) + 1)
    for g in range(25):  # guest orders: no customer
        ts = start + timedelta(days=rng.uniform(0, days))
        rows.append(line(str(600000 + g), products[g % 30], 2, ts, prices[products[g % 30]], ""))
        guests += 1
    for v in range(vouchers):
        ts = start + timedelta(days=rng.uniform(0, days))
        value = 10 * (1 + v % 5)
        rows.append(f"{700000 + v},gift_0001_{value},Dotcomgiftshop Gift Voucher \u00a3{value}.00,1,"
                    f"{_us(ts)},{value * 0.85:.2f},,United Kingdom")
        guests += 1
    # Bad-debt adjustments: UCI's have no customer; one here has, with a negative price.
    rows.append(line("A563185", "B", 1, start + timedelta(days=250), -11062.06, ""))
    guests += 1
    rows.append(line("A563186", "B", 1, start + timedelta(days=251), -1.5, "12346"))
    rows.sort(key=lambda r: datetime.strptime(r.split(",")[4], "%m/%d/%Y %H:%M"))
    if two_digit_years:
        rows = [",".join([*f[:4], re.sub(r"/\d\d(\d\d) ", r"/\1 ", f[4]), *f[5:]])
                for f in (r.split(",") for r in rows)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ONLINE_RETAIL_HEADER + "\n" + "\n".join(rows) + "\n", encoding=encoding)
    return OnlineRetail(path=path, lines=len(rows), guest_lines=guests,
                        duplicated_lines=duplicates, float_id_lines=float_ids,
                        cancellations=cancellations, start=start,
                        end=start + timedelta(days=days))


def write_cp1251(path: Path) -> Path:
    """Semicolons, day-first dates and Cyrillic names, as 1C writes them, in cp1251."""
    text = ("Клиент;Дата;Сумма\n"
            "Иван;01.03.2024;1 200,50\n"
            "Петр;02.03.2024;800\n"
            "Иван;15.04.2024;300,00\n"
            "Петр;20.05.2024;150\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("cp1251"))
    return path


CP1251_MAP = ["--map", "customer_id=Клиент", "--map", "ts=Дата", "--map", "amount=Сумма"]


def write_cdnow_like(path: Path) -> Path:
    """CDNOW_master.txt's layout: padded whitespace columns, CRLF, dates as 19970101."""
    rows = [("00001", "19970101", 1, 11.77), ("00002", "19970112", 1, 12.00),
            ("00002", "19970112", 5, 77.00), ("00003", "19970102", 2, 20.76),
            ("00003", "19970330", 2, 20.76), ("00003", "19970402", 2, 19.54),
            ("00003", "19971115", 5, 57.45), ("00004", "19970101", 2, 29.33),
            ("00004", "19970118", 2, 29.73), ("00004", "19970118", 2, 29.73)]
    lines = ["customer_id  date  number_of_cds  dollar_value"]
    lines += [f" {c} {d}  {n:>3}  {v:>8.2f}" for c, d, n, v in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("ascii"))
    return path


CDNOW_MAP = ["--map", "ts=date", "--map", "amount=dollar_value", "--map", "quantity=number_of_cds"]
