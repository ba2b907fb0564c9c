"""A real llama_cpp.server process on 127.0.0.1 for integration tests and benchmarks."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

READY_S = 120


class ServerFailed(RuntimeError):
    pass


@contextmanager
def llama_server(args: list[str], port: int, log: Path) -> Iterator[str]:
    """Start `python -m llama_cpp.server ARGS`, wait for /v1/models, yield its /v1 URL, stop it after.

    The server logs a lot; its output goes to `log`, since a pipe nobody reads would fill up and stall it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", *args], stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + READY_S
    try:
        while True:
            if proc.poll() is not None:
                raise ServerFailed(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise ServerFailed(f"llama_cpp.server did not become ready in {READY_S} s")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
