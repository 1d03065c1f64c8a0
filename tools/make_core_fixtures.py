#!/usr/bin/python3
"""Writes the PyTorch reference fixtures of the network core into tests/fixtures/core/.

Run with Debian's python3 (torch 1.13, torchvision 0.14):  /usr/bin/python3 tools/make_core_fixtures.py

For each case, a directory tests/fixtures/core/<case>/ with
  tensors.txt      one line per state_dict entry: "name kind numel d0 d1 ..." (kind param|buffer|counter)
  params.npy       every parameter (kind param) before the step, flattened, concatenated in
                   state_dict order (the C test loads them by name, so C init randomness is moot)
  buffers0.npy     running mean/var before the step (state_dict order), buffers1.npy after it
  x.npy            input (B,3,S,S) NCHW
  stem.npy         stem output (after the max pool when there is one), channels-last (B,H,W,C)
  block<i>.npy     output of residual block i (0-based over all stages), channels-last
  h.npy (B,D), z.npy (B,out), dz.npy (B,out) a fixed upstream gradient (the loss is core-opt's)
  grads.npy        d(sum(z*dz))/dparam for every parameter, same layout as params.npy
  z_eval.npy       z of the same x in eval mode after the training step (running statistics)
Also names_resnet{18,34,50}.txt: the real torchvision state_dict (name + shape), fc removed.

The models are torchvision's own BasicBlock/Bottleneck modules assembled with a width multiplier
(torchvision's ResNet class hard-codes 64 base channels): the names and the computation are
torchvision's. The reference values are computed in float64 (the model is initialised in float32
as torchvision does, then converted), so the C float32 results are compared with the exact
answer; the script also reruns each case in float32 and prints how far torch's own float32 result
is from it (the case's conditioning: tiny, deep ResNet-50s with small batches can amplify
rounding by 1e4 and more, which is why the ResNet-50 case uses base 6, 32 px and 16 rows).
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torchvision
from torchvision.models.resnet import BasicBlock, Bottleneck

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "core")


class ScaledResNet(nn.Module):
    def __init__(self, block, layers, base, stem, head_layers, head_bn, out_dim):
        super().__init__()
        self.inplanes = base
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(3, base, 7, 2, 3, bias=False)
        else:
            self.conv1 = nn.Conv2d(3, base, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if stem == "imagenet" else nn.Identity()
        self.layer1 = self._make_layer(block, base, layers[0], 1)
        self.layer2 = self._make_layer(block, base * 2, layers[1], 2)
        self.layer3 = self._make_layer(block, base * 4, layers[2], 2)
        self.layer4 = self._make_layer(block, base * 8, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        d = base * 8 * block.expansion
        mods = []
        for i in range(head_layers):
            last = i == head_layers - 1
            o = out_dim if last else d
            # head_bn: False, True (hidden layers), "all" (google: every layer, the output BN
            # without a shift: bias frozen at 0)
            out_bn = head_bn == "all" and last
            mods.append(nn.Linear(d, o, bias=(last and not out_bn) or not head_bn))
            if not last:
                if head_bn:
                    mods.append(nn.BatchNorm1d(o))
                mods.append(nn.ReLU())
            elif out_bn:
                mods.append(nn.BatchNorm1d(o))
                mods[-1].fixed_shift = True
        self.head = nn.Sequential(*mods)
        for m in self.modules():  # torchvision's init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, block, planes, blocks, stride):
        down = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                 nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, down)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        acts = []
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        acts.append(x)
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            for blk in layer:
                x = blk(x)
                acts.append(x)
        h = torch.flatten(self.avgpool(x), 1)
        z = self.head(h)
        return acts, h, z


def nhwc(t):
    return t.detach().permute(0, 2, 3, 1).contiguous().numpy()


def save(d, name, a):
    a = np.asarray(a)
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    np.save(os.path.join(d, name), np.ascontiguousarray(a))


def perturb_bn(model, g):
    # Non-trivial BN affine parameters, so gamma/beta enter the checks (init gives 1/0).
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            with torch.no_grad():
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            if getattr(m, "fixed_shift", False):
                with torch.no_grad():
                    m.bias.zero_()
                m.bias.requires_grad_(False)


def build(block, layers, base, stem, size, B, head_layers, head_bn, out_dim, dtype):
    g = torch.Generator().manual_seed(1234)
    torch.manual_seed(0)
    model = ScaledResNet(block, layers, base, stem, head_layers, head_bn, out_dim)
    perturb_bn(model, g)
    model.train()
    x = torch.rand(B, 3, size, size, generator=g)
    model = model.to(dtype)
    return model, x, g


def conditioning(block, layers, base, stem, size, B, head_layers, head_bn, out_dim):
    """max over parameters of max|grad32 - grad64| / max|grad64|"""
    res = []
    for dt in (torch.float32, torch.float64):
        model, x, g = build(block, layers, base, stem, size, B, head_layers, head_bn, out_dim, dt)
        _, _, z = model(x.to(dt))
        dz = torch.randn(z.shape, generator=g)
        (z * dz.to(dt)).sum().backward()
        res.append({k: p.grad.double() for k, p in model.named_parameters() if p.grad is not None})
    return max(float((res[0][k] - res[1][k]).abs().max() / (res[1][k].abs().max() + 1e-30)) for k in res[1])


def make_case(name, block, layers, base, stem, size, B, head_layers=2, head_bn=False, out_dim=16):
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    cond = conditioning(block, layers, base, stem, size, B, head_layers, head_bn, out_dim)
    model, x, g = build(block, layers, base, stem, size, B, head_layers, head_bn, out_dim, torch.float64)
    sd = model.state_dict()
    params = dict(model.named_parameters())
    lines, p0, b0 = [], [], []
    for k, v in sd.items():
        kind = "param" if k in params else ("counter" if v.dtype == torch.int64 else "buffer")
        lines.append(" ".join([k, kind, str(v.numel())] + [str(s) for s in v.shape]))
        if kind == "param":
            p0.append(v.detach().reshape(-1).numpy().copy())
        elif kind == "buffer":
            b0.append(v.detach().reshape(-1).numpy().copy())
    with open(os.path.join(d, "tensors.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    save(d, "params.npy", np.concatenate(p0).astype(np.float32))
    save(d, "buffers0.npy", np.concatenate(b0).astype(np.float32))
    acts, h, z = model(x.double())
    dz = torch.randn(z.shape, generator=g)
    (z * dz.double()).sum().backward()
    save(d, "x.npy", x.numpy())
    save(d, "stem.npy", nhwc(acts[0]))
    for i, a in enumerate(acts[1:]):
        save(d, "block%d.npy" % i, nhwc(a))
    save(d, "h.npy", h.detach().numpy())
    save(d, "z.npy", z.detach().numpy())
    save(d, "dz.npy", dz.numpy())
    grads = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).detach().numpy()
             for k, p in model.named_parameters()]
    save(d, "grads.npy", np.concatenate(grads).astype(np.float32))
    b1 = [v.reshape(-1).numpy().copy() for k, v in model.state_dict().items()
          if k not in params and v.dtype != torch.int64]
    save(d, "buffers1.npy", np.concatenate(b1).astype(np.float32))
    model.eval()
    with torch.no_grad():
        _, _, ze = model(x.double())
    save(d, "z_eval.npy", ze.numpy())
    print(name, "params", sum(p.numel() for p in model.parameters()), "keys", len(sd),
          "conditioning (torch f32 vs f64, worst grad error / max grad) %.1e" % cond)


def names(arch):
    m = getattr(torchvision.models, arch)()
    with open(os.path.join(ROOT, "names_%s.txt" % arch), "w") as f:
        for k, v in m.state_dict().items():
            if k.startswith("fc."):
                continue
            f.write(" ".join([k] + [str(s) for s in v.shape]) + "\n")


def main():
    os.makedirs(ROOT, exist_ok=True)
    torch.set_num_threads(1)
    for a in ("resnet18", "resnet34", "resnet50"):
        names(a)
    make_case("resnet18_w0125", BasicBlock, [2, 2, 2, 2], 8, "imagenet", 32, 8)
    make_case("resnet50_base6", Bottleneck, [3, 4, 6, 3], 6, "imagenet", 32, 16)
    make_case("resnet18_cifar_headbn", BasicBlock, [2, 2, 2, 2], 4, "cifar", 8, 6, head_layers=3,
              head_bn=True, out_dim=8)
    make_case("resnet18_cifar_headbnall", BasicBlock, [2, 2, 2, 2], 4, "cifar", 8, 6, head_layers=2,
              head_bn="all", out_dim=8)


if __name__ == "__main__":
    main()
