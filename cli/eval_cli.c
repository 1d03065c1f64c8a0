/* eval_cli.c - input options and loading shared by the evaluation commands. */
#include "eval_cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "common.h"
#include "npy.h"
#include "recipe.h"
#include "safetensors.h"

void openblas_set_num_threads(int);

void eval_inputs_init(EvalInputs *in) {
    memset(in, 0, sizeof *in);
    model_config_default(&in->mc);
    dataset_config_default(&in->dc);
    augment_config_default(&in->ac);
    in->batch = 128;
    model_opts(in->model, &in->mc);
    dataset_opts(in->data, &in->dc);
    Opt feat[] = {
        {"checkpoint", OPT_STR, &in->checkpoint, "encoder weights: a simclr checkpoint, or a "
         "safetensors torchvision ResNet state_dict (fc.* ignored; give --arch --stem "
         "--image-size)"},
        {"layer", OPT_CHOICE, &in->layer, "h: encoder output (default), z: projection head output",
         .choices = "h|z"},
        {"train-split", OPT_STR, &in->train_split, "dataset split to fit on (default: train; "
         "all for a folder without train/ and test/ subfolders)"},
        {"test-split", OPT_STR, &in->test_split, "dataset split to test on (default: test, or val "
         "for a folder with train/ and val/ only; with --test-data: its test split, else all)"},
        {"test-data", OPT_STR, &in->test_data, "location of the test images when they are another "
         "file or folder (format: --test-dataset; npy/idx labels: --test-labels); classes are "
         "matched by name"},
        {"test-dataset", OPT_CHOICE, &in->test_kind, "format of --test-data (same: as --dataset)",
         .choices = "same|" DATASET_CHOICES},
        {"test-on-train", OPT_FLAG, &in->test_on_train, "allow testing on the training images "
         "(refused by default: it measures memorisation, not generalisation)"},
        {"batch-size", OPT_INT, &in->batch, "images per forward pass", .min = 1, .max = 65536},
        {"precision", OPT_CHOICE, &in->mc.precision, "encoder arithmetic (checkpoint input): fp32, "
         "or bf16 convolutions (AVX512-BF16); independent of the precision it was trained in",
         .choices = PRECISION_CHOICES},
        {"normalize", OPT_CHOICE, &in->ac.normalize, "input normalisation, as in training "
         "(default: the checkpoint's, else none)", .choices = "none|imagenet|dataset"},
        {"normalize-stats", OPT_STR, &in->ac.normalize_stats, "--normalize dataset: mean and std "
         "'m0,m1,m2,s0,s1,s2' (default: the checkpoint's, else computed from the split)"},
        {0}};
    SC_ASSERT(sizeof feat <= sizeof in->feat);
    memcpy(in->feat, feat, sizeof feat);
    Opt io[] = {
        {"train-features", OPT_STR, &in->train_features, "train features .npy (N, D), any numeric dtype"},
        {"train-labels", OPT_STR, &in->train_labels, "train labels .npy (N), integer class indices"},
        {"test-features", OPT_STR, &in->test_features, "test features .npy (M, D)"},
        {"test-labels", OPT_STR, &in->test_labels, "test labels .npy (M)"},
        {"train-indices", OPT_STR, &in->train_indices, "fit on these rows of --train-features "
         "only: .npy of integer row indices (e.g. finetune's subset.npy: the same labelled subset)"},
        {"folds", OPT_FLAG, &in->folds, "STL-10 protocol: fit on each predefined train fold, report mean and std"},
        {"fold-indices", OPT_STR, &in->fold_indices, "fold file (STL-10 fold_indices.txt: one line of "
         "0-based train indices per fold)"},
        {"json", OPT_STR, &in->json, "write the results to this JSON file (atomically)", .output = 1},
        {"threads", OPT_INT, &in->threads, "compute threads (0: all cores)", .min = 0, .max = 4096},
        {"num-classes", OPT_INT, &in->num_classes, "number of classes K, labels 0..K-1 (0: the "
         "largest train label + 1, at most the number of train rows)", .min = 0, .max = 1 << 20},
        {0}};
    SC_ASSERT(sizeof io <= sizeof in->io);
    memcpy(in->io, io, sizeof io);
}

static int apply_checkpoint_config(EvalInputs *in, Opt **tables, int nt);

/* --help with --checkpoint: show the model options and normalisation the checkpoint sets. */
static const char *help_resolve(void *ctx, Opt **tables, int nt) {
    EvalInputs *in = ctx;
    static char line[1200];
    if (!in->checkpoint) return NULL;
    if (apply_checkpoint_config(in, tables, nt)) {
        snprintf(line, sizeof line, "(--checkpoint: %s)", sc_error());
        return line;
    }
    snprintf(line, sizeof line, "model options and normalisation from the configuration stored in %s",
             in->checkpoint);
    return line;
}

void eval_inputs_on_help(EvalInputs *in) { opts_on_help(help_resolve, in); }

int eval_inputs_tables(EvalInputs *in, Opt **tables, int at) {
    eval_inputs_on_help(in);
    tables[at++] = in->io;
    tables[at++] = in->feat;
    tables[at++] = in->model;
    tables[at++] = in->data;
    return at;
}

/* ---- checkpoint + dataset input ----------------------------------------------------------- */

/* The checkpoint's stored configuration (a flat JSON object of option values, as
 * opts_write_json writes it) supplies every model option and --normalize not given on the
 * command line. A plain state_dict has none: the command line decides. */
static int apply_checkpoint_config(EvalInputs *in, Opt **tables, int nt) {
    SafeTensors *st;
    if (safetensors_open(&st, in->checkpoint)) return sc_error_prefix("--checkpoint");
    const char *js = safetensors_meta(st, "config");
    char *cfg = js ? sc_strdup(js) : NULL;
    safetensors_close(st);
    if (!cfg) return 0;
    /* only the model options and the normalisation come from the checkpoint */
    Opt norm[3] = {{0}};
    int k = 0;
    for (Opt *o = in->feat; o->name; o++)
        if (o->dst == &in->ac.normalize || o->dst == (void *)&in->ac.normalize_stats) norm[k++] = *o;
    Opt *tabs[2] = {in->model, norm};
    int rc = opts_apply_json(tabs, 2, cfg, 1, NULL);
    if (rc) sc_error_prefix("--checkpoint %s: stored configuration", in->checkpoint);
    free(cfg);
    (void)tables;
    (void)nt;
    return rc;
}

int eval_build_model(EvalInputs *in, Opt **tables, int nt, Model **m, uint64_t *hash) {
    if (apply_checkpoint_config(in, tables, nt)) return -1;
    if (model_config_check(&in->mc)) return -1;
    if (model_create(m, &in->mc, in->batch, 0)) return -1;
    if (checkpoint_load(in->checkpoint, *m, NULL, NULL)) {
        model_free(*m);
        *m = NULL;
        return sc_error_prefix("--checkpoint");
    }
    *hash = features_model_hash(*m);
    in->ac.out_size = in->mc.image_size;
    in->ac.mode = AUGMENT_NONE;
    if (augment_config_finish(&in->ac)) {
        model_free(*m);
        return -1;
    }
    return 0;
}

/* Opens one side: test != 0 reads --test-data / --test-dataset / --test-labels when given.
 * split NULL: the dataset's own default for that side (dataset_default_split). */
static int open_split(EvalInputs *in, const char *split, int fold, int test, Dataset **ds) {
    DatasetConfig dc = in->dc;
    if (test && (in->test_data || in->test_kind > 0)) {
        if (in->test_kind > 0) dc.kind = in->test_kind - 1;
        if (!in->test_data && dc.kind != DATASET_FASHION_MNIST)
            return sc_error_set("--test-dataset: give the location of the test images with --test-data");
        dc.path = in->test_data;
        dc.labels = in->test_labels;
    } else if (test && dc.kind == DATASET_NPY && in->test_labels)
        dc.labels = in->test_labels;
    dc.split = split ? split : dataset_default_split(&dc, test);
    dc.fold = fold;
    if (dataset_open(ds, &dc)) /* its messages name the file, split and option */
        return test && in->test_data ? sc_error_prefix("--test-data") : -1;
    return 0;
}

/* features (or pixels) and labels of an opened dataset */
static int extract_ds(EvalInputs *in, Model *m, Dataset *ds, int need_labels, float **X, int **y,
                      size_t *N, int *D) {
    if (need_labels && dataset_num_classes(ds) <= 0)
        return sc_error_set("%s: no labels (evaluation needs a labeled split)", dataset_describe(ds));
    size_t n = dataset_size(ds);
    int rc;
    if (!m) {
        int *lab = sc_alloc(sizeof(int) * (n ? n : 1));
        rc = features_pixels(ds, opts_was_set(&(Opt *){in->model}, 1, "image-size") ?
                                 in->mc.image_size : 0, X, N, D, lab);
        *y = lab;
    } else {
        *D = features_dim(m, in->layer);
        *X = sc_alloc(sizeof(float) * (n ? n : 1) * *D);
        *y = sc_alloc(sizeof(int) * (n ? n : 1));
        *N = n;
        fprintf(stderr, "extracting %s of %s ...\n", in->layer ? "z" : "h", dataset_describe(ds));
        rc = features_extract(m, ds, &in->ac, in->layer, in->batch, NULL, n, *X, *y, 1);
    }
    if (rc) {
        sc_free(*X);
        sc_free(*y);
        *X = NULL;
        *y = NULL;
    }
    return rc;
}

/* features (or pixels) and labels of one split (fold >= 0: that STL-10 fold) */
static int load_split(EvalInputs *in, Model *m, const char *split, int fold, int test,
                      int need_labels, float **X, int **y, size_t *N, int *D) {
    Dataset *ds;
    if (open_split(in, split, fold, test, &ds)) return -1;
    int rc = extract_ds(in, m, ds, need_labels, X, y, N, D);
    dataset_close(ds);
    return rc;
}

int eval_extract_split(EvalInputs *in, Opt **tables, int nt, float **X, int **y, size_t *N, int *D,
                       Dataset **ds_out) {
    int th = in->threads > 0 ? in->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    sc_set_threads(th < 1 ? 1 : th);
    openblas_set_num_threads(th < 1 ? 1 : th);
    if (!in->checkpoint) return sc_error_set("--checkpoint is required");
    Model *m;
    uint64_t h0;
    if (eval_build_model(in, tables, nt, &m, &h0)) return -1;
    Dataset *ds;
    int rc = open_split(in, in->dc.split /* NULL: the dataset's default */, in->dc.fold, 0, &ds);
    if (!rc) rc = extract_ds(in, m, ds, 0, X, y, N, D);
    if (!rc && features_model_hash(m) != h0)
        rc = sc_error_set("internal error: the encoder's weights changed during extraction");
    model_free(m);
    if (!rc && ds_out) *ds_out = ds;
    else if (ds) dataset_close(ds);
    return rc;
}

static int load_from_dataset(EvalInputs *in, Opt **tables, int nt, EvalData *d) {
    Model *m = NULL;
    uint64_t h0 = 0;
    if (opts_was_set(tables, nt, "split"))
        return sc_error_set("--split: the evaluation commands take --train-split and --test-split");
    if (opts_was_set(tables, nt, "fold"))
        return sc_error_set("--fold: use --folds to evaluate on every predefined fold");
    if (!in->pixels) {
        if (!in->checkpoint)
            return sc_error_set("give the features as .npy files (--train-features, "
                                "--train-labels, --test-features, --test-labels) or "
                                "--checkpoint with a dataset");
        if (eval_build_model(in, tables, nt, &m, &h0)) return -1;
    }
    int rc = 0, Dte = 0;
    Dataset *tr = NULL, *te = NULL;
    /* with --folds and a model, the whole train split is not needed */
    rc = open_split(in, in->train_split, -1, 0, &tr);
    if (!rc) rc = open_split(in, in->test_split, -1, 1, &te);
    if (!rc && dataset_same_images(tr, te) && !in->test_on_train)
        rc = sc_error_set("--test-data: the test images would be training images (%s and %s); give "
                          "--test-data (any --test-dataset), a folder with train/ and test/ "
                          "subfolders, or --test-on-train to measure on the training images",
                          dataset_describe(tr), dataset_describe(te));
    if (!rc && dataset_num_classes(tr) > 0) rc = dataset_align_classes(te, tr, "test data");
    if (!rc && !(in->folds && m)) rc = extract_ds(in, m, tr, 1, &d->Xtr, &d->ytr, &d->ntr, &d->D);
    if (!rc) rc = extract_ds(in, m, te, 1, &d->Xte, &d->yte, &d->nte, &Dte);
    if (tr) dataset_close(tr);
    if (te) dataset_close(te);
    if (!rc && d->Xtr && Dte != d->D)
        rc = sc_error_set("test split: %d values per image, train split %d (give --image-size to "
                          "resize both)", Dte, d->D);
    d->D = Dte;
    d->nfolds = 1;
    if (!rc && in->folds) {
        if (in->dc.kind != DATASET_STL10)
            rc = sc_error_set("--folds: only STL-10 has predefined folds (with .npy features "
                              "give --fold-indices)");
        for (int f = 0; f < EVAL_MAX_FOLDS && !rc; f++) {
            int Df = 0;
            rc = load_split(in, m, in->train_split, f, 0, 1, &d->fold_Xs[f], &d->fold_ys[f],
                            &d->fold_n[f], &Df);
        }
        d->nfolds = EVAL_MAX_FOLDS;
    }
    if (m) {
        if (!rc && features_model_hash(m) != h0)
            rc = sc_error_set("internal error: the encoder's weights changed during evaluation");
        model_free(m);
    }
    if (!rc && !d->Xtr) { /* folds only: K from the folds */
        d->Xtr = d->fold_Xs[0];
        d->ytr = d->fold_ys[0];
        d->ntr = d->fold_n[0];
        d->fold_Xs[0] = NULL; /* owned through Xtr now */
        d->fold_ys[0] = NULL;
        d->fold_X = d->Xtr;   /* marker: fold 0 is Xtr */
    }
    return rc;
}

static int read_folds(const char *path, size_t ntr, EvalData *d) {
    char *txt = NULL, what[4200];
    size_t n = 0;
    if (sc_read_file(path, &txt, &n)) return sc_error_prefix("--fold-indices");
    snprintf(what, sizeof what, "--fold-indices %s", path);
    int f = dataset_parse_folds(what, txt, n, ntr, EVAL_MAX_FOLDS, d->fold_idx, d->fold_n);
    free(txt);
    if (f < 0) return -1;
    d->nfolds = f;
    size_t mx = 0;
    for (int i = 0; i < f; i++) mx = d->fold_n[i] > mx ? d->fold_n[i] : mx;
    d->fold_X = sc_alloc(sizeof(float) * mx * d->D);
    d->fold_y = sc_alloc(sizeof(int) * mx);
    return 0;
}

/* --train-indices: keeps the listed rows of the train features and labels. */
static int eval_take_rows(const char *path, EvalData *d) {
    int64_t *ix = NULL, sh[NPY_MAX_DIMS];
    int nd = 0;
    if (npy_load_i64(path, &ix, sh, &nd)) return sc_error_prefix("--train-indices");
    if (nd != 1 || sh[0] < 1) {
        sc_free(ix);
        return sc_error_set("--train-indices %s: expected a 1-D array of row indices", path);
    }
    size_t n = (size_t)sh[0], D = (size_t)d->D;
    float *X = sc_alloc(sizeof(float) * n * D);
    int *y = sc_alloc(sizeof(int) * n);
    for (size_t i = 0; i < n; i++) {
        if (ix[i] < 0 || (size_t)ix[i] >= d->ntr) {
            long long bad = (long long)ix[i];
            sc_free(ix), sc_free(X), sc_free(y);
            return sc_error_set("--train-indices %s: row %lld is outside the %zu train rows", path,
                                bad, d->ntr);
        }
        memcpy(X + i * D, d->Xtr + (size_t)ix[i] * D, sizeof(float) * D);
        y[i] = d->ytr[ix[i]];
    }
    sc_free(ix);
    free(d->Xtr);
    free(d->ytr);
    d->Xtr = X, d->ytr = y, d->ntr = n;
    return 0;
}

int eval_inputs_load(EvalInputs *in, Opt **tables, int nt, EvalData *d) {
    memset(d, 0, sizeof *d);
    int th = in->threads > 0 ? in->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (th < 1) th = 1;
    sc_set_threads(th);
    openblas_set_num_threads(th);
    int npy = in->train_features || in->train_labels || in->test_features;
    if (npy && in->checkpoint)
        return sc_error_set("give either .npy features (--train-features ...) or --checkpoint, "
                            "not both");
    if (!npy) {
        if (load_from_dataset(in, tables, nt, d)) {
            eval_data_free(d);
            return -1;
        }
        if (eval_num_classes(d->ytr, d->ntr, d->yte, d->nte, "test split", in->num_classes, &d->K)) {
            /* with folds the train classes are those of all folds together */
            int K = 0;
            for (int f = 0; f < EVAL_MAX_FOLDS; f++)
                for (size_t i = 0; d->fold_ys[f] && i < d->fold_n[f]; i++)
                    if (d->fold_ys[f][i] + 1 > K) K = d->fold_ys[f][i] + 1;
            if (in->num_classes > 0 && K <= in->num_classes) K = in->num_classes;
            int ok = in->folds && K >= 2 && (in->num_classes == 0 || K == in->num_classes);
            for (size_t i = 0; ok && i < d->nte; i++) ok = d->yte[i] < K;
            if (!ok) {
                eval_data_free(d);
                return -1;
            }
            d->K = K > d->K ? K : d->K;
        }
        return 0;
    }
    const char *miss = !in->train_features ? "--train-features" : !in->train_labels ? "--train-labels"
                       : !in->test_features ? "--test-features" : !in->test_labels ? "--test-labels" : NULL;
    if (miss)
        return sc_error_set("%s is required (give --train-features, --train-labels, "
                            "--test-features and --test-labels as .npy files)", miss);
    if (eval_load_npy("--train-features", in->train_features, "--train-labels", in->train_labels,
                      &d->Xtr, &d->ytr, &d->ntr, &d->D))
        return -1;
    if (in->train_indices && eval_take_rows(in->train_indices, d)) {
        eval_data_free(d);
        return -1;
    }
    int Dte = 0;
    if (eval_load_npy("--test-features", in->test_features, "--test-labels", in->test_labels,
                      &d->Xte, &d->yte, &d->nte, &Dte)) {
        eval_data_free(d);
        return -1;
    }
    if (Dte != d->D) {
        int Dtr = d->D;
        eval_data_free(d);
        return sc_error_set("--test-features %s: %d features per row, but --train-features %s "
                            "has %d", in->test_features, Dte, in->train_features, Dtr);
    }
    if (eval_num_classes(d->ytr, d->ntr, d->yte, d->nte, "--test-labels", in->num_classes,
                         &d->K)) {
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
    if (d->fold_X == d->Xtr && f == 0) {
        *X = d->Xtr;
        *y = d->ytr;
        *n = d->ntr;
        return;
    }
    if (d->fold_Xs[f]) {
        *X = d->fold_Xs[f];
        *y = d->fold_ys[f];
        *n = d->fold_n[f];
        return;
    }
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
    if (d->fold_X == d->Xtr) d->fold_X = NULL;
    free(d->Xtr); free(d->Xte); free(d->ytr); free(d->yte);
    for (int f = 0; f < EVAL_MAX_FOLDS; f++) {
        free(d->fold_idx[f]);
        free(d->fold_Xs[f]);
        free(d->fold_ys[f]);
    }
    if (d->fold_X != d->Xtr) sc_free(d->fold_X);
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
        {"sklearn-c", OPT_DOUBLE, &l->sk_c, "fixed scikit-learn C instead of the search: lambda = "
         "1/(C N) for the N rows of each fit (0: search)", .min = 0, .max = 1e12},
        {"val-frac", OPT_DOUBLE, &c->val_frac, "part of train held out to choose lambda", .min = 0.01, .max = 0.9},
        {"max-iter", OPT_INT, &c->max_iter, "L-BFGS iterations per fit", .min = 1, .max = 1000000},
        {"tol", OPT_DOUBLE, &c->tol, "L-BFGS stops at max |gradient| <= tol", .min = 0, .max = 1},
        {"standardize", OPT_FLAG, &c->standardize, "z-score features with the train mean/std"},
        {"adam-lr", OPT_DOUBLE, &c->adam_lr, "Adam learning rate", .min = 0, .max = 10},
        {"adam-wd", OPT_DOUBLE, &c->adam_wd, "Adam L2 weight decay (weights and biases)", .min = 0, .max = 10},
        {"adam-epochs", OPT_INT, &c->adam_epochs, "Adam epochs", .min = 1, .max = 100000},
        {"adam-batch", OPT_INT, &c->adam_batch, "Adam mini-batch", .min = 1, .max = 1 << 24},
        {"seed", OPT_INT, &l->seed, "seed of the validation split and the Adam shuffles", .min = 0, .max = 2147483647},
        {"patience", OPT_INT, &c->patience, "stop the penalty search (strong to weak, warm-started) "
         "after this many penalties without a better held-out accuracy (0: try them all)",
         .min = 0, .max = 1000},
        {"verbose", OPT_FLAG, &c->verbose, "one line per penalty on stderr"},
        {0}};
    memcpy(l->opts, own, sizeof own);
}

int eval_linear_run(EvalLinear *l, const EvalInputs *in, EvalData *d, Opt **tables, int nt,
                    const char *command, const Pca *pca) {
    LinearEvalConfig c = l->c;
    c.solver = l->solver;
    if (l->l2 > 0 && l->sk_c > 0)
        return sc_error_set("--l2 and --sklearn-c: give one penalty, not both");
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
        if (l->sk_c > 0 && l->l2 <= 0) {
            c.grid = LINEAR_GRID_FIXED;
            c.lambda = 1.0 / (l->sk_c * (double)ntr);
        }
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
        eval_json_num(&j, "pca_cpu_seconds", pca->cpu_seconds);
        eval_json_nums(&j, "pca_explained_variance", pca->explained_variance, pca->k);
    }
    eval_inputs_json(in, &j, tables, nt);
    return eval_json_end(&j);
}
