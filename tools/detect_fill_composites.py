#!/usr/bin/python3
"""Validation photos for the detector's plain-backdrop path (see models/README.md, detect):
product cut-outs of shared/data/objects pasted LARGE (longest side FLO..FHI of the frame, so
they often touch or run off the border) on white / grey / dark / tinted / graded backdrops with
vignette, optional paper-like texture, soft shadow, noise and JPEG. Writes OUT/*.jpg and
OUT/labels.csv (the columns ../shared/eval/detect.py reads; box = visible alpha >= 128).

usage: tools/detect_fill_composites.py OUT N SEED [FLO FHI]
  e.g. OUT=fill  N=120 SEED=7            (fill 0.45-1.15)
       OUT=fill2 N=120 SEED=11 0.8 1.35  (frame-filling)
Validation only: never used to train anything."""
import csv, os, random, sys
import numpy as np
from PIL import Image, ImageFilter
out = sys.argv[1]; n = int(sys.argv[2]); seed = int(sys.argv[3]); flo, fhi = (float(sys.argv[4]), float(sys.argv[5])) if len(sys.argv) > 5 else (0.45, 1.15)
rng = random.Random(seed)
O = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared', 'data', 'objects')
objs = sorted(f for f in os.listdir(O) if f.endswith('.png'))
os.makedirs(out, exist_ok=True)
rows = []
for i in range(n):
    ob = Image.open(os.path.join(O, rng.choice(objs))).convert('RGBA')
    a = np.asarray(ob)[:, :, 3]
    ys, xs = np.nonzero(a > 127)
    ob = ob.crop((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
    if rng.random() < 0.3:
        ob = ob.rotate(rng.uniform(-12, 12), expand=True, resample=Image.BICUBIC)
    W, H = rng.choice([(1024, 768), (768, 1024), (1024, 1024), (1024, 683), (900, 1024)])
    fill = rng.uniform(flo, fhi)
    s = fill * min(W / ob.width, H / ob.height) if rng.random() < 0.6 else fill * max(W / ob.width, H / ob.height) * 0.8
    ob = ob.resize((max(8, round(ob.width * s)), max(8, round(ob.height * s))), Image.LANCZOS)
    # position: centred with jitter; allowed to run off the frame
    ox = round((W - ob.width) / 2 + rng.uniform(-0.25, 0.25) * W)
    oy = round((H - ob.height) / 2 + rng.uniform(-0.25, 0.25) * H)
    # backdrop
    kind = rng.choice(['white', 'grey', 'tint', 'grad', 'dark'])
    if kind == 'white': c = np.array([rng.uniform(235, 255)] * 3)
    elif kind == 'grey': c = np.array([rng.uniform(150, 230)] * 3)
    elif kind == 'dark': c = np.array([rng.uniform(20, 80)] * 3)
    else: c = np.array([rng.uniform(150, 250) for _ in range(3)])
    yy, xx = np.mgrid[0:H, 0:W] / max(W, H)
    bg = np.ones((H, W, 3)) * c
    if kind in ('grad', 'tint', 'grey', 'white'):
        g = rng.uniform(-40, 40) if kind == 'grad' else rng.uniform(-12, 12)
        ang = rng.uniform(0, 6.28)
        bg += (g * (np.cos(ang) * xx + np.sin(ang) * yy))[:, :, None]
        r2 = (xx - W / max(W, H) / 2) ** 2 + (yy - H / max(W, H) / 2) ** 2
        bg -= rng.uniform(0, 30) * r2[:, :, None]
    nr = np.random.default_rng(seed * 1000 + i)
    if rng.random() < 0.4:  # paper / fabric texture: low-pass noise
        tex = Image.fromarray((nr.normal(128, 40, (H // 4, W // 4))).clip(0, 255).astype(np.uint8)).resize((W, H), Image.BICUBIC)
        bg += ((np.asarray(tex, float) - 128) * rng.uniform(0.05, 0.25))[:, :, None]
    bg += nr.normal(0, rng.uniform(0.5, 4), bg.shape)
    bgim = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    alpha = Image.new('L', (W, H), 0)
    alpha.paste(ob.getchannel('A'), (ox, oy))
    if rng.random() < 0.5:  # soft shadow
        sh = alpha.filter(ImageFilter.GaussianBlur(rng.uniform(8, 25)))
        d = rng.randint(4, 20)
        sa = np.asarray(sh.transform(sh.size, Image.AFFINE, (1, 0, -d, 0, 1, -d))) / 255.0 * rng.uniform(0.2, 0.5)
        bgim = Image.fromarray((np.asarray(bgim) * (1 - sa[:, :, None])).astype(np.uint8))
    layer = Image.new('RGBA', (W, H), (0, 0, 0, 0))
    layer.paste(ob, (ox, oy))
    im = Image.alpha_composite(bgim.convert('RGBA'), layer).convert('RGB')
    a = np.asarray(alpha)
    ys, xs = np.nonzero(a >= 128)
    if len(xs) < 0.05 * W * H:
        continue
    box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    f = f'p{i:03d}.jpg'
    im.save(os.path.join(out, f), quality=rng.choice([80, 90, 95]))
    rows.append([f, 1, 'plain', 0, *box])
with open(os.path.join(out, 'labels.csv'), 'w', newline='') as fh:
    w = csv.writer(fh); w.writerow(['file', 'up', 'kind', 'rotation', 'x0', 'y0', 'x1', 'y1'])
    w.writerows(rows)
print(len(rows))
