"""Pilot of issue 22's stroke scale (runtime/scale.py): ways to run the network at a reduced scale, on one held-out
photo and a gradient, at S = 1, 2, 3: stroke wavelength, high-pass RMS, time; images to /tmp/pilot/strokes/.
Methods: direct (full size), small (resize down, run, resize up), detail (small + the photo's luminance detail:
the one chosen), guided (fast guided-filter upsampling), atrous (polyphase sub-images, interleaved).

    mkdir -p /tmp/pilot/strokes && python benchmarks/pilots/stroke_methods.py [MODEL]
"""
import sys, time, math, torch, torch.nn.functional as F
from PIL import Image
import numpy as np
from dinstyle.models import load_model
from dinstyle.eval.wavelength import stroke_scale
from dinstyle.layers.din import instance_stats
from dinstyle.io.images import load_image, pil_to_tensor
torch.set_num_threads(2)
m = load_model(sys.argv[1] if len(sys.argv) > 1 else "din-magenta")
def resize(x, hw): return F.interpolate(x, size=hw, mode="bicubic", antialias=True, align_corners=False).clamp(0,1)
def lum(x): return (x * x.new_tensor([0.299,0.587,0.114]).view(1,3,1,1)).sum(1, keepdim=True)
def direct(x, code, s): return m.stylize(x, code).clamp(0,1)
def small(x, code, s):
    h, w = x.shape[-2:]; return resize(m.stylize(resize(x, (round(h/s), round(w/s))), code).clamp(0,1), (h, w))
def detail(x, code, s):
    h, w = x.shape[-2:]; xs = resize(x, (round(h/s), round(w/s)))
    d = lum(x) - lum(resize(xs, (h, w)))
    return (resize(m.stylize(xs, code).clamp(0,1), (h, w)) + d).clamp(0,1)
def box(x, r): return F.avg_pool2d(F.pad(x, (r,r,r,r), mode="reflect"), 2*r+1, stride=1)
def guided(x, code, s, r=2, eps=1e-3):
    h, w = x.shape[-2:]; xs = resize(x, (round(h/s), round(w/s))); ys = m.stylize(xs, code).clamp(0,1)
    I = lum(xs); mi = box(I, r); vi = box(I*I, r) - mi*mi
    my = box(ys, r); cov = box(I*ys, r) - mi*my
    A = cov / (vi + eps); b = my - A*mi
    A, b = box(A, r), box(b, r)
    return (resize(A, (h,w)) * lum(x) + resize(b, (h,w))).clamp(0,1)
def atrous(x, code, s):
    h, w = x.shape[-2:]
    k = max(1, round(s))
    H, W = round(h * k / s), round(w * k / s)   # residual resize so the phase count is an integer
    xr = resize(x, (H, W)) if (H, W) != (h, w) else x
    H2, W2 = -(-H // k) * k, -(-W // k) * k
    xp = F.pad(xr, (0, W2 - W, 0, H2 - H), mode="replicate")
    phases = torch.cat([xp[..., i::k, j::k] for i in range(k) for j in range(k)])
    def shared(level, f):
        var, mean = torch.var_mean(f, dim=(0, 2, 3), keepdim=True, correction=0)
        return mean.expand(f.shape[0], -1, -1, -1), (var + 1e-5).sqrt().expand(f.shape[0], -1, -1, -1)
    c = type(code)({kk: v.expand(k*k, *v.shape[1:]) for kk, v in code.tensors.items()})
    y = m.stylize(phases, c, stats_fn=shared).clamp(0,1)
    out = torch.zeros_like(xp)
    n = 0
    for i in range(k):
        for j in range(k):
            out[..., i::k, j::k] = y[n]; n += 1
    out = out[..., :H, :W]
    return resize(out, (h, w)) if (H, W) != (h, w) else out
methods = dict(direct=direct, small=small, detail=detail, guided=guided, atrous=atrous)
photo = pil_to_tensor(load_image("../shared/data/content/" + sorted(__import__('os').listdir("../shared/data/content"))[5]))
print("photo", tuple(photo.shape))
yy, xx = torch.meshgrid(torch.linspace(0,1,768), torch.linspace(0,1,1024), indexing="ij")
grad = torch.stack([0.3+0.5*yy, 0.5+0.3*xx, 0.8-0.4*yy])[None]
style = pil_to_tensor(load_image("src/dinstyle/assets/styles/irises.jpg"))
with torch.inference_mode():
    code = m.encode_style(resize(style, (256, round(256*style.shape[-1]/style.shape[-2])) if style.shape[-2] > style.shape[-1] else (round(256*style.shape[-2]/style.shape[-1]), 256)))
    for name, img in (("photo", photo), ("gradient", grad)):
        for meth, f in methods.items():
            row = []
            for s in ((1,) if meth == "direct" else (1, 2, 3)):
                t = time.perf_counter(); y = f(img, code, s); dt = time.perf_counter() - t
                sc = stroke_scale(y)
                row.append(f"S={s}: wl {sc.wavelength:5.2f} rms {sc.hp_rms:.4f} {dt:4.2f}s")
                Image.fromarray((y[0].permute(1,2,0).numpy()*255+0.5).astype(np.uint8)).save(f"/tmp/pilot/strokes/{name}-{meth}-{s}.jpg", quality=90)
            print(f"{name:8s} {meth:7s} " + " | ".join(row), flush=True)
