"""What one studio server is: its database, where it listens, who may use it, and how it drafts."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from novelcraft.core.errors import InputError
from novelcraft.settings.config import Settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_WORKERS = 2
# A token guards a studio other machines can reach; a short one can be guessed over the network.
MIN_TOKEN_CHARS = 16
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
TOKEN_ENV = "NOVELCRAFT_STUDIO_TOKEN"


def is_loopback(host: str) -> bool:
    """Only this machine can reach the address (0.0.0.0 and :: are every interface, not loopback)."""
    if host.strip("[]") in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def token_from_file(path: Path, given: str | None = None) -> str:
    """The token on the first line of `path`: a file keeps it out of the process list, where `--token`
    on a command line is visible to every user of the machine."""
    if given is not None:
        raise InputError(f"--token-file {path}: give the token once, by --token, {TOKEN_ENV} or the file")
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"--token-file {path}: cannot read: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    token = lines[0].strip() if lines else ""
    if not token:
        raise InputError(f"--token-file {path}: the first line is empty")
    return token


def check_bind(host: str, token: str | None) -> None:
    """Refuse, before anything listens, a studio that other machines could use without a token."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise InputError(
            f"--token: {len(token)} characters; use at least {MIN_TOKEN_CHARS} "
            '(python3 -c "import secrets; print(secrets.token_urlsafe())")'
        )
    if not is_loopback(host) and not token:
        raise InputError(
            f"--host {host}: not a loopback address, so other machines could reach the studio; "
            f"give --token (or {TOKEN_ENV}) and every request must carry it"
        )


@dataclass(frozen=True)
class StudioConfig:
    """One studio server. `settings` start new stories (defaults < config file < environment < flags);
    `worker_args` are the global options a worker gets before its command, so a resume in the studio
    uses what the studio was started with, as `novelcraft --backend ... resume ID` would."""

    db: Path
    settings: Settings
    worker_args: tuple[str, ...] = ()
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    max_workers: int = DEFAULT_WORKERS
    poll_s: float = 0.5
    extra_hosts: tuple[str, ...] = field(default_factory=tuple)
    # `novelcraft resume ID --review` is there: the "outline first" worker can run (author sessions).
    outline_review: bool = False

    @property
    def state_dir(self) -> Path:
        """Beside the database: the workers file, the lock and the worker logs."""
        return self.db.with_name(self.db.name + ".studio")

    def allowed_hosts(self) -> set[str] | None:
        """Host headers a loopback studio answers; None (any) for a studio behind a token.

        A page on another site can point its own host name at 127.0.0.1 (DNS rebinding) and then read
        and post to a loopback studio as if it were the same site; checking the Host header stops that.
        """
        if not is_loopback(self.host):
            return None
        return {"localhost", "127.0.0.1", "[::1]", "::1", self.host, *self.extra_hosts}


def worker_args_from(params: dict) -> tuple[str, ...]:
    """The root command's options (`novelcraft --backend fake -o latency_ms=200 studio`) as words for
    a worker's command line; `--db` is left out, the studio gives its own."""
    words: list[str] = []
    for name, flag in (
        ("config", "--config"),
        ("backend", "--backend"),
        ("model", "--model"),
        ("base_url", "--base-url"),
        ("adapter", "--adapter"),
    ):
        value = params.get(name)
        if value is not None:
            words += [flag, str(Path(value).resolve()) if name == "config" else str(value)]
    for option in params.get("option") or []:
        words += ["-o", option]
    return tuple(words)
