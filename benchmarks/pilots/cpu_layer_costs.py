"""Pilot: what single layers cost on this CPU at 512 (PyTorch eager, 2 threads, median of 15): reflect vs zero
padding, upsample-then-conv vs sub-pixel conv, instance-norm statistics. Why din-mobilenet uses sub-pixel convs
and zero padding (docs/MODEL_CARD.md).

    python benchmarks/pilots/cpu_layer_costs.py
"""
import time, torch, torch.nn.functional as F
torch.set_num_threads(2)
def t(f, n=15):
    with torch.inference_mode():
        for _ in range(3): f()
        ts=[]
        for _ in range(n):
            a=time.perf_counter(); f(); ts.append(time.perf_counter()-a)
    ts.sort(); return 1000*ts[n//2]
x4=torch.rand(1,32,128,128); x2=torch.rand(1,16,256,256); x1=torch.rand(1,16,512,512)
c44=torch.nn.Conv2d(32,32,3,bias=False); c42=torch.nn.Conv2d(32,16,3,bias=False); c21=torch.nn.Conv2d(16,3,3,bias=False); c2s=torch.nn.Conv2d(16,12,3,bias=False)
c44z=torch.nn.Conv2d(32,32,3,padding=1,bias=False)
print("res conv reflect", t(lambda: c44(F.pad(x4,(1,1,1,1),mode='reflect'))))
print("res conv zero", t(lambda: c44z(x4)))
print("var_mean 1/4", t(lambda: torch.var_mean(x4,(2,3))))
print("up2 conv", t(lambda: c42(F.pad(F.interpolate(x4,scale_factor=2.),(1,1,1,1),mode='reflect'))))
print("head up conv 16->3 full", t(lambda: c21(F.pad(F.interpolate(x2,scale_factor=2.),(1,1,1,1),mode='reflect'))))
print("head shuffle", t(lambda: F.pixel_shuffle(c2s(F.pad(x2,(1,1,1,1),mode='reflect')),2)))
y=torch.rand(1,3,512,512)
print("IN full 3ch", t(lambda: torch.var_mean(y,(2,3))))
print("IN half 16ch", t(lambda: torch.var_mean(x2,(2,3))))
print("stem s2 3->16", t(lambda: torch.nn.functional.conv2d(F.pad(y,(1,1,1,1),mode='reflect'), torch.rand(16,3,3,3), stride=2)))
x2b=torch.rand(1,16,256,256)
print("contract2 s2 16->32", t(lambda: torch.nn.functional.conv2d(F.pad(x2b,(1,1,1,1),mode='reflect'), torch.rand(32,16,3,3), stride=2)))
cl = x4.contiguous(memory_format=torch.channels_last); c44c=c44.to(memory_format=torch.channels_last)
print("res conv channels_last zero", t(lambda: F.conv2d(cl, c44c.weight, padding=1)))
