#!/usr/bin/python3
"""PyTorch twin of `simclr bench`: full SimCLR training steps on random inputs.

torchvision ResNet (fc replaced by the default 2-layer head Linear(d,d)-ReLU-Linear(d,out)),
NT-Xent on 2N L2-normalised projections, Adam; times forward + loss + backward + update.
Run with Debian's python3:
    /usr/bin/python3 bench/pytorch_train_bench.py --arch resnet18 --image-size 96 \
        --batch-size 64 --steps 10 --threads 2 [--channels-last]
Prints views/s, ms/step, peak RSS; the LAST line is one JSON object.
"""
import argparse, json, resource, time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


def ntxent(z, n, tau):
    z = F.normalize(z, dim=1)
    sim = z @ z.t() / tau
    sim.fill_diagonal_(float("-inf"))
    idx = torch.arange(2 * n)
    target = (idx + n) % (2 * n)
    return F.cross_entropy(sim, target)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="resnet18", choices=["resnet18", "resnet34", "resnet50"])
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=64, help="images; views = 2x")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out-dim", type=int, default=128)
    ap.add_argument("--stem", default="imagenet", choices=["imagenet", "cifar"])
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--bf16", action="store_true", help="autocast bf16 (CPU)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m = getattr(torchvision.models, a.arch)()
    if a.stem == "cifar":
        m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        m.maxpool = nn.Identity()
    d = m.fc.in_features
    m.fc = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, a.out_dim))
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    m = m.to(memory_format=fmt)
    m.train()
    opt = torch.optim.Adam(m.parameters(), lr=3e-4)
    B = 2 * a.batch_size
    x = torch.rand(B, 3, a.image_size, a.image_size).contiguous(memory_format=fmt)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            z = m(x)
        loss = ntxent(z.float(), a.batch_size, 0.5)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(a.steps):
        step()
    dt = (time.perf_counter() - t0) / a.steps
    cpu = (time.process_time() - c0) / a.steps
    vps = B / dt
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"pytorch {torch.__version__} {a.arch} {a.image_size}px batch {a.batch_size} "
          f"({B} views) threads {a.threads} {'channels_last' if a.channels_last else 'nchw'}"
          f"{' bf16' if a.bf16 else ''}")
    print(f"{vps:.1f} views/s, {dt*1000:.1f} ms/step, peak RSS {rss:.0f} MB, "
          f"CPU {cpu*1000:.1f} ms/step ({cpu/dt:.2f} cores busy)")
    print(json.dumps({"impl": "pytorch", "arch": a.arch, "image_size": a.image_size,
                      "batch_size": a.batch_size, "threads": a.threads,
                      "layout": "channels_last" if a.channels_last else "nchw",
                      "views_per_s": round(vps, 2), "ms_per_step": round(dt * 1000, 2),
                      "peak_rss_mb": round(rss, 1), "cpu_ms_per_step": round(cpu * 1000, 2)}))


if __name__ == "__main__":
    main()
