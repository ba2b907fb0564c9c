"""Who may use a studio: a token for one that other machines can reach, the Host header for one on
loopback (DNS rebinding), and a CSRF token on every form. The token never reaches a log line.

- Token: `Authorization: Bearer T`, or a cookie the studio sets once a browser opened `/?token=T`
  (an HMAC of the token, not the token; the studio then redirects to the same page without it, so
  it leaves the address bar).
- CSRF: a random cookie per browser (SameSite=Strict, HttpOnly) that every form repeats in a hidden
  field; a POST whose field differs, or whose Origin is another site, is refused with 403.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOKEN_COOKIE = "novelcraft_studio_token"
CSRF_COOKIE = "novelcraft_studio_csrf"
CSRF_FIELD = "csrf"
_TOKEN_IN_TEXT = re.compile(r"(token=)[^&\s\"']+", re.I)
# A query's key=value pairs: a key is the token's however it is spelled ("tok%65n", "to+ken" is not).
_QUERY_PAIR = re.compile(r"([?&;])([^=&;\s\"'#]+)=([^&;\s\"'#]*)")


def hide_tokens(text: str) -> str:
    """`text` with the value of every `token=` written as (hidden), the key percent-encoded or not."""
    text = _QUERY_PAIR.sub(
        lambda m: f"{m[1]}{m[2]}=(hidden)" if unquote_plus(m[2]).lower() == "token" else m[0], text
    )
    return _TOKEN_IN_TEXT.sub(r"\1(hidden)", text)


def _cookies(scope: Scope) -> dict[str, str]:
    raw = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"cookie"), "")
    jar = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed cookie header is no cookie
        return {}
    return {k: m.value for k, m in jar.items()}


def _header(scope: Scope, name: bytes) -> str | None:
    return next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == name), None)


def host_of(host_header: str) -> str:
    """The host name of a Host header, without the port ("[::1]:8765" -> "[::1]")."""
    if host_header.startswith("["):
        return host_header.split("]", 1)[0] + "]"
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class HostCheck:
    """Answer only requests addressed to this studio's own names (None: any name)."""

    def __init__(self, app: ASGIApp, allowed: set[str] | None) -> None:
        self.app = app
        self.allowed = {h.lower() for h in allowed} if allowed is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.allowed is not None:
            host = host_of(_header(scope, b"host") or "").lower()
            if host not in self.allowed:
                await PlainTextResponse("400: unknown host name for this studio", 400)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class TokenGate:
    """Every request carries the studio's token, or gets 401."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    def _cookie_value(self) -> str:
        # A value derived from the token, so the browser's cookie store never holds the token itself.
        return hmac.new(self.token.encode(), b"novelcraft studio session", "sha256").hexdigest()

    def _matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.token is None:
            await self.app(scope, receive, send)
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if self._matches(query.get("token")):
            # Trade the token in the address for a cookie, and drop it from the address bar and history.
            rest = urlencode({k: v for k, v in query.items() if k != "token"})
            response = RedirectResponse(scope["path"] + (f"?{rest}" if rest else ""), status_code=303)
            response.set_cookie(TOKEN_COOKIE, self._cookie_value(), httponly=True, samesite="strict")
            await response(scope, receive, send)
            return
        auth = _header(scope, b"authorization") or ""
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        cookie = _cookies(scope).get(TOKEN_COOKIE)
        if self._matches(bearer) or (cookie and hmac.compare_digest(cookie, self._cookie_value())):
            await self.app(scope, receive, send)
            return
        await PlainTextResponse(
            "401: this studio needs its token; open it once as http://HOST:PORT/?token=YOUR_TOKEN",
            401,
            headers={"WWW-Authenticate": "Bearer"},
        )(scope, receive, send)


class CsrfCookie:
    """Give every browser a CSRF secret (a cookie) and put it in the request state for the forms."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        value = _cookies(scope).get(CSRF_COOKIE)
        fresh = not value
        if fresh:
            value = secrets.token_urlsafe(32)
        scope.setdefault("state", {})["csrf"] = value

        async def send_with_cookie(message: Message) -> None:
            if fresh and message["type"] == "http.response.start":
                cookie = f"{CSRF_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict"
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def csrf_problem(request: Request, form: FormData) -> str | None:
    """Why a form post is refused, or None when it is this studio's own form."""
    origin = request.headers.get("origin")
    host = (request.headers.get("host") or "").lower()
    if origin and origin != "null" and urlsplit(origin).netloc.lower() != host:
        return "the form came from another site"
    given = form.get(CSRF_FIELD)
    expected = request.cookies.get(CSRF_COOKIE)
    if not isinstance(given, str) or not expected or not hmac.compare_digest(given, expected):
        return "the form's CSRF token is missing or stale; reload the page and try again"
    return None


Handler = Callable[[Request, FormData], Awaitable[Response]]


def form_post(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A POST endpoint whose form is read once and checked for its CSRF token before the handler runs."""

    async def endpoint(request: Request) -> Response:
        form = await request.form()
        problem = csrf_problem(request, form)
        if problem:
            return PlainTextResponse(f"403: {problem}", 403)
        return await handler(request, form)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


class RedactTokens(logging.Filter):
    """Access log lines carry the query string; `?token=...` is written as `?token=(hidden)`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(hide_tokens(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = hide_tokens(record.msg)
        return True
