"""The studio's ASGI app: routes, templates, static files, and the guards every request passes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from novelcraft.studio.config import StudioConfig
from novelcraft.studio.evaluation import EvaluationCache
from novelcraft.studio.routes import ERROR_HANDLERS, ROUTES
from novelcraft.studio.security import CsrfCookie, HostCheck, TokenGate
from novelcraft.studio.workers import Supervisor

HERE = Path(__file__).parent
# The largest form is an outline of 50 scenes or a seed file: tens of kilobytes. Anything far larger
# is refused before it is read into memory.
MAX_BODY_BYTES = 4 * 1024 * 1024
# No inline script or style anywhere, so a story text that slipped past escaping still could not run.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


@dataclass
class Studio:
    """What every handler needs, on `request.app.state.studio`."""

    config: StudioConfig
    supervisor: Supervisor
    templates: Jinja2Templates
    evaluations: EvaluationCache


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


def templates() -> Jinja2Templates:
    # autoescape on for every template: seeds, outlines and scene texts are the author's or the
    # model's text and are always shown as text, never as markup.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["thousands"] = lambda n: f"{n:,}" if isinstance(n, int | float) else n
    env.filters["duration"] = _duration
    env.filters["when"] = _when
    return Jinja2Templates(env=env)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _when(iso: str | None) -> str:
    """An ISO time from the store as people read it: "2026-05-01 14:03:09 UTC"."""
    if not iso:
        return "–"
    return iso.replace("T", " ")[:19] + (" UTC" if iso.endswith(("+00:00", "Z")) else "")


def create_app(config: StudioConfig, supervisor: Supervisor | None = None) -> Starlette:
    """The studio for one database. Its lifespan takes the database's studio lock, adopts or re-launches
    workers, and watches them; leaving it stops the watching, never the workers."""
    supervisor = supervisor or Supervisor(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        supervisor.start_polling()
        try:
            yield
        finally:
            supervisor.close()

    app = Starlette(
        routes=[*ROUTES, Mount("/static", StaticFiles(directory=HERE / "static"), name="static")],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(HostCheck, allowed=config.allowed_hosts()),
            Middleware(TokenGate, token=config.token),
            Middleware(CsrfCookie),
        ],
        exception_handlers=ERROR_HANDLERS,
        lifespan=lifespan,
        max_body_size=MAX_BODY_BYTES,
    )
    app.state.studio = Studio(config, supervisor, templates(), EvaluationCache())
    return app
