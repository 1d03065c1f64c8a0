/* test_knn.c - weighted kNN against the numpy reference of tools/make_eval_fixtures.py. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "common.h"
#include "knn.h"
#include "npy.h"
#include "test.h"

void openblas_set_num_threads(int);


/* The features prefix_X{tr,te}.npy (labels knn_y{tr,te}) against the numpy predictions and
 * [top-1, top-5] of ref_pred.npy / ref_stats.npy, k neighbours, t 0.1 */
static void check_against_numpy(const char *prefix, const char *ref, int k, int norm) {
    int64_t sh[8];
    size_t ntr, nte, np_;
    char p[96];
    snprintf(p, sizeof p, "eval/%s_Xtr.npy", prefix);
    float *Xtr = fixture_f32(p, sh);
    int D = (int)sh[1];
    snprintf(p, sizeof p, "eval/%s_Xte.npy", prefix);
    float *Xte = fixture_f32(p, sh);
    int *ytr = fixture_labels("eval/knn_ytr.npy", &ntr), *yte = fixture_labels("eval/knn_yte.npy", &nte);
    snprintf(p, sizeof p, "eval/%s_pred.npy", ref);
    int *want = fixture_labels(p, &np_);
    snprintf(p, sizeof p, "eval/%s_stats.npy", ref);
    float *st = fixture_f32(p, sh);
    int *pred = malloc(sizeof(int) * nte);
    double t1, t5;
    CHECK(knn_eval(Xtr, ytr, ntr, Xte, yte, nte, D, 6, k, 0.1f, norm, &t1, &t5, pred) == 0, "%s", sc_error());
    int diff = 0;
    for (size_t i = 0; i < nte; i++) diff += pred[i] != want[i];
    printf("  %s, %s k=%d: top-1 %.4f top-5 %.4f (numpy %.4f %.4f), %d predictions differ\n", prefix,
           knn_norm_name(norm), k, t1, t5, st[0], st[1], diff);
    /* float32 similarities vs numpy's float64: no neighbour set or vote here is that close */
    CHECK(diff == 0, "%s: %d of %zu predictions differ from numpy", ref, diff, nte);
    CHECK_CLOSE("top-1", t1, st[0], 0, 1e-6);
    CHECK_CLOSE("top-5", t5, st[1], 0, 1e-6);
    free(want); free(st); free(pred); free(Xtr); free(Xte); free(ytr); free(yte);
}

TEST(matches_numpy_reference) {
    int ks[3] = {1, 20, 200};
    for (int q = 0; q < 3; q++) {
        char ref[64];
        snprintf(ref, sizeof ref, "knn_k%d", ks[q]);
        check_against_numpy("knn", ref, ks[q], KNN_L2);
    }
}

/* non-negative features with a scale per feature: plain cosine, centred (SimpleShot's CL2N) and
 * standardised against numpy/sklearn (the fixture script checks that the three disagree) */
TEST(norms_match_numpy_reference) {
    const int norms[3] = {KNN_L2, KNN_CENTER, KNN_STANDARDIZE}, ks[2] = {20, 200};
    for (int a = 0; a < 3; a++)
        for (int q = 0; q < 2; q++) {
            char ref[64];
            snprintf(ref, sizeof ref, "knnpos_%s_k%d", knn_norm_name(norms[a]), ks[q]);
            check_against_numpy("knnpos", ref, ks[q], norms[a]);
        }
}

/* centring removes any common shift of train and test rows, standardising also any positive
 * scale per feature; plain cosine is changed by a shift */
TEST(center_and_standardize_invariances) {
    int64_t sh[8];
    size_t ntr, nte;
    float *Xtr = fixture_f32("eval/knnpos_Xtr.npy", sh);
    int D = (int)sh[1];
    float *Xte = fixture_f32("eval/knnpos_Xte.npy", sh);
    int *ytr = fixture_labels("eval/knn_ytr.npy", &ntr), *yte = fixture_labels("eval/knn_yte.npy", &nte);
    int *p0 = malloc(sizeof(int) * nte), *p1 = malloc(sizeof(int) * nte);
    int *s0 = malloc(sizeof(int) * nte), *s1 = malloc(sizeof(int) * nte);
    int *l0 = malloc(sizeof(int) * nte), *l1 = malloc(sizeof(int) * nte);
    double t1, t5;
    knn_eval(Xtr, ytr, ntr, Xte, yte, nte, D, 6, 20, 0.1f, KNN_CENTER, &t1, &t5, p0);
    knn_eval(Xtr, ytr, ntr, Xte, yte, nte, D, 6, 20, 0.1f, KNN_STANDARDIZE, &t1, &t5, s0);
    knn_eval(Xtr, ytr, ntr, Xte, yte, nte, D, 6, 20, 0.1f, KNN_L2, &t1, &t5, l0);
    /* shift every feature by a different amount (powers of two: exact in float) */
    for (size_t i = 0; i < ntr; i++)
        for (int j = 0; j < D; j++) Xtr[i * D + j] += (float)(1 << (j % 4));
    for (size_t i = 0; i < nte; i++)
        for (int j = 0; j < D; j++) Xte[i * D + j] += (float)(1 << (j % 4));
    knn_eval(Xtr, ytr, ntr, Xte, yte, nte, D, 6, 20, 0.1f, KNN_CENTER, &t1, &t5, p1);
    knn_eval(Xtr, ytr, ntr, Xte, yte, nte, D, 6, 20, 0.1f, KNN_L2, &t1, &t5, l1);
    int dc = 0, dl = 0;
    for (size_t i = 0; i < nte; i++) dc += p0[i] != p1[i], dl += l0[i] != l1[i];
    CHECK(dc == 0, "center: a common shift changed %d predictions", dc);
    CHECK(dl > 0, "l2: a common shift changed no prediction (the test would not see centring)");
    /* and scale each feature by a power of two */
    for (size_t i = 0; i < ntr; i++)
        for (int j = 0; j < D; j++) Xtr[i * D + j] *= (float)(1 << (j % 5));
    for (size_t i = 0; i < nte; i++)
        for (int j = 0; j < D; j++) Xte[i * D + j] *= (float)(1 << (j % 5));
    knn_eval(Xtr, ytr, ntr, Xte, yte, nte, D, 6, 20, 0.1f, KNN_STANDARDIZE, &t1, &t5, s1);
    int ds = 0;
    for (size_t i = 0; i < nte; i++) ds += s0[i] != s1[i];
    CHECK(ds == 0, "standardize: a shift and a scale per feature changed %d predictions", ds);
    /* centring and standardising also give the same result on 1 and 2 threads */
    openblas_set_num_threads(1);
    sc_set_threads(1);
    knn_eval(Xtr, ytr, ntr, Xte, yte, nte, D, 6, 20, 0.1f, KNN_STANDARDIZE, &t1, &t5, p0);
    openblas_set_num_threads(2);
    sc_set_threads(2);
    knn_eval(Xtr, ytr, ntr, Xte, yte, nte, D, 6, 20, 0.1f, KNN_STANDARDIZE, &t1, &t5, p1);
    CHECK(!memcmp(p0, p1, sizeof(int) * nte), "standardize: 1 vs 2 threads differ");
    CHECK(knn_eval(Xtr, ytr, ntr, Xte, yte, nte, D, 6, 20, 0.1f, 3, &t1, &t5, NULL) == -1 &&
          strstr(sc_error(), "knn.norm"), "%s", sc_error());
    free(Xtr); free(Xte); free(ytr); free(yte); free(p0); free(p1); free(s0); free(s1); free(l0); free(l1);
}

TEST(independent_of_threads_and_scale) {
    int64_t sh[8];
    size_t ntr, nte;
    float *Xtr = fixture_f32("eval/knn_Xtr.npy", sh);
    int D = (int)sh[1];
    float *Xte = fixture_f32("eval/knn_Xte.npy", sh);
    int *ytr = fixture_labels("eval/knn_ytr.npy", &ntr), *yte = fixture_labels("eval/knn_yte.npy", &nte);
    int *p1 = malloc(sizeof(int) * nte), *p2 = malloc(sizeof(int) * nte);
    double a1, a5, b1, b5;
    openblas_set_num_threads(1);
    sc_set_threads(1);
    knn_eval(Xtr, ytr, ntr, Xte, yte, nte, D, 6, 200, 0.1f, KNN_L2, &a1, &a5, p1);
    openblas_set_num_threads(2);
    sc_set_threads(2);
    knn_eval(Xtr, ytr, ntr, Xte, yte, nte, D, 6, 200, 0.1f, KNN_L2, &b1, &b5, p2);
    CHECK(a1 == b1 && a5 == b5 && !memcmp(p1, p2, sizeof(int) * nte), "1 vs 2 threads differ");
    /* cosine similarity: scaling a test row by 4 (exact in float) changes nothing */
    for (size_t i = 0; i < nte * D; i++) Xte[i] *= 4;
    knn_eval(Xtr, ytr, ntr, Xte, yte, nte, D, 6, 200, 0.1f, KNN_L2, &b1, &b5, p2);
    CHECK(a1 == b1 && !memcmp(p1, p2, sizeof(int) * nte), "scaled features changed the result");
    /* k beyond the train set uses all of it */
    CHECK(knn_eval(Xtr, ytr, ntr, Xte, yte, nte, D, 6, 100000, 0.1f, KNN_L2, &b1, &b5, NULL) == 0, "%s", sc_error());
    free(Xtr); free(Xte); free(ytr); free(yte); free(p1); free(p2);
}

TEST(tiny_handmade_case) {
    /* train: two points of class 0 near (1,0), one of class 1 at (0,1); query (1,0.1) */
    float Xtr[6] = {1, 0, 2, 0.2f, 0, 1}, Xte[4] = {1, 0.1f, 0, 3};
    int ytr[3] = {0, 0, 1}, yte[2] = {0, 1}, pred[2];
    double t1, t5;
    CHECK(knn_eval(Xtr, ytr, 3, Xte, yte, 2, 2, 2, 2, 0.1f, KNN_L2, &t1, &t5, pred) == 0, "%s", sc_error());
    CHECK(pred[0] == 0 && pred[1] == 1 && t1 == 1.0, "pred %d %d top-1 %g", pred[0], pred[1], t1);
    /* k = 3 with a huge temperature: votes ~ counts, class 0 wins both */
    CHECK(knn_eval(Xtr, ytr, 3, Xte, yte, 2, 2, 2, 3, 1e6f, KNN_L2, &t1, &t5, pred) == 0, "%s", sc_error());
    CHECK(pred[0] == 0 && pred[1] == 0 && t1 == 0.5 && t5 == 1.0, "pred %d %d top-1 %g", pred[0], pred[1], t1);
}

TEST(bad_input_is_rejected) {
    float X[4] = {1, 0, 0, 1};
    int y[2] = {0, 5};
    double t1, t5;
    CHECK(knn_eval(X, y, 2, X, y, 2, 2, 2, 1, 0.1f, KNN_L2, &t1, &t5, NULL) == -1 && strstr(sc_error(), "label 5"), "%s", sc_error());
    y[1] = 1;
    CHECK(knn_eval(X, y, 2, X, y, 2, 2, 2, 0, 0.1f, KNN_L2, &t1, &t5, NULL) == -1 && strstr(sc_error(), "knn.k"), "%s", sc_error());
    CHECK(knn_eval(X, y, 2, X, y, 2, 2, 2, 1, 0.0f, KNN_L2, &t1, &t5, NULL) == -1 && strstr(sc_error(), "temperature"), "%s", sc_error());
    X[3] = NAN;
    CHECK(knn_eval(X, y, 2, X, y, 2, 2, 2, 1, 0.1f, KNN_L2, &t1, &t5, NULL) == -1 && strstr(sc_error(), "NaN"), "%s", sc_error());
}
