"""Pixel sizes read from raw bytes, for the formats whose Pillow plugin decodes or allocates while *opening*,
before ``images``' pixel guard could look at ``im.size``. Torch-free.

* ICO: ``IcoImageFile._open`` decodes its largest entry at once, and an entry is a whole PNG or BMP of any
  size (the directory's own sizes stop at 256): a 656 KB icon holding a 9000x9000 PNG costs ~600 MB before
  any check. Every entry's own header is read here.
* WebP: the decoder Pillow creates on opening allocates the whole canvas, checked only against Pillow's
  process-wide limit (2 x 89 Mpixels): the canvas size is read from the first chunk.

Every other format in ``images.READ_FORMATS`` reads only its header when opened (Pillow 13; a test opens
each format Pillow can write with decoding switched off). A size that cannot be read is a ValueError: the
file is refused, never decoded unchecked.
"""
from __future__ import annotations

import struct
from typing import BinaryIO

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def ico_sizes(fp: BinaryIO) -> list[tuple[int, int]]:
    """The size each ICO entry decodes to, from the PNG or BMP header at its offset."""
    fp.seek(0)
    head = fp.read(6)
    count = struct.unpack_from("<H", head, 4)[0]
    directory = fp.read(16 * count)
    if len(directory) < 16 * count:
        raise ValueError("its directory is truncated")
    sizes = []
    for i in range(count):
        fp.seek(struct.unpack_from("<I", directory, 16 * i + 12)[0])
        sizes.append(_entry_size(fp.read(24), i))
    return sizes


def _entry_size(data: bytes, i: int) -> tuple[int, int]:
    if data[:8] == PNG_MAGIC:
        if len(data) == 24 and data[12:16] == b"IHDR":
            return struct.unpack_from(">II", data, 16)
    elif len(data) >= 12:
        header_size = struct.unpack_from("<I", data)[0]
        if header_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
            w, h = struct.unpack_from("<HH", data, 4)
        elif 16 <= header_size <= 1024:  # BITMAPINFOHEADER and its successors
            w, h = struct.unpack_from("<ii", data, 4)
        else:
            raise ValueError(f"entry {i} has a BMP header of {header_size} bytes")
        return abs(w), abs(h) // 2  # the height counts the AND mask's rows too: Pillow decodes half
    raise ValueError(f"entry {i} holds neither a PNG nor a BMP header")


def webp_sizes(fp: BinaryIO) -> list[tuple[int, int]]:
    """The canvas size in a WebP's first chunk (as Pillow's own pre-check reads it)."""
    fp.seek(0)
    s = fp.read(30)
    chunk = s[12:16]
    if chunk == b"VP8 " and len(s) == 30 and s[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack_from("<HH", s, 26)
        return [(w & 0x3FFF, h & 0x3FFF)]
    if chunk == b"VP8X" and len(s) == 30:
        return [(int.from_bytes(s[24:27], "little") + 1, int.from_bytes(s[27:30], "little") + 1)]
    if chunk == b"VP8L" and len(s) >= 25 and s[20] == 0x2F:
        bits = struct.unpack_from("<I", s, 21)[0]
        return [((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)]
    raise ValueError("its first chunk gives no canvas size")


# Pillow format -> the sizes its plugin decodes or allocates while opening a file
BEFORE_OPEN = {"ICO": ico_sizes, "WEBP": webp_sizes}
