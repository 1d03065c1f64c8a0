/* eval_cli.h - what the evaluation commands (linear-eval, knn-eval, pca-baseline, features)
 * share: the input options (.npy features and labels, or a checkpoint and a dataset), threads,
 * --json, and STL-10's predefined folds. */
#ifndef SIMCLR_EVAL_CLI_H
#define SIMCLR_EVAL_CLI_H

#include <stddef.h>

#include "augment.h"
#include "dataset.h"
#include "eval_features.h"
#include "eval_io.h"
#include "model.h"
#include "linear_eval.h"
#include "option_tables.h"
#include "pca.h"

#define EVAL_MAX_TABLES 8
#define EVAL_MAX_FOLDS 10

typedef struct {
    const char *train_features, *train_labels, *test_features, *test_labels;
    const char *train_indices; /* --train-indices: rows of the train features to fit on */
    const char *fold_indices; /* STL-10 fold_indices.txt: one line of train indices per fold */
    int folds;                /* --folds: train on each predefined fold */
    const char *json;
    int threads;
    int num_classes;          /* --num-classes (0: the largest train label + 1) */
    int pixels;               /* pca-baseline: the inputs are raw pixels (no model) */
    /* checkpoint + dataset input */
    const char *checkpoint;
    const char *train_split, *test_split, *test_data; /* splits NULL: dataset_default_split */
    int test_kind;            /* --test-dataset: 0 same as --dataset, else kind + 1 */
    int test_on_train;        /* --test-on-train: testing on training images is allowed */
    int layer;                /* FEATURES_H | FEATURES_Z */
    int batch;
    ModelConfig mc;
    DatasetConfig dc;
    AugmentConfig ac;
    Opt io[16], model[MODEL_OPTS_MAX], data[DATASET_OPTS_MAX], feat[16];
    int single_split;         /* the features command: one split (--split), no train/test */
} EvalInputs;

typedef struct {
    float *Xtr, *Xte; /* (ntr, D), (nte, D) */
    int *ytr, *yte;
    size_t ntr, nte;
    int D, K;
    int nfolds;       /* 1, or the number of predefined folds */
    size_t *fold_idx[EVAL_MAX_FOLDS];
    size_t fold_n[EVAL_MAX_FOLDS];
    float *fold_X;    /* scratch for eval_fold */
    int *fold_y;
    float *fold_Xs[EVAL_MAX_FOLDS]; /* folds extracted one by one (dataset input) */
    int *fold_ys[EVAL_MAX_FOLDS];
} EvalData;

void eval_inputs_init(EvalInputs *in);
/* --help shows the values a --checkpoint's stored configuration sets (eval_inputs_tables calls it). */
void eval_inputs_on_help(EvalInputs *in);
/* Appends the input option tables to tables[] from index `at`; returns the new count. */
int eval_inputs_tables(EvalInputs *in, Opt **tables, int at);
/* After opts_parse: sets threads, loads or extracts the features, checks them (counts, labels,
 * finiteness, train/test dimensions), reads the folds. */
int eval_inputs_load(EvalInputs *in, Opt **tables, int nt, EvalData *d);
/* Builds the model from --checkpoint and its stored configuration (model options and
 * --normalize not given on the command line), loads the weights, finishes in->ac (input size,
 * normalisation statistics); *hash = features_model_hash after loading. */
int eval_build_model(EvalInputs *in, Opt **tables, int nt, Model **m, uint64_t *hash);
/* The features command: builds the model from --checkpoint (+ its stored configuration), opens
 * the --split of the dataset and extracts features into X (N, D) with labels y (N, -1 when
 * unlabeled). */
int eval_extract_split(EvalInputs *in, Opt **tables, int nt, float **X, int **y, size_t *N, int *D,
                       Dataset **ds /* NULL, or receives the opened dataset (caller closes) */);
/* Rows of fold f (pointers into scratch owned by d). */
void eval_fold(EvalData *d, int f, const float **X, const int **y, size_t *n);
void eval_data_free(EvalData *d);
void eval_mean_std(const double *v, int n, double *mean, double *std);
/* Writes "inputs": {...} and "options": {...} into the result file. */
void eval_inputs_json(const EvalInputs *in, EvalJson *j, Opt **tables, int nt);

/* The logistic-regression options (--solver, --grid, --l2, ...) shared by linear-eval and
 * pca-baseline. */
typedef struct {
    LinearEvalConfig c;
    int solver, grid, seed;
    double l2;
    double sk_c;      /* --sklearn-c: fixed C, lambda = 1 / (C N) of each fit (0: unused) */
    Opt opts[20];
} EvalLinear;
void eval_linear_init(EvalLinear *l);
/* Fits (per fold with --folds), prints top-1/top-5 and writes --json; pca (may be NULL) adds
 * the PCA facts to the JSON. Returns 0 or -1 with sc_error() set. */
int eval_linear_run(EvalLinear *l, const EvalInputs *in, EvalData *d, Opt **tables, int nt,
                    const char *command, const Pca *pca);

#endif
