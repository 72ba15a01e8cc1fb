"""Writes scikit-learn's handwritten digits (1,797 real 8x8 scans, 16 grey levels, UCI) as
64x64 RGB PNGs in a labelled folder, {OUT}/{digit}/{index}.png, for the int8 vs fp32 accuracy
benchmark (bench/int8.ts). The data ship inside scikit-learn (no download):
apt-get install python3-sklearn (Debian), or pip install scikit-learn pillow.

    python3 bench/lib/digits.py OUT [LIMIT]

LIMIT keeps the first LIMIT digits (--quick). Deterministic: same files on every run.
"""
import os
import sys

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

out = sys.argv[1]
limit = int(sys.argv[2]) if len(sys.argv) > 2 else 0
digits = load_digits()
for i, (pixels, label) in enumerate(zip(digits.images, digits.target)):
    if limit and i >= limit:
        break
    folder = os.path.join(out, str(label))
    os.makedirs(folder, exist_ok=True)
    grey = (pixels * (255.0 / 16.0)).round().astype(np.uint8)
    image = Image.fromarray(grey, "L").resize((64, 64), Image.BILINEAR).convert("RGB")
    image.save(os.path.join(folder, f"{i:04d}.png"))
