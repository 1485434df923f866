"""Training data of the shipped models: random LR/HR patch pairs and held-out validation, shared by the CPU
trainer (``train_zoo.py``) and the GPU run (``device/train_gpu.py``). NumPy and Pillow only until a Keras
``PyDataset`` is asked for.

Photos: HR patches of real photographs, LR by antialiased bicubic downscaling of the whole image (so a patch's
border sees the same antialiasing as a full image), the benchmark's convention. Two folders of PNGs: the main
corpus (``../shared/data/make_corpus.py``) and an optional extra one (``make_corpus_extra.py``). The photos in
``napari_superres.benchmark.HELD_OUT`` (all in the main corpus) never enter training, nor does a near-copy of one.
"""

from pathlib import Path

import numpy as np
from PIL import Image

from napari_superres.benchmark import HELD_OUT

EXTRA_CORPUS = Path.home() / ".cache" / "napari-superres-corpus-extra"


def add_extra_corpus_option(parser):
    """``--extra-corpus DIR`` (default: ``EXTRA_CORPUS`` if it exists; ``none``: the main corpus alone)."""
    parser.add_argument("--extra-corpus", type=lambda s: None if s.lower() == "none" else Path(s),
                        default=EXTRA_CORPUS if EXTRA_CORPUS.is_dir() else None,
                        help="more training photos (scripts/make_corpus_extra.py; default: its folder if it "
                             "exists; 'none': the main corpus alone)")


def load_corpus(corpus: Path, extra: Path | None = None):
    """(training photos, [(name, held-out photo)]) of the main corpus folder of PNGs (make_corpus.py's), the
    training photos followed by those of ``extra`` (make_corpus_extra.py's) when given."""
    files = sorted(Path(corpus).glob("*.png"))
    if not files:
        raise SystemExit(f"no photos in {corpus}: run python3 ../shared/data/make_corpus.py first")
    train = [np.asarray(Image.open(f).convert("RGB")) for f in files if f.name not in HELD_OUT]
    val = [(name, np.asarray(Image.open(Path(corpus) / name).convert("RGB"))) for name in HELD_OUT]
    return train + (extra_photos(extra, val) if extra is not None else []), val


def extra_photos(extra: Path, val):
    """The photos of the extra corpus folder, less any near-copy of a held-out photo of ``val``."""
    files = sorted(Path(extra).glob("*.png"))
    if not files:
        raise SystemExit(f"no photos in {extra}: run scripts/make_corpus_extra.py first")
    held = [thumbprint(img) for _, img in val]
    photos = []
    for f in files:
        img = np.asarray(Image.open(f).convert("RGB"))
        if any(near_copy(thumbprint(img), h) for h in held):
            print(f"{f.name}: a near-copy of a held-out photo, left out of training")
        else:
            photos.append(img)
    return photos


def thumbprint(img):
    """(aspect ratio, 32x32 grey thumbnail of zero mean and unit spread): what stays of a photo through
    resizing, re-encoding and a change of brightness or contrast."""
    grey = Image.fromarray(np.asarray(img)).convert("L").resize((32, 32), Image.BOX)
    t = np.asarray(grey, np.float32)
    return img.shape[1] / img.shape[0], (t - t.mean()) / (t.std() + 1e-3)


def near_copy(a, b, min_correlation=0.98):
    """Whether two thumbprints are of the same picture (the same framing, within 2% of aspect ratio). Copies
    correlate above 0.999; distinct photos of this data at most 0.90 (two misty scenes of the same light)."""
    return abs(a[0] / b[0] - 1) < 0.02 and float(np.mean(a[1] * b[1])) >= min_correlation


def load_packed(data: Path):
    """The same from a folder written by ``device/pack.py``: ``photos/`` (training) and ``val/`` (held-out crops)."""
    read = lambda f: np.asarray(Image.open(f).convert("RGB"))  # noqa: E731
    train = [read(f) for f in sorted((Path(data) / "photos").glob("*.webp"))]
    val = [(f.name, read(f)) for f in sorted((Path(data) / "val").glob("*.webp"))]
    if not train or not val:
        raise SystemExit(f"no packed photos in {data}: run scripts/device/pack.py first")
    return train, val


VAL_SIDE = 480  # validation crops during training: a multiple of 2, 3 and 4
CURVE_IMAGES = {
    "photo": "validation PSNR-Y on 8 crops (480x480) of the held-out photos, against total steps",
    "microscopy": "validation PSNR on the held-out real fluorescence (LR by binning), against total steps",
}


def centre(img, frac):
    """The centre of ``img``, ``frac`` of its height and width (at least VAL_SIDE of each)."""
    h, w = img.shape[:2]
    ch, cw = min(h, max(VAL_SIDE, round(h * frac))), min(w, max(VAL_SIDE, round(w * frac)))
    y, x = (h - ch) // 2, (w - cw) // 2
    return img[y : y + ch, x : x + cw]


def most_detailed(img, side=VAL_SIDE, step=120):
    """The ``side`` x ``side`` crop of ``img`` with the most gradient."""
    g = np.asarray(img, np.float32).mean(axis=-1)
    grad = np.abs(np.diff(g, axis=0))[:, :-1] + np.abs(np.diff(g, axis=1))[:-1, :]
    best = max(((grad[y : y + side, x : x + side].mean(), y, x) for y in range(0, grad.shape[0] - side, step)
                for x in range(0, grad.shape[1] - side, step)))
    return img[best[1] : best[1] + side, best[2] : best[2] + side]


def validation_crops(val):
    """[(name, crop)]: the centre and the most detailed VAL_SIDE crop of each held-out photo, the images a
    training run's validation curve is measured on (CURVE_IMAGES["photo"])."""
    crops = []
    for name, img in val:
        crops += [(Path(name).stem + "-centre", centre(img, 0)), (Path(name).stem + "-detail", most_detailed(img))]
    return crops


def microscopy_validator(scale, nuclear=None):
    """model -> mean PSNR of a one-channel model on the held-out real fluorescence (the right half of
    nuclear.png; ``nuclear``: its path, default mahotas' own), LR by binning alone (CURVE_IMAGES["microscopy"])."""
    from napari_superres.models.loading import SRModel
    from napari_superres.training.microscopy import validation_images
    from napari_superres.training.validation import microscopy_scores

    images = validation_images(nuclear)

    def validate(model):
        srm = SRModel(name="training", path=None, keras_model=model, scale=scale, channels=1,
                      normalization={"mode": "percentile", "low": 2.0, "high": 99.8})
        return round(microscopy_scores(srm, images)["mean"]["psnr"], 3)

    return validate


def augment(a, b, k):
    """One of the 8 flips/rotations (k in 0..7) applied alike to a pair of (..., H, W, C) arrays."""
    a, b = np.rot90(a, k % 4, axes=(-3, -2)), np.rot90(b, k % 4, axes=(-3, -2))
    if k >= 4:
        a, b = a[..., ::-1, :], b[..., ::-1, :]
    return a, b


class PatchPairs:
    """Aligned random LR/HR patch pairs (float32, 0..1) from photos downscaled once per scale."""

    channels = 3

    def __init__(self, images, val=()):
        from napari_superres.training.metrics import modcrop

        self.images = images
        self.val = list(val)
        self._lr, self._modcrop = {}, modcrop

    def pairs(self, scale):
        """(LR images, HR images) at ``scale``, made on first use."""
        if scale not in self._lr:
            from napari_superres.training.metrics import bicubic_downscale

            hr = [self._modcrop(im, scale) for im in self.images]
            self._lr[scale] = ([bicubic_downscale(im, scale) for im in hr], hr)
        return self._lr[scale]

    def batch(self, scale, n, p, rng):
        lrs, hrs = self.pairs(scale)
        xs, ys = [], []
        for _ in range(n):
            i = rng.integers(len(lrs))
            lr, hr = lrs[i], hrs[i]
            y0, x0 = rng.integers(lr.shape[0] - p), rng.integers(lr.shape[1] - p)
            a, b = augment(lr[y0 : y0 + p, x0 : x0 + p], hr[y0 * scale : (y0 + p) * scale, x0 * scale : (x0 + p) * scale],
                           rng.integers(8))
            xs.append(a)
            ys.append(b)
        return np.stack(xs).astype(np.float32) / 255.0, np.stack(ys).astype(np.float32) / 255.0

    def validator(self, scale):
        """model -> mean PSNR-Y (border = scale) on the held-out images, LR by bicubic downscale."""
        from napari_superres.training.metrics import bicubic_downscale, psnr

        hrs = [self._modcrop(im, scale) for _, im in self.val]
        lrs = [bicubic_downscale(hr, scale).astype(np.float32) / 255.0 for hr in hrs]

        def validate(model):
            scores = []
            for lr, hr in zip(lrs, hrs):
                out = np.asarray(model.predict_on_batch(lr[None]))[0]
                scores.append(psnr(hr, np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8), scale=scale))
            return round(float(np.mean(scores)), 3)

        return validate

    def sequence(self, scale, batch, p, seed, workers=4):
        return batches(self, scale, batch, p, seed, workers)


def batches(source, scale, batch, p, seed, workers=4, length=2000):
    """A Keras ``PyDataset`` of ``source.batch(scale, batch, p, rng)``: endless in effect (each epoch draws new
    patches), made ahead by worker threads so the accelerator does not wait for NumPy."""
    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=4 * workers)
            self.epoch = 0

        def __len__(self):
            return length

        def __getitem__(self, idx):
            return source.batch(scale, batch, p, np.random.default_rng([seed, self.epoch, idx]))

        def on_epoch_end(self):
            self.epoch += 1

    return Batches()


def _microscopy_chunk(seed, n, scale, lr_patch, data):
    """``n`` microscopy pairs from a fresh pool of simulated fields, the real training image and the packed
    photos' luminance (in a worker), mixed as the CPU trainer mixes them (``training.microscopy.MIX``)."""
    from napari_superres.training.microscopy import (CONTEXT, microscopy_pairs, photo_luminance, simulated_fields,
                                                     training_images)

    rng = np.random.default_rng(seed)
    fields = simulated_fields(8, 3 * lr_patch * scale * CONTEXT // 2, seed)
    photos = sorted((Path(data) / "photos").glob("*.webp"))
    picked = [photos[i] for i in rng.choice(len(photos), size=min(8, len(photos)), replace=False)] if photos else []
    luminance = photo_luminance([(f.name, np.asarray(Image.open(f).convert("RGB"))) for f in picked])
    return microscopy_pairs(n, lr_patch, scale, rng, fields=fields, photos=luminance,
                            real=training_images(nuclear=Path(data) / "microscopy" / "nuclear.png"))


class MicroscopyPairs:
    """Normalised LR/HR pairs of fluorescence through a camera (``training/microscopy.py``: simulated structures,
    the left half of the real nuclear.png and the photos' luminance, percentile map of the LR on both), drawn
    with flips and rotations from a pool made once per scale by parallel processes: a pair costs milliseconds
    to simulate, and the accelerator must not wait. Validation: the held-out right half of nuclear.png, LR by
    binning alone."""

    channels = 1

    def __init__(self, data: Path, pool: int = 16000, lr_patch: int = 48):
        self.data, self.nuclear = Path(data), Path(data) / "microscopy" / "nuclear.png"
        if not self.nuclear.is_file():
            raise SystemExit(f"no {self.nuclear}: run scripts/device/pack.py with mahotas installed")
        self.pool, self.lr_patch = pool, lr_patch
        self._pairs = {}

    def pairs(self, scale):
        if scale not in self._pairs:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            chunk = 250
            jobs = [(scale * 1000 + i, min(chunk, self.pool - i * chunk)) for i in range(-(-self.pool // chunk))]
            with ProcessPoolExecutor(mp_context=multiprocessing.get_context("spawn")) as ex:
                parts = list(ex.map(_microscopy_chunk, *zip(*[(s, n, scale, self.lr_patch, self.data)
                                                              for s, n in jobs])))
            self._pairs[scale] = tuple(np.concatenate(a) for a in zip(*parts))
        return self._pairs[scale]

    def batch(self, scale, n, p, rng):
        assert p == self.lr_patch, "the pool is made of patches of one size"
        lr, hr = self.pairs(scale)
        idx = rng.integers(len(lr), size=n)
        a, b = augment(lr[idx], hr[idx], rng.integers(8))
        return np.ascontiguousarray(a), np.ascontiguousarray(b)

    def validator(self, scale):
        return microscopy_validator(scale, self.nuclear)

    def sequence(self, scale, batch, p, seed, workers=4):
        self.pairs(scale)  # made before training starts, not inside the first step
        return batches(self, scale, batch, p, seed, workers)
