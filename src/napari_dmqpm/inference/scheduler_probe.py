"""Is there a dask scheduler at this address? Asked with a plain socket, within a timeout.

``distributed.Client`` trusts its peer: a service that sends a banner has its first bytes read
as a message length ("Unable to allocate 2.82 EiB"), and a port that accepts but never answers
(or an HTTP server, which waits for a request) holds the client past its timeout. A dask
scheduler writes its handshake as soon as a connection is accepted, a frame that starts with
its length in 8 bytes (``distributed.comm.tcp``). :func:`probe_scheduler` connects, reads those
8 bytes within the timeout and checks that they give a plausible length, before the client
is made.
"""

from __future__ import annotations

import socket
import struct
import time

__all__ = ["MAX_HANDSHAKE_BYTES", "probe_scheduler"]

#: A scheduler's handshake is a few hundred bytes; a larger first length is not dask.
MAX_HANDSHAKE_BYTES = 2**20


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of ``tcp://host:port`` or ``host:port``; None for other protocols."""
    scheme, _, rest = address.rpartition("://")
    if scheme not in ("", "tcp"):
        return None  # tls://, ucx://, inproc://: left to distributed
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")  # [::1]:8786
    if not host or not port.isdigit():
        return None
    return host, int(port)


def probe_scheduler(address: str, timeout: float) -> None:
    """Raise ``ConnectionError`` unless a dask scheduler answers at ``address`` in time.

    Parameters
    ----------
    address : str
        ``tcp://host:port`` or ``host:port`` (other protocols are not probed).
    timeout : float
        Seconds for connecting and for the scheduler's first bytes, together.

    Raises
    ------
    ConnectionError
        Naming the address and what it did: refused, sent nothing, closed the connection,
        or sent bytes that are not a dask handshake (shown).
    """
    parsed = _host_port(address)
    if parsed is None:
        return
    deadline = time.monotonic() + timeout
    try:
        connection = socket.create_connection(parsed, timeout=timeout)
    except OSError as error:
        raise ConnectionError(f"{address}: cannot connect ({error})") from None
    with connection:
        received = b""
        try:
            while len(received) < 8:
                connection.settimeout(max(deadline - time.monotonic(), 0.001))
                chunk = connection.recv(8 - len(received))
                if not chunk:
                    raise ConnectionError(
                        f"{address} closed the connection without a dask handshake"
                        + (f" (it sent {received!r})" if received else "")
                    )
                received += chunk
        except TimeoutError:
            said = f" (only {received!r})" if received else ""
            raise ConnectionError(
                f"{address} accepted the connection but sent no dask handshake within "
                f"{timeout:g} s{said}: not a dask scheduler (an HTTP or other server?)"
            ) from None
        except OSError as error:
            raise ConnectionError(f"{address}: the connection failed ({error})") from None
    (length,) = struct.unpack("<Q", received)
    if not 0 < length <= MAX_HANDSHAKE_BYTES:
        raise ConnectionError(
            f"{address} is not a dask scheduler: it sent {received!r}, which is not the start "
            "of a dask message"
        )
