/* test_linear_eval.c - logistic loss gradient, L-BFGS against scikit-learn, the protocol.
 * Fixtures: tests/fixtures/eval/ from tools/make_eval_fixtures.py (sklearn 1.2). */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "common.h"
#include "linear_eval.h"
#include "npy.h"
#include "rng.h"
#include "test.h"

void openblas_set_num_threads(int);

/* A fixture in double precision (sklearn's coefficients are float64). */
static double *load_d(const char *rel, size_t *n) {
    NpyArray a;
    if (npy_open(&a, fixture_path(rel))) {
        fprintf(stderr, "cannot load fixture %s: %s\n", rel, sc_error());
        exit(1);
    }
    double *d = malloc(sizeof(double) * a.count);
    for (size_t i = 0; i < a.count; i++) d[i] = npy_get_f64(&a, i);
    if (n) *n = a.count;
    npy_close(&a);
    return d;
}

TEST(loss_gradient_matches_finite_differences) {
    const int N = 23, D = 7, K = 4;
    double X[23 * 7], theta[4 * 7 + 4], g[4 * 7 + 4], work[23 * 5];
    int y[23];
    Rng r = rng_derive(1, RNG_STREAM_TEST, 10, 0, 0);
    for (int i = 0; i < N * D; i++) X[i] = rng_normal(&r);
    for (int i = 0; i < N; i++) y[i] = (int)rng_below(&r, K);
    for (int i = 0; i < K * D + K; i++) theta[i] = 0.5 * rng_normal(&r);
    double lambda = 0.3;
    logreg_loss_grad(X, y, N, D, K, lambda, theta, g, work);
    for (int i = 0; i < K * D + K; i++) {
        double h = 1e-5, keep = theta[i];
        theta[i] = keep + h;
        double fp = logreg_loss_grad(X, y, N, D, K, lambda, theta, NULL, work);
        theta[i] = keep - h;
        double fm = logreg_loss_grad(X, y, N, D, K, lambda, theta, NULL, work);
        theta[i] = keep;
        /* central differences: error O(h^2) ~ 1e-10, rounding ~ 1e-16/1e-5 */
        CHECK_CLOSE("dL/dtheta", g[i], (fp - fm) / (2 * h), 1e-6, 1e-9);
    }
}

/* digits train standardised as sklearn's StandardScaler does (double, population std) */
static void standardise(const float *Xtr, size_t ntr, const float *Xte, size_t nte, int D,
                        double **A, double **B) {
    double *mean = calloc(D, sizeof(double)), *sd = calloc(D, sizeof(double));
    for (size_t i = 0; i < ntr; i++)
        for (int j = 0; j < D; j++) mean[j] += Xtr[i * D + j];
    for (int j = 0; j < D; j++) mean[j] /= ntr;
    for (size_t i = 0; i < ntr; i++)
        for (int j = 0; j < D; j++) sd[j] += (Xtr[i * D + j] - mean[j]) * (Xtr[i * D + j] - mean[j]);
    for (int j = 0; j < D; j++) {
        sd[j] = sqrt(sd[j] / ntr);
        if (sd[j] == 0) sd[j] = 1;
    }
    *A = malloc(sizeof(double) * ntr * D);
    *B = malloc(sizeof(double) * nte * D);
    for (size_t i = 0; i < ntr; i++)
        for (int j = 0; j < D; j++) (*A)[i * D + j] = (Xtr[i * D + j] - mean[j]) / sd[j];
    for (size_t i = 0; i < nte; i++)
        for (int j = 0; j < D; j++) (*B)[i * D + j] = (Xte[i * D + j] - mean[j]) / sd[j];
    free(mean);
    free(sd);
}

static void check_against_sklearn(const char *tag) {
    int64_t sh[8];
    size_t ntr, nte, n;
    float *Xtr = fixture_f32("eval/digits_Xtr.npy", sh);
    int D = (int)sh[1];
    float *Xte = fixture_f32("eval/digits_Xte.npy", sh);
    int *ytr = fixture_labels("eval/digits_ytr.npy", &ntr), *yte = fixture_labels("eval/digits_yte.npy", &nte);
    char p[128];
    snprintf(p, sizeof p, "eval/lr_C%s_coef.npy", tag);
    double *coef = load_d(p, &n);
    snprintf(p, sizeof p, "eval/lr_C%s_intercept.npy", tag);
    double *icpt = load_d(p, NULL);
    snprintf(p, sizeof p, "eval/lr_C%s_stats.npy", tag);
    double *st = load_d(p, NULL);
    const int K = 10;
    double C = st[0], lambda = 1.0 / (C * (double)ntr);
    double *A, *B;
    standardise(Xtr, ntr, Xte, nte, D, &A, &B);
    double *theta = calloc(K * D + K, sizeof(double)), *work = malloc(sizeof(double) * ntr * (K + 1));
    int conv = 0;
    int it = logreg_fit_lbfgs(A, ytr, ntr, D, K, lambda, theta, 20000, 1e-8, 10, &conv);
    CHECK(conv, "L-BFGS did not converge in %d iterations", it);
    double loss = logreg_loss_grad(A, ytr, ntr, D, K, lambda, theta, NULL, work);
    /* the same strictly convex objective (in W): optimal values agree to solver precision */
    CHECK_CLOSE("objective vs sklearn", loss, st[4], 1e-7, 1e-9);
    /* coefficients. sklearn's lbfgs stops on scipy's ftol with max |grad| ~ 1e-5 (C=0.05) /
     * 6e-7 (C=1), so its coefficients are off the exact optimum by up to ~7e-4 (measured by
     * the fixture script): compare with it at 2e-3 of the largest coefficient, and with the
     * polished optimum (scipy L-BFGS-B to |grad| 1e-10 from sklearn's solution) at 1e-5. */
    snprintf(p, sizeof p, "eval/lr_C%s_polished.npy", tag);
    double *pol = load_d(p, NULL);
    double cmax = 0, dsk = 0, dpol = 0;
    for (size_t i = 0; i < n; i++) cmax = fmax(cmax, fabs(coef[i]));
    for (size_t i = 0; i < n; i++) dsk = fmax(dsk, fabs(theta[i] - coef[i]));
    for (size_t i = 0; i < n; i++) dpol = fmax(dpol, fabs(theta[i] - pol[i]));
    printf("  C=%g: max|W| %.3f, max |W - W_sklearn| %.2e, max |W - W_polished| %.2e\n", C, cmax,
           dsk, dpol);
    CHECK(dsk <= 2e-3 * cmax, "C=%g: max |W - W_sklearn| = %g (max |W| %g)", C, dsk, cmax);
    CHECK(dpol <= 1e-5 * cmax, "C=%g: max |W - W_polished| = %g (max |W| %g)", C, dpol, cmax);
    /* intercepts are defined up to a common shift: compare centred */
    double mo = 0, ms = 0, mp = 0;
    for (int k = 0; k < K; k++)
        mo += theta[K * D + k] / K, ms += icpt[k] / K, mp += pol[K * D + k] / K;
    for (int k = 0; k < K; k++) {
        CHECK_CLOSE("intercept vs sklearn (centred)", theta[K * D + k] - mo, icpt[k] - ms, 0, 2e-3 * cmax);
        CHECK_CLOSE("intercept vs polished (centred)", theta[K * D + k] - mo, pol[K * D + k] - mp, 0, 1e-5 * cmax);
    }
    free(pol);
    size_t c1, c5;
    logreg_score(B, yte, nte, D, K, theta, &c1, &c5);
    printf("  C=%g: ours test top-1 %.4f top-5 %.4f, sklearn %.4f %.4f (%d iterations)\n", C,
           (double)c1 / nte, (double)c5 / nte, st[2], st[3], it);
    /* the protocol's own entry point at the same regularisation: within 0.5 points */
    LinearEvalConfig cfg;
    linear_eval_default_config(&cfg);
    cfg.grid = LINEAR_GRID_FIXED;
    cfg.lambda = lambda;
    cfg.tol = 1e-7;
    LinearEvalResult r;
    CHECK(linear_eval_fit_predict(Xtr, ytr, ntr, Xte, yte, nte, D, K, &cfg, &r) == 0, "%s", sc_error());
    CHECK(fabs(r.top1 - st[2]) <= 0.005, "top-1 %.4f vs sklearn %.4f", r.top1, st[2]);
    CHECK(fabs(r.top5 - st[3]) <= 0.005, "top-5 %.4f vs sklearn %.4f", r.top5, st[3]);
    CHECK(fabs(r.train_top1 - st[1]) <= 0.005, "train top-1 %.4f vs sklearn %.4f", r.train_top1, st[1]);
    CHECK_CLOSE("C reported", r.C, C, 1e-12, 0);
    free(Xtr); free(Xte); free(ytr); free(yte); free(coef); free(icpt); free(st);
    free(A); free(B); free(theta); free(work);
}

TEST(lbfgs_matches_sklearn_C0p05) { check_against_sklearn("0p05"); }
TEST(lbfgs_matches_sklearn_C1) { check_against_sklearn("1"); }

static void digits(float **Xtr, int **ytr, size_t *ntr, float **Xte, int **yte, size_t *nte, int *D) {
    int64_t sh[8];
    *Xtr = fixture_f32("eval/digits_Xtr.npy", sh);
    *D = (int)sh[1];
    *Xte = fixture_f32("eval/digits_Xte.npy", sh);
    *ytr = fixture_labels("eval/digits_ytr.npy", ntr);
    *yte = fixture_labels("eval/digits_yte.npy", nte);
}

TEST(grid_search_is_deterministic_across_threads) {
    float *Xtr, *Xte;
    int *ytr, *yte, D;
    size_t ntr, nte;
    digits(&Xtr, &ytr, &ntr, &Xte, &yte, &nte, &D);
    LinearEvalConfig cfg;
    linear_eval_default_config(&cfg);
    cfg.seed = 7;
    LinearEvalResult r1, r2;
    openblas_set_num_threads(1);
    sc_set_threads(1);
    CHECK(linear_eval_fit_predict(Xtr, ytr, ntr, Xte, yte, nte, D, 10, &cfg, &r1) == 0, "%s", sc_error());
    openblas_set_num_threads(2);
    sc_set_threads(2);
    CHECK(linear_eval_fit_predict(Xtr, ytr, ntr, Xte, yte, nte, D, 10, &cfg, &r2) == 0, "%s", sc_error());
    printf("  grid: lambda %g (C %g) val %.4f test top-1 %.4f top-5 %.4f, %.2fs\n", r1.lambda,
           r1.C, r1.val_top1, r1.top1, r1.top5, r1.seconds);
    CHECK(r1.n_grid == 10 && r1.n_val == 240 && r1.n_fit == 960, "grid %d val %zu fit %zu",
          r1.n_grid, r1.n_val, r1.n_fit);
    CHECK(r1.top1 >= 0.95, "digits top-1 %.4f below 0.95", r1.top1);
    CHECK(r1.top1 == r2.top1 && r1.lambda == r2.lambda && r1.iters == r2.iters &&
              memcmp(r1.grid_val_top1, r2.grid_val_top1, sizeof r1.grid_val_top1) == 0,
          "1 vs 2 threads differ: top-1 %.6f/%.6f lambda %g/%g iters %d/%d", r1.top1, r2.top1,
          r1.lambda, r2.lambda, r1.iters, r2.iters);
    /* the grid is log-spaced in [1e-6, 1e1] */
    CHECK_CLOSE("grid[0]", r1.grid_lambda[0], 1e-6, 1e-12, 0);
    CHECK_CLOSE("grid[9]", r1.grid_lambda[9], 10, 1e-12, 0);
    cfg.grid = LINEAR_GRID_PAPER;
    CHECK(linear_eval_fit_predict(Xtr, ytr, ntr, Xte, yte, nte, D, 10, &cfg, &r1) == 0, "%s", sc_error());
    CHECK(r1.n_grid == 45, "paper grid has %d values", r1.n_grid);
    CHECK_CLOSE("paper grid[44]", r1.grid_lambda[44], 1e5, 1e-12, 0);
    free(Xtr); free(Xte); free(ytr); free(yte);
}

TEST(adam_solver_learns_digits) {
    float *Xtr, *Xte;
    int *ytr, *yte, D;
    size_t ntr, nte;
    digits(&Xtr, &ytr, &ntr, &Xte, &yte, &nte, &D);
    LinearEvalConfig cfg;
    linear_eval_default_config(&cfg);
    cfg.solver = LINEAR_SOLVER_ADAM;
    LinearEvalResult r1, r2;
    CHECK(linear_eval_fit_predict(Xtr, ytr, ntr, Xte, yte, nte, D, 10, &cfg, &r1) == 0, "%s", sc_error());
    CHECK(linear_eval_fit_predict(Xtr, ytr, ntr, Xte, yte, nte, D, 10, &cfg, &r2) == 0, "%s", sc_error());
    printf("  adam: test top-1 %.4f top-5 %.4f, %.2fs\n", r1.top1, r1.top5, r1.seconds);
    /* 500 Adam steps at lr 3e-4 (the notebook's setting) leave it short of L-BFGS's 0.95+ */
    CHECK(r1.top1 >= 0.88, "adam digits top-1 %.4f below 0.88", r1.top1);
    CHECK(r1.top1 == r2.top1 && r1.top5 == r2.top5, "adam not deterministic");
    free(Xtr); free(Xte); free(ytr); free(yte);
}

TEST(bad_input_is_rejected) {
    float X[6] = {1, 2, 3, 4, 5, 6};
    int y[3] = {0, 1, 2};
    CHECK(linear_eval_check_input(X, y, 3, 2, 3, "t") == 0, "%s", sc_error());
    y[1] = 3;
    CHECK(linear_eval_check_input(X, y, 3, 2, 3, "t") == -1 && strstr(sc_error(), "label 3"),
          "got '%s'", sc_error());
    y[1] = -1;
    CHECK(linear_eval_check_input(X, y, 3, 2, 3, "t") == -1 && strstr(sc_error(), "outside"),
          "got '%s'", sc_error());
    y[1] = 1;
    X[4] = NAN;
    CHECK(linear_eval_check_input(X, y, 3, 2, 3, "t") == -1 && strstr(sc_error(), "NaN"),
          "got '%s'", sc_error());
    X[4] = INFINITY;
    CHECK(linear_eval_check_input(X, y, 3, 2, 3, "t") == -1 && strstr(sc_error(), "infinite"),
          "got '%s'", sc_error());
    LinearEvalConfig cfg;
    linear_eval_default_config(&cfg);
    LinearEvalResult r;
    X[4] = 0;
    CHECK(linear_eval_fit_predict(X, y, 2, X, y, 2, 2, 3, &cfg, &r) == -1 &&
              strstr(sc_error(), "validation"),
          "2 rows with a 20%% hold-out: got '%s'", sc_error());
}

/* The loss and gradient on a problem large enough that both products run their tiles on
 * several threads and the gradient's reduction over rows is cut into chunks (src/gemm.h):
 * bit-identical on 1 and 2 threads. */
TEST(loss_grad_bits_independent_of_threads) {
    const size_t N = 20000;
    const int D = 64, K = 10;
    double *X = malloc(sizeof(double) * N * D), *theta = malloc(sizeof(double) * (K * D + K));
    int *y = malloc(sizeof(int) * N);
    Rng r = rng_derive(3, 77, 0, 0, 0);
    for (size_t i = 0; i < N * D; i++) X[i] = rng_normal(&r);
    for (size_t i = 0; i < N; i++) y[i] = (int)rng_below(&r, K);
    for (int i = 0; i < K * D + K; i++) theta[i] = 0.1 * rng_normal(&r);
    double *g[2], loss[2], *work = malloc(sizeof(double) * N * (K + 1));
    for (int t = 0; t < 2; t++) {
        sc_set_threads(t + 1);
        openblas_set_num_threads(2);
        g[t] = malloc(sizeof(double) * (K * D + K));
        loss[t] = logreg_loss_grad(X, y, N, D, K, 1e-3, theta, g[t], work);
    }
    CHECK(loss[0] == loss[1], "loss %.17g vs %.17g", loss[0], loss[1]);
    CHECK(!memcmp(g[0], g[1], sizeof(double) * (K * D + K)), "gradient differs on 1 and 2 threads");
    free(X), free(theta), free(y), free(work), free(g[0]), free(g[1]);
    sc_set_threads(2);
}
