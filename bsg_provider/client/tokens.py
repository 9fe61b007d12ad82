"""Reading a JWT's expiry, so a client can renew the token before the API refuses it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import jwt

#: Renew this long before ``exp`` so a request in flight never carries a token that dies on the way.
RENEW_MARGIN = timedelta(seconds=30)


def token_expiry(token: str) -> datetime | None:
    """
    The ``exp`` claim of a JWT as an aware UTC datetime, or None when it has none.

    The signature is not checked (PyJWT's unverified decode): the API checks it; we only want
    to know when to renew.

    :param token: a JWT (``header.payload.signature``).
    """
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return None
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return None
    try:
        return datetime.fromtimestamp(exp, tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None


def needs_renewal(expiry: datetime | None, now: datetime) -> bool:
    """
    Whether a token expiring at ``expiry`` should be renewed before the next request.

    :param expiry: from :func:`token_expiry`; None means unknown, and a 401 will tell.
    :param now: the current time (aware).
    """
    return expiry is not None and now >= expiry - RENEW_MARGIN
