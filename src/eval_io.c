/* eval_io.c - .npy inputs and JSON outputs of the evaluation commands. */
#include "eval_io.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "npy.h"

int eval_load_npy(const char *feat_opt, const char *feat_path, const char *lab_opt,
                  const char *lab_path, float **X, int **y, size_t *N, int *D) {
    *X = NULL;
    if (y) *y = NULL;
    int64_t sh[NPY_MAX_DIMS];
    int nd = 0;
    float *f = NULL;
    if (npy_load_f32(feat_path, &f, sh, &nd)) return sc_error_prefix("%s", feat_opt);
    if (nd < 2 || sh[0] < 1) {
        free(f);
        return sc_error_set("%s %s: expected an array of shape (N, D) with N >= 1, found %d "
                            "dimension(s)", feat_opt, feat_path, nd);
    }
    int64_t d = 1;
    for (int i = 1; i < nd; i++) d *= sh[i];
    if (d < 1 || d > INT_MAX) {
        free(f);
        return sc_error_set("%s %s: feature dimension %lld out of range", feat_opt, feat_path,
                            (long long)d);
    }
    size_t n = (size_t)sh[0];
    for (size_t i = 0; i < n * (size_t)d; i++)
        if (!isfinite(f[i])) {
            const char *what = isnan(f[i]) ? "NaN" : "infinite";
            free(f);
            return sc_error_set("%s %s: feature %lld of row %zu is %s; features must be finite",
                                feat_opt, feat_path, (long long)(i % d), i / d, what);
        }
    if (lab_path && y) {
        int64_t *l = NULL, ls[NPY_MAX_DIMS];
        int lnd = 0;
        if (npy_load_i64(lab_path, &l, ls, &lnd)) {
            free(f);
            return sc_error_prefix("%s", lab_opt);
        }
        if (lnd != 1 || (size_t)ls[0] != n) {
            free(f);
            free(l);
            return sc_error_set("%s %s: expected %zu labels (one per row of %s %s), found shape "
                                "(%lld%s)", lab_opt, lab_path, n, feat_opt, feat_path,
                                lnd ? (long long)ls[0] : 0LL, lnd > 1 ? ", ..." : "");
        }
        int *yy = malloc(sizeof(int) * n);
        for (size_t i = 0; i < n; i++) {
            if (l[i] < 0 || l[i] > INT_MAX) {
                int64_t bad = l[i];
                free(f); free(l); free(yy);
                return sc_error_set("%s %s: label %lld at row %zu; labels must be class indices "
                                    ">= 0", lab_opt, lab_path, (long long)bad, i);
            }
            yy[i] = (int)l[i];
        }
        free(l);
        *y = yy;
    }
    *X = f;
    *N = n;
    *D = (int)d;
    return 0;
}

int eval_num_classes(const int *ytr, size_t ntr, const int *yte, size_t nte, const char *te_opt,
                     int num_classes, int *K) {
    int mx = 0;
    size_t at = 0;
    for (size_t i = 0; i < ntr; i++)
        if (ytr[i] > mx) mx = ytr[i], at = i;
    if (mx < 1) return sc_error_set("train labels: only one class (0) present; need at least 2");
    if (num_classes > 0) {
        if (mx >= num_classes)
            return sc_error_set("train labels: label %d at row %zu is not below eval.num_classes %d",
                                mx, at, num_classes);
    } else if ((size_t)mx >= ntr || mx == INT_MAX)
        return sc_error_set("train labels: the largest label is %d (row %zu), but there are only "
                            "%zu train rows; labels must be class indices 0..K-1 (give "
                            "eval.num_classes K for classes without examples)", mx, at, ntr);
    int k = num_classes > 0 ? num_classes : mx + 1; /* mx < ntr or < num_classes: no overflow */
    for (size_t i = 0; i < nte; i++)
        if (yte[i] >= k)
            return sc_error_set("%s: label %d at row %zu is outside the train classes 0..%d", te_opt,
                                yte[i], i, k - 1);
    *K = k;
    return 0;
}


int eval_json_begin(EvalJson *j, const char *path) {
    AtomicFile *af = sc_alloc(sizeof *af);
    if (sc_atomic_open(af, path)) {
        sc_free(af);
        return sc_error_prefix("eval.json");
    }
    j->af = af;
    j->f = af->f;
    j->first = 1;
    fputs("{", j->f);
    return 0;
}

FILE *eval_json_key(EvalJson *j, const char *key) {
    fputs(j->first ? "\n  " : ",\n  ", j->f);
    j->first = 0;
    sc_json_string(j->f, key);
    fputs(": ", j->f);
    return j->f;
}
static void json_num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.10g", v);
    else fputs("null", f);
}
void eval_json_num(EvalJson *j, const char *key, double v) { json_num(eval_json_key(j, key), v); }
void eval_json_str(EvalJson *j, const char *key, const char *v) {
    FILE *f = eval_json_key(j, key);
    if (v) sc_json_string(f, v);
    else fputs("null", f);
}
void eval_json_nums(EvalJson *j, const char *key, const double *v, int n) {
    FILE *f = eval_json_key(j, key);
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        if (i) fputs(", ", f);
        json_num(f, v[i]);
    }
    fputc(']', f);
}
void eval_json_raw(EvalJson *j, const char *key, const char *raw) { fputs(raw, eval_json_key(j, key)); }

int eval_json_end(EvalJson *j) {
    AtomicFile *af = j->af;
    fputs("\n}\n", j->f);
    int rc = sc_atomic_commit(af);
    sc_free(af);
    return rc ? sc_error_prefix("eval.json") : 0;
}
