/* contrast.c - NT-Xent / NT-Logistic / margin-triplet with cosine or dot similarity (see
 * contrast.h). Steps of contrast_loss:
 *   1. u = z / ||z|| (cosine) or z (dot)                (B, D)  double
 *   2. S = u u^T                                         (B, B)  rows in parallel, fixed order
 *   3. per row r: l_r, accuracy, and G_r. = dl_r/ds_r. / B (0 on the diagonal)
 *   4. du_r = sum_c (G_rc + G_cr) u_c                    (B, D)
 *   5. dz = (du - u (u.du)) / ||z|| (cosine) or du (dot)
 */
#include "contrast.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define CONTRAST_EPS 1e-12

struct Contrast {
    ContrastConfig cfg;
    int max_rows, dim;
    double *u, *inv, *S, *G, *du, *row_loss;
    int *row_t1, *row_t5;
};

void contrast_config_default(ContrastConfig *c) {
    *c = (ContrastConfig){.loss = CONTRAST_NTXENT, .similarity = SIMILARITY_COSINE, .tau = 0.5f,
                          .margin = 0.5f};
}

int contrast_is_default(const ContrastConfig *c) {
    return c->loss == CONTRAST_NTXENT && c->similarity == SIMILARITY_COSINE;
}

int contrast_create(Contrast **out, const ContrastConfig *cfg, int max_rows, int dim) {
    *out = NULL;
    if (max_rows < 2 || dim < 1)
        return sc_error_set("contrast: workspace sizes must be positive (rows %d, dim %d)", max_rows, dim);
    if (cfg->loss < 0 || cfg->loss > CONTRAST_MARGIN || cfg->similarity < 0 ||
        cfg->similarity > SIMILARITY_DOT)
        return sc_error_set("contrast: unknown loss %d or similarity %d", cfg->loss, cfg->similarity);
    if (cfg->loss != CONTRAST_MARGIN && !(cfg->tau > 0))
        return sc_error_set("contrast.tau: expected a positive number, got %g", cfg->tau);
    Contrast *c = sc_alloc(sizeof *c);
    c->cfg = *cfg;
    c->max_rows = max_rows, c->dim = dim;
    size_t B = max_rows, D = dim;
    c->u = sc_alloc(B * D * sizeof(double));
    c->inv = sc_alloc(B * sizeof(double));
    c->S = sc_alloc(B * B * sizeof(double));
    c->G = sc_alloc(B * B * sizeof(double));
    c->du = sc_alloc(B * D * sizeof(double));
    c->row_loss = sc_alloc(B * sizeof(double));
    c->row_t1 = sc_alloc(B * sizeof(int));
    c->row_t5 = sc_alloc(B * sizeof(int));
    *out = c;
    return 0;
}

void contrast_free(Contrast *c) {
    if (!c) return;
    sc_free(c->u), sc_free(c->inv), sc_free(c->S), sc_free(c->G), sc_free(c->du);
    sc_free(c->row_loss), sc_free(c->row_t1), sc_free(c->row_t5), sc_free(c);
}

/* log(1 + exp(x)) without overflow */
static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
static double sigmoid(double x) {
    if (x >= 0) return 1 / (1 + exp(-x));
    double e = exp(x);
    return e / (1 + e);
}

/* Loss of row r (similarities s, B columns) and dl_r/ds_r. into g (B). */
static double row_loss_grad(const ContrastConfig *cfg, const double *s, double *g, int B, int r,
                            int N) {
    const double tau = cfg->tau;
    int npos = 0, nneg = 0;
    for (int c = 0; c < B; c++) {
        g[c] = 0;
        if (c == r) continue;
        if (c % N == r % N) npos++;
        else nneg++;
    }
    double l = 0;
    if (cfg->loss == CONTRAST_NTXENT) {
        double mx = -INFINITY, se = 0, ps = 0;
        for (int c = 0; c < B; c++)
            if (c != r && s[c] / tau > mx) mx = s[c] / tau;
        for (int c = 0; c < B; c++)
            if (c != r) se += exp(s[c] / tau - mx);
        for (int c = 0; c < B; c++) {
            if (c == r) continue;
            double sm = exp(s[c] / tau - mx) / se;
            int pos = c % N == r % N;
            if (pos) ps += s[c] / tau;
            g[c] = (sm - (pos ? 1.0 / npos : 0)) / tau;
        }
        l = mx + log(se) - ps / npos;
    } else if (cfg->loss == CONTRAST_NT_LOGISTIC) {
        for (int c = 0; c < B; c++) {
            if (c == r) continue;
            double x = s[c] / tau;
            if (c % N == r % N) { /* -log sigmoid(x) = softplus(-x) */
                l += softplus(-x) / npos;
                g[c] = -sigmoid(-x) / (tau * npos);
            } else { /* -log sigmoid(-x) = softplus(x) */
                l += nneg ? softplus(x) / nneg : 0;
                g[c] = nneg ? sigmoid(x) / (tau * nneg) : 0;
            }
        }
    } else { /* margin triplet */
        double w = npos && nneg ? 1.0 / ((double)npos * nneg) : 0;
        for (int p = 0; p < B; p++) {
            if (p == r || p % N != r % N) continue;
            for (int k = 0; k < B; k++) {
                if (k == r || k % N == r % N) continue;
                double v = s[k] - s[p] + cfg->margin;
                if (v > 0) {
                    l += v * w;
                    g[k] += w;
                    g[p] -= w;
                }
            }
        }
    }
    return l;
}

int contrast_loss(Contrast *c, const float *z, int N, int V, int D, float *dz, double *loss,
                  NtxentStats *st) {
    int B = N * V;
    if (N < 1 || V < 2)
        return sc_error_set("contrast: need at least 1 image and 2 views, got %d images, %d views", N, V);
    if (B > c->max_rows || D != c->dim)
        return sc_error_set("contrast: %d rows of dim %d, the workspace holds %d rows of dim %d", B,
                            D, c->max_rows, c->dim);
    const int cosine = c->cfg.similarity == SIMILARITY_COSINE;
    double *u = c->u, *S = c->S, *G = c->G, *du = c->du;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < B; r++) {
        const float *zr = z + (size_t)r * D;
        double ss = 0;
        for (int d = 0; d < D; d++) ss += (double)zr[d] * zr[d];
        double inv = cosine ? 1.0 / fmax(sqrt(ss), CONTRAST_EPS) : 1.0;
        c->inv[r] = inv;
        for (int d = 0; d < D; d++) u[(size_t)r * D + d] = zr[d] * inv;
    }
#pragma omp parallel for schedule(static)
    for (int r = 0; r < B; r++) {
        const double *ur = u + (size_t)r * D;
        double *s = S + (size_t)r * B;
        for (int k = 0; k < B; k++) {
            const double *uk = u + (size_t)k * D;
            double acc = 0;
            for (int d = 0; d < D; d++) acc += ur[d] * uk[d];
            s[k] = acc;
        }
        /* accuracy: rank of each positive among the negatives */
        int t1 = 0, t5 = 0;
        for (int p = 0; p < B; p++) {
            if (p == r || p % N != r % N) continue;
            int rank = 0;
            for (int k = 0; k < B && rank < 5; k++)
                if (k != r && k % N != r % N && s[k] > s[p]) rank++;
            t1 += rank < 1, t5 += rank < 5;
        }
        c->row_t1[r] = t1, c->row_t5[r] = t5;
        double *g = G + (size_t)r * B;
        c->row_loss[r] = row_loss_grad(&c->cfg, s, g, B, r, N);
        for (int k = 0; k < B; k++) g[k] /= B;
    }
    double L = 0;
    long t1 = 0, t5 = 0;
    for (int r = 0; r < B; r++) L += c->row_loss[r], t1 += c->row_t1[r], t5 += c->row_t5[r];
    L /= B;
    if (loss) *loss = L;
    if (st) {
        double pairs = (double)B * (V - 1);
        st->loss = (float)L;
        st->top1 = (float)(t1 / pairs);
        st->top5 = (float)(t5 / pairs);
    }
    if (!dz) return 0;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < B; r++) {
        double *dr = du + (size_t)r * D;
        for (int d = 0; d < D; d++) dr[d] = 0;
        for (int k = 0; k < B; k++) {
            double w = G[(size_t)r * B + k] + G[(size_t)k * B + r];
            if (w == 0) continue;
            const double *uk = u + (size_t)k * D;
            for (int d = 0; d < D; d++) dr[d] += w * uk[d];
        }
        const double *ur = u + (size_t)r * D;
        float *o = dz + (size_t)r * D;
        if (!cosine) {
            for (int d = 0; d < D; d++) o[d] = (float)dr[d];
        } else if (c->inv[r] >= 1.0 / CONTRAST_EPS) { /* norm clamped: u = z / eps */
            for (int d = 0; d < D; d++) o[d] = (float)(dr[d] * c->inv[r]);
        } else {
            double dot = 0;
            for (int d = 0; d < D; d++) dot += ur[d] * dr[d];
            for (int d = 0; d < D; d++) o[d] = (float)((dr[d] - ur[d] * dot) * c->inv[r]);
        }
    }
    return 0;
}
