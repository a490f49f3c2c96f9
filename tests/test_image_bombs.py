"""Issue 23, item 1: formats whose Pillow plugin decodes (ICO) or allocates (WebP) while *opening* get the pixel
guard before they are opened (``io/opensizes.py``); every other allowed format must read only its header."""
from __future__ import annotations

import io
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from dinstyle.cli import main
from dinstyle.errors import DinstyleError
from dinstyle.io.images import READ_FORMATS, decode_image, open_lazy
from dinstyle.io.opensizes import BEFORE_OPEN

from conftest import tiny_model_file

LIMIT = 1_000_000


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def zero_png(w: int, h: int) -> bytes:
    """An all-zero RGBA PNG, compressed row block by row block (the test never holds its pixels)."""
    z, row = zlib.compressobj(9), bytes(1 + 4 * w)
    idat = b"".join([z.compress(row * 64) for _ in range(h // 64)] + [z.compress(row * (h % 64)), z.flush()])
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def ico(*entries: bytes) -> bytes:
    """An icon whose directory says 256x256 for every entry, whatever the entries hold."""
    out, offset = struct.pack("<HHH", 0, 1, len(entries)), 6 + 16 * len(entries)
    for e in entries:
        out += struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(e), offset)
        offset += len(e)
    return out + b"".join(entries)


def bmp_entry(w: int, h: int) -> bytes:
    """A BITMAPINFOHEADER (height counts the AND mask too) and a few bytes of pixels."""
    return struct.pack("<IiiHHIIiiII", 40, w, h, 1, 32, 0, 0, 0, 0, 0, 0) + bytes(64)


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    path = tmp_path_factory.mktemp("bomb") / "bomb.ico"
    path.write_bytes(ico(zero_png(9000, 9000)))  # ~320 KB; 324 MB once decoded
    return path


def test_an_ico_bomb_is_one_line_from_stylize(bomb, tmp_path, capsys):
    model = tiny_model_file(tmp_path / "tiny.safetensors")
    style = tmp_path / "style.png"
    Image.fromarray((np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)).save(style)
    rc = main(["stylize", str(bomb), "--style", str(style), "--model", str(model), "--max-pixels", str(LIMIT),
               "-o", str(tmp_path / "out.png"), "--quiet"])
    err = capsys.readouterr().err
    assert rc != 0 and len(err.strip().splitlines()) == 1, err
    assert "bomb.ico: 9000x9000" in err and "over the limit" in err and not (tmp_path / "out.png").exists()


def _peak_rss_mb(path) -> tuple[str, int]:
    code = textwrap.dedent(f"""
        import resource
        from dinstyle.errors import DinstyleError
        from dinstyle.io.images import decode_image
        try:
            decode_image({str(path)!r}, {LIMIT})
            print("decoded")
        except DinstyleError as e:
            print(e)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)""")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    message, rss = out.strip().rsplit("\n", 1)
    return message, int(rss)


def test_refusing_an_ico_bomb_costs_what_refusing_a_small_file_does(bomb, tmp_path):
    """A loose memory bound (peak RSS of a child process), not a timing: decoded, the bomb costs 324 MB more."""
    small = tmp_path / "small.png"
    Image.new("RGB", (1100, 1000)).save(small)  # refused too: 1.1 Mpixels
    small_msg, small_rss = _peak_rss_mb(small)
    bomb_msg, bomb_rss = _peak_rss_mb(bomb)
    assert "over the limit" in small_msg and "9000x9000" in bomb_msg and "over the limit" in bomb_msg
    assert bomb_rss <= small_rss + 150, (small_rss, bomb_rss)


@pytest.mark.parametrize("entries,words", [
    ((bmp_entry(3000, 6000),), "3000x3000 = 9,000,000 pixels, over the limit"),
    ((zero_png(16, 16), zero_png(2000, 1000)), "2000x1000 = 2,000,000 pixels, over the limit"),  # not the first
    ((b"GIF89a" + bytes(40),), "its size cannot be checked before decoding"),
    ((zero_png(16, 16)[:20],), "entry 0 holds neither a PNG nor a BMP header")])  # truncated IHDR
def test_every_ico_entry_is_checked_by_its_own_header(tmp_path, entries, words):
    (tmp_path / "x.ico").write_bytes(ico(*entries))
    with pytest.raises(DinstyleError) as e:
        decode_image(tmp_path / "x.ico", LIMIT)
    assert words in str(e.value) and "x.ico" in str(e.value) and "\n" not in str(e.value)


def test_the_training_loader_checks_ico_entries_too(bomb):
    from dinstyle.io.imagefolders import BadImage, open_checked as open_image

    with pytest.raises(BadImage) as e:
        open_image(bomb, LIMIT)
    assert e.value.kind == "huge" and "9000x9000" in str(e.value)


def _webp_vp8x(w: int, h: int) -> bytes:
    """A small lossy WebP re-wrapped under a VP8X header that declares a ``w`` x ``h`` canvas."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, format="WEBP")
    vp8 = buf.getvalue()[12:]  # the 'VP8 ' chunk
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes(4) + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + vp8
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_a_webp_canvas_is_checked_before_its_decoder_allocates_it(tmp_path):
    (tmp_path / "big.webp").write_bytes(_webp_vp8x(12000, 12000))  # under Pillow's own limit (179 Mpixels)
    with pytest.raises(DinstyleError, match=r"big.webp: 12000x12000 = 144,000,000 pixels, over the limit"):
        decode_image(tmp_path / "big.webp", LIMIT)
    odd = bytearray(_webp_vp8x(16, 16)[30:])  # its 'VP8 ' chunk alone, with the key frame's start code broken
    odd[11] = 0  # byte 23 of the file
    (tmp_path / "odd.webp").write_bytes(b"RIFF" + struct.pack("<I", len(odd) + 4) + b"WEBP" + bytes(odd))
    with pytest.raises(DinstyleError, match="odd.webp: .*cannot be checked before decoding"):
        decode_image(tmp_path / "odd.webp", LIMIT)
    assert decode_image(_webp_vp8x(16, 16), LIMIT).size == (16, 16)


def _samples() -> list[tuple[str, bytes]]:
    out = []
    for fmt in (*READ_FORMATS, "MPO"):  # MPO: opened as JPEG
        buf = io.BytesIO()
        try:
            Image.new("RGB", (8, 8), (10, 20, 30)).save(buf, format=fmt)
        except (KeyError, OSError, ValueError):  # no encoder for it in this Pillow
            continue
        out.append((fmt, buf.getvalue()))
    return out


def _subclasses(cls: type) -> set[type]:
    return {cls}.union(*(_subclasses(c) for c in cls.__subclasses__()))


@pytest.mark.parametrize("fmt,data", _samples(), ids=[f for f, _ in _samples()])
def test_only_formats_checked_before_opening_decode_while_opening(fmt, data, monkeypatch):
    """With every plugin's ``load`` switched off, opening must still work: the format reads only its header,
    or its sizes are read before Pillow opens it (``BEFORE_OPEN``). A new format, or a Pillow whose plugin
    starts decoding on open, fails here."""
    def decoding(self, *a, **k):
        raise AssertionError(f"{fmt}: decoded while opening")

    for cls in _subclasses(ImageFile.ImageFile):
        if "load" in cls.__dict__:
            monkeypatch.setattr(cls, "load", decoding)
    try:
        im = open_lazy(io.BytesIO(data), LIMIT)
    except AssertionError:
        assert fmt in BEFORE_OPEN, f"{fmt} decodes while opening, and io/opensizes.py does not read its sizes first"
    else:
        assert im.size == (8, 8)
