/* test_knn.c - weighted kNN against the numpy reference of tools/make_eval_fixtures.py. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "common.h"
#include "knn.h"
#include "npy.h"
#include "test.h"

void openblas_set_num_threads(int);


TEST(matches_numpy_reference) {
    int64_t sh[8];
    size_t ntr, nte, np_;
    float *Xtr = fixture_f32("eval/knn_Xtr.npy", sh);
    int D = (int)sh[1];
    float *Xte = fixture_f32("eval/knn_Xte.npy", sh);
    int *ytr = fixture_labels("eval/knn_ytr.npy", &ntr), *yte = fixture_labels("eval/knn_yte.npy", &nte);
    int ks[3] = {1, 20, 200};
    for (int q = 0; q < 3; q++) {
        char p[64];
        snprintf(p, sizeof p, "eval/knn_k%d_pred.npy", ks[q]);
        int *want = fixture_labels(p, &np_);
        snprintf(p, sizeof p, "eval/knn_k%d_stats.npy", ks[q]);
        float *st = fixture_f32(p, sh);
        int *pred = malloc(sizeof(int) * nte);
        double t1, t5;
        CHECK(knn_eval(Xtr, ytr, ntr, Xte, yte, nte, D, 6, ks[q], 0.1f, &t1, &t5, pred) == 0, "%s", sc_error());
        int diff = 0;
        for (size_t i = 0; i < nte; i++) diff += pred[i] != want[i];
        printf("  k=%d: top-1 %.4f top-5 %.4f (numpy %.4f %.4f), %d predictions differ\n", ks[q],
               t1, t5, st[0], st[1], diff);
        /* float32 similarities vs numpy's float64: no neighbour set or vote here is that close */
        CHECK(diff == 0, "k=%d: %d of %zu predictions differ from numpy", ks[q], diff, nte);
        CHECK_CLOSE("top-1", t1, st[0], 0, 1e-6);
        CHECK_CLOSE("top-5", t5, st[1], 0, 1e-6);
        free(want); free(st); free(pred);
    }
    free(Xtr); free(Xte); free(ytr); free(yte);
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
    knn_eval(Xtr, ytr, ntr, Xte, yte, nte, D, 6, 200, 0.1f, &a1, &a5, p1);
    openblas_set_num_threads(2);
    sc_set_threads(2);
    knn_eval(Xtr, ytr, ntr, Xte, yte, nte, D, 6, 200, 0.1f, &b1, &b5, p2);
    CHECK(a1 == b1 && a5 == b5 && !memcmp(p1, p2, sizeof(int) * nte), "1 vs 2 threads differ");
    /* cosine similarity: scaling a test row by 4 (exact in float) changes nothing */
    for (size_t i = 0; i < nte * D; i++) Xte[i] *= 4;
    knn_eval(Xtr, ytr, ntr, Xte, yte, nte, D, 6, 200, 0.1f, &b1, &b5, p2);
    CHECK(a1 == b1 && !memcmp(p1, p2, sizeof(int) * nte), "scaled features changed the result");
    /* k beyond the train set uses all of it */
    CHECK(knn_eval(Xtr, ytr, ntr, Xte, yte, nte, D, 6, 100000, 0.1f, &b1, &b5, NULL) == 0, "%s", sc_error());
    free(Xtr); free(Xte); free(ytr); free(yte); free(p1); free(p2);
}

TEST(tiny_handmade_case) {
    /* train: two points of class 0 near (1,0), one of class 1 at (0,1); query (1,0.1) */
    float Xtr[6] = {1, 0, 2, 0.2f, 0, 1}, Xte[4] = {1, 0.1f, 0, 3};
    int ytr[3] = {0, 0, 1}, yte[2] = {0, 1}, pred[2];
    double t1, t5;
    CHECK(knn_eval(Xtr, ytr, 3, Xte, yte, 2, 2, 2, 2, 0.1f, &t1, &t5, pred) == 0, "%s", sc_error());
    CHECK(pred[0] == 0 && pred[1] == 1 && t1 == 1.0, "pred %d %d top-1 %g", pred[0], pred[1], t1);
    /* k = 3 with a huge temperature: votes ~ counts, class 0 wins both */
    CHECK(knn_eval(Xtr, ytr, 3, Xte, yte, 2, 2, 2, 3, 1e6f, &t1, &t5, pred) == 0, "%s", sc_error());
    CHECK(pred[0] == 0 && pred[1] == 0 && t1 == 0.5 && t5 == 1.0, "pred %d %d top-1 %g", pred[0], pred[1], t1);
}

TEST(bad_input_is_rejected) {
    float X[4] = {1, 0, 0, 1};
    int y[2] = {0, 5};
    double t1, t5;
    CHECK(knn_eval(X, y, 2, X, y, 2, 2, 2, 1, 0.1f, &t1, &t5, NULL) == -1 && strstr(sc_error(), "label 5"), "%s", sc_error());
    y[1] = 1;
    CHECK(knn_eval(X, y, 2, X, y, 2, 2, 2, 0, 0.1f, &t1, &t5, NULL) == -1 && strstr(sc_error(), "knn.k"), "%s", sc_error());
    CHECK(knn_eval(X, y, 2, X, y, 2, 2, 2, 1, 0.0f, &t1, &t5, NULL) == -1 && strstr(sc_error(), "temperature"), "%s", sc_error());
    X[3] = NAN;
    CHECK(knn_eval(X, y, 2, X, y, 2, 2, 2, 1, 0.1f, &t1, &t5, NULL) == -1 && strstr(sc_error(), "NaN"), "%s", sc_error());
}
