"""Build the extra training corpus: more real photographs from Debian packages, beside the main corpus.

    .venv/bin/python scripts/make_corpus_extra.py [OUT_DIR] [--main DIR]
    # default OUT_DIR: ~/.cache/napari-superres-corpus-extra; --main: ~/.cache/napari-superres-corpus

The same way as ``../shared/data/make_corpus.py`` (run it first): packages fetched with ``apt-get download`` and
unpacked with ``dpkg -x`` into a temporary folder, nothing installed; each photo resized so its long side is
2040 px (Lanczos) and written as PNG; photos whose long side is under 1600 px are left out. Re-running is cheap:
existing PNGs are kept. Prints how many photos each package gave, then the output folder.

Photographs only: every candidate was looked at, and rendered, vector or painted art is left out (it teaches an
SR model the wrong statistics). What is kept:
- enlightenment-data (BSD-2-clause): 14 photographic backgrounds. Each ``.edj`` file holds its picture as JPEGs
  at several sizes; the largest is kept. Dunes, Flat-Fan, Sunset-Hills (vector art), Paper-Flower (a drawing),
  Flat-Stone-Pattern and the Squiggles are not.
- lxqt-themes (CC BY-SA 3.0): the 11 photographs among its wallpapers (not the origami, triangles, waves or
  logo ones).
- plasma-workspace-wallpapers (GPL-2+): ColdRipple, the one photograph the main corpus leaves out.
- stellarium-data (GPL-2+): landscape panoramas. A panorama is its side textures put side by side in
  landscape.ini's order; only its photographic band is kept: the rows where every pixel is opaque (the sky is
  transparent) and at most 2% is flat fill (the painted-in nadir), cut into pieces at most 2048 px wide. Bands
  under 256 px high are left out, so that a x4 model's 192 px patches have room: garching (two pieces),
  grossmugl and mars are kept; the moon's band is mostly grey fill, and the 256-512 px tiles of guereins,
  hurricane, ocean and trees make bands too thin. Not its nebulae (astronomy, a stand-in for fluorescence),
  textures (planet maps) or sky-culture drawings.
Looked at and left out whole: gnome-backgrounds 43 (rendered patterns only), desktop-base, xfdesktop4-data,
sway-backgrounds, lxde-common, cinnamon-desktop-data (vector art), kstars-data (screenshots).
Never used: lomiri-wallpapers, lomiri-wallpapers-16.04, ukui-wallpapers, xplanet-images and any Earth map or
texture: they are kept for the project's independent evaluation.

Duplicates: a photo that is a near-copy (``zoo_data.near_copy``: same framing and a correlated grey thumbnail,
whatever the size or encoding) of one already kept or of one in the main corpus is skipped; the largest
version of a picture is met first. Licences: /usr/share/doc/<package>/copyright in each unpacked package; keep
the corpus out of the repository.
"""

import argparse
import configparser
import io
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

from zoo_data import near_copy, thumbprint

Image.MAX_IMAGE_PIXELS = None  # Debian's own large wallpapers, not untrusted input
LONG_SIDE, MIN_LONG_SIDE, MIN_BAND, MAX_PIECE = 2040, 1600, 256, 2048
ENLIGHTENMENT = ["Bamboo", "Foggy-Trees", "God-Rays", "Green-Maple", "Lichen-Branches", "Mountain", "Peaks",
                 "Red-Maple", "Sea-of-Lanterns", "Snow-Trees", "Spruce-Needles", "Sunset-Clouds", "White-Flower",
                 "Yellow-Flower"]
LXQT = ["Butterfly-Kenneth-Wimer.jpg", "Valendas.png", "after-the-rain.jpg", "appleflower.png", "beam.png",
        "butterfly.png", "cloud.png", "drop.png", "flowers.png", "fog.jpg", "this-is-not-windows.jpg"]
LANDSCAPES = ["garching", "grossmugl", "guereins", "hurricane", "mars", "moon", "ocean", "trees"]
EVALUATION_ONLY = {"lomiri-wallpapers", "lomiri-wallpapers-16.04", "ukui-wallpapers", "xplanet-images"}


def enlightenment(root):
    for name in ENLIGHTENMENT:
        yield name, largest_jpeg((root / f"usr/share/enlightenment/data/backgrounds/{name}.edj").read_bytes())


def largest_jpeg(data: bytes):
    """The largest RGB JPEG stored whole inside a binary file (an Edje file keeps its images so)."""
    best, i = None, data.find(b"\xff\xd8\xff")
    while i >= 0:
        try:
            im = Image.open(io.BytesIO(data[i:]))
            if im.mode == "RGB" and (best is None or im.width * im.height > best.width * best.height):
                best = im
        except OSError:
            pass
        i = data.find(b"\xff\xd8\xff", i + 3)
    return best


def lxqt(root):
    for name in LXQT:
        yield pathlib.Path(name).stem, Image.open(root / "usr/share/lxqt/wallpapers" / name)


def plasma(root):
    images = root / "usr/share/wallpapers/ColdRipple/contents/images"
    for f in sorted((f for f in images.glob("*.jpg") if not f.is_symlink()), key=lambda f: -f.stat().st_size):
        yield f"ColdRipple_{f.stem}", Image.open(f)


def stellarium(root):
    for name in LANDSCAPES:
        folder = root / "usr/share/stellarium/landscapes" / name
        ini = configparser.ConfigParser(strict=False, interpolation=None, inline_comment_prefixes=(";",))
        ini.read(folder / "landscape.ini", encoding="utf-8")
        spec = ini["landscape"]
        if spec.get("type") == "old_style":
            sides = [spec[f"side{i}"].split(":")[0] for i in range(int(spec["nbside"]))]
            tiles = [np.asarray(Image.open(folder / spec[t]).convert("RGBA")) for t in sides]
            if len({t.shape[0] for t in tiles}) != 1:
                continue
            pano = np.concatenate(tiles, axis=1)
        else:
            pano = np.asarray(Image.open(folder / spec["maptex"]).convert("RGBA"))
        band = photographic_band(pano)
        if band is None:
            continue
        n = -(-band.shape[1] // MAX_PIECE)
        w = band.shape[1] // n
        for k in range(n):
            yield f"{name}{k}", Image.fromarray(band[:, k * w : (k + 1) * w])


def photographic_band(rgba, max_flat=0.02):
    """The longest run of rows that are wholly opaque and nearly free of flat fill (pixels whose 5x5
    neighbourhood varies by under half a grey level: the painted-in nadir or sky), or None if under MIN_BAND."""
    grey = rgba[..., :3].astype(np.float32).mean(axis=-1)
    flat = np.lib.stride_tricks.sliding_window_view(grey, (5, 5)).std(axis=(-1, -2)) < 0.5
    good = (rgba[2:-2, ..., 3] == 255).all(axis=1) & (flat.mean(axis=1) <= max_flat)
    best, start = (0, 0), None
    for y, ok in enumerate(list(good) + [False]):
        if ok and start is None:
            start = y
        elif not ok and start is not None:
            best, start = max(best, (y - start, start)), None
    height, top = best
    return rgba[top + 2 : top + 2 + height, :, :3] if height >= MIN_BAND else None


SOURCES = {"enlightenment-data": enlightenment, "lxqt-themes": lxqt, "plasma-workspace-wallpapers": plasma,
           "stellarium-data": stellarium}


def to_long_side(im):
    k = LONG_SIDE / max(im.size)
    return im.resize((round(im.width * k), round(im.height * k)), Image.LANCZOS)


def main(argv=None):
    home = pathlib.Path.home() / ".cache"
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", nargs="?", type=pathlib.Path, default=home / "napari-superres-corpus-extra")
    p.add_argument("--main", type=pathlib.Path, default=home / "napari-superres-corpus",
                   help="the main corpus (make_corpus.py's), whose photos are not repeated here")
    args = p.parse_args(argv)
    assert not EVALUATION_ONLY & set(SOURCES)
    main_photos = sorted(args.main.glob("*.png"))
    if not main_photos:
        raise SystemExit(f"no photos in {args.main}: run python3 ../shared/data/make_corpus.py first")
    seen = [thumbprint(np.asarray(Image.open(f).convert("RGB"))) for f in main_photos]
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        subprocess.run(["apt-get", "download", *SOURCES], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for package, photos in SOURCES.items():
            (deb,) = tmp.glob(f"{package}_*.deb")
            root = tmp / package
            subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
            kept = 0
            for name, im in photos(root):
                dst = args.out / f"{package.split('-')[0]}_{name}.png"
                if dst.exists():
                    im = Image.open(dst)
                elif max(im.size) < MIN_LONG_SIDE:
                    continue
                else:
                    im = to_long_side(im.convert("RGB"))
                mark = thumbprint(np.asarray(im.convert("RGB")))
                if any(near_copy(mark, s) for s in seen):
                    continue
                seen.append(mark)
                if not dst.exists():
                    im.save(dst)
                kept += 1
            print(f"{package}: {kept} photos", flush=True)
    print(args.out)


if __name__ == "__main__":
    sys.exit(main())
