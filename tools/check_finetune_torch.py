#!/usr/bin/env python3
"""Checks that a `simclr finetune` run's model.safetensors loads into torchvision.

    /usr/bin/python3 tools/check_finetune_torch.py runs/NAME/model.safetensors

With one classifier layer (the default) the file holds torchvision's state_dict names with the
classifier as fc.weight / fc.bias: torchvision.models.resnetXX(num_classes=K) loads it with
strict=True (width-1 models; other widths load into the same ResNet built with scaled widths,
see check_checkpoint_torch.py). With --keep-head 1 the fc is an nn.Sequential (fc.0 Linear,
[fc.1 BatchNorm1d,] ReLU, classifier). Prints the load result and the logits' shape of a
random batch in eval mode; exits 1 when a key is missing or unexpected.
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_checkpoint_torch import read_safetensors  # noqa: E402


def main():
    w, meta = read_safetensors(sys.argv[1])
    cfg = json.loads(meta.get("config", "{}"))
    arch, K = cfg.get("arch", "resnet18"), w[[k for k in w if k.startswith("fc.")][-1]].shape[0]
    m = getattr(torchvision.models, arch)(num_classes=K)
    if cfg.get("stem") == "cifar":
        m.conv1 = nn.Conv2d(3, m.conv1.out_channels, 3, 1, 1, bias=False)
        m.maxpool = nn.Identity()
    if "fc.0.weight" in w:  # --keep-head 1
        d, hid = m.fc.in_features, w["fc.0.weight"].shape[0]
        mods = [nn.Linear(d, hid, bias="fc.0.bias" in w)]
        if "fc.1.running_mean" in w:
            mods.append(nn.BatchNorm1d(hid))
        mods += [nn.ReLU(), nn.Linear(hid, K)]
        m.fc = nn.Sequential(*mods)
    r = m.load_state_dict(w, strict=True)
    m.eval()
    S = int(cfg.get("image-size", 96))
    with torch.no_grad():
        out = m(torch.rand(2, 3, S, S))
    print(f"{sys.argv[1]}: {r}; {arch} with {K} classes; logits {tuple(out.shape)}")


if __name__ == "__main__":
    main()
