"""Exceptions the provider raises; every one carries a message a person can act on."""

from __future__ import annotations

from typing import Any


class BsgError(Exception):
    """Base class of every error the BSG provider raises."""


class BsgConfigError(BsgError, ValueError):
    """A connection or an argument is invalid; raised before any request."""


class BsgApiError(BsgError):
    """
    The BSG One API answered with an error, or could not be reached.

    :param message: what went wrong, for a person.
    :param status: HTTP status code, or None when no answer arrived.
    :param api_message: the ``message`` field of the API's answer, if any.
    :param errors: the API's field errors (``{field: [messages]}``), if any.
    :param endpoint: which endpoint was called (``login``, ``list``, ``get``...).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        api_message: str | None = None,
        errors: dict[str, list[str]] | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.api_message = api_message
        self.errors = errors or {}
        self.endpoint = endpoint


class BsgAuthError(BsgApiError):
    """401/403: the API key is wrong or the token was refused."""


class BsgNotFoundError(BsgApiError):
    """404: the campaign (or endpoint) does not exist."""


class BsgValidationError(BsgApiError):
    """422: the API refused the request's parameters."""


class BsgRetryableError(BsgApiError):
    """
    A failure that may pass if the same request is sent again.

    :param retry_after: seconds the server asked us to wait, if it said.
    :param reason: a short label for logs and metrics (``429``, ``503``, ``timeout``...).
    """

    def __init__(self, message: str, *, retry_after: float | None = None, reason: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.reason = reason


class BsgRateLimitError(BsgRetryableError):
    """429: too many requests."""


class BsgServerError(BsgRetryableError):
    """408 or a 5xx the API may recover from."""


class BsgTransportError(BsgRetryableError):
    """No answer: connection refused or reset, or a timeout."""


class BsgMalformedResponseError(BsgRetryableError):
    """An answer that is not the JSON the API documents (an HTML page, truncated JSON, a wrong shape)."""


class BsgPagingError(BsgError):
    """The API's paging did not settle (its total kept changing, or pages did not add up)."""


class BsgAssumptionError(BsgError):
    """
    The API answered something an assumption of docs/api-assumptions.md rules out.

    Not retried: the same request would get the same answer. Nothing is written.

    :param message: which assumption, the evidence and what to do.
    :param assumption: a short name of the assumption (``filter_field``, ``filter_type``...).
    """

    def __init__(self, message: str, *, assumption: str) -> None:
        super().__init__(message)
        self.assumption = assumption
