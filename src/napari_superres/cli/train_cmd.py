"""``napari-superres train DATA_DIR --arch A --scale S -o MODEL.keras``: train a model on a folder of images.

The data, the options and the output are all checked before TensorFlow loads. A progress bar counts steps;
after each epoch one line gives the loss and the validation PSNR/SSIM next to bicubic. Ctrl-C stops after the
current step and keeps a loadable model (a second Ctrl-C aborts at once); ``--resume`` continues a stopped run.
"""

from __future__ import annotations

import logging
import signal
import sys

from ..errors import SuperResError
from ._common import Progress, at_least, prepare_device, quiet_native_stderr

CANCELLED = 130


def add_parser(subparsers):
    from ..models.registry import ARCHITECTURES
    from ..training.config import DEGRADATIONS, GAN_LOSSES, LOSSES, NORMALIZATIONS

    p = subparsers.add_parser(
        "train",
        help="train a model on a folder of images",
        description="Train a super-resolution model. DATA_DIR holds lr/ and hr/ subfolders of image pairs "
        "(matched by name), or high-resolution images only, from which the low-resolution inputs are made "
        "(--hr-only). Stacks train on every slice. The model file carries its description and validation scores; "
        "MODEL.train/ next to it holds the checkpoint (for --resume) and log.jsonl.",
    )
    p.add_argument("data_dir", metavar="DATA_DIR", help="folder of images, or with lr/ and hr/ subfolders")
    p.add_argument("--arch", default="espcn", choices=sorted(ARCHITECTURES), help="architecture (default: espcn)")
    p.add_argument("--scale", type=int, default=2, choices=(2, 3, 4), help="upscaling factor (default: 2)")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.keras", help="model file to write")
    g = p.add_argument_group("schedule")
    g.add_argument("--epochs", type=at_least(1), default=20, help="epochs (default: 20)")
    g.add_argument("--steps", type=at_least(1), default=100, help="steps per epoch (default: 100)")
    g.add_argument("--patch", type=at_least(8), default=96, help="HR patch side (default: 96)")
    g.add_argument("--batch", type=at_least(1), default=16, help="patches per step (default: 16)")
    g.add_argument("--lr", type=float, help="starting learning rate (default: by architecture)")
    g.add_argument("--loss", choices=LOSSES, default="l1", help="pixel loss (default: l1)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    g.add_argument("--workers", type=at_least(1), default=1, help="threads making patches")
    d = p.add_argument_group("data")
    mode = d.add_mutually_exclusive_group()
    mode.add_argument("--hr-only", dest="hr_only", action="store_const", const=True,
                      help="make the LR inputs from the HR images (default when there are no lr/hr subfolders)")
    mode.add_argument("--paired", dest="hr_only", action="store_const", const=False,
                      help="require lr/ and hr/ subfolders")
    d.add_argument("--degradation", choices=DEGRADATIONS, default="bicubic",
                   help="HR-only: bicubic (antialiased, the benchmark), area (pixel binning) or microscope "
                   "(a fluorescence camera: binning, shot and read noise over a range of photon levels, offset, "
                   "integer counts; percentile normalisation)")
    d.add_argument("--blur", type=at_least(0, float), default=0.0, help="HR-only: Gaussian PSF sigma, HR px")
    d.add_argument("--noise", type=at_least(0, float), default=0.0,
                   help="HR-only: largest Gaussian noise sigma (0..1 range)")
    d.add_argument("--poisson", type=at_least(0, float), default=0.0,
                   help="HR-only: photons at full range for shot noise (0: none)")
    d.add_argument("--jpeg", type=at_least(0), default=0, help="HR-only: lowest JPEG quality (0: none)")
    d.add_argument("--channels", choices=("auto", "1", "3"), default="auto",
                   help="model channels (default: as the data; 1 on RGB trains on luminance)")
    d.add_argument("--normalization", choices=NORMALIZATIONS, default="auto",
                   help="auto: range for 8-bit data, percentile 2/99.8 otherwise")
    d.add_argument("--val-dir", metavar="DIR", help="validation folder (default: hold out --val-fraction of the files)")
    d.add_argument("--val-fraction", type=float, default=0.1, help="files held out for validation (default: 0.1)")
    gan = p.add_argument_group("adversarial (TensorFlow backend)")
    gan.add_argument("--gan", action="store_true", help="add a patch discriminator (ESRGAN-style, no VGG)")
    gan.add_argument("--gan-loss", choices=GAN_LOSSES, default="relativistic", help="default: relativistic")
    gan.add_argument("--gan-weight", type=float, default=5e-3, help="adversarial loss weight (default: 0.005)")
    gan.add_argument("--gan-pretrain", type=at_least(0),
                     help="steps on the pixel loss alone first (default: half the run)")
    r = p.add_argument_group("run")
    existing = r.add_mutually_exclusive_group()
    existing.add_argument("--resume", action="store_true", help="continue the run of MODEL from its checkpoint")
    existing.add_argument("--overwrite", action="store_true", help="replace MODEL and start its run over")
    r.add_argument("--tensorboard", action="store_true", help="also write TensorBoard logs to MODEL.train/tensorboard")
    r.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto", help="cpu hides all GPUs")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def config_from_args(args):
    from ..training.config import TrainConfig

    return TrainConfig(
        data_dir=args.data_dir, out=args.output, arch=args.arch, scale=args.scale, epochs=args.epochs,
        steps_per_epoch=args.steps, patch=args.patch, batch=args.batch, hr_only=args.hr_only,
        degradation=args.degradation, blur=args.blur, noise=args.noise, poisson=args.poisson, jpeg=args.jpeg,
        loss=args.loss, learning_rate=args.lr, gan=args.gan, gan_loss=args.gan_loss, gan_weight=args.gan_weight,
        gan_pretrain=args.gan_pretrain, resume=args.resume, overwrite=args.overwrite, val_dir=args.val_dir,
        val_fraction=args.val_fraction, seed=args.seed,
        channels=args.channels if args.channels == "auto" else int(args.channels),
        normalization=args.normalization, tensorboard=args.tensorboard, workers=args.workers,
    )


def _fmt(v, digits=2):
    return "-" if v is None else f"{v:.{digits}f}"


class Reporter:
    """Prints the start line, one line per epoch (above the progress bar) and the end line."""

    def __init__(self, bar: Progress, epochs: int):
        self.bar, self.epochs = bar, epochs

    def _print(self, text):
        if self.bar.bar is not None:
            self.bar.bar.write(text, file=sys.stdout)
        else:
            print(text, flush=True)

    def __call__(self, r):
        event = r["event"]
        if event == "start":
            start = f"from epoch {r['initial_epoch']}, " if r["initial_epoch"] else ""
            val = (f"validating on {r['val_images']} (bicubic {_fmt(r.get('bicubic_psnr'))} dB / "
                   f"{_fmt(r.get('bicubic_ssim'), 4)})" if r["val_images"] else "no validation")
            self._print(
                f"training {r['arch']} x{r['scale']} ({r['channels']} channel(s), {r['parameters']:,} parameters) on "
                f"{r['train_images']} {r['mode']} image(s), {val}; {start}{r['epochs']} epochs of "
                f"{r['steps_per_epoch']} steps"
            )
        elif event == "epoch":
            line = f"epoch {r['epoch']}/{self.epochs}  loss {r['loss']:.5f}"
            if r.get("val_psnr") is not None:
                gain = r["val_psnr"] - r["bicubic_psnr"]
                line += (f"  val PSNR {r['val_psnr']:.2f} dB (bicubic {r['bicubic_psnr']:.2f}, {gain:+.2f})"
                         f"  SSIM {r['val_ssim']:.4f} (bicubic {r['bicubic_ssim']:.4f})")
            line += f"  {r['time']:.1f} s" + ("  saved" if r.get("best") else "")
            self._print(line)
        elif event == "end":
            self.bar.close()
            what = "finished" if r["status"] == "finished" else "stopped (cancelled)"
            score = ""
            if r.get("val_psnr") is not None:
                score = (f"; epoch {r['best_epoch']}: PSNR {r['val_psnr']:.2f} dB vs bicubic "
                         f"{r['bicubic_psnr']:.2f}, SSIM {r['val_ssim']:.4f} vs {r['bicubic_ssim']:.4f}")
            print(f"{what} after {r['epochs']} epoch(s) in {r['seconds']:.0f} s: model {r['model']}{score}", flush=True)


def run(args):
    prepare_device(args.device)
    warnings = logging.StreamHandler(sys.stderr)
    warnings.setFormatter(logging.Formatter("napari-superres: warning: %(message)s"))
    logger = logging.getLogger("napari_superres.training")
    logger.addHandler(warnings)
    try:
        return _run(args)
    finally:
        logger.removeHandler(warnings)


def _run(args):
    from ..training.plan import prepare

    cfg = config_from_args(args)
    plan = prepare(cfg)  # every check that needs no Keras: a mistake fails here, in seconds

    with quiet_native_stderr():  # TensorFlow's start-up messages (loading, device probing) are held back
        import keras

        from ..training.trainer import train

        keras.ops.zeros((1,))

    stop = {"asked": False}

    def on_sigint(signum, frame):
        if stop["asked"]:
            raise KeyboardInterrupt
        stop["asked"] = True
        print("\nnapari-superres: stopping after this step (Ctrl-C again to abort)", file=sys.stderr, flush=True)

    bar = Progress("train", enabled=not args.quiet)
    report = Reporter(bar, cfg.epochs)
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        train(cfg, progress=bar, cancel=lambda: stop["asked"], on_event=report, plan=plan)
    except SuperResError:
        bar.close()
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.close()
    return CANCELLED if stop["asked"] else 0
