"""Access control of the web console: an access token and a CSRF token.

The console prints a URL with a random access token when it starts (as
Jupyter does). Opening it stores the token in an HttpOnly, SameSite=Strict
cookie; every request must carry it, in that cookie or as
`Authorization: Bearer TOKEN`. State changes are POST only and also need the
CSRF token that the pages embed, sent back in the `X-CSRF-Token` header, and
an Origin header, when the browser sends one, naming this server.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie

COOKIE = "unitmgr_token"


def _same(sent: str, expected: str) -> bool:
    """Compare in constant time; any text a client sends, even non-ASCII, is just unequal."""
    if not sent:
        return False
    return hmac.compare_digest(sent.encode("utf-8", "surrogateescape"), expected.encode())


@dataclass
class Tokens:
    access: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    def access_ok(self, headers) -> bool:
        """Check the access token in the cookie or the Authorization header."""
        candidate = ""
        authorization = headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            candidate = authorization[len("Bearer "):].strip()
        else:
            cookie = SimpleCookie()
            try:
                cookie.load(headers.get("Cookie", ""))
            except CookieError:
                return False
            if COOKIE in cookie:
                candidate = cookie[COOKIE].value
        return _same(candidate, self.access)

    def query_token_ok(self, value: str) -> bool:
        return _same(value, self.access)

    def csrf_ok(self, headers, host: str) -> bool:
        """Check the CSRF header and, when present, that Origin is this server."""
        sent = headers.get("X-CSRF-Token", "")
        if not _same(sent, self.csrf):
            return False
        origin = headers.get("Origin")
        if origin and origin not in (f"http://{host}", f"https://{host}"):
            return False
        return True

    def cookie_header(self) -> str:
        return f"{COOKIE}={self.access}; HttpOnly; SameSite=Strict; Path=/"
