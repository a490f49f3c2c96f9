"""Issue 23, items 5 and 6: crafted model files and metadata. A model file's config is checked for types and
ranges before any model is built (``models/config_check.py``), in-range values that combine into a huge model
are caught on the meta device (``registry.load_model_file``), and metadata JSON is bounded in depth and size
(``io/metadata.py``) for every reader: stylize, encode-style and the torch-free lite."""
from __future__ import annotations

import dataclasses
import json
import struct
import typing

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from dinstyle.cli import main
from dinstyle.errors import DinstyleError
from dinstyle.io.tensorfiles import WeightsError
from dinstyle.models import registry
from dinstyle.models.config_check import INT_RANGES, config_problem

from conftest import TINY, TINY_FAST

TINY_CONFIGS = {
    "din-mobilenet": dict(widths=(8, 16), res_blocks=1),
    "din-mobilenet-vgg": TINY,
    "din-fast": TINY_FAST,
    "din-magenta": dict(widths=(8, 16, 32), res_blocks=1),
    "din-vgg": dict(style_encoder="random-vgg19", widths=(8, 8, 16, 16), din_groups=(4, 4), style_hidden=16),
    "adain": dict(style_encoder="random-vgg19"),
}
DEEP = "[" * 100_000 + "]" * 100_000  # json.loads: RecursionError


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Each architecture's tiny model file: path -> (tensors, metadata strings)."""
    d = tmp_path_factory.mktemp("archs")
    out = {}
    for arch, cfg in TINY_CONFIGS.items():
        torch.manual_seed(0)
        registry.save_model(registry.create_model(arch, **cfg), d / f"{arch}.safetensors")
        with safe_open(str(d / f"{arch}.safetensors"), framework="pt") as f:
            out[arch] = (d / f"{arch}.safetensors", {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata()))
    return out


@pytest.fixture
def no_build(monkeypatch):
    """Fails a test as soon as any model (even a meta-device one) starts to be built."""
    def built(*a, **k):
        raise AssertionError("a model was built from a config that should have been refused first")
    monkeypatch.setattr(registry, "create_model", built)


def with_config(saved, arch, path, tensors=None, **changes):
    """``arch``'s tiny file with config values changed (its own tensors, or ``tensors``)."""
    _, real, md = saved[arch]
    save_file(real if tensors is None else tensors, str(path),
              metadata={**md, "config": json.dumps({**json.loads(md["config"]), **changes})})
    return path


def mutations(kind, default) -> list:
    """Wrong types, negative and huge values for a field of type ``kind``."""
    huge, wrong = 2 ** 64, [None, "3", 2.5, 1e7, True, [1]]
    if kind is int:
        return [*wrong, -1, huge]
    if kind is bool:
        return [None, 1, "true", [True]]
    if kind is str:
        return [None, 5, ["vgg19"], "x" * 5000]
    head = list(default[:-1])  # a tuple of ints
    return [None, 5, "8,8", [1] * (len(default) + 1), head + [-1], head + [huge], head + ["8"], head + [8.0]]


def one_line_weights_error(path, words: str) -> str:
    with pytest.raises(WeightsError) as e:
        registry.load_model_file(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(path)) and words in msg, msg
    return msg


@pytest.mark.parametrize("arch", TINY_CONFIGS)
def test_every_config_field_is_checked_before_any_build(saved, arch, tmp_path, monkeypatch):
    assert registry.load_model_file(saved[arch][0]).arch == arch  # the file itself is fine
    monkeypatch.setattr(registry, "create_model", lambda *a, **k: pytest.fail("built before the check"))
    cls = registry.ARCHS[arch][1]
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        default = getattr(cls(), f.name)
        for i, bad in enumerate(mutations(hints[f.name], default)):
            path = with_config(saved, arch, tmp_path / f"{f.name}-{i}.safetensors", {"x": torch.zeros(1)},
                               **{f.name: bad})
            one_line_weights_error(path, f"model file config: {f.name} must be")


def test_every_arch_default_passes_and_every_int_field_has_a_range():
    for arch, (_, cls, preset) in registry.ARCHS.items():
        values = {**dataclasses.asdict(cls()), **preset}
        assert config_problem(cls, values) is None, arch
        for name, kind in typing.get_type_hints(cls).items():
            if kind is int or typing.get_origin(kind) is tuple:
                assert name in INT_RANGES, f"{arch}.{name} has no range in models/config_check.py"


@pytest.mark.parametrize("arch,field,value", [("din-mobilenet-vgg", "res_blocks", 10 ** 7),
                                              ("din-magenta", "widths", [8, 16, -32]),
                                              ("din-fast", "style_size", 10 ** 9)])
def test_stylize_refuses_a_bad_config_in_one_line(saved, tmp_path, capsys, no_build, arch, field, value):
    bad = with_config(saved, arch, tmp_path / "bad.safetensors", **{field: value})
    photo = tmp_path / "a.png"
    Image.fromarray((np.random.default_rng(1).random((32, 48, 3)) * 255).astype(np.uint8)).save(photo)
    rc = main(["stylize", str(photo), "--style", str(photo), "--model", str(bad), "-o", str(tmp_path / "o.png")])
    err = capsys.readouterr().err
    assert rc == 1 and len(err.strip().splitlines()) == 1 and f"{field} must be" in err, err
    assert "internal error" not in err and not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("arch,changes", [
    ("din-fast", dict(widths=[1024] * 3, out_width=1024, din_kernel=15, din_groups=[1, 1, 1], style_hidden=1024)),
    ("din-magenta", dict(widths=[1024] * 3, res_blocks=64, din_kernel=15, din_group_size=1024)),
    ("din-mobilenet", dict(widths=[1024] * 2, res_blocks=64, din_kernel=15, din_group_size=1024))])
def test_in_range_values_that_make_a_huge_model_are_refused_on_the_meta_device(saved, tmp_path, monkeypatch,
                                                                              arch, changes):
    """Terabytes of weights from values each in range: only a meta-device model may be built."""
    devices, real = [], registry.create_model

    def spy(*a, **k):
        devices.append(torch.empty(0).device.type)
        assert devices[-1] == "meta", "a real build started: it would allocate terabytes"
        return real(*a, **k)

    monkeypatch.setattr(registry, "create_model", spy)
    msg = one_line_weights_error(with_config(saved, arch, tmp_path / "big.safetensors", **changes), "")
    assert "has shape" in msg or "weights do not match" in msg
    assert devices == ["meta"]


@pytest.mark.parametrize("arch,changes,words", [("din-mobilenet", dict(block="bogus"), "block must be one of"),
                                                ("din-fast", dict(din_groups=[7, 7, 7]), "divisible")])
def test_values_the_model_itself_refuses_are_one_line(saved, tmp_path, arch, changes, words):
    msg = one_line_weights_error(with_config(saved, arch, tmp_path / "m.safetensors", **changes), words)
    assert f"does not describe a {arch} model" in msg


# ----------------------------------------------------------------------------------- item 6: metadata JSON
@pytest.fixture
def inputs(saved, tmp_path):
    model = saved["din-mobilenet-vgg"][0]
    photo = tmp_path / "a.png"
    Image.fromarray((np.random.default_rng(2).random((32, 48, 3)) * 255).astype(np.uint8)).save(photo)
    code = tmp_path / "code.safetensors"
    assert main(["encode-style", str(photo), "--model", str(model), "-o", str(code), "--style-size", "48"]) == 0
    return model, photo, code


def resave(src, dst, **meta):
    with safe_open(str(src), framework="pt") as f:
        tensors, md = {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())
    save_file(tensors, str(dst), metadata={**md, **meta})
    return dst


@pytest.mark.parametrize("meta,words", [({"info": DEEP}, "nested more than 32 deep"),
                                        ({"notes": DEEP}, "nested more than 32 deep"),
                                        ({"notes": json.dumps(["x" * (1 << 20)])}, "over 1024 KB")])
def test_crafted_metadata_is_one_line_in_stylize_and_encode_style(inputs, tmp_path, capsys, meta, words):
    model, photo, code = inputs
    bad_model = resave(model, tmp_path / "m.safetensors", **meta)
    bad_code = resave(code, tmp_path / "c.safetensors", **meta)
    runs = {"m.safetensors": ["stylize", str(photo), "--style", str(code), "--model", str(bad_model)],
            "c.safetensors": ["stylize", str(photo), "--style", str(bad_code), "--model", str(model)],
            "m.safetensors ": ["encode-style", str(photo), "--model", str(bad_model)]}
    for name, args in runs.items():
        capsys.readouterr()
        rc = main([*args, "-o", str(tmp_path / "out.safetensors" if args[0] == "encode-style" else tmp_path / "o.png")])
        err = capsys.readouterr().err
        assert rc != 0 and len(err.strip().splitlines()) == 1 and name.strip() in err and words in err, err
        assert "internal error" not in err
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "out.safetensors").exists()


def test_lite_reads_crafted_metadata_and_headers_in_one_line(inputs, tmp_path):
    from dinstyle.lite import read_safetensors, read_style_code

    bad_code = resave(inputs[2], tmp_path / "c.safetensors", notes=DEEP)
    with pytest.raises(DinstyleError, match="c.safetensors: metadata 'notes': JSON nested more than 32 deep"):
        read_style_code(bad_code)
    header = ('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": ' + DEEP + "}").encode()
    (tmp_path / "h.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(4))
    with pytest.raises(DinstyleError, match="h.safetensors: JSON nested more than 32 deep"):
        read_safetensors(tmp_path / "h.safetensors")
    assert read_style_code(inputs[2])[1]["format"] == "dinstyle-style-code"  # a real code still reads
