from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema

from bsg_provider import __version__
from bsg_provider.get_provider_info import get_provider_info


def test_provider_info_validates_against_airflows_schema():
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_entry_point_is_registered_and_points_here():
    (ep,) = [e for e in entry_points(group="apache_airflow_provider") if e.value.startswith("bsg_provider")]
    info = ep.load()()
    assert info["package-name"] == "airflow-provider-bsg"
    assert info["versions"] == [__version__]
    (conn,) = info["connection-types"]
    assert (conn["connection-type"], conn["hook-class-name"]) == ("bsg", "bsg_provider.hooks.bsg.BsgHook")


def test_every_module_the_info_names_imports():
    import importlib

    info = get_provider_info()
    for kind in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[kind]:
            for module in entry["python-modules"]:
                importlib.import_module(module)


def _json_list(line: str) -> list | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, list) else None


def test_airflow_providers_list_shows_the_provider():
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    # Airflow 3.0 prints its own log lines to stdout too: take the line that parses as a JSON list.
    rows = next(filter(None, map(_json_list, out.splitlines())))
    assert {"package_name": "airflow-provider-bsg", "version": __version__}.items() <= next(
        r for r in rows if r["package_name"] == "airflow-provider-bsg"
    ).items()
