"""Each worker of `gpulease serve --workers N` gets a listening socket of its own on the one port (api/listen.py)."""

from __future__ import annotations

import pickle
import socket

from gpulease.api.listen import ReusePort
from tests.conftest import free_port


def test_each_worker_unpickles_a_socket_of_its_own_on_the_same_port() -> None:
    """What uvicorn's process manager sends each worker becomes, in the worker, a new socket bound to the port
    with SO_REUSEPORT: several listen at once, and the kernel spreads new connections over them."""
    port = free_port()
    sent = pickle.dumps([ReusePort("127.0.0.1", port)])
    first, second = pickle.loads(sent)[0], pickle.loads(sent)[0]
    try:
        assert isinstance(first, socket.socket) and first.fileno() != second.fileno()
        for sock in (first, second):
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
            assert sock.getsockname() == ("127.0.0.1", port)
            sock.listen(8)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        first.close()
        second.close()
