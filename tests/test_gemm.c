/* Tests of the fixed-partition BLAS wrappers (src/gemm.h): correct against a naive product in
 * double, and bit-identical for 1 and 2 threads on shapes that take every path (tiles run in
 * parallel, K cut into chunks, syrk's diagonal and off-diagonal blocks, both transposes), even
 * when the BLAS library itself was set to several threads. */
#include "test.h"

#include "common.h"
#include "gemm.h"
#include "rng.h"

void openblas_set_num_threads(int);

static double *randn_d(size_t n, uint64_t s) {
    double *x = malloc(sizeof(double) * n);
    Rng r = rng_derive(s, 99, 0, 0, 0);
    for (size_t i = 0; i < n; i++) x[i] = rng_normal(&r);
    return x;
}

/* naive op(A) op(B) in double; A, B as double arrays */
static double *naive(int ta, int tb, int M, int N, int K, const double *A, int lda, const double *B,
                     int ldb) {
    double *C = calloc((size_t)M * N, sizeof(double));
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                     (tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
            C[(size_t)i * N + j] = s;
        }
    return C;
}

typedef struct { int ta, tb, M, N, K; } Shape;
static const Shape shapes[] = {
    {0, 1, 300, 700, 50},    /* 3 x 3 tiles in parallel (the NT-Xent similarity shape) */
    {1, 0, 515, 129, 300},   /* ragged edges (NT-Xent's G^T u) */
    {1, 0, 10, 96, 40000},   /* small output, long reduction: K in 5 chunks (logistic gradient) */
    {0, 1, 4000, 10, 64},    /* tall and thin (logits) */
};

TEST(gemm_matches_naive_and_is_thread_independent) {
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        Shape h = shapes[s];
        int lda = h.ta ? h.M : h.K, ldb = h.tb ? h.K : h.N;
        size_t na = (size_t)h.M * h.K, nb = (size_t)h.K * h.N, nc = (size_t)h.M * h.N;
        double *A = randn_d(na, 1 + s), *B = randn_d(nb, 11 + s), *C0 = randn_d(nc, 21 + s);
        double *want = naive(h.ta, h.tb, h.M, h.N, h.K, A, lda, B, ldb);
        for (size_t i = 0; i < nc; i++) want[i] = 0.5 * want[i] + 0.25 * C0[i];
        double *Cd[2];
        float *Cf[2];
        float *Af = malloc(sizeof(float) * na), *Bf = malloc(sizeof(float) * nb);
        for (size_t i = 0; i < na; i++) Af[i] = (float)A[i];
        for (size_t i = 0; i < nb; i++) Bf[i] = (float)B[i];
        for (int t = 0; t < 2; t++) {
            sc_set_threads(t + 1);
            openblas_set_num_threads(2); /* the wrappers must not depend on BLAS's own setting */
            Cd[t] = malloc(sizeof(double) * nc), Cf[t] = malloc(sizeof(float) * nc);
            for (size_t i = 0; i < nc; i++) Cd[t][i] = C0[i], Cf[t][i] = (float)C0[i];
            gemm_f64(h.ta, h.tb, h.M, h.N, h.K, 0.5, A, lda, B, ldb, 0.25, Cd[t], h.N);
            gemm_f32(h.ta, h.tb, h.M, h.N, h.K, 0.5f, Af, lda, Bf, ldb, 0.25f, Cf[t], h.N);
        }
        double errd = 0, errf = 0, scale = sqrt(h.K);
        for (size_t i = 0; i < nc; i++) {
            errd = fmax(errd, fabs(Cd[0][i] - want[i]) / scale);
            errf = fmax(errf, fabs(Cf[0][i] - want[i]) / scale);
        }
        CHECK(errd < 1e-13, "shape %zu: f64 error %g", s, errd);
        CHECK(errf < 1e-5, "shape %zu: f32 error %g", s, errf);
        CHECK(!memcmp(Cd[0], Cd[1], sizeof(double) * nc), "shape %zu: f64 differs on 1 and 2 threads", s);
        CHECK(!memcmp(Cf[0], Cf[1], sizeof(float) * nc), "shape %zu: f32 differs on 1 and 2 threads", s);
        free(A), free(B), free(C0), free(want), free(Af), free(Bf);
        for (int t = 0; t < 2; t++) free(Cd[t]), free(Cf[t]);
    }
    sc_set_threads(2);
}

TEST(syrk_upper_matches_naive_and_is_thread_independent) {
    const int N = 300, K = 150; /* 3 diagonal and 3 off-diagonal blocks */
    for (int tr = 0; tr < 2; tr++) {
        double *A = randn_d((size_t)N * K, 31 + tr);
        int lda = tr ? N : K;
        double *want = naive(tr, !tr, N, N, K, A, lda, A, lda);
        double *C[2];
        for (int t = 0; t < 2; t++) {
            sc_set_threads(t + 1);
            openblas_set_num_threads(2);
            C[t] = malloc(sizeof(double) * N * N);
            for (int i = 0; i < N * N; i++) C[t][i] = -7; /* the lower triangle must stay */
            syrk_upper_f64(tr, N, K, 1.0, A, lda, 0.0, C[t], N);
        }
        double err = 0;
        int lower_kept = 1;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                if (j >= i) err = fmax(err, fabs(C[0][i * N + j] - want[i * N + j]));
                else lower_kept &= C[0][i * N + j] == -7;
            }
        CHECK(err < 1e-11, "trans %d: syrk error %g", tr, err);
        CHECK(lower_kept, "trans %d: the strict lower triangle was written", tr);
        CHECK(!memcmp(C[0], C[1], sizeof(double) * N * N), "trans %d: syrk differs on 1 and 2 threads", tr);
        free(A), free(want), free(C[0]), free(C[1]);
    }
    sc_set_threads(2);
}
