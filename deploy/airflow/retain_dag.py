"""Airflow DAG: retrain retain every month, score every week, watch drift and calibration.

Copy this file into Airflow's ``dags/`` folder on a machine where ``retain`` is installed (or
point ``RETAIN_BIN`` at it), and set the Airflow Variables below. Each task is one ``retain``
command, so what runs here is what docs/retrain.md runs by hand or from cron.

- ``retain_train`` (monthly): trains a challenger on the whole log. It registers a new version
  in MLflow and moves the ``champion`` alias only when the new version beats the champion on the
  same backtest (the champion's recipe re-run on this run's data and window); otherwise the new
  version is the ``challenger`` and the champion stays. The reason is the version's
  ``alias_decision`` tag. The API picks up a moved alias by itself (``RETAIN_RELOAD_INTERVAL``).
- ``retain_score`` (weekly, after training in a training week): scores every customer with the
  champion into the score store, measuring feature and score drift against the previous run
  (``retain drift`` shows it; ``/metrics`` exposes ``retain_drift_psi``).
- ``retain_calibration``: every past run whose horizon has passed, against what then happened.

Variables (Admin -> Variables): ``retain_transactions`` (a file or database URL),
``retain_customers`` and ``retain_contacts`` (optional), ``retain_out`` (a folder for scores).
The MLflow and store URLs come from the workers' environment (``MLFLOW_TRACKING_URI``,
``RETAIN_STORE_URL``), never from the DAG.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

RETAIN = os.environ.get("RETAIN_BIN", "retain")
TRANSACTIONS = "{{ var.value.retain_transactions }}"
# Optional side tables: consents (scoring only) and the contacts log (training measures each
# channel from it; scoring also keeps the frequency cap).
CONTACTS = ("{% if var.value.get('retain_contacts', '') %} --contacts "
            "{{ var.value.retain_contacts }}{% endif %}")
SIDE_TABLES = ("{% if var.value.get('retain_customers', '') %} --customers "
               "{{ var.value.retain_customers }}{% endif %}" + CONTACTS)
OUT = "{{ var.value.get('retain_out', '/var/lib/retain') }}"

DEFAULT_ARGS = {
    "owner": "retain",
    "retries": 1,
    "retry_delay": timedelta(minutes=15),
    # A failed command ends in one `error:` line (exit 1): worth a look, not a retry storm.
    "retry_exponential_backoff": False,
}

with DAG(
    dag_id="retain_retrain",
    description="Monthly challenger training (promoted only when better), then scoring",
    schedule="0 3 1 * *",  # 03:00 on the 1st of every month
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["retain"],
) as retrain:
    train = BashOperator(
        task_id="retain_train",
        # No --as-of: the day after the last transaction, so the whole log is used.
        bash_command=f"{RETAIN} train --transactions {TRANSACTIONS}{CONTACTS}",
        execution_timeout=timedelta(hours=6),
    )
    score = BashOperator(
        task_id="retain_score",
        bash_command=(f"{RETAIN} score --transactions {TRANSACTIONS}{SIDE_TABLES} "
                      f"--out {OUT}/scores-{{{{ ds }}}}.parquet"),
        execution_timeout=timedelta(hours=2),
    )
    calibration = BashOperator(
        task_id="retain_calibration",
        bash_command=(f"{RETAIN} calibration --transactions {TRANSACTIONS} "
                      f"--out {OUT}/calibration-{{{{ ds }}}}.csv"),
        execution_timeout=timedelta(hours=1),
    )
    train >> score >> calibration

with DAG(
    dag_id="retain_score_weekly",
    description="Weekly scoring with the champion, drift against the previous run",
    schedule="0 5 * * 1",  # 05:00 every Monday
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["retain"],
) as weekly:
    BashOperator(
        task_id="retain_score",
        bash_command=(f"{RETAIN} score --transactions {TRANSACTIONS}{SIDE_TABLES} "
                      f"--out {OUT}/scores-{{{{ ds }}}}.parquet"),
        execution_timeout=timedelta(hours=2),
    )
