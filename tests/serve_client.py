"""A client for `dinstyle serve` in the tests: test images, multipart bodies, a real server process on a free
port (the tiny model), its answers, and a headless Chromium for the page."""
from __future__ import annotations

import functools
import http.client
import io
import json
import os
import queue
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY
from PIL import Image

from dinstyle.models import create_model, save_model

MAX_UPLOAD_MB = 2
FAST = [("style_size", "64")]  # small style encodes keep the tiny model's requests ~10 ms


def photo_bytes(w=64, h=48, seed=1, fmt="PNG", mode="RGB") -> bytes:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) % 256], -1).astype(np.float64)
    a = np.clip(a * 0.8 + rng.random((h, w, 3)) * 50, 0, 255).astype(np.uint8)
    im = Image.fromarray(a)
    if mode == "RGBA":
        im.putalpha(Image.fromarray((xx * 255 // max(w - 1, 1)).astype(np.uint8)))
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def png_header_bomb(w=100_000, h=100_000) -> bytes:
    """A valid PNG header claiming w x h pixels (10 gigapixels), with a few bytes of data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))


@functools.lru_cache(maxsize=1)
def real_bomb() -> bytes:
    """A genuine decompression bomb: 12300 x 12300 = 151 M pixels (over the 150 M default guard) in ~20 KB."""
    buf = io.BytesIO()
    Image.new("1", (12300, 12300)).save(buf, "PNG")
    return buf.getvalue()


def multipart(fields) -> tuple[bytes, str]:
    """fields: [(name, text) or (name, (filename, bytes or a function giving them))] -> (body, content type)."""
    boundary = "dinstyle-test-boundary-7c1e"
    out = io.BytesIO()
    for name, value in fields:
        out.write(f"--{boundary}\r\n".encode())
        if isinstance(value, tuple):
            out.write(f'Content-Disposition: form-data; name="{name}"; filename="{value[0]}"\r\n'
                      "Content-Type: application/octet-stream\r\n\r\n".encode())
            out.write(value[1]() if callable(value[1]) else value[1])
        else:
            out.write(f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode())
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


class Server:
    def __init__(self, proc, url, tmp):
        self.proc, self.url, self.tmp = proc, url, tmp
        m = re.match(r"http://([^:/]+):(\d+)/", url)
        self.host, self.port = m.group(1), int(m.group(2))

    def request(self, method, path, body=None, headers=None, chunked=False):
        c = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            if chunked:
                parts = [body[i:i + 65536] for i in range(0, len(body), 65536)]
                c.request(method, path, body=iter(parts), headers=headers or {}, encode_chunked=True)
            else:
                c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def get(self, path):
        return self.request("GET", path)

    def stylize(self, fields, headers=None, chunked=False):
        body, ctype = multipart(fields)
        return self.request("POST", "/api/stylize", body, {"Content-Type": ctype, **(headers or {})}, chunked)


def start_server(tmp: Path, *extra: str) -> Server:
    torch.manual_seed(0)
    model = tmp / "tiny.safetensors"
    save_model(create_model("din-mobilenet-vgg", **TINY), model)
    (tmp / "tmp").mkdir()
    # torch's first factory call on the "meta" device (the model file's check) imports torch._dynamo, which
    # makes an empty $TMPDIR/torchinductor_$USER at load time: kept out of the folder that watches uploads
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TMPDIR=str(tmp / "tmp"),
               PYTHONUNBUFFERED="1", TORCHINDUCTOR_CACHE_DIR=str(tmp / "torch-cache"))
    proc = subprocess.Popen([sys.executable, "-m", "dinstyle", "serve", "--port", "0", "--model", str(model),
                             "--max-upload-mb", str(MAX_UPLOAD_MB), *extra],
                            stdout=subprocess.PIPE, stderr=open(tmp / "server.log", "wb"), env=env, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        m = re.search(r"serving (http://\S+/)", line)
        if m:
            return Server(proc, m.group(1), tmp)
    proc.kill()
    proc.wait()
    pytest.fail("dinstyle serve did not start:\n" + (tmp / "server.log").read_text()[-3000:])


def stop_server(server: Server) -> int:
    server.proc.send_signal(signal.SIGINT)
    try:
        return server.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()
        return -9


def running_server(tmp: Path):
    """A module fixture's body: a server, then (after the tests) the checks that it stopped cleanly, with no
    stack trace in its log and no temporary file left behind, after every kind of request."""
    srv = start_server(tmp)
    yield srv
    rc = stop_server(srv)
    log = (tmp / "server.log").read_text()
    assert rc == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert list((tmp / "tmp").iterdir()) == []


def image(body: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(body))
    im.load()
    return im


def json_error(status, headers, body) -> str:
    """A refusal is JSON {"error": "..."} (one line, no stack trace)."""
    assert headers["content-type"].startswith("application/json"), (status, body[:200])
    obj = json.loads(body)
    assert set(obj) == {"error"}, obj
    assert "Traceback" not in obj["error"] and "\n" not in obj["error"]
    return obj["error"]


def chromium_paths() -> tuple[str, str] | str:
    """(browser, driver) paths, or why the browser test cannot run."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    browser = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                    if p and Path(p).is_file()), None)
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").is_file()
                                              else None)
    if browser is None or driver is None:
        return ("no Chromium found (Debian: apt-get install chromium chromium-driver; .ci/run installs them)")
    return browser, driver


def chromium_driver(browser: str, driver_path: str):
    """A headless Chromium that logs its network requests, and its scratch folder (the caller removes both)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                "--window-size=1280,900", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-extensions", "--disable-default-apps"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    # Chromium leaves its socket folders in TMPDIR: a short one of ours (a socket path has at most 107 bytes)
    scratch = tempfile.mkdtemp(prefix="dinstyle-chromium-")
    service = Service(executable_path=driver_path, env=dict(os.environ, TMPDIR=scratch))
    try:
        return webdriver.Chrome(options=options, service=service), scratch
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
