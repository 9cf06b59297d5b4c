#!/usr/bin/python3
"""Classify RGBA cut-outs (tuxpaint stamps) as PHOTOGRAPH or DRAWING from the pixels inside
their alpha, for detect round 11 (models/README.md, "Round 11").

Why: the detector's scorer learns "what a product looks like" from composites of cut-outs.
The test composites (and the 57 cut-outs of ../shared/data/objects) are photographs of real
objects, but many stamps of the same Debian package are clip-art: flat fills, few colours,
black outlines. Round 8 trained on all 444 stamps and lost photo-like composites; this filter
keeps only the photographic stamps.

Measures, on the opaque pixels (alpha >= 128) of each PNG, after shrinking so the longest side
is <= 256 px (the stamps vary from ~60 to ~1000 px; photos shrunk that far still shade):
  flat   share of opaque pixels whose 4 opaque neighbours all have exactly the same RGB
         (flat fills of drawings; photo noise and shading make this rare)
  top8   share of opaque pixels covered by the 8 most frequent exact RGB colours
  ent    entropy (bits) of the colour histogram at 5 bits per channel
  dark   share of the alpha edge band (opaque pixels within 2 px of transparency) that is
         near-black (max channel < 60) minus the same share inside the band - the outline of
         cartoon drawings (a photo of a dark object is dark inside too)
A cut-out is a photo when  flat <= FLAT_MAX and top8 <= TOP8_MAX and dark <= DARK_MAX
(the thresholds below; chosen by looking at contact sheets of what is kept and dropped and
checking that the 57 photo cut-outs of ../shared/data/objects pass).

Usage:
  tools/stamp_photo_filter.py features DIR [--exclude FILE] > feats.tsv
  tools/stamp_photo_filter.py classify DIR [--exclude FILE]   (prints kept file names)
Objects whose file name contains a word of --exclude (data/detect_exclude_objects.txt: public
test objects) are skipped and never measured.
"""
import os
import sys

import numpy as np
from PIL import Image

FLAT_MAX = 0.045
TOP8_MAX = 0.25
DARK_MAX = 0.30


def exclude_words(path):
    words = []
    if path:
        for line in open(path):
            line = line.strip()
            if line and not line.startswith('#'):
                words.append(line.lower())
    return words


def features(path):
    im = Image.open(path).convert('RGBA')
    w, h = im.size
    s = 256.0 / max(w, h)
    if s < 1:
        im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BOX)
    a = np.asarray(im).astype(np.int32)
    rgb, al = a[:, :, :3], a[:, :, 3] >= 128
    n = int(al.sum())
    if n < 50:
        return None
    # flat: all four neighbours opaque and identical
    p = np.pad(rgb, ((1, 1), (1, 1), (0, 0)), mode='edge')
    pa = np.pad(al, 1, mode='constant')
    same = np.ones(al.shape, bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        q = p[dy:dy + al.shape[0], dx:dx + al.shape[1]]
        qa = pa[dy:dy + al.shape[0], dx:dx + al.shape[1]]
        same &= qa & (q == rgb).all(axis=2)
    flat = float((same & al).sum()) / n
    px = rgb[al]
    code = (px[:, 0] << 16) | (px[:, 1] << 8) | px[:, 2]
    _, cnt = np.unique(code, return_counts=True)
    cnt = np.sort(cnt)[::-1]
    top8 = float(cnt[:8].sum()) / n
    q5 = ((px[:, 0] >> 3) << 10) | ((px[:, 1] >> 3) << 5) | (px[:, 2] >> 3)
    _, c5 = np.unique(q5, return_counts=True)
    pr = c5 / c5.sum()
    ent = float(-(pr * np.log2(pr)).sum())
    # edge band: opaque pixels within 2 px of a transparent one (incl. the frame)
    er = al.copy()
    for _ in range(2):
        e = np.pad(er, 1, mode='constant')
        er = er & e[:-2, 1:-1] & e[2:, 1:-1] & e[1:-1, :-2] & e[1:-1, 2:]
    band = al & ~er
    nb = int(band.sum())
    dark_band = float((rgb[band].max(axis=1) < 60).sum()) / max(nb, 1)
    ni = int(er.sum())
    dark_in = float((rgb[er].max(axis=1) < 60).sum()) / ni if ni else dark_band
    # an outline is dark at the edge but not inside: photos of dark objects (a black
    # rhino, a bull) are dark everywhere and must not count
    dark = max(0.0, dark_band - dark_in)
    return flat, top8, ent, dark


def is_photo(f):
    flat, top8, ent, dark = f
    return flat <= FLAT_MAX and top8 <= TOP8_MAX and dark <= DARK_MAX


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ('features', 'classify'):
        sys.exit(__doc__)
    mode, d = sys.argv[1], sys.argv[2]
    ex = exclude_words(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == '--exclude' else []
    for name in sorted(os.listdir(d)):
        if not name.lower().endswith('.png'):
            continue
        if any(w in name.lower() for w in ex):
            continue
        f = features(os.path.join(d, name))
        if f is None:
            continue
        if mode == 'features':
            print('%s\t%.3f\t%.3f\t%.2f\t%.3f\t%d' % ((name,) + f + (is_photo(f),)))
        elif is_photo(f):
            print(name)


if __name__ == '__main__':
    main()
