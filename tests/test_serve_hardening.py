"""Issue 23, `dinstyle serve`: loopback spellings decided from the address bound (2), numeric options checked
(11), uploads kept in memory (12), refusals logged (15). In process: the app is driven through ASGI calls,
the CLI with the model loading and the serving replaced (nothing listens for long)."""
from __future__ import annotations

import asyncio
import io
import json
import socket
import tempfile

import numpy as np
import pytest
from conftest import tiny_model_file
from PIL import Image

from dinstyle.cli import main
from dinstyle.serve import (
    bound_to_loopback,
    is_local_host,
    is_loopback_ip,
    missing_web_packages,
)

web = pytest.mark.skipif(bool(missing_web_packages()), reason="the [web] extra is not installed")
real_getaddrinfo = socket.getaddrinfo


def resolving(monkeypatch, names: dict[str, str]) -> None:
    """Make ``names`` resolve to the given IPv4 addresses (as a hosts file would); others as usual."""
    def fake(host, port, *args, **kwargs):
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names[host], port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# ------------------------------------------------------------------------------------------ 2: loopback
@pytest.mark.parametrize("address", ["127.0.0.1", "127.1", "0x7f.1", "2130706433", "127.0.1.1", "::1", "[::1]",
                                     "::ffff:127.0.0.1", "::1%lo"])
def test_every_numeric_spelling_of_a_loopback_address_is_loopback(address):
    assert is_loopback_ip(address)


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "192.168.1.5", "10.0.0.1", "::ffff:10.0.0.1", "localhost",
                                     "127.0.0.1 evil", "evil.example", "", "127.0.0.1.nip.io"])
def test_other_addresses_and_any_name_are_not(address):
    assert not is_loopback_ip(address)  # names are never resolved by this rule


@pytest.mark.parametrize("host, also, ok", [
    ("localhost", (), True), ("localhost.", (), True), ("127.1", (), True), ("[::1]", (), True),
    ("attacker.example", (), False), ("vm", (), False), ("vm", ("VM",), True), ("127.0.0.1 evil", (), False)])
def test_the_host_header_names_this_computer(host, also, ok):
    assert is_local_host(host, also) is ok


def _spellings():
    cases = [("127.0.0.1", {}, True), ("127.1", {}, True), ("0x7f.1", {}, True),
             ("my-laptop.example", {"my-laptop.example": "127.0.1.1"}, True),  # a hostname in /etc/hosts
             ("localhost.", {"localhost.": "127.0.0.1"}, True), ("0.0.0.0", {}, False)]
    if has_ipv6_loopback():
        cases.append(("::1", {}, True))
    return cases


@web
@pytest.mark.parametrize("host, names, private", _spellings())
def test_serve_decides_from_the_address_it_bound(monkeypatch, capsys, host, names, private):
    """The whole command: the Host/Origin protection is on, and the 'anyone can reach' warning is off,
    exactly when the bound address is loopback, however --host was spelled."""
    import dinstyle.cli.serve as cli_serve
    import dinstyle.serve.app as serve_app

    resolving(monkeypatch, names)
    seen = {}

    class Fake:
        model_id, device = "fake-model", "cpu"

    monkeypatch.setattr(cli_serve, "load", lambda args: (Fake(), []))
    monkeypatch.setattr(serve_app, "create_app", lambda st, **kw: seen.update(kw) or "app")
    monkeypatch.setattr(serve_app, "serve", lambda app, sock: seen.update(bound=bound_to_loopback(sock)))
    assert main(["serve", "--host", host, "--port", "0"]) == 0
    err = capsys.readouterr().err
    assert seen["loopback_only"] is private and seen["bound"] is private
    assert ("anyone who can reach this machine" in err) is (not private), err


@web
def test_a_host_that_does_not_resolve_is_a_usage_error(monkeypatch, capsys):
    def fail(*a, **k):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    assert main(["serve", "--host", "no-such-host.invalid", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not an address of this machine" in err


# ------------------------------------------------------------------------------------------ 11: options
@pytest.mark.parametrize("option, value", [
    ("--max-upload-mb", "inf"), ("--max-upload-mb", "nan"), ("--max-upload-mb", "-inf"), ("--max-upload-mb", "0"),
    ("--max-upload-mb", "-5"), ("--max-upload-mb", "1e400"), ("--max-upload-mb", "1e12"), ("--max-upload-mb", "x"),
    ("--port", "65536"), ("--port", "-1"), ("--port", "80.5"), ("--max-queue", "0"), ("--max-queue", "1e3"),
    ("--max-queue", "99999999"), ("--max-pixels", "inf"), ("--max-pixels", "nan"), ("--max-pixels", "0"),
    ("--max-seconds", "-1"), ("--max-seconds", "nan"), ("--max-seconds", "inf"), ("--max-seconds", "1e9"),
    ("--max-seconds", "soon"), ("--small-pixels", "0"), ("--small-pixels", "inf"), ("--small-pixels", "x"),
    ("--seed", "-1"), ("--seed", str(2**64)), ("--seed", "nan")])
def test_every_numeric_option_is_checked_with_a_one_line_usage_error(monkeypatch, capsys, option, value):
    import dinstyle.cli.serve as cli_serve

    def never(*a):
        raise AssertionError(f"serve started with {option} {value}")

    monkeypatch.setattr(cli_serve, "listen", never)
    with pytest.raises(SystemExit) as exit_:
        main(["serve", f"{option}={value}"])  # "=": argparse takes a bare -inf for an option
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and option in err and repr(value) in err, err
    assert "Traceback" not in err and "internal error" not in err


# ------------------------------------------------------------------------------------------ ASGI in process
def call(app, method, path, body=b"", headers=None):
    """One request through the ASGI app -> (status, headers, body); the body is sent in 64 KiB chunks."""
    async def run():
        chunks = [body[i:i + 65536] for i in range(0, len(body), 65536)] or [b""]
        sent, answered = [], asyncio.Event()

        async def receive():
            if chunks:
                return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}
            await answered.wait()  # as a server does: the client is still there until it has its answer
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered.set()

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": [(k.lower().encode(), v.encode()) for k, v in {"host": "127.0.0.1:7860",
                                                                            **(headers or {})}.items()],
                 "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 7860)}
        await app(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        data = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, data

    return asyncio.run(run())


def multipart(fields) -> tuple[bytes, dict]:
    boundary = "hardening-boundary-51f3"
    out = io.BytesIO()
    for name, value in fields:
        out.write(f"--{boundary}\r\n".encode())
        if isinstance(value, tuple):
            out.write(f'Content-Disposition: form-data; name="{name}"; filename="{value[0]}"\r\n'
                      "Content-Type: application/octet-stream\r\n\r\n".encode() + value[1])
        else:
            out.write(f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode())
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), {"content-type": f"multipart/form-data; boundary={boundary}"}


@pytest.fixture(scope="module")
def stylizer(tmp_path_factory):
    from dinstyle.api import Stylizer

    return Stylizer.from_pretrained(str(tiny_model_file(tmp_path_factory.mktemp("m") / "tiny.safetensors")))


@pytest.fixture
def make_app(stylizer):
    from dinstyle.serve.app import create_app

    made = []

    def make(**kw):
        made.append(create_app(stylizer, **kw))
        return made[-1]

    yield make
    for guard in made:
        guard.app.state.jobs.close()


def big_photo() -> bytes:
    """A PNG over 1 MiB (noise does not compress): what Starlette would have spooled to a temporary file."""
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (640, 640, 3), dtype=np.uint8)).save(buf, "PNG", compress_level=0)
    assert buf.tell() > 1024 * 1024
    return buf.getvalue()


# ------------------------------------------------------------------------------------------ 12: in memory
@web
def test_an_upload_over_1_mib_never_touches_the_disk(make_app, monkeypatch, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    touched = []

    def refuse(name):
        def fn(*a, **k):
            touched.append(name)
            raise AssertionError(f"tempfile.{name} called while serving an upload")
        return fn

    for name in ("TemporaryFile", "NamedTemporaryFile", "SpooledTemporaryFile", "mkstemp", "mkdtemp"):
        monkeypatch.setattr(tempfile, name, refuse(name))
    app = make_app(max_upload=8 * 1024 * 1024)
    photo = big_photo()
    body, headers = multipart([("content", ("big.png", photo)), ("style", ("style.png", photo)),
                               ("max_size", "32"), ("style_size", "64")])
    status, _, data = call(app, "POST", "/api/stylize", body, headers)
    assert status == 200, data[:300]
    assert Image.open(io.BytesIO(data)).size == (32, 32)
    assert touched == [] and list(tmp.iterdir()) == []


@web
@pytest.mark.parametrize("fields, needle", [
    ([("x", str(i)) for i in range(40)], "too many fields"),
    ([("alpha", "1" * 70_000)], "over 64 KiB"),
    ([("content", (f"p{i}.png", b"x")) for i in range(10)], "too many files")])
def test_an_overfull_form_is_refused_before_it_is_read_further(make_app, fields, needle):
    body, headers = multipart(fields)
    status, _, data = call(make_app(), "POST", "/api/stylize", body, headers)
    assert status == 400 and needle in json.loads(data)["error"], data[:300]


# ------------------------------------------------------------------------------------------ 15: the log
@web
@pytest.mark.parametrize("method, path, body, headers, status", [
    ("GET", "/api/info", b"", {"host": "attacker.example"}, 403),
    ("POST", "/api/stylize", b"x", {"origin": "http://attacker.example", "content-type": "text/plain"}, 403),
    ("GET", "/api/stylize", b"", {}, 405),
    ("POST", "/api/stylize", b"x" * 2048, {"content-length": "2048", "content-type": "multipart/form-data; "
                                           "boundary=b"}, 413),
    ("POST", "/api/stylize", b"x" * 2048, {"content-type": "multipart/form-data; boundary=b"}, 413),  # no length
    ("POST", "/api/stylize", b"{}", {"content-type": "application/json"}, 415),
    ("GET", "/no/such/page", b"", {}, 404)])
def test_each_refusal_is_one_line_in_the_log(make_app, capsys, method, path, body, headers, status):
    app = make_app(max_upload=1024, quiet=False)
    got, _, data = call(app, method, path, body, headers)
    assert got == status, data[:200]
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"dinstyle: {method} {path} {status} "), lines
    assert json.loads(data)["error"] in lines[0]


@web
def test_a_quiet_server_logs_nothing(make_app, capsys):
    assert call(make_app(quiet=True), "GET", "/api/stylize")[0] == 405
    assert capsys.readouterr().err == ""


@web
def test_info_lists_the_extensions_the_server_opens(make_app):
    """The page keeps a photo the browser cannot preview (TIFF) only if the server opens it."""
    info = json.loads(call(make_app(), "GET", "/api/info")[2])
    assert {".png", ".jpg", ".tif", ".tiff"} <= set(info["read_extensions"]) and ".txt" not in info["read_extensions"]
