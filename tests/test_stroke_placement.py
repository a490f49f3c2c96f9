"""The stroke-placement metric behaves as defined, and the benchmark script runs end to end."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

from dinstyle.io.images import save_image, tensor_to_pil
from dinstyle.eval.stroke import content_masks, stroke_placement
from dinstyle.eval.stroke_shapes import KINDS, synthetic_image, synthetic_set
from dinstyle.models import create_model, save_model
from conftest import TINY



def noise(shape, seed=0, amp=0.15):
    return amp * torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kind", KINDS)
def test_synthetic_images_are_deterministic_and_mostly_flat(kind):
    a, b = synthetic_image(kind, 96, seed=3), synthetic_image(kind, 96, seed=3)
    assert a.shape == (1, 3, 96, 96) and torch.equal(a, b) and 0 <= a.min() and a.max() <= 1
    assert not torch.equal(a, synthetic_image(kind, 96, seed=4))
    flat, structure = content_masks(a)
    assert not (flat & structure).any()
    assert 0.2 < flat.float().mean() < 0.95 and structure.float().mean() > 0.02


def test_placement_figures_follow_their_definition():
    content = synthetic_image("shapes", 128, seed=1)
    flat, structure = content_masks(content)
    untouched = stroke_placement(content, content)[0]  # the content has no texture in flat regions
    assert untouched.placement < 1e-6 and untouched.coverage == 0 and untouched.structure_rms > 0
    everywhere = stroke_placement((content + noise(content.shape)).clamp(0, 1), content)[0]
    assert everywhere.placement > 0.5 and everywhere.coverage > 0.95
    edges_only = stroke_placement((content + noise(content.shape) * structure).clamp(0, 1), content)[0]
    flat_only = stroke_placement((content + noise(content.shape) * flat).clamp(0, 1), content)[0]
    assert edges_only.placement < 0.1 < 1 < flat_only.placement
    assert edges_only.coverage < 0.05 and flat_only.coverage > 0.95
    # a batch gives one score per image; a constant content has no structure: NaN, not an error
    both = stroke_placement(torch.cat([content, torch.full_like(content, 0.5)]),
                            torch.cat([content, torch.full_like(content, 0.5)]))
    assert len(both) == 2 and math.isnan(both[1].placement)
    with pytest.raises(ValueError, match="size"):
        stroke_placement(content[..., :64], content)


def _load_benchmark():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "stroke_placement.py"
    spec = importlib.util.spec_from_file_location("stroke_placement_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_script_end_to_end(tmp_path, capsys):
    bench = _load_benchmark()
    for i, arch in enumerate(("din-mobilenet-vgg", "din-mobilenet-vgg-deform")):
        torch.manual_seed(i)
        save_model(create_model(arch, **TINY), tmp_path / f"{arch}.safetensors")
    styles = tmp_path / "styles"
    styles.mkdir()
    save_image(tensor_to_pil(torch.rand(1, 3, 40, 48)), styles / "noise.png")
    (styles / "broken.jpg").write_bytes(b"not an image")
    argv = ["--model", str(tmp_path / "din-mobilenet-vgg.safetensors"),
            "--model", "deform=" + str(tmp_path / "din-mobilenet-vgg-deform.safetensors"), "--style", str(styles),
            "--size", "64", "--style-size", "48", "--per-kind", "1", "--json", "--grid", str(tmp_path / "g.png")]
    assert bench.main(argv) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert "broken.jpg" in err and len(result["skipped"]) == 1
    assert set(result["models"]) == {argv[1], "deform"}
    assert result["models"]["deform"]["model"] == "din-mobilenet-vgg-deform:din-mobilenet-vgg-deform.safetensors"
    for r in result["models"].values():
        assert r["trained"] and len(r["pairs"]) == len(synthetic_set(64, 1)) * 1
        assert 0 <= r["mean"]["coverage"] <= 1 and r["mean"]["placement"] >= 0
    assert (tmp_path / "g.png").stat().st_size > 0
    table = bench.markdown(result["models"])
    assert "| deform | yes |" in table and "placement" in table and "Untrained" not in table
    assert bench.main(["--model", argv[1], "--style", str(styles / "broken.jpg")]) == 1
    assert "no readable style" in capsys.readouterr().err
