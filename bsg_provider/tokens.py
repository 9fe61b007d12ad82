"""Reading a JWT's expiry, so a client can renew the token before the API refuses it."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

#: Renew this long before ``exp`` so a request in flight never carries a token that dies on the way.
RENEW_MARGIN = timedelta(seconds=30)


def token_expiry(token: str) -> datetime | None:
    """
    The ``exp`` claim of a JWT as an aware UTC datetime, or None when it has none.

    The signature is not checked: the API checks it; we only want to know when to renew.

    :param token: a JWT (``header.payload.signature``).
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        exp = payload["exp"]
        if isinstance(exp, bool) or not isinstance(exp, (int, float)):
            return None
        return datetime.fromtimestamp(exp, tz=timezone.utc)
    except (ValueError, KeyError, TypeError, OverflowError, OSError):
        return None


def needs_renewal(expiry: datetime | None, now: datetime) -> bool:
    """
    Whether a token expiring at ``expiry`` should be renewed before the next request.

    :param expiry: from :func:`token_expiry`; None means unknown, and a 401 will tell.
    :param now: the current time (aware).
    """
    return expiry is not None and now >= expiry - RENEW_MARGIN
