"""The README's picture of the report (docs/img/report.png) from a simulated shop, made as a
user makes the report: `retain simulate`, `retain train` and `retain score` at an earlier date
(so the gains and reliability have a horizon that has passed) and at the as-of date (so drift
has a previous run), then `retain report`, photographed in headless Chromium.

    .venv/bin/python scripts/report_screenshot.py [--customers 3000] [--out docs/img/report.png]

Needs a Chromium (scripts/chromium.sh; RETAIN_TEST_CHROMIUM or one on PATH). Everything runs in
a temporary folder (its own MLflow and score store); only the PNG is kept. The costs file is
made up for the picture: a monthly spend per acquisition channel.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RETAIN = str(Path(sys.executable).with_name("retain"))
# Made up for the picture, so that LTV/CAC lands on both sides of 3 (about 1.5 to 9).
MONTHLY_SPEND = {"seo": 120_000, "paid_search": 450_000, "social": 200_000, "referral": 40_000,
                 "offline": 180_000}
MAX_BYTES = 300_000


def run(*args: str, cwd: Path) -> None:
    done = subprocess.run([RETAIN, *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}"},
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"retain {args[0]} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def costs_csv(path: Path, first: date, last: date) -> None:
    lines = ["acquisition_channel,month,spend"]
    month = date(first.year, first.month, 1)
    while month <= last:
        lines += [f"{channel},{month:%Y-%m},{spend}" for channel, spend in MONTHLY_SPEND.items()]
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def photograph(html: Path, png: Path, chromium: str, lang: str) -> None:
    from PIL import Image
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium,
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1240, "height": 900})
            page.goto(html.as_uri())
            shot = page.screenshot(full_page=True)
        finally:
            browser.close()
    image = Image.open(io.BytesIO(shot)).convert("RGB")
    # Half size, in 256 colours: under MAX_BYTES and still legible on GitHub.
    image = image.resize((image.width // 2, image.height // 2), Image.LANCZOS)
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(png, optimize=True)
    size = png.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{png}: {size:,} bytes, over {MAX_BYTES:,}")
    print(f"{png}: {image.width}x{image.height}, {size:,} bytes ({lang})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--as-of", default="2026-07-01")
    parser.add_argument("--lang", default="en", choices=("en", "ru"))
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "report.png")
    parser.add_argument("--keep", type=Path, help="Also keep the report's HTML here.")
    args = parser.parse_args()
    chromium = (os.environ.get("RETAIN_TEST_CHROMIUM") or shutil.which("chromium")
                or shutil.which("chromium-browser"))
    if not chromium:
        raise SystemExit("no Chromium: run `export RETAIN_TEST_CHROMIUM=$(scripts/chromium.sh)`")
    as_of = date.fromisoformat(args.as_of)
    earlier = as_of - timedelta(days=120)  # its 90-day horizon has passed by as-of
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        run("simulate", "--customers", str(args.customers), "--seed", str(args.seed),
            "--as-of", str(as_of), "--out", "shop", cwd=work)
        costs_csv(work / "costs.csv", as_of - timedelta(days=730), as_of - timedelta(days=1))
        shop = ["--transactions", "shop/transactions.parquet"]
        side = ["--customers", "shop/customers.parquet", "--contacts", "shop/contacts.parquet"]
        run("train", *shop, "--as-of", str(earlier), "--contacts", "shop/contacts.parquet",
            cwd=work)
        for day in (earlier, as_of):
            run("score", *shop, *side, "--as-of", str(day), "--out", f"scores-{day}.csv",
                cwd=work)
        run("report", *shop, *side, "--costs", "costs.csv", "--as-of", str(as_of), "--lang",
            args.lang, "--out", "report.html", cwd=work)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        photograph(work / "report.html", args.out, chromium, args.lang)
        if args.keep:
            shutil.copy(work / "report.html", args.keep)


if __name__ == "__main__":
    main()
