"""
Run a DAG built inside a test through Airflow's own ``dag.test()``, on Airflow 3.0 to 3.3.

``dag.test()`` looks the DAG up in the metadata database (3.3 syncs the DAG bundles first
and fails with "the dag is not serialized" for a DAG that lives in no bundle), so the
DAG is written there first, under the dags-folder bundle. Needs the ``airflow_db`` fixture.
Connections given as ``AIRFLOW_CONN_*`` environment variables (``monkeypatch.setenv``) are
seen by the tasks, which run in the test's process.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

#: The bundle Airflow's default configuration serves the dags folder as.
BUNDLE_NAME = "dags-folder"


def register_dag(dag: Any) -> None:
    """
    Write ``dag`` to the metadata database under the dags-folder bundle, as the DAG processor would.

    :param dag: a DAG object.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    try:  # Airflow 3.2+
        from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    except ImportError:  # Airflow 3.0 and 3.1: DagBag still in airflow.models; 3.1 has the function
        from airflow.models import dagbag as models_dagbag

        DagBag = models_dagbag.DagBag
        sync_bag_to_db = getattr(models_dagbag, "sync_bag_to_db", None)
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(collect_dags=False)
    # The DAG processor sets this while parsing a file; a DAG built in a test has none.
    dag.relative_fileloc = dag.relative_fileloc or dag.fileloc
    bag.bag_dag(dag)
    if sync_bag_to_db is not None:
        sync_bag_to_db(bag, BUNDLE_NAME, None)
    else:
        bag.sync_to_db(BUNDLE_NAME, None)


def run_dag(dag: Any, *, logical_date: datetime) -> Any:
    """
    Register ``dag`` and run it once with ``dag.test()``.

    :param dag: a DAG object built in the test.
    :param logical_date: the run's logical date; the timetable infers the data interval from it.
    :return: the finished DagRun (``state``, ``data_interval_start``, ``get_task_instances()``...).
    """
    register_dag(dag)
    return dag.test(logical_date=logical_date)


def task_states(dag_run: Any) -> dict[str, str]:
    """``{task_id: state}`` of a finished run."""
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def xcom_return_value(dag_run: Any, task_id: str) -> Any:
    """
    The ``return_value`` XCom a task of the run pushed, deserialized.

    :param dag_run: a run returned by :func:`run_dag`.
    :param task_id: the task.
    """
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, key="return_value")
            .one()
        )
        return XComModel.deserialize_value(row)
