"""Running the app: ``run_server`` for the CLI, and ``model_metadata`` for /api/model."""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from mnist_cnn.engines import Classifier
from mnist_cnn.errors import MnistCnnError, PortInUseError

logger = logging.getLogger("uvicorn.error")  # where uvicorn's own start-up lines go
# Connections served at once; more get 503 at once instead of queuing. Each may
# hold a body of up to 5 MB, so this bounds bodies in memory to about 0.5 GB.
MAX_CONNECTIONS = 100
# Hosts that accept connections from other machines, not just this one.
ALL_INTERFACES = ("0.0.0.0", "::", "")


def run_server(
    app: FastAPI, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info"
) -> None:
    """Serve ``app`` with uvicorn until Ctrl-C (or SIGTERM); then return.

    Raises ``MnistCnnError`` for a port outside 1-65535 or a host that cannot
    be bound, and ``PortInUseError`` when another program holds the port. The
    socket is bound here, before uvicorn starts, so those are one-line errors
    rather than uvicorn's log line and ``SystemExit``.
    """
    import uvicorn

    listener = bind_socket(host, port)
    if host in ALL_INTERFACES:
        logger.warning(
            "listening on %s: the server is reachable from the network, not only this machine",
            host or "all interfaces",
        )
    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, limit_concurrency=MAX_CONNECTIONS
    )
    server = uvicorn.Server(config)
    shown_host = f"[{host}]" if ":" in host else host
    # uvicorn says where it listens only when it binds the socket itself.
    logger.info("Uvicorn running on http://%s:%d (Press CTRL+C to quit)", shown_host, port)
    try:
        # uvicorn shuts down gracefully on Ctrl-C, then re-raises it for the caller.
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[listener])
    finally:
        listener.close()


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port), not yet listening; one-line errors otherwise."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise MnistCnnError(f"port {port}: must be a whole number from 1 to 65535")
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as error:
        raise MnistCnnError(f"host {host!r}: cannot be resolved ({error})") from None
    listener = socket.socket(family, kind, protocol)
    # As uvicorn does: a restarted server can take its port back at once.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
    except OSError as error:
        listener.close()
        if error.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"port {port} on {host}: already in use by another program; "
                "stop it or choose another --port"
            ) from None
        if error.errno == errno.EACCES:
            raise MnistCnnError(
                f"port {port} on {host}: permission denied (ports under 1024 need root)"
            ) from None
        raise MnistCnnError(f"{host}:{port}: cannot listen ({error.strerror or error})") from None
    listener.set_inheritable(True)
    return listener


def model_metadata(classifier: Classifier, engine: str) -> dict[str, Any]:
    """Name, preset and test accuracy of the served model, from its run folder.

    Only names are shown (the run folder's, and the model file's within it),
    never the absolute path: /api/model is public, the server's disk is not.
    """
    from mnist_cnn import __version__
    from mnist_cnn.run_folder import RunFolder

    model_file = Path(classifier.name)
    run_dir = model_file.parent
    metadata: dict[str, Any] = {
        "name": run_dir.resolve().name if run_dir.name else model_file.name,
        "file": model_file.name,
        "engine": engine,
        "version": __version__,
    }
    metrics = RunFolder(run_dir).read_metrics()
    metadata["preset"] = metrics.get("preset")
    metadata["test_accuracy"] = metrics.get("test_accuracy")
    metadata["parameters"] = metrics.get("parameters")
    return metadata
