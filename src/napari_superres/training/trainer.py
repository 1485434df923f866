"""``train(config)``: a Keras ``fit`` over streamed patches, with callbacks that make the run survive.

After every epoch: validation on whole images (model and bicubic, through the engine), the model file
replaced if it is the best so far (atomically; GAN mode keeps the latest), a checkpoint for ``resume``, and a
line in the JSON-lines log. Between steps: ``progress(done, total)`` and ``cancel()``. A NaN loss stops the
run and keeps the last good model.
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from typing import Callable, Optional

import keras
import numpy as np

from ..errors import Cancelled, InputError, OutputError, SuperResError
from ..models.loading import SRModel, save_model
from ..models.registry import build_model, geometry
from .config import TrainConfig
from .gan import GANTrainer, patch_discriminator, require_tensorflow
from .losses import PIXEL_LOSSES
from .patches import ImageCache, PatchSampler
from .plan import Plan, prepare
from .runfiles import RunLog, checkpoint_path, load_checkpoint, log_path, run_dir, save_checkpoint
from .tboard import ScalarWriter
from .validation import run_model

# what must match between a checkpoint and a resumed run
_RESUME_KEYS = ("arch", "scale", "gan")


class TrainingError(SuperResError):
    """The run stopped on its own (NaN loss); the message says what was kept."""


class _Batches(keras.utils.PyDataset):
    """``steps`` random batches per epoch; batch ``i`` of epoch ``e`` is drawn from seed ``(seed, e, i)``."""

    def __init__(self, sampler: PatchSampler, steps: int, batch: int, seed: int, workers: int):
        super().__init__(workers=workers, use_multiprocessing=False)
        self.sampler, self.steps, self.batch, self.seed = sampler, steps, batch, seed
        self.epoch = 0

    def __len__(self):
        return self.steps

    def __getitem__(self, i):
        return self.sampler.batch(np.random.default_rng([self.seed, self.epoch, int(i)]), self.batch)


def _fresh_run_dir(cfg: TrainConfig) -> None:
    d = run_dir(cfg.out)
    if not cfg.resume:  # starting over: drop the previous run's files (only ours)
        for name in ("log.jsonl", "checkpoint.npz"):
            (d / name).unlink(missing_ok=True)
        shutil.rmtree(d / "tensorboard", ignore_errors=True)
    try:
        d.mkdir(exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create {d}: {e.strerror or e}") from None


class _Run(keras.callbacks.Callback):
    """Everything that happens between steps and after each epoch."""

    def __init__(self, *, cfg, generator, trainer, batches, samples, kind, base, runlog, normalization,
                 channels, describe, state, progress, cancel, board):
        super().__init__()
        self.cfg, self.generator, self.trainer, self.batches = cfg, generator, trainer, batches
        self.samples, self.kind, self.base, self.runlog = samples, kind, base, runlog
        self.normalization, self.channels, self.describe = normalization, channels, describe
        self.state, self.progress, self.cancel, self.board = state, progress, cancel, board
        self.status = "running"
        self.nan_at = None
        self.steps_in_epoch = 0
        self.epoch_start = time.time()

    # between steps -------------------------------------------------------------------------------------
    def on_epoch_begin(self, epoch, logs=None):
        self.batches.epoch = epoch
        self.steps_in_epoch = 0
        self.epoch_start = time.time()

    def on_train_batch_end(self, batch, logs=None):
        self.steps_in_epoch = batch + 1
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            self.nan_at = (self.batches.epoch + 1, batch + 1)
            self.trainer.stop_training = True
            return
        if self.progress is not None:
            total = self.cfg.epochs * self.cfg.steps_per_epoch
            self.progress(self.batches.epoch * self.cfg.steps_per_epoch + batch + 1, total)
        if self.cancel is not None and self.cancel():
            self.status = "cancelled"
            self.trainer.stop_training = True

    # after each epoch ----------------------------------------------------------------------------------
    def on_epoch_end(self, epoch, logs=None):
        if self.nan_at is not None or self.steps_in_epoch < self.cfg.steps_per_epoch:
            return  # a broken or partial epoch is never saved
        logs = logs if logs is not None else {}
        done = epoch + 1
        record = {"epoch": done, "loss": float(logs.get("loss", float("nan")))}
        for k in ("pixel_loss", "adv_loss", "d_loss"):
            if k in logs:
                record[k] = float(logs[k])
        if self.samples:
            try:
                val = run_model(self.srmodel(), self.samples, self.cfg.scale, self.kind, cancel=self.cancel)
            except Cancelled:  # stopped during validation: this epoch is not saved
                self.status = "cancelled"
                self.trainer.stop_training = True
                return
            record.update(val_psnr=val["psnr"], val_ssim=val["ssim"])
        record.update(bicubic_psnr=self.base.get("bicubic_psnr"), bicubic_ssim=self.base.get("bicubic_ssim"))
        st = self.state
        better = not self.samples or self.cfg.gan or st["best_psnr"] is None or record["val_psnr"] > st["best_psnr"]
        st["epoch"] = done
        st["seconds"] += time.time() - self.epoch_start
        if better:
            st["best_epoch"] = done
            st["best_psnr"] = record.get("val_psnr")
            st["best_ssim"] = record.get("val_ssim")
            self.save_model("running")
        self.save_checkpoint()
        record["best"] = bool(better)
        record["time"] = round(time.time() - self.epoch_start, 3)
        self.runlog.write("epoch", **record)
        if self.board is not None:
            self.board.write(done, {k: v for k, v in record.items() if k not in ("epoch", "best")})

    def srmodel(self) -> SRModel:
        multiple, overlap = geometry(self.cfg.arch, **self.cfg.arch_options)
        return SRModel(
            name=self.cfg.out.stem, path=None, keras_model=self.generator, scale=self.cfg.scale,
            channels=self.channels, multiple=multiple, overlap=overlap, normalization=self.normalization,
        )

    def save_model(self, status: str) -> None:
        save_model(self.generator, self.cfg.out, self.describe(self.state, status))
        self.state["saved"] = True

    def save_checkpoint(self) -> None:
        groups = {"generator": self.generator.get_weights(), "optimizer": _opt_values(self.trainer.optimizer)}
        if self.cfg.gan:
            groups["discriminator"] = self.trainer.discriminator.get_weights()
            groups["d_optimizer"] = _opt_values(self.trainer.d_optimizer)
        save_checkpoint(checkpoint_path(self.cfg.out), groups, self.state)


def _opt_values(opt) -> list:
    return [np.asarray(keras.ops.convert_to_numpy(v)) for v in opt.variables]


def _restore_optimizer(opt, values, what) -> None:
    if len(opt.variables) != len(values):
        raise InputError(f"the checkpoint's {what} state does not fit this model; start over with --overwrite")
    for v, a in zip(opt.variables, values):
        v.assign(a)


def _set_status(path: Path, status: str) -> None:
    """Record how the run ended in the model's description."""
    from ..models.description import read_description, write_description

    desc = read_description(path) or {}
    desc.setdefault("training", {})["status"] = status
    write_description(path, desc)


def _optimizer(cfg: TrainConfig):
    schedule = keras.optimizers.schedules.CosineDecay(
        cfg.lr, decay_steps=cfg.epochs * cfg.steps_per_epoch, alpha=0.1
    )
    return keras.optimizers.Adam(schedule)


def train(config: TrainConfig, progress: Optional[Callable[[int, int], None]] = None,
          cancel: Optional[Callable[[], bool]] = None, on_event: Optional[Callable[[dict], None]] = None,
          plan: Optional[Plan] = None) -> Path:
    """Train a model as ``config`` says; return the path of the model file (``config.out``).

    ``progress(done, total)`` after every step (steps over the whole run); ``cancel()`` is asked after every
    step: when it returns True the run stops, the model file holds the best complete epoch (or, if none
    finished yet, the weights so far) and the return is normal (the log's ``end`` record says "cancelled").
    ``on_event(record)`` receives each record written to the JSON-lines log (:func:`runfiles.log_path`).
    ``plan``: the result of :func:`plan.prepare` for this config, when the caller checked the data already.
    Raises a :class:`~napari_superres.errors.SuperResError` with one line for bad data, bad options, an
    unwritable output, or a NaN loss (:class:`TrainingError`, after keeping the last good model).
    """
    t_start = time.time()
    plan = plan if plan is not None else prepare(config)
    cfg, data, channels, deg = plan.cfg, plan.data, plan.channels, plan.degradation
    train_items, samples, kind, base = plan.train_items, plan.samples, plan.kind, plan.base
    normalization, warnings = plan.normalization, plan.warnings
    if cfg.gan:
        require_tensorflow()

    state = {"epoch": 0, "best_epoch": None, "best_psnr": None, "best_ssim": None, "seconds": 0.0,
             "saved": False, "channels": channels, "config": cfg.to_dict()}
    groups = None
    if cfg.resume:
        groups, state = load_checkpoint(checkpoint_path(cfg.out))
        old = state.get("config", {})
        diff = [k for k in _RESUME_KEYS if str(old.get(k)) != str(cfg.to_dict()[k])]
        if state.get("channels") not in (None, channels):
            diff.append("channels")
        if diff:
            raise InputError(
                "cannot resume: the checkpoint was made with different " + ", ".join(
                    f"{k} ({old.get(k, state.get(k))} vs {cfg.to_dict().get(k, channels)})" for k in diff)
            )
        if state["epoch"] >= cfg.epochs:
            raise InputError(f"the run already has {state['epoch']} epochs; ask for more with --epochs")
        state["config"] = cfg.to_dict()
    _fresh_run_dir(cfg)
    runlog = RunLog(log_path(cfg.out), on_event)

    keras.utils.set_random_seed(cfg.seed + state["epoch"])
    generator = build_model(cfg.arch, cfg.scale, channels, **cfg.arch_options)
    pixel_loss = PIXEL_LOSSES[cfg.loss]
    if cfg.gan:
        trainer = GANTrainer(
            generator, patch_discriminator(channels), pixel_loss, weight=cfg.gan_weight,
            pretrain_steps=cfg.pretrain_steps, relativistic=cfg.gan_loss == "relativistic",
        )
        trainer.compile(_optimizer(cfg), _optimizer(cfg))
    else:
        trainer = generator
        trainer.compile(optimizer=_optimizer(cfg), loss=pixel_loss)
        trainer.optimizer.build(generator.trainable_variables)
    if groups is not None:
        generator.set_weights(groups["generator"])
        _restore_optimizer(trainer.optimizer, groups["optimizer"], "optimizer")
        if cfg.gan:
            trainer.discriminator.set_weights(groups["discriminator"])
            _restore_optimizer(trainer.d_optimizer, groups["d_optimizer"], "discriminator optimizer")

    n_train = sum(len(it.slices) for it in train_items)

    microscopy = (not data.paired and deg.kind == "microscope") or (
        channels == 1 and normalization.get("mode") == "percentile")

    def describe(st, status):
        return {
            "name": cfg.out.stem,
            "architecture": cfg.arch,
            "domain": "microscopy" if microscopy else "photo",
            "scale": cfg.scale,
            "channels": channels,
            "normalization": normalization,
            "multiple": geometry(cfg.arch, **cfg.arch_options)[0],
            "overlap": geometry(cfg.arch, **cfg.arch_options)[1],  # the options change the receptive field
            "options": dict(cfg.arch_options),
            "training": {
                "data": str(cfg.data_dir), "mode": "paired" if data.paired else "hr-only",
                "degradation": None if data.paired else deg.to_dict(), "images": n_train,
                "files": len(train_items), "dtypes": data.dtypes, "patch": cfg.hr_patch, "batch": cfg.batch,
                "steps_per_epoch": cfg.steps_per_epoch, "epochs": st["epoch"], "loss": cfg.loss,
                "learning_rate": cfg.lr,
                "gan": {"loss": cfg.gan_loss, "weight": cfg.gan_weight, "pretrain_steps": cfg.pretrain_steps}
                if cfg.gan else None,
                "seed": cfg.seed, "seconds": round(st["seconds"], 1), "backend": keras.backend.backend(),
                "status": status,
            },
            "validation": {} if not samples else {
                "psnr": st["best_psnr"], "ssim": st["best_ssim"], **base, "metric": kind, "images": len(samples),
                "epoch": st["best_epoch"], "selection": "last epoch (GAN)" if cfg.gan else "best validation PSNR",
            },
        }

    batches = _Batches(
        PatchSampler(train_items, ImageCache(normalization, channels), scale=cfg.scale, hr_patch=cfg.hr_patch,
                     degradation=deg, paired=data.paired),
        cfg.steps_per_epoch, cfg.batch, cfg.seed, cfg.workers,
    )
    run = _Run(cfg=cfg, generator=generator, trainer=trainer, batches=batches, samples=samples, kind=kind,
               base=base, runlog=runlog, normalization=normalization, channels=channels, describe=describe,
               state=state, progress=progress, cancel=cancel,
               board=ScalarWriter(run_dir(cfg.out) / "tensorboard") if cfg.tensorboard else None)

    runlog.write(
        "start", model=cfg.out, arch=cfg.arch, scale=cfg.scale, channels=channels, mode="paired" if data.paired
        else "hr-only", train_images=n_train, train_files=len(train_items), val_images=len(samples),
        initial_epoch=state["epoch"], epochs=cfg.epochs, steps_per_epoch=cfg.steps_per_epoch,
        normalization=normalization, metric=kind, **base, warnings=warnings, config=cfg.to_dict(),
        parameters=int(generator.count_params()),
    )
    try:
        if cancel is not None and cancel():
            run.status = "cancelled"
        else:
            trainer.fit(batches, epochs=cfg.epochs, initial_epoch=state["epoch"], callbacks=[run], verbose=0)
        if run.nan_at is not None:
            kept = "no model was saved"
            if state["saved"] and cfg.out.exists():
                _set_status(cfg.out, "stopped: the loss became NaN")
                kept = f"kept the model of epoch {state['best_epoch']} at {cfg.out}"
            raise TrainingError(
                f"the loss became NaN or infinite at epoch {run.nan_at[0]}, step {run.nan_at[1]}; training stopped "
                f"and {kept} (lower the learning rate, or check the data)"
            )
        if run.status == "running":
            run.status = "finished"
        if not state["saved"] or not cfg.out.exists():  # stopped before a first epoch ended: keep what was learned
            run.save_model(run.status)
        else:
            _set_status(cfg.out, run.status)
    except BaseException as e:
        message = str(e) if isinstance(e, SuperResError) else f"{type(e).__name__}: {e}"
        runlog.write("error", message=message, model=cfg.out if cfg.out.exists() else None,
                     epochs=state["epoch"])
        raise
    finally:
        if run.board is not None:
            run.board.close()
    runlog.write(
        "end", status=run.status, model=cfg.out, epochs=state["epoch"], best_epoch=state["best_epoch"],
        val_psnr=state["best_psnr"], val_ssim=state["best_ssim"], **base, seconds=round(time.time() - t_start, 1),
    )
    return cfg.out
