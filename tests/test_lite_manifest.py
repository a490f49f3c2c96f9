"""Issue 23 item 7: an exported model directory is untrusted input. Its manifest's fields are checked for type
and range before anything uses them, and no graph file outside the directory is ever opened."""
from __future__ import annotations

import json
import os
import shutil

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from dinstyle.errors import DinstyleError  # noqa: E402
from dinstyle.lite import LiteModel, read_manifest  # noqa: E402
from dinstyle.lite.__main__ import main as lite_main  # noqa: E402
from conftest import tiny_model_file  # noqa: E402


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """A real export of a tiny model (unchecked: the graphs are not what is tested here)."""
    from dinstyle.export import export_onnx
    from dinstyle.models import load_model

    d = tmp_path_factory.mktemp("manifest")
    export_onnx(load_model(str(tiny_model_file(d / "tiny.safetensors"))), d / "onnx", check=False)
    return d / "onnx"


def _with_manifest(export, target, change) -> dict:
    """``target``: a model directory holding the export's manifest, changed by ``change(manifest)``."""
    manifest = json.loads((export / "manifest.json").read_text())
    change(manifest)
    target.mkdir(parents=True, exist_ok=True)
    (target / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def _set(path: str, value):
    def change(m: dict) -> None:
        *parents, last = path.split("/")
        node = m
        for p in parents:
            node = node[p]
        node[last] = value
    return change


def _first_code(field: str, value):
    def change(m: dict) -> None:
        m["code_inputs"][m["code_keys"][0]][field] = value
    return change


BAD = {  # name: (change, words in the error)
    "style_size as text": (_set("style_size", "256"), "style_size must be a whole number"),
    "style_size huge": (_set("style_size", 10**9), "style_size must be a whole number from 0 to 8192"),
    "style_size bool": (_set("style_size", True), "style_size"),
    "style_size float": (_set("style_size", 256.5), "style_size"),
    "min_size huge": (_set("min_size", 10**9), "min_size"),
    "pad_multiple zero": (_set("pad_multiple", 0), "pad_multiple"),
    "min_style_size negative": (_set("min_style_size", -5), "min_style_size"),
    "code_keys a string": (_set("code_keys", "din1.weight"), "code_keys"),
    "code_keys empty": (_set("code_keys", []), "code_keys"),
    "code_keys repeated": (lambda m: m.update(code_keys=[m["code_keys"][0]] * 2), "code_keys"),
    "code_inputs missing one": (lambda m: m["code_inputs"].pop(m["code_keys"][0]), "code_inputs"),
    "code shape negative": (_first_code("shape", [1, -3]), "code_inputs"),
    "code shape huge": (_first_code("shape", [1, 10**12]), "code_inputs"),
    "code shape text": (_first_code("shape", "1x8"), "code_inputs"),
    "code name not text": (_first_code("name", 5), "code_inputs"),
    "model_id not text": (_set("model_id", 5), "model_id must be a string"),
    "weights not text": (_set("weights", ["a"]), "weights must be a string"),
    "content a string": (_set("content", "content.onnx"), "content must be an object"),
    "graph file missing": (lambda m: m["style_encoder"].pop("file"), "style_encoder: a graph file must be named"),
    "graph file a number": (_set("content/file", 3), "content: a graph file must be named"),
    "parent path": (_set("content/file", "../x.onnx"), "lies outside the model directory"),
    "parent inside a path": (_set("style_encoder/file", "sub/../../x.onnx"), "lies outside the model directory"),
    "absolute path": (_set("content/file", "/tmp/x.onnx"), "lies outside the model directory"),
    "int8 outside": (_set("int8", {"file": "../q.onnx"}), "int8: graph file"),
    "missing field": (lambda m: m.pop("min_size"), "manifest lacks min_size"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_manifest_field_is_a_one_line_error(export, tmp_path, capsys, case):
    change, words = BAD[case]
    d = tmp_path / "model"
    _with_manifest(export, d, change)
    with pytest.raises(DinstyleError) as e:
        LiteModel(d)
    assert words in str(e.value) and "\n" not in str(e.value), str(e.value)
    style = export.parent / "tiny.safetensors"  # any existing file: the manifest is refused first
    assert lite_main(["--model-dir", str(d), "--style", str(style), str(style), "-o", str(tmp_path / "o.png")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err and "internal error" not in err, err


def test_symlinked_graph_leading_outside_is_refused(export, tmp_path):
    d = tmp_path / "model"
    _with_manifest(export, d, lambda m: None)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(export / "content.onnx", outside / "content.onnx")
    shutil.copy(export / "style_encoder.onnx", d / "style_encoder.onnx")
    os.symlink(outside / "content.onnx", d / "content.onnx")  # a file link
    with pytest.raises(DinstyleError, match="content.onnx' links outside the model directory"):
        LiteModel(d)
    os.unlink(d / "content.onnx")
    os.symlink(outside, d / "sub")  # a folder link on the way
    _with_manifest(export, d, _set("content/file", "sub/content.onnx"))
    with pytest.raises(DinstyleError, match="links outside the model directory"):
        read_manifest(d)


def test_symlinks_inside_the_directory_are_fine(export, tmp_path):
    d = tmp_path / "model"
    _with_manifest(export, d, _set("content/file", "graphs/content.onnx"))
    (d / "graphs").mkdir()
    shutil.copy(export / "content.onnx", d / "real.onnx")
    shutil.copy(export / "style_encoder.onnx", d / "style_encoder.onnx")
    os.symlink(d / "real.onnx", d / "graphs" / "content.onnx")
    model = LiteModel(d)
    assert model.content_session is not None and model.style_session is not None


def test_a_caller_content_file_is_held_to_the_same_rule(export, tmp_path):
    with pytest.raises(DinstyleError, match="lies outside the model directory"):
        LiteModel(export, content_file="../tiny.safetensors")


def test_deep_or_huge_manifests_are_refused_without_reading_them_whole(export, tmp_path):
    d = tmp_path / "deep"
    d.mkdir()
    (d / "manifest.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(DinstyleError, match="nested too deeply"):
        read_manifest(d)
    (d / "manifest.json").write_text(" " * (2 << 20) + "{}")
    with pytest.raises(DinstyleError, match="larger than 1024 KB"):
        read_manifest(d)


def test_the_exporters_manifest_passes(export):
    manifest = read_manifest(export)
    assert manifest["content"]["file"] == "content.onnx" and manifest["style_size"] == 512  # no style_size of its own
