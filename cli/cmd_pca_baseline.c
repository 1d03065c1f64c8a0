/* cmd_pca_baseline.c - `simclr pca-baseline`: PCA on the raw pixels of the train split (k
 * components, default 256), both splits projected, then the linear evaluation's logistic
 * regression. The baseline SimCLR's STL-10 table compares against (36% there).
 * Input: a dataset (--dataset, --data, --train-split, --test-split; pixels as stored, /255,
 * HWC order, or resized with --image-size) or pixel arrays as .npy (--train-features ...).
 * With --folds, PCA is fitted on the whole train split (unsupervised) and the classifier on
 * each fold. */
#include <stdlib.h>

#include "cli.h"
#include "common.h"
#include "eval_cli.h"
#include "npy.h"
#include "pca.h"

SIMCLR_COMMAND(cmd_pca_baseline, "pca-baseline", "PCA on raw pixels, then the linear evaluation")

int cmd_pca_baseline(int argc, char **argv) {
    EvalInputs in;
    eval_inputs_init(&in);
    in.pixels = 1;
    EvalLinear l;
    eval_linear_init(&l);
    int k = 256, method = 0;
    const char *train_out = NULL, *test_out = NULL;
    Opt own[] = {
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
    EvalData d;
    if (eval_inputs_load(&in, tables, nt, &d)) sc_fatal("%s", sc_error());
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
