#!/usr/bin/python3
"""Writes tests/fixtures/pretrain/<arch>_state_dict.txt: torchvision's state_dict of resnet18 and
resnet50 without fc, one tensor per line, "name dtype d0,d1,..." (rank 0: empty shape). The C
test test_checkpoint compares a checkpoint's tensor list against these files (no Python needed
at test time).    /usr/bin/python3 tools/make_pretrain_fixtures.py
"""
import os

import torch
import torchvision

out = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "pretrain")
os.makedirs(out, exist_ok=True)
names = {torch.float32: "F32", torch.int64: "I64"}
for arch in ["resnet18", "resnet50"]:
    sd = getattr(torchvision.models, arch)().state_dict()
    with open(os.path.join(out, f"{arch}_state_dict.txt"), "w") as f:
        for k, v in sd.items():
            if k.startswith("fc."):
                continue
            f.write(f"{k} {names[v.dtype]} {','.join(str(d) for d in v.shape)}\n")
    print(arch, len(sd) - 2, "tensors")
