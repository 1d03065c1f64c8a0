/* fuzz_npy.c - .npy files: the header parser (npy_parse) on the raw input, then, for an accepted
 * file, the loaders that read it from disk (npy_load_f32/_i64, an npy image dataset, the
 * evaluation's feature/label reader with its class count: an integer (N,) array as the labels of
 * N features, anything else as features). */
#include "fuzz.h"

#include "dataset.h"
#include "eval_io.h"
#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    NpyArray a;
    int rc = npy_parse(&a, "fuzz.npy", data, size);
    fuzz_check(rc);
    if (rc) return 0;
    if (a.ndim > NPY_MAX_DIMS || a.elem_size != npy_dtype_size(a.dtype) ||
        (const uint8_t *)a.data + a.count * a.elem_size != data + size)
        abort(); /* the parser's own invariants */
    double s = 0;
    for (size_t i = 0; i < a.count && i < 4096; i++) s += npy_get_f64(&a, i);
    if (a.count) s += npy_get_f64(&a, a.count - 1);
    (void)s;
    npy_close(&a);
    if (size > (1 << 16)) return 0;
    const char *p = fuzz_write("a.npy", data, size);
    float *f = NULL;
    int64_t *l = NULL, shape[NPY_MAX_DIMS];
    int nd;
    fuzz_check(rc = npy_load_f32(p, &f, shape, &nd));
    free(f);
    fuzz_check(rc = npy_load_i64(p, &l, shape, &nd));
    free(l);
    float *X = NULL;
    int *y = NULL, D = 0, K = 0;
    size_t N = 0;
    if (nd == 1 && !rc) { /* integer (N,): the labels of N one-dimensional features */
        float *zeros = calloc((size_t)shape[0] + 1, sizeof(float));
        int64_t fs[2] = {shape[0], 1};
        const char *fp = fuzz_path("features.npy");
        if (npy_write(fp, NPY_F32, 2, fs, zeros)) abort();
        free(zeros);
        fuzz_check(rc = eval_load_npy("--train-features", fp, "--train-labels", p, &X, &y, &N, &D));
        if (!rc) fuzz_check(eval_num_classes(y, N, y, N, "--test-labels", 0, &K));
    } else
        fuzz_check(eval_load_npy("--train-features", p, NULL, NULL, &X, NULL, &N, &D));
    free(X), free(y);
    DatasetConfig dc;
    dataset_config_default(&dc);
    dc.kind = DATASET_NPY, dc.path = p;
    Dataset *ds;
    fuzz_check(rc = dataset_open(&ds, &dc));
    if (!rc) {
        ImageU8 im = {0};
        for (size_t i = 0; i < dataset_size(ds) && i < 8; i++) fuzz_check(dataset_image(ds, i, &im));
        float mean[3], std[3];
        fuzz_check(dataset_channel_stats(ds, 8, mean, std));
        image_free(&im);
        dataset_close(ds);
    }
    return 0;
}
