/* eval_io.h - inputs and outputs shared by the evaluation commands: feature/label .npy files
 * with their checks, and the JSON result file.
 *
 *     float *X; int *y; size_t n; int d;
 *     if (eval_load_npy("--train-features", pf, "--train-labels", pl, &X, &y, &n, &d))
 *         sc_fatal("%s", sc_error());
 */
#ifndef SIMCLR_EVAL_IO_H
#define SIMCLR_EVAL_IO_H

#include <stddef.h>
#include <stdio.h>

/* Loads features (N, ...) of any numeric dtype as float32 (N, D), D = product of the other
 * dimensions, and labels (N) of an integer dtype. Errors name the option and the file: counts
 * that disagree, negative labels, labels beyond INT_MAX, non-finite features, non-integer
 * labels. labels_path may be NULL (then *y = NULL). */
int eval_load_npy(const char *feat_opt, const char *feat_path, const char *lab_opt,
                  const char *lab_path, float **X, int **y, size_t *N, int *D);
/* Number of classes K: num_classes when > 0 (every label must be below it), else 1 + the largest
 * train label, which may not exceed the number of train rows (a larger label leaves classes
 * without a single example: labels that are not class indices; the message names the largest
 * label and suggests --num-classes). Every test label must be < K. */
int eval_num_classes(const int *ytr, size_t ntr, const int *yte, size_t nte, const char *te_opt,
                     int num_classes, int *K);
/* JSON writer for the result files: eval_json_begin opens the file atomically and writes "{";
 * then key/value helpers; eval_json_end writes "}" and commits (or aborts on error). */
typedef struct {
    void *af; /* AtomicFile */
    FILE *f;
    int first;
} EvalJson;
int eval_json_begin(EvalJson *j, const char *path);
void eval_json_num(EvalJson *j, const char *key, double v);
void eval_json_str(EvalJson *j, const char *key, const char *v);
void eval_json_nums(EvalJson *j, const char *key, const double *v, int n);
void eval_json_raw(EvalJson *j, const char *key, const char *raw); /* raw JSON value */
FILE *eval_json_key(EvalJson *j, const char *key); /* writes "key": and returns the stream */
int eval_json_end(EvalJson *j);

#endif
