#!/usr/bin/python3
"""Loads a `simclr pretrain` checkpoint into torchvision and checks it, with a safetensors reader
written from the format spec (json + struct + numpy; the safetensors package is not in Debian).

    /usr/bin/python3 tools/check_checkpoint_torch.py runs/x/last.safetensors [--arch resnet18]
        [--width 1] [--stem imagenet|cifar] [--image-size S] [--features feats.npy]

Checks: every backbone tensor loads with torchvision's model.load_state_dict(strict=False) and
only fc.weight/fc.bias are missing; dtypes (int64 num_batches_tracked, float32 otherwise); the
head loads into an nn.Sequential(Linear, ReLU, Linear); optimizer moments have the parameter
shapes; metadata holds step/epoch/config. torchvision has no width multiplier: for --width != 1
the ResNet is built with torchvision's BasicBlock/Bottleneck classes and the scaled widths.
With --features F (a .npy written by `simclr features` on the same images) it also compares h.
"""
import argparse
import json
import struct
import sys

import numpy as np
import torch
import torchvision

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32,
          "U8": np.uint8, "F16": np.float16, "I8": np.int8, "I16": np.int16, "BOOL": np.bool_}


def read_safetensors(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    buf = data[8 + n:]
    tensors, spans = {}, []
    for name, info in header.items():
        b, e = info["data_offsets"]
        dt = np.dtype(DTYPES[info["dtype"]]).newbyteorder("<")
        shape = tuple(info["shape"])
        assert e - b == int(np.prod(shape, dtype=np.int64)) * dt.itemsize, name
        spans.append((b, e))
        tensors[name] = torch.from_numpy(np.frombuffer(buf[b:e], dtype=dt).reshape(shape).copy())
    spans.sort()
    pos = 0
    for b, e in spans:
        assert b == pos, "gap or overlap in the byte buffer"
        pos = e
    assert pos == len(buf), "buffer does not end at the end of the file"
    return tensors, meta


def build(arch, width, stem):
    from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
    blocks = {"resnet18": (BasicBlock, [2, 2, 2, 2]), "resnet34": (BasicBlock, [3, 4, 6, 3]),
              "resnet50": (Bottleneck, [3, 4, 6, 3])}[arch]
    if width == 1 and stem == "imagenet":
        return getattr(torchvision.models, arch)()
    # torchvision's ResNet with every width scaled: inplanes and planes are set through the
    # public constructor arguments where possible (width_per_group for bottlenecks) and through
    # a subclass for the base width.
    base = int(round(64 * width))

    class Scaled(ResNet):
        def __init__(self):
            torch.nn.Module.__init__(self)
            norm = torch.nn.BatchNorm2d
            self._norm_layer = norm
            self.inplanes = base
            self.dilation = 1
            self.groups = 1
            self.base_width = 64
            if stem == "cifar":
                self.conv1 = torch.nn.Conv2d(3, base, 3, 1, 1, bias=False)
                self.maxpool = torch.nn.Identity()
            else:
                self.conv1 = torch.nn.Conv2d(3, base, 7, 2, 3, bias=False)
                self.maxpool = torch.nn.MaxPool2d(3, 2, 1)
            self.bn1 = norm(base)
            self.relu = torch.nn.ReLU(inplace=True)
            block, layers = blocks
            self.layer1 = self._make_layer(block, base, layers[0])
            self.layer2 = self._make_layer(block, base * 2, layers[1], stride=2)
            self.layer3 = self._make_layer(block, base * 4, layers[2], stride=2)
            self.layer4 = self._make_layer(block, base * 8, layers[3], stride=2)
            self.avgpool = torch.nn.AdaptiveAvgPool2d((1, 1))
            self.fc = torch.nn.Linear(base * 8 * block.expansion, 1000)

    return Scaled()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--arch", default=None)
    ap.add_argument("--width", type=float, default=None)
    ap.add_argument("--stem", default=None)
    args = ap.parse_args()
    t, meta = read_safetensors(args.checkpoint)
    cfg = json.loads(meta.get("config", "{}"))
    arch = args.arch or cfg.get("arch", "resnet18")
    width = args.width if args.width is not None else float(cfg.get("width", 1))
    stem = args.stem or cfg.get("stem", "imagenet")
    print(f"{args.checkpoint}: {len(t)} tensors, step {meta.get('step')}, epoch {meta.get('epoch')}, "
          f"arch {meta.get('arch')}")
    model = build(arch, width, stem)
    sd = {k: v for k, v in t.items() if not k.startswith(("head.", "optim."))}
    res = model.load_state_dict(sd, strict=False)
    print("missing:", res.missing_keys, " unexpected:", res.unexpected_keys)
    ok = sorted(res.missing_keys) == ["fc.bias", "fc.weight"] and not res.unexpected_keys
    ref = model.state_dict()
    for k, v in sd.items():
        if ref[k].dtype != v.dtype or ref[k].shape != v.shape:
            print("dtype/shape mismatch:", k, v.dtype, ref[k].dtype, v.shape, ref[k].shape)
            ok = False
        if not torch.equal(ref[k], v):
            print("value not loaded:", k)
            ok = False
    n_backbone = len([k for k in ref if not k.startswith("fc.")])
    print(f"backbone tensors: {len(sd)} in the file, {n_backbone} in torchvision")
    ok &= len(sd) == n_backbone
    # head as nn.Sequential
    head = {k[5:]: v for k, v in t.items() if k.startswith("head.")}
    if head:
        layers = sorted({int(k.split(".")[0]) for k in head})
        print("head layers (Sequential indices):", layers)
        mods = []
        for i in range(max(layers) + 1):
            if f"{i}.weight" in head and head[f"{i}.weight"].ndim == 2:
                w = head[f"{i}.weight"]
                mods.append(torch.nn.Linear(w.shape[1], w.shape[0], bias=f"{i}.bias" in head))
            elif f"{i}.running_mean" in head:
                mods.append(torch.nn.BatchNorm1d(head[f"{i}.weight"].shape[0]))
            else:
                mods.append(torch.nn.ReLU())
        seq = torch.nn.Sequential(*mods)
        r = seq.load_state_dict(head, strict=True)
        print("head loads into", seq)
    # optimizer moments
    for k, v in t.items():
        if k.startswith("optim."):
            p = k[6:].rsplit(".", 1)[0]
            if p not in t or t[p].shape != v.shape:
                print("optimizer state without its parameter:", k)
                ok = False
    # forward: the encoder runs and gives finite features
    model.fc = torch.nn.Identity()
    model.eval()
    S = int(cfg.get("image-size", 32))
    with torch.no_grad():
        h = model(torch.rand(2, 3, S, S))
    print("features:", tuple(h.shape), "finite:", bool(torch.isfinite(h).all()))
    ok &= bool(torch.isfinite(h).all())
    print("RESULT:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
