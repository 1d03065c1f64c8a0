#!/usr/bin/python3
"""Writes the evaluation fixtures (tests/fixtures/eval/) from scikit-learn and numpy references.

Run with Debian's python3 (sklearn 1.2):  /usr/bin/python3 tools/make_eval_fixtures.py

Files (all .npy):
  digits_{Xtr,ytr,Xte,yte}   sklearn's digits (1797 x 64, 10 classes), a fixed 1200/597 split,
                             raw pixel values 0..16 as float32, labels int64.
  lr_C{tag}_{coef,intercept,stats,polished}  LogisticRegression(C, lbfgs, multinomial, tol 1e-10) fitted
                             on the StandardScaler-ed train split; stats = [C, train top-1,
                             test top-1, test top-5, final loss (mean CE + 1/(2 C N) ||W||^2)];
                             polished = sklearn's solution refined by scipy L-BFGS-B to
                             max |grad| ~1e-12, as [W.ravel(), b] (sklearn stops near 1e-5).
  pca_digits_*               PCA(20, svd_solver='full') of digits train (N > D: covariance path)
  fmnist_X                   300 Fashion-MNIST training images, 28x28 pixels /255 (N < D)
  pca_fmnist_*               PCA(50, svd_solver='full') of fmnist_X (Gram-matrix path)
     *_components (k, D), *_var (explained_variance_), *_ratio, *_mean, *_transform (first 10
     rows of the input, transformed)
  knn_{Xtr,ytr,Xte,yte}      clustered random features (400 x 32 / 150 x 32, 6 classes)
  knn_k{k}_{pred,stats}      numpy weighted kNN (L2-normalised, weights exp(sim/t)), t = 0.1:
                             pred = top class per test row, stats = [top-1, top-5]
  knnpos_{Xtr,Xte}           the same points moved into the non-negative orthant with a scale per
                             feature, relu(x + 3) * exp(N(0,1)), like ReLU features or pixels
  knnpos_{norm}_k{k}_{pred,stats}  the kNN on them (k 20, 200) after norm = l2 (as they are),
                             center (minus the train mean; SimpleShot's CL2N) or standardize
                             (sklearn's StandardScaler fitted on train), then L2
"""
import gzip
import os

import numpy as np
from scipy.optimize import minimize
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "eval")
os.makedirs(OUT, exist_ok=True)


def save(name, a):
    np.save(os.path.join(OUT, name + ".npy"), a)


def topk_acc(scores, y, k):
    # rank of the true class: classes scoring higher, ties broken towards the lower index
    sy = scores[np.arange(len(y)), y][:, None]
    idx = np.arange(scores.shape[1])[None, :]
    rank = ((scores > sy) | ((scores == sy) & (idx < y[:, None]))).sum(1)
    return float((rank < k).mean())


# ---- logistic regression on digits -----------------------------------------------------------
d = load_digits()
rs = np.random.RandomState(0)
perm = rs.permutation(len(d.target))
X = d.data.astype(np.float32)
y = d.target.astype(np.int64)
tr, te = perm[:1200], perm[1200:]
save("digits_Xtr", X[tr]); save("digits_ytr", y[tr])
save("digits_Xte", X[te]); save("digits_yte", y[te])

sc = StandardScaler().fit(X[tr].astype(np.float64))
Atr = sc.transform(X[tr].astype(np.float64))
Ate = sc.transform(X[te].astype(np.float64))
for tag, C in (("0p05", 0.05), ("1", 1.0)):
    lr = LogisticRegression(C=C, solver="lbfgs", multi_class="multinomial", tol=1e-10,
                            max_iter=100000)
    lr.fit(Atr, y[tr])
    p = lr.predict_proba(Atr)
    N = len(tr)
    loss = -np.mean(np.log(p[np.arange(N), y[tr]])) + 0.5 / (C * N) * np.sum(lr.coef_ ** 2)
    ste = lr.decision_function(Ate)
    stats = np.array([C, lr.score(Atr, y[tr]), topk_acc(ste, y[te], 1), topk_acc(ste, y[te], 5),
                      loss])
    save(f"lr_C{tag}_coef", lr.coef_)
    save(f"lr_C{tag}_intercept", lr.intercept_)
    save(f"lr_C{tag}_stats", stats)
    # sklearn stops on scipy's ftol (max |gradient| ~1e-5 here): polish its solution with
    # scipy's L-BFGS-B at gtol 1e-12 on the same objective, a second, tighter oracle
    Kc, Dc = lr.coef_.shape
    Y1 = np.eye(Kc)[y[tr]]

    def fg(t):
        W = t[:Kc * Dc].reshape(Kc, Dc); b = t[Kc * Dc:]
        Z = Atr @ W.T + b; Z -= Z.max(1, keepdims=True)
        lse = np.log(np.exp(Z).sum(1, keepdims=True)); P = np.exp(Z - lse)
        f = -np.mean((Z - lse)[np.arange(N), y[tr]]) + 0.5 / (C * N) * np.sum(W * W)
        G = (P - Y1) / N
        return f, np.concatenate([(G.T @ Atr + W / (C * N)).ravel(), G.sum(0)])

    t0 = np.concatenate([lr.coef_.ravel(), lr.intercept_])
    res = minimize(fg, t0, jac=True, method="L-BFGS-B",
                   options=dict(gtol=1e-12, ftol=0, maxiter=100000, maxcor=20))
    gmax = np.abs(fg(res.x)[1]).max()
    save(f"lr_C{tag}_polished", res.x)
    print(f"   sklearn max|grad| {np.abs(fg(t0)[1]).max():.2e}, polished {gmax:.2e}, "
          f"max |coef change| {np.abs(res.x - t0).max():.2e}")
    print(f"LR C={C}: train {stats[1]:.4f} test top-1 {stats[2]:.4f} top-5 {stats[3]:.4f} "
          f"loss {loss:.8f} iters {lr.n_iter_}")


# digits as a tiny image dataset (the npy dataset kind: uint8 (N, 8, 8)), and the PCA baseline
# on it: pixels/255 -> PCA(20, full) -> StandardScaler -> LogisticRegression(C=0.5)
img = (d.images * 15).astype(np.uint8)
save("digits_img_train", img[tr]); save("digits_img_test", img[te])
P = PCA(20, svd_solver="full").fit(img[tr].reshape(len(tr), -1) / 255.0)
Ztr = P.transform(img[tr].reshape(len(tr), -1) / 255.0)
Zte = P.transform(img[te].reshape(len(te), -1) / 255.0)
sc2 = StandardScaler().fit(Ztr)
lr2 = LogisticRegression(C=0.5, solver="lbfgs", multi_class="multinomial", tol=1e-10,
                         max_iter=100000).fit(sc2.transform(Ztr), y[tr])
acc2 = lr2.score(sc2.transform(Zte), y[te])
with open(os.path.join(OUT, "pca_baseline_expected.txt"), "w") as f:
    f.write(f"{acc2:.6f} {1.0 / (0.5 * len(tr)):.12g}\n")  # test top-1, lambda = 1/(C N)
print(f"PCA baseline digits (20 comps, C=0.5): test top-1 {acc2:.4f}")

# the write-up's PCA protocol (pca-baseline --protocol blog): StandardScaler on the pixels ->
# PCA -> LogisticRegression(C=1), no scaling after the PCA (here 20 components: digits has 64)
pix_tr = img[tr].reshape(len(tr), -1) / 255.0
pix_te = img[te].reshape(len(te), -1) / 255.0
sc3 = StandardScaler().fit(pix_tr)
P3 = PCA(20, svd_solver="full").fit(sc3.transform(pix_tr))
lr3 = LogisticRegression(C=1.0, solver="lbfgs", multi_class="multinomial", tol=1e-10,
                         max_iter=100000).fit(P3.transform(sc3.transform(pix_tr)), y[tr])
acc3 = lr3.score(P3.transform(sc3.transform(pix_te)), y[te])
with open(os.path.join(OUT, "pca_blog_expected.txt"), "w") as f:
    f.write(f"{acc3:.6f}\n")
print(f"PCA baseline, blog protocol, digits (20 comps, C=1): test top-1 {acc3:.4f}")

# ---- PCA -------------------------------------------------------------------------------------
def pca_fixture(tag, Xp, k):
    p = PCA(n_components=k, svd_solver="full").fit(Xp.astype(np.float64))
    save(f"pca_{tag}_components", p.components_)
    save(f"pca_{tag}_var", p.explained_variance_)
    save(f"pca_{tag}_ratio", p.explained_variance_ratio_)
    save(f"pca_{tag}_mean", p.mean_)
    save(f"pca_{tag}_transform", p.transform(Xp[:10].astype(np.float64)))
    print(f"PCA {tag}: {Xp.shape} k={k} ratio sum {p.explained_variance_ratio_.sum():.4f}")


pca_fixture("digits", X[tr], 20)

with gzip.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") as f:
    raw = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
fm = (raw[rs.permutation(len(raw))[:300]].astype(np.float32) / 255.0)
save("fmnist_X", fm)
pca_fixture("fmnist", fm, 50)


# ---- weighted kNN ----------------------------------------------------------------------------
def knn_ref(Xtr, ytr, Xte, K, k, t, norm="l2"):
    a = Xtr.astype(np.float64); b = Xte.astype(np.float64)
    if norm == "center":
        mu = a.mean(axis=0); a = a - mu; b = b - mu
    elif norm == "standardize":
        sc = StandardScaler().fit(a); a = sc.transform(a); b = sc.transform(b)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    sim = b @ a.T
    out = np.zeros((len(b), K))
    for i in range(len(b)):
        nn = np.argsort(-sim[i], kind="stable")[:k]
        np.add.at(out[i], ytr[nn], np.exp(sim[i, nn] / t))
    return out


g = np.random.RandomState(1)
K, D = 6, 32
centers = g.randn(K, D) * 1.0
ytr_k = g.randint(0, K, 400); yte_k = g.randint(0, K, 150)
Xtr_k = (centers[ytr_k] + 1.5 * g.randn(400, D)).astype(np.float32)
Xte_k = (centers[yte_k] + 1.5 * g.randn(150, D)).astype(np.float32)
save("knn_Xtr", Xtr_k); save("knn_ytr", ytr_k.astype(np.int64))
save("knn_Xte", Xte_k); save("knn_yte", yte_k.astype(np.int64))
for k in (1, 20, 200):
    s = knn_ref(Xtr_k, ytr_k, Xte_k, K, k, 0.1)
    pred = np.argsort(-s, axis=1, kind="stable")[:, 0]
    stats = np.array([topk_acc(s, yte_k, 1), topk_acc(s, yte_k, 5)])
    save(f"knn_k{k}_pred", pred.astype(np.int64))
    save(f"knn_k{k}_stats", stats)
    print(f"kNN k={k}: top-1 {stats[0]:.4f} top-5 {stats[1]:.4f}")

# the same points in the non-negative orthant, a scale per feature: here centring and standardising
# change the neighbours (the C test would not notice a no-op)
scale = np.exp(g.randn(D))
Xtr_p = (np.maximum(Xtr_k.astype(np.float64) + 3, 0) * scale).astype(np.float32)
Xte_p = (np.maximum(Xte_k.astype(np.float64) + 3, 0) * scale).astype(np.float32)
assert (Xtr_p > 0).any(axis=1).all() and (Xte_p > 0).any(axis=1).all()
save("knnpos_Xtr", Xtr_p); save("knnpos_Xte", Xte_p)
preds = {}
for norm in ("l2", "center", "standardize"):
    for k in (20, 200):
        s = knn_ref(Xtr_p, ytr_k, Xte_p, K, k, 0.1, norm)
        pred = np.argsort(-s, axis=1, kind="stable")[:, 0]
        stats = np.array([topk_acc(s, yte_k, 1), topk_acc(s, yte_k, 5)])
        save(f"knnpos_{norm}_k{k}_pred", pred.astype(np.int64))
        save(f"knnpos_{norm}_k{k}_stats", stats)
        preds[norm, k] = pred
        print(f"kNN positive features, {norm}, k={k}: top-1 {stats[0]:.4f} top-5 {stats[1]:.4f}")
for k in (20, 200):
    assert (preds["l2", k] != preds["center", k]).sum() > 0
    assert (preds["center", k] != preds["standardize", k]).sum() > 0
