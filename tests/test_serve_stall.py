"""Issue 24, item 2: a server that never stalls. Abandoned requests are cancelled, small ones never wait
behind large ones, progress and cancel by job id, the per-request time limit, and the page's progress,
Cancel button and default output size, on a live server around a slow stand-in model (``serve_standin``:
events and bounded waits, no timing)."""
from __future__ import annotations

import json
import os
import shutil
import socket

import pytest
from serve_client import multipart, photo_bytes
from serve_standin import (
    TOTAL,
    WAIT,
    FakeClock,
    Live,
    SlowStylizer,
    error_of,
    fields,
    job_status,
    post_in_thread,
    until,
)

from dinstyle.serve import missing_web_packages
from dinstyle.serve.jobs import CANCELLED, GONE, JobQueue

web = pytest.mark.skipif(bool(missing_web_packages()), reason="the [web] extra is not installed")


@pytest.fixture
def live():
    servers = Live()
    yield servers
    servers.stop()


# ------------------------------------------------------------------------------------------ the server
@web
def test_a_client_that_goes_away_cancels_its_job_and_frees_the_lane(live):
    st = SlowStylizer(instant_pixels=64 * 48)
    srv = live(st)
    body, ctype = multipart(fields(100, 80, ("job_id", "gone-client-0001")))
    with socket.create_connection((srv.host, srv.port), timeout=WAIT) as s:
        s.sendall(f"POST /api/stylize HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\nContent-Type: {ctype}\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        run = st.next_run()
    assert run.stopped.wait(WAIT), "the job ran on after its client closed the connection"
    until(lambda: job_status(srv, "gone-client-0001")["state"] == "cancelled", "the job is over")
    status = job_status(srv, "gone-client-0001")
    assert status["cancelled"] == GONE and status["done"] > 0 and status["total"] == TOTAL
    answer = srv.stylize(fields(64, 48))  # the lane is free again
    assert answer[0] == 200, answer[2][:200]


@web
def test_a_small_request_is_answered_while_a_large_one_runs(live):
    st = SlowStylizer(instant_pixels=64 * 48)
    srv = live(st, small_pixels=100 * 100)
    large = post_in_thread(srv, fields(200, 150, ("job_id", "large-job-0001")))
    run = st.next_run()
    status, headers, body = srv.stylize(fields(64, 48, ("job_id", "small-job-0001")))
    assert status == 200, body[:200]
    assert headers["x-dinstyle-lane"] == "small" and headers["x-dinstyle-job"] == "small-job-0001"
    assert not large["done"].is_set() and job_status(srv, "large-job-0001")["state"] in ("running", "paused")
    assert json.loads(srv.get("/api/info")[2])["lanes"] == {"small": 0, "large": 1}
    run.release.set()
    assert large["done"].wait(WAIT)
    status, headers, _ = large["answer"]
    assert status == 200 and headers["x-dinstyle-lane"] == "large"


@web
def test_progress_and_cancel_by_job_id(live):
    st = SlowStylizer()
    srv = live(st)
    post = post_in_thread(srv, fields(64, 48, ("job_id", "page-job-0001"), ("stroke_size", "2.5")))
    run = st.next_run()
    assert run.options.stroke_size == 2.5 and run.options.cancel is not None
    until(lambda: job_status(srv, "page-job-0001")["done"] > 0, "progress reported")
    status = job_status(srv, "page-job-0001")
    assert status["state"] == "running" and status["stage"] == "stylizing" and status["total"] == TOTAL
    assert status["lane"] == "small" and status["elapsed"] >= status["waited"] >= 0
    # another client's page may not cancel it, and an id in use is refused
    assert srv.request("DELETE", "/api/jobs/page-job-0001", headers={"Origin": "http://attacker.example"})[0] == 403
    clash = srv.stylize(fields(64, 48, ("job_id", "page-job-0001")))
    assert clash[0] == 409 and "already in use" in error_of(clash)
    got, _, body = srv.request("DELETE", "/api/jobs/page-job-0001")
    assert got == 202 and json.loads(body)["cancelled"] == CANCELLED
    assert run.stopped.wait(WAIT) and post["done"].wait(WAIT)
    assert post["answer"][0] == 409 and "cancelled by DELETE" in error_of(post["answer"])
    assert job_status(srv, "page-job-0001")["state"] == "cancelled"
    assert srv.request("DELETE", "/api/jobs/page-job-0001")[0] == 200  # already over: nothing to do
    missing = srv.get("/api/jobs/no-such-job-1")
    assert missing[0] == 404 and "no job" in error_of(missing)


@web
def test_a_job_cancelled_where_it_cannot_stop_is_answered_as_cancelled(live):
    """Cancelled during a stretch with no check point (PNG encoding of a large image takes seconds), the job
    finishes, but its request is answered as cancelled, not with the image its client gave up on."""
    st = SlowStylizer(checks=False)
    srv = live(st)
    post = post_in_thread(srv, fields(64, 48, ("job_id", "no-checks-0001")))
    run = st.next_run()
    assert srv.request("DELETE", "/api/jobs/no-checks-0001")[0] == 202
    run.release.set()
    assert post["done"].wait(WAIT)
    assert post["answer"][0] == 409 and "cancelled by DELETE" in error_of(post["answer"])


@web
def test_the_time_limit_is_answered_504(live):
    clock = FakeClock()
    st = SlowStylizer()
    srv = live(st, jobs=JobQueue(max_seconds=300, clock=clock))
    post = post_in_thread(srv, fields())
    run = st.next_run()
    clock.now += 301
    assert run.stopped.wait(WAIT) and post["done"].wait(WAIT)
    assert post["answer"][0] == 504
    assert "limit of 300 s per request" in error_of(post["answer"]) and "--max-seconds" in error_of(post["answer"])
    assert json.loads(srv.get("/api/info")[2])["max_seconds"] == 300


# ------------------------------------------------------------------------------------------ the page
def _screenshot(driver, suffix: str = "") -> None:
    if os.environ.get("DINSTYLE_SCREENSHOT"):
        driver.save_screenshot(os.environ["DINSTYLE_SCREENSHOT"].replace(".png", f"{suffix}.png"))


def check_progress_and_cancel(driver, wait, st: SlowStylizer) -> None:
    """At 2048 px by default; progress and the seconds over the picture; Cancel stops the model."""
    from selenium.webdriver.common.by import By

    el = lambda name: driver.find_element(By.ID, name)
    assert el("max-size").get_attribute("value") == "2048" and not el("full-size").is_selected()
    assert "full size is 2100 x 60" in el("size-hint").text, el("size-hint").text
    assert not el("cancel").is_displayed()
    el("go").click()
    run = st.next_run()
    assert run.size[1] == 2048  # the default: the long side fitted to 2048 px
    wait.until(lambda d: "tile passes" in el("progress-text").text)
    assert el("cancel").is_displayed() and el("progress").is_displayed()
    assert int(el("progress").get_attribute("value")) > 0
    assert el("progress-text").text.endswith(" s")  # the seconds since the press
    _screenshot(driver, "-working")
    el("cancel").click()
    assert run.stopped.wait(WAIT), "Cancel did not stop the job"
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "cancelled")
    assert el("status").text.startswith("Cancelled") and not el("cancel").is_displayed()
    assert not el("progress").is_displayed() and el("go").is_enabled()


def check_full_size(driver, wait, st: SlowStylizer) -> None:
    """"Full size" is one click, and then the photo runs at its own size."""
    from selenium.webdriver.common.by import By

    el = lambda name: driver.find_element(By.ID, name)
    el("full-size").click()
    assert "(full size)" in el("size-hint").text and not el("max-size").is_enabled()
    el("go").click()
    run = st.next_run()
    assert run.size == (60, 2100)
    run.release.set()
    state = lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-state")
    wait.until(lambda d: state() in ("done", "error"))
    assert state() == "done", el("status").text
    assert driver.execute_script("const i = document.getElementById('result');"
                                 "return [i.naturalWidth, i.naturalHeight];") == [2100, 60]
    _screenshot(driver)


@web
def test_the_page_shows_progress_cancels_and_fits_2048_px_by_default(live, tmp_path):
    from serve_client import chromium_driver, chromium_paths

    found = chromium_paths()
    if isinstance(found, str):
        pytest.skip(found)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    st = SlowStylizer()
    srv = live(st)
    photo = tmp_path / "wide.png"
    photo.write_bytes(photo_bytes(2100, 60, seed=4))
    driver, scratch = chromium_driver(*found)
    try:
        wait = WebDriverWait(driver, WAIT)
        body = lambda: driver.find_element(By.TAG_NAME, "body")
        driver.get(srv.url)
        wait.until(lambda d: body().get_attribute("data-state") == "ready")
        driver.find_element(By.CSS_SELECTOR, '.thumb[data-name="irises"]').click()
        driver.find_element(By.ID, "content-file").send_keys(str(photo))
        wait.until(lambda d: body().get_attribute("data-photo") == "ok")
        check_progress_and_cancel(driver, wait, st)
        check_full_size(driver, wait, st)
    finally:
        driver.quit()
        shutil.rmtree(scratch, ignore_errors=True)
