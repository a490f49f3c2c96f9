"""The VGG-statistics rank judges, alpha=0 fidelity and the held-out split of `dinstyle eval`, on
generated images and random-VGG backbones (no downloaded weights, no Magenta)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dinstyle.defaults import DITHER
from dinstyle.runtime.runner import dithered
from PIL import Image

from dinstyle.backbones import create_backbone
from dinstyle.cli import main
from dinstyle.eval import metrics as M
from dinstyle.eval.judges import VGGStatsJudge, from_hwc, own_style_ranks
from dinstyle.eval.report import markdown_table
from dinstyle.eval.run import EvalSet, Method, Pair, model_method, run_alpha0, score_method
from dinstyle.io.holdout import is_held_out
from dinstyle.models import create_model, save_model
from dinstyle.runtime.engine import engine_input  # the layout the runner runs in
from conftest import TINY
from test_eval_metrics import smooth_image, textures

PERM = [1, 2, 0, 4, 5, 3]  # no fixed point: every output is a copy of *another* index's style


@pytest.fixture(scope="module")
def net():
    return create_backbone("random-vgg19")


@pytest.fixture(scope="module")
def styles():
    return [from_hwc(0.2 + 0.6 * t) for t in textures(64)]  # kept inside the gamut: recolouring stays exact-ish


@pytest.mark.parametrize("normalised", [False, True])
def test_copy_of_style_j_ranks_j_first(net, styles, normalised):
    judge = VGGStatsJudge(net, styles, palette_normalised=normalised)
    sv = judge.vectors(styles)
    outs = judge.vectors([styles[k] for k in PERM])
    assert own_style_ranks(outs, sv, PERM).tolist() == [1] * len(styles)
    # judged against the wrong "own" styles, no output is ranked first: the ranks can fail
    assert (own_style_ranks(outs, sv, range(len(styles))) > 1).all()


@pytest.mark.parametrize("normalised", [False, True])
def test_taps_weigh_about_equally(net, styles, normalised):
    judge = VGGStatsJudge(net, styles, palette_normalised=normalised)
    assert judge.taps == ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
    blocks = judge.blocks(styles)
    raw = [np.mean(np.sum(blocks[t] ** 2, 1)) for t in judge.taps]
    assert max(raw) / min(raw) > 10  # unscaled, the taps differ a lot (size and feature scale)...
    for t in judge.taps:  # ...scaled, each tap's block has squared norm 1 on average over the references
        assert blocks[t].shape == (len(styles), 2 * net.tap_channels[t])
        assert np.mean(np.sum((blocks[t] / judge.scales[t]) ** 2, 1)) == pytest.approx(1.0, rel=1e-6)
    assert judge.vectors(styles).shape == (len(styles), sum(2 * net.tap_channels[t] for t in judge.taps))


def test_palette_normalised_judge_sees_texture_not_colour(net, styles):
    """Style k recoloured with style k+1's palette: the raw judge follows the palette donor, the texture
    judge the texture's owner."""
    n = len(styles)
    recoloured = [M.color_transfer(styles[k], styles[(k + 1) % n]) for k in range(n)]
    owner, donor = list(range(n)), [(k + 1) % n for k in range(n)]
    raw, tex = VGGStatsJudge(net, styles), VGGStatsJudge(net, styles, palette_normalised=True)
    raw_v, tex_v = raw.vectors(recoloured), tex.vectors(recoloured)
    raw_sv, tex_sv = raw.vectors(styles), tex.vectors(styles)
    assert own_style_ranks(raw_v, raw_sv, donor).mean() < own_style_ranks(raw_v, raw_sv, owner).mean()
    tex_owner = own_style_ranks(tex_v, tex_sv, owner)
    assert tex_owner.mean() < own_style_ranks(tex_v, tex_sv, donor).mean()
    assert (tex_owner == 1).mean() >= 0.5 and tex_owner.mean() < (n + 1) / 2


def _eval_set(styles, contents) -> EvalSet:
    pairs = [Pair(Path(f"c{i}.png"), Path(f"s{i}.png"), c, i) for i, c in enumerate(contents)]
    return EvalSet(pairs, [Path(f"s{i}.png") for i in range(len(styles))], list(styles), [])


def test_score_method_reports_vgg_judges_and_alpha0(net, styles):
    from dinstyle.eval.run import build_judges

    contents = [smooth_image(20 + i) for i in range(len(styles))]
    data = _eval_set(styles, contents)
    judges = build_judges(data, net, torch.device("cpu"), magenta=None)  # no Magenta: VGG judges only
    assert [j.name for j in judges] == ["vggstats", "vggtexture"]
    ident = Method("copy-style", lambda c, s: s.clone(), alpha0=lambda c, s: c.clone())
    outs = [s.clone() for s in styles]  # each output is its own style: rank 1 everywhere
    r = score_method(ident, outs, 0.0, data, net, torch.device("cpu"), judges, run_alpha0(ident, data))
    for name in ("vggstats", "vggtexture"):
        assert r[f"{name}_top1"] == 1.0 and r[f"{name}_mean_rank"] == 1.0
        assert [p[f"{name}_rank"] for p in r["per_pair"]] == [1] * len(styles)
    assert r["alpha0_ssim"] == pytest.approx(1.0, abs=1e-6) and r["alpha0_l1"] == pytest.approx(0.0, abs=1e-7)
    assert r["chance_mean_rank"] == (len(styles) + 1) / 2
    # a method whose outputs are other styles and whose alpha=0 is noisy scores worse on both
    g = torch.Generator().manual_seed(0)
    noisy = Method("wrong", lambda c, s: s,
                   alpha0=lambda c, s: (c + 0.2 * torch.randn(c.shape, generator=g)).clamp(0, 1))
    r2 = score_method(noisy, [styles[k] for k in PERM], 0.0, data, net, torch.device("cpu"), judges,
                      run_alpha0(noisy, data))
    assert r2["vggstats_top1"] == 0.0 and r2["vggstats_mean_rank"] > 1
    assert r2["alpha0_ssim"] < 0.9 and r2["alpha0_l1"] > 0.05
    # methods without alpha (Magenta, colour transfer) get no alpha0 columns; the table shows "–"
    plain = Method("plain", lambda c, s: c)
    assert run_alpha0(plain, data) is None
    r3 = score_method(plain, contents, 0.0, data, net, torch.device("cpu"), judges, None)
    assert "alpha0_ssim" not in r3 and "alpha0_l1" not in r3
    common = {"metric_net": "random-vgg19", "size": 64, "seed": 0, "device": "cpu"}
    table = markdown_table([{**r, **common}, {**r3, **common}])
    head, _, first, second = table.splitlines()[:4]
    for h in ("VGG-stats top-1", "VGG-stats rank", "VGG-texture top-1", "VGG-texture rank", "α=0 SSIM", "α=0 L1"):
        assert h in head
    assert "judge top-1" not in head  # no Magenta, no Magenta columns
    assert first.split(" | ")[-3:-1] == ["1.000", "0.0000"] and second.split(" | ")[-3:-1] == ["–", "–"]


def test_model_method_alpha0_is_the_model_at_alpha_zero(tmp_path):
    torch.manual_seed(0)
    model = create_model("din-mobilenet-vgg", **TINY).eval()
    save_model(model, tmp_path / "m.safetensors")
    method = model_method(str(tmp_path / "m.safetensors"), torch.device("cpu"))
    assert method.alpha0 is not None
    c, s = smooth_image(30, 32), smooth_image(31, 32)
    with torch.no_grad():
        code = model.encode_style(s)
        cd = dithered(c, DITHER)  # what every pass sees (runtime/runner.py)
        want0 = model.stylize(engine_input(cd), code, alpha=0.0).clamp(0, 1)
        want1 = model.stylize(engine_input(cd), code).clamp(0, 1)
    assert torch.allclose(method.alpha0(c, s), want0, atol=1e-5)
    assert torch.allclose(method.stylize(c, s), want1, atol=1e-5)
    assert not torch.allclose(want0, want1, atol=1e-3)  # alpha really changes the output


def _names(role: str, held: bool, k: int) -> list[str]:
    out, i = [], 0
    while len(out) < k:
        name = f"{role}{i:03d}.png"
        if is_held_out(name) == held:
            out.append(name)
        i += 1
    return out


@pytest.fixture(scope="module")
def split_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("heldout")
    rng = np.random.default_rng(1)
    names = {}
    for role in ("c", "s"):
        (root / role).mkdir()
        names[role] = (_names(role, True, 2), _names(role, False, 3))
        for name in names[role][0] + names[role][1]:
            Image.fromarray(rng.integers(0, 255, (36, 36, 3), dtype=np.uint8)).save(root / role / name)
    (root / "none").mkdir()
    for name in names["s"][1]:
        Image.fromarray(rng.integers(0, 255, (36, 36, 3), dtype=np.uint8)).save(root / "none" / name)
    torch.manual_seed(0)
    save_model(create_model("din-mobilenet-vgg", **TINY), root / "tiny.safetensors")
    return root, names


def _run(capsys, root, *extra):
    argv = ["eval", "--model", f"tiny={root / 'tiny.safetensors'}", "--content", str(root / "c"), "--style",
            str(root / "s"), "--pairs", "5", "--size", "32", "--metric-net", "random-vgg19", "--color-transfer",
            "--json", *extra]
    code = main(argv)
    out, err = capsys.readouterr()
    return code, [json.loads(x) for x in out.splitlines() if x.startswith("{")], err


def test_held_out_flag_filters_files(split_folders, capsys, monkeypatch):
    import dinstyle.eval.judges as J

    monkeypatch.setattr(J, "magenta_available", lambda: False)  # the VGG judges work without Magenta
    root, names = split_folders
    code, rows, err = _run(capsys, root, "--held-out")
    assert code == 0, err
    assert "held-out split only: 2 of 5 content and 2 of 5 style images" in err
    for r in rows:
        assert r["held_out"] is True
        assert {p["content"] for p in r["per_pair"]} == set(names["c"][0])
        assert {p["style"] for p in r["per_pair"]} == set(names["s"][0])
        assert 1 <= r["vggstats_mean_rank"] <= r["styles"] and 0 <= r["vggtexture_top1"] <= 1
        assert "judge_top1" not in r
    tiny, ct = rows
    assert 0 <= tiny["alpha0_l1"] <= 1 and -1 <= tiny["alpha0_ssim"] <= 1
    assert "alpha0_ssim" not in ct and "alpha0_l1" not in ct
    # without the flag, files outside the split are drawn too
    code, rows, err = _run(capsys, root)
    assert code == 0 and "held-out" not in err and rows[0]["held_out"] is False
    used = {p["content"] for p in rows[0]["per_pair"]} | {p["style"] for p in rows[0]["per_pair"]}
    assert used & set(names["c"][1] + names["s"][1])


def test_held_out_with_no_held_out_files_is_one_line_error(split_folders, capsys):
    root, _ = split_folders
    argv = ["eval", "--model", str(root / "tiny.safetensors"), "--content", str(root / "c"), "--style",
            str(root / "none"), "--size", "32", "--metric-net", "random-vgg19", "--no-judges", "--held-out"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "held-out split" in err[0] and "none" in err[0]


def test_no_judges_skips_vgg_judges(split_folders, capsys):
    root, _ = split_folders
    code, rows, err = _run(capsys, root, "--no-judges")
    assert code == 0 and "vggstats_top1" not in rows[0] and "chance_top1" not in rows[0]
    assert "alpha0_ssim" in rows[0]


def test_judges_see_a_magnified_painting_at_the_styles_scale(net, styles):
    """A style enlarged 3x (bigger strokes: a larger photo at the same look) is still its own style when the VGG
    judges view outputs at the styles' size (``build_judges(view=...)``); at its own size it is not always."""
    import torch.nn.functional as F

    from dinstyle.eval.run import build_judges

    data = EvalSet([Pair(Path(f"c{k}"), Path(f"s{j}"), styles[j], j) for k, j in enumerate(PERM)],
                   [Path(f"s{j}") for j in range(len(styles))], styles, [])
    big = [F.interpolate(styles[j], scale_factor=3, mode="bicubic", align_corners=False).clamp(0, 1) for j in PERM]
    ranks, gaps = {}, {}
    for view in (64, None):
        judge = next(j for j in build_judges(data, net, torch.device("cpu"), view=view) if j.name == "vggstats")
        v = judge.vectors(big)
        ranks[view] = own_style_ranks(v, judge.style_vectors, PERM)
        gaps[view] = float(np.linalg.norm(v - judge.style_vectors[PERM], axis=1).mean())
    assert ranks[64].tolist() == [1] * len(styles)
    assert gaps[64] < 0.7 * gaps[None]
