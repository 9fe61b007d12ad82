"""
The ``bsg`` connection's form: its extra fields and how the UI shows the standard ones.

One definition for both readers: the provider info (Airflow 3.1+ builds the form from it) and
:class:`~bsg_provider.hooks.bsg.BsgHook` (Airflow 3.0's form, through wtforms). No Airflow import,
so that reading the provider info stays cheap.
"""

from __future__ import annotations

from typing import Any

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
        "description": "IANA timezone of the BSG account; timestamps and filters use it. Empty: UTC.",
        # No default: a saved "UTC" (under 5 characters) makes Airflow's secrets masker warn in every
        # task's log, as it reads every extra; left empty, the hook reads UTC.
        "schema": {"type": ["string", "null"]},
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
