/* gemm.h - BLAS level-3 products whose bits do not depend on the number of threads.
 *
 * A threaded BLAS splits a product among its threads in a way that depends on how many there
 * are, and some kernels (OpenBLAS with OPENBLAS_CORETYPE=Haswell, as set on AMD machines) round
 * edge tiles differently from inner ones: the same call then gives different bits on 1 and 2
 * threads. These wrappers fix the partition by the shape alone:
 *   - the output C (M, N) is cut into tiles of GEMM_TILE_M x GEMM_TILE_N;
 *   - when the output has few tiles and the reduction is long, K is cut into fixed chunks whose
 *     partial products are summed in chunk order;
 *   - every tile (and chunk) is one single-threaded BLAS call, run on an OpenMP thread.
 * OpenBLAS itself is kept at one thread (gemm_single_threaded_blas), so LAPACK calls made by the
 * callers are deterministic too. Row-major, the cblas argument order, op(X) = X or X^T.
 */
#ifndef SIMCLR_GEMM_H
#define SIMCLR_GEMM_H

#include <stdbool.h>

#define GEMM_TILE_M 128
#define GEMM_TILE_N 256
#define GEMM_K_CHUNK 8192 /* reduction chunk when the output is small (fixed, shape-only) */

/* Makes the BLAS library run single-threaded (idempotent; called by every wrapper). */
void gemm_single_threaded_blas(void);

/* C (M, N) = alpha op(A) op(B) + beta C; op(A) is (M, K), op(B) is (K, N) */
void gemm_f32(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
              int lda, const float *B, int ldb, float beta, float *C, int ldc);
void gemm_f64(bool trans_a, bool trans_b, int M, int N, int K, double alpha, const double *A,
              int lda, const double *B, int ldb, double beta, double *C, int ldc);

/* upper triangle of C (N, N) = alpha op(A) op(A)^T + beta C; op(A) is (N, K): A itself when
 * trans is false, A^T of a (K, N) array when true. The strict lower triangle is not touched. */
void syrk_upper_f32(bool trans, int N, int K, float alpha, const float *A, int lda, float beta,
                    float *C, int ldc);
void syrk_upper_f64(bool trans, int N, int K, double alpha, const double *A, int lda,
                    double beta, double *C, int ldc);

#endif
