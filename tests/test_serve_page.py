"""Issue 12 and 23, `dinstyle serve`: a real headless Chromium driving the page served by a real server (a
`dinstyle serve` process on a free port, the tiny model). Skips without the [web] extra or without Chromium."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image
from serve_client import chromium_driver, chromium_paths, photo_bytes, running_server

from dinstyle.serve import missing_web_packages

web = pytest.mark.skipif(bool(missing_web_packages()), reason="the [web] extra is not installed "
                         "(pip install -e '.[web]')")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from running_server(tmp_path_factory.mktemp("serve"))


def check_photo_choice(driver, wait, tmp_path) -> None:
    """Issue 23: a file that is no picture is refused when chosen, beside the drop zone and in view, with
    no preview and Stylize off; a TIFF (which the server opens but the browser cannot show) is kept."""
    from selenium.webdriver.common.by import By

    def pick(path) -> None:
        driver.find_element(By.ID, "content-file").send_keys(str(path))
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-photo") in ("ok", "bad"))

    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"just some text, not a picture\n" * 20)
    pick(notes)
    note = driver.find_element(By.ID, "content-note")
    assert note.is_displayed() and "error" in note.get_attribute("class").split()
    assert "notes.txt" in note.text and "not a picture" in note.text, note.text
    assert driver.execute_script("return arguments[0].previousElementSibling.id", note) == "drop"
    assert driver.execute_script("const r = arguments[0].getBoundingClientRect(); return r.bottom <= innerHeight",
                                 note), "the message is below the fold"
    assert not driver.find_element(By.ID, "stack").is_displayed()  # no broken image, no alt text
    assert driver.find_element(By.ID, "before").get_attribute("src") in (None, "")
    assert driver.find_element(By.ID, "content-name").text == ""
    assert not driver.find_element(By.ID, "go").is_enabled()
    assert driver.find_element(By.ID, "status").text == ""
    tiff = tmp_path / "scan.tif"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tiff, "TIFF")
    pick(tiff)
    note = driver.find_element(By.ID, "content-note")
    assert note.is_displayed() and "error" not in note.get_attribute("class").split(), note.text
    assert "No preview" in note.text and driver.find_element(By.ID, "go").is_enabled()
    assert not driver.find_element(By.ID, "before").is_displayed()


@web
def test_the_page_in_headless_chromium(server, tmp_path):
    found = chromium_paths()
    if isinstance(found, str):
        pytest.skip(found)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    photo = tmp_path / "holiday.png"
    photo.write_bytes(photo_bytes(96, 64, seed=3))
    driver, scratch = chromium_driver(*found)
    try:
        wait = WebDriverWait(driver, 60)
        driver.get(server.url)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "ready")
        driver.find_element(By.CSS_SELECTOR, '.thumb[data-name="irises"]').click()
        check_photo_choice(driver, wait, tmp_path)
        driver.find_element(By.ID, "content-file").send_keys(str(photo))
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-photo") == "ok")
        assert not driver.find_element(By.ID, "content-note").is_displayed()  # the earlier error went away
        go = driver.find_element(By.ID, "go")
        assert go.is_enabled()
        go.click()
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") in ("done", "error"))
        state = driver.find_element(By.TAG_NAME, "body").get_attribute("data-state")
        assert state == "done", driver.find_element(By.ID, "status").text
        size = driver.execute_script("const i = document.getElementById('result');"
                                     "return [i.naturalWidth, i.naturalHeight, i.complete];")
        assert size == [96, 64, True]
        link = driver.find_element(By.ID, "download")
        assert link.get_attribute("href").startswith("blob:") and link.get_attribute("download").endswith(".png")
        assert "from press to image" in driver.find_element(By.ID, "timing").text
        if os.environ.get("DINSTYLE_SCREENSHOT"):
            driver.save_screenshot(os.environ["DINSTYLE_SCREENSHOT"])
        urls = []
        for entry in driver.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            if msg["method"] == "Network.requestWillBeSent":
                urls.append(msg["params"]["request"]["url"])
    finally:
        driver.quit()
        shutil.rmtree(scratch, ignore_errors=True)
    assert any(u.endswith("/api/stylize") for u in urls) and any(u.endswith("/api/styles") for u in urls)
    outside = [u for u in urls if not u.startswith((server.url, "blob:", "data:"))]
    assert outside == [], f"the page fetched from elsewhere: {outside}"
