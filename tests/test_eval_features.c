/* test_eval_features.c - feature extraction: frozen weights (bit-identical before/after), the
 * same features as a direct eval-mode forward, independent of the batch size; raw pixels. */
#include <math.h>
#include <string.h>

#include <unistd.h>

#include "augment.h"
#include "checkpoint.h"
#include "safetensors.h"
#include "common.h"
#include "dataset.h"
#include "eval_features.h"
#include "model.h"
#include "test.h"

static Dataset *digits(void) {
    DatasetConfig dc;
    dataset_config_default(&dc);
    dc.kind = DATASET_NPY;
    dc.path = fixture_path("eval/digits_img_test.npy");
    dc.labels = fixture_path("eval/digits_yte.npy");
    Dataset *ds = NULL;
    if (dataset_open(&ds, &dc)) {
        fprintf(stderr, "%s\n", sc_error());
        exit(1);
    }
    return ds;
}

static Model *small_model(int max_batch) {
    ModelConfig mc;
    model_config_default(&mc);
    mc.arch = ARCH_RESNET18;
    mc.stem = STEM_CIFAR;
    mc.width = 0.125f;
    mc.image_size = 16;
    Model *m = NULL;
    if (model_create(&m, &mc, max_batch, 3)) {
        fprintf(stderr, "%s\n", sc_error());
        exit(1);
    }
    return m;
}

TEST(extraction_leaves_weights_bit_identical_and_matches_forward) {
    sc_set_threads(2);
    Dataset *ds = digits();
    Model *m = small_model(32);
    /* make the BN running statistics non-trivial, as after training */
    AugmentConfig a;
    augment_config_default(&a);
    a.mode = AUGMENT_NONE;
    a.out_size = 16;
    CHECK(augment_config_finish(&a) == 0, "%s", sc_error());
    float *x = sc_alloc(sizeof(float) * 32 * 3 * 16 * 16);
    ImageU8 im = {0};
    for (int i = 0; i < 32; i++) {
        dataset_image(ds, 100 + i, &im);
        Rng r = rng_derive(0, RNG_STREAM_TEST, i, 0, 0);
        augment_view(&im, &a, &r, x + (size_t)i * 3 * 16 * 16);
    }
    model_forward(m, x, 32, 1);
    uint64_t h0 = features_model_hash(m);
    size_t n = 70;
    int D = features_dim(m, FEATURES_H), Dz = features_dim(m, FEATURES_Z);
    float *f1 = sc_alloc(sizeof(float) * n * D), *f2 = sc_alloc(sizeof(float) * n * D);
    float *fz = sc_alloc(sizeof(float) * n * Dz);
    int *y = sc_alloc(sizeof(int) * n);
    CHECK(features_extract(m, ds, &a, FEATURES_H, 32, NULL, n, f1, y, 0) == 0, "%s", sc_error());
    CHECK(features_model_hash(m) == h0, "weights/buffers changed during extraction");
    CHECK(features_extract(m, ds, &a, FEATURES_H, 7, NULL, n, f2, NULL, 0) == 0, "%s", sc_error());
    CHECK(features_extract(m, ds, &a, FEATURES_Z, 32, NULL, n, fz, NULL, 0) == 0, "%s", sc_error());
    CHECK(features_model_hash(m) == h0, "weights/buffers changed during extraction");
    CHECK(D == 64 && Dz == 128, "dims %d %d", D, Dz);
    /* batch 7 vs 32: the same eval-mode network; only conv rounding may differ */
    CHECK_ARRAY_CLOSE("h, batch 7 vs 32", f2, f1, n * D, 1e-4, 1e-5);
    /* a direct eval-mode forward of images 40..47 */
    for (int i = 0; i < 8; i++) {
        dataset_image(ds, 40 + i, &im);
        Rng r = rng_derive(0, RNG_STREAM_TEST, i, 0, 0);
        augment_view(&im, &a, &r, x + (size_t)i * 3 * 16 * 16);
    }
    model_forward(m, x, 8, 0);
    CHECK_ARRAY_CLOSE("h vs direct forward", f1 + 40 * D, model_h(m), 8 * D, 1e-4, 1e-5);
    CHECK_ARRAY_CLOSE("z vs direct forward", fz + 40 * Dz, model_z(m), 8 * Dz, 1e-4, 1e-5);
    CHECK(features_model_hash(m) == h0, "an eval-mode forward changed the weights/buffers");
    for (size_t i = 0; i < n; i++) CHECK(y[i] == dataset_label(ds, i), "label %zu", i);
    /* the hash sees a single flipped bit anywhere (here: one BN running mean) */
    float *buf = model_buffers(m);
    uint32_t bits;
    memcpy(&bits, buf, 4);
    bits ^= 1;
    memcpy(buf, &bits, 4);
    CHECK(features_model_hash(m) != h0, "hash blind to a buffer bit");
    CHECK(features_extract(m, ds, &a, FEATURES_H, 64, NULL, n, f1, NULL, 0) == -1 &&
              strstr(sc_error(), "features.batch"), "batch above the model's: '%s'", sc_error());
    image_free(&im);
    sc_free(x); sc_free(f1); sc_free(f2); sc_free(fz); sc_free(y);
    model_free(m);
    dataset_close(ds);
}

TEST(raw_pixels) {
    Dataset *ds = digits();
    float *X;
    size_t N;
    int D, *y = sc_alloc(sizeof(int) * dataset_size(ds));
    CHECK(features_pixels(ds, 0, &X, &N, &D, y) == 0, "%s", sc_error());
    CHECK(N == 597 && D == 64, "N %zu D %d", N, D);
    ImageU8 im = {0};
    dataset_image(ds, 5, &im);
    for (int j = 0; j < 64; j++) CHECK_CLOSE("pixel", X[5 * 64 + j], im.px[j] / 255.0, 1e-7, 0);
    CHECK(y[5] == dataset_label(ds, 5), "label");
    image_free(&im);
    sc_free(X);
    /* resized: (size, size, 3) HWC */
    CHECK(features_pixels(ds, 4, &X, &N, &D, NULL) == 0 && D == 48, "%s (D %d)", sc_error(), D);
    sc_free(X);
    sc_free(y);
    dataset_close(ds);
}

TEST(plain_torchvision_state_dict_is_accepted) {
    /* a safetensors file as safetensors.torch.save_file(resnet.state_dict()) writes it: encoder
     * tensors under torchvision names, fc.* present, no head, no simclr metadata */
    sc_set_threads(2);
    Dataset *ds = digits();
    Model *a = small_model(16), *b = small_model(16);
    AugmentConfig au;
    augment_config_default(&au);
    au.mode = AUGMENT_NONE;
    au.out_size = 16;
    augment_config_finish(&au);
    float *xa = sc_alloc(sizeof(float) * 16 * 3 * 16 * 16);
    for (size_t i = 0; i < 16 * 3 * 16 * 16; i++) xa[i] = (float)((i * 37) % 101) / 101.0f;
    model_forward(a, xa, 16, 1); /* non-trivial running statistics */
    for (size_t i = 0; i < model_num_params(a); i++) model_params(a)[i] *= 1.01f; /* != b's init */
    int nt = model_num_tensors(a), n = 0;
    StTensorOut *t = sc_alloc(sizeof(StTensorOut) * (nt + 2));
    for (int i = 0; i < nt; i++) {
        const ModelTensor *mt = model_tensor(a, i);
        if (!strncmp(mt->name, "head.", 5)) continue;
        StTensorOut *o = &t[n++];
        o->name = mt->name;
        o->ndim = mt->ndim;
        for (int d = 0; d < mt->ndim; d++) o->shape[d] = mt->shape[d];
        o->dtype = mt->kind == MODEL_COUNTER ? ST_I64 : ST_F32;
        o->data = mt->kind == MODEL_PARAM ? (void *)(model_params(a) + mt->offset)
                  : mt->kind == MODEL_BUFFER ? (void *)(model_buffers(a) + mt->offset)
                                             : (void *)(model_counters(a) + mt->offset);
    }
    int D = features_dim(a, FEATURES_H);
    float *fcw = sc_alloc(sizeof(float) * 10 * D), fcb[10] = {0};
    t[n++] = (StTensorOut){"fc.weight", ST_F32, 2, {10, D}, fcw};
    t[n++] = (StTensorOut){"fc.bias", ST_F32, 1, {10}, fcb};
    StMeta meta[1] = {{"format", "pt"}};
    char path[] = "/tmp/simclr_test_tv_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CHECK(safetensors_write(path, t, n, meta, 1) == 0, "%s", sc_error());
    CHECK(checkpoint_load(path, b, NULL, NULL) == 0, "plain state_dict refused: %s", sc_error());
    float *fa = sc_alloc(sizeof(float) * 40 * D), *fb = sc_alloc(sizeof(float) * 40 * D);
    CHECK(features_extract(a, ds, &au, FEATURES_H, 16, NULL, 40, fa, NULL, 0) == 0, "%s", sc_error());
    CHECK(features_extract(b, ds, &au, FEATURES_H, 16, NULL, 40, fb, NULL, 0) == 0, "%s", sc_error());
    CHECK(memcmp(fa, fb, sizeof(float) * 40 * D) == 0, "features from the state_dict differ");
    unlink(path);
    sc_free(t); sc_free(fcw); sc_free(xa); sc_free(fa); sc_free(fb);
    model_free(a);
    model_free(b);
    dataset_close(ds);
}
