/* linear_eval.c - multinomial logistic regression: loss/gradient, L-BFGS, Adam, the protocol.
 *
 * Dimensions: N rows, D features, K classes. theta = [W (K, D) row-major | b (K)].
 * Everything is double precision; the two products per evaluation (logits X W^T and the
 * gradient G^T X) go through gemm_f64, whose partition (and so its bits) does not depend on the
 * number of threads; the remaining sums are serial loops.
 */
#include "linear_eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "gemm.h"
#include "rng.h"

void linear_eval_default_config(LinearEvalConfig *c) {
    memset(c, 0, sizeof *c);
    c->solver = LINEAR_SOLVER_LBFGS;
    c->grid = LINEAR_GRID_SHORT;
    c->lambda = 1e-4;
    c->val_frac = 0.2;
    c->standardize = 1;
    c->max_iter = 1000;
    c->tol = 1e-5;
    c->history = 10;
    c->adam_lr = 3e-4;
    c->adam_wd = 8e-4;
    c->adam_epochs = 100;
    c->adam_batch = 256;
    c->seed = 0;
}

int linear_eval_check_input(const float *X, const int *y, size_t N, int D, int K,
                            const char *what) {
    if (N == 0) return sc_error_set("%s: no rows", what);
    if (D <= 0) return sc_error_set("%s: feature dimension must be >= 1, got %d", what, D);
    if (K < 2) return sc_error_set("%s: need at least 2 classes, got %d", what, K);
    for (size_t i = 0; i < N; i++)
        if (y[i] < 0 || y[i] >= K)
            return sc_error_set("%s: label %d of row %zu is outside [0, %d)", what, y[i], i, K);
    for (size_t i = 0; i < N; i++)
        for (int j = 0; j < D; j++)
            if (!isfinite(X[i * D + j]))
                return sc_error_set("%s: feature %d of row %zu is %s (features must be finite)",
                                    what, j, i, isnan(X[i * D + j]) ? "NaN" : "infinite");
    return 0;
}

/* ---- loss and gradient ----------------------------------------------------------------- */

double logreg_loss_grad(const double *X, const int *y, size_t N, int D, int K, double lambda,
                        const double *theta, double *grad, double *work) {
    const double *W = theta, *b = theta + (size_t)K * D;
    double *Z = work; /* (N, K): logits, then dL/dlogits */
    gemm_f64(false, true, (int)N, K, D, 1.0, X, D, W, D, 0.0, Z, K);
    double loss = 0, inv_n = 1.0 / (double)N;
    double *lrow = work + N * (size_t)K; /* (N) per-row losses, summed in order below */
    /* serial: O(N K), small next to the two products */
    for (size_t i = 0; i < N; i++) {
        double *z = Z + i * K, mx = -INFINITY, se = 0;
        for (int k = 0; k < K; k++) {
            z[k] += b[k];
            if (z[k] > mx) mx = z[k];
        }
        for (int k = 0; k < K; k++) se += exp(z[k] - mx);
        double lse = mx + log(se);
        lrow[i] = lse - z[y[i]];
        if (grad) {
            for (int k = 0; k < K; k++) z[k] = exp(z[k] - lse) * inv_n;
            z[y[i]] -= inv_n;
        }
    }
    for (size_t i = 0; i < N; i++) loss += lrow[i];
    loss *= inv_n;
    double w2 = 0;
    for (size_t j = 0; j < (size_t)K * D; j++) w2 += W[j] * W[j];
    loss += 0.5 * lambda * w2;
    if (grad) {
        double *gW = grad, *gb = grad + (size_t)K * D;
        /* gW (K, D) = G^T (K, N) X (N, D) + lambda W */
        memcpy(gW, W, sizeof(double) * K * D);
        gemm_f64(true, false, K, D, (int)N, 1.0, Z, K, X, D, lambda, gW, D);
        for (int k = 0; k < K; k++) gb[k] = 0;
        for (size_t i = 0; i < N; i++)
            for (int k = 0; k < K; k++) gb[k] += Z[i * K + k];
    }
    return loss;
}

/* ---- L-BFGS ---------------------------------------------------------------------------- */

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
static double maxabs(const double *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(a[i]) > m) m = fabs(a[i]);
    return m;
}

int logreg_fit_lbfgs(const double *X, const int *y, size_t N, int D, int K, double lambda,
                     double *theta, int max_iter, double tol, int history, int *converged) {
    size_t n = (size_t)K * D + K;
    int m = history < 1 ? 1 : history;
    double *work = sc_alloc(sizeof(double) * N * (K + 1));
    double *g = sc_alloc(sizeof(double) * n), *gn = sc_alloc(sizeof(double) * n);
    double *d = sc_alloc(sizeof(double) * n), *xn = sc_alloc(sizeof(double) * n);
    double *S = sc_alloc(sizeof(double) * n * m), *Y = sc_alloc(sizeof(double) * n * m);
    double *rho = sc_alloc(sizeof(double) * m), *alpha = sc_alloc(sizeof(double) * m);
    int stored = 0, head = 0; /* ring buffer of the last `stored` pairs, newest at head-1 */
    double f = logreg_loss_grad(X, y, N, D, K, lambda, theta, g, work);
    int it = 0, ok = maxabs(g, n) <= tol;
    while (!ok && it < max_iter) {
        it++;
        /* two-loop recursion: d = -H g */
        for (size_t i = 0; i < n; i++) d[i] = -g[i];
        for (int j = 0; j < stored; j++) {
            int s = (head - 1 - j + m) % m;
            alpha[s] = rho[s] * dot(S + s * n, d, n);
            for (size_t i = 0; i < n; i++) d[i] -= alpha[s] * Y[s * n + i];
        }
        if (stored) {
            int s = (head - 1 + m) % m;
            double gamma = dot(S + s * n, Y + s * n, n) / dot(Y + s * n, Y + s * n, n);
            for (size_t i = 0; i < n; i++) d[i] *= gamma;
        }
        for (int j = stored - 1; j >= 0; j--) {
            int s = (head - 1 - j + m) % m;
            double beta = rho[s] * dot(Y + s * n, d, n);
            for (size_t i = 0; i < n; i++) d[i] += (alpha[s] - beta) * S[s * n + i];
        }
        double gd = dot(g, d, n);
        if (!(gd < 0)) { /* not a descent direction: forget the history */
            stored = 0;
            for (size_t i = 0; i < n; i++) d[i] = -g[i];
            gd = dot(g, d, n);
        }
        /* first step of a fresh history: unit length; otherwise the quasi-Newton step 1 */
        double step = stored ? 1.0 : fmin(1.0, 1.0 / sqrt(-gd));
        double fn = 0;
        int accepted = 0;
        for (int ls = 0; ls < 40; ls++) {
            for (size_t i = 0; i < n; i++) xn[i] = theta[i] + step * d[i];
            fn = logreg_loss_grad(X, y, N, D, K, lambda, xn, gn, work);
            if (isfinite(fn) && fn <= f + 1e-4 * step * gd) {
                accepted = 1;
                break;
            }
            /* minimiser of the quadratic through f, gd and fn, kept in [0.1, 0.5] x step */
            double t = isfinite(fn) ? -gd * step * step / (2 * (fn - f - gd * step)) : 0.1 * step;
            step = fmin(fmax(t, 0.1 * step), 0.5 * step);
        }
        if (!accepted) break; /* no decrease possible at this precision */
        int s = head;
        double sy = 0, yy = 0;
        for (size_t i = 0; i < n; i++) {
            S[s * n + i] = xn[i] - theta[i];
            Y[s * n + i] = gn[i] - g[i];
        }
        sy = dot(S + s * n, Y + s * n, n);
        yy = dot(Y + s * n, Y + s * n, n);
        if (sy > 1e-12 * yy && yy > 0) {
            rho[s] = 1.0 / sy;
            head = (head + 1) % m;
            if (stored < m) stored++;
        }
        double fold = f;
        memcpy(theta, xn, sizeof(double) * n);
        memcpy(g, gn, sizeof(double) * n);
        f = fn;
        if (maxabs(g, n) <= tol) ok = 1;
        else if (fold - f <= 1e-15 * fmax(fmax(fabs(fold), fabs(f)), 1.0)) break; /* flat */
    }
    if (converged) *converged = ok;
    sc_free(work); sc_free(g); sc_free(gn); sc_free(d); sc_free(xn);
    sc_free(S); sc_free(Y); sc_free(rho); sc_free(alpha);
    return it;
}

/* ---- Adam ------------------------------------------------------------------------------ */

void logreg_fit_adam(const double *X, const int *y, size_t N, int D, int K, double lr, double wd,
                     int epochs, int batch, uint64_t seed, double *theta) {
    size_t n = (size_t)K * D + K;
    if (batch < 1) batch = 1;
    if ((size_t)batch > N) batch = (int)N;
    Rng r = rng_derive(seed, RNG_STREAM_EVAL, 2, 0, 0);
    double bound = 1.0 / sqrt((double)D); /* torch.nn.Linear: U(-1/sqrt(fan_in), +) */
    for (size_t i = 0; i < n; i++) theta[i] = (2 * rng_uniform_d(&r) - 1) * bound;
    double *m = sc_alloc(sizeof(double) * n), *v = sc_alloc(sizeof(double) * n);
    double *g = sc_alloc(sizeof(double) * n), *Xb = sc_alloc(sizeof(double) * batch * D);
    double *work = sc_alloc(sizeof(double) * batch * (K + 1));
    int *yb = sc_alloc(sizeof(int) * batch);
    uint32_t *perm = sc_alloc(sizeof(uint32_t) * N);
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    long t = 0;
    for (int e = 0; e < epochs; e++) {
        Rng pr = rng_derive(seed, RNG_STREAM_EVAL, 3, (uint64_t)e, 0);
        rng_permutation(&pr, perm, (uint32_t)N, 1);
        for (size_t s0 = 0; s0 < N; s0 += batch) {
            size_t B = N - s0 < (size_t)batch ? N - s0 : (size_t)batch;
            for (size_t i = 0; i < B; i++) {
                memcpy(Xb + i * D, X + (size_t)perm[s0 + i] * D, sizeof(double) * D);
                yb[i] = y[perm[s0 + i]];
            }
            logreg_loss_grad(Xb, yb, B, D, K, 0.0, theta, g, work);
            t++;
            double c1 = 1 - pow(b1, (double)t), c2 = 1 - pow(b2, (double)t);
            for (size_t i = 0; i < n; i++) {
                double gi = g[i] + wd * theta[i];
                m[i] = b1 * m[i] + (1 - b1) * gi;
                v[i] = b2 * v[i] + (1 - b2) * gi * gi;
                theta[i] -= lr * (m[i] / c1) / (sqrt(v[i] / c2) + eps);
            }
        }
    }
    sc_free(m); sc_free(v); sc_free(g); sc_free(Xb); sc_free(work); sc_free(yb); sc_free(perm);
}

/* ---- scoring --------------------------------------------------------------------------- */

void logreg_score(const double *X, const int *y, size_t N, int D, int K, const double *theta,
                  size_t *correct1, size_t *correct5) {
    const size_t CH = 4096;
    double *Z = sc_alloc(sizeof(double) * CH * K);
    size_t c1 = 0, c5 = 0;
    for (size_t r0 = 0; r0 < N; r0 += CH) {
        size_t R = N - r0 < CH ? N - r0 : CH;
        gemm_f64(false, true, (int)R, K, D, 1.0, X + r0 * D, D, theta, D, 0.0, Z, K);
        for (size_t i = 0; i < R; i++) {
            const double *z = Z + i * K, *b = theta + (size_t)K * D;
            int yi = y[r0 + i], rank = 0;
            double zy = z[yi] + b[yi];
            for (int k = 0; k < K; k++) {
                double zk = z[k] + b[k];
                if (zk > zy || (zk == zy && k < yi)) rank++;
            }
            c1 += rank == 0;
            c5 += rank < 5;
        }
    }
    sc_free(Z);
    *correct1 = c1;
    *correct5 = c5;
}

/* ---- the protocol ---------------------------------------------------------------------- */

/* Converts rows to double, standardised with mean/scale (or copied when mean == NULL). */
static double *to_double(const float *X, size_t N, int D, const double *mean, const double *scale) {
    double *out = sc_alloc(sizeof(double) * N * D);
    for (size_t i = 0; i < N; i++)
        for (int j = 0; j < D; j++) {
            double v = X[i * D + j];
            out[i * D + j] = mean ? (v - mean[j]) / scale[j] : v;
        }
    return out;
}

static void grid_values(int grid, double *vals, int *n) {
    double lo = -6, hi = grid == LINEAR_GRID_PAPER ? 5 : 1;
    int cnt = grid == LINEAR_GRID_PAPER ? 45 : 10;
    for (int i = 0; i < cnt; i++) vals[i] = pow(10.0, lo + (hi - lo) * i / (cnt - 1));
    *n = cnt;
}

int linear_eval_fit_predict(const float *Xtr, const int *ytr, size_t ntr, const float *Xte,
                            const int *yte, size_t nte, int D, int K, const LinearEvalConfig *c,
                            LinearEvalResult *r) {
    memset(r, 0, sizeof *r);
    double t0 = sc_now();
    if (linear_eval_check_input(Xtr, ytr, ntr, D, K, "train features")) return -1;
    if (linear_eval_check_input(Xte, yte, nte, D, K, "test features")) return -1;
    double *mean = NULL, *scale = NULL;
    if (c->standardize) { /* StandardScaler: population std, constant features scaled by 1 */
        mean = sc_alloc(sizeof(double) * D);
        scale = sc_alloc(sizeof(double) * D);
        for (size_t i = 0; i < ntr; i++)
            for (int j = 0; j < D; j++) mean[j] += Xtr[i * D + j];
        for (int j = 0; j < D; j++) mean[j] /= (double)ntr;
        for (size_t i = 0; i < ntr; i++)
            for (int j = 0; j < D; j++) {
                double dv = Xtr[i * D + j] - mean[j];
                scale[j] += dv * dv;
            }
        for (int j = 0; j < D; j++) {
            scale[j] = sqrt(scale[j] / (double)ntr);
            if (!(scale[j] > 1e-12 * (fabs(mean[j]) + 1e-300))) scale[j] = 1;
        }
    }
    double *A = to_double(Xtr, ntr, D, mean, scale);
    size_t n = (size_t)K * D + K;
    double *theta = sc_alloc(sizeof(double) * n);
    int iters = 0, conv = 1;
    r->val_top1 = -1;
    r->n_fit = ntr;
    if (c->solver == LINEAR_SOLVER_ADAM) {
        logreg_fit_adam(A, ytr, ntr, D, K, c->adam_lr, c->adam_wd, c->adam_epochs, c->adam_batch,
                        c->seed, theta);
        iters = c->adam_epochs;
        r->lambda = c->adam_wd;
        r->C = NAN;
    } else {
        double lambda = c->lambda;
        if (c->grid != LINEAR_GRID_FIXED) {
            size_t nval = (size_t)llround(c->val_frac * (double)ntr);
            if (nval < 1 || nval >= ntr) {
                sc_free(A); sc_free(theta); sc_free(mean); sc_free(scale);
                return sc_error_set("linear eval: a validation fraction of %g leaves %zu of %zu "
                                    "train rows for validation; need at least 1 on each side",
                                    c->val_frac, nval, ntr);
            }
            size_t nfit = ntr - nval;
            uint32_t *perm = sc_alloc(sizeof(uint32_t) * ntr);
            Rng pr = rng_derive(c->seed, RNG_STREAM_EVAL, 1, 0, 0);
            rng_permutation(&pr, perm, (uint32_t)ntr, 1);
            double *Af = sc_alloc(sizeof(double) * nfit * D), *Av = sc_alloc(sizeof(double) * nval * D);
            int *yf = sc_alloc(sizeof(int) * nfit), *yv = sc_alloc(sizeof(int) * nval);
            for (size_t i = 0; i < ntr; i++) {
                size_t src = perm[i];
                if (i < nval) {
                    memcpy(Av + i * D, A + src * D, sizeof(double) * D);
                    yv[i] = ytr[src];
                } else {
                    memcpy(Af + (i - nval) * D, A + src * D, sizeof(double) * D);
                    yf[i - nval] = ytr[src];
                }
            }
            double vals[LINEAR_MAX_GRID];
            int ng;
            grid_values(c->grid, vals, &ng);
            double *best = sc_alloc(sizeof(double) * n);
            double best_acc = -1;
            /* from the strongest penalty down: each fit starts from the previous solution
             * (warm start); with a patience the path stops once the held-out accuracy has not
             * improved for that many penalties (it rises, peaks and falls along the path) */
            int since_best = 0, first = ng - 1;
            for (int gi = ng - 1; gi >= 0; gi--) {
                if (c->patience > 0 && since_best >= c->patience) break;
                first = gi;
                int cv = 0;
                double tg = sc_now();
                int itg = logreg_fit_lbfgs(Af, yf, nfit, D, K, vals[gi], theta, c->max_iter,
                                           c->tol, c->history, &cv);
                size_t c1, c5;
                logreg_score(Av, yv, nval, D, K, theta, &c1, &c5);
                double acc = (double)c1 / (double)nval;
                r->grid_lambda[gi] = vals[gi];
                r->grid_val_top1[gi] = acc;
                if (c->verbose)
                    fprintf(stderr, "  lambda %-9.3g (C %-9.3g) val top-1 %6.2f%%  %4d iters%s %.2fs\n",
                            vals[gi], 1.0 / (vals[gi] * (double)nfit), 100 * acc, itg,
                            cv ? "" : " (not converged)", sc_now() - tg);
                if (acc > best_acc) { /* ties keep the stronger penalty */
                    best_acc = acc;
                    lambda = vals[gi];
                    memcpy(best, theta, sizeof(double) * n);
                    since_best = 0;
                } else {
                    since_best++;
                }
            }
            memcpy(theta, best, sizeof(double) * n);
            r->n_grid = ng - first; /* the penalties visited: grid entries first..ng-1 */
            memmove(r->grid_lambda, r->grid_lambda + first, sizeof(double) * r->n_grid);
            memmove(r->grid_val_top1, r->grid_val_top1 + first, sizeof(double) * r->n_grid);
            r->val_top1 = best_acc;
            r->n_fit = nfit;
            r->n_val = nval;
            sc_free(best); sc_free(Af); sc_free(Av); sc_free(yf); sc_free(yv); sc_free(perm);
        }
        iters = logreg_fit_lbfgs(A, ytr, ntr, D, K, lambda, theta, c->max_iter, c->tol,
                                 c->history, &conv);
        r->lambda = lambda;
        r->C = 1.0 / (lambda * (double)ntr);
        if (!conv && c->verbose)
            fprintf(stderr, "  final fit: not converged after %d iterations\n", iters);
    }
    r->iters = iters;
    size_t c1, c5;
    logreg_score(A, ytr, ntr, D, K, theta, &c1, &c5);
    r->train_top1 = (double)c1 / (double)ntr;
    sc_free(A);
    double *B = to_double(Xte, nte, D, mean, scale);
    logreg_score(B, yte, nte, D, K, theta, &c1, &c5);
    r->top1 = (double)c1 / (double)nte;
    r->top5 = (double)c5 / (double)nte;
    sc_free(B); sc_free(theta); sc_free(mean); sc_free(scale);
    r->seconds = sc_now() - t0;
    return 0;
}
