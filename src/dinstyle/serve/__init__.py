"""`dinstyle serve`: a local web page and a JSON/HTTP API beside it, in one process.

* ``jobs``: the job queue (two lanes, small and large requests, one model run at a time in each: requests
  that arrive together wait their turn instead of running all at once into memory, and a small one never
  waits for a large one), and each request's job: stage, progress, and the cancel flag the model checks;
* ``service``: the request's fields translated into a ``StyleOptions``, the style-code cache, decode ->
  stylize -> encode with the rules of the CLI (``io.images``: the formats opened, the pixel
  guard, the encoder's refusals);
* ``jobroutes``: waiting for a job while watching for the client going away; ``/api/jobs/ID`` (progress, cancel);
* ``form``: the multipart body parsed in memory (python-multipart's parser; nothing is spooled to disk);
* ``replies``/``guard``: JSON refusals and the request log; the upload limit and the Host/Origin checks;
* ``app``: the Starlette application (page, its scripts, ``/api/*`` routes), served by uvicorn.

``jobs`` and ``service`` need no web package; the others need the ``[web]`` extra.

The loopback rule lives here, once: a server is private when the address its socket is actually bound
to is a loopback one (:func:`bound_to_loopback`); which names a request may give in its Host header is
:func:`is_local_host`.
"""
from __future__ import annotations

import importlib.util
import ipaddress
import re
import socket
from collections.abc import Iterable

WEB_PACKAGES = {"starlette": "starlette", "uvicorn": "uvicorn", "python_multipart": "python-multipart"}
INSTALL_HINT = "pip install 'dinstyle[web]'"
LOCAL_NAMES = ("localhost", "localhost.")
# what socket.inet_aton reads as an IPv4 address (127.1, 0x7f.1, 2130706433); it also accepts trailing
# junk after a space, so anything else never reaches it
_NUMERIC_V4 = re.compile(r"[0-9a-fA-FxX.]+")


def missing_web_packages() -> list[str]:
    """The ``[web]`` extra's distributions that are not importable."""
    return [dist for module, dist in WEB_PACKAGES.items() if importlib.util.find_spec(module) is None]


def is_loopback_ip(address: str) -> bool:
    """Whether ``address`` is a loopback IP address in any numeric spelling: IPv6 with or without brackets
    or a %zone, IPv4-mapped IPv6, and the short or hex IPv4 forms the resolver accepts (``127.1``,
    ``0x7f.1``). Names are never resolved here (a name is not an address: False)."""
    text = address.strip().strip("[]").split("%")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        if not _NUMERIC_V4.fullmatch(text):
            return False
        try:
            ip = ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return False
    # Python < 3.13 says ::ffff:127.0.0.1 is not loopback, though only this computer can reach it
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def bound_to_loopback(sock: socket.socket) -> bool:
    """Whether only this computer can reach a listening socket: decided from the address it is actually
    bound to, not from how ``--host`` was spelled (``127.1``, ``::1``, a host name resolving to 127.0.1.1
    all bind loopback; ``0.0.0.0``, ``::`` and a network interface's address do not)."""
    return is_loopback_ip(sock.getsockname()[0])


def is_local_host(host: str, also: Iterable[str] = ()) -> bool:
    """Whether a request's Host name (without its port) names this computer: ``localhost``, a loopback
    address in any spelling, or one of ``also`` (the ``--host`` the server was started with). Any other
    name is refused on a private server: a web site that points its own name at 127.0.0.1 (DNS
    rebinding) must not reach it."""
    host = host.lower()
    return host in LOCAL_NAMES or is_loopback_ip(host) or host in {h.lower() for h in also}
