#!/usr/bin/python3
"""Rebuild the extra training data of the orientation model (see models/README.md).

Downloads (apt-get download, no install) and unpacks Debian packages, then writes
  OUT/walls/   upright photographs from wallpaper packages + labels.csv (file,up,kind,rotation,source)
  OUT/stamps/  tuxpaint stamp cut-outs (PNG with alpha) + objects.csv (file,up,name,source)
  OUT/gcompris-detect/ (with --detect-val) gcompris photos of tools, objects and fish with
               hand-checked product boxes: a detector validation set (see models/README.md)
  OUT/gcompris/ upright photographs of gcompris-qt-data (Wikimedia Commons photos of animals,
               monuments, objects on white; packed in Qt .rcc resource files) + labels.csv
               (file,up,kind,rotation,license,source)
Leakage guard: every file whose package path or stamp name appears in the test set's labels.csv
(--exclude, default ../shared/data/public/labels.csv) or among ../shared/data/objects is left out.
The gcompris photos come from a package the test set does not use; to be sure that none is another
copy of a test or train photo, each is compared (32x32 grey thumbnails, correlation > 0.9) with the
photos of --exclude-dir and --train-dir and left out if it matches — the only use of the test images.
"""
import argparse, csv, glob, os, struct, subprocess, zlib

WALLS = {  # package -> upright photographs (paths inside the package)
    "lomiri-wallpapers-16.04": [
        "/usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg",
        "/usr/share/backgrounds/Dragonfly_by_Bolly.jpg",
        "/usr/share/backgrounds/aitzgorri_by_Aitzol_Berasategi.jpg",
        "/usr/share/backgrounds/free_by_Peter_Nerlich.jpg",
        "/usr/share/backgrounds/friends_by_Aitzol_Berasategi.jpg",
        "/usr/share/backgrounds/picosdeeuropa_by_Aitzol_Berasategi.jpg",
        "/usr/share/backgrounds/seeding_by_Clements_Engelhardt.jpg",
        "/usr/share/backgrounds/sunset_by_Aitzol_Berasategi.jpg",
        # also upright photos, but in the test set (excluded by the guard):
        "/usr/share/backgrounds/Picture_1A_by_freespace.jpg",
        "/usr/share/backgrounds/Wine_by_Jakkub_Mede.jpg",
        "/usr/share/backgrounds/life_by_Aitzol_Berasategi.jpg",
    ],
    "mate-backgrounds": [
        "/usr/share/backgrounds/mate/nature/Dune.jpg",
        "/usr/share/backgrounds/mate/nature/LadyBird.jpg",
        "/usr/share/backgrounds/mate/nature/Storm.jpg",
        "/usr/share/backgrounds/mate/nature/TwoWings.jpg",
        "/usr/share/backgrounds/mate/nature/YellowFlower.jpg",
        "/usr/share/backgrounds/mate/nature/Aqua.jpg",
        "/usr/share/backgrounds/mate/nature/Garden.jpg",
    ],
}
STAMP_PKG = "tuxpaint-stamps-default"
STAMP_ROOT = "/usr/share/tuxpaint/stamps"
# Categories whose stamps have a clear upright direction (symbols, space, flags do not).
STAMP_TOP = {"animals", "food", "plants", "town", "vehicles", "military", "household", "hobbies",
             "clothes", "seasonal", "sports", "people"}

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("out", help="output folder, e.g. /work/data-extra")
ap.add_argument("--exclude", default="../shared/data/public/labels.csv")
ap.add_argument("--objects", default="../shared/data/objects/objects.csv")
ap.add_argument("--train", default="../shared/data/train/labels.csv")
ap.add_argument("--exclude-dir", default="../shared/data/public")
ap.add_argument("--train-dir", default="../shared/data/train")
ap.add_argument("--detect-val", default=None, metavar="CSV",
                help="also write OUT/gcompris-detect/ (labels.csv with boxes) from this box list, "
                     "e.g. data/detect_val_gcompris.csv: the detector's gcompris validation photos")
a = ap.parse_args()
out = os.path.abspath(a.out)
debs, xdir = os.path.join(out, "debs"), os.path.join(out, "x")
os.makedirs(debs, exist_ok=True)


def unpack(pkg):
    dst = os.path.join(xdir, pkg)
    if not os.path.isdir(dst):
        if not glob.glob(os.path.join(debs, pkg + "_*.deb")):
            subprocess.run(["apt-get", "download", pkg], cwd=debs, check=True)
        os.makedirs(dst)
        subprocess.run(["dpkg", "-x", glob.glob(os.path.join(debs, pkg + "_*.deb"))[0], dst], check=True)
    return dst


def sources(path):
    try:
        return [r for r in csv.DictReader(open(path, newline=""))]
    except OSError:
        return []


test = sources(a.exclude)
def norm(src):
    return "/" + src.split(": ", 1)[-1].strip().lstrip("/")


test_paths = {norm(r.get("source", "")) for r in test}
test_stamps = {r["source"].split("stamp ", 1)[1].split()[0] for r in test if "stamp " in r.get("source", "")}
train_paths = {norm(r.get("source", "")) for r in sources(a.train)}
obj_names = {r["name"] for r in sources(a.objects)}

os.makedirs(os.path.join(out, "walls"), exist_ok=True)
rows = []
for pkg, paths in WALLS.items():
    root = unpack(pkg)
    for p in paths:
        if p in test_paths or p in train_paths:
            print("left out (test or train set):", pkg, p)
            continue
        name = pkg + "__" + os.path.basename(p)
        link = os.path.join(out, "walls", name)
        if not os.path.lexists(link):
            os.symlink(root + p, link)
        rows.append([name, 1, "cluttered", 0, f"Debian package {pkg}: {p}"])
with open(os.path.join(out, "walls", "labels.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["file", "up", "kind", "rotation", "source"])
    w.writerows(rows)
print(len(rows), "wallpaper photos")

root = unpack(STAMP_PKG) + STAMP_ROOT
os.makedirs(os.path.join(out, "stamps"), exist_ok=True)
rows, left = [], 0
for dp, _, files in os.walk(root):
    rel = os.path.relpath(dp, root)
    if rel.split("/")[0] not in STAMP_TOP or rel.startswith("town/flags"):
        continue
    for fn in sorted(files):
        if not fn.endswith(".png"):
            continue
        stem = fn[:-4]
        if {stem, stem.replace("-", "_")} & (test_stamps | obj_names):
            left += 1
            continue
        name = rel.replace("/", "_") + "__" + fn
        link = os.path.join(out, "stamps", name)
        if not os.path.lexists(link):
            os.symlink(os.path.join(dp, fn), link)
        rows.append([name, 1, stem, f"Debian package {STAMP_PKG}: {os.path.join(rel, fn)}"])
with open(os.path.join(out, "stamps", "objects.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["file", "up", "name", "source"])
    w.writerows(sorted(rows))
print(len(rows), "stamps;", left, "left out (test set or shared/data/objects)")


# gcompris-qt-data: activities whose images are real upright photographs. Left out: "tools" and
# "fishes" of categorization (objects and fish shot from above: no upright direction), "details"
# (circular crops), "lang"/"paintings" (drawings and paintings).
GC_PKG = "gcompris-qt-data"
GC_RCC = "/usr/share/gcompris-qt/rcc"
GC_SETS = {"erase": None, "explore_monuments": None, "explore_world_animals": None,
           "explore_farm_animals": None, "explore_world_music": None,
           "categorization": {"alphabets", "numbers", "monuments", "others", "renewable"}}
# Shot from straight above or round: no upright direction.
GC_SKIP = {"baseball", "volleyball", "knife", "spoons", "plate", "blackslate", "erasers"}


def rcc_files(path):
    """(name, bytes) of every file in a Qt resource file (format versions 1-3, zlib or none)."""
    buf = open(path, "rb").read()
    if buf[:4] != b"qres":
        raise ValueError(path + ": not a Qt resource file")
    ver, tree, data, names = struct.unpack(">IIII", buf[4:20])
    node = 14 if ver == 1 else 22

    def name(off):
        n, = struct.unpack(">H", buf[names + off:names + off + 2])
        return buf[names + off + 6:names + off + 6 + 2 * n].decode("utf-16-be")

    def walk(i, prefix):
        b = tree + i * node
        noff, flags = struct.unpack(">IH", buf[b:b + 6])
        p = os.path.join(prefix, name(noff)) if i else prefix
        if flags & 2:  # directory
            cnt, first = struct.unpack(">II", buf[b + 6:b + 14])
            for c in range(first, first + cnt):
                yield from walk(c, p)
        elif not flags & 4:  # zstd-compressed entries do not occur in this package
            doff, = struct.unpack(">I", buf[b + 10:b + 14])
            sz, = struct.unpack(">I", buf[data + doff:data + doff + 4])
            raw = buf[data + doff + 4:data + doff + 4 + sz]
            yield p, zlib.decompress(raw[4:]) if flags & 1 else raw
    yield from walk(0, "")


def readme_licences(text):
    """file name -> (licence, source) from a gcompris resource README."""
    out = {}
    for block in text.split("\n\n"):
        lic = src = ""; files = []; in_files = False
        for line in block.splitlines():
            if line.startswith("License:"):
                lic = line[8:].strip(); in_files = False
            elif line.startswith("Source:"):
                src = line[7:].strip(); in_files = False
            elif line.startswith("Files:"):
                files += line[6:].split(); in_files = True
            elif in_files and line.strip() and ":" not in line:
                files += line.split()
        for f in files:
            out[os.path.basename(f)] = (lic, src)
    return out


def thumbs(folder):
    """32x32 grey thumbnails (zero mean, unit norm) of the photos in folder."""
    import numpy as np
    from PIL import Image
    res = []
    for f in sorted(glob.glob(os.path.join(folder, "*"))):
        try:
            v = np.asarray(Image.open(f).convert("L").resize((32, 32)), dtype=float).ravel()
        except OSError:
            continue
        v -= v.mean(); n = np.linalg.norm(v)
        res.append(v / n if n > 0 else v)
    return np.array(res)


def rcc_licences(files):
    """file name -> (licence, source) from every README among a resource file's entries."""
    lic = {}
    for p, raw in files.items():
        if os.path.basename(p) == "README":
            lic.update(readme_licences(raw.decode("utf-8", "replace")))
    return lic


def is_copy(im, known):
    """True if the photo's 32x32 grey thumbnail correlates > 0.9 with one of known (thumbs())."""
    import numpy as np
    v = np.asarray(im.convert("L").resize((32, 32)), dtype=float).ravel()
    v -= v.mean(); v /= max(np.linalg.norm(v), 1e-9)
    return len(known) > 0 and float((known @ v).max()) > 0.9


def gcompris(out):
    import io
    import numpy as np
    from PIL import Image
    root = unpack(GC_PKG) + GC_RCC
    dst = os.path.join(out, "gcompris")
    os.makedirs(dst, exist_ok=True)
    known = np.concatenate([thumbs(a.exclude_dir), thumbs(a.train_dir)])
    rows, dup = [], 0
    for act, subsets in GC_SETS.items():
        files = dict(rcc_files(os.path.join(root, act + ".rcc")))
        lic = rcc_licences(files)
        for p in sorted(files):
            if not p.endswith(".webp"):
                continue
            sub = os.path.basename(os.path.dirname(p))
            if (subsets is not None and sub not in subsets) or os.path.basename(p)[:-5] in GC_SKIP:
                continue
            im = Image.open(io.BytesIO(files[p])).convert("RGB")
            if min(im.size) < 150:
                continue
            if is_copy(im, known):
                dup += 1
                continue
            # plain: a bright, even border (objects shot on white), else a scene
            g = np.asarray(im.convert("L"), dtype=float)
            border = np.concatenate([g[:4].ravel(), g[-4:].ravel(), g[:, :4].ravel(), g[:, -4:].ravel()])
            kind = "plain" if border.mean() > 200 and border.std() < 20 else "cluttered"
            name = f"{act}__{sub}__{os.path.basename(p)[:-5]}.jpg"
            im.save(os.path.join(dst, name), quality=95)
            l, src = lic.get(os.path.basename(p), ("see the package copyright file", ""))
            rows.append([name, 1, kind, 0, l, f"Debian package {GC_PKG}: {GC_RCC}/{act}.rcc:{p}"
                         + (f" (from {src})" if src else "")])
    with open(os.path.join(dst, "labels.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "up", "kind", "rotation", "license", "source"])
        w.writerows(rows)
    print(len(rows), "gcompris photos;", dup, "left out as copies of test or train photos")


gcompris(out)


def gcompris_detect(out, boxes_csv):
    """Detector validation photos: the gcompris files named in boxes_csv with their boxes."""
    import io
    import numpy as np
    from PIL import Image
    root = unpack(GC_PKG) + GC_RCC
    dst = os.path.join(out, "gcompris-detect")
    os.makedirs(dst, exist_ok=True)
    want = list(csv.DictReader(open(boxes_csv)))
    files = dict(rcc_files(os.path.join(root, "categorization.rcc")))
    lic = rcc_licences(files)
    known = np.concatenate([thumbs(a.exclude_dir), thumbs(a.train_dir)])
    rows, dup = [], 0
    for r in want:
        p = next(k for k in files if k.endswith(r["path"]))
        im = Image.open(io.BytesIO(files[p])).convert("RGB")
        if is_copy(im, known):
            dup += 1  # a copy of a test or train photo: never validate on it
            continue
        parts = r["path"].split("/")
        name = f"{parts[-2]}_{parts[-1][:-5]}.jpg"
        im.save(os.path.join(dst, name), quality=95)
        l, src = lic.get(os.path.basename(p), ("see the package copyright file", ""))
        rows.append([name, 1, r["kind"], 0, r["x0"], r["y0"], r["x1"], r["y1"], l,
                     f"Debian package {GC_PKG}: {GC_RCC}/categorization.rcc:{p}", r["how"]])
    with open(os.path.join(dst, "labels.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "up", "kind", "rotation", "x0", "y0", "x1", "y1", "license", "source", "description"])
        w.writerows(rows)
    print(len(rows), "gcompris detector validation photos;", dup, "left out as copies of test or train photos")


if a.detect_val:
    gcompris_detect(out, a.detect_val)
