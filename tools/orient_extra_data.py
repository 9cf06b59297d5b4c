#!/usr/bin/python3
"""Rebuild the extra training data of the orientation model (see models/README.md).

Downloads (apt-get download, no install) and unpacks Debian packages, then writes
  OUT/walls/   upright photographs from wallpaper packages + labels.csv (file,up,kind,rotation,source)
  OUT/stamps/  tuxpaint stamp cut-outs (PNG with alpha) + objects.csv (file,up,name,source)
Leakage guard: every file whose package path or stamp name appears in the test set's labels.csv
(--exclude, default ../shared/data/public/labels.csv) or among ../shared/data/objects is left out.
Only the names listed there are read from the test set; its images are never opened.
"""
import argparse, csv, glob, os, subprocess

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
