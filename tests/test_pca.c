/* test_pca.c - PCA against scikit-learn's PCA(svd_solver='full') (tools/make_eval_fixtures.py):
 * digits train (1200 x 64, covariance path) and 300 Fashion-MNIST images (300 x 784, Gram path). */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "common.h"
#include "npy.h"
#include "pca.h"
#include "rng.h"
#include "test.h"

void openblas_set_num_threads(int);


static void check_fixture(const char *X_rel, const char *tag, int method) {
    int64_t sh[8], cs[8];
    float *X = fixture_f32(X_rel, sh);
    size_t N = (size_t)sh[0];
    int D = (int)sh[1];
    char p[128];
    snprintf(p, sizeof p, "eval/pca_%s_components.npy", tag);
    float *comp = fixture_f32(p, cs);
    int k = (int)cs[0];
    snprintf(p, sizeof p, "eval/pca_%s_var.npy", tag);
    float *var = fixture_f32(p, sh);
    snprintf(p, sizeof p, "eval/pca_%s_ratio.npy", tag);
    float *ratio = fixture_f32(p, sh);
    snprintf(p, sizeof p, "eval/pca_%s_mean.npy", tag);
    float *mean = fixture_f32(p, sh);
    snprintf(p, sizeof p, "eval/pca_%s_transform.npy", tag);
    float *tr = fixture_f32(p, sh);
    Pca pc;
    CHECK(pca_fit(&pc, X, N, D, k, method) == 0, "%s", sc_error());
    CHECK(pc.method == (method == PCA_AUTO ? (N >= (size_t)D ? PCA_COV : PCA_GRAM) : method),
          "method %d", pc.method);
    /* explained variance and its ratio: 1e-4 relative (double eigensolver on both sides) */
    double worst = 0;
    for (int j = 0; j < k; j++) worst = fmax(worst, fabs(pc.explained_variance[j] - var[j]) / var[j]);
    printf("  %s (%zu x %d, k=%d, %s): max relative variance error %.2e, %.3fs\n", tag, N, D, k,
           pc.method == PCA_GRAM ? "Gram" : "covariance", worst, pc.seconds);
    for (int j = 0; j < k; j++) {
        CHECK_CLOSE("explained_variance", pc.explained_variance[j], var[j], 1e-4, 0);
        CHECK_CLOSE("explained_variance_ratio", pc.explained_variance_ratio[j], ratio[j], 1e-4, 0);
    }
    CHECK_ARRAY_CLOSE("mean", pc.mean, mean, D, 1e-5, 1e-6);
    /* components up to sign (our sign rule is sklearn's, so first compare as is, then |.|);
     * tolerance 1e-3 absolute: a component's error grows as 1/(gap to the next eigenvalue) */
    int sign_ok = 1;
    for (int j = 0; j < k; j++) {
        double dot = 0;
        for (int c = 0; c < D; c++) dot += (double)pc.components[j * D + c] * comp[j * D + c];
        if (dot < 0) sign_ok = 0;
        CHECK(fabs(fabs(dot) - 1) < 1e-4, "%s component %d: |<ours, sklearn>| = %.6f", tag, j, fabs(dot));
    }
    CHECK(sign_ok, "%s: signs differ from sklearn's svd_flip", tag);
    CHECK_ARRAY_CLOSE("components", pc.components, comp, (size_t)k * D, 0, 1e-3);
    /* orthonormal rows */
    double off = 0, diag = 0;
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++) {
            double dot = 0;
            for (int c = 0; c < D; c++) dot += (double)pc.components[a * D + c] * pc.components[b * D + c];
            if (a == b) diag = fmax(diag, fabs(dot - 1));
            else off = fmax(off, fabs(dot));
        }
    CHECK(diag < 1e-5 && off < 1e-5, "%s: C C^T - I: diagonal %.2e, off-diagonal %.2e", tag, diag, off);
    float *out = malloc(sizeof(float) * 10 * k);
    pca_transform(&pc, X, 10, out);
    double tmax = 0;
    for (int i = 0; i < 10 * k; i++) tmax = fmax(tmax, fabs(tr[i]));
    CHECK_ARRAY_CLOSE("transform", out, tr, (size_t)10 * k, 0, 1e-3 * tmax);
    pca_free(&pc);
    free(X); free(comp); free(var); free(ratio); free(mean); free(tr); free(out);
}

TEST(digits_covariance_path_matches_sklearn) { check_fixture("eval/digits_Xtr.npy", "digits", PCA_AUTO); }
TEST(digits_gram_path_matches_sklearn) { check_fixture("eval/digits_Xtr.npy", "digits", PCA_GRAM); }
TEST(fmnist_gram_path_matches_sklearn) { check_fixture("eval/fmnist_X.npy", "fmnist", PCA_AUTO); }
TEST(fmnist_covariance_path_matches_sklearn) { check_fixture("eval/fmnist_X.npy", "fmnist", PCA_COV); }

TEST(independent_of_threads) {
    int64_t sh[8];
    float *X = fixture_f32("eval/fmnist_X.npy", sh);
    Pca a, b;
    openblas_set_num_threads(1);
    sc_set_threads(1);
    CHECK(pca_fit(&a, X, sh[0], (int)sh[1], 20, PCA_AUTO) == 0, "%s", sc_error());
    openblas_set_num_threads(2);
    sc_set_threads(2);
    CHECK(pca_fit(&b, X, sh[0], (int)sh[1], 20, PCA_AUTO) == 0, "%s", sc_error());
    CHECK(!memcmp(a.components, b.components, sizeof(float) * 20 * sh[1]) &&
              !memcmp(a.explained_variance, b.explained_variance, sizeof(double) * 20),
          "1 vs 2 threads differ");
    pca_free(&a);
    pca_free(&b);
    free(X);
}

TEST(bad_input_is_rejected) {
    float X[6] = {1, 2, 3, 4, 5, 6};
    Pca p;
    CHECK(pca_fit(&p, X, 3, 2, 3, PCA_AUTO) == -1 && strstr(sc_error(), "pca.components"), "%s", sc_error());
    CHECK(pca_fit(&p, X, 1, 6, 1, PCA_AUTO) == -1 && strstr(sc_error(), "2 rows"), "%s", sc_error());
    X[2] = NAN;
    CHECK(pca_fit(&p, X, 3, 2, 1, PCA_AUTO) == -1 && strstr(sc_error(), "not finite"), "%s", sc_error());
}

TEST(randomized_method_close_to_exact) {
    /* the large-input method on the Fashion-MNIST fixture (k = 50: 100 subspace columns of 300,
     * 8 products): measured 1.6e-7 relative on the variance of all 50 components; 1e-5 here */
    int64_t sh[8], cs[8];
    float *X = fixture_f32("eval/fmnist_X.npy", sh);
    float *var = fixture_f32("eval/pca_fmnist_var.npy", cs);
    float *comp = fixture_f32("eval/pca_fmnist_components.npy", cs);
    int k = (int)cs[0], D = (int)sh[1];
    Pca p;
    CHECK(pca_fit(&p, X, sh[0], D, k, PCA_RANDOMIZED) == 0, "%s", sc_error());
    double worst = 0, worst_dot = 1;
    for (int j = 0; j < k; j++) {
        worst = fmax(worst, fabs(p.explained_variance[j] - var[j]) / var[j]);
        double dot = 0;
        for (int c = 0; c < D; c++) dot += (double)p.components[j * D + c] * comp[j * D + c];
        if (j < 20) worst_dot = fmin(worst_dot, dot);
    }
    printf("  randomized: max relative variance error %.2e, min <c, c_sklearn> over the top 20 %.6f\n",
           worst, worst_dot);
    CHECK(worst < 1e-5, "randomized variance error %.2e", worst);
    CHECK(worst_dot > 0.999, "top-20 components: min dot %.6f (signs and directions)", worst_dot);
    pca_free(&p);
    free(X); free(var); free(comp);
}
