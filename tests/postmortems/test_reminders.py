"""``backout postmortems remind``: one message to a webhook, failures without the secret."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from backout.errors import ExitCode
from tests.runner import run


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    status: ClassVar[int] = 200

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, type[_Hook]]]:
    handler = type("Hook", (_Hook,), {"received": [], "status": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/secret-token", handler
    server.shutdown()
    server.server_close()


def test_remind_posts_one_slack_compatible_message(
    project: Path, webhook: tuple[str, type[_Hook]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, hook = webhook
    monkeypatch.setenv("BACKOUT_REMIND_WEBHOOK", url)

    result = run("postmortems", "remind")

    assert result.exit_code == 0, result.stderr
    (message,) = hook.received
    assert [r["id"] for r in message["overdue"]] == ["INC-20261120-01"]
    assert [r["id"] for r in message["due_soon"]] == ["INC-20261123-01"]
    assert "INC-20261120-01 Late one (owner Bo): review overdue by 5 h" in message["text"]


def test_a_failed_post_is_an_error_with_the_status_and_no_secret(
    project: Path, webhook: tuple[str, type[_Hook]]
) -> None:
    url, hook = webhook
    hook.status = 500

    result = run("postmortems", "remind", "--webhook", url)

    assert result.exit_code == ExitCode.FAILED
    assert "HTTP 500" in result.stderr
    assert "secret-token" not in result.stderr
