/* cmd_features.c - `simclr features`: the frozen encoder's features of one dataset split as .npy
 * (eval mode, no augmentation: resize to the model size, the training normalisation). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eval_cli.h"
#include "npy.h"

SIMCLR_COMMAND(cmd_features, "features", "export encoder features (h or z) of a dataset split to .npy")

int cmd_features(int argc, char **argv) {
    EvalInputs in;
    eval_inputs_init(&in);
    const char *out = NULL, *labels_out = NULL;
    Opt own[] = {
        {"output", OPT_STR, &out, "features .npy (N, D) float32 (required)", .output = 1},
        {"labels-output", OPT_STR, &labels_out, "labels .npy (N) int64 (-1: unlabeled)", .output = 1},
        {0}};
    /* only the model / dataset / feature tables, plus --threads from the io table */
    Opt threads[] = {{"threads", OPT_INT, &in.threads, "compute threads (0: all cores)", .min = 0, .max = 4096}, {0}};
    Opt *tables[6] = {own, in.feat, in.model, in.data, threads};
    int nt = 5;
    /* train/test split options do not apply here (one --split): drop them from the table */
    int w = 0;
    for (int r = 0; in.feat[r].name; r++) {
        const char *nm = in.feat[r].name;
        if (!strcmp(nm, "train-split") || !strcmp(nm, "test-split") || !strcmp(nm, "test-data"))
            continue;
        in.feat[w++] = in.feat[r];
    }
    in.feat[w] = (Opt){0};
    if (opts_parse("features", "export encoder features of a dataset split", argc, argv, tables, nt,
                   NULL, NULL))
        sc_fatal("%s", sc_error());
    if (!out) sc_fatal("--output is required");
    float *X;
    int *y, D;
    size_t N;
    if (eval_extract_split(&in, tables, nt, &X, &y, &N, &D)) sc_fatal("%s", sc_error());
    int64_t shape[2] = {(int64_t)N, D};
    if (npy_write(out, NPY_F32, 2, shape, X)) sc_fatal("--output: %s", sc_error());
    if (labels_out) {
        int64_t *l = malloc(sizeof(int64_t) * (N ? N : 1));
        for (size_t i = 0; i < N; i++) l[i] = y[i];
        if (npy_write(labels_out, NPY_I64, 1, shape, l)) sc_fatal("--labels-output: %s", sc_error());
        free(l);
    }
    printf("features: %zu x %d (%s) -> %s\n", N, D, in.layer ? "z" : "h", out);
    free(X);
    free(y);
    return 0;
}
