/* ntxent.c - NT-Xent loss, forward + backward (see ntxent.h for the definition).
 *
 * Dimension legend: R local rows (queries), C columns (the whole global batch), D embedding dim.
 * Steps of ntxent_loss_rows:
 *   1. u = normalize(z_cols)                         (C, D)   one pass, double norms
 *   2. S = u[row0:row0+R] u^T / tau                  (R, C)   gemm_f32
 *   3. per row: stable log-sum-exp over c != self, loss, top-k, and G = dL/dS in place of S
 *   4. du_rows = G u / tau                           (R, D)   gemm_f32
 *      du_cols = G^T u_rows / tau                    (C, D)   gemm_f32
 *   5. dz = (du - u (u.du)) / max(||z||, eps)        backward through the normalisation
 * Not here: gathering across processes (the caller's all-gather / all-reduce).
 */
#include "ntxent.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "gemm.h"

#define NTXENT_EPS 1e-12 /* torch.nn.functional.normalize's eps */

struct Ntxent {
    int max_rows, max_cols, dim;
    float *u;        /* (max_cols, D) normalised columns */
    double *inv;     /* (max_cols) 1 / max(||z||, eps) */
    float *S;        /* (max_rows, max_cols) similarities, then dL/dS */
    float *du_rows;  /* (max_rows, D) */
    float *du_cols;  /* (max_cols, D) */
    float *dz_tmp;   /* (max_cols, D) dz_cols of the single-process call */
    double *row_loss;/* (max_rows) */
    int *row_top1, *row_top5, *row_npos; /* (max_rows) */
};

int ntxent_create(Ntxent **out, int max_rows, int max_cols, int dim) {
    *out = NULL;
    if (max_rows < 1 || max_cols < 1 || dim < 1)
        return sc_error_set("ntxent: workspace sizes must be positive (rows %d, columns %d, dim %d)",
                            max_rows, max_cols, dim);
    Ntxent *w = sc_alloc(sizeof *w);
    w->max_rows = max_rows, w->max_cols = max_cols, w->dim = dim;
    size_t R = max_rows, C = max_cols, D = dim;
    w->u = sc_alloc(C * D * sizeof(float));
    w->inv = sc_alloc(C * sizeof(double));
    w->S = sc_alloc(R * C * sizeof(float));
    w->du_rows = sc_alloc(R * D * sizeof(float));
    w->du_cols = sc_alloc(C * D * sizeof(float));
    w->dz_tmp = sc_alloc(C * D * sizeof(float));
    w->row_loss = sc_alloc(R * sizeof(double));
    w->row_top1 = sc_alloc(R * sizeof(int));
    w->row_top5 = sc_alloc(R * sizeof(int));
    w->row_npos = sc_alloc(R * sizeof(int));
    *out = w;
    return 0;
}

void ntxent_free(Ntxent *w) {
    if (!w) return;
    sc_free(w->u), sc_free(w->inv), sc_free(w->S), sc_free(w->du_rows), sc_free(w->du_cols);
    sc_free(w->dz_tmp), sc_free(w->row_loss), sc_free(w->row_top1), sc_free(w->row_top5);
    sc_free(w->row_npos), sc_free(w);
}

static inline int col_id(const int *ids, int n_img, int c) { return ids ? ids[c] : c % n_img; }

/* dz (n, D) = backward of u = z * inv through the normalisation, given du (n, D). */
static void normalize_backward(float *dz, const float *du, const float *u, const double *inv,
                               int n, int D) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *ui = u + (size_t)i * D, *gi = du + (size_t)i * D;
        float *di = dz + (size_t)i * D;
        if (inv[i] >= 1.0 / NTXENT_EPS) { /* norm clamped at eps: u = z / eps, a constant scale */
            for (int d = 0; d < D; d++) di[d] = (float)(gi[d] * inv[i]);
            continue;
        }
        double dot = 0;
        for (int d = 0; d < D; d++) dot += (double)ui[d] * gi[d];
        for (int d = 0; d < D; d++) di[d] = (float)((gi[d] - ui[d] * dot) * inv[i]);
    }
}

int ntxent_loss_rows(Ntxent *w, const float *z_cols, int C, int row0, int R, const int *ids,
                     int views, int dim, float tau, float *dz_rows, float *dz_cols,
                     NtxentStats *st) {
    if (!w) return sc_error_set("ntxent: no workspace");
    if (dim != w->dim)
        return sc_error_set("ntxent: embedding dim %d, the workspace was made for %d", dim, w->dim);
    if (C < 2 || C > w->max_cols)
        return sc_error_set("ntxent: %d columns, expected 2..%d", C, w->max_cols);
    if (R < 1 || R > w->max_rows || row0 < 0 || row0 + R > C)
        return sc_error_set("ntxent: rows [%d, %d) out of range (at most %d rows of %d columns)",
                            row0, row0 + R, w->max_rows, C);
    if (!(tau > 0) || !isfinite(tau))
        return sc_error_set("ntxent.tau: expected a positive number, got %g", tau);
    if (!ids && (views < 2 || C % views))
        return sc_error_set("ntxent: %d rows cannot hold %d views of each image (need >= 2 views "
                            "dividing the batch)", C, views);
    const int D = dim, n_img = ids ? 0 : C / views;

    /* 1. normalise every column */
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        const float *zc = z_cols + (size_t)c * D;
        double ss = 0;
        for (int d = 0; d < D; d++) ss += (double)zc[d] * zc[d];
        double nrm = sqrt(ss), inv = 1.0 / (nrm > NTXENT_EPS ? nrm : NTXENT_EPS);
        w->inv[c] = inv;
        for (int d = 0; d < D; d++) w->u[(size_t)c * D + d] = (float)(zc[d] * inv);
    }
    const float *ur = w->u + (size_t)row0 * D;

    /* 2. S = ur u^T / tau */
    gemm_f32(false, true, R, C, D, 1.0f / tau, ur, D, w->u, D, 0.0f, w->S, C);

    /* 3. per row: loss, accuracy, and dL/dS (scaled by 1/C: the mean over the global batch) */
    int bad_row = -1;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < R; r++) {
        float *s = w->S + (size_t)r * C;
        const int g = row0 + r, id = col_id(ids, n_img, g);
        double mx = -INFINITY;
        int npos = 0;
        double possum = 0;
        for (int c = 0; c < C; c++) {
            if (c == g) continue;
            if (s[c] > mx) mx = s[c];
            if (col_id(ids, n_img, c) == id) npos++, possum += s[c];
        }
        w->row_npos[r] = npos;
        if (npos == 0) {
#pragma omp critical
            if (bad_row < 0 || r < bad_row) bad_row = r;
            continue;
        }
        /* accuracy: rank of each positive among the negatives (before s is overwritten) */
        int t1 = 0, t5 = 0;
        for (int p = 0; p < C; p++) {
            if (p == g || col_id(ids, n_img, p) != id) continue;
            int rank = 0;
            for (int c = 0; c < C && rank < 5; c++)
                if (c != g && s[c] > s[p] && col_id(ids, n_img, c) != id) rank++;
            t1 += rank < 1, t5 += rank < 5;
        }
        w->row_top1[r] = t1, w->row_top5[r] = t5;
        /* exp(s - max) in place (one exp per element), summed in order in double */
        double se = 0;
        for (int c = 0; c < C; c++) {
            float e = c == g ? 0.0f : expf(s[c] - (float)mx);
            s[c] = e;
            se += e;
        }
        w->row_loss[r] = mx + log(se) - possum / npos;
        /* G = (softmax - positive mask / |P|) / C, 0 on the diagonal */
        const double inv_se = 1.0 / se, inv_c = 1.0 / C, pos_w = 1.0 / npos;
        for (int c = 0; c < C; c++) {
            double gr = s[c] * inv_se;
            if (c != g && col_id(ids, n_img, c) == id) gr -= pos_w;
            s[c] = (float)(gr * inv_c);
        }
    }
    if (bad_row >= 0)
        return sc_error_set("ntxent: row %d (global %d) has no positive (no other view of its "
                            "image in the batch)", bad_row, row0 + bad_row);

    if (st) {
        /* fixed-order sums; accuracy as a fraction of all (row, positive) pairs of the batch */
        double loss = 0;
        long t1 = 0, t5 = 0;
        for (int r = 0; r < R; r++) loss += w->row_loss[r], t1 += w->row_top1[r], t5 += w->row_top5[r];
        double pairs = 0;
        if (!ids) pairs = (double)C * (views - 1);
        else
            for (int a = 0; a < C; a++)
                for (int b = 0; b < C; b++) pairs += b != a && ids[a] == ids[b];
        st->loss = (float)(loss / C);
        st->top1 = (float)(t1 / pairs);
        st->top5 = (float)(t5 / pairs);
    }

    /* 4-5. gradients */
    if (dz_rows) {
        gemm_f32(false, false, R, D, C, 1.0f / tau, w->S, C, w->u, D, 0.0f, w->du_rows, D);
        normalize_backward(dz_rows, w->du_rows, ur, w->inv + row0, R, D);
    }
    if (dz_cols) {
        gemm_f32(true, false, C, D, R, 1.0f / tau, w->S, C, ur, D, 0.0f, w->du_cols, D);
        normalize_backward(dz_cols, w->du_cols, w->u, w->inv, C, D);
    }
    return 0;
}

int ntxent_loss(Ntxent *w, const float *z, int n_images, int views, int dim, float tau,
                float *dz, NtxentStats *st) {
    if (n_images < 1 || views < 2)
        return sc_error_set("ntxent: need at least 1 image and 2 views, got %d images, %d views",
                            n_images, views);
    if ((long)n_images * views > (w ? w->max_rows : 0) || (w && (long)n_images * views > w->max_cols))
        return sc_error_set("ntxent: %d rows exceed the workspace (%d)", n_images * views,
                            w ? w->max_rows : 0);
    int B = n_images * views;
    if (ntxent_loss_rows(w, z, B, 0, B, NULL, views, dim, tau, dz, dz ? w->dz_tmp : NULL, st))
        return -1;
    if (dz) {
        size_t n = (size_t)B * dim;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) dz[i] += w->dz_tmp[i];
    }
    return 0;
}

/* ---- naive reference -------------------------------------------------------------------- */

int ntxent_loss_ref(const float *z, int N, int V, int D, float tau, float *dz, NtxentStats *st) {
    if (N < 1 || V < 2 || D < 1 || !(tau > 0)) return sc_error_set("ntxent_ref: bad sizes");
    int B = N * V;
    double *u = calloc((size_t)B * D, sizeof *u), *nrm = calloc(B, sizeof *nrm);
    double *G = calloc((size_t)B * B, sizeof *G), *du = calloc((size_t)B * D, sizeof *du);
    if (!u || !nrm || !G || !du) {
        free(u), free(nrm), free(G), free(du);
        return sc_error_set("ntxent_ref: out of memory");
    }
    for (int i = 0; i < B; i++) {
        double ss = 0;
        for (int d = 0; d < D; d++) ss += (double)z[i * D + d] * z[i * D + d];
        nrm[i] = fmax(sqrt(ss), NTXENT_EPS);
        for (int d = 0; d < D; d++) u[i * D + d] = z[i * D + d] / nrm[i];
    }
    double loss = 0, t1 = 0, t5 = 0;
    for (int i = 0; i < B; i++) {
        double s[B], mx = -INFINITY;
        for (int j = 0; j < B; j++) {
            double dot = 0;
            for (int d = 0; d < D; d++) dot += u[i * D + d] * u[j * D + d];
            s[j] = dot / tau;
            if (j != i && s[j] > mx) mx = s[j];
        }
        double se = 0;
        for (int j = 0; j < B; j++)
            if (j != i) se += exp(s[j] - mx);
        double lse = mx + log(se);
        for (int j = 0; j < B; j++) {
            if (j == i || j % N != i % N) continue;
            loss += (lse - s[j]) / (V - 1);
            int rank = 0;
            for (int k = 0; k < B; k++) rank += k != i && k % N != i % N && s[k] > s[j];
            t1 += rank < 1, t5 += rank < 5;
        }
        for (int j = 0; j < B; j++)
            G[i * B + j] = j == i ? 0 : (exp(s[j] - lse) - (j % N == i % N ? 1.0 / (V - 1) : 0)) / B;
    }
    /* dL/du_i = sum_j (G_ij + G_ji) u_j / tau; then through the normalisation */
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++)
            for (int d = 0; d < D; d++) du[i * D + d] += (G[i * B + j] + G[j * B + i]) * u[j * D + d] / tau;
    if (dz)
        for (int i = 0; i < B; i++) {
            double dot = 0;
            for (int d = 0; d < D; d++) dot += u[i * D + d] * du[i * D + d];
            for (int d = 0; d < D; d++) dz[i * D + d] = (float)((du[i * D + d] - u[i * D + d] * dot) / nrm[i]);
        }
    if (st) {
        st->loss = (float)(loss / B);
        st->top1 = (float)(t1 / ((double)B * (V - 1)));
        st->top5 = (float)(t5 / ((double)B * (V - 1)));
    }
    free(u), free(nrm), free(G), free(du);
    return 0;
}
