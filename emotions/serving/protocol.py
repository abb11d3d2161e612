"""The server side of a connection: uvicorn's h11 protocol with an idle timeout from the first byte, and
the socket budget of the process.

uvicorn starts its keep-alive timer only after a response, so a client that connects and never sends a
byte holds its socket, and a place under `--limit-concurrency`, for ever: a few thousand such connections
made every request a 503 (issue 23's probe). `IdleTimeoutH11Protocol` closes a connection that stays
silent for `--timeout-keep-alive` seconds from its start as well.
"""

from __future__ import annotations

import logging
import resource

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

RESERVED_FDS = 64                     # model files, logs, the listening socket, ...


class IdleTimeoutH11Protocol(H11Protocol):
    """h11 with the keep-alive timer also running on a new connection until its first byte arrives."""

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)


def connection_budget(wanted: int) -> int:
    """Raise the soft open-files limit to the hard one and return `wanted`, or less when the descriptors
    cannot hold that many connections (with a warning), so a flood of sockets meets uvicorn's 503, not
    "Too many open files"."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY or wanted + RESERVED_FDS <= soft:
        return wanted
    budget = max(1, soft - RESERVED_FDS)
    log.warning("--limit-concurrency %d lowered to %d: the process may open only %d files (ulimit -n)",
                wanted, budget, soft)
    return budget
