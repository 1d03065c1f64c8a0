#!/usr/bin/python3
"""Fixtures for "PyTorch features of real photos equal `simclr features`" (tests/test_torch_features.c).

    /usr/bin/python3 tools/make_photo_fixtures.py

1. tests/fixtures/photos/images/: six small crops of photographs from Debian's
   lomiri-wallpapers-16.04 (/usr/share/backgrounds; licences in tests/fixtures/photos/README.md),
   each reduced 8x first so a crop holds a scene, in the formats a user has: RGB JPEG of several
   sizes and aspect ratios, a grey JPEG, an RGB PNG and an RGBA PNG (alpha dropped).
2. tests/fixtures/photos/<case>.safetensors: encoders of three architectures / stems / widths /
   normalisations, in simclr's checkpoint layout (torchvision names, the head as nn.Sequential,
   the configuration in the metadata), from torch's initialisation with every BatchNorm's weight,
   bias and running statistics randomised (so eval-mode BN is not an identity).
3. tests/fixtures/photos/<case>_h.npy: h of every image (sorted by file name, as the folder
   reader orders them) computed by tools/simclr_torch.py: its builder and its preprocessing,
   in float32, i.e. what a PyTorch user gets.
Deterministic: rerunning leaves the tree unchanged on the same package versions.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simclr_torch  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "photos")
SRC = "/usr/share/backgrounds"

# (output name, source photo, crop box on the 8x-reduced photo, mode, format)
CROPS = [
    ("1_seeding.jpg", "seeding_by_Clements_Engelhardt.jpg", (300, 120, 420, 210), "RGB", "JPEG"),
    ("2_sunset.jpg", "sunset_by_Aitzol_Berasategi.jpg", (200, 150, 277, 251), "RGB", "JPEG"),
    ("3_umang.png", "umang_by_Abhishek_Mudgal.jpg", (200, 100, 264, 164), "RGB", "PNG"),
    ("4_wine_gray.jpg", "Wine_by_Jakkub_Mede.jpg", (120, 200, 170, 270), "L", "JPEG"),
    ("5_aitzgorri_rgba.png", "aitzgorri_by_Aitzol_Berasategi.jpg", (100, 80, 190, 140), "RGBA", "PNG"),
    ("6_friends.jpg", "friends_by_Aitzol_Berasategi.jpg", (20, 100, 220, 250), "RGB", "JPEG"),
]

# (case, arch, width, stem, image size, head layers, head bn, out dim, normalize, stats)
CASES = [
    ("r18_cifar", "resnet18", 0.125, "cifar", 32, 2, False, 16, "none", None),
    ("r34_imagenet", "resnet34", 0.0625, "imagenet", 64, 3, True, 16, "imagenet", None),
    ("r50_imagenet", "resnet50", 0.0625, "imagenet", 40, 1, False, 8, "dataset",
     "0.45,0.43,0.4,0.27,0.26,0.28"),
]


def make_crops():
    os.makedirs(os.path.join(ROOT, "images"), exist_ok=True)
    for name, src, box, mode, fmt in CROPS:
        im = Image.open(os.path.join(SRC, src)).convert("RGB").reduce(8).crop(box)
        if mode == "L":
            im = im.convert("L")
        elif mode == "RGBA":
            a = np.linspace(0, 255, im.width * im.height, dtype=np.float64).reshape(im.height, im.width)
            im = im.copy()
            im.putalpha(Image.fromarray(a.astype(np.uint8)))
        path = os.path.join(ROOT, "images", name)
        if fmt == "JPEG":
            im.save(path, "JPEG", quality=90)
        else:
            im.save(path, "PNG")


def write_safetensors(path, tensors, meta):
    """The safetensors layout: u64 header size, JSON header (sorted names), aligned data."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = tensors[name].detach().contiguous().numpy()
        dt = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}[a.dtype]
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def make_case(case, arch, width, stem, size, head_layers, head_bn, out_dim, normalize, stats, images):
    torch.manual_seed(sum(map(ord, case)))
    enc = simclr_torch.Encoder(arch, width, stem)
    d = enc.layer4[-1].conv3.out_channels if arch == "resnet50" else enc.layer4[-1].conv2.out_channels
    mods = []
    for i in range(head_layers):
        last = i == head_layers - 1
        mods.append(torch.nn.Linear(d, out_dim if last else d, bias=last or not head_bn))
        if not last:
            mods += ([torch.nn.BatchNorm1d(d)] if head_bn else []) + [torch.nn.ReLU()]
    head = torch.nn.Sequential(*mods)
    with torch.no_grad():
        for m in list(enc.modules()) + list(head.modules()):
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n))
                m.bias.copy_(0.2 * torch.randn(n))
                m.running_mean.copy_(0.3 * torch.randn(n))
                m.running_var.copy_(0.5 + torch.rand(n))
                m.num_batches_tracked.fill_(7)
    cfg = {"arch": arch, "stem": stem, "width": width, "image-size": size, "head-layers": head_layers,
           "head-bn": "on" if head_bn else "off", "out-dim": out_dim, "normalize": normalize,
           "normalize-stats": stats}
    tensors = {k: v for k, v in enc.state_dict().items()}
    tensors.update({"head." + k: v for k, v in head.state_dict().items()})
    path = os.path.join(ROOT, case + ".safetensors")
    write_safetensors(path, tensors, {"config": json.dumps(cfg), "step": "0", "epoch": "0"})
    # what a PyTorch user computes from that file
    enc2, _, cfg2 = simclr_torch.load(path)
    with torch.no_grad():
        h = enc2(simclr_torch.preprocess(images, cfg2)).numpy().astype(np.float32)
    np.save(os.path.join(ROOT, case + "_h.npy"), h)
    print(f"{case}: h {h.shape}, |h| max {np.abs(h).max():.3g}")


def main():
    if os.path.isdir(SRC):
        make_crops()
    else:
        print(f"{SRC} missing (lomiri-wallpapers-16.04): keeping the committed crops")
    d = os.path.join(ROOT, "images")
    images = [os.path.join(d, f) for f in sorted(os.listdir(d))]
    for c in CASES:
        make_case(*c, images)
    return 0


if __name__ == "__main__":
    sys.exit(main())
