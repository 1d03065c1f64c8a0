/* test_loader.c - batch layout, shuffling without replacement, identical batches for any thread
 * count, exact resume with loader_seek, the kept last batch. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "loader.h"
#include "npy.h"
#include "test.h"

#define NIMG 37
#define H 20
#define W 24
#define S 16
#define NB 8
#define V 2
#define VIEW (3 * S * S)
#define BATCH_FLOATS ((size_t)V * NB * VIEW)

static char dir[64];
static Dataset *open_ds(void) {
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/simclr_test_loader_XXXXXX");
        SC_ASSERT(mkdtemp(dir));
        static uint8_t px[NIMG * H * W * 3];
        Rng r = rng_derive(1, RNG_STREAM_TEST, 0, 0, 0);
        for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)rng_below(&r, 256);
        int64_t s[4] = {NIMG, H, W, 3}, s1[1] = {NIMG};
        int64_t lab[NIMG];
        for (int i = 0; i < NIMG; i++) lab[i] = i % 5;
        char p[128];
        snprintf(p, sizeof p, "%s/x.npy", dir);
        SC_ASSERT(npy_write(p, NPY_U8, 4, s, px) == 0);
        snprintf(p, sizeof p, "%s/y.npy", dir);
        SC_ASSERT(npy_write(p, NPY_I64, 1, s1, lab) == 0);
    }
    static char px_path[128], y_path[128];
    snprintf(px_path, sizeof px_path, "%s/x.npy", dir);
    snprintf(y_path, sizeof y_path, "%s/y.npy", dir);
    DatasetConfig c;
    dataset_config_default(&c);
    c.kind = DATASET_NPY, c.path = px_path, c.labels = y_path;
    Dataset *ds;
    SC_ASSERT(dataset_open(&ds, &c) == 0);
    return ds;
}

static AugmentConfig aug(void) {
    AugmentConfig a;
    augment_config_default(&a);
    a.out_size = S, a.views = V, a.blur_prob = 0.5f;
    SC_ASSERT(augment_config_finish(&a) == 0);
    return a;
}

static Loader *make(Dataset *ds, int threads, int keep_last, int shuffle) {
    AugmentConfig a = aug();
    LoaderConfig c;
    loader_config_default(&c);
    c.batch_size = NB, c.seed = 42, c.threads = threads, c.keep_last = keep_last, c.shuffle = shuffle;
    Loader *L;
    SC_ASSERT(loader_create(&L, ds, &a, &c) == 0);
    return L;
}

/* collects nb batches (floats and indices) */
static void collect(Loader *L, int nb, float *x, uint32_t *idx, int *labels) {
    for (int b = 0; b < nb; b++) {
        const int *lab;
        const float *p = loader_next(L, &lab);
        SC_ASSERT(p);
        memcpy(x + b * BATCH_FLOATS, p, sizeof(float) * BATCH_FLOATS);
        memcpy(idx + b * NB, loader_indices(L), sizeof(uint32_t) * NB);
        if (labels) memcpy(labels + b * NB, lab, sizeof(int) * NB);
    }
}

TEST(layout_shuffle_and_labels) {
    Dataset *ds = open_ds();
    Loader *L = make(ds, 2, 0, 1);
    CHECK(loader_batches_per_epoch(L) == NIMG / NB, "bpe %ld", loader_batches_per_epoch(L));
    int nb = 2 * (NIMG / NB);
    float *x = malloc(sizeof(float) * BATCH_FLOATS * nb);
    uint32_t idx[64];
    int labels[64];
    collect(L, nb, x, idx, labels);
    /* epoch e's indices are the first 32 entries of the permutation of that epoch */
    for (int e = 0; e < 2; e++) {
        uint32_t perm[NIMG];
        Rng r = rng_derive(42, RNG_STREAM_SHUFFLE, (uint64_t)e, 0, 0);
        rng_permutation(&r, perm, NIMG, 1);
        CHECK(!memcmp(perm, idx + e * 32, sizeof(uint32_t) * 32), "epoch %d order", e);
        int seen[NIMG] = {0}, dup = 0;
        for (int i = 0; i < 32; i++) dup += seen[idx[e * 32 + i]]++ > 0;
        CHECK(dup == 0, "epoch %d repeats %d images", e, dup);
    }
    CHECK(memcmp(idx, idx + 32, sizeof(uint32_t) * 32), "epochs 0 and 1 have the same order");
    for (int i = 0; i < nb * NB; i++) CHECK(labels[i] == (int)(idx[i] % 5), "label of %u", idx[i]);
    /* row v*N + i is augment_view of image idx[i] with rng (seed, epoch, index, view) */
    AugmentConfig a = aug();
    ImageU8 im = {0};
    float view[VIEW];
    int bad = 0;
    for (int b = 0; b < nb; b++)
        for (int i = 0; i < NB; i++)
            for (int v = 0; v < V; v++) {
                uint32_t d = idx[b * NB + i];
                dataset_image(ds, d, &im);
                Rng r = rng_derive(42, RNG_STREAM_AUGMENT, (uint64_t)(b / 4), d, (uint64_t)v);
                augment_view(&im, &a, &r, view);
                bad += memcmp(view, x + b * BATCH_FLOATS + ((size_t)v * NB + i) * VIEW, sizeof view) != 0;
            }
    CHECK(bad == 0, "%d rows differ from augment_view", bad);
    image_free(&im);
    free(x);
    loader_free(L);
    dataset_close(ds);
}

TEST(same_batches_for_any_thread_count) {
    Dataset *ds = open_ds();
    int nb = 9; /* crosses two epoch boundaries */
    float *ref = malloc(sizeof(float) * BATCH_FLOATS * nb), *got = malloc(sizeof(float) * BATCH_FLOATS * nb);
    uint32_t ri[128], gi[128];
    Loader *L = make(ds, 0, 0, 1);
    collect(L, nb, ref, ri, NULL);
    loader_free(L);
    for (int t = 1; t <= 4; t++) {
        L = make(ds, t, 0, 1);
        collect(L, nb, got, gi, NULL);
        CHECK(!memcmp(ref, got, sizeof(float) * BATCH_FLOATS * nb) && !memcmp(ri, gi, sizeof(uint32_t) * nb * NB),
              "threads %d differ from threads 0", t);
        loader_free(L);
    }
    free(ref), free(got);
    dataset_close(ds);
}

TEST(seek_resumes_the_exact_sequence) {
    Dataset *ds = open_ds();
    int nb = 10;
    float *ref = malloc(sizeof(float) * BATCH_FLOATS * nb), *got = malloc(sizeof(float) * BATCH_FLOATS);
    uint32_t ri[128], gi[NB];
    Loader *L = make(ds, 2, 0, 1);
    collect(L, nb, ref, ri, NULL);
    loader_free(L);
    int bpe = NIMG / NB;
    long targets[][2] = {{1, 2}, {0, 0}, {2, 1}, {0, 3}};
    L = make(ds, 2, 0, 1);
    collect(L, 1, got, gi, NULL); /* workers busy prefetching when we seek */
    for (int k = 0; k < 4; k++) {
        loader_seek(L, targets[k][0], targets[k][1]);
        int g = (int)(targets[k][0] * bpe + targets[k][1]);
        for (int j = 0; j < 2 && g + j < nb; j++) {
            long e, b;
            int n;
            const int *lab;
            const float *p = loader_next_n(L, &lab, &n, &e, &b);
            CHECK(e * bpe + b == g + j && n == NB, "position %ld/%ld, want %d", e, b, g + j);
            CHECK(!memcmp(p, ref + (size_t)(g + j) * BATCH_FLOATS, sizeof(float) * BATCH_FLOATS),
                  "seek to epoch %ld batch %ld: batch %d differs", targets[k][0], targets[k][1], j);
        }
    }
    loader_free(L);
    /* a fresh loader seeking before its first batch (how a resumed run starts) */
    L = make(ds, 1, 0, 1);
    loader_seek(L, 1, 3);
    collect(L, 1, got, gi, NULL);
    CHECK(!memcmp(got, ref + (size_t)(bpe + 3) * BATCH_FLOATS, sizeof(float) * BATCH_FLOATS), "fresh seek");
    loader_free(L);
    free(ref), free(got);
    dataset_close(ds);
}

TEST(keep_last_in_order) {
    Dataset *ds = open_ds();
    Loader *L = make(ds, 2, 1, 0);
    CHECK(loader_batches_per_epoch(L) == 5, "bpe %ld", loader_batches_per_epoch(L));
    int total = 0;
    for (int b = 0; b < 5; b++) {
        int n;
        long e, bb;
        const int *lab;
        const float *p = loader_next_n(L, &lab, &n, &e, &bb);
        CHECK(p && e == 0 && bb == b && n == (b < 4 ? NB : NIMG - 4 * NB), "batch %d n %d", b, n);
        const uint32_t *ix = loader_indices(L);
        for (int i = 0; i < n; i++) CHECK(ix[i] == (uint32_t)(total + i), "order %u", ix[i]);
        if (b == 4) { /* short batch: view 1 of image 0 at row n, not N */
            AugmentConfig a = aug();
            ImageU8 im = {0};
            float view[VIEW];
            dataset_image(ds, ix[0], &im);
            Rng r = rng_derive(42, RNG_STREAM_AUGMENT, 0, ix[0], 1);
            augment_view(&im, &a, &r, view);
            CHECK(!memcmp(view, p + (size_t)n * VIEW, sizeof view), "row v*n + i in a short batch");
        }
        total += n;
    }
    CHECK(total == NIMG, "total %d", total);
    loader_free(L);
    dataset_close(ds);
}

TEST(workers_prepare_batches_ahead) {
    Dataset *ds = open_ds();
    Loader *L = make(ds, 1, 0, 1);
    /* nobody calls loader_next: the worker alone must fill the prefetch slots (2 by default, plus
     * the slot the consumer will hold: all 3 are filled before the first call) */
    int ready = 0;
    for (int i = 0; i < 1000 && (ready = loader_ready_batches(L)) < 3; i++) usleep(10000);
    CHECK(ready == 3, "%d batches prepared in the background", ready);
    const float *x = loader_next(L, NULL);
    CHECK(x != NULL, "next");
    /* the consumer holds one slot; the other two are the next batches, already done */
    ready = loader_ready_batches(L);
    CHECK(ready == 2, "after one batch: %d ready", ready);
    loader_free(L);
    /* with no workers nothing happens until the consumer asks */
    L = make(ds, 0, 0, 1);
    usleep(20000);
    CHECK(loader_ready_batches(L) == 0, "synchronous loader worked in the background");
    loader_free(L);
    dataset_close(ds);
}

TEST(errors) {
    Dataset *ds = open_ds();
    AugmentConfig a = aug();
    LoaderConfig c;
    loader_config_default(&c);
    c.batch_size = NIMG + 1;
    Loader *L = NULL;
    CHECK(loader_create(&L, ds, &a, &c) == -1 && strstr(sc_error(), "loader.batch_size"), "%s", sc_error());
    a.normalize = NORMALIZE_DATASET;
    c.batch_size = 4;
    CHECK(loader_create(&L, ds, &a, &c) == 0, "%s", sc_error());
    if (L) {
        const AugmentConfig *r = loader_augment(L);
        CHECK(r->stats_set && r->mean[0] > 0.4f && r->mean[0] < 0.6f && r->std[0] > 0.25f, "dataset stats %g %g",
              r->mean[0], r->std[0]);
        loader_free(L);
    }
    dataset_close(ds);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cleanup");
}
