/* wgrad_bf16.c - the bf16 weight gradient on AVX512-BF16 dot products over image pairs (see
 * wgrad_bf16.h).
 *
 * Work: tiles of (output-channel block kb of KB channels, kernel row r, MR joint columns j0..) in
 * that order; each thread takes a fixed contiguous range of tiles and walks the blocks of output
 * rows in order: it packs the block's input rows (all channels) once, then for each of its channel
 * blocks the block's d_out, and runs its tiles of that channel block over them, keeping a tile's
 * sums in registers within a block and in T between blocks. */
#include "wgrad_bf16.h"

#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "common.h"
#include "conv_wgrad.h"
#include "peak.h"

#define NV 4             /* zmm vectors of output channels per tile */
#define KB (16 * NV)     /* output channels per tile (and per packed d_out block) */
/* joint columns per tile: 24 accumulators (7 columns' 28 left no register for the d_out vectors and
 * the broadcast: GCC spilled, and the stem ran at 53% of the peak instead of 57% with 6) */
#define MR_MAX 6
#define LIST_PIXELS 64   /* maps of at most this many output pixels walk per-image pixel lists */
#define BLOCK_PAIRS 512  /* pair pixels of output per block, at most */
#define XBLOCK_BYTES (384 * 1024) /* a thread's packed input rows of one block, at most */

/* the intrinsics are compiled for these instructions whatever -march says; they run only where
 * wgrad_bf16_create found them */
#define TGT __attribute__((target("avx512f,avx512bw,avx512bf16")))

int wgrad_bf16_usable(const ConvShape *s) {
    if (s->dt != DT_BF16 || !peak_cpu_has_bf16()) return 0;
    const char *e = getenv("SIMCLR_CONV_WGRAD");
    if (e && !strcmp(e, "dnnl")) return 0;
    if (e && !strcmp(e, "own")) return 1;
    /* where it beats oneDNN's kernel run on fixed batch chunks and the GEMM path (doc/core.md):
     * every conv but the 1x1 ones on maps larger than the GEMM path's */
    return s->R > 1 || (long)s->OH * s->OW <= 16;
}

struct WgradBf16 {
    ConvShape s;
    int SC, mr, njt, nkb, nth;
    int B2;       /* pair images */
    int imgs;     /* > 0: blocks of this many whole pair images; 0: blocks of rows of one image */
    int rows;     /* output rows per block (OH when imgs > 0) */
    int nblk;     /* blocks in all */
    size_t xfloats, dfloats, thread_bytes; /* one thread's packed blocks (u32 units) and bytes */
    /* small maps: for every tap (r, q), the pixels of one image whose tap is inside the map, in
     * (oh, ow) order, as (offset into a packed d_out image, offset into a packed input image)
     * pairs of u32 units */
    int *lst, *lst_off, *lst_n;
    int *tidx; /* (C, R, S): where each position of a row of d_w sits in its channel block of T */
    size_t tfloats; /* T's size */
};

/* A block: pair images [bp0, bp0 + nbp), output rows [oh0, oh1) of each, and the input rows
 * [ih0, ih0 + nr) their windows read (nr <= 0: none). */
typedef struct {
    int bp0, nbp, oh0, oh1, ih0, nr;
} Blk;

static void blk_at(Blk *k, const WgradBf16 *p, int i) {
    const ConvShape *s = &p->s;
    if (p->imgs) {
        k->bp0 = i * p->imgs;
        k->nbp = p->B2 - k->bp0 < p->imgs ? p->B2 - k->bp0 : p->imgs;
        k->oh0 = 0, k->oh1 = s->OH;
    } else {
        int per = (s->OH + p->rows - 1) / p->rows;
        k->bp0 = i / per, k->nbp = 1;
        k->oh0 = i % per * p->rows;
        k->oh1 = k->oh0 + p->rows < s->OH ? k->oh0 + p->rows : s->OH;
    }
    int lo = k->oh0 * s->stride - s->pad, hi = (k->oh1 - 1) * s->stride - s->pad + s->R - 1;
    k->ih0 = lo < 0 ? 0 : lo;
    k->nr = (hi < s->H - 1 ? hi : s->H - 1) - k->ih0 + 1;
}

/* u32 units of the packed input rows of a block of `imgs` pair images of `rows` output rows */
static size_t x_units(const ConvShape *s, int imgs, int rows) {
    long nr = (long)(rows - 1) * s->stride + s->R;
    if (nr > s->H) nr = s->H;
    return (size_t)imgs * nr * s->W * s->C;
}

WgradBf16 *wgrad_bf16_create(const ConvShape *s) {
    if (s->dt != DT_BF16 || !peak_cpu_has_bf16()) return NULL;
    WgradBf16 *p = sc_alloc(sizeof *p);
    memset(p, 0, sizeof *p);
    p->s = *s;
    p->SC = s->S * s->C;
    p->mr = MR_MAX;
    p->njt = (p->SC + p->mr - 1) / p->mr;
    p->nkb = (s->K + KB - 1) / KB;
    p->nth = omp_get_max_threads();
    p->B2 = (s->B + 1) / 2;
    /* blocks: whole pair images where they fit BLOCK_PAIRS (or the map is small), else rows of
     * one image, balanced; either way the packed input rows at most XBLOCK_BYTES where possible */
    int npix = s->OH * s->OW, bpix = s->stride > 1 ? BLOCK_PAIRS / 2 : BLOCK_PAIRS;
    if (npix <= bpix || npix <= LIST_PIXELS) {
        p->imgs = bpix / npix > 0 ? bpix / npix : 1;
        while (p->imgs > 1 && 4 * x_units(s, p->imgs, s->OH) > XBLOCK_BYTES) p->imgs--;
        if (p->imgs > p->B2) p->imgs = p->B2;
        p->rows = s->OH;
        p->nblk = (p->B2 + p->imgs - 1) / p->imgs;
    } else {
        int per = (npix + bpix - 1) / bpix;
        p->rows = (s->OH + per - 1) / per;
        while (p->rows > 1 && 4 * x_units(s, 1, p->rows) > XBLOCK_BYTES) p->rows = (p->rows + 1) / 2;
        p->nblk = p->B2 * ((s->OH + p->rows - 1) / p->rows);
    }
    int imgs = p->imgs ? p->imgs : 1;
    p->xfloats = (x_units(s, imgs, p->rows) + 15) & ~(size_t)15;
    p->dfloats = (size_t)imgs * p->rows * s->OW * KB;
    p->thread_bytes = 4 * (p->xfloats + p->dfloats);
    int CRS = s->C * s->R * s->S, RS = s->R * s->S;
    p->tidx = sc_alloc(sizeof(int) * CRS);
    for (int pos = 0; pos < CRS; pos++) {
        int c = pos / RS, rq = pos % RS, r = rq / s->S, j = rq % s->S * s->C + c;
        p->tidx[pos] = ((r * p->njt + j / p->mr) * p->mr + j % p->mr) * KB;
    }
    p->tfloats = (size_t)p->nkb * s->R * p->njt * p->mr * KB;
    if (npix <= LIST_PIXELS) conv_wgrad_tap_lists(s, KB, &p->lst, &p->lst_off, &p->lst_n);
    return p;
}

void wgrad_bf16_free(WgradBf16 *p) {
    if (!p) return;
    sc_free(p->lst), sc_free(p->lst_off), sc_free(p->lst_n), sc_free(p->tidx);
    sc_free(p);
}

size_t wgrad_bf16_scratch_bytes(const WgradBf16 *p) { return (size_t)p->nth * p->thread_bytes + 64; }
size_t wgrad_bf16_tmp_floats(const WgradBf16 *p) { return p->tfloats; }

/* ---- packing ------------------------------------------------------------------------------- */

/* Interleaving two rows of 32 bf16 values a, b into (a0 b0 a1 b1 ...): the pairs of values 0-15
 * (lo) and 16-31 (hi); _mm512_permutex2var_epi16 reads indices 32-63 from b. */
static const uint16_t ILV_LO[32] __attribute__((aligned(64))) = {
    0, 32, 1, 33, 2, 34, 3, 35, 4, 36, 5, 37, 6, 38, 7, 39, 8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
static const uint16_t ILV_HI[32] __attribute__((aligned(64))) = {
    16, 48, 17, 49, 18, 50, 19, 51, 20, 52, 21, 53, 22, 54, 23, 55,
    24, 56, 25, 57, 26, 58, 27, 59, 28, 60, 29, 61, 30, 62, 31, 63};

/* dst[i] = (a[i], b[i]) as u32 for i < n (b NULL: zeros), and zeros for n <= i < nz (nz a
 * multiple of 16, or nz <= n) */
TGT static inline void ilv(uint32_t *dst, const uint16_t *a, const uint16_t *b, long n, long nz) {
    const __m512i lo_idx = _mm512_load_si512(ILV_LO), hi_idx = _mm512_load_si512(ILV_HI);
    long end = n > nz ? n : nz;
    for (long i = 0; i < end; i += 32) {
        long m = n - i < 0 ? 0 : n - i < 32 ? n - i : 32, e = end - i < 32 ? end - i : 32;
        __mmask32 lm = m == 32 ? 0xffffffffu : (__mmask32)((1u << m) - 1);
        __m512i va = _mm512_maskz_loadu_epi16(lm, a + i);
        __m512i vb = b ? _mm512_maskz_loadu_epi16(lm, b + i) : _mm512_setzero_si512();
        __m512i lo = _mm512_permutex2var_epi16(va, lo_idx, vb), hi = _mm512_permutex2var_epi16(va, hi_idx, vb);
        __mmask16 m0 = e >= 16 ? 0xffff : (__mmask16)((1u << e) - 1);
        __mmask16 m1 = e >= 32 ? 0xffff : e <= 16 ? 0 : (__mmask16)((1u << (e - 16)) - 1);
        _mm512_mask_storeu_epi32(dst + i, m0, lo);
        _mm512_mask_storeu_epi32(dst + i + 16, m1, hi);
    }
}

/* the block's input rows, all channels: (nbp, nr, W, C) pairs */
TGT static void pack_x(const WgradBf16 *p, const Blk *k, uint32_t *xb, const uint16_t *in) {
    const ConvShape *s = &p->s;
    if (k->nr <= 0) return;
    size_t img = (size_t)s->H * s->W * s->C, n = (size_t)k->nr * s->W * s->C;
    for (int i = 0; i < k->nbp; i++) {
        size_t b = 2 * (size_t)(k->bp0 + i);
        const uint16_t *a = in + b * img + (size_t)k->ih0 * s->W * s->C;
        ilv(xb + i * n, a, b + 1 < (size_t)s->B ? a + img : NULL, (long)n, 0);
    }
}

/* the block's d_out for output channels [kb*KB, kb*KB + KB): (nbp, oh1 - oh0, OW, KB) pairs,
 * zeros past K */
TGT static void pack_d(const WgradBf16 *p, const Blk *k, int kb, uint32_t *db, const uint16_t *dy) {
    const ConvShape *s = &p->s;
    size_t img = (size_t)s->OH * s->OW * s->K;
    long k0 = (long)kb * KB, kn = s->K - k0 < KB ? s->K - k0 : KB, npx = (long)(k->oh1 - k->oh0) * s->OW;
    for (int i = 0; i < k->nbp; i++) {
        size_t b = 2 * (size_t)(k->bp0 + i);
        const uint16_t *a = dy + b * img + (size_t)k->oh0 * s->OW * s->K + k0;
        const uint16_t *c = b + 1 < (size_t)s->B ? a + img : NULL;
        uint32_t *d = db + (size_t)i * npx * KB;
        if (kn == s->K && kn == KB) /* rows of the block are contiguous */
            ilv(d, a, c, npx * KB, 0);
        else
            for (long q = 0; q < npx; q++)
                ilv(d + q * KB, a + q * s->K, c ? c + q * s->K : NULL, kn, KB);
    }
}

/* ---- prefetch of the next block ------------------------------------------------------------ */

/* What the next block's packing reads (each image's input rows and d_out rows), brought into the
 * L2 cache a few lines per call of pf_step while the tiles of this block run: the packing then
 * reads from L2 instead of waiting for memory. */
typedef struct {
    const ConvShape *s;
    const uint16_t *d_out, *in;
    Blk k;
    size_t b, b1; /* images [b, b1) left */
    int phase;    /* 0: the input rows of image b next, 1: its d_out rows */
    const char *a, *e;
    int quota;
} Pf;

static void pf_plan(Pf *pf, const WgradBf16 *p, int bi, const uint16_t *d_out, const uint16_t *in, long calls) {
    const ConvShape *s = &p->s;
    memset(pf, 0, sizeof *pf);
    if (bi >= p->nblk) return;
    pf->s = s, pf->d_out = d_out, pf->in = in;
    blk_at(&pf->k, p, bi);
    pf->b = 2 * (size_t)pf->k.bp0, pf->b1 = 2 * (size_t)(pf->k.bp0 + pf->k.nbp);
    if (pf->b1 > (size_t)s->B) pf->b1 = s->B;
    size_t lines = (pf->b1 - pf->b) * (2 * (size_t)(pf->k.nr > 0 ? pf->k.nr : 0) * s->W * s->C +
                                       2 * (size_t)(pf->k.oh1 - pf->k.oh0) * s->OW * s->K) / 64;
    if (calls < 1) calls = 1;
    pf->quota = (int)(2 * lines / calls + 1);
}

static inline void pf_step(Pf *pf) {
    for (int n = pf->quota; n > 0; n--) {
        while (pf->a >= pf->e) {
            if (pf->b >= pf->b1) {
                pf->quota = 0;
                return;
            }
            const ConvShape *s = pf->s;
            if (pf->phase == 0) {
                size_t row = (size_t)s->W * s->C;
                pf->a = (const char *)(pf->in + (pf->b * s->H + pf->k.ih0) * row);
                pf->e = pf->a + 2 * (pf->k.nr > 0 ? pf->k.nr : 0) * row;
                pf->phase = 1;
            } else {
                size_t row = (size_t)s->OW * s->K;
                pf->a = (const char *)(pf->d_out + (pf->b * s->OH + pf->k.oh0) * row);
                pf->e = pf->a + 2 * (size_t)(pf->k.oh1 - pf->k.oh0) * row;
                pf->phase = 0, pf->b++;
            }
        }
        _mm_prefetch(pf->a, _MM_HINT_T1);
        pf->a += 64;
    }
}

/* ---- the tile kernel ----------------------------------------------------------------------- */

typedef struct {
    const WgradBf16 *p;
    const Blk *k;
    const uint32_t *x, *d; /* the packed block */
    float *T; /* the tiles' sums, tile after tile ((kb, r, joint-column block) order), each MR_tile x KB */
} Run;

/* One tile: joint columns [j0, j0 + MR) of kernel row r x output channels [kb*KB, kb*KB + KB),
 * over the block: T's rows of the tile += (or, first, =) the sum, pair pixels in (pair image, oh,
 * ow) order. MR is a constant at every call (the sums live in registers). */
TGT static inline __attribute__((always_inline)) void tile(const int MR, const Run *ru, int kb, int r, int j0,
                                                           int first, Pf *pf) {
    const WgradBf16 *p = ru->p;
    const ConvShape *s = &p->s;
    const Blk *bk = ru->k;
    const int C = s->C, st = s->stride, OW = s->OW, OH = s->OH;
    float *trow = ru->T + (((size_t)kb * s->R + r) * p->njt + j0 / p->mr) * p->mr * KB;
    __m512 acc[MR_MAX][NV];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[i][v] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(trow + i * KB + 16 * v);

/* acc += x[0..MR) (each pair broadcast) . d[0..KB) (pairs): one vdpbf16ps per accumulator */
#define STEP(d, x)                                                                               \
    do {                                                                                         \
        const uint32_t *d_ = (d), *x_ = (x);                                                     \
        __m512i dv_[NV];                                                                         \
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) dv_[v] = _mm512_load_si512(d_ + 16 * v); \
        _Pragma("GCC unroll 8") for (int i = 0; i < MR; i++) {                                   \
            __m512bh xb_ = (__m512bh)_mm512_set1_epi32((int)x_[i]);                              \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[i][v] =                     \
                _mm512_dpbf16_ps(acc[i][v], (__m512bh)dv_[v], xb_);                              \
        }                                                                                        \
    } while (0)

    int slo = j0 / C, shi = (j0 + MR - 1) / C;
    const int noh = bk->oh1 - bk->oh0;
    const size_t ximg = (size_t)(bk->nr > 0 ? bk->nr : 0) * s->W * C, dimg = (size_t)noh * OW * KB;
    if (p->lst && slo == shi) {
        /* small map, every column of the tile on one tap: the image's pixel list */
        const int *L = p->lst + p->lst_off[r * s->S + slo];
        int n = p->lst_n[r * s->S + slo];
        for (int b = 0; b < bk->nbp; b++) {
            pf_step(pf);
            const uint32_t *db = ru->d + b * dimg, *xb = ru->x + b * ximg + j0;
            for (int e = 0; e < n; e++) STEP(db + L[2 * e], xb + L[2 * e + 1]);
        }
    } else {
        /* pixels where every column of the tile is inside the map, and where at least one is */
        int all_lo = conv_wgrad_out_lo(s->pad, st, slo), all_hi = conv_wgrad_out_hi(s->W, OW, s->pad, st, shi);
        int any_lo = conv_wgrad_out_lo(s->pad, st, shi), any_hi = conv_wgrad_out_hi(s->W, OW, s->pad, st, slo);
        int oh_lo = conv_wgrad_out_lo(s->pad, st, r), oh_hi = conv_wgrad_out_hi(s->H, OH, s->pad, st, r);
        int h0 = bk->oh0 > oh_lo ? bk->oh0 : oh_lo, h1 = bk->oh1 - 1 < oh_hi ? bk->oh1 - 1 : oh_hi;
        for (int b = 0; b < bk->nbp; b++)
            for (int h = h0; h <= h1; h++) {
                pf_step(pf);
                int ih = h * st - s->pad + r;
                /* x of pixel ow, column j0 + i: x[xbase + ow*st*C + i] (when inside the map) */
                ptrdiff_t xbase = (ptrdiff_t)b * ximg + ((ptrdiff_t)(ih - bk->ih0) * s->W - s->pad) * C + j0;
                const uint32_t *dr = ru->d + b * dimg + (size_t)(h - bk->oh0) * OW * KB;
                if (slo == shi) {
                    const uint32_t *x = ru->x + xbase + (ptrdiff_t)all_lo * st * C;
                    const uint32_t *d = dr + (size_t)all_lo * KB;
                    for (int ow = all_lo; ow <= all_hi; ow++, x += st * C, d += KB) STEP(d, x);
                    continue;
                }
                int ow = any_lo;
                while (ow <= any_hi) {
                    if (ow >= all_lo && ow <= all_hi) {
                        for (; ow <= all_hi; ow++) STEP(dr + (size_t)ow * KB, ru->x + xbase + (ptrdiff_t)ow * st * C);
                    } else { /* a border pixel: the columns whose tap is outside add nothing */
                        int iw0 = ow * st - s->pad;
                        uint32_t xv[MR_MAX];
#pragma GCC unroll 8
                        for (int i = 0; i < MR; i++) {
                            int iw = iw0 + (j0 + i) / C;
                            xv[i] = iw >= 0 && iw < s->W ? ru->x[xbase + (ptrdiff_t)ow * st * C + i] : 0;
                        }
                        /* adding 0 * d leaves a finite sum unchanged: skipping is not needed */
                        STEP(dr + (size_t)ow * KB, xv);
                        ow++;
                    }
                }
            }
    }
#undef STEP
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) _mm512_storeu_ps(trow + i * KB + 16 * v, acc[i][v]);
}

TGT static void tile_any(int mr, const Run *ru, int kb, int r, int j0, int first, Pf *pf) {
    switch (mr) {
    case 1: tile(1, ru, kb, r, j0, first, pf); break;
    case 2: tile(2, ru, kb, r, j0, first, pf); break;
    case 3: tile(3, ru, kb, r, j0, first, pf); break;
    case 4: tile(4, ru, kb, r, j0, first, pf); break;
    case 5: tile(5, ru, kb, r, j0, first, pf); break;
    default: tile(6, ru, kb, r, j0, first, pf); break;
    }
}

/* d_w (K,C,R,S) += T (the tiles): for 16 output channels at a time, 16 consecutive positions
 * (c,r,q) of their rows of d_w, each gathered from the 16 tile rows that hold them (their lines
 * stay in L1 while the 16 channels run; d_w is written as 16 sequential streams) */
TGT static void add_transposed(float *d_w, const float *T, const WgradBf16 *p) {
    const ConvShape *s = &p->s;
    int K = s->K, CRS = s->C * s->R * s->S, npb = (CRS + 15) / 16, nk = (K + 15) / 16;
#pragma omp parallel for schedule(static)
    for (int kq = 0; kq < nk; kq++) {
        int k1 = 16 * kq + 16 < K ? 16 * kq + 16 : K;
        for (int pb = 0; pb < npb; pb++) {
            int pos0 = pb * 16, n = CRS - pos0 < 16 ? CRS - pos0 : 16;
            __mmask16 m = (__mmask16)((1u << n) - 1);
            __m512i vi = _mm512_maskz_loadu_epi32(m, p->tidx + pos0);
            for (int k = 16 * kq; k < k1; k++) {
                float *d = d_w + (size_t)k * CRS + pos0;
                const float *tk = T + (size_t)(k / KB) * s->R * p->njt * p->mr * KB + k % KB;
                __m512 g = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, vi, tk, 4);
                _mm512_mask_storeu_ps(d, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, d), g));
            }
        }
    }
}

void wgrad_bf16_run(const WgradBf16 *p, float *d_w, const uint16_t *d_out, const uint16_t *in, float *tmp,
                    void *scratch) {
    const ConvShape *s = &p->s;
    char *base = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    long per_kb = (long)s->R * p->njt, ntiles = (long)p->nkb * per_kb;
#pragma omp parallel num_threads(p->nth)
    {
        int nth = omp_get_num_threads(), tid = omp_get_thread_num();
        long t0 = ntiles * tid / nth, t1 = ntiles * (tid + 1) / nth;
        uint32_t *xb = (uint32_t *)(base + (size_t)tid * p->thread_bytes), *db = xb + p->xfloats;
        for (int bi = 0; t0 < t1 && bi < p->nblk; bi++) {
            Blk k;
            blk_at(&k, p, bi);
            pack_x(p, &k, xb, in);
            Run ru = {.p = p, .k = &k, .x = xb, .d = db, .T = tmp};
            /* calls of pf_step in this block: one per image (pixel lists) or output row of every tile */
            Pf pf;
            pf_plan(&pf, p, bi + 1, d_out, in, (t1 - t0) * k.nbp * (p->lst ? 1 : k.oh1 - k.oh0));
            for (long t = t0; t < t1;) {
                int kb = (int)(t / per_kb);
                long tend = (long)(kb + 1) * per_kb < t1 ? (long)(kb + 1) * per_kb : t1;
                pack_d(p, &k, kb, db, d_out);
                for (; t < tend; t++) {
                    int rem = (int)(t % per_kb), r = rem / p->njt, j0 = (rem % p->njt) * p->mr;
                    int mr = p->SC - j0 < p->mr ? p->SC - j0 : p->mr;
                    tile_any(mr, &ru, kb, r, j0, bi == 0, &pf);
                }
            }
        }
    }
    add_transposed(d_w, tmp, p);
}
