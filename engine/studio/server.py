"""Serving the studio with uvicorn on a socket the studio opens itself, so a refusal (the port is
taken, another studio serves the database, a non-loopback host without a token) is one line and exit
code 2 before anything listens."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from novelcraft.core.errors import InputError
from novelcraft.studio.app import create_app
from novelcraft.studio.config import StudioConfig, check_bind, is_loopback
from novelcraft.studio.security import RedactTokens
from novelcraft.studio.workers import Supervisor


def listen(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port); IPv6 hosts get an IPv6 socket."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[
            0
        ]
        sock = socket.socket(family, kind, proto)
    except (OSError, IndexError) as exc:
        raise InputError(f"--host {host}: {exc}") from None
    try:
        # A studio restarted at once finds its port in TIME_WAIT; that is not another server.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def url_of(host: str, port: int) -> str:
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve(config: StudioConfig, announce: Callable[[str], None] = print) -> None:
    """Serve until Ctrl-C. Workers keep drafting after the studio stops; the next studio adopts them."""
    import uvicorn

    check_bind(config.host, config.token)
    supervisor = Supervisor(config)
    supervisor.open()  # the database's studio lock, before anything listens
    try:
        sock = listen(config.host, config.port)
        port = sock.getsockname()[1]
        app = create_app(config, supervisor)
        server_config = uvicorn.Config(
            app, log_level="info", access_log=True, lifespan="on", timeout_graceful_shutdown=3
        )
        # After uvicorn.Config, which sets up uvicorn's loggers: the token never reaches a log line.
        for name in ("uvicorn.access", "uvicorn.error"):
            logging.getLogger(name).addFilter(RedactTokens())
        url = url_of(config.host, port)
        announce(f"novelcraft studio on {url} (database {config.db}; at most {config.max_workers} workers)")
        if config.token:
            announce(f"every request needs the token: open {url}?token=YOUR_TOKEN once in the browser")
        if not is_loopback(config.host):
            announce("listening beyond this machine: anyone with the token can draft, read and export")
        uvicorn.Server(server_config).run(sockets=[sock])
    finally:
        running = supervisor.running_count()
        supervisor.close()
    if running:
        announce(f"studio stopped; {running} worker(s) go on drafting, and the next studio picks them up")
