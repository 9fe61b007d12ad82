"""
The assets the extract operators update, and the ``bsg://`` URI scheme Airflow checks them with.

Each extract operator without ``outlets`` updates its resource's default asset for its connection:
``bsg://<conn_id>/campaigns`` or ``bsg://<conn_id>/messages``, named as its URI, the same on every
run. A downstream DAG schedules on it with ``schedule=[campaigns_asset()]``. On success the
operator attaches :func:`event_extra` to the event of every asset in its ``outlets``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import Asset

if TYPE_CHECKING:
    from urllib.parse import SplitResult

#: The URI scheme of the provider's assets, registered in ``get_provider_info``'s ``asset-uris``.
SCHEME = "bsg"
#: The resources that have a default asset (the path of its URI).
RESOURCES = ("campaigns", "messages")
#: Characters Airflow allows in a connection id, all of them safe in a URI's host part.
_CONN_ID = re.compile(r"^[\w.~-]+$")


def bsg_asset(resource: str, bsg_conn_id: str = "bsg_default") -> Asset:
    """
    The default asset of one resource read through one connection: ``bsg://<conn_id>/<resource>``.

    :param resource: ``campaigns`` or ``messages``.
    :param bsg_conn_id: the ``bsg`` connection the extract uses.
    :raises ValueError: for another resource, or a connection id that cannot be part of a URI.
    """
    if resource not in RESOURCES:
        raise ValueError(f"resource must be one of {', '.join(RESOURCES)}, got {resource!r}.")
    if not isinstance(bsg_conn_id, str) or not _CONN_ID.match(bsg_conn_id):
        raise ValueError(
            f"bsg_conn_id {bsg_conn_id!r} cannot name a default asset (letters, digits, '_', '-', '.' "
            "and '~' only); pass outlets=[Asset(...)] instead."
        )
    uri = f"{SCHEME}://{bsg_conn_id}/{resource}"
    # Name and URI equal, so Asset("bsg://bsg_default/campaigns") is the same asset.
    return Asset(name=uri, uri=uri)


def campaigns_asset(bsg_conn_id: str = "bsg_default") -> Asset:
    """
    The asset ``BsgExtractCampaignsOperator`` updates when given no ``outlets``.

    :param bsg_conn_id: the operator's ``bsg_conn_id``.
    """
    return bsg_asset("campaigns", bsg_conn_id)


def messages_asset(bsg_conn_id: str = "bsg_default") -> Asset:
    """
    The asset ``BsgExtractMessagesOperator`` updates when given no ``outlets``.

    :param bsg_conn_id: the operator's ``bsg_conn_id``.
    """
    return bsg_asset("messages", bsg_conn_id)


def event_extra(summary: dict[str, Any]) -> dict[str, Any]:
    """
    The ``extra`` of the asset event an extraction emits, from its XCom summary.

    :param summary: the operator's summary (``path``, ``records``, ``interval_start``...).
    """
    return {
        "path": summary["path"],
        "records": summary["records"],
        "data_interval_start": summary["interval_start"],
        "data_interval_end": summary["interval_end"],
        "format": summary["format"],
    }


def normalize_bsg_uri(parts: SplitResult) -> SplitResult:
    """
    Airflow's normalizer of ``bsg://`` asset URIs: a connection id as host, a path.

    :param parts: the URI, already lower-cased in its scheme and stripped of a trailing slash.
    :raises ValueError: when the URI names no connection.
    """
    if not parts.netloc:
        raise ValueError(
            f"A bsg:// asset URI names the connection as its host, e.g. bsg://bsg_default/campaigns; "
            f"got {parts.geturl()!r}."
        )
    return parts
