/* conv_small.c - fp32 forward convolution of small output maps, implicit GEMM on channels-last
 * activations, AVX-512, deterministic by construction (see conv_small.h).
 *
 * A unit (output-channel block kb, position pos) walks its valid taps in order; per tap, the
 * packed weights of (kb, tap) are C x 64 floats (128 KB at C = 512: they stay in L2 while every
 * image group of the unit runs over them), and the input of one tile is one C-float span per image
 * (the pixel the tap reads), read in place. */
#include "conv_small.h"

#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "common.h"
#include "conv_wgrad.h"

#define NV 4         /* zmm vectors of output channels per tile */
#define KB (16 * NV) /* output channels per tile (and per packed weight line) */
#define MR_MAX 7     /* images per tile, at most (28 accumulators + 4 weight vectors) */

#define TGT __attribute__((target("avx512f")))

int conv_small_supported(void) { return conv_wgrad_supported(); } /* the same: AVX-512F */

struct ConvSmall {
    ConvShape s;
    int bwd;      /* 0: the forward; 1: backward data (positions are input pixels) */
    int nout, nred; /* output channels (K; bwd: C) and reduction channels (C; bwd: K) */
    size_t xstr;  /* floats of one image of the operand read (in; bwd: d_out) */
    size_t sn, sj; /* strides in w (K,C,R,S) of an output and a reduction channel */
    int nkb, taps, npos, mr, cb, ngrp, pf;
    int *grp;     /* image groups: [grp[g], grp[g + 1]) */
    int *ntap;    /* per position: the number of (tap, pixel) pairs */
    int *tap;     /* per position: the taps of its pairs, ascending (pos * taps + i) */
    int *xoff;    /* per position: floats from an image's start to each pair's pixel (pos * taps + i) */
    long *wsum;   /* units' cumulative work (taps), nkb * npos + 1 entries */
};

static int env_int(const char *name, int def, int lo, int hi) {
    const char *e = getenv(name);
    int v = e ? atoi(e) : def;
    return v < lo ? lo : v > hi ? hi : v;
}

/* the (tap, pixel) pairs of a position, taps ascending: forward, position (oh, ow) reads input
 * pixel (oh*stride - pad + r, ow*stride - pad + q) for tap (r, q); backward data, position
 * (ih, iw) reads the d_out pixel (oh, ow) whose tap (r, q) lands on it */
static int pos_pairs(const ConvShape *s, int bwd, int pos, int *tap, int *xoff) {
    int n = 0;
    for (int r = 0; r < s->R; r++)
        for (int q = 0; q < s->S; q++) {
            if (!bwd) {
                int oh = pos / s->OW, ow = pos % s->OW;
                int ih = oh * s->stride - s->pad + r, iw = ow * s->stride - s->pad + q;
                if (ih < 0 || ih >= s->H || iw < 0 || iw >= s->W) continue;
                xoff[n] = (ih * s->W + iw) * s->C;
            } else {
                int ih = pos / s->W, iw = pos % s->W, th = ih + s->pad - r, tw = iw + s->pad - q;
                if (th < 0 || tw < 0 || th % s->stride || tw % s->stride) continue;
                int oh = th / s->stride, ow = tw / s->stride;
                if (oh >= s->OH || ow >= s->OW) continue;
                xoff[n] = (oh * s->OW + ow) * s->K;
            }
            tap[n++] = r * s->S + q;
        }
    return n;
}

static ConvSmall *create(const ConvShape *s, int bwd) {
    if (s->dt != DT_F32 || !conv_small_supported()) return NULL;
    ConvSmall *p = sc_alloc(sizeof *p);
    p->s = *s;
    p->bwd = bwd;
    p->nout = bwd ? s->C : s->K, p->nred = bwd ? s->K : s->C;
    p->xstr = bwd ? (size_t)s->OH * s->OW * s->K : (size_t)s->H * s->W * s->C;
    p->sn = bwd ? (size_t)s->R * s->S : (size_t)s->C * s->R * s->S;
    p->sj = bwd ? (size_t)s->C * s->R * s->S : (size_t)s->R * s->S;
    p->nkb = (p->nout + KB - 1) / KB;
    p->taps = s->R * s->S;
    p->npos = bwd ? s->H * s->W : s->OH * s->OW;
    p->mr = env_int("SIMCLR_CONV_SMALL_MR", MR_MAX, 1, MR_MAX);
    /* the whole tap by default: its weights (nred x 64 floats) stay in L2, the sums go through
     * memory once per tap */
    p->cb = env_int("SIMCLR_CONV_SMALL_CB", p->nred, 1, p->nred);
    p->pf = env_int("SIMCLR_CONV_SMALL_PF", 0, 0, 3);
    /* groups of at most mr images, as even as possible (128 images: 14 of 7 and 5 of 6) */
    p->ngrp = (s->B + p->mr - 1) / p->mr;
    p->grp = sc_alloc(sizeof(int) * (p->ngrp + 1));
    for (int g = 0; g <= p->ngrp; g++) p->grp[g] = (int)((long)s->B * g / p->ngrp);
    p->ntap = sc_alloc(sizeof(int) * p->npos);
    p->tap = sc_alloc(sizeof(int) * p->npos * p->taps);
    p->xoff = sc_alloc(sizeof(int) * p->npos * p->taps);
    for (int pos = 0; pos < p->npos; pos++)
        p->ntap[pos] = pos_pairs(s, bwd, pos, p->tap + pos * p->taps, p->xoff + pos * p->taps);
    long nunits = (long)p->nkb * p->npos;
    p->wsum = sc_alloc(sizeof(long) * (nunits + 1));
    for (long u = 0; u < nunits; u++) {
        int n = p->ntap[u % p->npos];
        p->wsum[u + 1] = p->wsum[u] + (n > 0 ? n : 1);
    }
    return p;
}

ConvSmall *conv_small_create(const ConvShape *s) { return create(s, 0); }
ConvSmall *conv_small_create_bwd(const ConvShape *s) { return create(s, 1); }

void conv_small_free(ConvSmall *p) {
    if (!p) return;
    sc_free(p->grp), sc_free(p->ntap), sc_free(p->tap), sc_free(p->xoff), sc_free(p->wsum);
    sc_free(p);
}

size_t conv_small_weight_bytes(const ConvSmall *p) {
    return sizeof(float) * p->nkb * KB * p->taps * p->nred;
}

/* wp from w with the strides sn, sj of an output and a reduction channel; flip: tap t read at
 * RS-1-t */
TGT static void pack(const ConvSmall *p, float *wp, const float *w, size_t sn, size_t sj, int flip) {
    const int J = p->nred, RS = p->taps, N = p->nout, ncb = (J + 15) / 16;
    /* wp[kb][t][j][kk] = w at output channel n = kb*64 + kk, reduction channel j, tap t: each
     * line of wp gathered from 64 output channels' rows; 16 reduction channels at a time, so
     * that the parts of w read (64 x 16*RS floats in the forward) stay in L1 */
#pragma omp parallel for collapse(2) schedule(static)
    for (int kb = 0; kb < p->nkb; kb++)
        for (int cbk = 0; cbk < ncb; cbk++) {
            int j0 = cbk * 16, nj = J - j0 < 16 ? J - j0 : 16;
            __m512i idx[NV];
            __mmask16 m[NV];
            for (int v = 0; v < NV; v++) {
                int n = N - kb * KB - 16 * v;
                m[v] = n >= 16 ? 0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
                idx[v] = _mm512_mullo_epi32(
                    _mm512_add_epi32(_mm512_set1_epi32(16 * v),
                                     _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)),
                    _mm512_set1_epi32((int)sn));
            }
            const float *src = w + (size_t)kb * KB * sn + (size_t)j0 * sj;
            float *d = wp + (size_t)kb * RS * J * KB;
            for (int jj = 0; jj < nj; jj++)
                for (int t = 0; t < RS; t++) {
                    float *dl = d + ((size_t)t * J + j0 + jj) * KB;
#pragma GCC unroll 4
                    for (int v = 0; v < NV; v++)
                        _mm512_store_ps(dl + 16 * v, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m[v], idx[v],
                                                                              src + jj * sj + (flip ? RS - 1 - t : t), 4));
                }
        }
}

void conv_small_pack(const ConvSmall *p, float *wp, const float *w) { pack(p, wp, w, p->sn, p->sj, 0); }

void conv_small_pack_flipped(const ConvSmall *p, float *wp, const float *w) {
    SC_ASSERT(!p->bwd);
    /* W'(n, j, t) = w(j, n, RS-1-t), w of shape (nred, nout, R, S) */
    pack(p, wp, w, (size_t)p->taps, (size_t)p->nout * p->taps, 1);
}

/* One tile: MR images (image i's input span at x + i*xstr, its output row at o + i*ostr) x the
 * KB output channels of the packed weights w (nc lines of KB floats), over nc channels: the sums
 * (first: from 0, else from o) += x . w. MR is a constant at every call. */
TGT static inline __attribute__((always_inline)) void tile(const int MR, float *o, size_t ostr,
                                                           const float *x, size_t xstr,
                                                           const float *w, int nc, int first,
                                                           const __mmask16 *km, const float *nx,
                                                           int pf) {
    __m512 acc[MR_MAX][NV];
    const float *xi[MR_MAX];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
        xi[i] = x + i * xstr;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[i][v] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(km[v], o + i * ostr + 16 * v);
    }
    for (int c0 = 0; c0 < nc; c0 += 16) {
        /* one line of each image's input span per 16 channels: the next tile's (pf 1: to L1,
         * 2: to L2), or this tile's 4 lines ahead (pf 3) */
        if (pf == 1 && nx) {
#pragma GCC unroll 8
            for (int i = 0; i < MR; i++) _mm_prefetch((const char *)(nx + i * xstr + c0), _MM_HINT_T0);
        } else if (pf == 2 && nx) {
#pragma GCC unroll 8
            for (int i = 0; i < MR; i++) _mm_prefetch((const char *)(nx + i * xstr + c0), _MM_HINT_T1);
        } else if (pf == 3) {
#pragma GCC unroll 8
            for (int i = 0; i < MR; i++) _mm_prefetch((const char *)(xi[i] + c0 + 64), _MM_HINT_T0);
        }
        int c1 = c0 + 16 < nc ? c0 + 16 : nc;
        for (int c = c0; c < c1; c++) {
            __m512 wv[NV];
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) wv[v] = _mm512_load_ps(w + (size_t)c * KB + 16 * v);
#pragma GCC unroll 8
            for (int i = 0; i < MR; i++) {
                __m512 b = _mm512_set1_ps(xi[i][c]);
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(wv[v], b, acc[i][v]);
            }
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) _mm512_mask_storeu_ps(o + i * ostr + 16 * v, km[v], acc[i][v]);
}

TGT static void tile_any(int mr, float *o, size_t ostr, const float *x, size_t xstr,
                         const float *w, int nc, int first, const __mmask16 *km,
                         const float *nx, int pf) {
    switch (mr) {
    case 1: tile(1, o, ostr, x, xstr, w, nc, first, km, nx, pf); break;
    case 2: tile(2, o, ostr, x, xstr, w, nc, first, km, nx, pf); break;
    case 3: tile(3, o, ostr, x, xstr, w, nc, first, km, nx, pf); break;
    case 4: tile(4, o, ostr, x, xstr, w, nc, first, km, nx, pf); break;
    case 5: tile(5, o, ostr, x, xstr, w, nc, first, km, nx, pf); break;
    case 6: tile(6, o, ostr, x, xstr, w, nc, first, km, nx, pf); break;
    default: tile(7, o, ostr, x, xstr, w, nc, first, km, nx, pf); break;
    }
}

TGT static void unit_run(const ConvSmall *p, float *out, const float *in, const float *wp,
                         long u) {
    const ConvShape *s = &p->s;
    const int K = p->nout, C = p->nred, kb = (int)(u / p->npos), pos = (int)(u % p->npos);
    const int k0 = kb * KB, nk = K - k0 < KB ? K - k0 : KB;
    const size_t ostr = (size_t)p->npos * K, xstr = p->xstr;
    __mmask16 km[NV];
    for (int v = 0; v < NV; v++) {
        int n = nk - 16 * v;
        km[v] = n >= 16 ? 0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
    }
    float *ob = out + (size_t)pos * K + k0;
    if (!p->ntap[pos]) { /* no tap inside the map (padding wider than the kernel): zeros */
        for (int b = 0; b < s->B; b++) memset(ob + b * ostr, 0, sizeof(float) * nk);
        return;
    }
    for (int ti = 0; ti < p->ntap[pos]; ti++) {
        int t = p->tap[pos * p->taps + ti];
        const float *wt = wp + ((size_t)kb * p->taps + t) * C * KB;
        const float *xt = in + p->xoff[pos * p->taps + ti];
        for (int c0 = 0; c0 < C; c0 += p->cb) {
            int nc = C - c0 < p->cb ? C - c0 : p->cb, first = ti == 0 && c0 == 0;
            for (int g = 0; g < p->ngrp; g++) {
                int b0 = p->grp[g];
                /* the next tile's input: the next group's, else the next tap's first group */
                const float *nx = NULL;
                if (g + 1 < p->ngrp) nx = xt + p->grp[g + 1] * xstr + c0;
                else if (c0 + p->cb < C) nx = xt + c0 + p->cb;
                else if (ti + 1 < p->ntap[pos]) nx = in + p->xoff[pos * p->taps + ti + 1];
                tile_any(p->grp[g + 1] - b0, ob + b0 * ostr, ostr, xt + b0 * xstr + c0, xstr,
                         wt + (size_t)c0 * KB, nc, first, km, nx, p->pf);
            }
        }
    }
}

void conv_small_run(const ConvSmall *p, float *out, const float *in, const float *wp) {
    long nunits = (long)p->nkb * p->npos, total = p->wsum[nunits];
#pragma omp parallel
    {
        /* thread tid: the units whose middle of work falls into its share of the total */
        int nth = omp_get_num_threads(), tid = omp_get_thread_num();
        for (long u = 0; u < nunits; u++) {
            long mid2 = p->wsum[u] + p->wsum[u + 1]; /* twice the middle */
            if (mid2 * nth / (2 * total) == tid) unit_run(p, out, in, wp, u);
        }
    }
}
