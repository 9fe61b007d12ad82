"""
Templated arguments whose values come at run time (XComArg, Jinja), in DAG files Airflow parses.

Literal values are checked when the DAG file is parsed; values Airflow resolves while rendering
(an upstream task's ``.output``, a Jinja string) are checked in ``execute``, with the same message,
and a bad one fails the task for good on its first try.
"""

from __future__ import annotations

import json
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bsg_provider.errors import BsgConfigError
from bsg_provider.operators.campaigns import BsgExtractCampaignsOperator
from tests.dag_helpers import run_dag, task_states, xcom_return_value

UTC = timezone.utc
#: A window inside the pinned simulator's 400 days of campaigns.
WINDOW = (datetime(2025, 6, 3, tzinfo=UTC), datetime(2025, 6, 5, tzinfo=UTC))

#: A DAG file whose extract takes start, end and campaign_type from an upstream task.
XCOM_DAG_FILE = """
from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from bsg_provider.operators.campaigns import BsgExtractCampaignsOperator


@dag(schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False)
def {dag_id}():
    @task(multiple_outputs=True)
    def window():
        return {{"start": {start!r}, "end": {end!r}, "campaign_type": {campaign_type!r}}}

    bounds = window()
    BsgExtractCampaignsOperator(
        task_id="extract",
        output_path="file://{out}/campaigns.jsonl",
        start=bounds["start"],
        end=bounds["end"],
        campaign_type=bounds["campaign_type"],
        bsg_conn_id="{conn_id}",
        retries=3,
        retry_delay=timedelta(seconds=0),
    )


{dag_id}()
"""


def parse_folder(folder: Path) -> Any:
    """A DagBag over ``folder``, parsed as the DAG processor parses it."""
    try:  # Airflow 3.1+
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.0
        from airflow.models.dagbag import DagBag

    return DagBag(dag_folder=str(folder))


def write_xcom_dag(folder: Path, out: Path, conn_id: str, **values: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bsg_xcom_window.py").write_text(
        XCOM_DAG_FILE.format(dag_id="bsg_xcom_window", out=out, conn_id=conn_id, **values)
    )


def test_a_dag_file_with_xcomarg_bounds_and_type_loads_and_extracts_the_window(
    airflow_db, pinned_simulator, pinned_conn_id, tmp_path
):
    start, end = WINDOW
    write_xcom_dag(
        tmp_path / "dags",
        tmp_path / "out",
        pinned_conn_id,
        start=start.isoformat(),
        end=end.isoformat(),
        campaign_type="sms",
    )
    bag = parse_folder(tmp_path / "dags")
    assert bag.import_errors == {}
    dag = bag.dags["bsg_xcom_window"]

    run = run_dag(dag, logical_date=datetime(2025, 6, 10, tzinfo=UTC))

    assert task_states(run) == {"window": "success", "extract": "success"}
    ids = [json.loads(line)["id"] for line in (tmp_path / "out" / "campaigns.jsonl").read_text().splitlines()]
    assert ids == sorted(pinned_simulator.ground_truth_ids(start, end))
    assert ids, "the window holds campaigns"
    summary = xcom_return_value(run, "extract")
    assert (summary["interval_start"], summary["interval_end"]) == (start.isoformat(), end.isoformat())


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {
                "start": "2025-06-03T00:00:00+00:00",
                "end": "2025-06-05T00:00:00+00:00",
                "campaign_type": "email",
            },
            "campaign_type must be one of sms, rcs, whatsapp, got 'email'.",
        ),
        (
            {"start": "2025-06-03", "end": "2025-06-05T00:00:00+00:00", "campaign_type": "sms"},
            "start 2025-06-03T00:00:00 has no timezone",
        ),
    ],
)
def test_a_bad_value_from_xcom_fails_in_execute_with_the_message_and_no_retry(
    airflow_db, pinned_simulator, pinned_conn_id, tmp_path, monkeypatch, values, message
):
    # Airflow 3.0's dag.test() logs a task's exception nowhere a test can read; keep what execute raised.
    raised: list[BaseException] = []
    execute = BsgExtractCampaignsOperator.execute

    def recording_execute(self, context):
        try:
            return execute(self, context)
        except BaseException as exc:
            raised.append(exc)
            raise

    monkeypatch.setattr(BsgExtractCampaignsOperator, "execute", recording_execute)
    write_xcom_dag(tmp_path / "dags", tmp_path / "out", pinned_conn_id, **values)
    bag = parse_folder(tmp_path / "dags")
    assert bag.import_errors == {}, "a value that comes at run time is not checked at parse time"

    run = run_dag(bag.dags["bsg_xcom_window"], logical_date=datetime(2025, 6, 10, tzinfo=UTC))

    assert task_states(run) == {"window": "success", "extract": "failed"}
    (extract,) = [ti for ti in run.get_task_instances() if ti.task_id == "extract"]
    assert extract.try_number == 1, "a config error is not retried (retries=3)"
    (error,) = raised
    assert type(error).__name__ == "AirflowFailException"
    assert message in str(error)
    assert pinned_simulator.count("any") == 0
    assert not (tmp_path / "out").exists()


def test_a_literal_bad_value_still_fails_when_the_dag_file_is_parsed(tmp_path):
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "bsg_literal.py").write_text(
        textwrap.dedent(
            """
            import pendulum
            from airflow.sdk import DAG

            from bsg_provider.operators.campaigns import BsgExtractCampaignsOperator

            with DAG("bsg_literal", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")):
                BsgExtractCampaignsOperator(
                    task_id="extract", output_path="file:///tmp/x.jsonl", campaign_type="email"
                )
            """
        )
    )
    bag = parse_folder(folder)
    assert "bsg_literal" not in bag.dags
    (error,) = bag.import_errors.values()
    assert "campaign_type must be one of sms, rcs, whatsapp, got 'email'." in error


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start": "{{ dag_run.conf['start'] }}", "end": "{% if true %}x{% endif %}"},
        {"campaign_type": "{{ params.campaign_type }}"},
    ],
)
def test_jinja_values_are_left_to_execute(kwargs):
    operator = BsgExtractCampaignsOperator(task_id="extract", output_path="file:///tmp/x.jsonl", **kwargs)
    for name, value in kwargs.items():
        assert getattr(operator, name) == value


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": "2025-06-01"}, "start 2025-06-01T00:00:00 has no timezone"),
        ({"end": datetime(2025, 6, 1)}, "end 2025-06-01T00:00:00 has no timezone"),
        ({"start": 20250601}, "start must be a datetime or an ISO 8601 string"),
        ({"campaign_type": "SMS"}, "campaign_type must be one of sms, rcs, whatsapp, got 'SMS'."),
    ],
)
def test_literal_values_are_checked_when_the_operator_is_built(kwargs, message):
    with pytest.raises(BsgConfigError, match=message.replace("(", r"\(")):
        BsgExtractCampaignsOperator(
            task_id="extract", output_path="file:///tmp/x.jsonl", lookback=timedelta(0), **kwargs
        )
