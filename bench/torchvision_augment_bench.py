#!/usr/bin/python3
"""torchvision's SimCLR view pipeline on PIL images, timed: the reference for bench/augment_bench.sh.

    /usr/bin/python3 bench/torchvision_augment_bench.py IMAGES.npy --views N --procs P --blur-prob B
    /usr/bin/python3 bench/torchvision_augment_bench.py --make-images OUT.npy   # 96x96 test images

The transforms are the SimCLR ones (sthalles/SimCLR, the paper's Appendix A) with the same
parameters the C pipeline uses: RandomResizedCrop(96) -> RandomHorizontalFlip -> RandomApply(
ColorJitter(0.8, 0.8, 0.8, 0.2), 0.8) -> RandomGrayscale(0.2) -> RandomApply(GaussianBlur(9),
p) -> ToTensor. torch runs single-threaded in each process (torch.set_num_threads(1)); P > 1
uses P worker processes, as a DataLoader with num_workers = P would.
"""
import argparse
import multiprocessing as mp
import sys
import time

import numpy as np


def make_images(path, n=256):
    from PIL import Image
    base = "/usr/lib/python3/dist-packages/sklearn/datasets/images/"
    srcs = [Image.open(base + f).convert("RGB") for f in ("china.jpg", "flower.jpg")]
    rng = np.random.RandomState(0)
    out = np.empty((n, 96, 96, 3), np.uint8)
    for i in range(n):
        im = srcs[i % 2]
        s = int(rng.randint(96, 400))
        x, y = rng.randint(0, im.width - s), rng.randint(0, im.height - s)
        out[i] = np.asarray(im.crop((x, y, x + s, y + s)).resize((96, 96), Image.BILINEAR))
    np.save(path, out)


def pipeline(blur_prob):
    import torchvision.transforms as T
    return T.Compose([
        T.RandomResizedCrop(96),
        T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([T.GaussianBlur(9, sigma=(0.1, 2.0))], p=blur_prob),
        T.ToTensor(),
    ])


def run(args):
    path, nviews, blur_prob, seed = args
    import torch
    from PIL import Image
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    imgs = np.load(path)
    tf = pipeline(blur_prob)
    for i in range(16):  # warm-up
        tf(Image.fromarray(imgs[i % len(imgs)]))
    t0 = time.perf_counter()
    for i in range(nviews):
        tf(Image.fromarray(imgs[i % len(imgs)]))
    return nviews, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("images", nargs="?")
    ap.add_argument("--make-images")
    ap.add_argument("--views", type=int, default=2000)
    ap.add_argument("--procs", type=int, default=1)
    ap.add_argument("--blur-prob", type=float, default=0.5)
    a = ap.parse_args()
    if a.make_images:
        make_images(a.make_images)
        return 0
    per = a.views // a.procs
    jobs = [(a.images, per, a.blur_prob, k) for k in range(a.procs)]
    if a.procs == 1:
        res = [run(jobs[0])]
        wall = res[0][1]
    else:
        with mp.get_context("fork").Pool(a.procs) as pool:
            t0 = time.perf_counter()
            res = pool.map(run, jobs)
            wall = max(r[1] for r in res)  # per-process timed loops run concurrently
    done = sum(r[0] for r in res)
    print(f"views {done} seconds {wall:.3f} views_per_s {done / wall:.1f} procs {a.procs} blur_prob {a.blur_prob}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
