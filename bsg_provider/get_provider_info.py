"""Provider metadata that Airflow reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from bsg_provider import __version__

CONNECTION_UI_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["schema", "port", "login"],
    "relabeling": {"host": "Base URL", "password": "API key"},
    "placeholders": {
        "host": "https://one-api.bsg.world",
        "password": "live_... or test_...",
        "api_timezone": "UTC",
        "timeout": "30",
        "max_retries": "5",
        "retry_max_wait": "60",
        "max_requests_per_second": "",
        "max_concurrency": "8",
    },
}

CONNECTION_FIELDS: dict[str, Any] = {
    "api_timezone": {
        "label": "API timezone",
        "description": "IANA timezone of the BSG account; timestamps and filters use it.",
        "schema": {"type": ["string", "null"], "default": "UTC"},
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "description": "Connect and read timeout of every request.",
        "schema": {"type": ["number", "null"], "default": 30},
    },
    "max_retries": {
        "label": "Max retries",
        "description": "Retries of a request that failed transiently (429, 5xx, connection errors).",
        "schema": {"type": ["integer", "null"], "default": 5},
    },
    "retry_max_wait": {
        "label": "Max wait between retries (seconds)",
        "description": "Upper bound of one backoff or Retry-After wait.",
        "schema": {"type": ["number", "null"], "default": 60},
    },
    "max_requests_per_second": {
        "label": "Max requests per second",
        "description": "Optional client-side rate limit; empty for none.",
        "schema": {"type": ["number", "null"]},
    },
    "max_concurrency": {
        "label": "Max concurrent requests",
        "description": "List requests in flight at once while paging (1 to 32); 1 reads one page at a time.",
        "schema": {"type": ["integer", "null"], "default": 8, "minimum": 1, "maximum": 32},
    },
}


def get_provider_info() -> dict[str, Any]:
    """Return the provider info that ``airflow providers list`` shows."""
    return {
        "package-name": "airflow-provider-bsg",
        "name": "BSG One API",
        "description": "Extract SMS campaigns from the BSG One API and gate workflows on their status.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "BSG One API",
                "external-doc-url": "https://one-api.bsg.world",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "BSG One API", "python-modules": ["bsg_provider.hooks.bsg"]}],
        "operators": [
            {
                "integration-name": "BSG One API",
                "python-modules": ["bsg_provider.operators.campaigns", "bsg_provider.operators.messages"],
            }
        ],
        "sensors": [{"integration-name": "BSG One API", "python-modules": ["bsg_provider.sensors.campaign"]}],
        "triggers": [
            {"integration-name": "BSG One API", "python-modules": ["bsg_provider.triggers.campaign"]}
        ],
        # The extract operators' default assets, bsg://<conn_id>/<resource> (bsg_provider.assets).
        "asset-uris": [{"schemes": ["bsg"], "handler": "bsg_provider.assets.normalize_bsg_uri"}],
        "connection-types": [
            {
                "connection-type": "bsg",
                "hook-class-name": "bsg_provider.hooks.bsg.BsgHook",
                "hook-name": "BSG One API",
                "conn-fields": CONNECTION_FIELDS,
                "ui-field-behaviour": {
                    "hidden-fields": CONNECTION_UI_BEHAVIOUR["hidden_fields"],
                    "relabeling": CONNECTION_UI_BEHAVIOUR["relabeling"],
                    "placeholders": CONNECTION_UI_BEHAVIOUR["placeholders"],
                },
            }
        ],
    }
