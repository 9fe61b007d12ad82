"""
What differs between the API's list endpoints, declared once per resource.

Campaigns and messages are read by the same engine (windows, then pages, then run-time
checks, then spool, then an atomic file). Everything that differs between them (the
path, the ``page[limit]`` range, the filters, the fields a run-time check compares, the
timestamp and personal-data fields) is a :class:`Resource` here, and a :class:`ListQuery`
says which filters one extraction sends. Pure: no Airflow, no HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bsg_provider.errors import BsgConfigError

CAMPAIGN_TYPES = ("sms", "rcs", "whatsapp")


@dataclass(frozen=True)
class Resource:
    """
    One list endpoint of the API and how its records look.

    :param name: plural, for logs and metrics (``campaigns``, ``messages``).
    :param noun: singular, for messages about one record.
    :param path: the list endpoint's path.
    :param endpoint: the short name requests carry in logs, metrics and errors.
    :param min_page_size: the smallest ``page[limit]`` the API accepts.
    :param max_page_size: the largest ``page[limit]`` the API accepts.
    :param timestamp_fields: fields holding a timestamp in the API timezone.
    :param evidence_fields: fields an assumption error shows about a record.
    :param personal_fields: fields holding personal data.
    """

    name: str
    noun: str
    path: str
    endpoint: str
    min_page_size: int
    max_page_size: int
    timestamp_fields: tuple[str, ...]
    evidence_fields: tuple[str, ...]
    personal_fields: tuple[str, ...] = ()

    def check_page_size(self, page_size: Any) -> int:
        """Return ``page_size`` if this endpoint accepts it, else raise :class:`BsgConfigError`."""
        lo, hi = self.min_page_size, self.max_page_size
        if isinstance(page_size, bool) or not isinstance(page_size, int):
            raise BsgConfigError(f"page_size must be an integer from {lo} to {hi}, got {page_size!r}.")
        if not lo <= page_size <= hi:
            raise BsgConfigError(
                f"page_size must be from {lo} to {hi} (the API's page[limit] range), got {page_size}."
            )
        return page_size


CAMPAIGNS = Resource(
    name="campaigns",
    noun="campaign",
    path="/api/campaigns",
    endpoint="list",
    min_page_size=30,
    max_page_size=500,
    timestamp_fields=("start_at", "real_start_at", "finished_at", "created_at"),
    evidence_fields=("created_at", "start_at", "real_start_at", "finished_at"),
)

#: The vendor documents no window rules for messages: the DESIGN assumes the campaigns' ones
#: (filter[from]/filter[to] on created_at, the same span limit), and so does this engine by
#: planning both with :mod:`bsg_provider.extraction.windows`; the probe checks it (docs/api-assumptions.md).
MESSAGES = Resource(
    name="messages",
    noun="message",
    path="/api/messages",
    endpoint="messages",
    min_page_size=15,
    max_page_size=500,
    timestamp_fields=("created_at", "sent_at", "delivered_at"),
    evidence_fields=("created_at", "sent_at", "delivered_at", "campaign_id"),
    personal_fields=("phone", "text"),
)


@dataclass(frozen=True)
class ListQuery:
    """
    The filters of one extraction pass, and what every record it returns must then carry.

    :param resource: the endpoint.
    :param filters: extra query parameters, such as ``filter[type]``.
    :param expect: ``(field, value)`` pairs each returned record must match when it has the
        field; a mismatch means the API ignored a filter (a run-time check).
    :param label: what the pass extracts, for logs and metrics (``sms``, ``messages``).
    """

    resource: Resource
    filters: tuple[tuple[str, str], ...] = ()
    expect: tuple[tuple[str, Any], ...] = ()
    label: str = ""

    def describe_filters(self) -> str:
        """The filters as ``name=value`` text, for messages."""
        return " ".join(f"{name}={value}" for name, value in self.filters)


def check_campaign_type(campaign_type: Any) -> str:
    """Return ``campaign_type`` if the API knows it, else raise :class:`BsgConfigError`."""
    if campaign_type not in CAMPAIGN_TYPES:
        raise BsgConfigError(
            f"campaign_type must be one of {', '.join(CAMPAIGN_TYPES)}, got {campaign_type!r}."
        )
    return str(campaign_type)


def campaigns_query(campaign_type: str = "sms") -> ListQuery:
    """
    The campaigns of one type: ``filter[type]``, and each record's ``message_type`` must match it.

    :param campaign_type: ``sms``, ``rcs`` or ``whatsapp``.
    :raises BsgConfigError: for an unknown type.
    """
    check_campaign_type(campaign_type)
    return ListQuery(
        CAMPAIGNS,
        filters=(("filter[type]", campaign_type),),
        expect=(("message_type", campaign_type),),
        label=campaign_type,
    )


def messages_query(campaign_id: int | None = None) -> ListQuery:
    """
    Every message, or one campaign's: ``filter[campaign_id]``, and each record's ``campaign_id``
    must match it.

    :param campaign_id: a checked campaign id, or None for all campaigns.
    """
    if campaign_id is None:
        return ListQuery(MESSAGES, label="messages")
    return ListQuery(
        MESSAGES,
        filters=(("filter[campaign_id]", str(campaign_id)),),
        expect=(("campaign_id", campaign_id),),
        label="messages",
    )
