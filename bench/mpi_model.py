#!/usr/bin/python3
"""Throughput model of multi-process SimCLR training (README "Multi-process training").

Per step, each of P nodes computes its share of the global batch and then communicates:
    T(P)      = T_comp + T_exposed
    T_comp    = views_per_node / v                      (v: one node's training speed, views/s)
    T_ar      = 2 (P-1) alpha + 2 (P-1)/P * 4 W / beta  (gradient all-reduce of W floats:
                                                         reduce-scatter + all-gather)
    T_bn      = 3 L ceil(log2 P) alpha                  (synchronized BN: 2 forward + 1 backward
                                                         latency-bound collectives per BN layer)
    T_z       = 2 (P-1)/P * 4 V N d / beta + 2 (P-1) alpha   (gather z, return dz: small)
    T_exposed = T_ar + T_bn + T_z                        (as implemented: after the backward)
              = max(0, T_ar - T_bwd) + T_bn + T_z        (ideal bucketed overlap; T_bwd = 2/3 T_comp)
    throughput = V N / T(P) views/s, efficiency = throughput / (P v).
The inputs are the measured single-node speeds and the stated network figures; usage:
    /usr/bin/python3 bench/mpi_model.py [--v18 116] [--v50 51] [--views-per-node 128]
"""
import argparse
import math

MODELS = {  # parameters W incl. the 2-layer head (d -> d -> 128), BN layers L
    "resnet18": (11_504_832, 20),
    "resnet50": (27_966_656, 53),
}
NETS = {"10 Gb/s": (1.25e9, 25e-6), "100 Gb/s": (12.5e9, 10e-6)}  # beta bytes/s, alpha s


def step_time(P, W, L, v, views_node, beta, alpha, overlap, d=128):
    t_comp = views_node / v
    if P == 1:
        return t_comp
    t_ar = 2 * (P - 1) * alpha + 2 * (P - 1) / P * 4 * W / beta
    t_bn = 3 * L * math.ceil(math.log2(P)) * alpha
    t_z = 2 * (P - 1) / P * 4 * views_node * P * d / beta + 2 * (P - 1) * alpha
    t_ar_exposed = max(0.0, t_ar - 2 / 3 * t_comp) if overlap else t_ar
    return t_comp + t_ar_exposed + t_bn + t_z


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--v18", type=float, default=116.0, help="ResNet-18 views/s of one node")
    ap.add_argument("--v50", type=float, default=51.0, help="ResNet-50 views/s of one node")
    ap.add_argument("--views-per-node", type=int, default=128,
                    help="weak scaling: views per node per step (64 images x 2)")
    ap.add_argument("--global-views", type=int, default=512,
                    help="strong scaling: views of the global batch (256 images x 2)")
    a = ap.parse_args()
    speeds = {"resnet18": a.v18, "resnet50": a.v50}
    for regime in ("weak", "strong"):
        print(f"\n{regime} scaling ({'%d views per node' % a.views_per_node if regime == 'weak' else 'global batch %d views' % a.global_views})")
        print("| model | network | overlap | " + " | ".join(f"P={p}" for p in (2, 4, 8, 16, 32, 64)) + " |")
        print("|---|---|---|" + "---|" * 6)
        for name, (W, L) in MODELS.items():
            v = speeds[name]
            for net, (beta, alpha) in NETS.items():
                for overlap in (False, True):
                    cells = []
                    for P in (2, 4, 8, 16, 32, 64):
                        vn = a.views_per_node if regime == "weak" else a.global_views / P
                        t = step_time(P, W, L, v, vn, beta, alpha, overlap)
                        thr = vn * P / t
                        cells.append(f"{thr:,.0f} ({100 * thr / (P * v):.0f}%)")
                    print(f"| {name} | {net} | {'ideal' if overlap else 'none (as built)'} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
