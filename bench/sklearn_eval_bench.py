#!/usr/bin/python3
"""The scikit-learn side of bench/eval_bench.sh (run with Debian's /usr/bin/python3).

  gen DIR          writes the benchmark inputs (.npy) into DIR:
                   feat_{Xtr,ytr,Xte,yte}: 5000 x 512 train / 8000 x 512 test features, 10
                   classes (class means in a 64-dim subspace, anisotropic noise: a linear probe
                   reaches ~80%, like ResNet-18 features of STL-10);
                   pix_{Xtr,ytr,Xte,yte}: 5000 x 27648 / 2000 x 27648 float32 "pixels" in
                   [0, 1] (smooth low-rank images plus noise, class-dependent mixtures)
  lr DIR           the protocol of `simclr linear-eval`: StandardScaler, lambda from the same
                   10-value grid on a 20% hold-out (C = 1/(lambda n_fit), warm starts), refit on
                   all train; prints seconds and top-1
  pca DIR [full]   PCA(256) of pix_Xtr: randomized (sklearn's choice for this shape), or
                   svd_solver='full' when asked; prints seconds and the explained variance
  pcalr DIR        the whole pca-baseline: PCA(256, randomized) + transform + the lr protocol
  knn DIR          numpy weighted kNN (k 200, t 0.1), vectorised, float32, as a speed reference
"""
import os
import sys
import time

import numpy as np


def gen(d):
    rs = np.random.RandomState(0)
    K, D = 10, 512
    basis = np.linalg.qr(rs.randn(D, 64))[0]
    means = rs.randn(K, 64) * 0.12
    scales = np.exp(rs.randn(D) * 0.5)

    def feats(n):
        y = rs.randint(0, K, n)
        X = (means[y] @ basis.T + rs.randn(n, D) * 0.5 * scales / scales.mean())
        return np.maximum(X + 0.2, 0).astype(np.float32), y.astype(np.int64)  # ReLU-like

    for split, n in (("tr", 5000), ("te", 8000)):
        X, y = feats(n)
        np.save(f"{d}/feat_X{split}.npy", X); np.save(f"{d}/feat_y{split}.npy", y)
    if os.path.exists(f"{d}/pix_yte.npy") and os.environ.get("KEEP_PIXELS"):
        return
    P = 27648
    nb = 300
    # smooth random images: low-frequency patterns, decaying strength
    t = np.linspace(0, 1, 96)
    B = np.empty((nb, P), np.float32)
    for i in range(nb):
        fx, fy = rs.randint(1, 8, 2)
        ph = rs.rand(3) * 6.28
        img = np.sin(2 * np.pi * fx * t[None, :] + ph[0]) * np.cos(2 * np.pi * fy * t[:, None] + ph[1])
        col = rs.rand(3)
        B[i] = (img[None] * col[:, None, None]).ravel() / (1 + i) ** 0.5
    W = rs.randn(K, nb).astype(np.float32)
    for split, n in (("tr", 5000), ("te", 2000)):
        y = rs.randint(0, K, n)
        coef = (rs.randn(n, nb).astype(np.float32) + 0.12 * W[y])
        X = 0.5 + 0.08 * (coef @ B) + 0.05 * rs.randn(n, P).astype(np.float32)
        np.save(f"{d}/pix_X{split}.npy", np.clip(X, 0, 1).astype(np.float32))
        np.save(f"{d}/pix_y{split}.npy", y.astype(np.int64))


def lr_protocol(Xtr, ytr, Xte, yte):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    sc = StandardScaler().fit(Xtr)
    A, B = sc.transform(Xtr), sc.transform(Xte)
    n = len(ytr)
    nval = int(round(0.2 * n))
    perm = np.random.RandomState(0).permutation(n)
    va, fi = perm[:nval], perm[nval:]
    grid = 10.0 ** np.linspace(-6, 1, 10)
    lr = LogisticRegression(solver="lbfgs", multi_class="multinomial", tol=1e-5, max_iter=1000,
                            warm_start=True)
    best, best_lam = -1, None
    for lam in grid[::-1]:
        lr.set_params(C=1.0 / (lam * len(fi)))
        lr.fit(A[fi], ytr[fi])
        acc = lr.score(A[va], ytr[va])
        if acc > best:
            best, best_lam = acc, lam
    lr2 = LogisticRegression(solver="lbfgs", multi_class="multinomial", tol=1e-5, max_iter=1000,
                             C=1.0 / (best_lam * n))
    lr2.fit(A, ytr)
    return lr2.score(B, yte), best_lam


def load(d, p):
    return [np.load(f"{d}/{p}_{s}.npy") for s in ("Xtr", "ytr", "Xte", "yte")]


def main():
    cmd, d = sys.argv[1], sys.argv[2]
    if cmd == "gen":
        gen(d)
    elif cmd == "lr":
        Xtr, ytr, Xte, yte = load(d, "feat")
        t = time.time()
        acc, lam = lr_protocol(Xtr, ytr, Xte, yte)
        print(f"sklearn_seconds {time.time() - t:.3f} top1 {acc:.4f} lambda {lam:.3g}")
    elif cmd == "pca":
        from sklearn.decomposition import PCA
        Xtr = np.load(f"{d}/pix_Xtr.npy")
        solver = "full" if len(sys.argv) > 3 and sys.argv[3] == "full" else "randomized"
        t, c = time.time(), time.process_time()
        p = PCA(256, svd_solver=solver, random_state=0).fit(Xtr)
        print(f"sklearn_seconds {time.time() - t:.3f} solver {solver} "
              f"ratio_sum {p.explained_variance_ratio_.sum():.6f} var0 {p.explained_variance_[0]:.6g} "
              f"var255 {p.explained_variance_[255]:.6g} cpu_seconds {time.process_time() - c:.3f}")
    elif cmd == "pcalr":
        from sklearn.decomposition import PCA
        Xtr, ytr, Xte, yte = load(d, "pix")
        t = time.time()
        p = PCA(256, svd_solver="randomized", random_state=0).fit(Xtr)
        acc, lam = lr_protocol(p.transform(Xtr), ytr, p.transform(Xte), yte)
        print(f"sklearn_seconds {time.time() - t:.3f} top1 {acc:.4f} lambda {lam:.3g}")
    elif cmd == "knn":
        Xtr, ytr, Xte, yte = load(d, "feat")
        t = time.time()
        a = Xtr / np.linalg.norm(Xtr, axis=1, keepdims=True)
        b = Xte / np.linalg.norm(Xte, axis=1, keepdims=True)
        correct = 0
        for s in range(0, len(b), 1000):
            sim = b[s:s + 1000] @ a.T
            nn = np.argpartition(-sim, 200, axis=1)[:, :200]
            w = np.exp(np.take_along_axis(sim, nn, 1) / 0.1)
            sc = np.zeros((len(sim), 10))
            for c in range(10):
                sc[:, c] = (w * (ytr[nn] == c)).sum(1)
            correct += (sc.argmax(1) == yte[s:s + 1000]).sum()
        print(f"numpy_seconds {time.time() - t:.3f} top1 {correct / len(b):.4f}")


if __name__ == "__main__":
    main()
