/* test_ntxent.c - NT-Xent: PyTorch fixtures (sthalles' info_nce_loss for V=2, the explicit
 * multi-positive formula for V=3,4), finite differences against a double-precision loss written
 * here, the naive reference, the multi-process split, thread-count independence, bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "npy.h"
#include "ntxent.h"
#include "rng.h"
#include "test.h"

void openblas_set_num_threads(int);

static float *randn(int n, uint64_t seed) {
    float *x = sc_alloc(n * sizeof *x);
    Rng r = rng_derive(seed, RNG_STREAM_TEST, 11, 0, 0);
    for (int i = 0; i < n; i++) x[i] = (float)rng_normal(&r);
    return x;
}

/* Double-precision NT-Xent of z (B = V*N rows, positives by id = row % N), loss only. */
static double loss_d(const double *z, int N, int V, int D, double tau) {
    int B = N * V;
    double *u = malloc(sizeof(double) * B * D), total = 0;
    for (int i = 0; i < B; i++) {
        double ss = 0;
        for (int d = 0; d < D; d++) ss += z[i * D + d] * z[i * D + d];
        for (int d = 0; d < D; d++) u[i * D + d] = z[i * D + d] / sqrt(ss);
    }
    for (int i = 0; i < B; i++) {
        double s[B], mx = -1e300, se = 0, pos = 0;
        for (int j = 0; j < B; j++) {
            s[j] = 0;
            for (int d = 0; d < D; d++) s[j] += u[i * D + d] * u[j * D + d];
            s[j] /= tau;
            if (j != i && s[j] > mx) mx = s[j];
        }
        for (int j = 0; j < B; j++)
            if (j != i) {
                se += exp(s[j] - mx);
                if (j % N == i % N) pos += s[j];
            }
        total += mx + log(se) - pos / (V - 1);
    }
    free(u);
    return total / B;
}

static void check_fd(int N, int V, int D, float tau, uint64_t seed) {
    int B = N * V;
    float *z = randn(B * D, seed), *dz = sc_alloc(B * D * sizeof(float));
    Ntxent *ws;
    SC_ASSERT(!ntxent_create(&ws, B, B, D));
    NtxentStats st;
    CHECK(!ntxent_loss(ws, z, N, V, D, tau, dz, &st), "%s", sc_error());
    double *zd = malloc(sizeof(double) * B * D);
    for (int i = 0; i < B * D; i++) zd[i] = z[i];
    CHECK_CLOSE("loss vs double", st.loss, loss_d(zd, N, V, D, tau), 1e-5, 1e-6);
    /* central differences in double, h = 1e-5: truncation error ~h^2, far below the float
     * gradient's own rounding (~1e-7 relative); tolerance rtol 1e-3, atol 1e-5 * max|g| */
    double gmax = 0;
    float *fd = sc_alloc(B * D * sizeof(float));
    for (int i = 0; i < B * D; i++) {
        double keep = zd[i], h = 1e-5;
        zd[i] = keep + h;
        double lp = loss_d(zd, N, V, D, tau);
        zd[i] = keep - h;
        double lm = loss_d(zd, N, V, D, tau);
        zd[i] = keep;
        fd[i] = (float)((lp - lm) / (2 * h));
        gmax = fmax(gmax, fabs(fd[i]));
    }
    char what[64];
    snprintf(what, sizeof what, "dz vs finite differences N=%d V=%d tau=%g", N, V, tau);
    CHECK_ARRAY_CLOSE(what, dz, fd, B * D, 1e-3, 1e-5 * gmax);
    ntxent_free(ws);
    sc_free(z), sc_free(dz), sc_free(fd), free(zd);
}

TEST(ntxent_finite_differences_v2) {
    check_fd(4, 2, 5, 0.5f, 1);
    check_fd(3, 2, 7, 0.1f, 2);
}
TEST(ntxent_finite_differences_v3_v4) {
    check_fd(3, 3, 4, 0.2f, 3);
    check_fd(2, 4, 6, 1.0f, 4);
}

static void check_fixture(const char *name) {
    char p[256];
    float *z, *dzw, *out;
    int64_t zs[2], os[1];
    snprintf(p, sizeof p, "opt/ntxent_%s_z.npy", name);
    if (npy_load_f32(fixture_path(p), &z, zs, NULL)) { CHECK(0, "%s", sc_error()); return; }
    snprintf(p, sizeof p, "opt/ntxent_%s_dz.npy", name);
    SC_ASSERT(!npy_load_f32(fixture_path(p), &dzw, NULL, NULL));
    snprintf(p, sizeof p, "opt/ntxent_%s_out.npy", name);
    SC_ASSERT(!npy_load_f32(fixture_path(p), &out, os, NULL));
    int B = (int)zs[0], D = (int)zs[1], N = (int)out[3], V = (int)out[4];
    float tau = out[5];
    SC_ASSERT(B == N * V);
    Ntxent *ws;
    SC_ASSERT(!ntxent_create(&ws, B, B, D));
    float *dz = sc_alloc(B * D * sizeof(float)), *dz2 = sc_alloc(B * D * sizeof(float));
    NtxentStats st, st2;
    CHECK(!ntxent_loss(ws, z, N, V, D, tau, dz, &st), "%s", sc_error());
    char what[96];
    /* loss: rtol 1e-5 (float32 similarities against a float64 torch reference) */
    snprintf(what, sizeof what, "%s loss", name);
    CHECK_CLOSE(what, st.loss, out[0], 1e-5, 1e-6);
    snprintf(what, sizeof what, "%s top1", name);
    CHECK_CLOSE(what, st.top1, out[1], 0, 1e-6);
    snprintf(what, sizeof what, "%s top5", name);
    CHECK_CLOSE(what, st.top5, out[2], 0, 1e-6);
    double gmax = 0;
    for (int i = 0; i < B * D; i++) gmax = fmax(gmax, fabs(dzw[i]));
    /* gradient: rtol 1e-4, atol 1e-5 x max|dz| */
    snprintf(what, sizeof what, "%s dz vs torch autograd", name);
    CHECK_ARRAY_CLOSE(what, dz, dzw, B * D, 1e-4, 1e-5 * gmax);
    /* the naive reference agrees too */
    CHECK(!ntxent_loss_ref(z, N, V, D, tau, dz2, &st2), "%s", sc_error());
    snprintf(what, sizeof what, "%s ref loss", name);
    CHECK_CLOSE(what, st2.loss, out[0], 1e-6, 1e-7);
    CHECK(st2.top1 == st.top1 && st2.top5 == st.top5, "ref accuracy %g %g vs %g %g", st2.top1,
          st2.top5, st.top1, st.top5);
    snprintf(what, sizeof what, "%s ref dz", name);
    CHECK_ARRAY_CLOSE(what, dz2, dzw, B * D, 1e-5, 1e-6 * gmax);
    ntxent_free(ws);
    free(z), free(dzw), free(out), sc_free(dz), sc_free(dz2);
}

TEST(ntxent_matches_torch_v2) {
    check_fixture("v2_t007");
    check_fixture("v2_t05");
    check_fixture("v2_t1");
    check_fixture("v2_big");
}
TEST(ntxent_matches_torch_multi_positive) {
    check_fixture("v3_t01");
    check_fixture("v3_t05");
    check_fixture("v4_t02");
}

/* Rows split over 2 "processes": loss contributions and gradients add up to the single call. */
TEST(ntxent_split_rows_equals_single_call) {
    const int N = 10, V = 2, D = 16, B = N * V;
    const float tau = 0.2f;
    float *z = randn(B * D, 5), *dz = sc_alloc(B * D * 4), *acc = sc_alloc(B * D * 4);
    float *rows = sc_alloc(B * D * 4), *cols = sc_alloc(B * D * 4);
    Ntxent *ws;
    SC_ASSERT(!ntxent_create(&ws, B, B, D));
    NtxentStats st, s;
    SC_ASSERT(!ntxent_loss(ws, z, N, V, D, tau, dz, &st));
    const int split[2][2] = {{0, 7}, {7, 13}}; /* uneven on purpose */
    double loss = 0, t1 = 0, t5 = 0;
    for (int p = 0; p < 2; p++) {
        int row0 = split[p][0], R = split[p][1];
        CHECK(!ntxent_loss_rows(ws, z, B, row0, R, NULL, V, D, tau, rows, cols, &s), "%s", sc_error());
        loss += s.loss, t1 += s.top1, t5 += s.top5;
        for (int i = 0; i < R * D; i++) acc[row0 * D + i] += rows[i];
        for (int i = 0; i < B * D; i++) acc[i] += cols[i]; /* the all-reduce */
    }
    CHECK_CLOSE("summed loss", loss, st.loss, 1e-6, 1e-7);
    CHECK_CLOSE("summed top1", t1, st.top1, 0, 1e-6);
    CHECK_CLOSE("summed top5", t5, st.top5, 0, 1e-6);
    CHECK_ARRAY_CLOSE("summed gradient", acc, dz, B * D, 1e-5, 1e-7);
    ntxent_free(ws);
    sc_free(z), sc_free(dz), sc_free(acc), sc_free(rows), sc_free(cols);
}

/* Real multi-process layout: P processes each hold V*n rows (view v of local image i at v*n+i),
 * gathered process after process; ids make the positives. Equals the single call on the same
 * embeddings in the global view-major order. */
TEST(ntxent_gathered_layout_with_ids) {
    const int P = 3, n = 3, V = 3, D = 8, Bl = V * n, C = P * Bl, N = P * n;
    const float tau = 0.3f;
    float *zg = randn(C * D, 6), *zs = sc_alloc(C * D * 4), *dzs = sc_alloc(C * D * 4);
    float *rows = sc_alloc(C * D * 4), *cols = sc_alloc(C * D * 4), *acc = sc_alloc(C * D * 4);
    int ids[C], map[C];
    for (int p = 0; p < P; p++)
        for (int v = 0; v < V; v++)
            for (int i = 0; i < n; i++) {
                int c = p * Bl + v * n + i, gi = p * n + i;
                ids[c] = gi, map[c] = v * N + gi; /* row of the same embedding, single layout */
                memcpy(zs + map[c] * D, zg + c * D, D * 4);
            }
    Ntxent *ws;
    SC_ASSERT(!ntxent_create(&ws, Bl, C, D));
    Ntxent *ws1;
    SC_ASSERT(!ntxent_create(&ws1, C, C, D));
    NtxentStats st, s;
    SC_ASSERT(!ntxent_loss(ws1, zs, N, V, D, tau, dzs, &st));
    double loss = 0, t1 = 0, t5 = 0;
    for (int p = 0; p < P; p++) {
        CHECK(!ntxent_loss_rows(ws, zg, C, p * Bl, Bl, ids, V, D, tau, rows, cols, &s), "%s", sc_error());
        loss += s.loss, t1 += s.top1, t5 += s.top5;
        for (int i = 0; i < Bl * D; i++) acc[p * Bl * D + i] += rows[i];
        for (int i = 0; i < C * D; i++) acc[i] += cols[i];
    }
    float *perm = sc_alloc(C * D * 4);
    for (int c = 0; c < C; c++) memcpy(perm + c * D, dzs + map[c] * D, D * 4);
    CHECK_CLOSE("loss", loss, st.loss, 1e-6, 1e-7);
    CHECK_CLOSE("top1", t1, st.top1, 0, 1e-6);
    CHECK_CLOSE("top5", t5, st.top5, 0, 1e-6);
    CHECK_ARRAY_CLOSE("gradient", acc, perm, C * D, 1e-5, 1e-7);
    ntxent_free(ws), ntxent_free(ws1);
    sc_free(zg), sc_free(zs), sc_free(dzs), sc_free(rows), sc_free(cols), sc_free(acc), sc_free(perm);
}

TEST(ntxent_same_result_for_any_thread_count) {
    const int N = 96, V = 2, D = 128, B = N * V;
    float *z = randn(B * D, 7), *a = sc_alloc(B * D * 4), *b = sc_alloc(B * D * 4);
    Ntxent *ws;
    SC_ASSERT(!ntxent_create(&ws, B, B, D));
    NtxentStats sa, sb;
    int keep = sc_threads();
    sc_set_threads(1), openblas_set_num_threads(1);
    SC_ASSERT(!ntxent_loss(ws, z, N, V, D, 0.1f, a, &sa));
    sc_set_threads(2), openblas_set_num_threads(2);
    SC_ASSERT(!ntxent_loss(ws, z, N, V, D, 0.1f, b, &sb));
    sc_set_threads(keep);
    CHECK(sa.loss == sb.loss && sa.top1 == sb.top1 && sa.top5 == sb.top5,
          "loss %.9g vs %.9g differ between 1 and 2 threads", sa.loss, sb.loss);
    CHECK(!memcmp(a, b, B * D * 4), "dz differs between 1 and 2 threads");
    ntxent_free(ws);
    sc_free(z), sc_free(a), sc_free(b);
}

TEST(ntxent_accuracy_and_limits) {
    /* two images whose views are identical and orthogonal to each other: perfect ranking */
    const int N = 3, V = 2, D = 3, B = 6;
    float z[B * D];
    memset(z, 0, sizeof z);
    for (int v = 0; v < V; v++)
        for (int i = 0; i < N; i++) z[(v * N + i) * D + i] = 1.0f + v; /* norms differ */
    Ntxent *ws;
    SC_ASSERT(!ntxent_create(&ws, B, B, D));
    NtxentStats st;
    float dz[B * D];
    SC_ASSERT(!ntxent_loss(ws, z, N, V, D, 0.1f, dz, &st));
    CHECK(st.top1 == 1.0f && st.top5 == 1.0f, "top1 %g top5 %g, expected 1", st.top1, st.top5);
    /* each row: positive at s = 10, 4 negatives at 0: loss = log(e^10 + 4) - 10 */
    CHECK_CLOSE("loss", st.loss, log(exp(10.0) + 4) - 10, 1e-5, 1e-9);
    /* swapping roles: every positive is orthogonal, negatives aligned -> top1 = 0 */
    for (int i = 0; i < N; i++) memset(z + (N + i) * D, 0, D * 4), z[(N + i) * D + (i + 1) % N] = 1;
    SC_ASSERT(!ntxent_loss(ws, z, N, V, D, 0.1f, dz, &st));
    CHECK(st.top1 == 0.0f && st.top5 == 1.0f, "top1 %g top5 %g, expected 0 and 1", st.top1, st.top5);
    /* tau = 1/large: stays finite (stable log-sum-exp) */
    SC_ASSERT(!ntxent_loss(ws, z, N, V, D, 1e-4f, dz, &st));
    CHECK(isfinite(st.loss), "loss %g not finite at tau 1e-4", st.loss);
    for (int i = 0; i < B * D; i++) CHECK(isfinite(dz[i]), "dz[%d] = %g", i, dz[i]);
    ntxent_free(ws);
}

TEST(ntxent_rejects_bad_input) {
    Ntxent *ws;
    CHECK(ntxent_create(&ws, 0, 4, 3) == -1 && ws == NULL, "zero rows accepted");
    SC_ASSERT(!ntxent_create(&ws, 8, 8, 4));
    float z[8 * 4], dz[8 * 4];
    for (int i = 0; i < 32; i++) z[i] = (float)(i % 5) - 2.0f;
    NtxentStats st;
    CHECK(ntxent_loss(ws, z, 8, 1, 4, 0.5f, dz, &st) == -1, "one view accepted");
    CHECK(ntxent_loss(ws, z, 4, 2, 4, 0.0f, dz, &st) == -1 && strstr(sc_error(), "ntxent.tau"),
          "tau 0: %s", sc_error());
    CHECK(ntxent_loss(ws, z, 4, 2, 4, NAN, dz, &st) == -1, "tau NaN accepted");
    CHECK(ntxent_loss(ws, z, 5, 2, 4, 0.5f, dz, &st) == -1, "rows beyond the workspace accepted");
    CHECK(ntxent_loss(ws, z, 4, 2, 3, 0.5f, dz, &st) == -1 && strstr(sc_error(), "dim"),
          "wrong dim: %s", sc_error());
    int ids[8] = {0, 1, 2, 3, 4, 5, 6, 7}; /* nobody has a positive */
    CHECK(ntxent_loss_rows(ws, z, 8, 0, 8, ids, 2, 4, 0.5f, dz, NULL, &st) == -1 &&
              strstr(sc_error(), "no positive"), "missing positive: %s", sc_error());
    CHECK(ntxent_loss_rows(ws, z, 8, 6, 4, NULL, 2, 4, 0.5f, dz, NULL, &st) == -1,
          "rows past the columns accepted");
    CHECK(ntxent_loss_rows(ws, z, 7, 0, 7, NULL, 2, 4, 0.5f, dz, NULL, &st) == -1,
          "odd batch with 2 views accepted");
    ntxent_free(ws);
    ntxent_free(NULL);
}
