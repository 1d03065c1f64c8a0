/* eval_features.c - eval-mode feature extraction and raw pixels (see eval_features.h). */
#include "eval_features.h"

#include <string.h>
#include <unistd.h>

#include "common.h"
#include "rng.h"

int features_dim(const Model *m, int layer) {
    return layer == FEATURES_Z ? model_out_dim(m) : model_feature_dim(m);
}

int features_extract(Model *m, const Dataset *ds, const AugmentConfig *aug, int layer, int batch,
                     const size_t *idx, size_t n, float *out, int *labels, int progress) {
    if (batch < 1 || batch > model_max_batch(m))
        return sc_error_set("features.batch: expected 1..%d (the model's batch), got %d",
                            model_max_batch(m), batch);
    AugmentConfig a = *aug;
    a.mode = AUGMENT_NONE;
    a.out_size = model_config(m)->image_size;
    if (a.normalize == NORMALIZE_DATASET && !a.stats_set) {
        if (dataset_channel_stats(ds, 10000, a.mean, a.std)) return -1;
        a.stats_set = 1;
    }
    int S = a.out_size, D = features_dim(m, layer);
    size_t total = dataset_size(ds), per = (size_t)3 * S * S;
    float *x = sc_alloc(sizeof(float) * (size_t)batch * per);
    int tty = progress && isatty(2);
    double t0 = sc_now(), last = 0;
    int rc = 0;
    for (size_t s = 0; s < n && !rc; s += (size_t)batch) {
        int B = (int)(n - s < (size_t)batch ? n - s : (size_t)batch);
        int bad = 0;
        size_t bad_idx = 0;
#pragma omp parallel
        {
            ImageU8 im = {0};
#pragma omp for schedule(dynamic, 4)
            for (int b = 0; b < B; b++) {
                size_t i = idx ? idx[s + b] : s + b;
                if (i >= total || dataset_image(ds, i, &im)) {
#pragma omp critical
                    {
                        if (!bad) bad = 1, bad_idx = i;
                    }
                    continue;
                }
                Rng r = rng_derive(0, RNG_STREAM_EVAL, 5, i, 0); /* unused: no augmentation */
                augment_view(&im, &a, &r, x + (size_t)b * per);
                if (labels) labels[s + b] = dataset_label(ds, i);
            }
            image_free(&im);
        }
        if (bad) {
            rc = bad_idx >= total ? sc_error_set("features: image index %zu beyond the %zu images "
                                                 "of %s", bad_idx, total, dataset_describe(ds))
                                  : sc_error_prefix("features: image %zu", bad_idx);
            break;
        }
        if (model_forward(m, x, B, 0)) {
            rc = -1;
            break;
        }
        memcpy(out + s * D, layer == FEATURES_Z ? model_z(m) : model_h(m), sizeof(float) * B * D);
        double t = sc_now() - t0;
        if (tty && (t - last > 0.5 || s + B == n)) {
            last = t;
            fprintf(stderr, "\rfeatures: %zu/%zu images, %.0f img/s   ", s + B, n, (s + B) / t);
            if (s + B == n) fputc('\n', stderr);
        }
    }
    sc_free(x);
    return rc;
}

int features_pixels(const Dataset *ds, int size, float **X, size_t *N, int *D, int *labels) {
    size_t n = dataset_size(ds);
    int h = 0, w = 0, c = 0;
    dataset_image_size(ds, &h, &w);
    ImageU8 im = {0};
    if (n == 0) return sc_error_set("%s: no images", dataset_describe(ds));
    if (dataset_image(ds, 0, &im)) return sc_error_prefix("pixels: image 0");
    c = im.c;
    image_free(&im);
    AugmentConfig a;
    int resize = size > 0 || h <= 0 || w <= 0;
    if (resize) {
        if (size <= 0)
            return sc_error_set("%s: images of different sizes; give features.image_size to resize them",
                                dataset_describe(ds));
        augment_config_default(&a);
        a.mode = AUGMENT_NONE;
        a.normalize = NORMALIZE_NONE;
        a.out_size = size;
        if (augment_config_finish(&a)) return -1;
        h = w = size;
        c = 3;
    }
    size_t d = (size_t)h * w * c;
    float *x = sc_alloc(sizeof(float) * n * d);
    int bad = 0;
    size_t bad_i = 0;
#pragma omp parallel
    {
        ImageU8 img = {0};
#pragma omp for schedule(dynamic, 16)
        for (size_t i = 0; i < n; i++) {
            if (dataset_image(ds, i, &img) || (!resize && (img.h != h || img.w != w || img.c != c))) {
#pragma omp critical
                {
                    if (!bad) bad = 1, bad_i = i;
                }
                continue;
            }
            float *row = x + i * d;
            if (resize) { /* (3, S, S) planes back to HWC */
                float *chw = sc_alloc(sizeof(float) * d);
                Rng r = rng_derive(0, RNG_STREAM_EVAL, 5, i, 0);
                augment_view(&img, &a, &r, chw);
                for (int p = 0; p < h * w; p++)
                    for (int ch = 0; ch < 3; ch++) row[(size_t)p * 3 + ch] = chw[(size_t)ch * h * w + p];
                sc_free(chw);
            } else {
                for (size_t j = 0; j < d; j++) row[j] = img.px[j] * (1.0f / 255.0f);
            }
            if (labels) labels[i] = dataset_label(ds, i);
        }
        image_free(&img);
    }
    if (bad) {
        sc_free(x);
        return sc_error_set("pixels: image %zu of %s is unreadable or not %dx%dx%d", bad_i,
                            dataset_describe(ds), h, w, c);
    }
    *X = x;
    *N = n;
    *D = (int)d;
    return 0;
}

uint64_t features_model_hash(Model *m) {
    uint64_t h = 1469598103934665603ULL;
    const uint8_t *bufs[3] = {(const uint8_t *)model_params(m), (const uint8_t *)model_buffers(m),
                              (const uint8_t *)model_counters(m)};
    size_t lens[3] = {model_num_params(m) * sizeof(float), model_num_buffers(m) * sizeof(float),
                      model_num_counters(m) * sizeof(int64_t)};
    for (int b = 0; b < 3; b++)
        for (size_t i = 0; i < lens[b]; i++) h = (h ^ bufs[b][i]) * 1099511628211ULL;
    return h;
}
