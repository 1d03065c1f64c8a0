/* eval_cli.c - input options and loading shared by the evaluation commands. */
#include "eval_cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

void openblas_set_num_threads(int);

void eval_inputs_init(EvalInputs *in) {
    memset(in, 0, sizeof *in);
    Opt io[] = {
        {"train-features", OPT_STR, &in->train_features, "train features .npy (N, D), any numeric dtype"},
        {"train-labels", OPT_STR, &in->train_labels, "train labels .npy (N), integer class indices"},
        {"test-features", OPT_STR, &in->test_features, "test features .npy (M, D)"},
        {"test-labels", OPT_STR, &in->test_labels, "test labels .npy (M)"},
        {"folds", OPT_FLAG, &in->folds, "STL-10 protocol: fit on each predefined train fold, report mean and std"},
        {"fold-indices", OPT_STR, &in->fold_indices, "fold file (STL-10 fold_indices.txt: one line of "
         "0-based train indices per fold)"},
        {"json", OPT_STR, &in->json, "write the results to this JSON file (atomically)"},
        {"threads", OPT_INT, &in->threads, "compute threads (0: all cores)", .min = 0, .max = 4096},
        {0}};
    memcpy(in->io, io, sizeof io);
}

int eval_inputs_tables(EvalInputs *in, Opt **tables, int at) {
    tables[at++] = in->io;
    return at;
}

static int read_folds(const char *path, size_t ntr, EvalData *d) {
    char *txt = NULL;
    size_t n = 0;
    if (sc_read_file(path, &txt, &n)) return sc_error_prefix("--fold-indices");
    int f = 0;
    char *line = txt;
    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        char *p = line, *end;
        size_t cap = 1024, cnt = 0;
        size_t *idx = malloc(sizeof(size_t) * cap);
        for (;;) {
            while (*p == ' ' || *p == '\t' || *p == '\r') p++;
            if (!*p) break;
            long long v = strtoll(p, &end, 10);
            if (end == p || v < 0 || (size_t)v >= ntr) {
                free(idx);
                free(txt);
                return sc_error_set("--fold-indices %s: line %d: expected train indices in "
                                    "[0, %zu), found '%.20s'", path, f + 1, ntr, p);
            }
            if (cnt == cap) idx = realloc(idx, sizeof(size_t) * (cap *= 2));
            idx[cnt++] = (size_t)v;
            p = end;
        }
        if (cnt) {
            if (f == EVAL_MAX_FOLDS) {
                free(idx);
                free(txt);
                return sc_error_set("--fold-indices %s: more than %d folds", path, EVAL_MAX_FOLDS);
            }
            d->fold_idx[f] = idx;
            d->fold_n[f++] = cnt;
        } else
            free(idx);
        line = nl ? nl + 1 : NULL;
    }
    free(txt);
    if (f == 0) return sc_error_set("--fold-indices %s: no folds found", path);
    d->nfolds = f;
    size_t mx = 0;
    for (int i = 0; i < f; i++) mx = d->fold_n[i] > mx ? d->fold_n[i] : mx;
    d->fold_X = sc_alloc(sizeof(float) * mx * d->D);
    d->fold_y = sc_alloc(sizeof(int) * mx);
    return 0;
}

int eval_inputs_load(EvalInputs *in, Opt **tables, int nt, EvalData *d) {
    memset(d, 0, sizeof *d);
    int th = in->threads > 0 ? in->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (th < 1) th = 1;
    sc_set_threads(th);
    openblas_set_num_threads(th);
    const char *miss = !in->train_features ? "--train-features" : !in->train_labels ? "--train-labels"
                       : !in->test_features ? "--test-features" : !in->test_labels ? "--test-labels" : NULL;
    if (miss)
        return sc_error_set("%s is required (give --train-features, --train-labels, "
                            "--test-features and --test-labels as .npy files)", miss);
    if (eval_load_npy("--train-features", in->train_features, "--train-labels", in->train_labels,
                      &d->Xtr, &d->ytr, &d->ntr, &d->D))
        return -1;
    int Dte = 0;
    if (eval_load_npy("--test-features", in->test_features, "--test-labels", in->test_labels,
                      &d->Xte, &d->yte, &d->nte, &Dte)) {
        eval_data_free(d);
        return -1;
    }
    if (Dte != d->D) {
        eval_data_free(d);
        return sc_error_set("--test-features %s: %d features per row, but --train-features %s "
                            "has %d", in->test_features, Dte, in->train_features, d->D);
    }
    if (eval_num_classes(d->ytr, d->ntr, d->yte, d->nte, "--test-labels", &d->K)) {
        eval_data_free(d);
        return -1;
    }
    d->nfolds = 1;
    if (in->folds) {
        if (!in->fold_indices) {
            eval_data_free(d);
            return sc_error_set("--folds needs --fold-indices (STL-10's fold_indices.txt)");
        }
        if (read_folds(in->fold_indices, d->ntr, d)) {
            eval_data_free(d);
            return -1;
        }
    }
    (void)tables;
    (void)nt;
    return 0;
}

void eval_fold(EvalData *d, int f, const float **X, const int **y, size_t *n) {
    for (size_t i = 0; i < d->fold_n[f]; i++) {
        size_t s = d->fold_idx[f][i];
        memcpy(d->fold_X + i * d->D, d->Xtr + s * d->D, sizeof(float) * d->D);
        d->fold_y[i] = d->ytr[s];
    }
    *X = d->fold_X;
    *y = d->fold_y;
    *n = d->fold_n[f];
}

void eval_data_free(EvalData *d) {
    free(d->Xtr); free(d->Xte); free(d->ytr); free(d->yte);
    for (int f = 0; f < EVAL_MAX_FOLDS; f++) free(d->fold_idx[f]);
    sc_free(d->fold_X);
    sc_free(d->fold_y);
    memset(d, 0, sizeof *d);
}

void eval_mean_std(const double *v, int n, double *mean, double *std) {
    double m = 0, s = 0;
    for (int i = 0; i < n; i++) m += v[i];
    m /= n;
    for (int i = 0; i < n; i++) s += (v[i] - m) * (v[i] - m);
    *mean = m;
    *std = n > 1 ? sqrt(s / (n - 1)) : 0; /* sample std over folds */
}

void eval_inputs_json(const EvalInputs *in, EvalJson *j, Opt **tables, int nt) {
    (void)in;
    FILE *f = eval_json_key(j, "options");
    opts_write_json(f, tables, nt);
}

void eval_linear_init(EvalLinear *l) {
    memset(l, 0, sizeof *l);
    linear_eval_default_config(&l->c);
    LinearEvalConfig *c = &l->c;
    Opt own[] = {
        {"solver", OPT_CHOICE, &l->solver, "lbfgs: full batch L-BFGS with the penalty search; adam: "
         "mini-batch Adam as sthalles/SimCLR's notebook", .choices = "lbfgs|adam"},
        {"grid", OPT_CHOICE, &l->grid, "penalty grid: short = 10 values of lambda in [1e-6, 1e1], "
         "paper = 45 values in [1e-6, 1e5] (lambda: mean CE + lambda/2 |W|^2; sklearn C = "
         "1/(lambda N))", .choices = "short|paper"},
        {"l2", OPT_DOUBLE, &l->l2, "fixed penalty lambda instead of the search (0: search)", .min = 0, .max = 1e12},
        {"val-frac", OPT_DOUBLE, &c->val_frac, "part of train held out to choose lambda", .min = 0.01, .max = 0.9},
        {"max-iter", OPT_INT, &c->max_iter, "L-BFGS iterations per fit", .min = 1, .max = 1000000},
        {"tol", OPT_DOUBLE, &c->tol, "L-BFGS stops at max |gradient| <= tol", .min = 0, .max = 1},
        {"standardize", OPT_FLAG, &c->standardize, "z-score features with the train mean/std"},
        {"adam-lr", OPT_DOUBLE, &c->adam_lr, "Adam learning rate", .min = 0, .max = 10},
        {"adam-wd", OPT_DOUBLE, &c->adam_wd, "Adam L2 weight decay (weights and biases)", .min = 0, .max = 10},
        {"adam-epochs", OPT_INT, &c->adam_epochs, "Adam epochs", .min = 1, .max = 100000},
        {"adam-batch", OPT_INT, &c->adam_batch, "Adam mini-batch", .min = 1, .max = 1 << 24},
        {"seed", OPT_INT, &l->seed, "seed of the validation split and the Adam shuffles", .min = 0, .max = 2147483647},
        {"verbose", OPT_FLAG, &c->verbose, "one line per penalty on stderr"},
        {0}};
    memcpy(l->opts, own, sizeof own);
}

int eval_linear_run(EvalLinear *l, const EvalInputs *in, EvalData *d, Opt **tables, int nt,
                    const char *command, const Pca *pca) {
    LinearEvalConfig c = l->c;
    c.solver = l->solver;
    c.grid = l->l2 > 0 ? LINEAR_GRID_FIXED : l->grid;
    c.lambda = l->l2;
    c.seed = (uint64_t)l->seed;
    int nfolds = d->nfolds;
    double top1[EVAL_MAX_FOLDS], top5[EVAL_MAX_FOLDS], secs = 0;
    LinearEvalResult r;
    for (int f = 0; f < nfolds; f++) {
        const float *Xtr = d->Xtr;
        const int *ytr = d->ytr;
        size_t ntr = d->ntr;
        if (in->folds) eval_fold(d, f, &Xtr, &ytr, &ntr);
        if (linear_eval_fit_predict(Xtr, ytr, ntr, d->Xte, d->yte, d->nte, d->D, d->K, &c, &r))
            return -1;
        top1[f] = r.top1;
        top5[f] = r.top5;
        secs += r.seconds;
        if (in->folds)
            printf("fold %d (%zu train rows): top-1 %.2f%%  top-5 %.2f%%  (lambda %.3g)\n", f, ntr,
                   100 * r.top1, 100 * r.top5, r.lambda);
    }
    double m1, s1, m5, s5;
    eval_mean_std(top1, nfolds, &m1, &s1);
    eval_mean_std(top5, nfolds, &m5, &s5);
    printf("%s", pca ? "PCA baseline, " : "");
    if (c.solver == LINEAR_SOLVER_ADAM)
        printf("linear eval (Adam, lr %g, wd %g, %d epochs): ", c.adam_lr, c.adam_wd, c.adam_epochs);
    else if (c.grid == LINEAR_GRID_FIXED)
        printf("linear eval (L-BFGS, lambda %.3g = sklearn C %.3g): ", r.lambda, r.C);
    else if (in->folds)
        printf("linear eval (L-BFGS, lambda chosen per fold): ");
    else
        printf("linear eval (L-BFGS, lambda %.3g = sklearn C %.3g, chosen on %zu held-out rows: "
               "%.2f%%): ", r.lambda, r.C, r.n_val, 100 * r.val_top1);
    if (in->folds)
        printf("top-1 %.2f +- %.2f%%  top-5 %.2f +- %.2f%% over %d folds (%.1fs)\n", 100 * m1,
               100 * s1, 100 * m5, 100 * s5, nfolds, secs);
    else
        printf("top-1 %.2f%%  top-5 %.2f%%  (%zu train, %zu test, %d features, %d classes, %.2fs)\n",
               100 * m1, 100 * m5, d->ntr, d->nte, d->D, d->K, secs);
    if (!in->json) return 0;
    EvalJson j;
    if (eval_json_begin(&j, in->json)) return -1;
    eval_json_str(&j, "command", command);
    eval_json_num(&j, "top1", m1);
    eval_json_num(&j, "top5", m5);
    if (in->folds) {
        eval_json_num(&j, "top1_std", s1);
        eval_json_num(&j, "top5_std", s5);
        eval_json_nums(&j, "fold_top1", top1, nfolds);
        eval_json_nums(&j, "fold_top5", top5, nfolds);
    }
    eval_json_str(&j, "solver", c.solver == LINEAR_SOLVER_ADAM ? "adam" : "lbfgs");
    if (c.solver == LINEAR_SOLVER_LBFGS) {
        eval_json_num(&j, "lambda", r.lambda);
        eval_json_num(&j, "sklearn_C", r.C);
        eval_json_str(&j, "penalty", "mean cross-entropy + lambda/2 * ||W||^2, biases free; "
                                     "sklearn C = 1/(lambda * n_train)");
        if (r.n_grid) {
            eval_json_num(&j, "val_top1", r.val_top1);
            eval_json_num(&j, "n_val", (double)r.n_val);
            eval_json_nums(&j, "grid_lambda", r.grid_lambda, r.n_grid);
            eval_json_nums(&j, "grid_val_top1", r.grid_val_top1, r.n_grid);
        }
    } else {
        eval_json_num(&j, "adam_lr", c.adam_lr);
        eval_json_num(&j, "adam_weight_decay", c.adam_wd);
        eval_json_num(&j, "adam_epochs", c.adam_epochs);
    }
    eval_json_num(&j, "iterations", r.iters);
    eval_json_num(&j, "train_top1", r.train_top1);
    eval_json_num(&j, "n_train", (double)d->ntr);
    eval_json_num(&j, "n_test", (double)d->nte);
    eval_json_num(&j, "dim", d->D);
    eval_json_num(&j, "classes", d->K);
    eval_json_num(&j, "seconds", secs);
    if (pca) {
        double s = 0;
        for (int i = 0; i < pca->k; i++) s += pca->explained_variance_ratio[i];
        eval_json_num(&j, "pca_components", pca->k);
        eval_json_num(&j, "pca_input_dim", pca->D);
        eval_json_num(&j, "pca_explained_variance_ratio_sum", s);
        eval_json_str(&j, "pca_method", pca->method == PCA_COV ? "covariance" :
                                        pca->method == PCA_GRAM ? "gram" : "randomized");
        eval_json_num(&j, "pca_seconds", pca->seconds);
    }
    eval_inputs_json(in, &j, tables, nt);
    return eval_json_end(&j);
}
