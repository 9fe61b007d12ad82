"""JWT-shaped bearer tokens signed with HS256 and a per-simulator secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import threading
import time

_HEADER = {"typ": "JWT", "alg": "HS256"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenAuthority:
    """Issues and checks tokens. Expiry follows real time so a client can trust ``exp``.

    :param ttl: token lifetime in seconds.
    :param user_id: the ``id`` claim.
    """

    def __init__(self, ttl: float, user_id: int = 208) -> None:
        if ttl <= 0:
            raise ValueError("token_ttl must be positive")
        self.ttl = ttl
        self.user_id = user_id
        self._secret = secrets.token_bytes(32)
        self._lock = threading.Lock()
        # jti -> (serial, precise expiry); the serial makes "revoke all issued so far" one integer.
        self._issued: dict[str, tuple[int, float]] = {}
        self._serial = 0
        self._revoked_up_to = 0

    def issue(self) -> str:
        """A new signed token."""
        issued_at = time.time()
        expires = issued_at + self.ttl
        with self._lock:
            self._serial += 1
            jti = f"{self._serial:x}{secrets.token_hex(8)}"
            self._issued[jti] = (self._serial, expires)
        # exp is floored so a client trusting it never uses a token the server already rejects.
        payload = {
            "iat": math.floor(issued_at),
            "exp": math.floor(expires),
            "roles": [],
            "id": self.user_id,
            "jti": jti,
        }
        signing_input = _b64(json.dumps(_HEADER).encode()) + "." + _b64(json.dumps(payload).encode())
        return signing_input + "." + _b64(self._sign(signing_input))

    def _sign(self, signing_input: str) -> bytes:
        return hmac.new(self._secret, signing_input.encode("ascii"), hashlib.sha256).digest()

    def check(self, token: str) -> str | None:
        """Why a token is not accepted, or None when it is valid now.

        :param token: the bearer token.
        """
        parts = token.split(".")
        if len(parts) != 3:
            return "Invalid JWT Token"
        try:
            signature = _unb64(parts[2])
            payload = json.loads(_unb64(parts[1]))
            expected = self._sign(parts[0] + "." + parts[1])
        except (ValueError, UnicodeError):
            return "Invalid JWT Token"
        if not hmac.compare_digest(signature, expected) or not isinstance(payload, dict):
            return "Invalid JWT Token"
        with self._lock:
            entry = self._issued.get(str(payload.get("jti")))
            revoked_up_to = self._revoked_up_to
        if entry is None:
            return "Invalid JWT Token"
        serial, expires = entry
        if time.time() >= expires:
            return "Expired JWT Token"
        if serial <= revoked_up_to:
            return "Invalid JWT Token"
        return None

    def revoke_all(self) -> None:
        """Invalidate every token issued so far."""
        with self._lock:
            self._revoked_up_to = self._serial
