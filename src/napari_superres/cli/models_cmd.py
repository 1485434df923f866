"""``napari-superres models``: list the shipped and user models with their scale, channels and validation score.

Reads each model's description from its ``.keras`` file through the catalog, without importing Keras, so it
answers in a fraction of a second.
"""

import json
import sys


def add_parser(subparsers):
    p = subparsers.add_parser(
        "models",
        help="list the installed models",
        description="List the shipped and user models: name, architecture, domain (photo or microscopy), scale, "
        "channels, parameters, source "
        "and validation PSNR against bicubic.",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    return p


def headline(desc):
    """One line on how good the model is, from its validation scores (empty when it has none)."""
    val = (desc or {}).get("validation") or {}
    psnr, bicubic = val.get("psnr"), val.get("bicubic_psnr")
    if psnr is None:
        return ""
    text = f"PSNR {psnr:.2f} dB"
    if bicubic is not None:
        text += f" vs bicubic {bicubic:.2f} dB ({psnr - bicubic:+.2f})"
    if val.get("dataset"):
        text += f" on {val['dataset']}"
    return text


def model_rows():
    from ..models.catalog import list_models, model_domain

    rows = []
    for info in list_models():
        desc = info.description or {}
        rows.append(
            {
                "name": info.name,
                "architecture": desc.get("architecture"),
                "domain": model_domain(desc),
                "scale": desc.get("scale"),
                "channels": desc.get("channels"),
                "parameters": desc.get("parameters"),
                "source": info.source,
                "headline": headline(desc),
                "path": str(info.path),
                "description": desc,
            }
        )
    return rows


def run(args):
    rows = model_rows()
    if args.json:
        json.dump(rows, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    if not rows:
        from ..models.catalog import user_models_dir

        print(
            "No models are installed (none shipped, none in "
            f"{user_models_dir()}). Train one with `napari-superres train` or pass a .keras file to `-m`."
        )
        return 0
    header = ("NAME", "ARCHITECTURE", "DOMAIN", "SCALE", "CH", "PARAMS", "SOURCE", "VALIDATION")
    table = [header] + [
        (
            r["name"],
            str(r["architecture"] or "?"),
            r["domain"],
            f"x{r['scale']}" if r["scale"] else "?",
            str(r["channels"] or "?"),
            _count(r["parameters"]),
            r["source"],
            r["headline"] or "-",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    return 0


def _count(n):
    if not isinstance(n, (int, float)):
        return "?"
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else str(int(n))
