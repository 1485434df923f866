"""Live summary of a training folder for the Train widget, in napari's process (NumPy only, no Keras).

It runs the training's own folder checks (``training.folders.summarize``: pairing rules, unreadable files,
size ratios), so the widget reports exactly what a training run would refuse, then adds the checks that
depend on the widget's settings: images smaller than the patch, mixed gray and colour images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FolderSummary:
    kind: str  # "paired", "hr_only" or "invalid"
    images: int = 0  # 2D training images (each slice of a stack counts)
    files: int = 0  # files, or LR/HR pairs
    min_size: tuple[int, int] | None = None  # (width, height)
    max_size: tuple[int, int] | None = None
    channels: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # training would refuse the folder
    notes: list[str] = field(default_factory=list)  # worth knowing, not in the way

    @property
    def usable(self) -> bool:
        return self.kind != "invalid" and not self.problems

    def text(self) -> str:
        if self.kind == "invalid":
            return "; ".join(self.problems) or "not a training folder"
        if self.kind == "paired":
            head = f"Paired: {self.files} LR/HR pair{'s' * (self.files != 1)}"
        else:
            head = f"HR only: {self.files} file{'s' * (self.files != 1)} (LR made by degradation)"
        if self.images != self.files:
            head += f", {self.images} images in all"
        if self.min_size and self.max_size:
            low, high = self.min_size, self.max_size
            head += f", {low[0]}x{low[1]}" + ("" if low == high else f" to {high[0]}x{high[1]}") + " px"
        if self.channels:
            head += ", " + " and ".join({1: "gray", 3: "RGB"}.get(c, f"{c}-channel") for c in self.channels)
        text = head + "."
        if self.problems:
            text += " Problem: " + "; ".join(self.problems) + "."
        if self.notes:
            text += " " + "; ".join(self.notes) + "."
        return text


def summarize_folder(folder: str | Path | None, *, scale: int = 2, patch: int = 96) -> FolderSummary:
    """Describe a training folder; ``patch`` is the HR patch side (as in the training config)."""
    from napari_superres.training.folders import summarize

    if not folder or str(folder).strip() in ("", "."):
        return FolderSummary("invalid", problems=["choose a folder of training images"])
    info = summarize(Path(folder).expanduser(), scale=scale)
    if not info.get("ok"):
        return FolderSummary("invalid", problems=[str(info.get("problem") or "not a training folder")])
    paired = info["mode"] == "paired"
    summary = FolderSummary(
        "paired" if paired else "hr_only",
        images=int(info["images"]),
        files=int(info["files"]),
        min_size=tuple(info["min_size"]),
        max_size=tuple(info["max_size"]),
        channels=list(info["channels"]),
    )
    need = patch // scale if paired else patch  # paired: the min size is of the HR files, LR is scale x smaller
    smallest = min(summary.min_size) // (scale if paired else 1)
    if smallest < need:
        side = "LR" if paired else "HR"
        summary.problems.append(
            f"the smallest {side} image side is {smallest} px, less than the {need} px patch: lower the patch size"
        )
    if len(summary.channels) > 1:
        summary.problems.append("gray and RGB images are mixed: keep one kind per folder")
    skipped = info.get("skipped") or []
    if skipped:
        more = ", ..." if len(skipped) > 3 else ""
        summary.notes.append(f"{len(skipped)} non-image file(s) ignored: {', '.join(skipped[:3])}{more}")
    return summary
