#!/usr/bin/python3
"""Writes the fuzzers' seed corpora (fuzz/corpus/NAME/): a few small valid inputs of every format
each harness reads, plus near-misses. Deterministic; run with Debian's /usr/bin/python3 (numpy,
PIL). The files are committed, so `make fuzz` does not need Python."""
import gzip, io, json, os, struct, sys
import numpy as np
from PIL import Image

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "corpus")
SEP = b"\n##\n"  # fuzz_split's separator between two files of one input

def put(name, fname, data):
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, fname), "wb") as f:
        f.write(data)

def npy(a, fortran=False):
    b = io.BytesIO()
    np.save(b, np.asfortranarray(a) if fortran else a)
    return b.getvalue()

rng = np.random.default_rng(0)
# ---- npy: image arrays, features, labels, every dtype family, both byte orders, Fortran order
put("npy", "u8_images.npy", npy(rng.integers(0, 256, (2, 4, 4), dtype=np.uint8)))
put("npy", "u8_rgb.npy", npy(rng.integers(0, 256, (2, 3, 3, 3), dtype=np.uint8)))
put("npy", "f32_features.npy", npy(rng.standard_normal((3, 4)).astype(np.float32)))
put("npy", "i64_labels.npy", npy(np.array([0, 1, 2, 1], dtype=np.int64)))
put("npy", "f64_be_fortran.npy", npy(rng.standard_normal((2, 3)).astype(">f8"), fortran=True))
put("npy", "f16.npy", npy(np.array([0.5, -2, 65504, 1e-7], dtype=np.float16)))
put("npy", "i32_scalar.npy", npy(np.array(7, dtype=np.int32)))
put("npy", "u16_v2.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", 116) +
    b"{'descr': '<u2', 'fortran_order': False, 'shape': (3,), }".ljust(115) + b"\n" + b"\x01\x00\x02\x00\x03\x00")
put("npy", "bool.npy", npy(np.array([True, False])))

# ---- safetensors: a torchvision-like state dict with metadata, and a minimal one
def safetensors(tensors, meta=None):
    header, blobs, off = {}, [], 0
    if meta: header["__metadata__"] = meta
    for name, (dt, shape, raw) in tensors.items():
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw); off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)
cfg = {"arch": "resnet18", "width": 0.125, "image-size": 32, "lr": 0.0003, "data": None}
put("safetensors", "checkpoint.safetensors", safetensors({
    "bn1.num_batches_tracked": ("I64", [], struct.pack("<q", 3)),
    "conv1.weight": ("F32", [2, 1, 1, 2], np.arange(4, dtype=np.float32).tobytes()),
    "head.0.bias": ("F32", [2], np.ones(2, np.float32).tobytes())},
    {"format": "pt", "step": "12", "config": json.dumps(cfg)}))
put("safetensors", "dtypes.safetensors", safetensors({
    "a": ("BF16", [2], b"\x80\x3f\x00\x40"), "b": ("U8", [3], b"\x01\x02\x03"),
    "c": ("F64", [1], struct.pack("<d", 1.5)), "e\\u00e9\\n": ("BOOL", [0], b"")}))
put("safetensors", "empty.safetensors", safetensors({}))

# ---- image: PNG of every colour type / depth / interlace, baseline and progressive JPEG
def png(a, **kw):
    b = io.BytesIO(); Image.fromarray(a).save(b, "PNG", **kw); return b.getvalue()
def jpg(a, **kw):
    b = io.BytesIO(); Image.fromarray(a).save(b, "JPEG", **kw); return b.getvalue()
g = rng.integers(0, 256, (5, 7), dtype=np.uint8)
c3 = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
put("image", "gray.png", png(g))
put("image", "rgb.png", png(c3))
put("image", "rgba.png", png(rng.integers(0, 256, (4, 4, 4), dtype=np.uint8)))
put("image", "gray_alpha.png", png(rng.integers(0, 256, (3, 4, 2), dtype=np.uint8)))
b = io.BytesIO(); Image.fromarray(c3).convert("P", palette=Image.ADAPTIVE, colors=4).save(b, "PNG"); put("image", "palette.png", b.getvalue())
b = io.BytesIO(); Image.fromarray(g > 128).save(b, "PNG"); put("image", "gray1.png", b.getvalue())
b = io.BytesIO(); Image.fromarray(g.astype(np.uint16) * 257).save(b, "PNG"); put("image", "gray16.png", b.getvalue())
put("image", "rgb.jpg", jpg(c3, quality=80))
put("image", "gray.jpg", jpg(g, quality=80))
put("image", "progressive.jpg", jpg(rng.integers(0, 256, (9, 11, 3), dtype=np.uint8), progressive=True))
put("image", "subsampled.jpg", jpg(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), subsampling=2))

# ---- idx: images (3-D and 4-D), raw and gzip, with and without labels
def idx(a):
    a = np.asarray(a, dtype=np.uint8)
    return bytes([0, 0, 8, a.ndim]) + b"".join(struct.pack(">I", d) for d in a.shape) + a.tobytes()
im = rng.integers(0, 256, (3, 4, 5), dtype=np.uint8)
lab = np.array([0, 9, 3], dtype=np.uint8)
put("idx", "raw_with_labels", idx(im) + SEP + idx(lab))
put("idx", "gz_with_labels", gzip.compress(idx(im), mtime=0) + SEP + gzip.compress(idx(lab), mtime=0))
put("idx", "rgb4d_no_labels", idx(rng.integers(0, 256, (2, 3, 3, 3), dtype=np.uint8)))
put("idx", "gz_no_labels", gzip.compress(idx(im[:1]), mtime=0))

# ---- stl10: byte 0 split/fold, byte 1 count/cut, labels, fold file, "\n##\n", class names
folds = b"0 1 2\n2 1\n1\n0\n1 0\n2\n0 2\n1 2\n0\n2 0 1\n"
names = b"airplane\nbird\ncar\ncat\ndeer\ndog\nhorse\nmonkey\nship\ntruck\n"
put("stl10", "train", bytes([0, 2]) + b"\x01\x0a\x05" + folds + SEP + names)
put("stl10", "train_fold3", bytes([4 * 4, 2]) + b"\x01\x0a\x05" + folds + SEP + names)
put("stl10", "test", bytes([1, 1]) + b"\x03\x04" + b"" + SEP + names)
put("stl10", "train_unlabeled", bytes([3, 0]) + b"\x02" + folds)
put("stl10", "unlabeled", bytes([2, 1]) + b"\x02\x02")

# ---- cifar: byte 0 count/cut, labels, pixel bytes, "\n##\n", batches.meta.txt
meta = b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"
put("cifar", "four", bytes([3]) + bytes([0, 9, 4, 1]) + bytes(range(64)) + SEP + meta)
put("cifar", "one", bytes([0]) + bytes([6]) + b"pixels")
put("cifar", "cut", bytes([4 + 1]) + bytes([2, 3]) + SEP + meta)

# ---- folds: two bytes of train-set size (big-endian), then the fold file
put("folds", "stl_like", struct.pack(">H", 20) + b"0 1 2 3\n4 5 6\n\n7 8 9 10 11\n12\n13 14\n15\n16\n17\n18 19\n")
put("folds", "crlf_tabs", struct.pack(">H", 8) + b"0\t1 \r\n2  3\r\n")
put("folds", "one_line_no_newline", struct.pack(">H", 1000) + b"999 0 500")

# ---- config: byte 0 picks keep_set/skip/recipe/image size; then a saved configuration
full = {"recipe": "sthalles", "out": "runs/x", "epochs": 6, "max-steps": 0, "batch-size": 256,
        "seed": 0, "shuffle": True, "force": False, "arch": "resnet18", "stem": "cifar",
        "width": 0.25, "image-size": 28, "head-layers": 2, "head-bn": False, "out-dim": 128,
        "optimizer": "adam", "lr": 0.003, "lr-scaling": "none", "momentum": 0.9,
        "nesterov": False, "weight-decay": 1e-06, "exclude-bn-bias": True,
        "warmup-epochs": 10, "schedule": "cosine", "temperature": 0.2, "dataset": "fashion-mnist",
        "data": None, "split": "train", "labels": None, "fold": -1, "augment": "simclr",
        "normalize": "none", "views": 2, "crop-min-scale": 0.2, "flip-prob": 0.5,
        "jitter-strength": 0.5, "blur-prob": 0, "normalize-stats": [0.5, 0.5, 0.5],
        "loader-threads": 2, "eps": 0.5}
put("config", "pretrain_config.json", bytes([0]) + json.dumps(full, indent=2).encode())
put("config", "paper_small_keep_set", bytes([0x80 | 8 | 2 | 1]) + b'{"lr": 1.5, "arch": "resnet50", "out": "a\\"b\\u00e9", "nested": {"x": [1, {"y": "}"}]}}')
put("config", "bad_values", bytes([4]) + b'{"batch-size": -3, "optimizer": "rmsprop"}')
put("config", "empty", bytes([0]) + b"{}")

# ---- metrics: byte 0 is the step to keep up to (+ 0x80: plot too); then metrics.jsonl
lines = []
for s in range(1, 6):
    lines.append('{"step": %d, "epoch": 0, "loss": %.9g, "acc_top1": 0.125, "acc_top5": 0.5, '
                 '"lr": 0.0003, "views_per_s": 310.2}' % (s, 5.0 / s))
lines.insert(3, '{"step": 3, "epoch": 0, "knn_top1": 0.71, "knn_top5": 0.95}')
put("metrics", "run", bytes([0x80 | 3]) + ("\n".join(lines) + "\n").encode())
put("metrics", "partial_last_line", bytes([9]) + ("\n".join(lines[:2]) + '\n{"step": 3, "ep').encode())
put("metrics", "nulls", bytes([0]) + b'{"step": 1, "epoch": 0, "loss": null, "acc_top1": null, "acc_top5": null, "lr": 0, "views_per_s": 0.0}\n')
print("seeds written under", os.path.normpath(root))
