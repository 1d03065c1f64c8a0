/* cmd_features.c - `simclr features`: the frozen encoder's features of one dataset split as .npy
 * (eval mode, no augmentation: resize to the model size, the training normalisation), with the
 * source of every row and the class names beside it. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eval_cli.h"
#include "npy.h"

SIMCLR_COMMAND(cmd_features, "features", "export encoder features (h or z) of a dataset split to .npy")

/* "<output without .npy><suffix>" */
static char *beside(const char *out, const char *suffix) {
    size_t n = strlen(out);
    if (n > 4 && !strcmp(out + n - 4, ".npy")) n -= 4;
    char *p = sc_xrealloc(NULL, n + strlen(suffix) + 1);
    memcpy(p, out, n);
    strcpy(p + n, suffix);
    return p;
}

static const char *class_of(const Dataset *ds, int label, char *buf, size_t n) {
    if (label < 0) return "";
    const char *name = dataset_class_name(ds, label);
    if (name) return name;
    snprintf(buf, n, "%d", label);
    return buf;
}

/* One line per row (row, label, class, source file), then the skipped files. */
static void write_rows(FILE *f, const Dataset *ds, const int *y, size_t N) {
    char buf[32];
    fprintf(f, "row\tlabel\tclass\tfile\tnote\n");
    for (size_t i = 0; i < N; i++) {
        const char *file = dataset_file(ds, i);
        fprintf(f, "%zu\t%d\t%s\t", i, y[i], class_of(ds, y[i], buf, sizeof buf));
        if (file) fprintf(f, "%s\t\n", file);
        else fprintf(f, "%s:%s:%zu\t\n", dataset_source(ds), dataset_split(ds), i); /* a record */
    }
    for (size_t k = 0; k < dataset_skipped(ds); k++) {
        const char *reason = "";
        int label = -1;
        const char *file = dataset_skipped_file(ds, k, &reason, &label);
        fprintf(f, "skipped\t%d\t%s\t%s\tskipped, no row: ", label, class_of(ds, label, buf, sizeof buf), file);
        for (const char *c = reason; *c; c++) fputc(*c == '\t' || *c == '\n' ? ' ' : *c, f);
        fputc('\n', f);
    }
}

int cmd_features(int argc, char **argv) {
    EvalInputs in;
    eval_inputs_init(&in);
    const char *out = NULL, *labels_out = NULL, *files_out = NULL, *classes_out = NULL;
    Opt own[] = {
        {"output", OPT_STR, &out, "features .npy (N, D) float32 (required)", .output = 1},
        {"labels-output", OPT_STR, &labels_out, "labels .npy (N) int64 (-1: unlabeled)", .output = 1},
        {"files-output", OPT_STR, &files_out, "the source of every row, tab-separated: row, label, "
         "class, file; unreadable files skipped at the end (default: OUTPUT.files.tsv, OUTPUT "
         "without .npy)", .output = 1},
        {"classes-output", OPT_STR, &classes_out, "class names, line k = label k (default: "
         "OUTPUT.classes.txt when the split is labeled)", .output = 1},
        {0}};
    /* only the model / dataset / feature tables, plus --threads from the io table */
    Opt threads[] = {{"threads", OPT_INT, &in.threads, "compute threads (0: all cores)", .min = 0, .max = 4096}, {0}};
    Opt *tables[6] = {own, in.feat, in.model, in.data, threads};
    int nt = 5;
    /* train/test split options do not apply here (one --split): drop them from the table */
    int w = 0;
    for (int r = 0; in.feat[r].name; r++) {
        const char *nm = in.feat[r].name;
        if (!strcmp(nm, "train-split") || !strcmp(nm, "test-split") || !strcmp(nm, "test-data") ||
            !strcmp(nm, "test-dataset") || !strcmp(nm, "test-on-train"))
            continue;
        in.feat[w++] = in.feat[r];
    }
    in.feat[w] = (Opt){0};
    eval_inputs_on_help(&in);
    if (opts_parse("features", "export encoder features of a dataset split", argc, argv, tables, nt,
                   NULL, NULL))
        sc_fatal("%s", sc_error());
    if (!out) sc_fatal("--output is required");
    float *X;
    int *y, D;
    size_t N;
    Dataset *ds;
    if (eval_extract_split(&in, tables, nt, &X, &y, &N, &D, &ds)) sc_fatal("%s", sc_error());
    char *fpath = files_out ? sc_strdup(files_out) : beside(out, ".files.tsv");
    char *cpath = classes_out ? sc_strdup(classes_out) : beside(out, ".classes.txt");
    int K = dataset_num_classes(ds);
    /* the side files are committed only after the features: never a half-written set */
    AtomicFile ff, cf;
    if (sc_atomic_open(&ff, fpath)) sc_fatal("--files-output: %s", sc_error());
    write_rows(ff.f, ds, y, N);
    if (K > 0) {
        if (sc_atomic_open(&cf, cpath)) sc_fatal("--classes-output: %s", sc_error());
        char buf[32];
        for (int k = 0; k < K; k++) fprintf(cf.f, "%s\n", class_of(ds, k, buf, sizeof buf));
    }
    int64_t shape[2] = {(int64_t)N, D};
    int rc = npy_write(out, NPY_F32, 2, shape, X);
    if (!rc && labels_out) {
        int64_t *l = malloc(sizeof(int64_t) * (N ? N : 1));
        for (size_t i = 0; i < N; i++) l[i] = y[i];
        rc = npy_write(labels_out, NPY_I64, 1, shape, l);
        if (rc) sc_error_prefix("--labels-output");
        free(l);
    } else if (rc)
        sc_error_prefix("--output");
    if (rc) {
        sc_atomic_abort(&ff);
        if (K > 0) sc_atomic_abort(&cf);
        sc_fatal("%s", sc_error());
    }
    if (sc_atomic_commit(&ff)) sc_fatal("--files-output: %s", sc_error());
    if (K > 0 && sc_atomic_commit(&cf)) sc_fatal("--classes-output: %s", sc_error());
    printf("features: %zu x %d (%s) of %s -> %s (rows: %s%s%s)\n", N, D, in.layer ? "z" : "h",
           dataset_describe(ds), out, fpath, K > 0 ? ", classes: " : "", K > 0 ? cpath : "");
    if (dataset_skipped(ds))
        printf("features: %zu unreadable files have no row; they are listed at the end of %s\n",
               dataset_skipped(ds), fpath);
    free(fpath);
    free(cpath);
    free(X);
    free(y);
    dataset_close(ds);
    return 0;
}
