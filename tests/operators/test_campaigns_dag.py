import json
from datetime import datetime, timedelta, timezone

from tests.dag_helpers import run_dag, task_states, xcom_return_value


def test_dag(airflow_db, pinned_simulator, pinned_conn_id, tmp_path):
    from airflow.sdk import DAG
    from airflow.timetables.interval import CronDataIntervalTimetable
    from bsg_provider.operators.campaigns import BsgExtractCampaignsOperator
    with DAG("smoke", schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"), start_date=datetime(2020,1,1,tzinfo=timezone.utc), catchup=False) as dag:
        BsgExtractCampaignsOperator(task_id="extract", output_path=f"file://{tmp_path}/{{{{ ds }}}}.jsonl", bsg_conn_id=pinned_conn_id)
    d = datetime(2025, 6, 1, tzinfo=timezone.utc)
    dr = run_dag(dag, logical_date=d)
    print(task_states(dr), dr.data_interval_start, dr.data_interval_end, list(tmp_path.iterdir()))
    print(xcom_return_value(dr, "extract"))
    assert 0
