/* test_probe.c - the online linear probe: its first Adam step moves every weight against the
 * finite-difference gradient of the cross-entropy, it learns a separable problem, unlabelled
 * rows are ignored, and the result does not depend on the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "probe.h"
#include "rng.h"
#include "test.h"

/* features of class k: a bump on coordinate k plus noise; rows v*N + i share image i's label */
static void make_batch(float *h, int *y, int N, int V, int D, int K, uint64_t seed) {
    Rng r = rng_derive(seed, 99, 0, 0, 0);
    for (int i = 0; i < N; i++) y[i] = (int)(rng_u32(&r) % (uint32_t)K);
    for (int v = 0; v < V; v++)
        for (int i = 0; i < N; i++)
            for (int d = 0; d < D; d++)
                h[((size_t)v * N + i) * D + d] = 0.3f * (rng_uniform(&r) - 0.5f) + (d == y[i] ? 1.0f : 0.0f);
}

/* mean cross-entropy of the probe on the labelled rows */
static double ce(const Probe *p, const float *h, const int *y, int N, int V, int K) {
    float *l = malloc(sizeof(float) * N * V * K);
    probe_logits(p, h, N * V, l);
    double s = 0;
    int n = 0;
    for (int r = 0; r < N * V; r++) {
        int t = y[r % N];
        if (t < 0) continue;
        double mx = -INFINITY, se = 0;
        for (int k = 0; k < K; k++) mx = fmax(mx, l[r * K + k]);
        for (int k = 0; k < K; k++) se += exp(l[r * K + k] - mx);
        s += log(se) + mx - l[r * K + t];
        n++;
    }
    free(l);
    return s / n;
}

TEST(first_step_follows_the_finite_difference_gradient) {
    const int N = 12, V = 2, D = 6, K = 4;
    float h[N * V * D];
    int y[N];
    make_batch(h, y, N, V, D, K, 1);
    y[3] = -1; /* an unlabelled image */
    Probe *p;
    SC_ASSERT(!probe_create(&p, D, K));
    int nt;
    CkTensor *st = probe_state(p, &nt);
    float *w = st[0].data, *b = st[1].data;
    /* start from non-zero weights so the gradient is not symmetric */
    for (int i = 0; i < K * D; i++) w[i] = 0.05f * (float)((i * 7) % 11 - 5);
    for (int k = 0; k < K; k++) b[k] = 0.02f * k;
    float w0[K * D], b0[K], g[K * D + K];
    memcpy(w0, w, sizeof w0), memcpy(b0, b, sizeof b0);
    const double eps = 1e-3;
    for (int i = 0; i < K * D + K; i++) {
        float *x = i < K * D ? &w[i] : &b[i - K * D], keep = *x;
        *x = keep + (float)eps;
        double lp = ce(p, h, y, N, V, K);
        *x = keep - (float)eps;
        double lm = ce(p, h, y, N, V, K);
        *x = keep;
        g[i] = (float)((lp - lm) / (2 * eps));
    }
    double loss0 = ce(p, h, y, N, V, K);
    ProbeStats ps;
    const float lr = 1e-3f;
    CHECK(probe_step(p, h, N, V, y, lr, &ps) == 0, "%s", sc_error());
    CHECK(ps.rows == 2 * (N - 1), "labelled rows %d (the unlabelled image's two views skipped)", ps.rows);
    CHECK_CLOSE("loss before the update", ps.loss, loss0, 1e-5, 1e-6);
    /* Adam's first step is lr * g / (|g| + eps): every weight moves by about lr against g */
    int bad = 0;
    for (int i = 0; i < K * D + K; i++) {
        float d = i < K * D ? w[i] - w0[i] : b[i - K * D] - b0[i - K * D];
        if (fabsf(g[i]) > 1e-4f && !(fabsf(d + lr * (g[i] > 0 ? 1 : -1)) < 1e-5f)) bad++;
    }
    CHECK(bad == 0, "%d weights did not move by -lr * sign(finite-difference gradient)", bad);
    CHECK(ce(p, h, y, N, V, K) < loss0, "the loss went down");
    probe_free(p);
}

TEST(learns_a_separable_problem_online) {
    const int N = 32, V = 2, D = 16, K = 5;
    float *h = malloc(sizeof(float) * N * V * D);
    int y[N];
    Probe *p;
    SC_ASSERT(!probe_create(&p, D, K));
    ProbeStats ps = {0};
    double first = -1;
    for (int s = 0; s < 60; s++) {
        make_batch(h, y, N, V, D, K, 100 + s); /* a new batch every step: accuracy is online */
        CHECK(probe_step(p, h, N, V, y, 0.05f, &ps) == 0, "%s", sc_error());
        if (first < 0) first = ps.top1;
    }
    CHECK(first < 0.5 && ps.top1 == 1.0, "online accuracy %.3f at the start, %.3f after 60 steps", first, ps.top1);
    probe_free(p);
    free(h);
}

TEST(unlabelled_batches_and_bad_labels) {
    enum { N = 4, V = 2, D = 3, K = 3 };
    float h[N * V * D] = {0};
    int y[N] = {-1, -1, -1, -1};
    Probe *p;
    SC_ASSERT(!probe_create(&p, D, K));
    ProbeStats ps;
    CHECK(probe_step(p, h, N, V, y, 0.1f, &ps) == 0 && ps.rows == 0 && isnan(ps.top1), "no labelled row");
    CHECK(probe_step(p, h, N, V, NULL, 0.1f, &ps) == 0 && ps.rows == 0, "no labels at all");
    y[2] = 3;
    CHECK(probe_step(p, h, N, V, y, 0.1f, &ps) == -1 && strstr(sc_error(), "label 3 of image 2"), "%s", sc_error());
    Probe *q;
    CHECK(probe_create(&q, 8, 1) == -1 && strstr(sc_error(), "at least 2 classes"), "one class refused");
    probe_free(p);
}

TEST(same_result_for_any_thread_count) {
    const int N = 64, V = 2, D = 96, K = 10;
    float *h = malloc(sizeof(float) * N * V * D);
    int y[N];
    float *out[2];
    int keep = sc_threads();
    for (int t = 0; t < 2; t++) {
        sc_set_threads(t + 1);
        Probe *p;
        SC_ASSERT(!probe_create(&p, D, K));
        ProbeStats ps;
        for (int s = 0; s < 3; s++) {
            make_batch(h, y, N, V, D, K, 7 + s);
            SC_ASSERT(!probe_step(p, h, N, V, y, 0.01f, &ps));
        }
        int n;
        CkTensor *st = probe_state(p, &n);
        out[t] = malloc(sizeof(float) * K * D);
        memcpy(out[t], st[0].data, sizeof(float) * K * D);
        probe_free(p);
    }
    sc_set_threads(keep);
    CHECK(!memcmp(out[0], out[1], sizeof(float) * K * D), "weights differ between 1 and 2 threads");
    free(out[0]), free(out[1]), free(h);
}

