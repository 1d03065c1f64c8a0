/* conv_wgrad.c - fp32 weight gradient on channels-last activations, AVX-512, deterministic by
 * construction (see conv_wgrad.h).
 *
 * Work: tiles of (output-channel block kb of KB channels, kernel row r, MR joint columns j0..)
 * in that order; each thread takes a fixed contiguous range of tiles and walks the blocks of
 * output rows in order, keeping a tile's sums in registers within a block and in T between
 * blocks (exact float stores and loads: the blocking never changes a bit). While a block runs,
 * each thread prefetches the next block's d_out rows and input rows into its L2, a few lines
 * per row of pixels, so that the first tile of the next block does not wait for memory. */
#include "conv_wgrad.h"

#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "common.h"

#define NV 4              /* zmm vectors of output channels per tile */
#define KB (16 * NV)      /* output channels per tile */
#define MR_MAX 7          /* joint columns per tile, at most (28 accumulators + 4 dY vectors) */
#define LIST_PIXELS 64    /* maps of at most this many output pixels walk per-image pixel lists */

#define TGT __attribute__((target("avx512f")))

int conv_wgrad_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}


struct ConvWgrad {
    ConvShape s;
    int SC, mr, njt, nkb;
    int parts; /* fixed batch parts, each with its own partial sums (wgrad_parts) */
    long rows_blk; /* output rows (b*OH + oh) per block; a multiple of OH with lists */
    /* small maps: for every tap (r, q), the pixels of one image whose tap is inside the map, in
     * (oh, ow) order, as (offset into d_out, offset into in) pairs relative to the image */
    int *lst, *lst_off, *lst_n;
    int pf_hint;
};

static int env_int(const char *name, int def, int lo, int hi) {
    const char *e = getenv(name);
    int v = e ? atoi(e) : def;
    return v < lo ? lo : v > hi ? hi : v;
}

/* 6 or 7 columns a tile, whichever leaves fewer idle columns (the stem's 21: 7; 6 on ties:
 * 28 accumulators leave no register spare, 24 do) */
static int mr_default(int SC) { return (SC + 6) / 7 * 7 < (SC + 5) / 6 * 6 ? 7 : 6; }

/* Batch parts: the batch cut into 2 fixed parts, each reduced into its own partial sums, added
 * in order at the end: still independent of the thread count (the parts are fixed), and on 2
 * threads each reads only its half of d_out and of the input. For the shapes where it was
 * measured faster (doc/core.md): few tiles (the stem: 21, which 2 threads cannot share evenly,
 * 11 against 10) and the strided convs with at most 2 output-channel blocks (layer2.0.conv1),
 * where both threads would otherwise stream the whole (4x larger) input; with more channel
 * blocks (layer3.0.conv1) it was slower. SIMCLR_CONV_WGRAD_PARTS overrides (experiments). */
#define FEW_TILES 64
static int wgrad_parts(const ConvShape *s) {
    long SC = (long)s->S * s->C, mr = mr_default((int)SC), nkb = (s->K + KB - 1) / KB;
    long ntiles = nkb * s->R * ((SC + mr - 1) / mr);
    int def = ntiles < FEW_TILES || (s->stride > 1 && nkb <= 2) ? 2 : 1;
    int np = env_int("SIMCLR_CONV_WGRAD_PARTS", def, 1, 8);
    return np < s->B ? np : s->B;
}

size_t conv_wgrad_tmp_floats(const ConvShape *s) {
    return (size_t)wgrad_parts(s) * s->K * s->C * s->R * s->S;
}

int conv_wgrad_out_lo(int pad, int stride, int q) {
    int t = pad - q;
    return t <= 0 ? 0 : (t + stride - 1) / stride;
}
int conv_wgrad_out_hi(int W, int OW, int pad, int stride, int q) {
    int t = W - 1 + pad - q;
    if (t < 0) return -1;
    t /= stride;
    return t < OW - 1 ? t : OW - 1;
}
void conv_wgrad_tap_lists(const ConvShape *s, int dstride, int **lst, int **off, int **cnt) {
    int taps = s->R * s->S, npix = s->OH * s->OW;
    *off = sc_alloc(sizeof(int) * taps);
    *cnt = sc_alloc(sizeof(int) * taps);
    *lst = sc_alloc(sizeof(int) * 2 * taps * npix);
    int n = 0;
    for (int r = 0; r < s->R; r++)
        for (int q = 0; q < s->S; q++) {
            (*off)[r * s->S + q] = 2 * n;
            int c0 = n;
            for (int oh = 0; oh < s->OH; oh++) {
                int ih = oh * s->stride - s->pad + r;
                if (ih < 0 || ih >= s->H) continue;
                for (int ow = 0; ow < s->OW; ow++) {
                    int iw = ow * s->stride - s->pad + q;
                    if (iw < 0 || iw >= s->W) continue;
                    (*lst)[2 * n] = (oh * s->OW + ow) * dstride;
                    /* x of column j (tap q): in[image + (ih*W + iw)*C + j - q*C] */
                    (*lst)[2 * n + 1] = ((ih * s->W) + ow * s->stride - s->pad) * s->C;
                    n++;
                }
            }
            (*cnt)[r * s->S + q] = n - c0;
        }
}

ConvWgrad *conv_wgrad_create(const ConvShape *s) {
    if (s->dt != DT_F32 || !conv_wgrad_supported()) return NULL;
    ConvWgrad *p = sc_alloc(sizeof *p);
    p->s = *s;
    p->SC = s->S * s->C;
    p->mr = env_int("SIMCLR_CONV_WGRAD_MR", mr_default(p->SC), 1, MR_MAX);
    p->parts = wgrad_parts(s);
    p->njt = (p->SC + p->mr - 1) / p->mr;
    p->nkb = (s->K + KB - 1) / KB;
    p->pf_hint = env_int("SIMCLR_CONV_WGRAD_PF", 1, 0, 3);
    /* 512 output pixels a block (a d_out slab of 128 KB per channel block), 256 when strided
     * (4x the input per output pixel) */
    long bpix = env_int("SIMCLR_CONV_WGRAD_BLOCK", s->stride > 1 ? 256 : 512, 1, 1 << 30);
    int npix = s->OH * s->OW;
    if (npix <= LIST_PIXELS) {
        long imgs = bpix / npix > 0 ? bpix / npix : 1;
        p->rows_blk = imgs * s->OH;
        conv_wgrad_tap_lists(s, s->K, &p->lst, &p->lst_off, &p->lst_n);
    } else
        p->rows_blk = bpix / s->OW > 0 ? bpix / s->OW : 1;
    return p;
}

void conv_wgrad_free(ConvWgrad *p) {
    if (!p) return;
    sc_free(p->lst), sc_free(p->lst_off), sc_free(p->lst_n);
    sc_free(p);
}

/* ---- prefetch of the next block ------------------------------------------------------------ */

typedef struct {
    /* d_out: npix pixels of dstride bytes from d, nl lines each */
    const char *d;
    long npix, dstride, pix;
    int nl, line;
    /* input: the rows that the output rows [orow, orow_end) read, each once; within a row, items
     * of ibytes at stride istride (the whole row as one item when S >= stride) */
    const ConvShape *s;
    const char *in, *ip;
    long orow, orow_end, b, items, item, istride, ibytes, off;
    int ih, ih_end, ih_done;
    int quota, hint;
} Pf;

static const char *pf_next_x(Pf *pf) {
    const ConvShape *s = pf->s;
    for (;;) {
        if (pf->item < pf->items) {
            const char *a = pf->ip + pf->item * pf->istride + pf->off;
            pf->off += 64;
            if (pf->off >= pf->ibytes) pf->off = 0, pf->item++;
            return a;
        }
        if (pf->ih <= pf->ih_end) { /* the next input row of this output row */
            int ih = pf->ih++;
            pf->ih_done = ih;
            pf->ip = pf->in + ((size_t)pf->b * s->H + ih) * s->W * s->C * 4;
            pf->item = pf->off = 0;
            if (s->S >= s->stride) {
                pf->items = 1, pf->ibytes = (long)s->W * s->C * 4, pf->istride = 0;
            } else { /* only the pixels the taps reach (strided 1x1: every other one) */
                int o0 = conv_wgrad_out_lo(s->pad, s->stride, 0),
                    o1 = conv_wgrad_out_hi(s->W, s->OW, s->pad, s->stride, s->S - 1);
                pf->items = o1 - o0 + 1;
                pf->ip += (ptrdiff_t)(o0 * s->stride - s->pad) * s->C * 4;
                pf->istride = (long)s->stride * s->C * 4, pf->ibytes = (long)s->S * s->C * 4;
            }
            continue;
        }
        if (pf->orow >= pf->orow_end) return NULL;
        long b = pf->orow / s->OH;
        int oh = (int)(pf->orow % s->OH), lo = oh * s->stride - s->pad;
        pf->orow++;
        int ih0 = lo < 0 ? 0 : lo;
        if (b == pf->b && ih0 <= pf->ih_done) ih0 = pf->ih_done + 1;
        pf->b = b, pf->ih = ih0;
        pf->ih_end = lo + s->R - 1 < s->H - 1 ? lo + s->R - 1 : s->H - 1;
    }
}

TGT static inline __attribute__((always_inline)) void pf_step(Pf *pf) {
    for (int n = pf->quota; n > 0; n--) {
        const char *a;
        if (pf->pix < pf->npix) {
            a = pf->d + pf->pix * pf->dstride + pf->line * 64;
            if (++pf->line == pf->nl) pf->line = 0, pf->pix++;
        } else if (!(a = pf_next_x(pf))) {
            pf->quota = 0;
            return;
        }
        if (pf->hint == 1) _mm_prefetch(a, _MM_HINT_T1);
        else if (pf->hint == 2) _mm_prefetch(a, _MM_HINT_T0);
        else _mm_prefetch(a, _MM_HINT_NTA);
    }
}

/* ---- the tile kernel ----------------------------------------------------------------------- */

typedef struct {
    const ConvWgrad *p;
    const float *d_out, *in;
    float *T; /* (R, S*C, K): the tiles' sums, row jj = r * S*C + j */
} Run;

/* One tile: joint columns [j0, j0 + MR) of kernel row r x output channels [kb*KB, kb*KB + KB),
 * over the output rows (b*OH + oh) [row0, row1): T's rows of the tile += (or, first, =) the sum,
 * pixels in (b, oh, ow) order. MR is a constant at every call (the sums live in registers). */
TGT static inline __attribute__((always_inline)) void tile(const int MR, const Run *ru, int kb,
                                                           int r, int j0, long row0, long row1,
                                                           int first, Pf *pf) {
    const ConvWgrad *p = ru->p;
    const ConvShape *s = &p->s;
    const int K = s->K, C = s->C, st = s->stride, OW = s->OW, OH = s->OH;
    const int k0 = kb * KB;
    __mmask16 km[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
        int n = K - k0 - 16 * v;
        km[v] = n >= 16 ? 0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
    }
    float *trow = ru->T + ((size_t)r * p->SC + j0) * K + k0;
    __m512 acc[MR_MAX][NV];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[i][v] = first ? _mm512_setzero_ps()
                              : _mm512_maskz_loadu_ps(km[v], trow + (size_t)i * K + 16 * v);

/* acc += x[0..MR) (broadcast) outer d[0..KB) */
#define STEP(d, x)                                                                               \
    do {                                                                                         \
        const float *d_ = (d), *x_ = (x);                                                        \
        __m512 dv_[NV];                                                                          \
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) dv_[v] =                            \
            _mm512_maskz_loadu_ps(km[v], d_ + 16 * v);                                           \
        _Pragma("GCC unroll 8") for (int i = 0; i < MR; i++) {                                   \
            __m512 xb_ = _mm512_set1_ps(x_[i]);                                                  \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[i][v] =                     \
                _mm512_fmadd_ps(dv_[v], xb_, acc[i][v]);                                         \
        }                                                                                        \
    } while (0)

    int slo = j0 / C, shi = (j0 + MR - 1) / C;
    if (p->lst && slo == shi) {
        /* small map, every column of the tile on one tap: the image's pixel list */
        const int *L = p->lst + p->lst_off[r * s->S + slo];
        int n = p->lst_n[r * s->S + slo];
        size_t dimg = (size_t)OH * OW * K, ximg = (size_t)s->H * s->W * C;
        for (long b = row0 / OH; b < row1 / OH; b++) {
            pf_step(pf);
            const float *db = ru->d_out + b * dimg + k0, *xb = ru->in + b * ximg + j0;
            for (int e = 0; e < n; e++) STEP(db + L[2 * e], xb + L[2 * e + 1]);
        }
    } else {
        /* pixels where every column of the tile is inside the map, and where at least one is */
        int all_lo = conv_wgrad_out_lo(s->pad, st, slo), all_hi = conv_wgrad_out_hi(s->W, OW, s->pad, st, shi);
        int any_lo = conv_wgrad_out_lo(s->pad, st, shi), any_hi = conv_wgrad_out_hi(s->W, OW, s->pad, st, slo);
        int oh_lo = conv_wgrad_out_lo(s->pad, st, r), oh_hi = conv_wgrad_out_hi(s->H, OH, s->pad, st, r);
        for (long row = row0; row < row1;) {
            long b = row / OH;
            int oh = (int)(row - b * OH);
            long rend = (b + 1) * OH < row1 ? (b + 1) * OH : row1;
            int h0 = oh > oh_lo ? oh : oh_lo, h1 = (int)(oh + (rend - row) - 1);
            if (h1 > oh_hi) h1 = oh_hi;
            for (int h = h0; h <= h1; h++) {
                pf_step(pf);
                int ih = h * st - s->pad + r;
                /* x of pixel ow, column j0 + i: in[xbase + ow*st*C + i] (when inside the map) */
                ptrdiff_t xbase = ((ptrdiff_t)b * s->H + ih) * s->W * C - (ptrdiff_t)s->pad * C + j0;
                const float *dr = ru->d_out + ((size_t)b * OH + h) * OW * K + k0;
                if (slo == shi) {
                    const float *x = ru->in + xbase + (ptrdiff_t)all_lo * st * C;
                    const float *d = dr + (size_t)all_lo * K;
                    for (int ow = all_lo; ow <= all_hi; ow++, x += st * C, d += K) STEP(d, x);
                    continue;
                }
                int ow = any_lo;
                while (ow <= any_hi) {
                    if (ow >= all_lo && ow <= all_hi) {
                        for (; ow <= all_hi; ow++)
                            STEP(dr + (size_t)ow * K, ru->in + xbase + (ptrdiff_t)ow * st * C);
                    } else { /* a border pixel: the columns whose tap is outside add nothing */
                        int iw0 = ow * st - s->pad;
                        float xv[MR_MAX];
#pragma GCC unroll 8
                        for (int i = 0; i < MR; i++) {
                            int iw = iw0 + (j0 + i) / C;
                            xv[i] = iw >= 0 && iw < s->W ? ru->in[xbase + (ptrdiff_t)ow * st * C + i] : 0.0f;
                        }
                        /* adding 0 * d leaves a finite sum unchanged: skipping is not needed */
                        STEP(dr + (size_t)ow * K, xv);
                        ow++;
                    }
                }
            }
            row = rend;
        }
    }
#undef STEP
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) _mm512_mask_storeu_ps(trow + (size_t)i * K + 16 * v, km[v], acc[i][v]);
}

TGT static void tile_any(int mr, const Run *ru, int kb, int r, int j0, long row0, long row1,
                         int first, Pf *pf) {
    switch (mr) {
    case 1: tile(1, ru, kb, r, j0, row0, row1, first, pf); break;
    case 2: tile(2, ru, kb, r, j0, row0, row1, first, pf); break;
    case 3: tile(3, ru, kb, r, j0, row0, row1, first, pf); break;
    case 4: tile(4, ru, kb, r, j0, row0, row1, first, pf); break;
    case 5: tile(5, ru, kb, r, j0, row0, row1, first, pf); break;
    case 6: tile(6, ru, kb, r, j0, row0, row1, first, pf); break;
    default: tile(7, ru, kb, r, j0, row0, row1, first, pf); break;
    }
}

/* what a thread with tiles [t0, t1) reads in the block of rows [row0, row1): d_out's rows (its
 * channel blocks only) and the input rows the windows cover; quota: lines per call of pf_step */
static void pf_plan(Pf *pf, const Run *ru, long t0, long t1, long row0, long row1) {
    const ConvWgrad *p = ru->p;
    const ConvShape *s = &p->s;
    memset(pf, 0, sizeof *pf);
    pf->hint = p->pf_hint;
    if (row0 >= row1 || t0 >= t1 || !p->pf_hint) return;
    long per_kb = (long)s->R * p->njt;
    int kb0 = (int)(t0 / per_kb), kb1 = (int)((t1 - 1) / per_kb);
    long k0 = (long)kb0 * KB, k1 = (long)(kb1 + 1) * KB < s->K ? (long)(kb1 + 1) * KB : s->K;
    pf->d = (const char *)(ru->d_out + row0 * s->OW * s->K + k0);
    pf->npix = (row1 - row0) * s->OW;
    pf->dstride = (long)s->K * 4;
    pf->nl = (int)((k1 - k0) * 4 + 63) / 64;
    pf->s = s, pf->in = (const char *)ru->in;
    pf->orow = row0, pf->orow_end = row1, pf->b = -1, pf->ih = 1, pf->ih_end = 0, pf->ih_done = -1;
    long rowbytes = s->S >= s->stride ? (long)s->W * s->C * 4 : (long)s->OW * s->S * s->C * 4;
    long lines = pf->npix * pf->nl + (row1 - row0) * (s->R < s->stride ? s->R : s->stride) * rowbytes / 64;
    /* calls: one per valid row (or image) of every tile; aim to finish in the first half */
    long calls = (t1 - t0) * (p->lst ? (row1 - row0) / s->OH : (row1 - row0) * s->R / (s->R + 2 * s->pad));
    if (calls < 1) calls = 1;
    pf->quota = (int)(2 * lines / calls + 1);
}

/* d_w (K,C,R,S) += T (R,S,C,K): 16 consecutive positions (c,r,q) of a row of d_w at a time,
 * gathered from 16 rows of T (which stay in L1 while k runs). The line of d_w that each k reads
 * and writes is a row of d_w (C*R*S floats, 18 KB on layer4) from the previous one, a pattern no
 * hardware prefetcher follows: each k prefetches its line of the block of positions 2 ahead
 * (without it, layer4's 3x3 took 5.2-6.0 ms of CPU, with it 1.8, caches flushed; the order of
 * the bf16 kernel's version, 16 channels outermost, moves the scattered reads to T: 6.5) */
TGT static void add_transposed(float *d_w, const float *T, const ConvShape *s, int SC, int parts) {
    size_t tn = (size_t)s->K * s->C * s->R * s->S; /* floats of one part's sums */
    int K = s->K, RS = s->R * s->S, CRS = s->C * RS, npb = (CRS + 15) / 16;
#pragma omp parallel for schedule(static)
    for (int pb = 0; pb < npb; pb++) {
        int pos0 = pb * 16, n = CRS - pos0 < 16 ? CRS - pos0 : 16;
        int idx[16] = {0};
        for (int i = 0; i < n; i++) {
            int pos = pos0 + i, c = pos / RS, rq = pos % RS, r = rq / s->S, q = rq % s->S;
            idx[i] = (r * SC + q * s->C + c) * K;
        }
        __m512i vi = _mm512_loadu_si512(idx);
        __mmask16 m = (__mmask16)((1u << n) - 1);
        int ahead = pos0 + 32 < CRS ? 32 : 0;
        for (int k = 0; k < K; k++) {
            float *d = d_w + (size_t)k * CRS + pos0;
            _mm_prefetch((const char *)(d + ahead), _MM_HINT_T0);
            __m512 g = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, vi, T + k, 4);
            for (int q = 1; q < parts; q++) /* the parts' sums in order */
                g = _mm512_add_ps(g, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, vi, T + q * tn + k, 4));
            _mm512_mask_storeu_ps(d, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, d), g));
        }
    }
}

void conv_wgrad_run(const ConvWgrad *p, float *d_w, const float *d_out, const float *in,
                    float *tmp) {
    const ConvShape *s = &p->s;
    Run ru = {.p = p, .d_out = d_out, .in = in, .T = tmp};
    long rows_blk = p->rows_blk;
    long per_kb = (long)s->R * p->njt, ntiles = (long)p->nkb * per_kb;
    /* work units (batch part, tile), tiles in (output-channel block, r, joint-column block)
     * order, a contiguous range per thread; each thread walks the blocks of rows of a part in
     * order over its own tiles */
    long nunits = ntiles * p->parts;
    size_t tn = (size_t)s->K * s->C * s->R * s->S;
#pragma omp parallel
    {
        int nth = omp_get_num_threads(), tid = omp_get_thread_num();
        long u0 = nunits * tid / nth, u1 = nunits * (tid + 1) / nth;
        for (int part = (int)(u0 / ntiles); part < p->parts && (long)part * ntiles < u1; part++) {
            long t0 = u0 > part * ntiles ? u0 - part * ntiles : 0;
            long t1 = u1 < (part + 1) * ntiles ? u1 - part * ntiles : ntiles;
            long r0 = (long)s->B * part / p->parts * s->OH, r1 = (long)s->B * (part + 1) / p->parts * s->OH;
            Run rp = ru;
            rp.T = tmp + part * tn;
            for (long row0 = r0; row0 < r1; row0 += rows_blk) {
                long row1 = row0 + rows_blk < r1 ? row0 + rows_blk : r1;
                Pf pf; /* the next block */
                pf_plan(&pf, &rp, t0, t1, row1, row1 + rows_blk < r1 ? row1 + rows_blk : r1);
                for (long t = t0; t < t1; t++) {
                    int kb = (int)(t / per_kb), rem = (int)(t % per_kb);
                    int r = rem / p->njt, j0 = (rem % p->njt) * p->mr;
                    int mr = p->SC - j0 < p->mr ? p->SC - j0 : p->mr;
                    tile_any(mr, &rp, kb, r, j0, row0, row1, row0 == r0, &pf);
                }
            }
        }
    }
    add_transposed(d_w, tmp, s, p->SC, p->parts);
}
