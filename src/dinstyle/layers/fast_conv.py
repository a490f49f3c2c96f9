"""Exact rewrites of the convs that run at full size with few channels (issue 24).

On a CPU, a conv with 3-16 channels at full size is memory-bound and badly shaped for oneDNN: din-magenta's
9x9 8->3 output conv took 30-40 ms at 512 px, a third of the whole pass. The same linear map can run at half
size on 4x the channels (space-to-depth), where it is shaped like the convs the CPU is good at:

* ``upsample_conv3x3``: nearest 2x upsample, reflect pad, 3x3 conv == a 3x3 conv on the *low-res* map (replicate
  padded) to 4 Cout channels, then depth-to-space. No full-size upsampled copy and no full-size pad.
* ``same_conv_s2d``: a 'same' k x k conv == space-to-depth of the padded map, a ((k+1)/2)^2 conv on 4 Cin
  channels to 4 Cout channels, depth-to-space. About 1.2x the MACs of the plain conv, and on 3-8 channels
  2.5-3x faster.
* ``full_size_contract``: a full-size conv, then a stride-2 conv, with the map between them kept space-to-depth
  (the stride-2 conv becomes a 2x2 conv on it).

All derive their kernels from the layer's own weights on every call (din-magenta's five: 0.26 ms a pass, 1%), so
model files, training and gradients are unchanged. Each has its plain form beside it, which the tests hold it
to and which runs under ``layers.reference.reference_forms`` and in ONNX export.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .din import pad_same
from .reference import use_reference_forms

# Nearest 2x upsampling then a 3-tap filter, per output phase: phase 0 of pixel i reads low-res pixels
# i-1, i, i (taps w0 | w1 + w2), phase 1 reads i, i, i+1 (taps w0 + w1 | w2). Rows: low-res tap -1, 0, +1.
_PHASE_TAPS = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]],
                            [[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])  # (phase, low tap, orig tap)


def subpixel_kernel(w: torch.Tensor) -> torch.Tensor:
    """(Cout, Cin, 3, 3) kernel of "nearest 2x upsample, then 3x3 conv" -> the (4 Cout, Cin, 3, 3) kernel of the
    same map as a 3x3 conv at the low size followed by ``pixel_shuffle(2)``. Exact everywhere when the low-res
    map is replicate-padded (a reflect pad of the upsampled map reads the same pixels); with zero padding, exact
    away from the borders."""
    cout, cin = w.shape[:2]
    m = _PHASE_TAPS.to(w)
    # out[o, py, px, c, ly, lx] = sum_dy,dx m[py, ly, dy] m[px, lx, dx] w[o, c, dy, dx]
    out = torch.einsum("ayi,bxj,ocij->oabcyx", m, m, w)
    return out.reshape(4 * cout, cin, 3, 3)  # pixel_shuffle reads channel o * 4 + py * 2 + px


def _is_channels_last(x: torch.Tensor) -> bool:
    return x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


# Both rearrangements keep the 4 sub-pixel phases *outside* the channels ("phase-major": channel p * C + c, p =
# row phase * 2 + column phase), unlike F.pixel_shuffle's c * 4 + p: in channels-last memory a pixel's C channels
# then move as one block. F.pixel_shuffle / pixel_unshuffle on channels-last maps took 1.5-7 ms at 512 px, these
# 0.1-0.6 ms (issue 24).
def depth_to_space(y: torch.Tensor) -> torch.Tensor:
    """(N, 4C, H, W) phase-major -> (N, C, 2H, 2W), in the input's memory layout."""
    n, c4, h, w = y.shape
    c = c4 // 4
    if _is_channels_last(y):
        t = y.permute(0, 2, 3, 1).reshape(n, h, w, 2, 2, c).permute(0, 1, 3, 2, 4, 5)
        return t.reshape(n, 2 * h, 2 * w, c).permute(0, 3, 1, 2)
    return y.reshape(n, 2, 2, c, h, w).permute(0, 3, 4, 1, 5, 2).reshape(n, c, 2 * h, 2 * w)


def space_to_depth(x: torch.Tensor) -> torch.Tensor:
    """(N, C, 2H, 2W) -> (N, 4C, H, W) phase-major, in the input's memory layout."""
    n, c, h2, w2 = x.shape
    h, w = h2 // 2, w2 // 2
    if _is_channels_last(x):
        t = x.permute(0, 2, 3, 1).reshape(n, h, 2, w, 2, c).permute(0, 1, 3, 2, 4, 5)
        return t.reshape(n, h, w, 4 * c).permute(0, 3, 1, 2)
    return x.reshape(n, c, h, 2, w, 2).permute(0, 3, 5, 1, 2, 4).reshape(n, 4 * c, h, w)


def phase_major(w: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Reorder a kernel's ``dim`` from F.pixel_shuffle's channel order (c * 4 + p) to phase-major (p * C + c)."""
    shape = w.shape
    c = shape[dim] // 4
    return w.unflatten(dim, (c, 4)).transpose(dim, dim + 1).reshape(shape)


def conv_depth_to_space(x: torch.Tensor, w: torch.Tensor, padding: int) -> torch.Tensor:
    """``F.pixel_shuffle(F.conv2d(x, w, padding=padding), 2)`` (``w`` in pixel_shuffle's channel order), with the
    fast rearrangement."""
    if use_reference_forms():
        return F.pixel_shuffle(F.conv2d(x, w, padding=padding), 2)
    return depth_to_space(F.conv2d(x, phase_major(w), padding=padding))


def upsample_conv3x3(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``conv2d(pad_same(upsample_nearest_2x(x), 3), w)`` computed at the low size (see the module doc)."""
    if use_reference_forms():
        return upsample_conv3x3_reference(x, w)
    # On a 2x nearest-upsampled map a 1-pixel reflect pad re-reads the edge pixel: a replicate pad at low res.
    return conv_depth_to_space(F.pad(x, (1, 1, 1, 1), mode="replicate"), subpixel_kernel(w), 0)


def upsample_conv3x3_reference(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return F.conv2d(pad_same(F.interpolate(x, scale_factor=2.0, mode="nearest"), 3), w)


def space_to_depth_kernel(w: torch.Tensor) -> torch.Tensor:
    """(Cout, Cin, k, k), k odd -> (4 Cout, 4 Cin, (k+1)/2, (k+1)/2), both channel dims phase-major: the same
    'same' conv on ``space_to_depth(pad_same(x, k))`` whose output ``depth_to_space`` puts back at full size.

    Output phase a of low-res row i is full-size row 2i + a, which reads padded rows 2i + a .. 2i + a + k - 1,
    i.e. unshuffled row i + m, sub-row r, for original tap dy = 2m + r - a (zero where dy is outside 0..k-1)."""
    cout, cin, k, _ = w.shape
    kk = (k + 1) // 2
    # pad the kernel so every dy in -1 .. 2kk - 1 is an index (dy + 1) and out-of-range taps read zeros
    wp = F.pad(w, (1, 2 * kk - k, 1, 2 * kk - k))
    out_phases = []
    for a in range(2):
        for b in range(2):
            # dy = 2m + r - a for m = 0 .. kk-1  ->  index r - a + 1, step 2
            in_phases = [wp[:, :, r - a + 1::2, s - b + 1::2][:, :, :kk, :kk] for r in range(2) for s in range(2)]
            out_phases.append(torch.cat(in_phases, 1))  # (Cout, 4 Cin [r, s, c], kk, kk)
    return torch.cat(out_phases, 0)  # (4 Cout [a, b, o], 4 Cin, kk, kk)


def s2d_fits(x: torch.Tensor, k: int) -> bool:
    """The rewrite needs an even padded size (always true under the models' pad_multiple of 4)."""
    return k % 2 == 1 and k > 1 and x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0


def same_conv_s2d(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``conv2d(pad_same(x, k), w, bias)`` for odd k, computed at half size; falls back to it on odd sizes."""
    k = w.shape[-1]
    if not s2d_fits(x, k) or use_reference_forms():
        return same_conv_reference(x, w, bias)
    b4 = None if bias is None else bias.repeat(4)
    return depth_to_space(F.conv2d(space_to_depth(pad_same(x, k)), space_to_depth_kernel(w), b4))


# A stride-2 3x3 conv reads full-size rows 2i-1, 2i, 2i+1: space-to-depth rows i-1 (phase 1), i (phases 0, 1).
# Per row phase: which of the 2x2 kernel's rows (low-res row i-1, i) reads which 3x3 tap row (None: no tap).
_STRIDE2_TAPS = ((None, 1), (0, 2))


def strided_kernel_s2d(w: torch.Tensor) -> torch.Tensor:
    """(Cout, Cin, 3, 3) of a stride-2 conv -> (Cout, 4 Cin phase-major, 2, 2) of the same conv on the
    space-to-depth map, padded by one row and column on the top and left (``strided_conv3x3_s2d``)."""
    cout, cin = w.shape[:2]
    zero = w.new_zeros(cout, cin)
    blocks = []
    for a in range(2):
        for b in range(2):
            rows = [torch.stack([zero if ty is None or tx is None else w[:, :, ty, tx] for tx in _STRIDE2_TAPS[b]], -1)
                    for ty in _STRIDE2_TAPS[a]]
            blocks.append(torch.stack(rows, -2))  # (Cout, Cin, 2, 2)
    return torch.cat(blocks, 1)


def strided_conv3x3_s2d(s: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``conv2d(pad_same(x, 3), w, bias, stride=2)`` given ``s = space_to_depth(x)`` (x of even size >= 2)."""
    # Reflect-padding x by one reads x's row 1 for row -1: row 0's phase-1 pixels, so a replicate pad of s.
    return F.conv2d(F.pad(s, (1, 0, 1, 0), mode="replicate"), strided_kernel_s2d(w), bias)


def full_size_contract(x: torch.Tensor, first: torch.nn.Conv2d, second: torch.nn.Conv2d) -> torch.Tensor:
    """``relu(second(pad(relu(first(pad(x))))))`` for a stride-1 k x k ``first`` and a stride-2 3x3 ``second``
    (reflect 'same' pads): din-magenta's way down from full size. The full-size map between them never exists:
    ``first`` writes it space-to-depth, which ``second`` reads directly."""
    k = first.kernel_size[0]
    if not s2d_fits(x, k) or use_reference_forms():
        y = F.relu(same_conv_reference(x, first.weight, first.bias))
        return F.relu(F.conv2d(pad_same(y, 3), second.weight, second.bias, stride=2))
    b4 = None if first.bias is None else first.bias.repeat(4)
    s = F.relu(F.conv2d(space_to_depth(pad_same(x, k)), space_to_depth_kernel(first.weight), b4), inplace=True)
    return F.relu(strided_conv3x3_s2d(s, second.weight, second.bias), inplace=True)


def same_conv_reference(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    return F.conv2d(pad_same(x, w.shape[-1]), w, bias)
