"""The bench's result as text: one header (machine, matmul ceiling) and a table per section measured."""

from __future__ import annotations

from .peers import PEERS


def text_table(headers, rows, align=None) -> list:
    """Lines of a plain-text table, columns padded to their widest cell (None shows as "-")."""
    cells = [[str(c) for c in headers]] + [[("-" if c is None else str(c)) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or ("<" + ">" * (len(headers) - 1))
    lines = ["  ".join(f"{c:{a}{w}}" for c, a, w in zip(r, align, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _count(n) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else str(n)


def format_report(r: dict) -> str:
    m, cfg, mm = r["machine"], r["config"], r["matmul"]
    out = [
        f"napari-superres bench  ({'quick' if cfg['quick'] else 'full'}, {r['seconds']:.0f} s)",
        f"machine: {m['cpu']}, {m['cores']} cores [{m['isa']}], {m.get('memory_gb', '?')} GB; "
        f"Keras {m['keras']} ({m['backend']}"
        + (f" {m['tensorflow']}, oneDNN {'on' if m['onednn'] else 'off'}" if "tensorflow" in m else "")
        + f"), Python {m['python']}; load average {m.get('load_average', '?')} -> {m.get('load_average_end', '?')}",
        f"matmul {mm['n']}x{mm['n']} (median of {cfg['repeats']}): float32 {mm['float32_gmac_per_s']:.1f} GMAC/s "
        f"({mm['float32_gmac_per_cpu_s']:.1f} per CPU-second), bfloat16 {mm['bfloat16_gmac_per_s']:.1f} GMAC/s "
        f"({mm['bfloat16_gmac_per_cpu_s']:.1f} per CPU-second)",
    ]
    if r.get("quality"):
        out += _quality_table(r)
    if r.get("speed"):
        out += _speed_table(r, cfg)
    if r.get("tiling"):
        out += _tiling_table(r["tiling"])
    if r.get("options"):
        out += _options_table(r["options"], cfg)
    if r.get("peers"):
        out += _peers_table(r["peers"], cfg)
    return "\n".join(out)


def _quality_table(r) -> list:
    out = ["", f"QUALITY: PSNR-Y (dB) / SSIM-Y, border = scale, LR = bicubic downscale; {r['quality_set']}"]
    return out + text_table(
        ("model", "scale", "PSNR", "SSIM", "bicubic", "SSIM", "Lanczos", "SSIM", "vs bicubic", "vs Lanczos"),
        [(q["model"], f"x{q['scale']}", f"{q['psnr']:.2f}", f"{q['ssim']:.4f}", f"{q['bicubic_psnr']:.2f}",
          f"{q['bicubic_ssim']:.4f}", f"{q['lanczos_psnr']:.2f}", f"{q['lanczos_ssim']:.4f}",
          f"{q['psnr'] - q['bicubic_psnr']:+.2f}", f"{q['psnr'] - q['lanczos_psnr']:+.2f}") for q in r["quality"]],
    )


def _speed_table(r, cfg) -> list:
    size, precision = cfg["size"], cfg["precision"] + (" + XLA" if cfg["jit"] else "")
    out = ["", f"SPEED: {size}x{size} RGB input, batch 1, {precision}, medians of {cfg['repeats']} calls after 2 "
            f"warm-up calls, alternating with a {cfg['precision']} matmul. efficiency = model MACs per CPU-second / "
            "matmul MACs per CPU-second; wall eff. = the same from wall-clock time (equal on an idle machine)"]
    e2e = [s for s in r["speed"] if "e2e_efficiency" in s]
    if e2e:
        out[-1] += (f"; end to end = napari_superres.upscale on a {e2e[0]['e2e_input']} uint8 photo (tiles, "
                    "normalisation and the inverse map included), efficiency counting the model's MACs alone")
    out += text_table(
        ("model", "scale", "params", "GMAC", "ms", "out MP/s", "cores busy", "GMAC/CPU-s", "matmul", "efficiency",
         "wall eff.", "end-to-end MP/s", "end-to-end eff."),
        [(s["model"], f"x{s['scale']}", _count(s["parameters"]), f"{s['macs'] / 1e9:.3g}", f"{s['ms']:.1f}",
          f"{s['mp_per_s']:.2f}", f"{s['cores_busy']:.2f}", f"{s['gmac_per_cpu_s']:.1f}",
          f"{s['matmul_gmac_per_cpu_s']:.1f}", f"{s['efficiency']:.2f}", f"{s['efficiency_wall']:.2f}",
          f"{s['e2e_mp_per_s']:.2f}" if "e2e_mp_per_s" in s else "-",
          f"{s['e2e_efficiency']:.2f}" if "e2e_efficiency" in s else "-")
         for s in r["speed"]],
    )
    return out


def _tiling_table(t) -> list:
    cut = f"tile {t['tile']}" if t.get("tile") else "the engine's default windows"
    cut += f" ({t['windows']})" if "windows" in t else ""
    out = ["", f"TILING AND MEMORY: {t['model']} on a {t['input']} photo (uint8, through the engine), {cut}; "
            f"max |tiled - whole| = {t['max_abs_diff']} grey levels ({100 * t['differing_pixels']:.3f}% of values differ)"]
    out += text_table(
        ("mode", "seconds", "CPU s", "out MP/s", "time ratio", "peak RSS MB", "above model MB"),
        [(mode, f"{t[mode]['seconds']:.2f}", f"{t[mode]['cpu_seconds']:.2f}", f"{t[mode]['mp_per_s']:.2f}",
          f"{t[mode]['seconds'] / t['whole']['seconds']:.2f}",
          *((f"{t[mode]['peak_rss_mb']:.0f}", f"{t[mode]['added_rss_mb']:.0f}") if "peak_rss_mb" in t[mode]
            else ("-", "-"))) for mode in ("whole", "tiled")],
    )
    out.append("(peak resident memory of a fresh process upscaling the image once; above model: over its size "
               "with the model loaded and run once on a small input)")
    return out


def _options_table(options, cfg) -> list:
    size = cfg["size"]
    out = ["", f"OPTIONS: {size}x{size} input. ms and MP/s: wall clock; speed-up over float32 and efficiency "
           "(against the matmul of the same precision; oneDNN off: its own process's float32 matmul) from CPU "
           "time; PSNR-Y of the output against the HR crop; max diff to float32 in grey levels"]
    out += text_table(
        ("model", "option", "ms", "out MP/s", "speed-up", "efficiency", "PSNR", "max diff"),
        [(o["model"], o["option"], *((f"{o['ms']:.1f}", f"{o['mp_per_s']:.2f}", f"x{o['speedup']:.2f}",
           f"{o['efficiency']:.2f}", f"{o['psnr']:.2f}", o["max_abs_diff"]) if "error" not in o
          else ("failed: " + o["error"], "", "", "", "", ""))) for o in options],
        align="<<>>>>>>",
    )
    notes = [o for o in options if "matmul_gmac_per_cpu_s" in o]
    out += [""] if notes else []
    out += [f"({o['model']}, {o['option']}: float32 matmul {o['matmul_gmac_per_cpu_s']:.1f} GMAC per CPU-second "
            "in that process)" for o in notes]
    return out


def _peers_table(section: dict, cfg: dict) -> list:
    from ..io.extras import distribution_name

    out = ["", f"PEERS: the same models and weights on the CPU, {cfg['size']}x{cfg['size']} input, batch 1, float32; "
           "ours over the peer = the peer's time / ours (above 1: we are faster), from CPU time and wall time; "
           "max diff: largest |peer - ours| (float32)"]
    for peer, packages in section["missing"].items():
        out.append(f"{PEERS[peer]}: not measured, {' and '.join(packages)} not installed "
                   f"(pip install '{distribution_name()}[bench]')")
    good = [r for r in section["rows"] if "error" not in r]
    labels = [k for k in ("float32", "auto") if any(k in r for r in good)]
    headers = ("model", "peer", "peer ms", "max diff") + tuple(
        h for k in labels for h in (f"ours {k} ms", f"x CPU ({k})", f"x wall ({k})"))
    rows = []
    for r in section["rows"]:
        if "error" in r:
            rows.append((r["model"], "failed: " + r["error"]) + ("",) * (len(headers) - 2))
            continue
        cells = [r["model"], r["peer"], f"{r['ms']:.1f}", f"{r['max_diff']:.1e}"]
        for k in labels:
            v = r.get(k)
            cells += [f"{v['ms']:.1f}", f"x{v['speedup_cpu']:.2f}", f"x{v['speedup_wall']:.2f}"] if v else ["-"] * 3
        rows.append(cells)
    return out + (text_table(headers, rows) if rows else [])
