"""The one style-code cache (issue 27): bounded, least recently used out first, and the server uses the
Stylizer's own (no second cache, no unbounded file-hash map)."""
import io

import numpy as np
import pytest
from PIL import Image

from dinstyle.api import Stylizer
from dinstyle.runtime.codecache import CodeCache
from dinstyle.serve.service import StyleService, Upload
from conftest import tiny_model_file


def test_the_cache_keeps_its_bound_and_drops_the_least_recently_used():
    cache, made = CodeCache(2), []
    make = lambda v: lambda: made.append(v) or v  # noqa: E731
    assert cache.get_or_make("a", make(1)) == 1 and not cache.last_hit
    cache.get_or_make("b", make(2))
    assert cache.get_or_make("a", make(0)) == 1 and cache.last_hit  # "a" is now the most recent
    cache.get_or_make("c", make(3))  # over the bound: "b" goes
    assert len(cache) == 2 and made == [1, 2, 3]
    assert cache.get_or_make("b", make(4)) == 4 and not cache.last_hit and len(cache) == 2
    with pytest.raises(ValueError):
        CodeCache(0)


def _png(seed: int) -> bytes:
    a = (np.random.default_rng(seed).random((40, 48, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def test_stylizer_and_server_share_one_bounded_cache(tmp_path):
    st = Stylizer.from_pretrained(str(tiny_model_file(tmp_path / "tiny.safetensors")), "cpu")
    st.codes = CodeCache(3)
    files = []
    for i in range(3):
        files.append(tmp_path / f"s{i}.png")
        files[-1].write_bytes(_png(i))
    for f in files:  # each file: its hash and its code, both in the one cache
        st.encode_style(f, 32)
    assert len(st.codes) == 3  # six entries made, three kept: the file hashes are bounded too
    service = StyleService(st)
    assert not hasattr(service, "_codes")
    up = Upload("mine.png", _png(7))
    first, hit1 = service.encode_style(up, 32)
    again, hit2 = service.encode_style(up, 32)
    other, hit3 = service.encode_style(up, 48)
    assert (hit1, hit2, hit3) == (False, True, False) and again is first
    assert service.cached_styles == len(st.codes) == 3
    assert st.encode_style(files[0], 32) is not None and len(st.codes) == 3


def test_an_uploads_decode_keeps_the_callers_pixel_guard(tmp_path):
    """A style the server hands over (hashed, header already checked) is decoded under the pixel guard it came
    with, the server's own ``--max-pixels``, not the library default: one guard for the header and the decode."""
    from dinstyle.errors import DinstyleError
    from dinstyle.runtime.sources import IMAGE, StyleSource

    st = Stylizer.from_pretrained(str(tiny_model_file(tmp_path / "tiny.safetensors")), "cpu")
    data = _png(3)  # 48 x 40 = 1920 pixels
    with pytest.raises(DinstyleError, match="pixels"):
        st.encode_style(StyleSource(IMAGE, data, "small-guard.png", sha256="a", max_pixels=1000), 32)
    assert st.encode_style(StyleSource(IMAGE, data, "big-guard.png", sha256="b", max_pixels=2000), 32) is not None
