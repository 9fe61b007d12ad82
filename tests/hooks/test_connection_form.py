"""
The ``bsg`` connection form as the UI gets it, on Airflow 3.0 and 3.3 alike.

The UI builds the form from the api-server's hook metadata (``HookMetaService``). Airflow 3.1+
takes the extras from provider info's ``conn-fields``; 3.0 ignores those and takes them from
``BsgHook.get_connection_form_widgets()`` (wtforms fields). Either way the form must show every
extra, and what it saves must be what the hook reads.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bsg_provider.client.connection import KNOWN_EXTRAS
from bsg_provider.hooks.bsg import BsgHook

#: What a user types into the form's extra fields; numbers arrive as the text typed.
TYPED = {
    "api_timezone": "Europe/Berlin",
    "timeout": "12.5",
    "max_retries": 2,
    "retry_max_wait": "7",
    "max_requests_per_second": "4",
    "max_concurrency": 3,
}


def bsg_form() -> Any:
    """The hook metadata the UI renders the ``bsg`` connection form from."""
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    (meta,) = [meta for meta in HookMetaService.hook_meta_data() if meta.connection_type == "bsg"]
    return meta


def _form_from_wtforms() -> bool:
    """Whether this Airflow builds the extras from the hook's wtforms widgets (3.0), not conn-fields."""
    from airflow import __version__
    from packaging.version import Version

    return Version(__version__) < Version("3.1")


def test_the_form_shows_every_extra_with_its_label_and_default():
    form = bsg_form()
    assert form.hook_name == "BSG One API"
    fields = form.extra_fields or {}
    assert set(fields) == set(KNOWN_EXTRAS)
    titles = {name: field["schema"].get("title") for name, field in fields.items()}
    assert titles["timeout"] == "Timeout (seconds)"
    assert titles["max_retries"] == "Max retries"
    defaults = {name: field.get("value") for name, field in fields.items()}
    if _form_from_wtforms():
        # Airflow 3.0: numbers are typed as text, so those fields start empty (a pre-filled "30"
        # would be saved as a short text, which Airflow's masker warns about in every task).
        assert defaults["timeout"] in (None, "")
        assert defaults["retry_max_wait"] in (None, "")
    else:
        # Airflow 3.1+: the defaults as the hook's own, saved as numbers.
        assert str(defaults["timeout"]) in ("30", "30.0")
    assert str(defaults["max_retries"]) == "5"
    # No pre-filled timezone: a saved "UTC" would make Airflow's masker warn in every task (empty is UTC).
    assert defaults["api_timezone"] in (None, "")
    assert defaults["max_requests_per_second"] is None
    assert str(defaults["max_concurrency"]) == "8"


def test_the_form_relabels_host_and_password_and_hides_the_unused_fields():
    standard = bsg_form().standard_fields
    assert standard.host.title == "Base URL"
    assert standard.password.title == "API key"
    for name in ("login", "url_schema", "port"):
        assert getattr(standard, name).hidden is True, name


@pytest.mark.parametrize("prefix", ["", "extra__bsg__"], ids=["plain", "prefixed"])
def test_what_the_form_saves_is_what_the_hook_reads(prefix, monkeypatch):
    # Every extra the form offers, filled in, saved into the connection's extra JSON.
    offered = set(bsg_form().extra_fields or {})
    assert offered == set(TYPED)
    extra = {f"{prefix}{name}": TYPED[name] for name in offered}
    monkeypatch.setenv(
        "AIRFLOW_CONN_BSG_FORM",
        json.dumps(
            {
                "conn_type": "bsg",
                "host": "http://127.0.0.1:9",
                "password": "test_form_key_1234",
                "extra": extra,
            }
        ),
    )
    settings = BsgHook("bsg_form").settings
    assert (
        settings.api_timezone,
        settings.timeout,
        settings.max_retries,
        settings.retry_max_wait,
        settings.max_requests_per_second,
        settings.max_concurrency,
    ) == ("Europe/Berlin", 12.5, 2, 7.0, 4.0, 3)


def _short_secret_flags() -> list[Any]:
    """The masker classes whose once-per-process "too short" warning flag the test resets."""
    classes = []
    for module in (
        "airflow.sdk._shared.secrets_masker.secrets_masker",  # Airflow 3.3
        "airflow._shared.secrets_masker.secrets_masker",
        "airflow.sdk.execution_time.secrets_masker",  # Airflow 3.0
    ):
        try:
            classes.append(__import__(module, fromlist=["SecretsMasker"]).SecretsMasker)
        except ImportError:
            continue
    assert classes, "no SecretsMasker found"
    return classes


@pytest.mark.parametrize(
    ("extra", "warns"),
    [
        # What the form saves now: no timezone (UTC), numbers as numbers; a zone named in full.
        ({"timeout": 30, "max_retries": 2, "retry_max_wait": 0.02}, False),
        ({"api_timezone": "Europe/Berlin", "timeout": 30, "max_retries": 2, "retry_max_wait": 0.02}, False),
        # The control: a short text extra is what Airflow's masker warns about.
        ({"api_timezone": "UTC", "timeout": "30", "max_retries": 2, "retry_max_wait": 0.02}, True),
    ],
    ids=["default", "berlin", "short-text-control"],
)
def test_extras_neither_warn_nor_get_masked(simulator, monkeypatch, caplog, capfd, extra, warns):
    from datetime import timedelta

    for masker in _short_secret_flags():
        monkeypatch.setattr(masker, "_has_warned_short_secret", False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_BSG_EXTRAS",
        json.dumps(
            {"conn_type": "bsg", "host": simulator.url, "password": simulator.api_key, "extra": extra}
        ),
    )
    end = simulator.now()
    with caplog.at_level("INFO"):
        records = list(BsgHook("bsg_extras").iter_campaigns(end - timedelta(days=2), end))
    assert records
    logged = "\n".join(r.getMessage() for r in caplog.records) + capfd.readouterr().out
    assert ("too short" in logged) is warns
    zone = extra.get("api_timezone", "UTC")
    assert f"of API timezone {zone}:" in logged, "the zone was masked or not logged"
    assert simulator.api_key not in logged
