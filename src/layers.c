/* layers.c - batch norm (+ fused residual add and ReLU), ReLU, max pool, global average pool,
 * linear. See layers.h for the contracts. Fast kernels first, references at the end. */
#include "layers.h"

#include <dnnl.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include <stdlib.h>

#include "bf16.h"
#include "common.h"

/* Rows per reduction chunk: a constant, so the chunking (and the bits) never depend on the
 * number of threads. Within a chunk float sums (vectorised over channels), across chunks a
 * double sum in chunk order. */
#define BN_CHUNK 256

static size_t nchunks(size_t N) { return (N + BN_CHUNK - 1) / BN_CHUNK; }

size_t batchnorm_partials(size_t N, int C) { return 2 * nchunks(N) * (size_t)C + 2 * (size_t)C; }

/* Rows of an (N, C) activation buffer of type dt, as floats: a float32 row is used in place, a
 * bf16 row is converted into the caller's tmp (C floats). row_put stores a computed row. */
static inline const float *row_get(const void *p, int dt, size_t r, int C, float *tmp) {
    if (dt == DT_F32) return (const float *)p + r * C;
    const uint16_t *h = (const uint16_t *)p + r * C;
#pragma omp simd
    for (int c = 0; c < C; c++) tmp[c] = bf16_to_f32(h[c]);
    return tmp;
}
/* where to compute row r of an output of type dt: in place (f32) or in tmp, then row_put */
static inline float *row_dst(void *p, int dt, size_t r, int C, float *tmp) {
    return dt == DT_F32 ? (float *)p + r * C : tmp;
}
static inline void row_put(void *p, int dt, size_t r, int C, const float *tmp) {
    if (dt == DT_F32) return;
    uint16_t *h = (uint16_t *)p + r * C;
#pragma omp simd
    for (int c = 0; c < C; c++) h[c] = bf16_from_f32(tmp[c]);
}

/* y = x * scale + shift with scale = gamma * rstd, shift = beta - mean * scale: one definition,
 * so the backward's recomputation of the forward output is bit-identical to the forward. */
static void bn_fold(float *scale, float *shift, const float *mean, const float *rstd,
                    const float *gamma, const float *beta, int C) {
    for (int c = 0; c < C; c++) {
        scale[c] = gamma[c] * rstd[c];
        shift[c] = beta[c] - mean[c] * scale[c];
    }
}

void batchnorm_apply(void *out, const void *x, const float *mean, const float *rstd,
                     const float *gamma, const float *beta, const void *residual, int relu,
                     size_t N, int C, double *partials, int dt) {
    float *scale = (float *)(partials + 2 * nchunks(N) * C), *shift = scale + C;
    bn_fold(scale, shift, mean, rstd, gamma, beta, C);
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < N; r++) {
        float tx[dt == DT_F32 ? 1 : C], tr[dt == DT_F32 || !residual ? 1 : C], to[dt == DT_F32 ? 1 : C];
        const float *xr = row_get(x, dt, r, C, tx);
        float *o = row_dst(out, dt, r, C, to);
        if (residual) {
            const float *res = row_get(residual, dt, r, C, tr);
            if (relu) {
#pragma omp simd
                for (int c = 0; c < C; c++) {
                    float v = xr[c] * scale[c] + shift[c] + res[c];
                    o[c] = v > 0 ? v : 0;
                }
            } else {
#pragma omp simd
                for (int c = 0; c < C; c++) o[c] = xr[c] * scale[c] + shift[c] + res[c];
            }
        } else if (relu) {
#pragma omp simd
            for (int c = 0; c < C; c++) {
                float v = xr[c] * scale[c] + shift[c];
                o[c] = v > 0 ? v : 0;
            }
        } else {
#pragma omp simd
            for (int c = 0; c < C; c++) o[c] = xr[c] * scale[c] + shift[c];
        }
        row_put(out, dt, r, C, o);
    }
}

void batchnorm_forward(void *out, float *mean, float *rstd, const void *x, const float *gamma,
                       const float *beta, float *run_mean, float *run_var, int64_t *nbt,
                       const void *residual, int relu, int training, size_t N, int C,
                       double *partials, int dt) {
    batchnorm_forward_sync(out, mean, rstd, x, gamma, beta, run_mean, run_var, nbt, residual, relu,
                           training, N, C, partials, dt, NULL);
}

void batchnorm_forward_sync(void *out, float *mean, float *rstd, const void *x,
                            const float *gamma, const float *beta, float *run_mean,
                            float *run_var, int64_t *nbt, const void *residual, int relu,
                            int training, size_t N, int C, double *partials, int dt,
                            const BnSync *sync) {
    batchnorm_stats_sync(mean, rstd, x, run_mean, run_var, nbt, training, N, C, partials, dt, sync);
    batchnorm_apply(out, x, mean, rstd, gamma, beta, residual, relu, N, C, partials, dt);
}

/* One chunk's statistics from a single read of x: sum[c] of the rows, then (rows now in cache)
 * m2[c] = sum (x - chunk mean)^2, float sums vectorised over channels. */
static void chunk_stats(double *sum, double *m2, const void *x, int dt, size_t r0, size_t r1,
                        int C) {
    float s[C], q[C], mk[C], tmp[dt == DT_F32 ? 1 : C];
    for (int c = 0; c < C; c++) s[c] = 0, q[c] = 0;
    for (size_t r = r0; r < r1; r++) {
        const float *xr = row_get(x, dt, r, C, tmp);
#pragma omp simd
        for (int c = 0; c < C; c++) s[c] += xr[c];
    }
    for (int c = 0; c < C; c++) mk[c] = s[c] / (float)(r1 - r0);
    for (size_t r = r0; r < r1; r++) {
        const float *xr = row_get(x, dt, r, C, tmp);
#pragma omp simd
        for (int c = 0; c < C; c++) {
            float d = xr[c] - mk[c];
            q[c] += d * d;
        }
    }
    for (int c = 0; c < C; c++) sum[c] = s[c], m2[c] = q[c];
}

void batchnorm_stats_sync(float *mean, float *rstd, const void *x, float *run_mean, float *run_var,
                          int64_t *nbt, int training, size_t N, int C, double *partials, int dt,
                          const BnSync *sync) {
    size_t nch = nchunks(N);
    if (training) {
        /* the statistics are over the global batch: Ng rows on all processes together */
        size_t Ng = sync && sync->world > 1 ? N * (size_t)sync->world : N;
        /* per chunk (2C doubles each): its sum and its squared deviations from its own mean,
         * one read of x; then, in chunk order (double): the total sum, hence the mean, and
         * sum (x - mean)^2 = sum over chunks of m2_k + 2 d_k (s_k - n_k mk_k) + n_k d_k^2 with
         * d_k = mk_k - mean (mk_k the float chunk mean the chunk used: exact algebra) */
#pragma omp parallel for schedule(static)
        for (size_t k = 0; k < nch; k++) {
            size_t r0 = k * BN_CHUNK, r1 = r0 + BN_CHUNK < N ? r0 + BN_CHUNK : N;
            chunk_stats(partials + 2 * k * C, partials + 2 * k * C + C, x, dt, r0, r1, C);
        }
        double *tot = partials + 2 * nch * C; /* the 2C doubles after the chunks */
        for (int c = 0; c < C; c++) {
            double t = 0;
            for (size_t k = 0; k < nch; k++) t += partials[2 * k * C + c];
            tot[c] = t;
        }
        if (sync && sync->world > 1) SC_ASSERT(sync->allreduce(sync->ctx, tot, (size_t)C) == 0);
        for (int c = 0; c < C; c++) mean[c] = (float)(tot[c] / Ng);
        for (int c = 0; c < C; c++) {
            double t = 0, mu = (double)mean[c];
            for (size_t k = 0; k < nch; k++) {
                size_t nk = (k + 1) * BN_CHUNK < N ? BN_CHUNK : N - k * BN_CHUNK;
                double sk = partials[2 * k * C + c];
                float mkf = (float)sk / (float)nk; /* chunk_stats' chunk mean, bit for bit */
                double d = (double)mkf - mu;
                t += partials[2 * k * C + C + c] + 2 * d * (sk - nk * (double)mkf) + nk * d * d;
            }
            tot[C + c] = t;
        }
        if (sync && sync->world > 1) SC_ASSERT(sync->allreduce(sync->ctx, tot + C, (size_t)C) == 0);
        for (int c = 0; c < C; c++) {
            double s = tot[C + c];
            double var = s / Ng;
            rstd[c] = (float)(1.0 / sqrt(var + BN_EPS));
            if (run_mean) {
                double unbiased = Ng > 1 ? s / (Ng - 1) : var;
                run_mean[c] = (1 - BN_MOMENTUM) * run_mean[c] + BN_MOMENTUM * mean[c];
                run_var[c] = (1 - BN_MOMENTUM) * run_var[c] + BN_MOMENTUM * (float)unbiased;
            }
        }
        if (nbt) (*nbt)++;
    } else {
        for (int c = 0; c < C; c++) {
            mean[c] = run_mean[c];
            rstd[c] = (float)(1.0 / sqrt((double)run_var[c] + BN_EPS));
        }
    }
}

void batchnorm_backward(void *dx, float *dgamma, float *dbeta, void *dout, const void *relu_out,
                        const void *x, const float *mean, const float *rstd, const float *gamma,
                        int training, size_t N, int C, double *partials, int dt, int dt_dout,
                        int dt_dx) {
    batchnorm_backward_sync(dx, dgamma, dbeta, dout, relu_out, x, mean, rstd, gamma, training, N,
                            C, partials, dt, dt_dout, dt_dx, NULL);
}

/* The two per-channel loops of batch norm's backward, shared by batchnorm_backward_sync and the
 * fused stem's backward (same expressions, so the same bits): pass 1 accumulates one row's
 * sum(dy) and sum(dy * (x - mean)); pass 2 writes dx = ka*dy + kb*x + kc. */
static inline void bn_bwd_sums_row(float *sdy, float *sdx, const float *dy, const float *xr,
                                   const float *mean, int C) {
#pragma omp simd
    for (int c = 0; c < C; c++) {
        sdy[c] += dy[c];
        sdx[c] += dy[c] * (xr[c] - mean[c]);
    }
}
static inline void bn_bwd_dx_row(float *d, const float *dy, const float *xr, const float *ka,
                                 const float *kb, const float *kc, int C) {
#pragma omp simd
    for (int c = 0; c < C; c++) d[c] = ka[c] * dy[c] + kb[c] * xr[c] + kc[c];
}

static void bn_backward_coeffs(float *ka, float *kb, float *kc, float *dgamma, float *dbeta,
                               double *partials, size_t nch, const float *mean, const float *rstd,
                               const float *gamma, int training, size_t N, int C,
                               const BnSync *sync);

/* d (C) = dy masked by the ReLU of the forward's BN(+residual) output, recomputed from x and the
 * residual row res (NULL: none) with batchnorm_apply's expression, so the mask is the forward's
 * bit for bit; d may be dy */
static inline void relu_mask_row(float *d, const float *dy, const float *xr, const float *res,
                                 const float *scale, const float *shift, int C) {
    if (res) {
#pragma omp simd
        for (int c = 0; c < C; c++) {
            float v = xr[c] * scale[c] + shift[c] + res[c];
            d[c] = v > 0 ? dy[c] : 0;
        }
    } else {
#pragma omp simd
        for (int c = 0; c < C; c++) {
            float v = xr[c] * scale[c] + shift[c];
            d[c] = v > 0 ? dy[c] : 0;
        }
    }
}

/* batchnorm_backward_sync, and with scale != NULL the ReLU mask recomputed from x and the
 * residual (relu_mask_row) instead of read from relu_out */
static void bn_backward(void *dx, float *dgamma, float *dbeta, void *dout, const void *relu_out,
                        const float *scale, const float *shift, const void *residual,
                        const void *x, const float *mean, const float *rstd, const float *gamma,
                        int training, size_t N, int C, double *partials, int dt, int dt_dout,
                        int dt_dx, const BnSync *sync) {
    size_t nch = nchunks(N);
    /* pass 1: per chunk sum(dy) and sum(dy * (x - mean)), masking dy in place */
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < nch; k++) {
        size_t r0 = k * BN_CHUNK, r1 = r0 + BN_CHUNK < N ? r0 + BN_CHUNK : N;
        float sdy[C], sdx[C], tx[dt == DT_F32 ? 1 : C], to[dt == DT_F32 ? 1 : C],
            tg[dt_dout == DT_F32 ? 1 : C];
        for (int c = 0; c < C; c++) sdy[c] = sdx[c] = 0;
        for (size_t r = r0; r < r1; r++) {
            const float *dyr = row_get(dout, dt_dout, r, C, tg);
            const float *xr = row_get(x, dt, r, C, tx);
            if (scale) {
                const float *res = residual ? row_get(residual, dt, r, C, to) : NULL;
                float *dy = row_dst(dout, dt_dout, r, C, tg); /* == dyr */
                relu_mask_row(dy, dyr, xr, res, scale, shift, C);
                row_put(dout, dt_dout, r, C, dy);
                if (dt_dout != DT_F32) dy = (float *)row_get(dout, dt_dout, r, C, tg); /* as stored */
                bn_bwd_sums_row(sdy, sdx, dy, xr, mean, C);
            } else if (relu_out) {
                const float *o = row_get(relu_out, dt, r, C, to);
                float *dy = row_dst(dout, dt_dout, r, C, tg); /* == dyr */
#pragma omp simd
                for (int c = 0; c < C; c++) {
                    float g = o[c] > 0 ? dyr[c] : 0;
                    dy[c] = g;
                    sdy[c] += g;
                    sdx[c] += g * (xr[c] - mean[c]);
                }
                row_put(dout, dt_dout, r, C, dy);
            } else {
                bn_bwd_sums_row(sdy, sdx, dyr, xr, mean, C);
            }
        }
        double *p = partials + 2 * k * C;
        for (int c = 0; c < C; c++) p[c] = sdy[c], p[C + c] = sdx[c];
    }
    float *ka = (float *)(partials + 2 * nch * C), *kb = ka + C, *kc = kb + C;
    bn_backward_coeffs(ka, kb, kc, dgamma, dbeta, partials, nch, mean, rstd, gamma, training, N, C,
                       sync);
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < N; r++) {
        float tx[dt == DT_F32 ? 1 : C], tg[dt_dout == DT_F32 ? 1 : C], td[dt_dx == DT_F32 ? 1 : C];
        const float *dy = row_get(dout, dt_dout, r, C, tg), *xr = row_get(x, dt, r, C, tx);
        float *d = row_dst(dx, dt_dx, r, C, td);
        bn_bwd_dx_row(d, dy, xr, ka, kb, kc, C);
        row_put(dx, dt_dx, r, C, d);
    }
}

void batchnorm_backward_sync(void *dx, float *dgamma, float *dbeta, void *dout,
                             const void *relu_out, const void *x, const float *mean,
                             const float *rstd, const float *gamma, int training, size_t N, int C,
                             double *partials, int dt, int dt_dout, int dt_dx, const BnSync *sync) {
    bn_backward(dx, dgamma, dbeta, dout, relu_out, NULL, NULL, NULL, x, mean, rstd, gamma, training,
                N, C, partials, dt, dt_dout, dt_dx, sync);
}

void batchnorm_relu_mask_backward_sync(void *dx, float *dgamma, float *dbeta, void *dout,
                                       const void *x, const void *residual, const float *mean,
                                       const float *rstd, const float *gamma, const float *beta,
                                       int training, size_t N, int C, double *partials, int dt,
                                       int dt_dout, int dt_dx, const BnSync *sync) {
    float scale[C], shift[C];
    bn_fold(scale, shift, mean, rstd, gamma, beta, C);
    bn_backward(dx, dgamma, dbeta, dout, NULL, scale, shift, residual, x, mean, rstd, gamma,
                training, N, C, partials, dt, dt_dout, dt_dx, sync);
}

/* From the chunk sums of sum(dy), sum(dy * (x - mean)) (partials, 2C per chunk): adds this
 * process's dgamma, dbeta and sets dx = ka*dy + kb*x + kc (sums over the global batch). */
static void bn_backward_coeffs(float *ka, float *kb, float *kc, float *dgamma, float *dbeta,
                               double *partials, size_t nch, const float *mean, const float *rstd,
                               const float *gamma, int training, size_t N, int C,
                               const BnSync *sync) {
    /* this process's sums give dgamma, dbeta (the gradient all-reduce adds the processes');
     * dx needs the sums over the global batch */
    for (int c = 0; c < C; c++) {
        double sdy = 0, sdx = 0;
        for (size_t k = 0; k < nch; k++) sdy += partials[2 * k * C + c], sdx += partials[2 * k * C + C + c];
        partials[c] = sdy, partials[C + c] = sdx; /* chunk 0's slots, read above */
        dbeta[c] += (float)sdy;
        dgamma[c] += (float)(sdx * rstd[c]);
    }
    size_t Ng = N;
    if (training && sync && sync->world > 1) {
        SC_ASSERT(sync->allreduce(sync->ctx, partials, 2 * (size_t)C) == 0);
        Ng = N * (size_t)sync->world;
    }
    for (int c = 0; c < C; c++) {
        double sdy = partials[c], sdx = partials[C + c];
        double sdxhat = sdx * rstd[c]; /* sum dy * xhat */
        double a = (double)gamma[c] * rstd[c];
        if (training) {
            /* dx = a * (dy - mean(dy) - xhat * mean(dy * xhat)) = a*dy + b*x + cc */
            double b = -a * rstd[c] * sdxhat / Ng;
            ka[c] = (float)a;
            kb[c] = (float)b;
            kc[c] = (float)(-a * sdy / Ng - b * mean[c]);
        } else {
            ka[c] = (float)a, kb[c] = 0, kc[c] = 0;
        }
    }
}

void batchnorm_relu_mask_recompute(void *dout, const void *x, const float *mean,
                                   const float *rstd, const float *gamma, const float *beta,
                                   const void *residual, size_t N, int C, double *partials, int dt,
                                   int dt_dout) {
    float *scale = (float *)(partials + 2 * nchunks(N) * C), *shift = scale + C;
    bn_fold(scale, shift, mean, rstd, gamma, beta, C);
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < N; r++) {
        float tx[dt == DT_F32 ? 1 : C], tg[dt_dout == DT_F32 ? 1 : C],
            tr[dt == DT_F32 || !residual ? 1 : C];
        const float *xr = row_get(x, dt, r, C, tx);
        const float *dr = row_get(dout, dt_dout, r, C, tg);
        float *d = row_dst(dout, dt_dout, r, C, tg);
        relu_mask_row(d, dr, xr, residual ? row_get(residual, dt, r, C, tr) : NULL, scale, shift, C);
        row_put(dout, dt_dout, r, C, d);
    }
}

/* ---- the stem: batch norm + ReLU + max pool fused (no stem-sized activation but the conv
 * output) ------------------------------------------------------------------------------------ */

/* v (C) = the BN+ReLU output of row r as the unfused forward stored it (rounded to dt) */
static inline void bn_relu_row(float *v, const void *x, int dt, size_t r, int C,
                               const float *scale, const float *shift) {
    float tx[dt == DT_F32 ? 1 : C];
    const float *xr = row_get(x, dt, r, C, tx);
#pragma omp simd
    for (int c = 0; c < C; c++) {
        float t = xr[c] * scale[c] + shift[c]; /* batchnorm_apply's expression */
        v[c] = t > 0 ? t : 0;
    }
    if (dt == DT_BF16) {
#pragma omp simd
        for (int c = 0; c < C; c++) v[c] = bf16_to_f32(bf16_from_f32(v[c]));
    }
}

size_t batchnorm_relu_maxpool_work(int W, int C, int k, int threads) {
    return (size_t)threads * k * W * C;
}

void batchnorm_relu_maxpool_forward(void *out, uint8_t *argmax, const void *x, const float *mean,
                                    const float *rstd, const float *gamma, const float *beta,
                                    int B, int H, int W, int C, int k, int stride, int pad,
                                    int dt, float *work, int work_threads) {
    int OH = pool_out_size(H, k, stride, pad), OW = pool_out_size(W, k, stride, pad);
    float scale[C], shift[C];
    bn_fold(scale, shift, mean, rstd, gamma, beta, C);
    /* at most work_threads threads (one slice of work each); the bits never depend on it */
    int nthr = omp_get_max_threads() < work_threads ? omp_get_max_threads() : work_threads;
    SC_ASSERT(nthr >= 1);
#pragma omp parallel num_threads(nthr)
    {
        /* the k input rows of one output row, BN+ReLU'd once (each input row is computed about
         * k / stride times in all instead of k*k times), in this thread's slice of work */
        float *rows = work + (size_t)omp_get_thread_num() * k * W * C;
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++)
            for (int oh = 0; oh < OH; oh++) {
                for (int r = 0; r < k; r++) {
                    int ih = oh * stride - pad + r;
                    if (ih < 0 || ih >= H) continue;
                    for (int iw = 0; iw < W; iw++)
                        bn_relu_row(rows + ((size_t)r * W + iw) * C, x, dt,
                                    ((size_t)b * H + ih) * W + iw, C, scale, shift);
                }
                for (int ow = 0; ow < OW; ow++) {
                    /* the running maximum and argmax in local rows (vector initialisation, the
                     * output written once) */
                    float o[C];
                    uint8_t am[C];
                    size_t orow = ((size_t)b * OH + oh) * OW + ow;
#pragma omp simd
                    for (int c = 0; c < C; c++) o[c] = -INFINITY;
                    memset(am, 0, (size_t)C);
                    for (int r = 0; r < k; r++) {
                        int ih = oh * stride - pad + r;
                        if (ih < 0 || ih >= H) continue;
                        for (int q = 0; q < k; q++) {
                            int iw = ow * stride - pad + q;
                            if (iw < 0 || iw >= W) continue;
                            const float *v = rows + ((size_t)r * W + iw) * C;
                            uint8_t pos = (uint8_t)(r * k + q);
#pragma omp simd
                            for (int c = 0; c < C; c++) { /* maxpool_forward's rule */
                                int take = v[c] > o[c] || v[c] != v[c];
                                o[c] = take ? v[c] : o[c];
                                am[c] = take ? pos : am[c];
                            }
                        }
                    }
                    if (dt == DT_F32) memcpy((float *)out + orow * C, o, sizeof(float) * C);
                    else row_put(out, dt, orow, C, o);
                    if (argmax) memcpy(argmax + orow * C, am, (size_t)C);
                }
            }
    }
}

/* The output from the argmax: one BN+ReLU per output at the position the forward chose. Needed
 * only where the window maximum of the raw conv output does not decide it (see below). */
static void stem_recompute_argmax(void *out, const uint8_t *argmax, const void *x,
                                  const float *scale, const float *shift, int B, int H, int W,
                                  int C, int k, int stride, int pad, int dt) {
    int OH = pool_out_size(H, k, stride, pad), OW = pool_out_size(W, k, stride, pad);
    long off[256]; /* window position -> element offset from the window's top-left corner */
    for (int p = 0; p < k * k; p++) off[p] = ((long)(p / k) * W + p % k) * C;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float v[C];
                size_t orow = ((size_t)b * OH + oh) * OW + ow;
                const uint8_t *am = argmax + orow * C;
                /* the corner may lie in the padding, the argmax never does */
                long tl = (((long)b * H + oh * stride - pad) * W + ow * stride - pad) * C;
                if (dt == DT_F32) {
                    const float *xf = x;
#pragma omp simd
                    for (int c = 0; c < C; c++) {
                        float t = xf[tl + off[am[c]] + c] * scale[c] + shift[c]; /* batchnorm_apply's */
                        v[c] = t > 0 ? t : 0;
                    }
                    memcpy((float *)out + orow * C, v, sizeof(float) * C);
                } else {
                    const uint16_t *xh = x;
                    uint16_t *oh16 = (uint16_t *)out + orow * C;
#pragma omp simd
                    for (int c = 0; c < C; c++) {
                        float t = bf16_to_f32(xh[tl + off[am[c]] + c]) * scale[c] + shift[c];
                        oh16[c] = bf16_from_f32(t > 0 ? t : 0);
                    }
                }
            }
}

/* BN is monotone in x per channel (x * scale + shift rounds once, and rounding is monotone), and
 * so are ReLU and the bf16 rounding: the window's maximum of relu(x * scale + shift) is
 * relu(xm * scale + shift) with xm the window's largest x where scale > 0, its smallest where
 * scale < 0. Computed as xm' = max(x * sg) over the window (sg = +-1, NaN skipped as the
 * forward's ReLU zeroes it), then xm' * (scale * sg) + shift: the same product, the same bits. A
 * zero or non-finite scale (0 * inf) takes the argmax path. The max pass is a plain vector max:
 * no gathers, the output in one read of x. */
void batchnorm_relu_maxpool_recompute(void *out, const uint8_t *argmax, const void *x,
                                      const float *mean, const float *rstd, const float *gamma,
                                      const float *beta, int B, int H, int W, int C, int k,
                                      int stride, int pad, int dt) {
    int OH = pool_out_size(H, k, stride, pad), OW = pool_out_size(W, k, stride, pad);
    float scale[C], shift[C], sg[C], ss[C];
    bn_fold(scale, shift, mean, rstd, gamma, beta, C);
    int monotone = 1;
    for (int c = 0; c < C; c++) {
        monotone &= scale[c] != 0 && isfinite(scale[c]) && isfinite(shift[c]);
        sg[c] = scale[c] < 0 ? -1.0f : 1.0f;
        ss[c] = scale[c] * sg[c];
    }
    if (!monotone) {
        stem_recompute_argmax(out, argmax, x, scale, shift, B, H, W, C, k, stride, pad, dt);
        return;
    }
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float m[C], tx[dt == DT_F32 ? 1 : C], to[dt == DT_F32 ? 1 : C];
                for (int c = 0; c < C; c++) m[c] = -INFINITY;
                for (int r = 0; r < k; r++) {
                    int ih = oh * stride - pad + r;
                    if (ih < 0 || ih >= H) continue;
                    for (int q = 0; q < k; q++) {
                        int iw = ow * stride - pad + q;
                        if (iw < 0 || iw >= W) continue;
                        const float *xr = row_get(x, dt, ((size_t)b * H + ih) * W + iw, C, tx);
#pragma omp simd
                        for (int c = 0; c < C; c++) {
                            float t = xr[c] * sg[c];
                            m[c] = t > m[c] ? t : m[c];
                        }
                    }
                }
                size_t orow = ((size_t)b * OH + oh) * OW + ow;
                float *o = row_dst(out, dt, orow, C, to);
#pragma omp simd
                for (int c = 0; c < C; c++) {
                    float t = m[c] * ss[c] + shift[c]; /* batchnorm_apply's expression */
                    o[c] = t > 0 ? t : 0;
                }
                row_put(out, dt, orow, C, o);
            }
}

/* d (C) = the max-pool gradient of input pixel (b, ih, iw): the sum of the gradients of the
 * windows whose maximum it was, in the order (oh, ow) ascending */
static inline void pool_grad_row(float *d, const float *d_out, const uint8_t *argmax, int b,
                                 int ih, int iw, int OH, int OW, int C, int k, int stride,
                                 int pad) {
    for (int c = 0; c < C; c++) d[c] = 0;
    /* windows oh with oh*stride - pad <= ih < oh*stride - pad + k */
    int oh0 = ih + pad - k + 1 > 0 ? (ih + pad - k + 1 + stride - 1) / stride : 0;
    int oh1 = (ih + pad) / stride, ow0 = iw + pad - k + 1 > 0 ? (iw + pad - k + 1 + stride - 1) / stride : 0;
    int ow1 = (iw + pad) / stride;
    if (oh1 >= OH) oh1 = OH - 1;
    if (ow1 >= OW) ow1 = OW - 1;
    for (int oh = oh0; oh <= oh1; oh++)
        for (int ow = ow0; ow <= ow1; ow++) {
            size_t o = (((size_t)b * OH + oh) * OW + ow) * C;
            uint8_t pos = (uint8_t)((ih - (oh * stride - pad)) * k + (iw - (ow * stride - pad)));
            const uint8_t *am = argmax + o;
            const float *g = d_out + o;
#pragma omp simd
            for (int c = 0; c < C; c++) d[c] += am[c] == pos ? g[c] : 0.0f;
        }
}

/* dy (C) of stem row r: the max-pool gradient (rounded to dt, as the unfused path stored it),
 * masked by the ReLU recomputed from x; xr: x's row as floats (tx when dt is bf16) */
static inline const float *stem_dy_row(float *dy, float *tx, const float *d_pool,
                                       const uint8_t *argmax, const void *x, int dt, size_t r,
                                       int H, int W, int OH, int OW, int C, int k, int stride,
                                       int pad, const float *scale, const float *shift) {
    int b = (int)(r / ((size_t)H * W)), p = (int)(r % ((size_t)H * W));
    pool_grad_row(dy, d_pool, argmax, b, p / W, p % W, OH, OW, C, k, stride, pad);
    if (dt == DT_BF16) {
#pragma omp simd
        for (int c = 0; c < C; c++) dy[c] = bf16_to_f32(bf16_from_f32(dy[c]));
    }
    const float *xr = row_get(x, dt, r, C, tx);
    relu_mask_row(dy, dy, xr, NULL, scale, shift, C);
    return xr;
}

void batchnorm_relu_maxpool_backward(void *dx, float *dgamma, float *dbeta, const float *d_pool,
                                     const uint8_t *argmax, const void *x, const float *mean,
                                     const float *rstd, const float *gamma, const float *beta,
                                     int training, int B, int H, int W, int C, int k, int stride,
                                     int pad, double *partials, int dt, const BnSync *sync) {
    int OH = pool_out_size(H, k, stride, pad), OW = pool_out_size(W, k, stride, pad);
    size_t N = (size_t)B * H * W, nch = nchunks(N);
    float scale[C], shift[C];
    bn_fold(scale, shift, mean, rstd, gamma, beta, C);
    /* pass 1: batchnorm_backward's chunk sums, on the recomputed dy */
#pragma omp parallel for schedule(static)
    for (size_t kk = 0; kk < nch; kk++) {
        size_t r0 = kk * BN_CHUNK, r1 = r0 + BN_CHUNK < N ? r0 + BN_CHUNK : N;
        float sdy[C], sdx[C], dyr[C], tx[dt == DT_F32 ? 1 : C];
        for (int c = 0; c < C; c++) sdy[c] = sdx[c] = 0;
        for (size_t r = r0; r < r1; r++) {
            const float *xr = stem_dy_row(dyr, tx, d_pool, argmax, x, dt, r, H, W, OH, OW, C, k,
                                          stride, pad, scale, shift);
            bn_bwd_sums_row(sdy, sdx, dyr, xr, mean, C);
        }
        double *p = partials + 2 * kk * C;
        for (int c = 0; c < C; c++) p[c] = sdy[c], p[C + c] = sdx[c];
    }
    float *ka = (float *)(partials + 2 * nch * C), *kb = ka + C, *kc = kb + C;
    bn_backward_coeffs(ka, kb, kc, dgamma, dbeta, partials, nch, mean, rstd, gamma, training, N, C,
                       sync);
    /* pass 2: dx, in place over x when dx == x (each row is read before it is written) */
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < N; r++) {
        float dy[C], tx[dt == DT_F32 ? 1 : C], td[dt == DT_F32 ? 1 : C];
        const float *xr = stem_dy_row(dy, tx, d_pool, argmax, x, dt, r, H, W, OH, OW, C, k, stride,
                                      pad, scale, shift);
        float *d = row_dst(dx, dt, r, C, td);
        bn_bwd_dx_row(d, dy, xr, ka, kb, kc, C);
        row_put(dx, dt, r, C, d);
    }
}

/* ---- ReLU, add ----------------------------------------------------------------------------- */

void relu_forward(float *out, const float *in, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = in[i] > 0 ? in[i] : 0;
}

void relu_backward(float *d_in, const float *d_out, const float *out, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) d_in[i] = out[i] > 0 ? d_out[i] : 0;
}

void add_inplace(float *y, const float *x, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

/* ---- max pool ------------------------------------------------------------------------------ */

int pool_out_size(int in, int k, int stride, int pad) {
    int span = in + 2 * pad - k;
    return span < 0 ? 0 : span / stride + 1;
}

void maxpool_forward(void *out, uint8_t *argmax, const void *in, int B, int H, int W, int C,
                     int k, int stride, int pad, int dt) {
    int OH = pool_out_size(H, k, stride, pad), OW = pool_out_size(W, k, stride, pad);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float tx[dt == DT_F32 ? 1 : C], to[dt == DT_F32 ? 1 : C];
                size_t orow = ((size_t)b * OH + oh) * OW + ow;
                float *o = row_dst(out, dt, orow, C, to);
                uint8_t *am = argmax + orow * C;
                for (int c = 0; c < C; c++) o[c] = -INFINITY, am[c] = 0;
                for (int r = 0; r < k; r++) {
                    int ih = oh * stride - pad + r;
                    if (ih < 0 || ih >= H) continue;
                    for (int q = 0; q < k; q++) {
                        int iw = ow * stride - pad + q;
                        if (iw < 0 || iw >= W) continue;
                        const float *x = row_get(in, dt, ((size_t)b * H + ih) * W + iw, C, tx);
                        uint8_t pos = (uint8_t)(r * k + q);
#pragma omp simd
                        for (int c = 0; c < C; c++) {
                            int take = x[c] > o[c] || x[c] != x[c];
                            o[c] = take ? x[c] : o[c];
                            am[c] = take ? pos : am[c];
                        }
                    }
                }
                row_put(out, dt, orow, C, o);
            }
}

/* A gather: every input pixel sums the gradients of the windows whose maximum it was, in the
 * order (oh, ow) ascending, i.e. the order in which a scatter over the outputs would add them;
 * one rounding per element when d_in is bf16. */
void maxpool_backward(void *d_in, const float *d_out, const uint8_t *argmax, int B, int H, int W,
                      int C, int k, int stride, int pad, int dt) {
    int OH = pool_out_size(H, k, stride, pad), OW = pool_out_size(W, k, stride, pad);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int ih = 0; ih < H; ih++)
            for (int iw = 0; iw < W; iw++) {
                float td[dt == DT_F32 ? 1 : C];
                size_t irow = ((size_t)b * H + ih) * W + iw;
                float *d = row_dst(d_in, dt, irow, C, td);
                pool_grad_row(d, d_out, argmax, b, ih, iw, OH, OW, C, k, stride, pad);
                row_put(d_in, dt, irow, C, d);
            }
}

/* ---- global average pool ------------------------------------------------------------------- */

void avgpool_forward(float *out, const void *in, int B, int HW, int C, int dt) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *o = out + (size_t)b * C, tx[dt == DT_F32 ? 1 : C];
        for (int c = 0; c < C; c++) o[c] = 0;
        for (int p = 0; p < HW; p++) {
            const float *x = row_get(in, dt, (size_t)b * HW + p, C, tx);
#pragma omp simd
            for (int c = 0; c < C; c++) o[c] += x[c];
        }
        float inv = 1.0f / HW;
        for (int c = 0; c < C; c++) o[c] *= inv;
    }
}

void avgpool_backward(float *d_in, const float *d_out, int B, int HW, int C) {
    float inv = 1.0f / HW;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        for (int p = 0; p < HW; p++) {
            float *d = d_in + ((size_t)b * HW + p) * C;
            const float *g = d_out + (size_t)b * C;
#pragma omp simd
            for (int c = 0; c < C; c++) d[c] = g[c] * inv;
        }
}

/* ---- linear -------------------------------------------------------------------------------- */

/* The three products run as dnnl_sgemm calls cut into LINEAR_BLOCKS fixed blocks of output
 * columns/rows, one single-threaded GEMM per block inside our parallel loop: every element is
 * one complete reduction whose order depends only on the shapes, never on the thread count. */
#define LINEAR_BLOCKS 8

void linear_forward(float *out, const float *in, const float *w, const float *bias, int B, int I,
                    int O) {
#pragma omp parallel for schedule(static, 1)
    for (int k = 0; k < LINEAR_BLOCKS; k++) {
        long o0 = (long)O * k / LINEAR_BLOCKS, o1 = (long)O * (k + 1) / LINEAR_BLOCKS;
        if (o1 > o0)
            SC_ASSERT(dnnl_sgemm('N', 'T', B, o1 - o0, I, 1.0f, in, I, w + o0 * I, I, 0.0f,
                                 out + o0, O) == dnnl_success);
    }
    if (bias) {
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++)
            for (int o = 0; o < O; o++) out[(size_t)b * O + o] += bias[o];
    }
}

void linear_backward(float *d_in, float *d_w, float *d_bias, const float *d_out, const float *in,
                     const float *w, int B, int I, int O) {
#pragma omp parallel for schedule(static, 1)
    for (int k = 0; k < LINEAR_BLOCKS; k++) {
        if (d_in) { /* d_in (B,I) = d_out (B,O) . w (O,I), blocks of input columns */
            long i0 = (long)I * k / LINEAR_BLOCKS, i1 = (long)I * (k + 1) / LINEAR_BLOCKS;
            if (i1 > i0)
                SC_ASSERT(dnnl_sgemm('N', 'N', B, i1 - i0, O, 1.0f, d_out, O, w + i0, I, 0.0f,
                                     d_in + i0, I) == dnnl_success);
        }
        /* d_w (O,I) += d_out^T (O,B) . in (B,I), blocks of output rows */
        long o0 = (long)O * k / LINEAR_BLOCKS, o1 = (long)O * (k + 1) / LINEAR_BLOCKS;
        if (o1 > o0)
            SC_ASSERT(dnnl_sgemm('T', 'N', o1 - o0, I, B, 1.0f, d_out + o0, O, in, I, 1.0f,
                                 d_w + o0 * I, I) == dnnl_success);
    }
    if (d_bias) {
#pragma omp parallel for schedule(static)
        for (int o = 0; o < O; o++) {
            float db = 0;
            for (int b = 0; b < B; b++) db += d_out[(size_t)b * O + o];
            d_bias[o] += db;
        }
    }
}

/* ---- references ---------------------------------------------------------------------------- */

void batchnorm_forward_ref(float *out, float *mean, float *rstd, const float *x,
                           const float *gamma, const float *beta, float *run_mean, float *run_var,
                           int64_t *nbt, const float *residual, int relu, int training, size_t N,
                           int C) {
    for (int c = 0; c < C; c++) {
        double m, v;
        if (training) {
            double s = 0, ss = 0;
            for (size_t r = 0; r < N; r++) s += x[r * C + c];
            m = s / N;
            for (size_t r = 0; r < N; r++) ss += (x[r * C + c] - m) * (x[r * C + c] - m);
            v = ss / N;
            if (run_mean) {
                run_mean[c] = (float)(0.9 * run_mean[c] + 0.1 * m);
                run_var[c] = (float)(0.9 * run_var[c] + 0.1 * (N > 1 ? ss / (N - 1) : v));
            }
        } else {
            m = run_mean[c], v = run_var[c];
        }
        mean[c] = (float)m;
        rstd[c] = (float)(1 / sqrt(v + BN_EPS));
        for (size_t r = 0; r < N; r++) {
            double y = (x[r * C + c] - m) / sqrt(v + BN_EPS) * gamma[c] + beta[c];
            if (residual) y += residual[r * C + c];
            if (relu && y < 0) y = 0;
            out[r * C + c] = (float)y;
        }
    }
    if (training && nbt) (*nbt)++;
}

void batchnorm_backward_ref(float *dx, float *dgamma, float *dbeta, float *dout,
                            const float *relu_out, const float *x, const float *mean,
                            const float *rstd, const float *gamma, int training, size_t N, int C) {
    for (int c = 0; c < C; c++) {
        double sdy = 0, sdyxh = 0;
        for (size_t r = 0; r < N; r++) {
            size_t i = r * C + c;
            if (relu_out && !(relu_out[i] > 0)) dout[i] = 0;
            sdy += dout[i];
            sdyxh += dout[i] * (x[i] - mean[c]) * rstd[c];
        }
        dbeta[c] += (float)sdy;
        dgamma[c] += (float)sdyxh;
        for (size_t r = 0; r < N; r++) {
            size_t i = r * C + c;
            double xh = (x[i] - mean[c]) * rstd[c];
            double g = training ? dout[i] - sdy / N - xh * sdyxh / N : dout[i];
            dx[i] = (float)(gamma[c] * rstd[c] * g);
        }
    }
}

void maxpool_forward_ref(float *out, const float *in, int B, int H, int W, int C, int k,
                         int stride, int pad) {
    int OH = pool_out_size(H, k, stride, pad), OW = pool_out_size(W, k, stride, pad);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    float m = -INFINITY;
                    for (int r = 0; r < k; r++)
                        for (int q = 0; q < k; q++) {
                            int ih = oh * stride - pad + r, iw = ow * stride - pad + q;
                            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                            float v = in[(((size_t)b * H + ih) * W + iw) * C + c];
                            if (v > m) m = v;
                        }
                    out[(((size_t)b * OH + oh) * OW + ow) * C + c] = m;
                }
}

void linear_forward_ref(float *out, const float *in, const float *w, const float *bias, int B,
                        int I, int O) {
    for (int b = 0; b < B; b++)
        for (int o = 0; o < O; o++) {
            double acc = bias ? bias[o] : 0;
            for (int i = 0; i < I; i++) acc += (double)in[(size_t)b * I + i] * w[(size_t)o * I + i];
            out[(size_t)b * O + o] = (float)acc;
        }
}

void linear_backward_ref(float *d_in, float *d_w, float *d_bias, const float *d_out,
                         const float *in, const float *w, int B, int I, int O) {
    for (int i = 0; i < I; i++) {
        for (int b = 0; b < B && d_in; b++) {
            double acc = 0;
            for (int o = 0; o < O; o++) acc += (double)d_out[(size_t)b * O + o] * w[(size_t)o * I + i];
            d_in[(size_t)b * I + i] = (float)acc;
        }
        for (int o = 0; o < O; o++) {
            double acc = 0;
            for (int b = 0; b < B; b++) acc += (double)d_out[(size_t)b * O + o] * in[(size_t)b * I + i];
            d_w[(size_t)o * I + i] += (float)acc;
        }
    }
    for (int o = 0; o < O && d_bias; o++) {
        double acc = 0;
        for (int b = 0; b < B; b++) acc += d_out[(size_t)b * O + o];
        d_bias[o] += (float)acc;
    }
}
