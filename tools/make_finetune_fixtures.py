#!/usr/bin/env python3
"""Reference values for `simclr finetune`: one fine-tuning step in PyTorch (the twin of the C
Trainer step with the cross-entropy loss).

Run with Debian's python (torch 1.13, torchvision 0.14):
    /usr/bin/python3 tools/make_finetune_fixtures.py        # writes tests/fixtures/finetune/
The C test tests/test_finetune.c reads these files; it never needs Python.

The step: a ResNet-18 at width 1/16 (base 4 channels, cifar stem, 16 px) whose fc is a Linear(32,
5) (the C model's one-layer head with out_dim 5: head.0 = fc), BN with perturbed affine values, in
training mode; 8 images with labels; mean cross-entropy; backward; one SGD step with Nesterov
momentum 0.9, lr 0.1, no weight decay (the paper's fine-tuning optimizer).
Files: params0.npy / buffers0.npy (state_dict order, f32), x.npy (8,3,16,16), y.npy (8,) i64,
logits.npy (8,5), grads.npy, params1.npy (after the step), buffers1.npy (running statistics
after the forward), out.npy [loss, top1, lr, momentum].
"""
import os
import sys

import numpy as np
import torch
from torchvision.models.resnet import BasicBlock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_core_fixtures import ScaledResNet, perturb_bn  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "finetune")


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(2024)
    torch.manual_seed(5)
    B, K, S, lr, mu = 8, 5, 16, 0.1, 0.9
    model = ScaledResNet(BasicBlock, [2, 2, 2, 2], 4, "cifar", 1, False, K)
    perturb_bn(model, g)
    model.train()
    names = [k for k, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    p0 = torch.cat([p.detach().reshape(-1) for p in params]).numpy().copy()
    b0 = np.concatenate([v.reshape(-1).numpy() for k, v in model.state_dict().items()
                         if k not in names and v.dtype != torch.int64]).astype(np.float32)
    x = torch.rand(B, 3, S, S, generator=g)
    y = torch.randint(0, K, (B,), generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=mu, nesterov=True)
    opt.zero_grad()
    _, _, logits = model(x)
    loss = torch.nn.functional.cross_entropy(logits, y)
    loss.backward()
    top1 = (logits.argmax(1) == y).float().mean().item()
    grads = torch.cat([p.grad.reshape(-1) for p in params]).numpy().copy()
    opt.step()
    p1 = torch.cat([p.detach().reshape(-1) for p in params]).numpy().copy()
    b1 = np.concatenate([v.reshape(-1).numpy() for k, v in model.state_dict().items()
                         if k not in names and v.dtype != torch.int64]).astype(np.float32)
    for name, a in [("params0", p0), ("buffers0", b0), ("x", x.numpy()), ("y", y.numpy().astype(np.int64)),
                    ("logits", logits.detach().numpy()), ("grads", grads), ("params1", p1),
                    ("buffers1", b1), ("out", np.array([loss.item(), top1, lr, mu]))]:
        np.save(os.path.join(OUT, name + ".npy"), a)
    print("finetune fixture: loss %.6f top1 %.3f, %d params" % (loss.item(), top1, p0.size))


if __name__ == "__main__":
    main()
