/* pca.c - PCA by a double-precision symmetric eigendecomposition (see pca.h).
 *
 * Dimensions: N rows, D columns, k components. The data stay float32; blocks of the centred data
 * are converted to double on the fly (BLK columns or rows at a time) so the large case
 * (5000 x 27648) never holds a second full copy.
 */
#include "pca.h"

#include <lapacke.h>
#include <math.h>
#include <sys/resource.h>
#include <string.h>

#include "common.h"
#include "gemm.h"
#include "rng.h"
#include <stdlib.h>
/* PCA_TIMING=1 in the environment prints the time of each phase (for tuning). */
#define TMARK(what) do { if (getenv("PCA_TIMING")) fprintf(stderr, "pca: %-12s %.2fs\n", what, sc_now() - t0); } while (0)

#define BLK 1024


/* LAPACK's reductions go through BLAS level-2 kernels whose summation order depends on the
 * number of BLAS threads: BLAS is kept at one thread (gemm.h), so results do not. */

/* buf (N, w) double = X[:, c0:c0+w] - mean[c0:c0+w] */
static void centred_cols(const float *X, size_t N, int D, const double *mean, int c0, int w,
                         double *buf) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++)
        for (int j = 0; j < w; j++) buf[i * w + j] = (double)X[i * D + c0 + j] - mean[c0 + j];
}

/* the column index of the largest |u[:, j]| (first one on ties), as numpy.argmax */
static void flip_by_u(const double *u, size_t N, int ldu, int k, double *sign) {
    for (int j = 0; j < k; j++) {
        size_t am = 0;
        double best = -1;
        for (size_t i = 0; i < N; i++)
            if (fabs(u[i * ldu + j]) > best) best = fabs(u[i * ldu + j]), am = i;
        sign[j] = u[am * ldu + j] < 0 ? -1.0 : 1.0;
    }
}

/* k largest eigenpairs of the symmetric (n, n) matrix A (upper triangle, row-major; destroyed):
 * values descending into w (k), vectors as columns of Z (n, k) */
static int top_eigen(double *A, int n, int k, double *w, double *Z) {
    double *wa = sc_alloc(sizeof(double) * n), *za = sc_alloc(sizeof(double) * (size_t)n * k);
    int *supp = sc_alloc(sizeof(int) * 2 * (size_t)n);
    lapack_int m = 0;
    gemm_single_threaded_blas();
    lapack_int info = LAPACKE_dsyevr(LAPACK_ROW_MAJOR, 'V', 'I', 'U', n, A, n, 0, 0, n - k + 1,
                                     n, 0.0, &m, wa, za, k, supp);
    if (info != 0 || m != k) {
        sc_free(wa); sc_free(za); sc_free(supp);
        return sc_error_set("PCA: LAPACK dsyevr failed (info %d, %d of %d eigenvalues)", (int)info,
                            (int)m, k);
    }
    for (int j = 0; j < k; j++) { /* ascending -> descending */
        w[j] = wa[k - 1 - j];
        for (int i = 0; i < n; i++) Z[(size_t)i * k + j] = za[(size_t)i * k + (k - 1 - j)];
    }
    sc_free(wa); sc_free(za); sc_free(supp);
    return 0;
}

/* The same for a large positive semi-definite A (n, n), upper triangle given, the lower one
 * filled in here, so that the products by A are plain fixed-partition gemms): randomized
 * subspace iteration (Halko, Martinsson, Tropp 2011, alg. 4.4) with l = max(2k, k + 32)
 * columns: PCA_POWER_ITERS products by A in float32, each orthonormalised by Householder
 * QR, then one orthonormalisation and the Rayleigh-Ritz step Q^T A Q (l, l) in double. The start
 * is Gaussian from rng_derive(0, RNG_STREAM_EVAL, 4, n, k): deterministic. Eigenvalue j
 * converges like (lambda_{l+1}/lambda_j)^(2q); the float iterations only choose the subspace.
 * Measured on 5000 x 27648 synthetic pixels with a flat noise tail (the hard case), k = 256,
 * against sklearn's full SVD: l = k + 64, q = 6 left the last eigenvalue 7.3% low (sklearn's own
 * randomized solver: 8.5% low), l = 1.5k, q = 8: 3.4%, l = 2k, q = 8: 1.8% (total variance kept
 * within 1e-4 relative) for ~20% more time than the first. */
#define PCA_POWER_ITERS 8
static int orthonormalise(double *Y, int n, int l, double *tau) {
    gemm_single_threaded_blas();
    lapack_int info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, n, l, Y, l, tau);
    if (!info) info = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, n, l, l, Y, l, tau);
    return info ? sc_error_set("PCA: LAPACK QR failed (info %d)", (int)info) : 0;
}
static int top_eigen_randomized(double *A, int n, int k, double *w, double *Z) {
    int l = 2 * k > k + 32 ? 2 * k : k + 32;
    if (l > n) l = n;
    size_t nl = (size_t)n * l;
    float *Af = sc_alloc(sizeof(float) * (size_t)n * n);
    float *Qf = sc_alloc(sizeof(float) * nl), *Yf = sc_alloc(sizeof(float) * nl);
    float *tauf = sc_alloc(sizeof(float) * l);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < (size_t)n; i++)
        for (size_t j = 0; j < (size_t)n; j++)
            Af[i * n + j] = (float)(j >= i ? A[i * n + j] : A[j * n + i]);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < (size_t)n; i++)
        for (size_t j = 0; j < i; j++) A[i * n + j] = A[j * n + i];
    Rng r = rng_derive(0, RNG_STREAM_EVAL, 4, (uint64_t)n, (uint64_t)k);
    for (size_t i = 0; i < nl; i++) Qf[i] = (float)rng_normal(&r);
    int rc = 0;
    for (int it = 0; it < PCA_POWER_ITERS && !rc; it++) {
        gemm_f32(false, false, n, l, n, 1.0f, Af, n, Qf, l, 0.0f, Yf, l);
        gemm_single_threaded_blas();
        lapack_int info = LAPACKE_sgeqrf(LAPACK_ROW_MAJOR, n, l, Yf, l, tauf);
        if (!info) info = LAPACKE_sorgqr(LAPACK_ROW_MAJOR, n, l, l, Yf, l, tauf);
            if (info) rc = sc_error_set("PCA: LAPACK QR failed (info %d)", (int)info);
        float *t = Qf; Qf = Yf; Yf = t;
    }
    sc_free(Af); sc_free(Yf); sc_free(tauf);
    double *Q = sc_alloc(sizeof(double) * nl), *Y = sc_alloc(sizeof(double) * nl);
    double *tau = sc_alloc(sizeof(double) * l), *T = sc_alloc(sizeof(double) * (size_t)l * l);
    for (size_t i = 0; i < nl; i++) Q[i] = Qf[i];
    sc_free(Qf);
    if (!rc) rc = orthonormalise(Q, n, l, tau);
    if (!rc) {
        /* T (l, l) = Q^T A Q, symmetrised; its top k eigenvectors V give Z = Q V */
        gemm_f64(false, false, n, l, n, 1.0, A, n, Q, l, 0.0, Y, l);
        gemm_f64(true, false, l, l, n, 1.0, Q, l, Y, l, 0.0, T, l);
        for (int i = 0; i < l; i++)
            for (int j = i + 1; j < l; j++) T[i * l + j] = T[j * l + i] = 0.5 * (T[i * l + j] + T[j * l + i]);
        double *V = sc_alloc(sizeof(double) * (size_t)l * k);
        rc = top_eigen(T, l, k, w, V);
        if (!rc)
            gemm_f64(false, false, n, k, l, 1.0, Q, l, V, k, 0.0, Z, k);
        sc_free(V);
    }
    sc_free(Q); sc_free(Y); sc_free(tau); sc_free(T);
    return rc;
}

static double cpu_now(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

int pca_fit(Pca *p, const float *X, size_t N, int D, int k, int method) {
    memset(p, 0, sizeof *p);
    double t0 = sc_now(), cpu0 = cpu_now();
    if (N < 2) return sc_error_set("PCA: need at least 2 rows, got %zu", N);
    if (D < 1) return sc_error_set("PCA: need at least 1 column, got %d", D);
    size_t mn = N < (size_t)D ? N : (size_t)D;
    if (k < 1 || (size_t)k > mn)
        return sc_error_set("pca.components: expected 1..%zu (min of rows %zu and columns %d), got %d",
                            mn, N, D, k);
    if (method == PCA_AUTO)
        method = N >= (size_t)D ? PCA_COV : N <= PCA_EXACT_MAX ? PCA_GRAM : PCA_RANDOMIZED;
    if (method != PCA_COV && N > 100000)
        return sc_error_set("PCA: the Gram method needs N x N doubles; %zu rows is too many", N);
    for (size_t i = 0; i < N * (size_t)D; i++)
        if (!isfinite(X[i]))
            return sc_error_set("PCA: value %zu (row %zu, column %zu) is not finite", i, i / D, i % D);
    double *mean = sc_alloc(sizeof(double) * D);
    for (size_t i = 0; i < N; i++)
        for (int j = 0; j < D; j++) mean[j] += X[i * D + j];
    for (int j = 0; j < D; j++) mean[j] /= (double)N;
    double total = 0;
    for (size_t i = 0; i < N; i++)
        for (int j = 0; j < D; j++) {
            double d = X[i * D + j] - mean[j];
            total += d * d;
        }
    TMARK("mean");
    p->D = D;
    p->k = k;
    p->method = method;
    p->n_samples = N;
    p->mean = sc_alloc(sizeof(float) * D);
    for (int j = 0; j < D; j++) p->mean[j] = (float)mean[j];
    p->components = sc_alloc(sizeof(float) * (size_t)k * D);
    p->explained_variance = sc_alloc(sizeof(double) * k);
    p->explained_variance_ratio = sc_alloc(sizeof(double) * k);
    p->singular_values = sc_alloc(sizeof(double) * k);
    p->total_variance = total / (double)(N - 1);
    double *w = sc_alloc(sizeof(double) * k), *sign = sc_alloc(sizeof(double) * k);
    int rc = 0;
    if (method != PCA_COV) {
        /* G (N, N) = Xc Xc^T, over column blocks: in double for the exact method; for the
         * randomized one each block in float (ssyrk, twice the speed) summed in double */
        double *G = sc_alloc(sizeof(double) * N * N), *buf = sc_alloc(sizeof(double) * N * BLK);
        float *fb = NULL, *Gb = NULL;
        if (method == PCA_RANDOMIZED) {
            fb = sc_alloc(sizeof(float) * N * BLK);
            Gb = sc_alloc(sizeof(float) * N * N);
        }
        for (int c0 = 0; c0 < D; c0 += BLK) {
            int wd = D - c0 < BLK ? D - c0 : BLK;
            if (method == PCA_RANDOMIZED) {
#pragma omp parallel for schedule(static)
                for (size_t i = 0; i < N; i++)
                    for (int j = 0; j < wd; j++)
                        fb[i * wd + j] = (float)((double)X[i * D + c0 + j] - mean[c0 + j]);
                syrk_upper_f32(false, (int)N, wd, 1.0f, fb, wd, 0.0f, Gb, (int)N);
#pragma omp parallel for schedule(static)
                for (size_t i = 0; i < N; i++)
                    for (size_t j = i; j < N; j++) G[i * N + j] += Gb[i * N + j];
            } else {
                centred_cols(X, N, D, mean, c0, wd, buf);
                syrk_upper_f64(false, (int)N, wd, 1.0, buf, wd, c0 ? 1.0 : 0.0, G, (int)N);
            }
        }
        sc_free(fb);
        sc_free(Gb);
        TMARK("gram");
        double *U = sc_alloc(sizeof(double) * N * k);
        rc = method == PCA_RANDOMIZED ? top_eigen_randomized(G, (int)N, k, w, U)
                                      : top_eigen(G, (int)N, k, w, U);
        sc_free(G);
        TMARK("eigen");
        if (!rc) {
            flip_by_u(U, N, k, k, sign);
            /* components (k, D) = diag(sign / s) U^T Xc, block by block */
            for (int j = 0; j < k; j++) {
                double s = sqrt(fmax(w[j], 0.0));
                double f = s > 0 ? sign[j] / s : 0.0;
                for (size_t i = 0; i < N; i++) U[i * k + j] *= f;
            }
            if (method == PCA_RANDOMIZED) { /* float32 sgemm: half the time of dgemm */
                float *Uf = sc_alloc(sizeof(float) * N * k), *fb2 = sc_alloc(sizeof(float) * N * BLK);
                float *cf = sc_alloc(sizeof(float) * (size_t)k * BLK);
                for (size_t i = 0; i < N * (size_t)k; i++) Uf[i] = (float)U[i];
                for (int c0 = 0; c0 < D; c0 += BLK) {
                    int wd = D - c0 < BLK ? D - c0 : BLK;
#pragma omp parallel for schedule(static)
                    for (size_t i = 0; i < N; i++)
                        for (int j = 0; j < wd; j++)
                            fb2[i * wd + j] = (float)((double)X[i * D + c0 + j] - mean[c0 + j]);
                    gemm_f32(true, false, k, wd, (int)N, 1.0f, Uf, k, fb2, wd, 0.0f, cf, wd);
                    for (int j = 0; j < k; j++)
                        memcpy(p->components + (size_t)j * D + c0, cf + (size_t)j * wd,
                               sizeof(float) * wd);
                }
                sc_free(Uf); sc_free(fb2); sc_free(cf);
            } else {
            double *cb = sc_alloc(sizeof(double) * (size_t)k * BLK);
            for (int c0 = 0; c0 < D; c0 += BLK) {
                int wd = D - c0 < BLK ? D - c0 : BLK;
                centred_cols(X, N, D, mean, c0, wd, buf);
                gemm_f64(true, false, k, wd, (int)N, 1.0, U, k, buf, wd, 0.0, cb, wd);
                for (int j = 0; j < k; j++)
                    for (int c = 0; c < wd; c++)
                        p->components[(size_t)j * D + c0 + c] = (float)cb[(size_t)j * wd + c];
            }
            sc_free(cb);
            }
            TMARK("components");
        }
        sc_free(U);
        sc_free(buf);
    } else {
        /* C (D, D) = Xc^T Xc, over row blocks */
        double *C = sc_alloc(sizeof(double) * D * D), *buf = sc_alloc(sizeof(double) * BLK * D);
        for (size_t r0 = 0; r0 < N; r0 += BLK) {
            size_t R = N - r0 < BLK ? N - r0 : BLK;
            centred_cols(X + r0 * D, R, D, mean, 0, D, buf);
            syrk_upper_f64(true, D, (int)R, 1.0, buf, D, r0 ? 1.0 : 0.0, C, D);
        }
        double *V = sc_alloc(sizeof(double) * D * k);
        rc = top_eigen(C, D, k, w, V);
        sc_free(C);
        if (!rc) {
            /* the scores Xc V (N, k) decide the signs, as sklearn's u-based svd_flip */
            double *S = sc_alloc(sizeof(double) * N * k);
            for (size_t r0 = 0; r0 < N; r0 += BLK) {
                size_t R = N - r0 < BLK ? N - r0 : BLK;
                centred_cols(X + r0 * D, R, D, mean, 0, D, buf);
                gemm_f64(false, false, (int)R, k, D, 1.0, buf, D, V, k, 0.0, S + r0 * k, k);
            }
            flip_by_u(S, N, k, k, sign);
            sc_free(S);
            for (int j = 0; j < k; j++)
                for (int c = 0; c < D; c++)
                    p->components[(size_t)j * D + c] = (float)(sign[j] * V[(size_t)c * k + j]);
        }
        sc_free(V);
        sc_free(buf);
    }
    if (!rc)
        for (int j = 0; j < k; j++) {
            double ev = fmax(w[j], 0.0);
            p->singular_values[j] = sqrt(ev);
            p->explained_variance[j] = ev / (double)(N - 1);
            p->explained_variance_ratio[j] =
                total > 0 ? p->explained_variance[j] / p->total_variance : 0.0;
        }
    sc_free(w); sc_free(sign); sc_free(mean);
    if (rc) {
        pca_free(p);
        return -1;
    }
    p->seconds = sc_now() - t0;
    p->cpu_seconds = cpu_now() - cpu0;
    return 0;
}

void pca_transform(const Pca *p, const float *X, size_t N, float *out) {
    int D = p->D, k = p->k;
    const size_t R0 = 512;
    float *buf = sc_alloc(sizeof(float) * R0 * D);
    for (size_t r0 = 0; r0 < N; r0 += R0) {
        size_t R = N - r0 < R0 ? N - r0 : R0;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < R; i++)
            for (int j = 0; j < D; j++) buf[i * D + j] = X[(r0 + i) * D + j] - p->mean[j];
        gemm_f32(false, true, (int)R, k, D, 1.0f, buf, D, p->components, D, 0.0f, out + r0 * k, k);
    }
    sc_free(buf);
}

void pca_free(Pca *p) {
    sc_free(p->mean);
    sc_free(p->components);
    sc_free(p->explained_variance);
    sc_free(p->explained_variance_ratio);
    sc_free(p->singular_values);
    memset(p, 0, sizeof *p);
}
