"""Robust image I/O: every awkward input becomes upright sRGB, every bad one a one-line error naming it."""
from __future__ import annotations

import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from dinstyle.errors import DinstyleError
from dinstyle.io.images import load_image, open_image, pil_to_tensor, save_image, tensor_to_pil


def linear_rgb_icc() -> bytes:
    """A minimal ICC v2 profile: sRGB primaries with a *linear* (gamma 1) curve, built by hand."""
    s15 = lambda v: struct.pack(">i", round(v * 65536))  # noqa: E731
    xyz = lambda x, y, z: b"XYZ " + bytes(4) + s15(x) + s15(y) + s15(z)  # noqa: E731
    curv = b"curv" + bytes(4) + struct.pack(">IH", 1, 0x0100) + bytes(2)  # gamma 1.0
    text = b"linear test profile\0"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(8) + bytes(3) + bytes(67)
    tags = [(b"desc", desc), (b"wtpt", xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", xyz(0.4361, 0.2225, 0.0139)),
            (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)), (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
            (b"rTRC", curv), (b"gTRC", curv), (b"bTRC", curv)]
    table, data, start = b"", b"", 128 + 4 + 12 * len(tags)
    for sig, body in tags:
        body += bytes(-len(body) % 4)
        table += sig + struct.pack(">II", start + len(data), len(body))
        data += body
    header = (struct.pack(">I", start + len(data)) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + bytes(12) + b"acsp" + bytes(28) + s15(0.9642) + s15(1.0) + s15(0.8249) + bytes(48))
    return header + struct.pack(">I", len(tags)) + table + data


def png_header_only(w: int, h: int) -> bytes:
    """A PNG whose header claims w x h pixels (a decompression-bomb shape) with almost no data."""
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))  # noqa: E731
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(10))) + chunk(b"IEND", b""))


def test_exif_orientation_is_applied(tmp_path):
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20] = (255, 0, 0)  # stored: red left half, blue right half
    a[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the left half ends up on top
    Image.fromarray(a).save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    im = load_image(tmp_path / "r.jpg")
    assert im.size == (20, 40)
    top, bottom = np.asarray(im)[5, 10], np.asarray(im)[35, 10]
    assert top[0] > 200 and top[2] < 60 and bottom[2] > 200 and bottom[0] < 60


@pytest.mark.parametrize("mode,value,expected", [("L", 100, (100, 100, 100)), ("1", 1, (255, 255, 255)),
                                                 ("CMYK", (0, 255, 255, 0), (255, 0, 0))])
def test_modes_become_rgb(tmp_path, mode, value, expected):
    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    Image.new(mode, (8, 8), value).save(path, **({"quality": 100} if mode == "CMYK" else {}))
    rgb = np.asarray(load_image(path))[4, 4].astype(int)
    assert rgb.shape == (3,) and np.abs(rgb - expected).max() <= 3


def test_16bit_grayscale_is_scaled_not_clipped(tmp_path):
    a = np.array([[0, 32896, 65535, 1000]], np.uint16)
    Image.fromarray(a).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    assert np.asarray(load_image(tmp_path / "g16.png"))[0, :, 0].tolist() == [0, 128, 255, 4]


def test_icc_profile_is_converted_to_srgb(tmp_path):
    Image.new("RGB", (4, 4), (128, 128, 128)).save(tmp_path / "lin.png", icc_profile=linear_rgb_icc())
    assert np.abs(np.asarray(load_image(tmp_path / "lin.png")).astype(int) - 188).max() <= 2  # linear 0.5 -> sRGB
    Image.new("RGB", (4, 4), (128, 128, 128)).save(tmp_path / "plain.png")
    assert np.asarray(load_image(tmp_path / "plain.png")).max() == 128


def test_alpha_is_kept_apart(tmp_path):
    im = Image.new("RGBA", (6, 4), (10, 20, 30, 77))
    im.save(tmp_path / "a.png")
    rgb, alpha = open_image(tmp_path / "a.png")
    assert rgb.mode == "RGB" and alpha.getpixel((0, 0)) == 77
    assert load_image(tmp_path / "a.png", keep_alpha=True).mode == "RGBA"
    p = Image.new("P", (4, 4), 1)
    p.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    p.info["transparency"] = 1
    p.save(tmp_path / "p.png")
    assert open_image(tmp_path / "p.png")[1].getpixel((0, 0)) == 0


def test_bytes_input():
    buf = io.BytesIO()
    Image.new("RGB", (5, 3), (1, 2, 3)).save(buf, "PNG")
    rgb, alpha = open_image(buf.getvalue(), name="<stdin>")
    assert rgb.size == (5, 3) and alpha is None


def _bad_files(tmp_path):
    good = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(good, "JPEG")
    files = {"empty.jpg": b"", "text.jpg": b"hello, I am not a picture\n", "truncated.jpg": good.getvalue()[:900],
             "bomb.png": png_header_only(100_000, 100_000)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return {"missing.jpg": "no such file", "empty.jpg": "empty", "text.jpg": "not an image",
            "truncated.jpg": "truncated or corrupt", "bomb.png": "over the limit"}


def test_bad_inputs_give_one_line_errors_naming_the_file(tmp_path):
    for name, words in _bad_files(tmp_path).items():
        with pytest.raises(DinstyleError) as e:
            load_image(tmp_path / name)
        msg = str(e.value)
        assert name in msg and words in msg and "\n" not in msg, msg
    with pytest.raises(DinstyleError, match="is a directory"):
        load_image(tmp_path)


def test_pixel_guard_is_configurable(tmp_path):
    Image.new("RGB", (100, 100)).save(tmp_path / "x.png")
    with pytest.raises(DinstyleError, match="x.png: 100x100"):
        load_image(tmp_path / "x.png", max_pixels=5000)
    assert load_image(tmp_path / "x.png", max_pixels=10_000).size == (100, 100)
    assert Image.MAX_IMAGE_PIXELS is not None  # Pillow's own guard is restored for everyone else


def test_tensor_round_trip():
    im = Image.fromarray((np.arange(48).reshape(4, 4, 3) * 5).astype(np.uint8))
    assert np.array_equal(np.asarray(tensor_to_pil(pil_to_tensor(im))), np.asarray(im))


def test_save_is_atomic_and_refuses_to_overwrite(tmp_path):
    im = Image.new("RGB", (4, 4), (9, 9, 9))
    save_image(im, tmp_path / "o.png", overwrite=False)
    with pytest.raises(DinstyleError, match="already exists"):
        save_image(Image.new("RGB", (4, 4)), tmp_path / "o.png", overwrite=False)
    assert Image.open(tmp_path / "o.png").getpixel((0, 0)) == (9, 9, 9)
    with pytest.raises(DinstyleError, match="cannot write"):
        save_image(im, tmp_path / "o.xyz")
    with pytest.raises(DinstyleError, match="does not exist"):
        save_image(im, tmp_path / "nope" / "o.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.png"]  # no temporary files left


def test_alpha_survives_png_and_is_flattened_for_jpeg(tmp_path):
    im = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    save_image(im, tmp_path / "a.png")
    assert Image.open(tmp_path / "a.png").mode == "RGBA"
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        save_image(im, tmp_path / "a.jpg")
    assert any("flattened onto white" in str(x.message) for x in w)
    assert min(Image.open(tmp_path / "a.jpg").getpixel((1, 1))) > 250
