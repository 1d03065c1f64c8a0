#!/usr/bin/env python3
"""Reference values for the loss, the optimizers, the lr schedule and safetensors I/O.

Run with Debian's python (torch 1.13, numpy):
    /usr/bin/python3 tools/make_opt_fixtures.py            # writes tests/fixtures/opt/
    /usr/bin/python3 tools/make_opt_fixtures.py --check F  # validates F with the spec reader
The C tests (tests/test_ntxent.c, test_optim.c, test_safetensors.c) read these files; they
never need Python.

Contents of tests/fixtures/opt/:
  ntxent_<case>_z.npy (B,D) f32 input, _dz.npy (B,D) f64 gradient, _out.npy f64
      [loss, top1, top5, N, V, tau]; V=2 cases use sthalles' info_nce_loss + CrossEntropyLoss,
      V=3 cases the explicit multi-positive formula; computed in float64 from the f32 input.
  optim_params0.npy (P) f32, optim_grads.npy (3,P) f32, optim_lrs.npy (3) f64,
  optim_segments.npy (S,3) i64 [offset, numel, no_decay],
  optim_<case>_params.npy (3,P) f32 params after steps 1..3, optim_<case>_m.npy / _v.npy (P)
      state after 3 steps (torch's exp_avg / exp_avg_sq / momentum_buffer).
  lr_<case>.npy (T+1) f64: our schedule and google's, steps 0..T.
  py_written.safetensors: written by the spec-following writer below.
  joint_r18/: one SimCLR step of a tiny ResNet-18 + default head (joint_fixture below).
"""
import json
import math
import os
import struct
import sys

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "opt")

# --------------------------------------------------------------------------------------------
# safetensors, from the format description (u64 N | JSON | buffer), no safetensors package.
DTYPES = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32",
          "F32", "F64", "I64", "U64"]  # the reference implementation's enum order
NP = {"BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "I16": np.int16, "U16": np.uint16,
      "F16": np.float16, "I32": np.int32, "U32": np.uint32, "F32": np.float32,
      "F64": np.float64, "I64": np.int64, "U64": np.uint64}
DT_OF = {np.dtype(v).str: k for k, v in NP.items()}


def st_write(path, tensors, metadata=None):
    """tensors: dict name -> numpy array. Sorted by dtype (descending enum order), then name;
    compact JSON, __metadata__ first, padded with spaces to a multiple of 8."""
    items = []
    for name, a in tensors.items():
        a = np.array(a, order="C", copy=True)
        dt = DT_OF[a.dtype.newbyteorder("<").str if a.dtype.byteorder == ">" else a.dtype.str]
        items.append((name, dt, a))
    items.sort(key=lambda x: (-DTYPES.index(x[1]), x[0].encode()))
    header, off, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = metadata
    for name, dt, a in items:
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def st_read(path):
    """Spec reader with every check of the reference: returns (tensors, metadata)."""
    data = open(path, "rb").read()
    assert len(data) >= 8, "too short"
    n = struct.unpack("<Q", data[:8])[0]
    assert n <= 100_000_000 and 8 + n <= len(data), "bad header length"

    def no_dup(pairs):
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), "duplicate key"
        return dict(pairs)

    header = json.loads(data[8:8 + n].decode("utf-8"), object_pairs_hook=no_dup)
    meta = header.pop("__metadata__", None)
    if meta is not None:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    buf = data[8 + n:]
    at, out = 0, {}
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        assert set(info) == {"dtype", "shape", "data_offsets"}, name
        b, e = info["data_offsets"]
        assert b == at and e >= b, f"{name}: offsets do not tile"
        dt = np.dtype(NP[info["dtype"]]).newbyteorder("<")
        assert e - b == int(np.prod(info["shape"], dtype=np.int64)) * dt.itemsize, f"{name}: size"
        out[name] = np.frombuffer(buf[b:e], dtype=dt).reshape(tuple(info["shape"]))
        at = e
    assert at == len(buf), "buffer length"
    return out, meta


def safetensors_fixture():
    # The C test (test_safetensors.c, py_written_*) builds the same tensors from these formulas.
    t = {
        "conv1.weight": (np.arange(4 * 3 * 3 * 3, dtype=np.float32) * 0.5 - 3).reshape(4, 3, 3, 3),
        "bn1.num_batches_tracked": np.array(7, dtype=np.int64),
        "bn1.running_var": np.array([1.0, 0.25, 4.0], dtype=np.float32),
        "fc.bias": np.array([0.1, -2.5, 1e-300], dtype=np.float64),
        "mask": np.array([1, 0, 255, 3, 9], dtype=np.uint8),
        "idx": np.array([[1, -2], [3, -4]], dtype=np.int32),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "half": np.array([1.0, -0.5], dtype=np.float16),
        "a\"q\\uote\u00e9": np.array([2.0], dtype=np.float32),
    }
    meta = {"format": "pt", "config": '{"arch": "resnet18",\n\t"lr": 0.3}', "note": "caf\u00e9\u0001"}
    p = os.path.join(OUT, "py_written.safetensors")
    st_write(p, t, meta)
    back, m = st_read(p)
    assert m == meta and all(np.array_equal(back[k], v) for k, v in t.items())


# --------------------------------------------------------------------------------------------
def ntxent_fixtures():
    import torch
    import torch.nn.functional as F

    def info_nce_loss(features, batch_size, n_views, temperature):
        """sthalles/SimCLR SimCLR.info_nce_loss (positive in column 0), as described."""
        labels = torch.cat([torch.arange(batch_size) for _ in range(n_views)], dim=0)
        labels = (labels.unsqueeze(0) == labels.unsqueeze(1)).float()
        features = F.normalize(features, dim=1)
        sim = torch.matmul(features, features.T)
        mask = torch.eye(labels.shape[0], dtype=torch.bool)
        labels = labels[~mask].view(labels.shape[0], -1)
        sim = sim[~mask].view(sim.shape[0], -1)
        positives = sim[labels.bool()].view(labels.shape[0], -1)
        negatives = sim[~labels.bool()].view(sim.shape[0], -1)
        logits = torch.cat([positives, negatives], dim=1) / temperature
        return logits, torch.zeros(logits.shape[0], dtype=torch.long)

    def topk_acc(logits, k):  # sthalles utils.accuracy, as a fraction
        return (logits.topk(k, 1).indices == 0).any(1).double().mean().item()

    def multi_positive(z, N, V, tau):
        """Mean over rows, mean over each row's V-1 positives of -log softmax over c != self."""
        B = N * V
        u = F.normalize(z, dim=1)
        s = u @ u.T / tau
        eye = torch.eye(B, dtype=torch.bool)
        s = s.masked_fill(eye, float("-inf"))
        logp = s - torch.logsumexp(s, dim=1, keepdim=True)
        ids = torch.arange(B) % N
        pos = (ids[None] == ids[:, None]) & ~eye
        loss = -(logp * pos).nan_to_num(0.0).sum(1) / (V - 1)
        # accuracy: rank of each positive among the negatives only
        neg = ~(pos | eye)
        t1 = t5 = 0
        for r in range(B):
            for p in pos[r].nonzero().flatten().tolist():
                rank = int((s[r][neg[r]] > s[r, p]).sum())
                t1 += rank < 1
                t5 += rank < 5
        pairs = B * (V - 1)
        return loss.mean(), t1 / pairs, t5 / pairs

    g = torch.Generator().manual_seed(1234)
    cases = [("v2_t007", 6, 2, 16, 0.07), ("v2_t05", 6, 2, 16, 0.5), ("v2_t1", 6, 2, 16, 1.0),
             ("v2_big", 32, 2, 128, 0.1), ("v3_t01", 5, 3, 8, 0.1), ("v3_t05", 5, 3, 8, 0.5),
             ("v4_t02", 4, 4, 12, 0.2)]
    for name, N, V, D, tau in cases:
        z32 = torch.randn(N * V, D, generator=g, dtype=torch.float32)
        z32[1] *= 7.0  # unnormalised rows of different norms
        z32[2] *= 0.05
        z = z32.double().requires_grad_(True)
        if V == 2:
            logits, labels = info_nce_loss(z, N, V, tau)
            loss = torch.nn.CrossEntropyLoss()(logits, labels)
            t1, t5 = topk_acc(logits, 1), topk_acc(logits, 5)
            l2, a1, a5 = multi_positive(z.detach(), N, V, tau)  # both forms must agree for V=2
            assert abs(l2.item() - loss.item()) < 1e-12 and a1 == t1 and a5 == t5
        else:
            loss, t1, t5 = multi_positive(z, N, V, tau)
        loss.backward()
        np.save(os.path.join(OUT, f"ntxent_{name}_z.npy"), z32.numpy())
        np.save(os.path.join(OUT, f"ntxent_{name}_dz.npy"), z.grad.numpy())
        np.save(os.path.join(OUT, f"ntxent_{name}_out.npy"),
                np.array([loss.item(), t1, t5, N, V, tau], dtype=np.float64))


# --------------------------------------------------------------------------------------------
SEGMENTS = [(0, 30, 0), (30, 6, 1), (36, 4, 1), (40, 24, 0)]  # W1 (6,5), b1, bn.w, W2 (4,6)
P = 64


def lars_np(p, grads, lrs, wd, mu, eta, nesterov, segs):
    """google-research/simclr LARS (classic momentum), from its description: g += wd*w unless
    excluded; trust = eta*||w||/||g|| (1 if a norm is 0, 1 for excluded); v = mu*v + lr*trust*g;
    w -= v (nesterov: mu*v + lr*trust*g). BN/bias segments are excluded. float32 throughout."""
    p = p.copy()
    v = np.zeros_like(p)
    hist = []
    for g0, lr in zip(grads, lrs):
        for off, n, nd in segs:
            w, g = p[off:off + n], g0[off:off + n].copy()
            trust = np.float32(1.0)
            if not nd:
                g = (g + np.float32(wd) * w).astype(np.float32)
                wn, gn = np.linalg.norm(w.astype(np.float64)), np.linalg.norm(g.astype(np.float64))
                if wn > 0 and gn > 0:
                    trust = np.float32(eta * wn / gn)
            slr = np.float32(np.float32(lr) * trust)
            v[off:off + n] = np.float32(mu) * v[off:off + n] + slr * g
            upd = np.float32(mu) * v[off:off + n] + slr * g if nesterov else v[off:off + n]
            p[off:off + n] = w - upd
        hist.append(p.copy())
    return np.stack(hist), v


def optim_fixtures():
    import torch
    rng = np.random.default_rng(7)
    p0 = rng.standard_normal(P).astype(np.float32)
    grads = rng.standard_normal((3, P)).astype(np.float32)
    grads[1] *= 0.1
    lrs = np.array([0.05, 0.1, 0.08])
    np.save(os.path.join(OUT, "optim_params0.npy"), p0)
    np.save(os.path.join(OUT, "optim_grads.npy"), grads)
    np.save(os.path.join(OUT, "optim_lrs.npy"), lrs)
    np.save(os.path.join(OUT, "optim_segments.npy"), np.array(SEGMENTS, dtype=np.int64))

    def run_torch(name, make, wd, exclude):
        ps = [torch.nn.Parameter(torch.from_numpy(p0[o:o + n].copy())) for o, n, _ in SEGMENTS]
        if exclude:
            groups = [{"params": [q for q, s in zip(ps, SEGMENTS) if not s[2]], "weight_decay": wd},
                      {"params": [q for q, s in zip(ps, SEGMENTS) if s[2]], "weight_decay": 0.0}]
        else:
            groups = [{"params": ps, "weight_decay": wd}]
        opt = make(groups)
        hist = []
        for g, lr in zip(grads, lrs):
            for q, (o, n, _) in zip(ps, SEGMENTS):
                q.grad = torch.from_numpy(g[o:o + n].copy())
            for grp in opt.param_groups:
                grp["lr"] = float(lr)
            opt.step()
            hist.append(torch.cat([q.detach() for q in ps]).numpy().copy())
        np.save(os.path.join(OUT, f"optim_{name}_params.npy"), np.stack(hist))
        st = [opt.state[q] for q in ps]
        if "exp_avg" in st[0]:
            np.save(os.path.join(OUT, f"optim_{name}_m.npy"), torch.cat([s["exp_avg"] for s in st]).numpy())
            np.save(os.path.join(OUT, f"optim_{name}_v.npy"), torch.cat([s["exp_avg_sq"] for s in st]).numpy())
        else:
            np.save(os.path.join(OUT, f"optim_{name}_m.npy"), torch.cat([s["momentum_buffer"] for s in st]).numpy())

    run_torch("adam", lambda g: torch.optim.Adam(g, lr=0.1), 0.1, False)
    run_torch("adam_excl", lambda g: torch.optim.Adam(g, lr=0.1, betas=(0.8, 0.99), eps=1e-6), 0.1, True)
    run_torch("adamw", lambda g: torch.optim.AdamW(g, lr=0.1), 0.1, False)
    run_torch("adamw_excl", lambda g: torch.optim.AdamW(g, lr=0.1), 0.1, True)
    run_torch("sgd", lambda g: torch.optim.SGD(g, lr=0.1, momentum=0.9), 0.01, False)
    run_torch("sgd_nesterov", lambda g: torch.optim.SGD(g, lr=0.1, momentum=0.9, nesterov=True), 0.01, True)
    for name, nest in (("lars", False), ("lars_nesterov", True)):
        hist, v = lars_np(p0, grads, lrs, 0.01, 0.9, 0.001, nest, SEGMENTS)
        np.save(os.path.join(OUT, f"optim_{name}_params.npy"), hist)
        np.save(os.path.join(OUT, f"optim_{name}_m.npy"), v)


# --------------------------------------------------------------------------------------------
def lr_fixtures():
    def ours(base, w, T, cosine, step):
        if step < w:
            return base * (step + 1) / w
        if not cosine:
            return base
        return 0.0 if step >= T else base * 0.5 * (1 + math.cos(math.pi * (step - w) / (T - w)))

    def google(base, w, T, step):  # WarmUpAndCosineDecay: global_step = steps already taken
        warm = step / w * base if w else base
        cos = base * 0.5 * (1 + math.cos(math.pi * min(step - w, T - w) / (T - w)))
        return warm if step < w else cos

    cases = {"cos_linear": (0.3 * 512 / 256, 10, 50, True), "cos_sqrt": (0.075 * math.sqrt(512), 7, 30, True),
             "const": (3e-4, 5, 20, False), "cos_nowarm": (0.1, 0, 25, True)}
    for name, (base, w, T, cos) in cases.items():
        np.save(os.path.join(OUT, f"lr_{name}.npy"),
                np.array([ours(base, w, T, cos, s) for s in range(T + 1)], dtype=np.float64))
        if cos and w:
            np.save(os.path.join(OUT, f"lr_{name}_google.npy"),
                    np.array([google(base, w, T, s) for s in range(T + 1)], dtype=np.float64))


# --------------------------------------------------------------------------------------------
JOINT_OPTS = {  # name: (lr, weight_decay, exclude_bn_bias); the C test uses the same values
    "adam": (1e-3, 1e-4, False), "adamw": (1e-3, 0.05, True),
    "sgd_nesterov": (0.1, 5e-4, True), "lars": (0.5, 1e-6, True)}


def joint_fixture():
    """One full SimCLR step on a tiny ResNet-18 (width 1/16, 32 px, imagenet stem) with the
    default head (Linear(d,d), ReLU, Linear(d,128)): loss, every parameter gradient, and the
    parameters after one step of each optimizer. Uses core-net's torchvision-built model."""
    import torch
    from torchvision.models.resnet import BasicBlock
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from make_core_fixtures import ScaledResNet, perturb_bn

    d = os.path.join(OUT, "joint_r18")
    os.makedirs(d, exist_ok=True)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(99)
    torch.manual_seed(3)
    N, V, tau = 4, 2, 0.5
    model = ScaledResNet(BasicBlock, [2, 2, 2, 2], 4, "imagenet", 2, False, 128)
    perturb_bn(model, g)
    model.train()
    names = [k for k, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    p0 = torch.cat([p.detach().reshape(-1) for p in params]).numpy().copy()
    b0 = np.concatenate([v.reshape(-1).numpy() for k, v in model.state_dict().items()
                         if k not in names and v.dtype != torch.int64]).astype(np.float32)
    x = torch.rand(N * V, 3, 32, 32, generator=g)
    _, _, z = model(x)
    u = torch.nn.functional.normalize(z, dim=1)
    s = (u @ u.T / tau).masked_fill(torch.eye(N * V, dtype=torch.bool), float("-inf"))
    target = torch.cat([torch.arange(N, 2 * N), torch.arange(0, N)])  # the other view
    loss = torch.nn.functional.cross_entropy(s, target)
    loss.backward()
    grads = torch.cat([p.grad.reshape(-1) for p in params]).numpy().copy()
    np.save(os.path.join(d, "params0.npy"), p0)
    np.save(os.path.join(d, "buffers0.npy"), b0)
    np.save(os.path.join(d, "x.npy"), x.numpy())
    np.save(os.path.join(d, "grads.npy"), grads)
    np.save(os.path.join(d, "out.npy"), np.array([loss.item(), N, V, tau], dtype=np.float64))
    segs, off = [], 0
    for k, p in zip(names, params):
        segs.append((off, p.numel(), int(p.ndim == 1)))  # BN weight/bias and biases
        off += p.numel()
    for name, (lr, wd, excl) in JOINT_OPTS.items():
        if name == "lars":
            hist, _ = lars_np(p0, grads[None], [lr], wd, 0.9, 0.001, False, segs)
            np.save(os.path.join(d, f"step_{name}.npy"), hist[0])
            continue
        with torch.no_grad():
            for p, (o, n, _) in zip(params, segs):
                p.copy_(torch.from_numpy(p0[o:o + n]).reshape(p.shape))
        dec = [p for p, sg in zip(params, segs) if not (excl and sg[2])]
        nod = [p for p, sg in zip(params, segs) if excl and sg[2]]
        groups = [{"params": dec, "weight_decay": wd}] + ([{"params": nod, "weight_decay": 0.0}] if nod else [])
        opt = {"adam": lambda: torch.optim.Adam(groups, lr=lr),
               "adamw": lambda: torch.optim.AdamW(groups, lr=lr),
               "sgd_nesterov": lambda: torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)}[name]()
        opt.step()
        np.save(os.path.join(d, f"step_{name}.npy"),
                torch.cat([p.detach().reshape(-1) for p in params]).numpy())
    print("joint fixture: loss %.6f, %d params" % (loss.item(), p0.size))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        t, m = st_read(sys.argv[2])
        print(f"{sys.argv[2]}: ok, {len(t)} tensors, metadata {m}")
        for k, v in t.items():
            print(f"  {k} {v.dtype} {list(v.shape)} sum={v.astype(np.float64).sum():.6g}")
        return
    os.makedirs(OUT, exist_ok=True)
    safetensors_fixture()
    ntxent_fixtures()
    optim_fixtures()
    lr_fixtures()
    joint_fixture()
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
