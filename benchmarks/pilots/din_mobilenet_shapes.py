"""Pilot of din-mobilenet's shape (docs/MODEL_CARD.md): content GMACs at 512 and PyTorch eager latency, 2 threads,
median of 5 interleaved runs, of din-magenta and candidate students (untrained; speed does not depend on weights).

    python benchmarks/pilots/din_mobilenet_shapes.py
"""
import time, torch, sys
from dinstyle.models import create_model
from dinstyle.eval.profile import profile_model
torch.set_num_threads(2)
cands = {
 "magenta": ("din-magenta", {}),
 "dense3": ("din-mobilenet", {"res_blocks": 3}),
 "dense4": ("din-mobilenet", {"res_blocks": 4}),
 "inv5x4": ("din-mobilenet", {"res_blocks": 5, "block": "inverted", "expand": 4}),
 "inv4x6": ("din-mobilenet", {"res_blocks": 4, "block": "inverted", "expand": 6}),
 "dense3w24": ("din-mobilenet", {"res_blocks": 3, "widths": (16, 24)}),
}
x = torch.rand(1,3,512,512)
models = {}
for k,(a,c) in cands.items():
    m = create_model(a, **c).eval()
    code = m.encode_style(torch.rand(1,3,256,256))
    p = profile_model(m, (512,))
    models[k]=(m,code)
    print(k, "content GMACs@512", p["gmacs"]["content"]["512"] if "gmacs" in p else p, flush=True)
times = {k: [] for k in models}
with torch.inference_mode():
    for k,(m,code) in models.items():
        for _ in range(2): m.stylize(x, code)
    for r in range(5):
        for k,(m,code) in models.items():
            t=time.perf_counter(); m.stylize(x, code); times[k].append(time.perf_counter()-t)
for k,v in times.items():
    v.sort(); print(f"{k:12s} median {1000*v[len(v)//2]:.0f} ms")
