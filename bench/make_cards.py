"""Write the model cards (``models/weights/<name>.md``) and ``docs/models.md`` from the shipped models' own
descriptions and the figures of a benchmark run.

    .venv/bin/napari-superres bench -o bench/results/cpu.json     # full run, a few minutes
    .venv/bin/python bench/make_cards.py [--results bench/results/cpu.json]

Validation scores, training data and budget come from each ``.keras`` file's description (written by
``scripts/train_zoo.py``); speed, efficiency and the options' effect from the benchmark figures. Run it again
whenever the weights change: ``tests/core/test_shipped_models.py`` checks that every card quotes its model's
own scores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from napari_superres.benchmark import HELD_OUT  # noqa: E402  (no Keras import)
from napari_superres.models.catalog import DEFAULT_MODEL, list_models, model_domain  # noqa: E402
from napari_superres.models.registry import ARCHITECTURES  # noqa: E402

RESULTS = REPO / "bench" / "results" / "cpu.json"
EXTRA = REPO / "bench" / "results" / "cpu-skimage.json"
DOMAINS = REPO / "bench" / "results" / "microscopy.json"  # bench/microscopy_domains.py
GPU = REPO / "bench" / "results" / "gpu-h200.json"  # scripts/device/bench_gpu.py on the device machine
EQUAL = REPO / "bench" / "results" / "equal-budget.json"  # bench/equal_budget.py
TABLE = REPO / "docs" / "models.md"


def architecture_text(desc: dict) -> str:
    arch, scale, opts = desc.get("architecture"), desc["scale"], desc.get("options") or {}
    stages = "two x2 sub-pixel stages" if scale == 4 else f"one x{scale} sub-pixel stage"
    if arch == "edsr":
        blocks, feats = opts.get("n_blocks", 16), opts.get("n_feats", 64)
        return (f"EDSR (Lim et al. 2017) with {blocks} residual blocks of {feats} features (EDSR-baseline has 16 "
                f"of 64), no batch norm, a long skip over the body, {stages} (convolution + pixel shuffle), and a "
                "global bicubic skip: the network adds the detail that bicubic interpolation misses.")
    if arch == "espcn":
        feats = opts.get("n_feats", 64)
        return (f"ESPCN (Shi et al. 2016): three convolutions in low resolution (5x5 with {feats} features, 3x3 "
                f"with {feats // 2}, tanh; then 3x3 to {3 * scale * scale} channels), a x{scale} pixel shuffle, "
                "and a global bicubic skip. Every convolution runs on the small input: the fast model.")
    if arch == "span":
        feats, blocks = opts.get("n_feats", 48), opts.get("n_blocks", 6)
        return (f"SPAN (Wan et al. 2024, NTIRE 2024 efficient SR): {blocks} blocks of {feats} features, each three 3x3 "
                "convolutions with SiLU and the parameter-free attention sigmoid(x) - 0.5; trained with wider "
                "branches (1x1-3x3-1x1 plus a 1x1 skip) that are merged into plain 3x3 convolutions for inference; "
                f"one x{scale} sub-pixel stage and a global bicubic skip.")
    spec = ARCHITECTURES.get(arch)
    return spec.summary if spec else str(arch)


def _mix_text(run: dict) -> str:
    """Where a microscopy run's pairs came from (``training.microscopy.MIX``), if it says."""
    if "real_fraction" not in run:
        return ""
    real, photo, clean = run["real_fraction"], run.get("photo_fraction", 0.0), run.get("clean_fraction", 0.0)
    return (f"; pairs {real:.0%} real fluorescence, {photo:.0%} photographs, {max(0.0, 1 - real - photo):.0%} "
            f"simulated, {clean:.0%} of them through an almost noise-free camera")


def _run_text(run: dict) -> str:
    steps, batch, patch = run.get("steps", "?"), run.get("batch", "?"), run.get("lr_patch", "?")
    return (f"{steps:,} steps of {batch} random {patch}x{patch} LR patches (flips and rotations), "
            f"{run.get('minutes', '?')} minutes ({run.get('machine', '?')}), {run.get('loss', 'L1')} loss, Adam, "
            f"{run.get('precision', 'float32')} compute with float32 weights{_mix_text(run)}")


def training_lines(train: dict) -> list:
    """The budget: one line per training run (a resumed model lists each), then validation PSNR against steps."""
    runs = train.get("runs") or [train]
    start = f"; started from the body of `{train['warm_start']}`" if train.get("warm_start") and len(runs) == 1 else ""
    if len(runs) == 1:
        lines = [f"- Budget: {_run_text(runs[0])}{start}."]
    else:
        lines = [f"- Budget: {train.get('steps', 0):,} steps in {len(runs)} runs, {train.get('patches', 0):,} patches, "
                 f"{train.get('minutes', '?')} minutes in all; each run resumed from the previous weights:"]
        lines += [f"  {i + 1}. {_run_text(run)}." for i, run in enumerate(runs)]
    curves = [(run.get("curve_images"), run["curve"]) for run in runs if run.get("curve")]
    for what, curve in curves:
        lines += ["", f"  Against steps ({what}): "
                  + ", ".join(f"{int(step):,}: {psnr:.2f} dB" for step, psnr in curve) + "."]
    return lines


def reproduce_text(name: str, train: dict, micro: bool) -> str:
    runs = train.get("runs") or [train]
    if micro:
        text = f"`.venv/bin/pip install mahotas && .venv/bin/python scripts/train_microscopy.py --only {name}`"
        if any(_mix_text(run) for run in runs):
            text += " with each run's pairs as listed (`--real-fraction`, `--photo-fraction`, `--clean-fraction`)"
    else:
        text = f"`python3 ../shared/data/make_corpus.py && .venv/bin/python scripts/train_zoo.py --only {name}`"
    if any("H200" in str(run.get("machine", "")) or "GPU" in str(run.get("machine", "")) for run in runs):
        text += (f"; the GPU runs: `bash scripts/device/run.sh --only {name}` on the device machine, then "
                 "`scripts/device/import_weights.py` (docs/device-run.md)")
    return text


def photo_validation_lines(name, val) -> list:
    return [
        f"{val.get('images', 'held-out images')} ({', '.join(HELD_OUT)}), never used in training. LR made by "
        f"antialiased bicubic downscaling (MATLAB `imresize` convention); {val.get('metric', 'PSNR/SSIM on Y')}.",
        "",
        "| method | PSNR-Y (dB) | SSIM-Y |",
        "|---|---:|---:|",
        f"| **{name}** | **{val['psnr']:.2f}** | **{val['ssim']:.4f}** |",
        f"| bicubic | {val['bicubic_psnr']:.2f} | {val['bicubic_ssim']:.4f} |",
        f"| Lanczos | {val['lanczos_psnr']:.2f} | {val['lanczos_ssim']:.4f} |",
        "",
        f"Gain: {val['psnr'] - val['bicubic_psnr']:+.2f} dB over bicubic, {val['psnr'] - val['lanczos_psnr']:+.2f} dB "
        "over Lanczos.",
    ]


def microscopy_validation_lines(name, val) -> list:
    """Each camera setting of the validation: binning alone (the image's own noise kept) and a camera at a photon
    level; whole images and background-only crops (where a model must not invent structure)."""
    lines = [
        f"{val.get('images', 'held-out real fluorescence')}, never used in training; {val.get('metric')}.",
        "",
        "| LR made by | model PSNR | bicubic PSNR | gain | model SSIM | bicubic SSIM | background: model / bicubic |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {"binning": f"{val.get('lr', 'binning')} alone"}
    for setting, m in (val.get("per_setting") or {"binning": val}).items():
        label = labels.get(setting, f"binning + camera noise at {setting.split('=')[-1]} photons")
        lines.append(f"| {label} | {m['psnr']:.2f} | {m['bicubic_psnr']:.2f} | {m['psnr'] - m['bicubic_psnr']:+.2f} | "
                     f"{m['ssim']:.4f} | {m['bicubic_ssim']:.4f} | {m.get('background_psnr', float('nan')):.2f} / "
                     f"{m.get('background_bicubic_psnr', float('nan')):.2f} |")
    settings = val.get("per_setting") or {"binning": val}
    clean = settings.get("binning", val)
    background = clean.get("background_psnr", 0) - clean.get("background_bicubic_psnr", 0)
    if clean["psnr"] < clean["bicubic_psnr"]:
        verdict = ("on clean, bright data (binning alone) it scores below bicubic, since it smooths the image's own "
                   "noise that the reference keeps")
    else:
        verdict = "on clean data (binning alone) it also gains over bicubic"
    if background < 0:
        verdict += (f"; on background-only crops of clean data it is {-background:.2f} dB below bicubic, which "
                    "smooths the background's noise further")
    lines += ["", f"Trained on camera images with shot and read noise, the model also denoises: on noisy data it "
              f"gains several dB; {verdict}. Check it on your data (`napari-superres evaluate`)."]
    return lines


def limits_text(name, micro) -> str:
    if micro:
        return ("Trained on simulated fluorescence and one real image, through a simulated camera (binning, shot and "
                "read noise); other structures, optics or cameras may differ: validate on your own data "
                f"(`napari-superres evaluate -m {name} HR_DIR`) or train a model on it (`napari-superres train "
                "--degradation microscope`) before measuring on the output.")
    return ("Trained on clean photographs degraded by bicubic downscaling only: it sharpens what bicubic blurs, but "
            "does not remove noise, blur or compression artefacts, and it invents no detail beyond what the training "
            "photos taught it. Microscopy, medical and remote-sensing images differ from photographs: validate on "
            f"your own data (`napari-superres evaluate -m {name} HR_DIR`) or train a model on it "
            "(`napari-superres train`) before measuring on the output.")


def tiling_text(desc: dict) -> str:
    overlap, radius = desc.get("overlap"), desc.get("receptive_radius")
    if radius is None or overlap >= radius:
        return (f"tiles read {overlap} LR pixels of context on each side, the network's receptive-field radius: "
                "tiled and whole-image results agree up to float rounding")
    return (f"tiles read {overlap} LR pixels of context on each side (the receptive field reaches {radius}; "
            f"{overlap} is the smallest context that keeps a tiled result within one grey level of the whole-image "
            "one on the validation photos)")


def _find(rows, name, **match):
    for row in rows or []:
        if row.get("model") == name and all(row.get(k) == v for k, v in match.items()):
            return row
    return None


def machine_text(results: dict) -> str:
    m = results["machine"]
    tf = f" + TensorFlow {m['tensorflow']}" if "tensorflow" in m else ""
    return (f"{m['cpu']}, {m['cores']} cores ({m['isa']}), Keras {m['keras']}{tf}, "
            f"oneDNN {'on' if m.get('onednn', True) else 'off'}")


def card(info, results: dict, extras=()) -> str:
    desc, name = info.description, info.name
    val, train = desc["validation"], desc.get("training") or {}
    scale = desc["scale"]
    speed = _find(results.get("speed"), name)
    size_mb = info.path.stat().st_size / 1e6
    micro = model_domain(desc) == "microscopy"
    lines = [
        f"# {name}",
        "",
        f"x{scale} super-resolution of {'single-channel fluorescence microscopy' if micro else 'RGB photographs'}, "
        "shipped with napari-superres-keras" + (" (the default model)." if name == DEFAULT_MODEL else "."),
        "",
        "| | |",
        "|---|---|",
        f"| Domain | {model_domain(desc)} ({'fluorescence microscopy, one channel' if model_domain(desc) == 'microscopy' else 'photographs'}; `napari-superres models --json` states it) |",
        f"| Architecture | `{desc.get('architecture')}` {json.dumps(desc.get('options') or {})}: "
        f"{architecture_text(desc)} |",
        f"| Parameters | {desc['parameters']:,} (float32; the file is {size_mb:.2f} MB) |",
        ("| Input | 1 channel, any size, any dtype; each image mapped by its own 2 / 99.8 percentiles (CARE's "
         "normalisation), the output by the exact inverse map |" if micro else
         f"| Input | {desc['channels']} channels (RGB; gray images are fed as three equal channels), any size; values "
         f"scaled by the data type's range to [0, 1] |"),
        f"| Output | x{scale} height and width, the input's data type |",
        f"| Tiling | {tiling_text(desc)} |",
        "",
        "## Training",
        "",
        f"- Data: {train.get('data', 'not stated')}.",
        *training_lines(train),
        f"- Reproduce: {reproduce_text(name, train, micro)}.",
        "",
        "## Validation",
        "",
        *(microscopy_validation_lines(name, val) if micro else photo_validation_lines(name, val)),
    ]
    for extra in extras:
        q = _find(extra.get("quality"), name)
        if q:
            lines += ["", f"On {extra['quality_set']} (`napari-superres bench --quality skimage`): PSNR-Y "
                      f"{q['psnr']:.2f} dB / SSIM-Y {q['ssim']:.4f}, bicubic {q['bicubic_psnr']:.2f} / "
                      f"{q['bicubic_ssim']:.4f}, Lanczos {q['lanczos_psnr']:.2f} / {q['lanczos_ssim']:.4f} "
                      f"({q['psnr'] - q['bicubic_psnr']:+.2f} dB over bicubic, {q['psnr'] - q['lanczos_psnr']:+.2f} dB "
                      "over Lanczos)."]
    lines += [
        "",
        "## Speed",
        "",
    ]
    if speed:
        mm = results["matmul"]
        lines += [
            f"On {machine_text(results)}, measured by `napari-superres bench` "
            f"(a {speed['input']} RGB input, batch 1, float32, median of {results['config']['repeats']} calls after "
            f"warm-up): **{speed['mp_per_s']:.2f} output MP/s** ({speed['ms']:.0f} ms), {speed['macs'] / 1e9:.1f} GMAC "
            f"per call. Efficiency **{speed['efficiency']:.2f}**: {speed['gmac_per_cpu_s']:.1f} GMAC per CPU-second "
            f"against {speed['matmul_gmac_per_cpu_s']:.1f} for a {mm['n']}x{mm['n']} float32 matrix product timed "
            f"in alternation with it (from wall-clock time: {speed['efficiency_wall']:.2f}; the machine was shared, "
            f"load average {results['machine'].get('load_average', '?')} to "
            f"{results['machine'].get('load_average_end', '?')} during the run).",
        ]
        options = [o for o in results.get("options") or [] if o["model"] == name and "error" not in o]
        if options:
            lines += ["", f"Options (`napari-superres bench`, {speed['input']} input; speed-up from CPU time):", "",
                      "| option | MP/s | speed-up | efficiency | PSNR-Y on the crop | max change (grey levels) |",
                      "|---|---:|---:|---:|---:|---:|"]
            lines += [f"| {o['option']} | {o['mp_per_s']:.2f} | x{o['speedup']:.2f} | {o['efficiency']:.2f} | "
                      f"{o['psnr']:.2f} | {o['max_abs_diff']} |" for o in options]
    else:
        lines.append("Not measured yet: run `napari-superres bench` and `bench/make_cards.py`.")
    lines += [
        "",
        "## Use",
        "",
        "```",
        (f"napari-superres upscale stack.tif -m {name} -o stack_x{scale}.tif --axes ZYX" if micro else
         f"napari-superres upscale photo.png -m {name} -o photo_x{scale}.png"),
        "```",
        "",
        f"In Python: `napari_superres.upscale(image, \"{name}\")`; in napari: the Upscale widget, model `{name}`.",
        "",
        "## Limits",
        "",
        limits_text(name, micro),
        "",
    ]
    return "\n".join(lines)


def microscopy_table(infos, domains) -> list:
    """The microscopy models' validation, then every model on the held-out real fluorescence (photo and microscopy
    side by side: ``bench/microscopy_domains.py``)."""
    if not infos:
        return []
    lines = ["", "## Microscopy models", "",
             "Validated on held-out real fluorescence (" + infos[0].description["validation"].get("images", "") + "); "
             "PSNR/SSIM on the reference's percentile-normalised range (2 / 99.8). Each card has the details.", "",
             "| model | architecture | scale | parameters | LR by binning: PSNR | bicubic | gain | binning + noise "
             "(100 photons): PSNR | bicubic | gain |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for info in infos:
        d, per = info.description, info.description["validation"].get("per_setting", {})
        b, n = per.get("binning", d["validation"]), per.get("photons=100")
        noisy = (f"{n['psnr']:.2f} | {n['bicubic_psnr']:.2f} | {n['psnr'] - n['bicubic_psnr']:+.2f}" if n else "- | - | -")
        lines.append(f"| [{info.name}](../src/napari_superres/models/weights/{info.name}.md) | {d['architecture']} | "
                     f"x{d['scale']} | {d['parameters']:,} | {b['psnr']:.2f} | {b['bicubic_psnr']:.2f} | "
                     f"{b['psnr'] - b['bicubic_psnr']:+.2f} | {noisy} |")
    if domains:
        lines += ["", f"Photo and microscopy models on the same real fluorescence ({domains['images']}; "
                  "`bench/microscopy_domains.py`), gain over bicubic in dB:", "",
                  "| model | domain | LR by binning | binning + noise (100 photons) |", "|---|---|---:|---:|"]
        domain_of = {info.name: model_domain(info.description) for info in list_models()}
        for row in domains["rows"]:
            cells = [f"{row[k]['psnr'] - row[k]['bicubic_psnr']:+.2f}" if k in row else "-"
                     for k in ("binning", "photons=100")]
            lines.append(f"| {row['model']} | {domain_of.get(row['model'], '?')} | {cells[0]} | {cells[1]} |")
        ceiling = domains.get("binning_ceiling_psnr") or {}
        bicubic = {key: next((r["binning"]["bicubic_psnr"] for r in domains["rows"]
                              if r["model"].endswith(f"-{key}") and "binning" in r), None) for key in ceiling}
        if ceiling:
            lines += ["", "What binning leaves to recover: a perfect upscaler would reach "
                      + ", ".join(f"{ceiling[k]:.2f} dB at {k} (bicubic {bicubic[k]:.2f})" for k in ceiling
                                  if bicubic.get(k) is not None)
                      + " on these images, the rest being the reference's own noise, which no method can predict "
                      "(`training.metrics.binning_ceiling_psnr`)."]
        linear = domains.get("linear_upscaler") or {}
        if linear:
            taps = domains["linear_upscaler_taps"]
            lines += ["", f"What a linear filter reaches ({taps}x{taps} LR pixels per output pixel, least squares; "
                      "`training.validation.linear_baseline_scores`), gain over bicubic in dB: "
                      + "; ".join(f"at {k}, {r['trained'] - r['bicubic']:+.2f} fitted on the training half of "
                                  f"nuclear.png, {r['fitted_on_validation'] - r['bicubic']:+.2f} fitted on these "
                                  "validation images themselves (the best any linear filter can do on them)"
                                  for k, r in linear.items())
                      + ". Bicubic is itself such a filter: on this smooth, band-limited widefield image it is "
                      "close to the best linear map, so the models' gain over it is bounded by what the data "
                      "hold beyond linear interpolation."]
    return lines


def gpu_table(gpu) -> list:
    """Speed on a GPU (``scripts/device/bench_gpu.py``): output MP/s, efficiency against its own matrix product."""
    if not gpu:
        return []
    m, mm = gpu["machine"], gpu["matmul"]
    lines = ["", "## On a GPU", "",
             f"{', '.join(m.get('devices', []))} ({m.get('accelerator', 'NVIDIA H200')}), Keras {m['keras']} on "
             f"{m['backend']}; a {gpu['size']}x{gpu['size']} RGB input, tiles of {gpu['tile']}; the model's input and "
             "output cross the host link, as in real use. Efficiency: the model's multiply-accumulates per second "
             f"over those of an 8192-square matrix product in the same precision ({mm['float32']['tflops']:.0f} "
             f"TFLOP/s float32, {mm['bfloat16']['tflops']:.0f} bfloat16). `scripts/device/bench_gpu.py`.", "",
             "| model | precision | mode | output MP/s | efficiency |", "|---|---|---|---:|---:|"]
    lines += [f"| {r['model']} | {r['precision']} | {r['mode']} | {r['output_mp_s']:.1f} | {r['efficiency']:.3f} |"
              for r in gpu["models"]]
    whole = [r for r in gpu["models"] if r["mode"] == "whole"]
    gmacs, seconds = [r["gmacs"] for r in whole], [r["seconds"] for r in whole]
    if whole and max(gmacs) > 10 * min(gmacs) and max(seconds) < 5 * min(seconds):
        lines += ["", f"Models from {min(gmacs):.0f} to {max(gmacs):.0f} GMAC a call take {min(seconds) * 1e3:.0f} to "
                  f"{max(seconds) * 1e3:.0f} ms: the time goes outside the convolutions (the image's trips to and "
                  "from the GPU, Keras' call), not into them."]
    return lines


def equal_budget_table(equal) -> list:
    """Architectures trained from scratch for the same steps (``bench/equal_budget.py``): quality per MAC."""
    if not equal:
        return []
    lines = ["", "## Architectures at an equal training budget", "",
             f"Each trained from scratch for {equal['steps']:,} steps of {equal['batch']} patches of "
             f"{equal['lr_patch']}x{equal['lr_patch']} (x{equal['scale']}, the same batches for all; "
             f"{equal['machine']}, {equal['precision']}), scored like the shipped models on the "
             f"{equal['images']}. MACs: multiply-accumulates per output pixel of the form that runs at inference. "
             "`bench/equal_budget.py`.", "",
             "| architecture | options | parameters | kMAC / output px | PSNR-Y | vs Lanczos | dB per doubling of MACs "
             "over the smallest | training minutes |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    rows = sorted(equal["rows"], key=lambda r: r["macs_per_output_px"])
    base = rows[0]
    for r in rows:
        doublings = np.log2(r["macs_per_output_px"] / base["macs_per_output_px"])
        per = f"{(r['psnr'] - base['psnr']) / doublings:+.2f}" if doublings > 0 else "-"
        opts = ", ".join(f"{k}={v}" for k, v in r["options"].items()) or "defaults"
        lines.append(f"| {r['label']} | {opts} | {r['parameters']:,} | {r['macs_per_output_px'] / 1e3:.1f} | "
                     f"{r['psnr']:.2f} | {r['gain_over_lanczos']:+.2f} | {per} | {r['minutes']} |")
    return lines


def _e2e_input(results: dict) -> str:
    rows = [r for r in results.get("speed") or [] if r.get("e2e_input")]
    return rows[0]["e2e_input"] if rows else "768x768"


def table(infos, results: dict, extras=(), domains=None, gpu=None, equal=None) -> str:
    lines = [
        "# Shipped models",
        "",
        "Every model is trained by this project (`scripts/train_zoo.py`) on real photographs and validated on "
        f"photos it never saw ({', '.join(HELD_OUT)}): PSNR/SSIM on the Y channel (BT.601), border crop = scale, "
        "LR by antialiased bicubic downscaling, next to bicubic and Lanczos upscaling of the same LR images. "
        f"Speed: output megapixels per second on {machine_text(results)}, "
        f"{results['speed'][0]['input'] if results.get('speed') else ''} input, float32; efficiency = the model's "
        "multiply-accumulates per CPU-second over those of a float32 matrix product timed in alternation with it "
        f"({results['matmul']['float32_gmac_per_cpu_s']:.1f} GMAC per CPU-second at the start of the run); "
        "end to end: the same for `napari_superres.upscale` on a "
        f"{_e2e_input(results)} uint8 photo with the engine's defaults (tiles, normalisation, the map back to "
        "uint8), the model's multiply-accumulates on the whole image counted. Figures: "
        "`napari-superres bench`; each model's card has the details.",
        "",
        "| model | domain | architecture | scale | parameters | PSNR-Y | SSIM-Y | bicubic | Lanczos | vs Lanczos | MP/s | "
        "efficiency | end to end |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    photos = [info for info in infos if model_domain(info.description) != "microscopy"]
    for info in photos:
        d, v = info.description, info.description["validation"]
        s = _find(results.get("speed"), info.name)
        default = " (default)" if info.name == DEFAULT_MODEL else ""
        lines.append(
            f"| [{info.name}](../src/napari_superres/models/weights/{info.name}.md){default} | {model_domain(d)} | {d['architecture']} | "
            f"x{d['scale']} | {d['parameters']:,} | {v['psnr']:.2f} | {v['ssim']:.4f} | {v['bicubic_psnr']:.2f} | "
            f"{v['lanczos_psnr']:.2f} | {v['psnr'] - v['lanczos_psnr']:+.2f} | "
            + (f"{s['mp_per_s']:.2f} | {s['efficiency']:.2f} | " if s else "- | - | ")
            + (f"{s['e2e_efficiency']:.2f} |" if s and s.get("e2e_efficiency") else "- |")
        )
    options = [o for o in results.get("options") or [] if "error" not in o and o["option"] != "float32"]
    if options:
        lines += ["", "Options measured in the same run (CPU-time speed-up over float32 on the same input; largest "
                  "change of the output in grey levels):", ""]
        for label in dict.fromkeys(o["option"] for o in options):
            rows = [o for o in options if o["option"] == label]
            lines.append(f"- {label}: " + ", ".join(f"{o['model']} x{o['speedup']:.2f} (max change {o['max_abs_diff']})"
                                                   for o in rows) + ".")
    for extra in extras:
        lines += ["", f"On {extra['quality_set']} (`napari-superres bench --quality skimage`), same metric:", "",
                  "| model | scale | PSNR-Y | SSIM-Y | bicubic | Lanczos | vs bicubic | vs Lanczos |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for info in photos:
            q = _find(extra.get("quality"), info.name)
            if q:
                lines.append(f"| {info.name} | x{q['scale']} | {q['psnr']:.2f} | {q['ssim']:.4f} | "
                             f"{q['bicubic_psnr']:.2f} | {q['lanczos_psnr']:.2f} | {q['psnr'] - q['bicubic_psnr']:+.2f} | "
                             f"{q['psnr'] - q['lanczos_psnr']:+.2f} |")
    lines += microscopy_table([info for info in infos if info not in photos], domains)
    lines += gpu_table(gpu)
    lines += equal_budget_table(equal)
    lines += [
        "",
        "Reproduce: `python3 ../shared/data/make_corpus.py && .venv/bin/python scripts/train_zoo.py` (weights), "
        "`.venv/bin/napari-superres bench -o bench/results/cpu.json` and "
        "`.venv/bin/napari-superres bench --quality skimage --sections quality -o bench/results/cpu-skimage.json` "
        "(figures), `.venv/bin/python bench/make_cards.py` (cards and this table).",
        "",
    ]
    return "\n".join(lines)


def write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", type=Path, default=RESULTS, help="figures of `napari-superres bench -o FILE`")
    p.add_argument("--extra-quality", type=Path, nargs="*", default=[EXTRA] if EXTRA.is_file() else [],
                   help="figures of quality runs on other image sets, quoted next to the validation scores")
    args = p.parse_args(argv)
    results = json.loads(args.results.read_text())
    domains = json.loads(DOMAINS.read_text()) if DOMAINS.is_file() else None
    gpu = json.loads(GPU.read_text()) if GPU.is_file() else None
    extras = [json.loads(f.read_text()) for f in args.extra_quality]
    infos = sorted((m for m in list_models() if m.source == "shipped"),
                   key=lambda m: (m.description.get("scale", 0), m.description.get("parameters", 0)))
    missing = [m.name for m in infos if not (m.description.get("validation") or {}).get("psnr")]
    if missing:
        sys.exit(f"no validation scores in {', '.join(missing)}: train them with scripts/train_zoo.py first")
    for info in infos:
        path = info.path.with_suffix(".md")
        write_atomic(path, card(info, results, extras))
        print(f"wrote {path.relative_to(REPO)}")
    TABLE.parent.mkdir(exist_ok=True)
    equal = json.loads(EQUAL.read_text()) if EQUAL.is_file() else None
    write_atomic(TABLE, table(infos, results, extras, domains, gpu, equal))
    print(f"wrote {TABLE.relative_to(REPO)}")


if __name__ == "__main__":
    main()
