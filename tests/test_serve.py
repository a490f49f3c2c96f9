"""Issue 12, `dinstyle serve`: the real server (a `dinstyle serve` process on a free port, the tiny model)
called over HTTP with good and bad input, and four requests at once (the page: ``test_serve_page``). The web
tests skip without the [web] extra."""
from __future__ import annotations

import functools
import json
import os
import re
import threading
import time

import pytest
from serve_client import (
    FAST,
    MAX_UPLOAD_MB,
    image,
    json_error,
    photo_bytes,
    png_header_bomb,
    real_bomb,
    running_server,
)

from dinstyle.cli import main
from dinstyle.io.builtin_styles import STYLES
from dinstyle.serve import missing_web_packages
from dinstyle.serve.jobs import Busy, JobQueue

web = pytest.mark.skipif(bool(missing_web_packages()), reason="the [web] extra is not installed "
                         "(pip install -e '.[web]')")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from running_server(tmp_path_factory.mktemp("serve"))


# ------------------------------------------------------------------------------------------ no web needed
def test_job_queue_runs_one_job_at_a_time_per_lane_and_refuses_past_its_bound():
    q = JobQueue(max_pending=3)
    gate, running, peak, lock = threading.Event(), [0], [0], threading.Lock()

    def job(i):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        gate.wait(5)
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        return i

    futures = [q.submit(job, i) for i in range(3)]  # small jobs (no pixels given): one lane
    with pytest.raises(Busy, match="busy"):
        q.submit(job, 99)
    assert q.lanes() == {"small": 3, "large": 0}
    gate.set()
    results = [f.result(10) for f in futures]
    assert [r.value for r in results] == [0, 1, 2] and peak[0] == 1
    # the third waited at least for the whole second (which began only when the first ended); comparing with
    # the first's run time raced with the submissions on a loaded machine
    assert results[2].waited >= results[1].ran > 0
    assert q.pending == 0 and q.done == 3
    assert q.submit(job, 4).result(10).value == 4  # room again
    q.close()


def test_serve_without_the_web_extra_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setattr("dinstyle.serve.missing_web_packages", lambda: ["starlette", "uvicorn"])
    assert main(["serve"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'dinstyle[web]'" in err, err


@web
def test_serve_refuses_a_port_in_use_before_loading_the_model(capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        assert main(["serve", "--port", str(s.getsockname()[1]), "--model", "no-such-model"]) == 1
    err = capsys.readouterr().err
    assert "cannot listen on 127.0.0.1" in err and "--port" in err, err


# ------------------------------------------------------------------------------------------ the API
@web
def test_styles_info_and_the_page(server):
    status, headers, body = server.get("/api/styles")
    assert status == 200 and headers["content-type"] == "application/json"
    styles = json.loads(body)["styles"]
    assert [s["name"] for s in styles] == list(STYLES)
    assert all(s["style"] == f"builtin:{s['name']}" for s in styles)
    status, headers, body = server.get(styles[0]["thumbnail"])
    assert status == 200 and headers["content-type"] == "image/jpeg" and image(body).format == "JPEG"
    info = json.loads(server.get("/api/info")[2])
    assert info["model"].startswith("din-mobilenet-vgg") and info["max_upload_bytes"] == MAX_UPLOAD_MB * 1024 * 1024
    assert info["stroke_control"] is True  # din-magenta, which sees styles at one size, says False
    status, headers, body = server.get("/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in headers["content-security-policy"]
    html = body.decode()
    # nothing fetched from elsewhere: no absolute URL in any src/href/url(), no @import, no web font
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the page links outside"
    assert "url(http" not in html and "@import" not in html and "@font-face" not in html


@web
def test_stylize_with_a_builtin_style_returns_the_image(server):
    status, headers, body = server.stylize([("content", ("photo.png", photo_bytes(64, 48))),
                                            ("style", "builtin:irises"), *FAST])
    assert status == 200, body[:300]
    assert headers["content-type"] == "image/png"
    im = image(body)
    assert im.format == "PNG" and im.size == (64, 48) and im.mode == "RGB"
    assert headers["x-dinstyle-size"] == "64x48"
    assert 'filename="photo_stylized.png"' in headers["content-disposition"]
    assert re.match(r"queue;dur=[\d.]+, stylize;dur=[\d.]+$", headers["server-timing"])


@web
def test_an_uploaded_style_is_encoded_once_then_only_the_content_path_runs(server):
    style = ("painting.jpg", photo_bytes(40, 40, seed=7, fmt="JPEG"))
    first = server.stylize([("content", ("a.jpg", photo_bytes(48, 32, fmt="JPEG"))), ("style", style),
                            ("format", "jpg"), *FAST])
    again = server.stylize([("content", ("b.png", photo_bytes(30, 20, seed=2))), ("style", style),
                            ("alpha", "0.4"), ("format", "jpeg"), *FAST])
    other_size = server.stylize([("content", ("b.png", photo_bytes(30, 20, seed=2))), ("style", style),
                                 ("style_size", "96")])
    assert [r[0] for r in (first, again, other_size)] == [200, 200, 200]
    assert first[1]["x-dinstyle-style-cache"] == "miss"
    assert again[1]["x-dinstyle-style-cache"] == "hit"  # same bytes, same size: no encode at another strength
    assert other_size[1]["x-dinstyle-style-cache"] == "miss"  # the style size is part of the key
    assert first[1]["content-type"] == again[1]["content-type"] == "image/jpeg"
    assert image(first[2]).size == (48, 32) and image(again[2]).size == (30, 20)
    assert first[2] != again[2]


@web
def test_options_blend_preserve_color_max_size_stroke_size_webp_and_alpha(server):
    content = ("rgba.png", photo_bytes(80, 40, mode="RGBA"))
    status, headers, body = server.stylize([
        ("content", content), ("style", "builtin:irises"), ("style", ("s.png", photo_bytes(32, 32, seed=5))),
        ("style_weights", "0.7,0.3"), ("preserve_color", "true"), ("alpha", "0.8"), ("max_size", "40"),
        ("stroke_size", "2.5"), *FAST])
    assert status == 200, body[:300]
    im = image(body)
    assert im.size == (40, 20) and im.mode == "RGBA"  # shrunk to max_size; the alpha channel kept
    status, headers, body = server.stylize([("content", content), ("style", "builtin:moonrise"),
                                            ("format", "webp"), *FAST])
    assert status == 200 and headers["content-type"] == "image/webp" and image(body).size == (80, 40)
    status, headers, body = server.stylize([("content", content), ("style", "builtin:moonrise"),
                                            ("format", "jpg"), *FAST])
    assert status == 200 and image(body).mode == "RGB"
    assert "flattened onto white" in headers["x-dinstyle-warning"]  # the CLI's warning, passed on


@functools.lru_cache(maxsize=1)
def _bad_cases():
    good = photo_bytes(32, 24)
    png = photo_bytes(64, 48)
    c = lambda data, name="photo.png": ("content", (name, data))
    s = ("style", "builtin:irises")
    return {
        "undecodable": ([c(os.urandom(4000), "photo.jpg"), s], 400, "not an image"),
        "truncated": ([c(png[: len(png) // 2]), s], 400, "truncated or corrupt"),
        "text renamed .png": ([c(b"just some text, not a picture\n" * 20, "notes.png"), s], 400, "not an image"),
        "empty file": ([c(b""), s], 400, "empty"),
        "header bomb": ([c(png_header_bomb()), s], 400, "over the limit"),
        "real bomb": ([c(real_bomb, "bomb.png"), s], 400, "over the limit"),  # made when sent
        # over 1 MiB: Starlette spools it to an (anonymous) temporary file; the fixture checks none is left
        "large garbage": ([c(os.urandom(1_200_000), "big.png"), s], 400, "not an image"),
        "bad style file": ([c(good), ("style", ("style.png", b"GIF89a broken"))], 400, "style.png"),
        "style bomb": ([c(good), ("style", ("style.png", png_header_bomb()))], 400, "over the limit"),
        "unknown builtin": ([c(good), ("style", "builtin:nope")], 400, "no such built-in style"),
        "style not builtin:": ([c(good), ("style", "irises")], 400, "builtin:NAME"),
        "no content": ([s], 400, "content: missing"),
        "content as text": ([("content", "photo.png"), s], 400, "expected a file"),
        "no style": ([c(good)], 400, "style: missing"),
        "unknown field": ([c(good), s, ("aplha", "0.5")], 400, "unknown field 'aplha'"),
        "alpha > 1": ([c(good), s, ("alpha", "2")], 400, "alpha must be"),
        "alpha nan": ([c(good), s, ("alpha", "nan")], 400, "alpha must be"),
        "alpha text": ([c(good), s, ("alpha", "strong")], 400, "alpha must be"),
        "alpha twice": ([c(good), s, ("alpha", "1"), ("alpha", "0")], 400, "given 2 times"),
        "style_size small": ([c(good), s, ("style_size", "8")], 400, "style_size must be"),
        "style_size huge": ([c(good), s, ("style_size", "99999")], 400, "style_size must be"),
        "style_size float": ([c(good), s, ("style_size", "1.5")], 400, "style_size must be"),
        "max_size 0": ([c(good), s, ("max_size", "0")], 400, "max_size must be"),
        "format gif": ([c(good), s, ("format", "gif")], 400, "format must be"),
        "preserve_color maybe": ([c(good), s, ("preserve_color", "maybe")], 400, "preserve_color must be"),
        # the controls are checked by the library's StyleOptions, with its messages
        "weights count": ([c(good), s, ("style_weights", "1,2")], 400, "style weights for 1 styles"),
        "weights negative": ([c(good), s, ("style", "builtin:moonrise"), ("style_weights", "1,-1")], 400,
                             "style weights"),
        "weights text": ([c(good), s, ("style_weights", "a,b")], 400, "style_weights must be"),
        "stroke_size 9": ([c(good), s, ("stroke_size", "9")], 400, "stroke size must be"),
        "stroke_size 0": ([c(good), s, ("stroke_size", "0")], 400, "stroke size must be"),
        "stroke_size nan": ([c(good), s, ("stroke_size", "nan")], 400, "stroke size must be"),
        "stroke_size text": ([c(good), s, ("stroke_size", "big")], 400, "stroke_size must be"),
        "job_id short": ([c(good), s, ("job_id", "abc")], 400, "job_id must be"),
        "job_id path": ([c(good), s, ("job_id", "../../etc/passwd")], 400, "job_id must be"),
    }


@web
@pytest.mark.parametrize("case", list(_bad_cases()))
def test_bad_input_is_refused_as_json_and_the_server_keeps_serving(server, case):
    fields, status, needle = _bad_cases()[case]
    got, headers, body = server.stylize(fields + ([] if any(k == "style_size" for k, _ in fields) else FAST))
    assert got == status, body[:300]
    assert needle in json_error(got, headers, body)
    ok = server.stylize([("content", ("ok.png", photo_bytes(32, 24))), ("style", "builtin:irises"), *FAST])
    assert ok[0] == 200 and image(ok[2]).size == (32, 24)


@web
def test_oversized_uploads_get_413_with_or_without_a_content_length(server):
    big = [("content", ("huge.png", os.urandom(MAX_UPLOAD_MB * 1024 * 1024 + 100_000))), ("style", "builtin:irises")]
    for chunked in (False, True):
        status, headers, body = server.stylize(big, chunked=chunked)
        assert status == 413 and "upload too large" in json_error(status, headers, body)
    assert server.stylize([("content", ("ok.png", photo_bytes(32, 24))), ("style", "builtin:irises"),
                           *FAST])[0] == 200


@web
def test_other_refusals_are_json_too(server):
    for method, path, body, headers, status, needle in [
        ("GET", "/api/stylize", None, {}, 405, "not allowed"),
        ("GET", "/no/such/page", None, {}, 404, "no such page"),
        ("GET", "/api/styles/nope", None, {}, 404, "no built-in style"),
        ("POST", "/api/stylize", b'{"content": "x"}', {"Content-Type": "application/json"}, 415, "multipart"),
        ("POST", "/api/stylize", b"--x\r\ngarbage", {"Content-Type": "multipart/form-data; boundary=x"}, 400, ""),
        ("GET", "/api/info", None, {"Host": "attacker.example:7860"}, 403, "refused"),
    ]:
        got, h, b = server.request(method, path, body, headers)
        assert got == status and needle in json_error(got, h, b), (path, got, b[:200])
    for origin in ("http://attacker.example", "null", f"http://localhost:{server.port + 1}"):
        got, h, b = server.stylize([("content", ("p.png", photo_bytes())), ("style", "builtin:irises")],
                                   headers={"Origin": origin})
        assert got == 403 and "cross-origin" in json_error(got, h, b), origin


@web
def test_four_requests_at_once_are_queued_and_all_answered(server):
    sizes = [(64, 48), (48, 64), (40, 40), (72, 24)]
    results: dict[int, tuple] = {}
    barrier = threading.Barrier(len(sizes))

    def one(i, wh):
        fields = [("content", (f"p{i}.png", photo_bytes(*wh, seed=i))), ("style", "builtin:haystacks"),
                  ("alpha", str(0.25 * (i + 1)))]  # the default style size: a real encode for the first one
        barrier.wait()
        results[i] = server.stylize(fields)

    threads = [threading.Thread(target=one, args=(i, wh)) for i, wh in enumerate(sizes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(results) == [0, 1, 2, 3]
    for i, wh in enumerate(sizes):
        status, _, body = results[i]
        assert status == 200 and image(body).size == wh, (i, status, body[:200])
    waits = [float(re.search(r"queue;dur=([\d.]+)", results[i][1]["server-timing"]).group(1)) for i in results]
    runs = [float(re.search(r"stylize;dur=([\d.]+)", results[i][1]["server-timing"]).group(1)) for i in results]
    assert max(waits) >= min(runs) * 0.5  # one worker: someone waited for another's run
    assert json.loads(server.get("/api/info")[2])["queued"] == 0
