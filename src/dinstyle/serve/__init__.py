"""`dinstyle serve`: a local web page and a JSON/HTTP API beside it, in one process.

* ``jobs``: the job queue (one worker thread: requests that arrive together wait their turn instead of
  running all at once into memory);
* ``service``: the request's fields checked, the style-code cache, decode -> stylize -> encode with the
  rules of the CLI (``io.images``/``io.imagefiles``: the formats opened, the pixel guard, the encoder's refusals);
* ``app``: the Starlette application (page, ``/api/*`` routes, upload limit, JSON errors), served by uvicorn.

``jobs`` and ``service`` need no web package; ``app`` needs the ``[web]`` extra.
"""
from __future__ import annotations

import importlib.util
import ipaddress

WEB_PACKAGES = {"starlette": "starlette", "uvicorn": "uvicorn", "multipart": "python-multipart"}
INSTALL_HINT = "pip install 'dinstyle[web]'"


def missing_web_packages() -> list[str]:
    """The ``[web]`` extra's distributions that are not importable."""
    return [dist for module, dist in WEB_PACKAGES.items() if importlib.util.find_spec(module) is None]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address, IPv6 with or without brackets) means this computer only."""
    try:
        return host.lower() == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
