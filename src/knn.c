/* knn.c - weighted kNN: centre/standardise on the train rows' statistics if asked, normalise, similarities by gemm_f32 in blocks of test rows, a k-heap per
 * row (OpenMP over rows, each row independent), weighted class votes in double. */
#include "knn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "gemm.h"
#include "linear_eval.h"

/* a is a better neighbour than b: more similar, or as similar and earlier in train order */
static int better(float sa, int ia, float sb, int ib) { return sa > sb || (sa == sb && ia < ib); }

/* min-heap by "better": the root is the worst of the kept neighbours */
static void sift_down(float *s, int *id, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && better(s[w], id[w], s[l], id[l])) w = l;
        if (r < n && better(s[w], id[w], s[r], id[r])) w = r;
        if (w == i) return;
        float ts = s[i]; s[i] = s[w]; s[w] = ts;
        int ti = id[i]; id[i] = id[w]; id[w] = ti;
        i = w;
    }
}

/* out = L2-normalised (X - mu) * scale, row by row (mu, scale NULL: X as it is); the shifted and
 * scaled row is formed in double and rounded once */
static void normalise_rows(const float *X, size_t n, int D, const double *mu, const double *scale,
                           float *out) {
#pragma omp parallel
    {
        double *v = malloc(sizeof(double) * (D ? D : 1));
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i++) {
            double ss = 0;
            for (int j = 0; j < D; j++) {
                double x = X[i * D + j];
                if (mu) x = (x - mu[j]) * scale[j];
                v[j] = x;
                ss += x * x;
            }
            double inv = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
            for (int j = 0; j < D; j++) out[i * D + j] = (float)(v[j] * inv);
        }
        free(v);
    }
}

/* mu = the column means of X (n, D); scale = 1, or 1 / the column standard deviations (the
 * population's, 1/n) with standardize, 1 where a column is constant. One thread, sums in double
 * over the rows in order: the result does not depend on the thread count. */
static void column_stats(const float *X, size_t n, int D, int standardize, double *mu,
                         double *scale) {
    for (int j = 0; j < D; j++) mu[j] = 0, scale[j] = 0;
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < D; j++) mu[j] += X[i * D + j];
    for (int j = 0; j < D; j++) mu[j] = n ? mu[j] / (double)n : 0.0;
    if (standardize)
        for (size_t i = 0; i < n; i++)
            for (int j = 0; j < D; j++) {
                double d = X[i * D + j] - mu[j];
                scale[j] += d * d;
            }
    for (int j = 0; j < D; j++) {
        double sd = standardize && n ? sqrt(scale[j] / (double)n) : 0.0;
        scale[j] = sd > 0 ? 1.0 / sd : 1.0;
    }
}

const char *knn_norm_name(int norm) {
    return norm == KNN_CENTER ? "center" : norm == KNN_STANDARDIZE ? "standardize" : "l2";
}

typedef struct { float s; int i; } Nb;
static int cmp_nb(const void *a, const void *b) {
    const Nb *x = a, *y = b;
    return better(x->s, x->i, y->s, y->i) ? -1 : better(y->s, y->i, x->s, x->i) ? 1 : 0;
}

int knn_eval(const float *Xtr, const int *ytr, size_t ntr, const float *Xte, const int *yte,
             size_t nte, int D, int K, int k, float t, int norm, double *top1, double *top5,
             int *pred) {
    if (k < 1) return sc_error_set("knn.k: expected k >= 1, got %d", k);
    if (!(t > 0)) return sc_error_set("knn.temperature: expected t > 0, got %g", t);
    if (norm != KNN_L2 && norm != KNN_CENTER && norm != KNN_STANDARDIZE)
        return sc_error_set("knn.norm: expected l2, center or standardize (0-2), got %d", norm);
    if (linear_eval_check_input(Xtr, ytr, ntr, D, K, "train features")) return -1;
    if (linear_eval_check_input(Xte, yte, nte, D, K, "test features")) return -1;
    if ((size_t)k > ntr) k = (int)ntr;
    double *mu = NULL, *scale = NULL;
    if (norm != KNN_L2) {
        mu = sc_alloc(sizeof(double) * (D ? D : 1));
        scale = sc_alloc(sizeof(double) * (D ? D : 1));
        column_stats(Xtr, ntr, D, norm == KNN_STANDARDIZE, mu, scale);
    }
    float *A = sc_alloc(sizeof(float) * ntr * D);
    normalise_rows(Xtr, ntr, D, mu, scale, A);
    const size_t BR = 1024; /* test rows per similarity block: (BR, ntr) floats */
    float *Bn = sc_alloc(sizeof(float) * BR * D), *S = sc_alloc(sizeof(float) * BR * ntr);
    size_t c1 = 0, c5 = 0;
    for (size_t r0 = 0; r0 < nte; r0 += BR) {
        size_t R = nte - r0 < BR ? nte - r0 : BR;
        normalise_rows(Xte + r0 * D, R, D, mu, scale, Bn);
        /* S (R, ntr) = Bn (R, D) A^T (D, ntr) */
        gemm_f32(false, true, (int)R, (int)ntr, D, 1.0f, Bn, D, A, D, 0.0f, S, (int)ntr);
        size_t b1 = 0, b5 = 0;
#pragma omp parallel reduction(+ : b1, b5)
        {
            Nb *nb = malloc(sizeof(Nb) * k);
            float *hs = malloc(sizeof(float) * k);
            int *hi = malloc(sizeof(int) * k);
            double *score = malloc(sizeof(double) * K);
#pragma omp for schedule(static)
            for (size_t r = 0; r < R; r++) {
                const float *s = S + r * ntr;
                int n = 0;
                for (size_t j = 0; j < ntr; j++) {
                    if (n < k) { /* fill, then heapify once full */
                        hs[n] = s[j]; hi[n] = (int)j; n++;
                        if (n == k)
                            for (int q = k / 2 - 1; q >= 0; q--) sift_down(hs, hi, k, q);
                    } else if (better(s[j], (int)j, hs[0], hi[0])) {
                        hs[0] = s[j]; hi[0] = (int)j;
                        sift_down(hs, hi, k, 0);
                    }
                }
                for (int q = 0; q < n; q++) nb[q] = (Nb){hs[q], hi[q]};
                qsort(nb, n, sizeof(Nb), cmp_nb); /* votes summed from the nearest outwards */
                for (int c = 0; c < K; c++) score[c] = 0;
                for (int q = 0; q < n; q++) score[ytr[nb[q].i]] += exp((double)nb[q].s / t);
                int y = yte[r0 + r], rank = 0, best = 0;
                for (int c = 0; c < K; c++) {
                    if (score[c] > score[y] || (score[c] == score[y] && c < y)) rank++;
                    if (score[c] > score[best]) best = c;
                }
                b1 += rank == 0;
                b5 += rank < 5;
                if (pred) pred[r0 + r] = best;
            }
            free(nb); free(hs); free(hi); free(score);
        }
        c1 += b1;
        c5 += b5;
    }
    sc_free(A); sc_free(Bn); sc_free(S); sc_free(mu); sc_free(scale);
    *top1 = (double)c1 / (double)nte;
    *top5 = (double)c5 / (double)nte;
    return 0;
}
