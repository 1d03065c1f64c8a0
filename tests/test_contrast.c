/* test_contrast.c - the ablation losses (NT-Xent / NT-Logistic / margin triplet, cosine or dot
 * similarity): finite-difference gradients for every combination, equality with ntxent_loss for
 * the default, the same bits for any thread count. */
#include "common.h"
#include "contrast.h"
#include "ntxent.h"
#include "rng.h"
#include "test.h"

static void random_z(float *z, int n, uint64_t seed) {
    Rng r = rng_derive(seed, 0, 0, 0, 0);
    for (int i = 0; i < n; i++) z[i] = (float)(2 * rng_uniform_d(&r) - 1);
}

/* Central differences on every element of z against the analytic dz. */
static void fd_check(int loss, int sim, int N, int V, int D, float tau) {
    ContrastConfig cc;
    contrast_config_default(&cc);
    cc.loss = loss, cc.similarity = sim, cc.tau = tau, cc.margin = 0.3f;
    int B = N * V;
    Contrast *c;
    CHECK(contrast_create(&c, &cc, B, D) == 0, "%s", sc_error());
    float *z = sc_alloc(sizeof(float) * B * D), *dz = sc_alloc(sizeof(float) * B * D);
    random_z(z, B * D, 11 + loss * 3 + sim);
    double L;
    NtxentStats st;
    CHECK(contrast_loss(c, z, N, V, D, dz, &L, &st) == 0, "%s", sc_error());
    CHECK(isfinite(L) && L > 0, "loss %g", L);
    double worst = 0, gmax = 0;
    for (int i = 0; i < B * D; i++) gmax = fmax(gmax, fabs(dz[i]));
    for (int i = 0; i < B * D; i++) {
        float z0 = z[i], h = 1e-3f;
        z[i] = z0 + h;
        double lp, lm;
        float up = z[i];
        contrast_loss(c, z, N, V, D, NULL, &lp, NULL);
        z[i] = z0 - h;
        float dn = z[i];
        contrast_loss(c, z, N, V, D, NULL, &lm, NULL);
        z[i] = z0;
        double fd = (lp - lm) / ((double)up - dn);
        double err = fabs(fd - dz[i]);
        if (err > worst) worst = err;
    }
    CHECK(worst <= 1e-3 * gmax + 1e-7, "loss %d similarity %d V %d: worst |fd - dz| %.3g (max |dz| %.3g)",
          loss, sim, V, worst, gmax);
    CHECK(st.top1 >= 0 && st.top1 <= st.top5 && st.top5 <= 1, "accuracy %g %g", st.top1, st.top5);
    sc_free(z), sc_free(dz);
    contrast_free(c);
}

TEST(finite_differences_every_loss_and_similarity) {
    for (int loss = 0; loss <= CONTRAST_MARGIN; loss++)
        for (int sim = 0; sim <= SIMILARITY_DOT; sim++) {
            fd_check(loss, sim, 4, 2, 5, 0.5f);
            fd_check(loss, sim, 3, 3, 4, 0.2f);
        }
}

TEST(ntxent_cosine_equals_ntxent_loss) {
    int N = 8, V = 2, D = 16, B = N * V;
    float *z = sc_alloc(sizeof(float) * B * D), *a = sc_alloc(sizeof(float) * B * D),
          *b = sc_alloc(sizeof(float) * B * D);
    random_z(z, B * D, 3);
    ContrastConfig cc;
    contrast_config_default(&cc);
    cc.tau = 0.2f;
    CHECK(contrast_is_default(&cc), "default is NT-Xent with cosine");
    Contrast *c;
    Ntxent *nx;
    CHECK(contrast_create(&c, &cc, B, D) == 0 && ntxent_create(&nx, B, B, D) == 0, "%s", sc_error());
    NtxentStats s1, s2;
    double L;
    CHECK(contrast_loss(c, z, N, V, D, a, &L, &s1) == 0, "%s", sc_error());
    CHECK(ntxent_loss(nx, z, N, V, D, 0.2f, b, &s2) == 0, "%s", sc_error());
    CHECK_CLOSE("loss", L, s2.loss, 1e-6, 1e-7);
    CHECK_ARRAY_CLOSE("dz", a, b, (size_t)B * D, 1e-4, 1e-7);
    CHECK(s1.top1 == s2.top1 && s1.top5 == s2.top5, "accuracy %g/%g vs %g/%g", s1.top1, s1.top5,
          s2.top1, s2.top5);
    contrast_free(c);
    ntxent_free(nx);
    sc_free(z), sc_free(a), sc_free(b);
}

TEST(dot_similarity_scales_and_margin_is_hinge) {
    /* dot: scaling z by 2 changes the loss; cosine: it does not */
    int N = 4, V = 2, D = 6, B = N * V;
    float z[48], z2[48];
    random_z(z, B * D, 5);
    for (int i = 0; i < B * D; i++) z2[i] = 2 * z[i];
    for (int sim = 0; sim <= 1; sim++) {
        ContrastConfig cc;
        contrast_config_default(&cc);
        cc.similarity = sim;
        Contrast *c;
        contrast_create(&c, &cc, B, D);
        double l1, l2;
        contrast_loss(c, z, N, V, D, NULL, &l1, NULL);
        contrast_loss(c, z2, N, V, D, NULL, &l2, NULL);
        if (sim == SIMILARITY_COSINE) CHECK_CLOSE("cosine: scale-free", l2, l1, 1e-9, 1e-12);
        else CHECK(fabs(l2 - l1) > 1e-3, "dot: the scale matters (%g vs %g)", l1, l2);
        contrast_free(c);
    }
    /* margin triplet with identical views and orthogonal images: s_p = 1, s_k = 0, loss 0 for
     * margin < 1, margin - 1 above */
    float e[2 * 2 * 2] = {1, 0, 0, 1, 1, 0, 0, 1};
    ContrastConfig cc;
    contrast_config_default(&cc);
    cc.loss = CONTRAST_MARGIN, cc.margin = 0.5f;
    Contrast *c;
    contrast_create(&c, &cc, 4, 2);
    double l;
    contrast_loss(c, e, 2, 2, 2, NULL, &l, NULL);
    CHECK_CLOSE("margin 0.5: no violation", l, 0, 0, 1e-12);
    contrast_free(c);
    cc.margin = 1.5f;
    contrast_create(&c, &cc, 4, 2);
    contrast_loss(c, e, 2, 2, 2, NULL, &l, NULL);
    CHECK_CLOSE("margin 1.5: 0.5 per pair", l, 0.5, 1e-12, 1e-12);
    contrast_free(c);
}

TEST(same_bits_for_any_thread_count) {
    int N = 16, V = 2, D = 32, B = N * V;
    float *z = sc_alloc(sizeof(float) * B * D), *a = sc_alloc(sizeof(float) * B * D),
          *b = sc_alloc(sizeof(float) * B * D);
    random_z(z, B * D, 9);
    ContrastConfig cc;
    contrast_config_default(&cc);
    cc.loss = CONTRAST_NT_LOGISTIC, cc.similarity = SIMILARITY_DOT;
    Contrast *c;
    contrast_create(&c, &cc, B, D);
    double l1, l2;
    sc_set_threads(1);
    contrast_loss(c, z, N, V, D, a, &l1, NULL);
    sc_set_threads(2);
    contrast_loss(c, z, N, V, D, b, &l2, NULL);
    CHECK(l1 == l2 && !memcmp(a, b, sizeof(float) * B * D), "1 vs 2 threads");
    contrast_free(c);
    sc_free(z), sc_free(a), sc_free(b);
}

TEST(bad_input) {
    ContrastConfig cc;
    contrast_config_default(&cc);
    Contrast *c;
    cc.tau = 0;
    CHECK(contrast_create(&c, &cc, 8, 4) == -1 && strstr(sc_error(), "contrast.tau"), "tau 0");
    cc.tau = 0.5f;
    CHECK(contrast_create(&c, &cc, 8, 4) == 0, "%s", sc_error());
    float z[64] = {0};
    CHECK(contrast_loss(c, z, 8, 2, 4, NULL, NULL, NULL) == -1, "too many rows");
    CHECK(contrast_loss(c, z, 4, 1, 4, NULL, NULL, NULL) == -1, "one view");
    contrast_free(c);
}

