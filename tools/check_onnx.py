#!/usr/bin/python3
"""Independent checks of `simclr export` (run by tests/cli/export.sh with Debian's python3):

    check_onnx.py prepare OUT.npy SIZE IMAGE... [--fashion-mnist N]
        decodes real images with OpenCV (BGR -> RGB), resizes them to SIZE x SIZE (INTER_AREA),
        adds the first N Fashion-MNIST test images (grey -> RGB), writes uint8 (N, S, S, 3)
        for `simclr features --dataset npy`;
    check_onnx.py check MODEL.onnx IMAGES.npy FEATURES.npy OUTPUT_NAME
        onnx.checker.check_model(full_check=True) (schema, opset, shape inference), then runs the
        model with OpenCV's dnn module on the same images as one batch and one image at a time
        (the batch dimension is symbolic) and compares with `simclr features`: fails unless
        max |onnx - simclr| / max |simclr| over each row is <= 1e-4.
Prints what it measured; exits 1 on any mismatch.
"""
import gzip
import os
import sys

import numpy as np

TOL = 1e-4


def prepare(out, size, paths, n_fm):
    import cv2
    imgs = []
    for p in paths:
        im = cv2.imread(p, cv2.IMREAD_COLOR)  # BGR, alpha dropped, grey expanded
        if im is None:
            sys.exit("cannot decode %s" % p)
        im = cv2.cvtColor(im, cv2.COLOR_BGR2RGB)
        imgs.append(cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA))
    if n_fm:
        fm = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte"
        raw = gzip.open(fm + ".gz").read() if os.path.exists(fm + ".gz") else open(fm, "rb").read()
        a = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)[:n_fm]
        for g in a:
            g = cv2.resize(g, (size, size), interpolation=cv2.INTER_AREA)
            imgs.append(np.repeat(g[:, :, None], 3, axis=2))
    np.save(out, np.stack(imgs).astype(np.uint8))
    print("prepared %d images of %dx%d" % (len(imgs), size, size))


def rel_err(a, b):
    scale = np.maximum(np.abs(b).max(axis=1, keepdims=True), 1e-12)
    return float((np.abs(a - b) / scale).max())


def check(model_path, imgs_path, feats_path, out_name):
    import onnx
    import onnx.checker
    import cv2
    m = onnx.load(model_path)
    onnx.checker.check_model(m, full_check=True)
    opset = [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")][0]
    batch_dim = m.graph.input[0].type.tensor_type.shape.dim[0]
    print("onnx.checker: ok (IR %d, opset %d, %d nodes, %d initializers, input batch dim '%s')" % (
        m.ir_version, opset, len(m.graph.node), len(m.graph.initializer), batch_dim.dim_param))
    ok = opset >= 13 and batch_dim.dim_param != "" and m.graph.output[0].name == out_name
    if not ok:
        print("FAIL: opset %d, batch dim '%s', output '%s' (wanted %s)" % (
            opset, batch_dim.dim_param, m.graph.output[0].name, out_name), file=sys.stderr)
    imgs = np.load(imgs_path)
    ref = np.load(feats_path).astype(np.float64)
    x = np.ascontiguousarray(imgs.transpose(0, 3, 1, 2)).astype(np.float32) / np.float32(255)
    net = cv2.dnn.readNetFromONNX(model_path)
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setInput(x)
    y = net.forward(out_name).reshape(len(x), -1).astype(np.float64)
    e_batch = rel_err(y, ref) if y.shape == ref.shape else float("inf")
    ys = []
    for i in range(len(x)):
        net.setInput(x[i:i + 1])
        ys.append(net.forward(out_name).reshape(1, -1))
    y1 = np.concatenate(ys).astype(np.float64)
    e_one = rel_err(y1, ref) if y1.shape == ref.shape else float("inf")
    print("OpenCV %s dnn vs simclr features: %d images x %d values, max relative error %.3g "
          "(batch of %d), %.3g (batch of 1); mean |value| %.4g" % (
              cv2.__version__, ref.shape[0], ref.shape[1], e_batch, len(x), e_one, np.abs(ref).mean()))
    if not (e_batch <= TOL and e_one <= TOL):
        print("FAIL: relative error above %g" % TOL, file=sys.stderr)
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "prepare":
        args, n = sys.argv[4:], 0
        if "--fashion-mnist" in args:
            k = args.index("--fashion-mnist")
            n = int(args[k + 1])
            del args[k:k + 2]
        prepare(sys.argv[2], int(sys.argv[3]), args, n)
    elif len(sys.argv) == 6 and sys.argv[1] == "check":
        sys.exit(check(*sys.argv[2:6]))
    else:
        sys.exit(__doc__)
