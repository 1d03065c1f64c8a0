/* wgrad_bf16.c - the bf16 weight gradient on AVX512-BF16 dot products (see wgrad_bf16.h). */
#include "wgrad_bf16.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "peak.h"

#define KT 8   /* output channels per register tile (8 x 2 accumulators of 16 lanes) */
#define CB 32  /* input channels per work unit */
#define KG 8   /* register tiles (64 output channels) per work unit */
#ifndef PB
#define PB 256 /* pixel pairs per block of the repacked input: 32 KB */
#endif
#define PACK_ROWS 256 /* pixel pairs per task of the d_out repacking */
/* d_out is repacked and consumed one span of pixel pairs at a time, sized so that the span's
 * repacked d_out (pairs x K x 4 bytes) stays in the L2 cache while every work unit reads it */
#ifndef SPAN_BYTES
#define SPAN_BYTES (128 * 1024)
#endif

/* the intrinsics are compiled for these instructions whatever -march says; they run only where
 * wgrad_bf16_usable found them */
#define TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))

int wgrad_bf16_usable(const ConvShape *s) {
    if (s->dt != DT_BF16 || s->C % CB || s->K % KT || !peak_cpu_has_bf16()) return 0;
    const char *e = getenv("SIMCLR_CONV_WGRAD");
    if (e && !strcmp(e, "dnnl")) return 0;
    if (e && !strcmp(e, "own")) return 1;
    /* where it beats oneDNN's kernel run on fixed batch chunks (doc/core.md): the strided 3x3
     * convs and the small maps of the last stage */
    return s->R > 1 && (s->stride > 1 || (long)s->OH * s->OW <= 16);
}

static size_t npairs(const ConvShape *s) { return ((size_t)s->B * s->OH * s->OW + 1) / 2; }

/* pixel pairs per span: a multiple of PB */
static size_t span_pairs(const ConvShape *s) {
    size_t n = SPAN_BYTES / ((size_t)s->K * 4) / PB * PB;
    return n < PB ? PB : n;
}

size_t wgrad_bf16_scratch_bytes(const ConvShape *s) {
    size_t n = span_pairs(s), np = npairs(s);
    return (n < np ? n : np) * s->K * 4 + 64;
}

/* Interleaving two rows of 32 bf16 values a, b into (a0 b0 a1 b1 ...): the pairs of values 0-15
 * (lo) and 16-31 (hi); _mm512_permutex2var_epi16 reads indices 32-63 from b. */
static const uint16_t ILV_LO[32] __attribute__((aligned(64))) = {
    0, 32, 1, 33, 2, 34, 3, 35, 4, 36, 5, 37, 6, 38, 7, 39, 8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
static const uint16_t ILV_HI[32] __attribute__((aligned(64))) = {
    16, 48, 17, 49, 18, 50, 19, 51, 20, 52, 21, 53, 22, 54, 23, 55,
    24, 56, 25, 57, 26, 58, 27, 59, 28, 60, 29, 61, 30, 62, 31, 63};

/* An output pixel (b, oh, ow), walked in memory order. */
typedef struct {
    int b, oh, ow;
} Pix;

static void pix_at(Pix *q, const ConvShape *s, size_t p) {
    size_t hw = (size_t)s->OH * s->OW, r = p % hw;
    q->b = (int)(p / hw), q->oh = (int)(r / s->OW), q->ow = (int)(r % s->OW);
}

static inline void pix_next(Pix *q, const ConvShape *s) {
    if (++q->ow == s->OW) {
        q->ow = 0;
        if (++q->oh == s->OH) q->oh = 0, q->b++;
    }
}

/* The input row that tap (r, t) of pixel q reads, or NULL in the padding (or past the last pixel,
 * the missing partner of an odd pixel count). */
static inline const uint16_t *tap_row(const uint16_t *in, const ConvShape *s, const Pix *q, int r, int t) {
    if (q->b >= s->B) return NULL;
    int ih = q->oh * s->stride - s->pad + r, iw = q->ow * s->stride - s->pad + t;
    if (ih < 0 || ih >= s->H || iw < 0 || iw >= s->W) return NULL;
    return in + (((size_t)q->b * s->H + ih) * s->W + iw) * s->C;
}

/* d_out (P, K) -> dyp (K/KT, n, KT) of u32 pairs (d_out[2i, k], d_out[2i+1, k]) for the pairs
 * i in [pp0, pp1) of the span that starts at pair sp0 and has n pairs; the partner of the last
 * pixel of an odd count is 0. */
TARGET static void pack_dy(const ConvShape *s, uint32_t *dyp, const uint16_t *dy, size_t sp0, size_t n,
                           size_t pp0, size_t pp1) {
    const int K = s->K;
    const size_t P = (size_t)s->B * s->OH * s->OW;
    const __m512i lo_idx = _mm512_load_si512(ILV_LO), hi_idx = _mm512_load_si512(ILV_HI);
    for (size_t pp = pp0; pp < pp1; pp++) {
        const uint16_t *r0 = dy + 2 * pp * K, *r1 = 2 * pp + 1 < P ? r0 + K : NULL;
        for (int k0 = 0; k0 < K; k0 += 32) {
            int nk = K - k0 < 32 ? K - k0 : 32; /* a multiple of KT */
            __mmask32 m = nk == 32 ? 0xffffffffu : (1u << nk) - 1;
            __m512i a = _mm512_maskz_loadu_epi16(m, r0 + k0);
            __m512i b = r1 ? _mm512_maskz_loadu_epi16(m, r1 + k0) : _mm512_setzero_si512();
            __m512i lo = _mm512_permutex2var_epi16(a, lo_idx, b), hi = _mm512_permutex2var_epi16(a, hi_idx, b);
            __m256i v[4] = {_mm512_castsi512_si256(lo), _mm512_extracti64x4_epi64(lo, 1),
                            _mm512_castsi512_si256(hi), _mm512_extracti64x4_epi64(hi, 1)};
            for (int j = 0; j < nk / KT; j++)
                _mm256_storeu_si256((__m256i *)(dyp + ((size_t)(k0 / KT + j) * n + pp - sp0) * KT), v[j]);
        }
    }
}

/* Prefetches the KT rows of CB floats at d, d + ld, ... */
static inline void prefetch_tile(const float *d, size_t ld) {
    for (int kk = 0; kk < KT; kk++) {
        _mm_prefetch((const char *)(d + kk * ld), _MM_HINT_T0);
        _mm_prefetch((const char *)(d + kk * ld + 16), _MM_HINT_T0);
    }
}

/* One work unit: dwt[k][tap][cb*CB .. +CB) for the output channels of tiles [kt0, kt1), over the
 * span's pixel pairs [sp0, sp0 + ns) in order, added to the previous spans' sums. */
TARGET static void run_unit(const ConvShape *s, float *dwt, const uint32_t *dyp, const uint16_t *in,
                            size_t sp0, size_t ns, int tap, int cb, int kt0, int kt1) {
    uint32_t xp[PB * CB] __attribute__((aligned(64))); /* PB pixel pairs x CB channels, u32 pairs */
    const int r = tap / s->S, t = tap % s->S, C = s->C;
    const size_t rs = (size_t)s->R * s->S, kstride = rs * C; /* dwt's row of one output channel */
    const __m512i lo_idx = _mm512_load_si512(ILV_LO), hi_idx = _mm512_load_si512(ILV_HI);
    for (size_t pb0 = sp0; pb0 < sp0 + ns; pb0 += PB) {
        const int n = sp0 + ns - pb0 < PB ? (int)(sp0 + ns - pb0) : PB;
        /* the running sums of the first tile (dwt is megabytes for wide layers: a cache miss per
         * row otherwise; each later tile's rows are fetched while the one before computes) */
        if (pb0) prefetch_tile(dwt + ((size_t)kt0 * KT * rs + tap) * C + cb * CB, kstride);
        Pix q;
        pix_at(&q, s, 2 * pb0);
        for (int i = 0; i < n; i++) {
            const uint16_t *x0 = tap_row(in, s, &q, r, t);
            pix_next(&q, s);
            const uint16_t *x1 = tap_row(in, s, &q, r, t);
            pix_next(&q, s);
            __m512i a = x0 ? _mm512_loadu_si512(x0 + cb * CB) : _mm512_setzero_si512();
            __m512i b = x1 ? _mm512_loadu_si512(x1 + cb * CB) : _mm512_setzero_si512();
            _mm512_store_si512(xp + i * 32, _mm512_permutex2var_epi16(a, lo_idx, b));
            _mm512_store_si512(xp + i * 32 + 16, _mm512_permutex2var_epi16(a, hi_idx, b));
        }
        for (int kt = kt0; kt < kt1; kt++) {
            float *d = dwt + ((size_t)kt * KT * rs + tap) * C + cb * CB;
            const uint32_t *dp = dyp + ((size_t)kt * ns + pb0 - sp0) * KT;
            /* 16 named accumulators: output channel kk of the tile, input channels 0-15 (aKK0)
             * and 16-31 (aKK1) */
#define ACC_ALL(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define ACC_DECL(kk) __m512 a##kk##0, a##kk##1;
#define ACC_LOAD(kk)                                                                           \
    a##kk##0 = pb0 ? _mm512_loadu_ps(d + kk * kstride) : _mm512_setzero_ps();                  \
    a##kk##1 = pb0 ? _mm512_loadu_ps(d + kk * kstride + 16) : _mm512_setzero_ps();
#define ACC_STORE(kk)                                                                          \
    _mm512_storeu_ps(d + kk * kstride, a##kk##0);                                              \
    _mm512_storeu_ps(d + kk * kstride + 16, a##kk##1);
#define ACC_DOT(kk)                                                                            \
    {                                                                                          \
        __m512bh g = (__m512bh)_mm512_set1_epi32((int)dp[kk]);                                 \
        a##kk##0 = _mm512_dpbf16_ps(a##kk##0, (__m512bh)x0, g);                                \
        a##kk##1 = _mm512_dpbf16_ps(a##kk##1, (__m512bh)x1, g);                                \
    }
            ACC_ALL(ACC_DECL)
            ACC_ALL(ACC_LOAD)
            if (pb0 && kt + 1 < kt1) prefetch_tile(d + KT * kstride, kstride);
            for (int i = 0; i < n; i++, dp += KT) {
                __m512i x0 = _mm512_load_si512(xp + i * 32), x1 = _mm512_load_si512(xp + i * 32 + 16);
                ACC_ALL(ACC_DOT)
            }
            ACC_ALL(ACC_STORE)
#undef ACC_ALL
#undef ACC_DECL
#undef ACC_LOAD
#undef ACC_STORE
#undef ACC_DOT
        }
    }
}

void wgrad_bf16(const ConvShape *s, float *dwt, const uint16_t *d_out, const uint16_t *in, void *scratch) {
    const size_t np = npairs(s), span = span_pairs(s);
    uint32_t *dyp = (uint32_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    /* units: tap x 32 input channels x 64 output channels, the output channels innermost (the
     * units that run at the same time read the same input rows) */
    const int nkt = s->K / KT, nkg = (nkt + KG - 1) / KG, ncb = s->C / CB;
    const long units = (long)s->R * s->S * ncb * nkg;
#pragma omp parallel
    for (size_t sp0 = 0; sp0 < np; sp0 += span) {
        const size_t ns = np - sp0 < span ? np - sp0 : span;
        const long ntask = (long)((ns + PACK_ROWS - 1) / PACK_ROWS);
#pragma omp for schedule(static)
        for (long i = 0; i < ntask; i++) {
            size_t pp0 = sp0 + (size_t)i * PACK_ROWS, pp1 = pp0 + PACK_ROWS < sp0 + ns ? pp0 + PACK_ROWS : sp0 + ns;
            pack_dy(s, dyp, d_out, sp0, ns, pp0, pp1);
        }
#pragma omp for schedule(dynamic, 1)
        for (long u = 0; u < units; u++) {
            int kg = (int)(u % nkg), cb = (int)(u / nkg % ncb), tap = (int)(u / nkg / ncb);
            int kt1 = (kg + 1) * KG < nkt ? (kg + 1) * KG : nkt;
            run_unit(s, dwt, dyp, in, sp0, ns, tap, cb, kg * KG, kt1);
        }
    }
}
