#!/usr/bin/python3
"""Checks a run's TensorBoard log against its metrics.jsonl (tests/cli/tensorboard.sh):

    check_tensorboard.py RUN_DIR [--image] [--finetune]

Decodes RUN_DIR/tensorboard/events.out.tfevents.* with a decoder built from the published
schema (tools/tensorboard_event.proto compiled by protoc, python3-protobuf) and checks:
  - the TFRecord framing: every length and data CRC (a CRC-32C written here from the definition,
    checked against its standard check value), nothing left over;
  - the first event is file_version "brain.Event:2"; every event has a wall time;
  - every scalar (tag, step, value) equals a value of metrics.jsonl (as float32) and every
    metrics value appears once: train/loss, train/contrastive_top1/top5, train/lr,
    train/views_per_s, train/probe_top1 (--online-probe), eval/knn_top1/top5; with --finetune
    (a `simclr finetune` run) train/accuracy_top1/top5 (the batch's classification accuracy)
    instead of the contrastive ones, and eval/test_top1/top5;
  - with --image: one "augmentations" image at step 0, a PNG whose size matches the event.
Prints a summary; exits 1 on any mismatch.
"""
import glob
import importlib
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    TABLE.append(c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def f32(x):
    return float(np.float32(x))


def main():
    run, want_image = sys.argv[1], "--image" in sys.argv
    acc = "train/accuracy" if "--finetune" in sys.argv else "train/contrastive"
    assert crc32c(b"123456789") == 0xE3069283, "CRC-32C check value"
    tmp = tempfile.mkdtemp()
    subprocess.check_call(["protoc", "-I", os.path.join(ROOT, "tools"), "--python_out", tmp,
                           "tensorboard_event.proto"])
    sys.path.insert(0, tmp)
    pb = importlib.import_module("tensorboard_event_pb2")
    files = sorted(glob.glob(os.path.join(run, "tensorboard", "events.out.tfevents.*")))
    errors = []
    if len(files) != 1:
        print("FAIL: expected one events file, found %d" % len(files), file=sys.stderr)
        return 1
    data = open(files[0], "rb").read()
    at, events = 0, []
    while at < len(data):
        if len(data) - at < 16:
            errors.append("%d stray bytes at the end" % (len(data) - at))
            break
        (n,) = struct.unpack_from("<Q", data, at)
        (hc,) = struct.unpack_from("<I", data, at + 8)
        if hc != masked(data[at:at + 8]):
            errors.append("bad length CRC at byte %d" % at)
            break
        body = data[at + 12:at + 12 + n]
        (dc,) = struct.unpack_from("<I", data, at + 12 + n)
        if dc != masked(body):
            errors.append("bad data CRC at byte %d" % at)
        ev = pb.Event()
        ev.ParseFromString(body)
        events.append(ev)
        at += 16 + n
    if not events or events[0].file_version != "brain.Event:2":
        errors.append("the first event is not file_version brain.Event:2")
    scalars, images = {}, []
    for ev in events[1:]:
        if ev.wall_time <= 0:
            errors.append("an event without wall time")
        if ev.WhichOneof("what") != "summary":
            errors.append("unexpected event %s" % ev.WhichOneof("what"))
            continue
        for v in ev.summary.value:
            kind = v.WhichOneof("value")
            if kind == "simple_value":
                key = (v.tag, ev.step)
                if key in scalars:
                    errors.append("duplicate %s at step %d" % key)
                scalars[key] = v.simple_value
            elif kind == "image":
                images.append((v.tag, ev.step, v.image))
            else:
                errors.append("unexpected value kind %s" % kind)
    want = {}
    names = {"loss": "train/loss", "acc_top1": acc + "_top1", "acc_top5": acc + "_top5",
             "lr": "train/lr", "views_per_s": "train/views_per_s", "probe_top1": "train/probe_top1",
             "knn_top1": "eval/knn_top1", "knn_top5": "eval/knn_top5",
             "test_top1": "eval/test_top1", "test_top5": "eval/test_top5"}
    for line in open(os.path.join(run, "metrics.jsonl")):
        m = json.loads(line)
        for k, tag in names.items():
            if k in m and m[k] is not None:
                if (tag, m["step"]) in want:
                    errors.append("metrics.jsonl repeats %s at step %d" % (tag, m["step"]))
                want[(tag, m["step"])] = f32(m[k])
    for key, v in want.items():
        if key not in scalars:
            errors.append("missing in TensorBoard: %s step %d" % key)
        elif scalars[key] != v:
            errors.append("%s step %d: TensorBoard %r, metrics.jsonl %r" % (key + (scalars[key], v)))
    for key in scalars:
        if key not in want:
            errors.append("not in metrics.jsonl: %s step %d" % key)
    if want_image:
        aug = [i for i in images if i[0] == "augmentations" and i[1] == 0]
        if len(aug) != 1:
            errors.append("expected one augmentations image at step 0, found %d" % len(aug))
        else:
            im = aug[0][2]
            png = im.encoded_image_string
            w, h = struct.unpack(">II", png[16:24]) if png[:8] == b"\x89PNG\r\n\x1a\n" else (0, 0)
            if (h, w) != (im.height, im.width) or im.colorspace != 3:
                errors.append("image: PNG %dx%d, event says %dx%d colorspace %d" % (
                    w, h, im.width, im.height, im.colorspace))
    elif images:
        errors.append("%d unexpected images" % len(images))
    steps = sorted({s for _, s in scalars})
    print("%s: %d records, CRCs checked; %d scalars (%d tags, steps %s..%s) equal metrics.jsonl; %d image(s)" % (
        os.path.basename(files[0]), len(events), len(scalars), len({t for t, _ in scalars}),
        steps[0] if steps else "-", steps[-1] if steps else "-", len(images)))
    for e in errors[:20]:
        print("FAIL: " + e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
