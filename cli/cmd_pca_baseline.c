/* cmd_pca_baseline.c - `simclr pca-baseline`: PCA on the raw pixels of the train split (k
 * components, default 256), both splits projected, then the linear evaluation's logistic
 * regression. The baseline SimCLR's STL-10 table compares against (36% there).
 * Input: a dataset (--dataset, --data, --train-split, --test-split; pixels as stored, /255,
 * HWC order, or resized with --image-size) or pixel arrays as .npy (--train-features ...).
 * With --folds, PCA is fitted on the whole train split (unsupervised) and the classifier on
 * each fold.
 *
 * --protocol search (default): pixels as they are -> PCA (256) -> standardised components ->
 *     logistic regression with the L2 search: the strongest linear baseline we can offer.
 * --protocol blog: the "Exploring SimCLR" write-up's notebook, to reproduce its number (35.65%
 *     on STL-10): StandardScaler on the pixels -> PCA(64) -> LogisticRegression(C=1) on the
 *     components as they come (no search, no scaling after the PCA). Explicit --components,
 *     --l2/--sklearn-c or --standardize override those choices. The default stays `search`: a
 *     fixed C = 1 on unscaled components under-regularises or over-regularises depending on
 *     the data, which makes the baseline weaker than it needs to be. */
#include <math.h>
#include <stdlib.h>

#include "cli.h"
#include "common.h"
#include "eval_cli.h"
#include "npy.h"
#include "pca.h"

/* Column mean and population std of X (N, D) as scikit-learn's StandardScaler (a constant
 * column gets scale 1). */
static void column_stats(const float *X, size_t N, int D, double *mu, double *sd) {
    for (int j = 0; j < D; j++) mu[j] = sd[j] = 0;
    for (size_t i = 0; i < N; i++)
        for (int j = 0; j < D; j++) mu[j] += X[i * D + j];
    for (int j = 0; j < D; j++) mu[j] /= (double)N;
    for (size_t i = 0; i < N; i++)
        for (int j = 0; j < D; j++) {
            double v = X[i * D + j] - mu[j];
            sd[j] += v * v;
        }
    for (int j = 0; j < D; j++) {
        sd[j] = sqrt(sd[j] / (double)N);
        if (!(sd[j] > 1e-12 * (fabs(mu[j]) + 1e-300))) sd[j] = 1;
    }
}

static void standardize_rows(float *X, size_t N, int D, const double *mu, const double *sd) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++)
        for (int j = 0; j < D; j++) X[i * D + j] = (float)((X[i * D + j] - mu[j]) / sd[j]);
}

SIMCLR_COMMAND(cmd_pca_baseline, "pca-baseline", "PCA on raw pixels, then the linear evaluation")

int cmd_pca_baseline(int argc, char **argv) {
    EvalInputs in;
    eval_inputs_init(&in);
    in.pixels = 1;
    EvalLinear l;
    eval_linear_init(&l);
    int k = 256, method = 0, protocol = 0;
    const char *train_out = NULL, *test_out = NULL;
    Opt own[] = {
        {"protocol", OPT_CHOICE, &protocol, "search: pixels -> PCA -> standardised -> L2 search; "
         "blog: the write-up's StandardScaler(pixels) -> PCA(64) -> LogisticRegression(C=1)",
         .choices = "search|blog"},
        {"components", OPT_INT, &k, "principal components kept (at most min(rows, pixels))", .min = 1, .max = 1 << 20},
        {"pca-method", OPT_CHOICE, &method, "auto | cov (covariance, N >= D) | gram (N x N Gram "
         "matrix, exact) | randomized (Gram + subspace iteration, default above 2048 rows)",
         .choices = "auto|cov|gram|randomized"},
        {"train-output", OPT_STR, &train_out, "also write the projected train split (N, k) float32 .npy", .output = 1},
        {"test-output", OPT_STR, &test_out, "also write the projected test split (M, k) float32 .npy", .output = 1},
        {0}};
    Opt *tables[EVAL_MAX_TABLES + 2];
    int nt = eval_inputs_tables(&in, tables, 0);
    tables[nt++] = own;
    tables[nt++] = l.opts;
    if (opts_parse("pca-baseline", "PCA on raw pixels, then the linear evaluation", argc, argv,
                   tables, nt, NULL, NULL))
        sc_fatal("%s", sc_error());
    if (protocol == 1) { /* blog: the write-up's choices unless given explicitly */
        if (!opts_was_set(tables, nt, "components")) k = 64;
        if (!opts_was_set(tables, nt, "l2") && !opts_was_set(tables, nt, "sklearn-c")) l.sk_c = 1;
        if (!opts_was_set(tables, nt, "standardize")) l.c.standardize = 0;
    }
    EvalData d;
    if (eval_inputs_load(&in, tables, nt, &d)) sc_fatal("%s", sc_error());
    if (protocol == 1) { /* StandardScaler on the pixels, fitted on train */
        double *mu = sc_alloc(sizeof(double) * d.D), *sd = sc_alloc(sizeof(double) * d.D);
        column_stats(d.Xtr, d.ntr, d.D, mu, sd);
        standardize_rows(d.Xtr, d.ntr, d.D, mu, sd);
        standardize_rows(d.Xte, d.nte, d.D, mu, sd);
        for (int f = 0; f < EVAL_MAX_FOLDS; f++)
            if (d.fold_Xs[f]) standardize_rows(d.fold_Xs[f], d.fold_n[f], d.D, mu, sd);
        sc_free(mu);
        sc_free(sd);
    }
    size_t mn = d.ntr < (size_t)d.D ? d.ntr : (size_t)d.D;
    if ((size_t)k > mn) {
        if (opts_was_set(tables, nt, "components"))
            sc_fatal("--components %d: the train split has only %zu rows of %d values; at most "
                     "%zu components", k, d.ntr, d.D, mn);
        k = (int)mn;
    }
    Pca p;
    if (pca_fit(&p, d.Xtr, d.ntr, d.D, k, method)) sc_fatal("%s", sc_error());
    double ev = 0;
    for (int i = 0; i < k; i++) ev += p.explained_variance_ratio[i];
    printf("PCA: %d of %d dimensions keep %.1f%% of the variance (%s, %.2fs)\n", k, d.D, 100 * ev,
           p.method == PCA_COV ? "covariance" : p.method == PCA_GRAM ? "Gram" : "randomized Gram",
           p.seconds);
    float *tr = sc_alloc(sizeof(float) * d.ntr * k), *te = sc_alloc(sizeof(float) * d.nte * k);
    pca_transform(&p, d.Xtr, d.ntr, tr);
    pca_transform(&p, d.Xte, d.nte, te);
    int64_t sh[2] = {(int64_t)d.ntr, k};
    if (train_out && npy_write(train_out, NPY_F32, 2, sh, tr)) sc_fatal("--train-output: %s", sc_error());
    sh[0] = (int64_t)d.nte;
    if (test_out && npy_write(test_out, NPY_F32, 2, sh, te)) sc_fatal("--test-output: %s", sc_error());
    free(d.Xtr);
    free(d.Xte);
    d.Xtr = tr; /* eval_data_free uses free(): sc_alloc memory is malloc'ed too */
    d.Xte = te;
    d.D = k;
    for (int f = 0; f < EVAL_MAX_FOLDS; f++)
        if (d.fold_Xs[f]) { /* folds read from the dataset: project them too */
            float *pf = sc_alloc(sizeof(float) * d.fold_n[f] * k);
            pca_transform(&p, d.fold_Xs[f], d.fold_n[f], pf);
            free(d.fold_Xs[f]);
            d.fold_Xs[f] = pf;
        }
    if (d.fold_X) { /* scratch of --fold-indices folds */
        sc_free(d.fold_X);
        d.fold_X = sc_alloc(sizeof(float) * d.ntr * k);
    }
    if (eval_linear_run(&l, &in, &d, tables, nt, "pca-baseline", &p)) sc_fatal("%s", sc_error());
    pca_free(&p);
    eval_data_free(&d);
    return 0;
}
