#!/usr/bin/python3
"""A `simclr` checkpoint as a PyTorch model, with the exact preprocessing of `simclr features`.

    import sys; sys.path.insert(0, "tools")             # or copy this file next to your code
    import simclr_torch
    encoder, head, cfg = simclr_torch.load("runs/mine/last.safetensors")
    x = simclr_torch.preprocess(["a.jpg", "b.png"], cfg)  # (N, 3, S, S) float32
    with torch.no_grad():
        h = encoder(x)                                    # = `simclr features` (h), to 1e-4
        z = head(h)                                       # = `simclr features --layer z`

    /usr/bin/python3 tools/simclr_torch.py CHECKPOINT IMAGE... --output h.npy [--layer z]

Any --arch (resnet18/34/50), --stem (imagenet/cifar) and --width: the encoder is torchvision's
ResNet class (its BasicBlock/Bottleneck, its state_dict names) with every width scaled, fc
replaced by Identity, in eval mode (BatchNorm uses the running statistics). The configuration
comes from the checkpoint's metadata; a plain state_dict needs cfg given by hand.

The preprocessing `simclr features` applies (no crop, no augmentation):
  1. decode to 8-bit RGB (PIL's convert("RGB"): grey is repeated into 3 channels, alpha is
     dropped, not composited; JPEGs through libjpeg-turbo with its default settings);
  2. to float32 in [0, 1] (x / 255), channels first;
  3. the whole image resized to S x S (S = the run's --image-size; the aspect ratio is not
     kept) with antialiased bilinear interpolation on floats, i.e. torch's
     interpolate(mode="bilinear", antialias=True, align_corners=False) = PIL's BILINEAR filter;
  4. the run's --normalize: none (default), imagenet, or dataset (the run's --normalize-stats).
Only the safetensors format spec is used (json + struct + numpy): no safetensors package needed.
"""
import argparse
import json
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32,
          "U8": np.uint8, "F16": np.float16, "I8": np.int8, "I16": np.int16, "BOOL": np.bool_}
ARCHS = {"resnet18": (BasicBlock, [2, 2, 2, 2]), "resnet34": (BasicBlock, [3, 4, 6, 3]),
         "resnet50": (Bottleneck, [3, 4, 6, 3])}


def read_safetensors(path):
    """{name: tensor}, {metadata} of a .safetensors file."""
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        dt = np.dtype(DTYPES[info["dtype"]]).newbyteorder("<")
        a = np.frombuffer(data[8 + n + b:8 + n + e], dtype=dt).reshape(info["shape"])
        tensors[name] = torch.from_numpy(a.copy())
    return tensors, meta


class Encoder(ResNet):
    """torchvision's ResNet with base width round(64 * width) and the imagenet or cifar stem."""

    def __init__(self, arch="resnet18", width=1.0, stem="imagenet"):
        block, layers = ARCHS[arch]
        super().__init__(block, layers)
        base = int(round(64 * width))
        self.inplanes = base
        if stem == "cifar":  # 3x3 stride 1, no max pool
            self.conv1, self.maxpool = nn.Conv2d(3, base, 3, 1, 1, bias=False), nn.Identity()
        else:
            self.conv1 = nn.Conv2d(3, base, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.layer1 = self._make_layer(block, base, layers[0])
        for i, s in ((2, 2), (3, 4), (4, 8)):
            setattr(self, f"layer{i}", self._make_layer(block, base * s, layers[i - 1], stride=2))
        self.fc = nn.Identity()  # h: the pooled features


def build_head(tensors):
    """The projection head (nn.Sequential of Linear / BatchNorm1d / ReLU) from its tensors."""
    head = {k[5:]: v for k, v in tensors.items() if k.startswith("head.")}
    if not head:
        return nn.Identity(), {}
    mods = []
    for i in range(max(int(k.split(".")[0]) for k in head) + 1):
        w = head.get(f"{i}.weight")
        if f"{i}.running_mean" in head:
            mods.append(nn.BatchNorm1d(w.shape[0]))
        elif w is not None:
            mods.append(nn.Linear(w.shape[1], w.shape[0], bias=f"{i}.bias" in head))
        else:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods), head


def load(path, cfg=None):
    """(encoder, head, cfg) in eval mode from a simclr checkpoint (cfg: its stored configuration,
    or given for a plain torchvision state_dict: arch, width, stem, image-size, normalize)."""
    tensors, meta = read_safetensors(path)
    cfg = dict(json.loads(meta.get("config", "{}")), **(cfg or {}))
    enc = Encoder(cfg.get("arch", "resnet18"), float(cfg.get("width", 1)), cfg.get("stem", "imagenet"))
    res = enc.load_state_dict({k: v for k, v in tensors.items()
                               if not k.startswith(("head.", "optim.", "fc."))}, strict=True)
    head, hsd = build_head(tensors)
    if hsd:
        head.load_state_dict(hsd, strict=True)
    return enc.eval(), head.eval(), cfg


def normalization(cfg):
    """(mean, std) of the run's --normalize, or None."""
    mode = cfg.get("normalize", "none")
    if mode == "imagenet":
        return [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    if mode == "dataset":
        v = [float(s) for s in cfg["normalize-stats"].split(",")]
        return v[:3], v[3:]
    return None


def preprocess(paths, cfg):
    """Images (paths or PIL images) -> (N, 3, S, S) float32, exactly as `simclr features`."""
    from PIL import Image
    S = int(cfg.get("image-size", 96))
    norm = normalization(cfg)
    out = []
    for p in paths:
        im = p if isinstance(p, Image.Image) else Image.open(p)
        x = torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)
        x = F.interpolate(x[None], size=(S, S), mode="bilinear", antialias=True, align_corners=False)[0]
        if norm:
            x = (x - torch.tensor(norm[0])[:, None, None]) / torch.tensor(norm[1])[:, None, None]
        out.append(x)
    return torch.stack(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("images", nargs="+")
    ap.add_argument("--output", required=True, help="features .npy (N, D) float32")
    ap.add_argument("--layer", choices=["h", "z"], default="h")
    args = ap.parse_args()
    enc, head, cfg = load(args.checkpoint)
    with torch.no_grad():
        h = enc(preprocess(args.images, cfg))
        f = head(h) if args.layer == "z" else h
    np.save(args.output, f.numpy().astype(np.float32))
    print(f"{args.output}: {tuple(f.shape)} from {len(args.images)} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
