/* gemm.c - fixed-partition BLAS level-3 products (see gemm.h for why). */
#include "gemm.h"

#include <cblas.h>
#include <stddef.h>

#include "common.h"

int openblas_get_num_threads(void);
void openblas_set_num_threads(int);

void gemm_single_threaded_blas(void) {
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

static int cdiv(int a, int b) { return (a + b - 1) / b; }

/* Below this many multiply-adds the tiles run on the calling thread: waking a thread team costs
 * more than the product (L-BFGS on small problems makes thousands of such calls). The tiles are
 * the same either way, so the bits are too. */
#define GEMM_PARALLEL_MIN_FLOPS (1 << 22)
static int worth_threads(int M, int N, int K) { return (double)M * N * (K > 0 ? K : 1) >= GEMM_PARALLEL_MIN_FLOPS; }

/* How many K chunks: only for a small output (few tiles) over a long reduction, so that the
 * threads have work; decided by the shape alone. */
static int k_chunks(int M, int N, int K, int tiles) {
    if (tiles >= 16 || (size_t)M * N > (1u << 20) || K < 2 * GEMM_K_CHUNK) return 1;
    int nk = cdiv(K, GEMM_K_CHUNK), cap = cdiv(16, tiles);
    return nk < cap ? nk : cap;
}

/* The element (row r, column c) of op(X) for a row-major X with leading dimension ld. */
#define AT(X, t, ld, r, c) ((t) ? (X) + (size_t)(c) * (ld) + (r) : (X) + (size_t)(r) * (ld) + (c))

/* One generator per precision: T the element type, S the cblas letter. */
#define DEFINE_GEMM(NAME, T, CBLAS_GEMM)                                                          \
    void NAME(bool ta, bool tb, int M, int N, int K, T alpha, const T *A, int lda, const T *B,    \
              int ldb, T beta, T *C, int ldc) {                                                   \
        if (M <= 0 || N <= 0) return;                                                             \
        gemm_single_threaded_blas();                                                              \
        const int tm = cdiv(M, GEMM_TILE_M), tn = cdiv(N, GEMM_TILE_N), tiles = tm * tn;          \
        const int nk = K > 0 ? k_chunks(M, N, K, tiles) : 1;                                      \
        const enum CBLAS_TRANSPOSE oa = ta ? CblasTrans : CblasNoTrans;                           \
        const enum CBLAS_TRANSPOSE ob = tb ? CblasTrans : CblasNoTrans;                           \
        const int par = worth_threads(M, N, K);                                                   \
        if (nk == 1) {                                                                            \
            _Pragma("omp parallel for schedule(dynamic, 1) if (par)")                             \
            for (int t = 0; t < tiles; t++) {                                                     \
                int i0 = (t / tn) * GEMM_TILE_M, j0 = (t % tn) * GEMM_TILE_N;                     \
                int mi = M - i0 < GEMM_TILE_M ? M - i0 : GEMM_TILE_M;                             \
                int nj = N - j0 < GEMM_TILE_N ? N - j0 : GEMM_TILE_N;                             \
                CBLAS_GEMM(CblasRowMajor, oa, ob, mi, nj, K, alpha, AT(A, ta, lda, i0, 0), lda,   \
                           AT(B, tb, ldb, 0, j0), ldb, beta, C + (size_t)i0 * ldc + j0, ldc);     \
            }                                                                                     \
            return;                                                                               \
        }                                                                                         \
        /* partial products P[c] (M, N) over K chunks, then C = beta C + sum_c P[c] in order */   \
        const int kc = cdiv(K, nk);                                                               \
        T *P = sc_alloc(sizeof(T) * (size_t)nk * M * N);                                          \
        _Pragma("omp parallel for schedule(dynamic, 1) if (par)")                                 \
        for (int t = 0; t < tiles * nk; t++) {                                                    \
            int c = t / tiles, tt = t % tiles;                                                    \
            int i0 = (tt / tn) * GEMM_TILE_M, j0 = (tt % tn) * GEMM_TILE_N, k0 = c * kc;          \
            int mi = M - i0 < GEMM_TILE_M ? M - i0 : GEMM_TILE_M;                                 \
            int nj = N - j0 < GEMM_TILE_N ? N - j0 : GEMM_TILE_N;                                 \
            int kk = K - k0 < kc ? K - k0 : kc;                                                   \
            CBLAS_GEMM(CblasRowMajor, oa, ob, mi, nj, kk, alpha, AT(A, ta, lda, i0, k0), lda,     \
                       AT(B, tb, ldb, k0, j0), ldb, 0, P + (size_t)c * M * N + (size_t)i0 * N + j0, \
                       N);                                                                        \
        }                                                                                         \
        _Pragma("omp parallel for schedule(static) if (par)")                                     \
        for (int i = 0; i < M; i++)                                                               \
            for (int j = 0; j < N; j++) {                                                         \
                T s = beta == 0 ? 0 : beta * C[(size_t)i * ldc + j];                              \
                for (int c = 0; c < nk; c++) s += P[(size_t)c * M * N + (size_t)i * N + j];       \
                C[(size_t)i * ldc + j] = s;                                                       \
            }                                                                                     \
        sc_free(P);                                                                               \
    }

DEFINE_GEMM(gemm_f32, float, cblas_sgemm)
DEFINE_GEMM(gemm_f64, double, cblas_dgemm)

/* Upper triangle by square blocks of GEMM_TILE_M: a syrk on each diagonal block, a gemm on each
 * block above it. */
#define DEFINE_SYRK(NAME, T, CBLAS_SYRK, CBLAS_GEMM)                                              \
    void NAME(bool tr, int N, int K, T alpha, const T *A, int lda, T beta, T *C, int ldc) {       \
        if (N <= 0) return;                                                                       \
        gemm_single_threaded_blas();                                                              \
        const int nb = cdiv(N, GEMM_TILE_M), pairs = nb * (nb + 1) / 2;                           \
        const enum CBLAS_TRANSPOSE o = tr ? CblasTrans : CblasNoTrans;                            \
        const int par = worth_threads(N, N, K);                                                   \
        _Pragma("omp parallel for schedule(dynamic, 1) if (par)")                                 \
        for (int p = 0; p < pairs; p++) {                                                         \
            int bi = 0, rest = p; /* p-th (bi, bj) with bj >= bi, row by row */                   \
            while (rest >= nb - bi) rest -= nb - bi, bi++;                                        \
            int bj = bi + rest, i0 = bi * GEMM_TILE_M, j0 = bj * GEMM_TILE_M;                     \
            int mi = N - i0 < GEMM_TILE_M ? N - i0 : GEMM_TILE_M;                                 \
            int nj = N - j0 < GEMM_TILE_M ? N - j0 : GEMM_TILE_M;                                 \
            T *c = C + (size_t)i0 * ldc + j0;                                                     \
            if (bi == bj)                                                                         \
                CBLAS_SYRK(CblasRowMajor, CblasUpper, o, mi, K, alpha, AT(A, tr, lda, i0, 0),     \
                           lda, beta, c, ldc);                                                    \
            else                                                                                  \
                CBLAS_GEMM(CblasRowMajor, o, tr ? CblasNoTrans : CblasTrans, mi, nj, K, alpha,    \
                           AT(A, tr, lda, i0, 0), lda, AT(A, tr, lda, j0, 0), lda, beta, c, ldc); \
        }                                                                                         \
    }

DEFINE_SYRK(syrk_upper_f32, float, cblas_ssyrk, cblas_sgemm)
DEFINE_SYRK(syrk_upper_f64, double, cblas_dsyrk, cblas_dgemm)
