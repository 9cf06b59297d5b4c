#!/usr/bin/python3
"""Makes a synthetic alignment pair like ../shared/eval/align.py does, at a chosen size:
mkpair.py PHOTO OUTDIR [MAX_SIDE] [SEED] -> OUTDIR/in.jpg, OUTDIR/ref.jpg, OUTDIR/h.txt."""
import math, os, random, sys
import numpy as np
from PIL import Image, ImageOps

src, outdir = sys.argv[1], sys.argv[2]
side = int(sys.argv[3]) if len(sys.argv) > 3 else 1024
rnd = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
ref = ImageOps.exif_transpose(Image.open(src)).convert("RGB")
ref.thumbnail((side, side), Image.LANCZOS)
w, h = ref.size
ang = math.radians(rnd.uniform(-30, 30)); s = rnd.uniform(0.75, 1.25)
moved = []
for x, y in [(0, 0), (w, 0), (w, h), (0, h)]:
    dx, dy = (x - w / 2) * s, (y - h / 2) * s
    moved.append((w / 2 + dx * math.cos(ang) - dy * math.sin(ang) + rnd.uniform(-.08, .08) * w,
                  h / 2 + dx * math.sin(ang) + dy * math.cos(ang) + rnd.uniform(-.08, .08) * h))
A = []
for (x, y), (u, v) in zip(moved, [(0, 0), (w, 0), (w, h), (0, h)]):
    A += [[x, y, 1, 0, 0, 0, -u * x, -u * y, -u], [0, 0, 0, x, y, 1, -v * x, -v * y, -v]]
H = np.linalg.svd(np.array(A, float))[2][-1]; H = H / H[-1]
os.makedirs(outdir, exist_ok=True)
ref.transform((w, h), Image.PERSPECTIVE, tuple(H[:8]), Image.BICUBIC).save(os.path.join(outdir, "in.jpg"), quality=92)
ref.save(os.path.join(outdir, "ref.jpg"), quality=92)
np.savetxt(os.path.join(outdir, "h.txt"), H.reshape(3, 3))
print(f"{w}x{h}")
