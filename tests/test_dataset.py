"""`dinstyle dataset` on the local engine: the seeded draws, the mirrored tree, a corrupt photo in the middle,
mixed sizes and modes, reruns that do nothing, resume after a kill (a crafted and a real SIGKILL), and the
manifest. The bundled model on 64-px photos keeps it fast; the Ray engine is in test_dataset_ray.py."""
from __future__ import annotations

import csv
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dinstyle.cli import main
from dinstyle.dataset import DatasetOptions, stylize_dataset
from dinstyle.dataset import assign, manifest
from dinstyle.dataset.tree import output_rel
from dinstyle.errors import UsageError


def make_tree(root: Path, n_plain: int = 0) -> tuple[Path, Path]:
    """Photos of mixed sizes and modes with a corrupt one sorted into the middle, and three styles."""
    photos, styles = root / "photos", root / "styles"
    rng = np.random.default_rng(0)
    for d in (photos / "cat", photos / "dog", styles):
        d.mkdir(parents=True)
    px = lambda h, w, c: (rng.random((h, w, c)) * 255).astype(np.uint8)  # noqa: E731
    Image.fromarray(px(48, 64, 3)).save(photos / "cat" / "a_rgb.jpg")
    Image.fromarray(px(64, 40, 1)[..., 0], "L").save(photos / "cat" / "b_gray.png")
    Image.fromarray(px(48, 64, 3)).convert("CMYK").save(photos / "cat" / "c_cmyk.jpg")
    (photos / "cat" / "m_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    Image.fromarray(px(48, 48, 4), "RGBA").save(photos / "dog" / "r_rgba.png")
    Image.fromarray(px(48, 64, 3)).save(photos / "dog" / "s_rgb.jpg")
    for i in range(n_plain):
        Image.fromarray(px(32, 32, 3)).save(photos / "dog" / f"t{i:03d}.png")
    (photos / "dog" / "notes.txt").write_text("not an image: never listed")
    for i in range(3):
        Image.fromarray(px(64, 64, 3)).save(styles / f"style{i}.png")
    return photos, styles


def rows_of(out: Path) -> list[dict]:
    with open(out / manifest.NAME, newline="") as f:
        return list(csv.DictReader(f))


def test_draws_depend_only_on_seed_path_and_styles():
    a = assign.assign(3, "cat/x.jpg", 10, 3, (0.2, 0.9), 0.5)
    assert a == assign.assign(3, "cat/x.jpg", 10, 3, (0.2, 0.9), 0.5)  # no state carried between calls
    assert len({d.style for d in a}) == 3 and all(0.2 <= d.alpha <= 0.9 for d in a)
    others = [assign.assign(s, "cat/x.jpg", 10, 3, (0.2, 0.9), 0.5) for s in range(4, 12)]
    assert any(o != a for o in others)  # the seed matters
    picks = [assign.choose_styles(0, f"p{i}.jpg", 5, 1)[0] for i in range(500)]
    assert set(picks) == set(range(5)) and max(np.bincount(picks)) < 160  # roughly uniform
    assert assign.choose_styles(0, "x", 4, 4) != [0, 1, 2, 3] or assign.choose_styles(1, "x", 4, 4) != [0, 1, 2, 3]
    assert sorted(assign.choose_styles(7, "x", 4, 4)) == [0, 1, 2, 3]
    keep = [assign.assign(0, f"p{i}", 2, 1, (1, 1), 0.3)[0].preserve_color for i in range(400)]
    assert 60 < sum(keep) < 180


def test_output_names():
    assert output_rel("cat/a.jpg", 0, 1, None) == ("cat/a.jpg", "JPEG")
    assert output_rel("cat/a.jpg", 2, 3, "png") == ("cat/a_style2.png", "PNG")
    assert output_rel("a.pcx", 0, 1, None)[1] == "PNG" or output_rel("a.pcx", 0, 1, None)[0].endswith(".pcx")


def test_manifest_survives_a_torn_line(tmp_path):
    path = tmp_path / manifest.NAME
    row = dict(photo="a.jpg", variant=0, style="s.png", alpha=1.0, preserve_color=0, seed=0, output="a.jpg",
               status="ok", error="")
    manifest.rewrite(path, {"a.jpg": row})
    app = manifest.Appender(path)
    app.append([{**row, "photo": "b.jpg", "output": "b.jpg", "status": "failed", "error": "b.jpg: bad\nline"}])
    app.close()
    with open(path, "ab") as f:
        f.write(b"c.jpg,0,s.png,1.0,0,0,c.jpg,ok,")  # a write cut short (before its error text and newline)
    got = manifest.read(path)
    assert sorted(got) == ["a.jpg", "b.jpg"] and got["b.jpg"]["error"] == "b.jpg: bad line"


def test_job_mirrors_the_tree_and_lists_the_corrupt_photo(tmp_path, capsys):
    photos, styles = make_tree(tmp_path)
    out = tmp_path / "out"
    code = main(["dataset", str(photos), "--style-dir", str(styles), "-o", str(out), "--workers", "1", "--quiet",
                 "--styles-per-image", "2", "--alpha", "0.5:1", "--preserve-color", "0.5", "--seed", "4"])
    assert code == 1  # everything finished; one photo failed, as the summary says
    err = capsys.readouterr().err
    assert "m_corrupt.jpg" in err and "10 written" in err and "2 failed" in err  # the 2 outputs of one photo
    rows = rows_of(out)
    assert [r["photo"] for r in rows] == sorted(r["photo"] for r in rows) and len(rows) == 12
    bad = [r for r in rows if r["status"] != "ok"]
    assert {r["photo"] for r in bad} == {"cat/m_corrupt.jpg"} and all("corrupt" in r["error"] or "not an image"
                                                                       in r["error"] for r in bad)
    for r in rows:
        d = assign.assign(4, r["photo"], 3, 2, (0.5, 1.0), 0.5)[int(r["variant"])]
        assert r["style"] == f"style{d.style}.png" and float(r["alpha"]) == d.alpha
        assert int(r["preserve_color"]) == d.preserve_color
        if r["status"] == "ok":
            src = Image.open(photos / r["photo"])
            with Image.open(out / r["output"]) as im:
                assert im.size == src.size and im.format == ("PNG" if r["output"].endswith("png") else "JPEG")
                assert im.mode == ("RGBA" if "rgba" in r["photo"] else "RGB")
    assert len({r["style"] for r in rows if r["photo"] == "dog/s_rgb.jpg"}) == 2
    assert (out / "dog" / "r_rgba_style1.png").is_file() and not (out / "dog" / "notes.txt").exists()
    # a rerun does nothing; another recipe into the same folder is refused
    assert main(["dataset", str(photos), "--style-dir", str(styles), "-o", str(out), "--workers", "1", "--quiet",
                 "--styles-per-image", "2", "--alpha", "0.5:1", "--preserve-color", "0.5", "--seed", "4"]) == 1
    assert "0 written, 10 done before" in capsys.readouterr().err
    assert main(["dataset", str(photos), "--style-dir", str(styles), "-o", str(out), "--quiet"]) == 2
    assert "other settings" in capsys.readouterr().err


def test_workers_do_not_change_outputs_and_resume_after_a_crafted_kill(tmp_path):
    photos, styles = make_tree(tmp_path, n_plain=30)  # 36 photos: 3 chunks of 16, so both workers get some
    opts = DatasetOptions(size=40, progress=False, workers=1, format="png")
    one = stylize_dataset(str(photos), str(styles), tmp_path / "one", opts)
    two = stylize_dataset(str(photos), str(styles), tmp_path / "two", DatasetOptions(**{**opts.__dict__, "workers": 2}))
    assert one.written == two.written == 35 and one.failed == two.failed == 1
    assert rows_of(tmp_path / "one") == rows_of(tmp_path / "two")
    for r in rows_of(tmp_path / "one"):
        if r["status"] == "ok":
            a, b = (np.asarray(Image.open(tmp_path / d / r["output"]), dtype=int) for d in ("one", "two"))
            assert np.abs(a - b).max() <= 1
    # what a SIGKILL can leave: a file written but not yet recorded, a torn manifest line, a temporary file
    out = tmp_path / "one"
    text = (out / manifest.NAME).read_text().splitlines(keepends=True)
    keep = [line for line in text if "dog/t00" not in line]
    (out / manifest.NAME).write_text("".join(keep) + "dog/t004.png,0,style1.png,1.0,0,0,dog/t0")
    for r in ("dog/t001.png", "dog/t002.png"):
        (out / r).unlink()
    (out / "dog" / ".t001.png.abcd1234.tmp").write_bytes(b"half a png")
    again = stylize_dataset(str(photos), str(styles), out, opts)
    assert again.written == 2 and again.done_before == 33 and again.failed == 1
    assert rows_of(out) == rows_of(tmp_path / "two") and not list(out.rglob(".*.tmp"))


def test_usage_errors(tmp_path, capsys):
    photos, styles = make_tree(tmp_path)
    for args, message in [(["-o", str(photos)], "could overwrite"), (["-o", str(tmp_path)], "could overwrite"),
                          (["-o", str(styles / "o")], "inside the --style-dir"),
                          (["-o", str(tmp_path / "o"), "--alpha", "2"], "--alpha"),
                          (["-o", str(tmp_path / "o"), "--styles-per-image", "4"], "only 3 styles"),
                          (["-o", str(tmp_path / "o"), "--format", "../x"], "--format"),
                          (["-o", str(tmp_path / "o"), "--ray-address", "auto"], "--engine ray")]:
        assert main(["dataset", str(photos), "--style-dir", str(styles), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
    (tmp_path / "other").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "other" / "a_rgb.jpg")
    with pytest.raises(UsageError, match="no dinstyle dataset job made it"):
        stylize_dataset(str(photos / "cat"), str(styles), tmp_path / "other", DatasetOptions(progress=False))


def test_resume_after_sigkill(tmp_path):
    photos, styles = make_tree(tmp_path, n_plain=150)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "dinstyle", "dataset", str(photos), "--style-dir", str(styles), "-o", str(out),
           "--threads", "1", "--batch-size", "1", "--quiet", "--workers"]
    proc = subprocess.Popen(cmd + ["2"], stderr=subprocess.DEVNULL)
    try:  # kill as soon as the first batch is recorded: the rest is then in flight or not started
        while proc.poll() is None and len(manifest.read(out / manifest.NAME)) < 2:
            time.sleep(0.005)
        workers = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the job ended before it could be killed"
    assert len(workers) >= 2  # the workers (and the resource tracker spawn starts)
    for _ in range(600):  # the orphaned workers notice within a second or two and exit
        if not any(_alive(pid) for pid in workers):
            break
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "worker processes outlived their killed driver"
    cmd[-1:] = ["--workers", "1"]
    recorded = manifest.read(out / manifest.NAME)
    assert 0 < len(recorded) < 156
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 1 and "1 failed" in done.stderr, done.stderr
    written, before = map(int, re.search(r"(\d+) written, (\d+) done before", done.stderr).groups())
    assert written + before == 155 and before >= sum(r["status"] == "ok" for r in recorded.values())
    rows = rows_of(out)
    assert len(rows) == 156 and sum(r["status"] == "ok" for r in rows) == 155
    for r in rows[::10]:
        if r["status"] == "ok":
            with Image.open(out / r["output"]) as im:
                im.load()
    assert not list(out.rglob(".*.tmp"))


def _alive(pid: str) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")
