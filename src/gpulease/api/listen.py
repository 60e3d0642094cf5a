"""Each worker of `gpulease serve --workers N` listens on a socket of its own, on one port (`SO_REUSEPORT`).

uvicorn's process manager binds one socket and hands it to every worker. Then whichever worker's loop wakes first
accepts: asyncio accepts everything waiting at once, so a burst of new connections goes to one worker (measured:
32 keep-alive clients of `api_load.py --workers 2` on one worker in most runs, 23 / 9 at best), which runs
out of its core while the other idles. With a socket of its own in each worker, all bound with `SO_REUSEPORT`,
the kernel spreads new connections over the workers by a hash of each connection's addresses (what nginx's
`reuseport` does).

`ReusePort` stands in for the shared socket in what uvicorn's manager sends each worker: unpickled in the worker,
it is a new socket of that worker's own. The manager itself opens none, so no connection waits on a socket that
nobody accepts from, and a worker started again (after a crash, or SIGHUP) opens its own again.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host`:`port` with `SO_REUSEPORT`, not yet listening (uvicorn's worker listens)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass(frozen=True)
class ReusePort:
    """A worker's listening socket, opened where it is unpickled (see the module)."""

    host: str
    port: int

    def __reduce__(self) -> tuple[Any, ...]:
        return reuse_port_socket, (self.host, self.port)
