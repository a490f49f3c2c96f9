#!/usr/bin/env python3
"""Screenshot of `dinstyle serve` with a real result, and the time from pressing the button to the image.

    .venv/bin/python tools/serve_screenshot.py [--model MODEL] [--style irises] [--size 1024x768] \\
        [--presses 2] [-o serve_screenshot.png]

Starts `dinstyle serve --port 0` (the model given, else the default one), makes a WxH photo from
examples/content.jpg (scaled to cover, centre-cropped), and drives headless Chromium (Debian's chromium +
chromium-driver, via Selenium: pip install -e '.[test]'): upload the photo, pick the built-in style, press
Stylize, wait for the image. Each press is timed by the page itself (``performance.now()`` from the click
to the result image's load event, shown under the image); the first press also encodes the style, later
ones reuse its cached code (only the content path runs). Prints one JSON object; the screenshot is taken
after the last press.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]


def start(args, env) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "dinstyle", "serve", "--port", "0", "--quiet"]
    cmd += ["--model", args.model] if args.model else []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            m = re.search(r"serving (http://\S+/)", lines.get(timeout=1))
        except queue.Empty:
            continue
        if m:
            return proc, m.group(1)
    proc.kill()
    sys.exit("dinstyle serve did not start")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="model name or file for dinstyle serve (default: its default)")
    ap.add_argument("--style", default="irises", help="built-in style to click (default irises)")
    ap.add_argument("--photo", default=str(ROOT / "examples" / "content.jpg"))
    ap.add_argument("--size", default="1024x768", help="WxH of the uploaded photo (default 1024x768)")
    ap.add_argument("--presses", type=int, default=2, help="times to press Stylize (default 2)")
    ap.add_argument("--window", default="1280x1000", help="browser window WxH (default 1280x1000)")
    ap.add_argument("-o", "--output", default="serve_screenshot.png", help="screenshot PNG")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / f"photo_{w}x{h}.jpg"
        ImageOps.fit(Image.open(args.photo).convert("RGB"), (w, h), Image.LANCZOS).save(photo, quality=92)
        proc, url = start(args, dict(os.environ))
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                    f"--window-size={args.window.replace('x', ',')}", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--hide-scrollbars"):
            options.add_argument(arg)
        # Chromium leaves its socket folders in TMPDIR: ours, removed with it (short: a socket path has <= 107 bytes)
        service = Service(executable_path="/usr/bin/chromedriver", env=dict(os.environ, TMPDIR=tmp))
        driver = webdriver.Chrome(options=options, service=service)
        presses = []
        try:
            wait = WebDriverWait(driver, 600)
            state = lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state")  # noqa: E731
            driver.get(url)
            wait.until(lambda d: state(d) == "ready")
            driver.find_element(By.ID, "content-file").send_keys(str(photo))
            driver.find_element(By.CSS_SELECTOR, f'.thumb[data-name="{args.style}"]').click()
            for _ in range(args.presses):
                driver.execute_script("document.body.dataset.state = 'pressed'")
                driver.find_element(By.ID, "go").click()
                wait.until(lambda d: state(d) in ("done", "error"))
                if state(driver) == "error":
                    sys.exit("the page says: " + driver.find_element(By.ID, "status").text)
                presses.append(int(driver.find_element(By.ID, "timing").get_attribute("data-ms")) / 1000)
            size = driver.execute_script("const i = document.getElementById('result');"
                                         "return [i.naturalWidth, i.naturalHeight];")
            driver.save_screenshot(args.output)
            model = driver.find_element(By.ID, "model").text
        finally:
            driver.quit()
            proc.send_signal(signal.SIGINT)
            proc.wait(30)
    print(json.dumps({"screenshot": args.output, "photo": [w, h], "result": size, "style": args.style,
                      "page": model, "press_to_image_s": presses,
                      "note": "first press encodes the style; later presses reuse its cached code"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
