"""The photo and style trees: listing them, reading a file's bytes, and naming each output.

A tree is a local folder or a URI that pyarrow reads (``s3://bucket/photos``, ``gs://...``; pyarrow
comes with the ``ray`` extra). Entries are sorted by relative path (POSIX separators), the key that
seeds every draw; hidden files and folders are left out (they include our own temporary files).
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path, PurePosixPath

from ..errors import DinstyleError, UsageError
from ..io.images import image_extensions, output_format


def is_uri(location: str) -> bool:
    return "://" in str(location) and not str(location).startswith("file://")


def _local(location: str) -> Path:
    s = str(location)
    return Path(s[len("file://"):] if s.startswith("file://") else s)


@lru_cache(maxsize=16)
def _filesystem(uri: str):
    """(pyarrow filesystem, path inside it) for ``uri``; one filesystem object per process and URI."""
    try:
        from pyarrow import fs
    except ImportError:
        raise UsageError(f"{uri}: reading URIs needs pyarrow (pip install 'dinstyle[ray]')") from None
    try:
        return fs.FileSystem.from_uri(uri)
    except Exception as e:  # unknown scheme, no credentials, ...
        raise UsageError(f"{uri}: cannot open ({str(e).splitlines()[0][:160]})") from None


def list_images(location: str, exclude: Path | None = None) -> list[tuple[str, str]]:
    """(relative POSIX path, readable source) of every image under ``location``, sorted by relative path.
    ``exclude``: a local folder to leave out (the output folder, when it lies inside the photos)."""
    exts = image_extensions()
    found = []
    if is_uri(location):
        from pyarrow import fs

        filesystem, root = _filesystem(str(location).rstrip("/"))
        infos = filesystem.get_file_info(fs.FileSelector(root, recursive=True, allow_not_found=False))
        scheme = str(location).split("://", 1)[0]
        for info in infos:
            rel = PurePosixPath(info.path).relative_to(root)
            if info.type == fs.FileType.File and _wanted(rel.parts, exts):
                found.append((rel.as_posix(), f"{scheme}://{info.path}"))
        return sorted(found)
    root = _local(location)
    if not root.is_dir():
        raise UsageError(f"{location}: no such folder")
    skip = exclude.resolve() if exclude is not None else None
    seen: set[tuple[int, int]] = set()
    # links are followed (datasets are often assembled from linked class folders), each folder once: a
    # link to a parent would otherwise loop forever
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        st = here.stat()
        if (skip is not None and here.resolve() == skip) or (st.st_dev, st.st_ino) in seen:
            dirnames[:] = []  # never feed our own outputs back in
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            rel = (here / name).relative_to(root)
            if _wanted(rel.parts, exts):
                found.append((rel.as_posix(), str(here / name)))
    return sorted(found)


def _wanted(parts: tuple[str, ...], exts: set[str]) -> bool:
    return not any(p.startswith(".") for p in parts) and PurePosixPath(parts[-1]).suffix.lower() in exts


def read_bytes(src: str) -> bytes:
    """The bytes of a listed file, local or remote; failures are one-line DinstyleErrors."""
    try:
        if not is_uri(src):
            return _local(src).read_bytes()
        scheme, rest = src.split("://", 1)
        filesystem, _ = _filesystem(f"{scheme}://{rest.split('/', 1)[0]}")
        with filesystem.open_input_file(rest) as f:
            return f.readall()
    except FileNotFoundError:
        raise DinstyleError(f"{src}: no such file (removed during the run?)") from None
    except PermissionError:
        raise DinstyleError(f"{src}: permission denied") from None
    except OSError as e:
        raise DinstyleError(f"{src}: cannot read ({e.strerror or str(e).splitlines()[0][:120]})") from None


def output_rel(rel: str, variant: int, per_image: int, fmt: str | None) -> tuple[str, str]:
    """(relative output path, Pillow format). The photo's own path and extension; ``fmt`` replaces the
    extension, and a format Pillow cannot write becomes .png. With several styles per photo, the
    outputs are ``NAME_style0.EXT``, ``NAME_style1.EXT``, ... beside each other (same class folder)."""
    p = PurePosixPath(rel)
    ext = "." + fmt.lower().lstrip(".") if fmt else p.suffix
    try:
        pil = output_format(Path("x" + ext))
    except DinstyleError:
        ext, pil = ".png", "PNG"
    stem = p.stem if per_image == 1 else f"{p.stem}_style{variant}"
    return (p.parent / (stem + ext)).as_posix(), pil
