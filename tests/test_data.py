"""Training data: folders, conversions, crops, the deterministic stream, bad files, and check-data."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from dinstyle.cli import main
from dinstyle.errors import DinstyleError
from dinstyle.train.check import KINDS, check_folder
from dinstyle.train.data import PairDataset, StreamSampler, make_loader, random_resized_crop, split_samples
from dinstyle.io.imagefolders import BadImage, list_images, load_rgb
from dinstyle.io.images import to_rgb
from dinstyle.train.synthetic_data import make_image_folder, make_problem_images


def test_list_images_recursive_sorted_and_filtered(tmp_path):
    make_image_folder(tmp_path, 5)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / ".hidden" / "h.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "UPPER.JPEG")
    files = list_images(tmp_path)
    assert len(files) == 6 and files == sorted(files, key=lambda p: p.as_posix())
    assert all(".hidden" not in p.parts for p in files)
    with pytest.raises(DinstyleError, match="no such folder"):
        list_images(tmp_path / "missing")


def test_to_rgb_conversions():
    sixteen = Image.fromarray(np.array([[0, 32896, 65535]], dtype=np.uint16))  # I;16: scaled, not clipped
    assert np.asarray(to_rgb(sixteen))[0, :, 0].tolist() == [0, 128, 255]
    rgba = Image.new("RGBA", (2, 1), (10, 20, 30, 0))
    rgba.putpixel((1, 0), (10, 20, 30, 255))
    assert np.asarray(to_rgb(rgba)).tolist() == [[[255, 255, 255], [10, 20, 30]]]  # transparent -> white
    cmyk = Image.new("CMYK", (2, 2), (0, 255, 255, 0))
    assert np.asarray(to_rgb(cmyk))[0, 0].tolist() == [255, 0, 0]
    for mode in ("L", "1", "P", "LA", "I", "F"):
        out = to_rgb(Image.new(mode, (3, 2)))
        assert out.mode == "RGB" and out.size == (3, 2)


def test_every_problem_kind_loads_or_fails_cleanly(tmp_path):
    files = make_problem_images(tmp_path, 32)
    for name, path in files.items():
        if name in ("unreadable", "truncated"):
            with pytest.raises(BadImage) as e:
                load_rgb(path, 10**8)
            assert e.value.kind == name
        else:
            assert load_rgb(path, 10**8).mode == "RGB"
    with pytest.raises(BadImage) as e:
        load_rgb(files["huge"], 32 * 32 * 4)
    assert e.value.kind == "huge"


def test_exif_rotation_is_applied(tmp_path):
    im = Image.new("RGB", (40, 20))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90: displayed as 20 wide, 40 high
    im.save(tmp_path / "r.jpg", exif=exif)
    assert load_rgb(tmp_path / "r.jpg", 10**8).size == (20, 40)
    w, h = load_rgb(tmp_path / "r.jpg", 10**8, min_size=(10, 20)).size  # JPEG draft: reduced, never below
    assert h == 2 * w and w >= 10


def test_random_resized_crop_shape_and_determinism(tmp_path):
    (path,) = make_image_folder(tmp_path, 1, min_side=20, max_side=20)  # smaller than the crop: upscaled
    a = random_resized_crop(path, 32, (1.0, 2.0), True, 10**8, np.random.default_rng(1))
    b = random_resized_crop(path, 32, (1.0, 2.0), True, 10**8, np.random.default_rng(1))
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8 and np.array_equal(a, b)


def test_stream_is_deterministic_sharded_and_worker_independent(tmp_path):
    c, s = make_image_folder(tmp_path / "c", 7, seed=1), make_image_folder(tmp_path / "s", 5, seed=2)
    ds = PairDataset(c, s, 24, seed=3)
    x0, y0, bad = ds[11]
    x1, y1, _ = PairDataset(c, s, 24, seed=3)[11]
    assert bad == "" and torch.equal(x0, x1) and torch.equal(y0, y1) and x0.shape == (3, 24, 24)
    assert not torch.equal(PairDataset(c, s, 24, seed=4)[11][0], x0)
    # ranks interleave one global stream
    r0, r1 = iter(StreamSampler(10, 0, 2)), iter(StreamSampler(10, 1, 2))
    assert [next(r0) for _ in range(3)] + [next(r1) for _ in range(3)] == [10, 12, 14, 11, 13, 15]
    # every file of an epoch is visited once
    assert sorted(str(ds.content.file_at(g)) for g in range(7, 14)) == sorted(map(str, c))
    serial = [b[0] for _, b in zip(range(3), make_loader(ds, 2, start=4, workers=0))]
    parallel = [b[0] for _, b in zip(range(3), make_loader(ds, 2, start=4, workers=2))]
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel))
    assert torch.equal(serial[0][0], ds[4][0])


def test_bad_files_are_replaced_and_reported(tmp_path):
    good = make_image_folder(tmp_path / "g", 3)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"garbage")
    ds = PairDataset([bad] + good, good, 16, seed=0)
    records = [ds[g][2] for g in range(8)]
    assert any("bad.jpg" in r and r.startswith("unreadable\t") for r in records)
    with pytest.raises(DinstyleError, match="unreadable images in a row"):
        PairDataset([bad], good, 16, seed=0)[0]


def test_split_samples_skips_unreadable(tmp_path):
    good = make_image_folder(tmp_path, 3)
    bad = tmp_path / "zz.png"
    bad.write_bytes(b"nope")
    picked, crops = split_samples(good + [bad], 4, seed=0, stream=0, size=16, max_pixels=10**8)
    assert sorted(picked) == sorted(good) and all(c.shape == (16, 16, 3) for c in crops)


def test_check_data_reports_each_kind(tmp_path, capsys):
    files = make_problem_images(tmp_path / "d", 32)
    make_image_folder(tmp_path / "d" / "fine", 2, min_side=40, max_side=60)
    report = check_folder(tmp_path / "d", size=32, max_pixels=32 * 32 * 4)
    assert report["files"] == len(files) + 2 and report["ok"] == 2
    for kind in KINDS:
        assert report["counts"][kind] >= 1, kind
    listed = {kind: {p["path"] for p in report["problems"][kind]} for kind in KINDS}
    for name, path in files.items():
        assert str(path) in listed[name.split()[0]], name
    assert main(["check-data", str(tmp_path / "d"), "--size", "32", "--max-pixels", str(32 * 32 * 4),
                 "--json", "--workers", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"] == report["counts"]
    assert main(["check-data", str(tmp_path / "d"), "--size", "32", "--workers", "0"]) == 0
    text = capsys.readouterr().out
    assert "truncated" in text and "would be skipped by training" in text
    assert main(["check-data", str(tmp_path / "missing")]) == 1
    assert "no such folder" in capsys.readouterr().err
