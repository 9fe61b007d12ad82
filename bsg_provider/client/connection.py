"""The ``bsg`` connection's fields, read and checked once, with messages that say how to fix them."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from bsg_provider.client.api import is_plain_http, normalize_base_url
from bsg_provider.client.redaction import Redacted, redacted
from bsg_provider.errors import BsgConfigError

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 5
DEFAULT_RETRY_MAX_WAIT = 60.0
#: List requests in flight at once while paging: enough to hide most of a round trip
#: (about 4x a sequential read at 50 ms), few enough for an API whose limits are undocumented.
DEFAULT_MAX_CONCURRENCY = 8
#: The most the connection or the operator may ask for.
MAX_CONCURRENCY_LIMIT = 32
KNOWN_EXTRAS = (
    "api_timezone",
    "timeout",
    "max_retries",
    "retry_max_wait",
    "max_requests_per_second",
    "max_concurrency",
)

_warned_plain_http: set[str] = set()


def connection_fields(conn: Any) -> dict[str, Any]:
    """
    The fields of an Airflow ``Connection`` that :meth:`BsgConnectionSettings.from_fields` reads.

    Callers pass the connection straight in, so it never sits in a local variable: Airflow's
    ``Connection`` repr shows the password, and tracebacks rendered with locals would too.

    :param conn: the Airflow connection.
    """
    return {"host": conn.host, "port": conn.port, "password": redacted(conn.password), "extra": conn.extra}


def warn_if_plain_http(log: logging.Logger, conn_id: str, base_url: str) -> None:
    """Warn, once per base URL and process, that credentials would travel unencrypted."""
    if is_plain_http(base_url) and base_url not in _warned_plain_http:
        _warned_plain_http.add(base_url)
        log.warning(
            "Connection %r uses plain http (%s): the API key and token travel unencrypted. "
            "Use https unless this is a local simulator.",
            conn_id,
            base_url,
        )


def api_zone(tz: str) -> ZoneInfo:
    """The API timezone by IANA name; raises BsgConfigError naming the fix when it is unknown."""
    try:
        return ZoneInfo(tz)
    except (ValueError, TypeError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise BsgConfigError(
            f"Unknown API timezone {tz!r}: use an IANA name such as 'UTC' or 'Europe/Berlin'."
        ) from exc


@dataclass(frozen=True)
class BsgConnectionSettings:
    """
    What a ``bsg`` connection says, validated.

    :param base_url: the API's base URL, with scheme, without trailing slash.
    :param api_key: the API key (kept out of ``repr``).
    :param api_timezone: IANA timezone of the account's timestamps and filters.
    :param timeout: connect and read timeout of each request, in seconds.
    :param max_retries: retries of a request that failed transiently.
    :param retry_max_wait: upper bound of one wait between retries, in seconds.
    :param max_requests_per_second: client-side rate limit, or None for none.
    :param max_concurrency: list requests in flight at most while paging (1 = one at a time).
    """

    base_url: str
    api_key: str = field(repr=False)
    api_timezone: str = "UTC"
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    retry_max_wait: float = DEFAULT_RETRY_MAX_WAIT
    max_requests_per_second: float | None = None
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY

    @classmethod
    def from_fields(
        cls,
        conn_id: str,
        *,
        host: str | None,
        password: str | None,
        extra: Mapping[str, Any] | str | None,
        port: int | None = None,
    ) -> BsgConnectionSettings:
        """
        Build settings from a connection's fields.

        :param conn_id: the connection id, for messages.
        :param host: the connection's host (base URL).
        :param port: the connection's port, if the host names none.
        :param password: the connection's password (API key).
        :param extra: the connection's extras: a dict, or the JSON text Airflow stores.
        :raises BsgConfigError: naming the field and the fix.
        """
        where = f"Connection {conn_id!r}"
        if not password or not str(password).strip():
            raise BsgConfigError(
                f"{where} has no API key. Put the BSG API key (live_... or test_...) in the connection's "
                "password field."
            )
        try:
            base_url = normalize_base_url(host, port)
        except BsgConfigError as exc:
            raise BsgConfigError(f"{where}: {exc}") from None
        extras = _plain_extras(extra or {}, where)
        unknown = sorted(set(extras) - set(KNOWN_EXTRAS))
        if unknown:
            raise BsgConfigError(
                f"{where} has unknown extra field(s) {', '.join(unknown)}; the bsg connection knows "
                f"{', '.join(KNOWN_EXTRAS)}. Remove or rename them."
            )
        tz = extras.get("api_timezone") or "UTC"
        if not isinstance(tz, str):
            raise BsgConfigError(
                f"{where}: extra api_timezone must be an IANA name such as 'UTC', got {tz!r}."
            )
        try:
            api_zone(tz)
        except ValueError as exc:
            raise BsgConfigError(f"{where}: {exc}") from None
        rate = extras.get("max_requests_per_second")
        return cls(
            base_url=base_url,
            api_key=Redacted(str(password).strip()),
            api_timezone=tz,
            timeout=_number(extras, "timeout", DEFAULT_TIMEOUT, where, minimum=0.0, exclusive=True),
            max_retries=int(
                _number(extras, "max_retries", DEFAULT_MAX_RETRIES, where, minimum=0, integer=True)
            ),
            retry_max_wait=_number(extras, "retry_max_wait", DEFAULT_RETRY_MAX_WAIT, where, minimum=0.0),
            max_requests_per_second=(
                None
                if rate in (None, "")
                else _number(extras, "max_requests_per_second", None, where, minimum=0.0, exclusive=True)
            ),
            max_concurrency=_concurrency(extras, where),
        )


def check_max_concurrency(value: int | None, where: str = "max_concurrency") -> int | None:
    """
    An operator's or hook's ``max_concurrency`` argument, checked: None (the connection's) or 1..32.

    :param value: the argument.
    :param where: what to name in the message.
    :raises BsgConfigError: when it is not a whole number in range.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY_LIMIT:
        raise BsgConfigError(
            f"{where} must be a whole number from 1 to {MAX_CONCURRENCY_LIMIT} (requests in flight "
            f"while paging; 1 reads one page at a time), or None for the connection's; got {value!r}."
        )
    return value


def _concurrency(extras: Mapping[str, Any], where: str) -> int:
    value = int(_number(extras, "max_concurrency", DEFAULT_MAX_CONCURRENCY, where, minimum=1, integer=True))
    if value > MAX_CONCURRENCY_LIMIT:
        raise BsgConfigError(
            f"{where}: extra max_concurrency must be at most {MAX_CONCURRENCY_LIMIT}, got {value}; "
            "more requests in flight mostly earn 429s from the API."
        )
    return value


def _plain_extras(extra: Mapping[str, Any] | str, where: str) -> dict[str, Any]:
    """Accept both ``timeout`` and the UI's older ``extra__bsg__timeout`` spelling."""
    if isinstance(extra, str):
        # Read here, not through extra_dejson: Airflow turns invalid JSON into {} with only a log line.
        try:
            extra = json.loads(extra) if extra.strip() else {}
        except ValueError as exc:
            raise BsgConfigError(
                f"{where}: extra is not valid JSON ({exc}). Write it as a JSON object, "
                'for example {"api_timezone": "UTC", "timeout": 30}.'
            ) from None
    if not isinstance(extra, Mapping):
        raise BsgConfigError(f"{where}: extra must be a JSON object, got {type(extra).__name__}.")
    plain: dict[str, Any] = {}
    for key, value in extra.items():
        name = key.removeprefix("extra__bsg__")
        if value is None or value == "":
            continue
        plain[name] = value
    return plain


def _number(
    extras: Mapping[str, Any],
    name: str,
    default: float | None,
    where: str,
    *,
    minimum: float,
    exclusive: bool = False,
    integer: bool = False,
) -> float:
    raw = extras.get(name, default)
    kind = "a whole number" if integer else "a number"
    bound = f"greater than {minimum:g}" if exclusive else f"at least {minimum:g}"
    hint = f"{where}: extra {name} must be {kind} {bound}, got {raw!r}."
    if isinstance(raw, bool):
        raise BsgConfigError(hint)
    try:
        value = float(raw) if not isinstance(raw, (int, float)) else raw
    except (TypeError, ValueError):
        raise BsgConfigError(hint) from None
    if not math.isfinite(value) or (integer and value != int(value)):
        raise BsgConfigError(hint)
    if value < minimum or (exclusive and value == minimum):
        raise BsgConfigError(hint)
    return float(value)
