"""Provider metadata that Airflow reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from bsg_provider import __version__
from bsg_provider.hooks.connection_form import CONNECTION_FIELDS, CONNECTION_UI_BEHAVIOUR


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
