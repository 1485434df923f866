"""Write an N x 4096 x 4096 uint16 ZYX stack as an uncompressed BigTIFF, page by page (never whole in memory):
the input of the out-of-core measurements in docs/big-data.md.

    python bench/make_big_stack.py 128 stack4g.tif     # 4.3 GB
"""

import sys

import numpy as np
import tifffile

H = W = 4096


def pages(n):
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    rng = np.random.default_rng(0)
    for z in range(n):
        # stripes and a disc that move with z, plus noise: structured like a fluorescence image
        page = 2000 + 1500 * np.sin(xx / (37 + z % 7)) * np.cos(yy / (53 + z % 5))
        page += rng.normal(0, 200, (H, W)).astype(np.float32)
        disc = ((xx - 2048 - 10 * z) ** 2 + (yy - 2048) ** 2) < 900**2
        yield np.clip(page + 8000 * disc, 0, 65535).astype(np.uint16)


def main():
    n, path = int(sys.argv[1]), sys.argv[2]
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(pages(n), shape=(n, H, W), dtype=np.uint16, metadata={"axes": "ZYX"}, resolution=(2.0, 2.0))


if __name__ == "__main__":
    main()
