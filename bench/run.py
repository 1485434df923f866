"""Run the benchmark from a checkout: the same as ``napari-superres bench`` (all its options).

    .venv/bin/python bench/run.py                       # every shipped model, full run (minutes)
    .venv/bin/python bench/run.py --quick               # seconds
    .venv/bin/python bench/run.py --models edsr-x2,espcn-x2 --precision bfloat16 -o bench/results/bf16.json
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from napari_superres.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
