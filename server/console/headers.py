"""Security headers on every answer the server gives: console pages, the API and its docs.

Hand-written rather than a package: it is a fixed list of headers added in one ASGI wrapper
(the packages that do this, e.g. `secure`, add a dependency for the same dozen lines).
The Content-Security-Policy allows no inline script anywhere: the console's pages and the
API docs load their scripts from this server only. ReDoc injects its styles at run time, so
the docs pages alone allow inline *styles* (never scripts).
"""

from __future__ import annotations

from server.middleware import Scope

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
DOCS_PATHS = ("/docs", "/redoc")

COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


# Built once: every answer gets one of these lists (the https ones add HSTS).
_PLAIN = [*COMMON, (b"content-security-policy", CSP.encode())]
_PLAIN_DOCS = [*COMMON, (b"content-security-policy", DOCS_CSP.encode())]
_HSTS = (b"strict-transport-security", b"max-age=31536000")
_HTTPS = [*_PLAIN, _HSTS]
_HTTPS_DOCS = [*_PLAIN_DOCS, _HSTS]


def is_https(scope: Scope) -> bool:
    """uvicorn sets the scheme from X-Forwarded-Proto when the proxy is trusted (nginx on loopback)."""
    return scope.get("scheme") == "https"


def security_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The headers an answer to this request carries (the docs pages allow inline styles;
    https adds HSTS); `server.middleware.RequestGuard` adds them to every answer."""
    path: str = scope.get("path", "")
    docs = path.startswith(DOCS_PATHS)
    if is_https(scope):
        return _HTTPS_DOCS if docs else _HTTPS
    return _PLAIN_DOCS if docs else _PLAIN
