/* conv_pw.c - strided 1x1 convolutions as GEMMs over the pixels the kernel reads (see conv_pw.h).
 *
 * Work: register tiles of MR output rows (pixels) x 64 columns (output channels forward, input
 * channels backward), each summing over the whole reduction in order; the rows are cut into
 * fixed chunks of CHUNK tiles, a static share of chunks per thread, and within a chunk the
 * column blocks run one after another over the chunk's rows (kept in L2 meanwhile); during the last
 * column block the forward prefetches the next chunk's rows (they are every stride-th pixel of
 * every stride-th input row, a pattern the hardware prefetchers do not follow: without it the
 * forward of layer2's downsample ran 15-20% slower than oneDNN's 1x1 kernel, with it 5-8% faster). */
#include "conv_pw.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "common.h"
#include "conv_wgrad.h"

#define MR 6      /* rows per tile: 24 accumulators, 4 vectors of B, a broadcast */
#define NB 64     /* columns per tile */
#define CHUNK 16  /* tiles of rows per chunk (96 pixels) */

#define TGT __attribute__((target("avx512f")))

int conv_pw_usable(const ConvShape *s, int pass) {
    if (s->dt != DT_F32 || s->R != 1 || s->S != 1 || s->pad != 0 || !conv_wgrad_supported()) return 0;
    const char *e = getenv("SIMCLR_CONV_PW");
    if (e && !strcmp(e, "dnnl")) return 0;
    if (e && !strcmp(e, "own")) return 1;
    /* measured against oneDNN's 1x1 kernels on ResNet-18's downsamples (doc/core.md): faster in
     * both passes (pass: the same policy for both, kept as a parameter for shapes that differ) */
    (void)pass;
    return s->stride > 1;
}

void conv_pw_weights(const ConvShape *s, float *wt, const float *w) {
    const int K = s->K, C = s->C;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++)
        for (int k = 0; k < K; k++) wt[(size_t)c * K + k] = w[(size_t)k * C + c];
}

/* o[i][n0 + n] = sum over j in [0, KR) of a[i][j] * b[j * ldb + n0 + n], for i < mr, n < 64
 * (masked by nm past the last column); the sums in order of j */
TGT static inline __attribute__((always_inline)) void tile(const int mr, const float *const *a,
                                                           const float *b, int ldb, int KR,
                                                           float *const *o, const __mmask16 *nm) {
    __m512 acc[MR][4];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) acc[i][v] = _mm512_setzero_ps();
    for (int j = 0; j < KR; j++, b += ldb) {
        __m512 bv[4];
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) bv[v] = _mm512_maskz_loadu_ps(nm[v], b + 16 * v);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            __m512 x = _mm512_set1_ps(a[i][j]);
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) acc[i][v] = _mm512_fmadd_ps(bv[v], x, acc[i][v]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) _mm512_mask_storeu_ps(o[i] + 16 * v, nm[v], acc[i][v]);
}

TGT static void tile_any(int mr, const float *const *a, const float *b, int ldb, int KR,
                         float *const *o, const __mmask16 *nm) {
    switch (mr) {
    case 1: tile(1, a, b, ldb, KR, o, nm); break;
    case 2: tile(2, a, b, ldb, KR, o, nm); break;
    case 3: tile(3, a, b, ldb, KR, o, nm); break;
    case 4: tile(4, a, b, ldb, KR, o, nm); break;
    case 5: tile(5, a, b, ldb, KR, o, nm); break;
    default: tile(MR, a, b, ldb, KR, o, nm); break;
    }
}

/* rows p of the GEMM: a row at a + (fwd ? pix(p) : p*K), written at o + (fwd ? p*K : pix(p)),
 * pix(p) the element offset of the input pixel output pixel p reads; b (KR, N), row stride N */
TGT static void gemm_rows(const ConvShape *s, int fwd, const float *a, const float *b, float *o) {
    const long M = (long)s->B * s->OH * s->OW;
    const int KR = fwd ? s->C : s->K, N = fwd ? s->K : s->C, nnb = (N + NB - 1) / NB;
    const long ntiles = (M + MR - 1) / MR, nchunks = (ntiles + CHUNK - 1) / CHUNK;
#pragma omp for schedule(static)
    for (long ch = 0; ch < nchunks; ch++) {
        long p0 = ch * CHUNK * MR, p1 = p0 + CHUNK * MR < M ? p0 + CHUNK * MR : M;
        /* the chunk's rows: where each reads and writes (computed once for every column block) */
        const float *ar[CHUNK * MR];
        float *orow[CHUNK * MR];
        long img = p0 / ((long)s->OH * s->OW), rem = p0 % ((long)s->OH * s->OW);
        int oh = (int)(rem / s->OW), ow = (int)(rem % s->OW);
        for (long p = p0; p < p1; p++) {
            size_t pi = (((size_t)img * s->H + (size_t)oh * s->stride) * s->W + (size_t)ow * s->stride) * s->C;
            size_t pk = (size_t)p * s->K;
            ar[p - p0] = a + (fwd ? pi : pk);
            orow[p - p0] = o + (fwd ? pk : pi);
            if (++ow == s->OW) {
                ow = 0;
                if (++oh == s->OH) oh = 0, img++;
            }
        }
        /* the next chunk's rows, prefetched (forward) while the last column block of this one runs */
        const float *nar[CHUNK * MR];
        long np = p1 + CHUNK * MR < M ? CHUNK * MR : M - p1;
        for (long p = 0; p < np; p++) {
            size_t pi = (((size_t)img * s->H + (size_t)oh * s->stride) * s->W + (size_t)ow * s->stride) * s->C;
            nar[p] = a + (fwd ? pi : (size_t)(p1 + p) * s->K);
            if (++ow == s->OW) {
                ow = 0;
                if (++oh == s->OH) oh = 0, img++;
            }
        }
        for (int nb = 0; nb < nnb; nb++) {
            int n0 = nb * NB;
            __mmask16 nm[4];
            for (int v = 0; v < 4; v++) {
                int n = N - n0 - 16 * v;
                nm[v] = n >= 16 ? 0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
            }
            for (long q = 0; q < p1 - p0; q += MR) {
                int mr = p1 - p0 - q < MR ? (int)(p1 - p0 - q) : MR;
                float *ot[MR];
                for (int i = 0; i < mr; i++) ot[i] = orow[q + i] + n0;
                if (fwd && nb == nnb - 1) /* (backward: rows of d_out, in order) */
                    for (long i = q; i < q + MR && i < np; i++)
                        for (int l = 0; l < KR; l += 16) _mm_prefetch((const char *)(nar[i] + l), _MM_HINT_T0);
                tile_any(mr, ar + q, b + n0, N, KR, ot, nm);
            }
        }
    }
}

void conv_pw_forward(const ConvShape *s, float *out, const float *in, const float *wt) {
#pragma omp parallel
    gemm_rows(s, 1, in, wt, out);
}

void conv_pw_backward_data(const ConvShape *s, float *d_in, const float *d_out, const float *w) {
    const int st = s->stride;
#pragma omp parallel
    {
        /* zeros at the input pixels no output pixel reads (the GEMM writes the others) */
#pragma omp for schedule(static) nowait
        for (long row = 0; row < (long)s->B * s->H; row++) {
            int ih = (int)(row % s->H);
            float *d = d_in + (size_t)row * s->W * s->C;
            if (ih % st || ih / st >= s->OH) {
                memset(d, 0, sizeof(float) * s->W * s->C);
                continue;
            }
            for (int iw = 0; iw < s->W; iw++)
                if (iw % st || iw / st >= s->OW) memset(d + (size_t)iw * s->C, 0, sizeof(float) * s->C);
        }
        gemm_rows(s, 0, d_out, w, d_in);
    }
}
