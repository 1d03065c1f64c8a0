/* test_dataset.c - readers on small files in the exact formats (written here or by
 * tools/make_data_fixtures.py), error messages on malformed files, decoders against PIL, and
 * Fashion-MNIST golden values from Debian's dataset-fashion-mnist package. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "common.h"
#include "dataset.h"
#include "image.h"
#include "npy.h"
#include "rng.h"
#include "test.h"

#define tmp test_tmp
#define write_bytes test_write_bytes

static void copy_file(const char *from, const char *to) {
    char *d;
    size_t n;
    SC_ASSERT(sc_read_file(from, &d, &n) == 0);
    write_bytes(to, d, n);
    free(d);
}

static DatasetConfig cfg(int kind, const char *path, const char *split) {
    DatasetConfig c;
    dataset_config_default(&c);
    c.kind = kind, c.path = path, c.split = split;
    return c;
}

/* expects dataset_open to fail with all the given substrings in the message */
static void expect_open_error(const DatasetConfig *c, const char *s1, const char *s2) {
    Dataset *ds = NULL;
    int rc = dataset_open(&ds, c);
    CHECK(rc == -1 && ds == NULL, "opened although it should fail (%s)", s1);
    if (rc == 0) {
        dataset_close(ds);
        return;
    }
    CHECK(strstr(sc_error(), s1) && (!s2 || strstr(sc_error(), s2)), "message '%s' lacks '%s' / '%s'",
          sc_error(), s1, s2 ? s2 : "");
}

/* ---- STL-10 ------------------------------------------------------------------------------ */

TEST(stl10_matches_torchvision_reader) {
    DatasetConfig c = cfg(DATASET_STL10, fixture_path("data"), "train"); /* holds stl10_binary/ */
    Dataset *ds;
    if (dataset_open(&ds, &c)) {
        CHECK(0, "%s", sc_error());
        return;
    }
    float *chw = NULL;
    int64_t *lab = NULL, sh[8];
    int nd;
    CHECK(npy_load_f32(fixture_path("data/stl_train_chw.npy"), &chw, sh, &nd) == 0, "%s", sc_error());
    CHECK(npy_load_i64(fixture_path("data/stl_train_labels.npy"), &lab, NULL, NULL) == 0, "%s", sc_error());
    CHECK(dataset_size(ds) == 3 && dataset_num_classes(ds) == 10, "size %zu", dataset_size(ds));
    CHECK(dataset_class_name(ds, 7) && !strcmp(dataset_class_name(ds, 7), "monkey"), "class names");
    ImageU8 im = {0};
    for (size_t i = 0; i < 3 && chw && lab; i++) {
        CHECK(dataset_label(ds, i) == lab[i], "label %zu: %d vs %lld", i, dataset_label(ds, i), (long long)lab[i]);
        CHECK(dataset_image(ds, i, &im) == 0 && im.h == 96 && im.w == 96 && im.c == 3, "image %zu", i);
        int bad = 0;
        for (int ch = 0; ch < 3; ch++)
            for (int y = 0; y < 96; y++)
                for (int x = 0; x < 96; x++)
                    bad += im.px[(y * 96 + x) * 3 + ch] != (uint8_t)chw[((i * 3 + ch) * 96 + y) * 96 + x];
        CHECK(bad == 0, "image %zu: %d pixels differ from torchvision", i, bad);
    }
    image_free(&im);
    free(chw), free(lab);
    dataset_close(ds);
}

TEST(stl10_splits_and_folds) {
    const char *root = fixture_path("data/stl10_binary"); /* the folder itself works too */
    Dataset *ds;
    DatasetConfig c = cfg(DATASET_STL10, root, "train+unlabeled");
    CHECK(dataset_open(&ds, &c) == 0, "%s", sc_error());
    if (!ds) return;
    CHECK(dataset_size(ds) == 5, "train+unlabeled size %zu", dataset_size(ds));
    CHECK(dataset_label(ds, 0) == 0 && dataset_label(ds, 1) == 9 && dataset_label(ds, 3) == -1, "labels");
    /* unlabeled image 0 is record 3 of the combined split */
    ImageU8 a = {0}, b = {0};
    dataset_image(ds, 3, &a);
    uint8_t first[96];
    for (int y = 0; y < 96; y++) first[y] = a.px[y * 96 * 3]; /* column x=0 of channel 0 */
    dataset_close(ds);
    c = cfg(DATASET_STL10, root, "unlabeled");
    CHECK(dataset_open(&ds, &c) == 0 && dataset_size(ds) == 2 && dataset_num_classes(ds) == 0 &&
              dataset_label(ds, 0) == -1, "unlabeled");
    if (ds) {
        dataset_image(ds, 0, &b);
        CHECK(!memcmp(a.px, b.px, 96 * 96 * 3), "train+unlabeled[3] != unlabeled[0]");
        /* raw bytes: the first 96 bytes of the file are column 0 of the red channel */
        MappedFile m;
        sc_map_file(&m, fixture_path("data/stl10_binary/unlabeled_X.bin"));
        CHECK(m.data && !memcmp(m.data, first, 96), "column-major layout");
        sc_unmap_file(&m);
        dataset_close(ds);
    }
    c = cfg(DATASET_STL10, root, "test");
    CHECK(dataset_open(&ds, &c) == 0 && dataset_size(ds) == 2 && dataset_label(ds, 1) == 6, "test split");
    dataset_close(ds);
    c = cfg(DATASET_STL10, root, "train");
    c.fold = 2; /* fold line 2 is "2 0" */
    CHECK(dataset_open(&ds, &c) == 0 && dataset_size(ds) == 2, "fold: %s", sc_error());
    if (ds) {
        CHECK(dataset_label(ds, 0) == 3 && dataset_label(ds, 1) == 0, "fold labels %d %d", dataset_label(ds, 0),
              dataset_label(ds, 1));
        dataset_close(ds);
    }
    c.split = "test";
    expect_open_error(&c, "dataset.fold", "train");
    c = cfg(DATASET_STL10, root, "validation");
    expect_open_error(&c, "dataset.split", "validation");
    image_free(&a), image_free(&b);
}

/* an asymmetric pattern written here in the documented layout: byte c*9216 + x*96 + y */
static uint8_t pat(int img, int c, int y, int x) { return (uint8_t)(img * 31 + c * 77 + y * 5 + x * 11 + (y > x) * 101); }

TEST(stl10_column_major_pattern_and_errors) {
    sc_mkdir_p(tmp("stl/stl10_binary"));
    size_t n = 2, bytes = n * 27648;
    uint8_t *x = malloc(bytes);
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            for (int xx = 0; xx < 96; xx++)
                for (int y = 0; y < 96; y++) x[i * 27648 + c * 9216 + xx * 96 + y] = pat((int)i, c, y, xx);
    write_bytes(tmp("stl/stl10_binary/train_X.bin"), x, bytes);
    uint8_t y[2] = {3, 5};
    write_bytes(tmp("stl/stl10_binary/train_y.bin"), y, 2);
    DatasetConfig c = cfg(DATASET_STL10, tmp("stl"), "train");
    Dataset *ds;
    CHECK(dataset_open(&ds, &c) == 0, "%s", sc_error());
    if (ds) {
        ImageU8 im = {0};
        int bad = 0;
        for (size_t i = 0; i < n; i++) {
            dataset_image(ds, i, &im);
            for (int yy = 0; yy < 96; yy++)
                for (int xx = 0; xx < 96; xx++)
                    for (int ch = 0; ch < 3; ch++) bad += im.px[(yy * 96 + xx) * 3 + ch] != pat((int)i, ch, yy, xx);
        }
        CHECK(bad == 0, "%d pixels in the wrong place", bad);
        CHECK(dataset_label(ds, 1) == 4, "label 5 -> 4");
        image_free(&im);
        dataset_close(ds);
    }
    /* truncated images */
    write_bytes(tmp("stl/stl10_binary/train_X.bin"), x, bytes - 100);
    expect_open_error(&c, "train_X.bin", "multiple of 27648");
    write_bytes(tmp("stl/stl10_binary/train_X.bin"), x, bytes);
    /* label count mismatch, then label out of range */
    write_bytes(tmp("stl/stl10_binary/train_y.bin"), y, 1);
    expect_open_error(&c, "train_y.bin", "expected 2 bytes");
    uint8_t bad_y[2] = {3, 11};
    write_bytes(tmp("stl/stl10_binary/train_y.bin"), bad_y, 2);
    expect_open_error(&c, "train_y.bin", "label 11 at index 1 is out of range");
    write_bytes(tmp("stl/stl10_binary/train_y.bin"), y, 2);
    /* missing file, bad fold file */
    c.split = "unlabeled";
    expect_open_error(&c, "unlabeled_X.bin", "not found");
    c.split = "train", c.fold = 1;
    expect_open_error(&c, "fold_indices.txt", NULL);
    write_bytes(tmp("stl/stl10_binary/fold_indices.txt"), "0 1 \n0 7 \n", 10);
    expect_open_error(&c, "fold_indices.txt", "expected indices 0..1");
    write_bytes(tmp("stl/stl10_binary/fold_indices.txt"), "0 1 \n1 0 \n", 10);
    c.fold = 5;
    expect_open_error(&c, "fold_indices.txt", "fold 5 is missing");
    free(x);
}

/* ---- CIFAR-10 ---------------------------------------------------------------------------- */

TEST(cifar10_layout_labels_and_errors) {
    sc_mkdir_p(tmp("cifar/cifar-10-batches-bin"));
    uint8_t rec[2 * 3073];
    for (int f = 1; f <= 6; f++) {
        for (int r = 0; r < 2; r++) {
            uint8_t *p = rec + r * 3073;
            p[0] = (uint8_t)((f * 2 + r) % 10);
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < 32; y++)
                    for (int x = 0; x < 32; x++) p[1 + c * 1024 + y * 32 + x] = pat(f * 2 + r, c, y, x);
        }
        char name[64];
        if (f <= 5) snprintf(name, sizeof name, "cifar/cifar-10-batches-bin/data_batch_%d.bin", f);
        else snprintf(name, sizeof name, "cifar/cifar-10-batches-bin/test_batch.bin");
        write_bytes(tmp(name), rec, sizeof rec);
    }
    write_bytes(tmp("cifar/cifar-10-batches-bin/batches.meta.txt"), "airplane\nautomobile\nbird\n", 25);
    DatasetConfig c = cfg(DATASET_CIFAR10, tmp("cifar"), "train");
    Dataset *ds;
    CHECK(dataset_open(&ds, &c) == 0, "%s", sc_error());
    if (ds) {
        CHECK(dataset_size(ds) == 10, "train size %zu", dataset_size(ds));
        ImageU8 im = {0};
        int bad = 0;
        for (size_t i = 0; i < 10; i++) {
            int g = (int)i + 2; /* file f = 1 + i/2, record r = i%2: f*2 + r = i + 2 */
            CHECK(dataset_label(ds, i) == g % 10, "label %zu", i);
            dataset_image(ds, i, &im);
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                    for (int ch = 0; ch < 3; ch++) bad += im.px[(y * 32 + x) * 3 + ch] != pat(g, ch, y, x);
        }
        CHECK(bad == 0, "%d pixels misplaced", bad);
        CHECK(dataset_class_name(ds, 1) && !strcmp(dataset_class_name(ds, 1), "automobile"), "names");
        image_free(&im);
        dataset_close(ds);
    }
    c.split = "test";
    CHECK(dataset_open(&ds, &c) == 0 && dataset_size(ds) == 2 && dataset_label(ds, 0) == 2, "test split");
    dataset_close(ds);
    rec[3073] = 10; /* label out of range in record 1 */
    write_bytes(tmp("cifar/cifar-10-batches-bin/test_batch.bin"), rec, sizeof rec);
    expect_open_error(&c, "test_batch.bin", "label 10 of record 1");
    write_bytes(tmp("cifar/cifar-10-batches-bin/test_batch.bin"), rec, 3073 + 5);
    expect_open_error(&c, "test_batch.bin", "multiple of 3073");
    c.split = "train";
    unlink(tmp("cifar/cifar-10-batches-bin/data_batch_4.bin"));
    expect_open_error(&c, "data_batch_4.bin", "not found");
}

/* ---- CIFAR-100 --------------------------------------------------------------------------- */

/* The fixture's cifar-100-binary/ holds the same images as a cifar-100-python/ that
 * torchvision.datasets.CIFAR100 decoded into cifar100_<split>_hwc.npy (tools/make_data_fixtures.py). */
TEST(cifar100_matches_torchvision_fine_and_coarse) {
    const char *splits[2] = {"train", "test"};
    for (int s = 0; s < 2; s++)
        for (int coarse = 0; coarse < 2; coarse++) {
            DatasetConfig c = cfg(DATASET_CIFAR100, fixture_path("data"), splits[s]);
            c.coarse_labels = coarse;
            Dataset *ds;
            if (dataset_open(&ds, &c)) {
                CHECK(0, "%s", sc_error());
                continue;
            }
            char rel[96];
            snprintf(rel, sizeof rel, "data/cifar100_%s_hwc.npy", splits[s]);
            NpyArray a;
            CHECK(npy_open(&a, fixture_path(rel)) == 0 && a.dtype == NPY_U8 && a.ndim == 4, "%s", rel);
            snprintf(rel, sizeof rel, "data/cifar100_%s_%s.npy", splits[s], coarse ? "coarse" : "fine");
            int64_t *lab = NULL, sh[8];
            CHECK(npy_load_i64(fixture_path(rel), &lab, sh, NULL) == 0, "%s", sc_error());
            size_t n = (size_t)sh[0];
            CHECK(dataset_size(ds) == n && n == (s ? 4u : 6u), "%s size %zu", splits[s], dataset_size(ds));
            CHECK(dataset_num_classes(ds) == (coarse ? 20 : 100), "classes %d", dataset_num_classes(ds));
            const char *name = dataset_class_name(ds, coarse ? 19 : 99);
            CHECK(name && !strcmp(name, coarse ? "vehicles_2" : "worm"), "last class name %s", name ? name : "(none)");
            CHECK(dataset_label(ds, 0) == (coarse ? 19 : 99), "label 0 is the largest");
            ImageU8 im = {0};
            for (size_t i = 0; i < n && lab; i++) {
                CHECK(dataset_label(ds, i) == lab[i], "%s label %zu: %d vs %lld", splits[s], i,
                      dataset_label(ds, i), (long long)lab[i]);
                CHECK(dataset_image(ds, i, &im) == 0 && im.h == 32 && im.w == 32 && im.c == 3, "image %zu", i);
                CHECK(!memcmp(im.px, a.data + i * 32 * 32 * 3, 32 * 32 * 3), "image %zu differs from torchvision", i);
            }
            image_free(&im);
            npy_close(&a);
            free(lab);
            dataset_close(ds);
        }
}

TEST(cifar100_errors) {
    sc_mkdir_p(tmp("c100/cifar-100-binary"));
    uint8_t rec[2 * 3074] = {0};
    rec[0] = 3, rec[1] = 42, rec[3074] = 19, rec[3075] = 99;
    write_bytes(tmp("c100/cifar-100-binary/train.bin"), rec, sizeof rec);
    DatasetConfig c = cfg(DATASET_CIFAR100, tmp("c100"), "train");
    Dataset *ds;
    CHECK(dataset_open(&ds, &c) == 0 && dataset_size(ds) == 2 && dataset_label(ds, 0) == 42 &&
              dataset_class_name(ds, 0) == NULL, "names are optional: %s", sc_error());
    dataset_close(ds);
    c.split = "validation";
    expect_open_error(&c, "dataset.split", "CIFAR-100 has train and test");
    c.split = "test";
    expect_open_error(&c, "test.bin", "not found");
    c.split = "train";
    rec[3074] = 20; /* coarse out of range even when the fine labels are used */
    write_bytes(tmp("c100/cifar-100-binary/train.bin"), rec, sizeof rec);
    expect_open_error(&c, "train.bin", "coarse label 20 of record 1 is out of range 0..19");
    rec[3074] = 0, rec[1] = 100;
    write_bytes(tmp("c100/cifar-100-binary/train.bin"), rec, sizeof rec);
    c.coarse_labels = 1;
    expect_open_error(&c, "train.bin", "fine label 100 of record 0 is out of range 0..99");
    write_bytes(tmp("c100/cifar-100-binary/train.bin"), rec, 3074 + 3073); /* a CIFAR-10 record size */
    expect_open_error(&c, "train.bin", "multiple of 3074 bytes (coarse and fine label");
    c.path = NULL;
    expect_open_error(&c, "dataset.path", "cifar-100-binary/");
}

/* ---- IDX --------------------------------------------------------------------------------- */

static size_t idx_bytes(uint8_t *buf, int ndim, const uint32_t *dims, uint8_t type) {
    buf[0] = buf[1] = 0, buf[2] = type, buf[3] = (uint8_t)ndim;
    size_t n = 1, off = 4;
    for (int i = 0; i < ndim; i++) {
        buf[off++] = dims[i] >> 24, buf[off++] = dims[i] >> 16, buf[off++] = dims[i] >> 8, buf[off++] = dims[i];
        n *= dims[i];
    }
    for (size_t i = 0; i < n; i++) buf[off + i] = (uint8_t)(i * 7 + 3);
    return off + n;
}

static void write_gz(const char *path, const uint8_t *d, size_t n) {
    gzFile f = gzopen(path, "wb");
    SC_ASSERT(f && gzwrite(f, d, (unsigned)n) == (int)n);
    gzclose(f);
}

TEST(idx_raw_gz_and_errors) {
    sc_mkdir_p(tmp("idx"));
    uint8_t img[4 + 12 + 3 * 4 * 5], lab[4 + 4 + 4] /* room for the 4-label file below */;
    uint32_t d3[3] = {3, 4, 5}, d1[1] = {3};
    size_t ni = idx_bytes(img, 3, d3, 8), nl = idx_bytes(lab, 1, d1, 8);
    lab[8] = 2, lab[9] = 0, lab[10] = 1;
    write_bytes(tmp("idx/train-images-idx3-ubyte"), img, ni);
    write_gz(tmp("idx/train-labels-idx1-ubyte.gz"), lab, nl);
    DatasetConfig c = cfg(DATASET_IDX, tmp("idx"), "train");
    Dataset *ds;
    CHECK(dataset_open(&ds, &c) == 0, "%s", sc_error());
    if (ds) {
        ImageU8 im = {0};
        dataset_image(ds, 1, &im);
        CHECK(im.h == 4 && im.w == 5 && im.c == 1 && im.px[3] == (uint8_t)((20 + 3) * 7 + 3), "pixels");
        CHECK(dataset_label(ds, 0) == 2 && dataset_num_classes(ds) == 3, "labels");
        image_free(&im);
        dataset_close(ds);
    }
    /* the image file given directly, no labels: unlabeled */
    c = cfg(DATASET_IDX, tmp("idx/train-images-idx3-ubyte"), NULL);
    CHECK(dataset_open(&ds, &c) == 0 && dataset_num_classes(ds) == 0 && dataset_label(ds, 0) == -1, "direct file");
    dataset_close(ds);
    /* truncated raw, truncated gz, bad magic, count mismatch */
    write_bytes(tmp("idx/t.idx"), img, ni - 7);
    c = cfg(DATASET_IDX, tmp("idx/t.idx"), NULL);
    expect_open_error(&c, "t.idx", "expected 60 data bytes after the header, found 53 (truncated)");
    write_gz(tmp("idx/g.gz"), img, ni);
    char *gz;
    size_t gn;
    sc_read_file(tmp("idx/g.gz"), &gz, &gn);
    write_bytes(tmp("idx/g.gz"), gz, gn - 12);
    free(gz);
    c = cfg(DATASET_IDX, tmp("idx/g.gz"), NULL);
    Dataset *d2 = NULL;
    CHECK(dataset_open(&d2, &c) == -1 && strstr(sc_error(), "g.gz"), "truncated gz: %s", sc_error());
    dataset_close(d2);
    img[2] = 0x0D;
    write_bytes(tmp("idx/f.idx"), img, ni);
    c = cfg(DATASET_IDX, tmp("idx/f.idx"), NULL);
    expect_open_error(&c, "f.idx", "element type 0x0d");
    img[2] = 8, img[0] = 1;
    write_bytes(tmp("idx/m.idx"), img, ni);
    c = cfg(DATASET_IDX, tmp("idx/m.idx"), NULL);
    expect_open_error(&c, "m.idx", "bad IDX magic");
    uint32_t d4[1] = {4};
    nl = idx_bytes(lab, 1, d4, 8);
    write_bytes(tmp("idx/l4"), lab, nl);
    c = cfg(DATASET_IDX, tmp("idx/train-images-idx3-ubyte"), NULL);
    c.labels = tmp("idx/l4");
    expect_open_error(&c, "4 labels for 3 images", NULL);
}

TEST(fashion_mnist_golden_values) {
    if (!sc_is_dir(FASHION_MNIST_DIR)) {
        CHECK(0, "%s missing: install dataset-fashion-mnist (tools/deps.sh)", FASHION_MNIST_DIR);
        return;
    }
    DatasetConfig c = cfg(DATASET_FASHION_MNIST, NULL, "test");
    Dataset *ds;
    if (dataset_open(&ds, &c)) {
        CHECK(0, "%s", sc_error());
        return;
    }
    int want[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
    CHECK(dataset_size(ds) == 10000 && dataset_num_classes(ds) == 10, "size %zu", dataset_size(ds));
    for (int i = 0; i < 10; i++) CHECK(dataset_label(ds, i) == want[i], "label %d: %d", i, dataset_label(ds, i));
    ImageU8 im = {0};
    dataset_image(ds, 0, &im);
    long sum = 0;
    for (int p = 0; p < 28 * 28; p++) sum += im.px[p];
    CHECK(im.h == 28 && im.w == 28 && im.c == 1 && sum == 33456, "image 0: %dx%dx%d sum %ld", im.h, im.w, im.c, sum);
    CHECK(!strcmp(dataset_class_name(ds, 9), "Ankle boot"), "class 9 %s", dataset_class_name(ds, 9));
    int count[10] = {0};
    for (size_t i = 0; i < dataset_size(ds); i++) count[dataset_label(ds, i)]++;
    for (int k = 0; k < 10; k++) CHECK(count[k] == 1000, "class %d: %d", k, count[k]);
    image_free(&im);
    dataset_close(ds);
    c.split = "train";
    CHECK(dataset_open(&ds, &c) == 0 && dataset_size(ds) == 60000, "train: %s", sc_error());
    dataset_close(ds);
    c.split = "val";
    expect_open_error(&c, "dataset.split", "val");
}

/* ---- decoders and folders ---------------------------------------------------------------- */

TEST(decoders_match_pil) {
    const char *names[] = {"rgb.png", "gray.png", "rgba.png", "palette.png", "gray16.png", "rgb.jpg", "gray.jpg"};
    int chans[] = {3, 1, 3, 3, 1, 3, 1};
    for (int k = 0; k < 7; k++) {
        char path[256], ref[256];
        snprintf(path, sizeof path, "data/images/%s", names[k]);
        snprintf(ref, sizeof ref, "data/dec_%s", names[k]);
        *strrchr(ref, '.') = '_';
        strcat(ref, ".npy");
        ImageU8 im = {0};
        if (image_read(fixture_path(path), &im)) {
            CHECK(0, "%s", sc_error());
            continue;
        }
        float *want = NULL;
        int64_t sh[8];
        int nd;
        npy_load_f32(fixture_path(ref), &want, sh, &nd);
        CHECK(im.c == chans[k] && im.h == 17 && im.w == 23, "%s: %dx%dx%d", names[k], im.h, im.w, im.c);
        int maxd = 0;
        for (int i = 0; want && i < 17 * 23 * im.c; i++) {
            int d = abs((int)im.px[i] - (int)want[i]);
            if (d > maxd) maxd = d;
        }
        /* same libjpeg-turbo under PIL: exact, like PNG */
        CHECK(maxd == 0, "%s differs from PIL by up to %d", names[k], maxd);
        free(want);
        image_free(&im);
    }
    ImageU8 im = {0};
    CHECK(image_read(fixture_path("data/images/broken.png"), &im) == -1 && strstr(sc_error(), "broken.png"),
          "broken: %s", sc_error());
    CHECK(image_read(fixture_path("data/images/truncated.jpg"), &im) == -1 && strstr(sc_error(), "truncated"),
          "truncated: %s", sc_error());
    write_bytes(tmp("x.png"), "hello", 5);
    CHECK(image_read(tmp("x.png"), &im) == -1 && strstr(sc_error(), "not a PNG or JPEG"), "%s", sc_error());
    image_free(&im);
}

/* every truncation and random byte corruptions of real PNG/JPEG files: an error or an image,
 * never a crash (run under valgrind once: clean) */
TEST(decoders_survive_truncation_and_corruption) {
    const char *names[] = {"data/images/rgb.png", "data/images/palette.png", "data/images/rgb.jpg",
                           "data/images/gray.jpg"};
    Rng r = rng_derive(9, RNG_STREAM_TEST, 0, 0, 0);
    for (int k = 0; k < 4; k++) {
        char *d;
        size_t n;
        if (sc_read_file(fixture_path(names[k]), &d, &n)) {
            CHECK(0, "%s", sc_error());
            continue;
        }
        ImageU8 im = {0};
        int fails = 0;
        for (size_t len = 0; len < n; len += 1 + len / 16) {
            if (image_decode((const uint8_t *)d, len, names[k], &im)) {
                fails++;
                CHECK(strstr(sc_error(), names[k]) != NULL, "message without the name: %s", sc_error());
            }
        }
        CHECK(fails > 0, "%s: no truncation was detected", names[k]);
        uint8_t *c = malloc(n);
        for (int t = 0; t < 200; t++) {
            memcpy(c, d, n);
            for (int f = 0; f < 4; f++) c[8 + rng_below(&r, n - 8)] ^= (uint8_t)(1 + rng_below(&r, 255));
            if (image_decode(c, n, names[k], &im) == 0) CHECK(im.h > 0 && im.w > 0 && (im.c == 1 || im.c == 3), "odd image");
        }
        free(c);
        free(d);
        image_free(&im);
    }
}

TEST(png_write_roundtrip) {
    uint8_t px[7 * 5 * 3];
    for (int i = 0; i < 105; i++) px[i] = (uint8_t)(i * 13);
    for (int c = 1; c <= 3; c += 2) {
        CHECK(image_write_png(tmp("w.png"), px, 7, 5, c) == 0, "%s", sc_error());
        ImageU8 im = {0};
        CHECK(image_read(tmp("w.png"), &im) == 0 && im.w == 7 && im.h == 5 && im.c == c &&
                  !memcmp(im.px, px, 35 * c), "roundtrip c=%d", c);
        image_free(&im);
    }
    CHECK(image_write_png("/nonexistent/dir/w.png", px, 7, 5, 3) == -1 && strstr(sc_error(), "/nonexistent/dir/w.png"),
          "%s", sc_error());
}

static void make_folder(const char *root) {
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/cat", root), snprintf(b, sizeof b, "%s/dog", root);
    sc_mkdir_p(a), sc_mkdir_p(b);
    const char *to_a[] = {"rgb.png", "gray.png", "rgba.png"}, *to_b[] = {"rgb.jpg", "broken.png", "palette.png"};
    char from[256], to[600];
    for (int i = 0; i < 3; i++) {
        snprintf(from, sizeof from, "data/images/%s", to_a[i]);
        snprintf(to, sizeof to, "%s/%s", a, to_a[i]);
        copy_file(fixture_path(from), to);
        snprintf(from, sizeof from, "data/images/%s", to_b[i]);
        snprintf(to, sizeof to, "%s/%s", b, to_b[i]);
        copy_file(fixture_path(from), to);
    }
    snprintf(to, sizeof to, "%s/notes.txt", a);
    write_bytes(to, "not an image", 12);
}

TEST(folder_labels_skips_and_strict) {
    make_folder(tmp("folder"));
    DatasetConfig c = cfg(DATASET_FOLDER, tmp("folder"), NULL);
    Dataset *ds;
    CHECK(dataset_open(&ds, &c) == 0, "%s", sc_error());
    if (ds) {
        CHECK(dataset_size(ds) == 5 && dataset_skipped(ds) == 1 && dataset_num_classes(ds) == 2,
              "size %zu skipped %zu", dataset_size(ds), dataset_skipped(ds));
        /* sorted: cat/gray.png cat/rgb.png cat/rgba.png dog/palette.png dog/rgb.jpg */
        CHECK(dataset_label(ds, 2) == 0 && dataset_label(ds, 3) == 1, "labels");
        CHECK(!strcmp(dataset_class_name(ds, 1), "dog"), "class name");
        ImageU8 im = {0};
        dataset_image(ds, 0, &im);
        CHECK(im.c == 1 && im.h == 17, "gray image");
        dataset_image(ds, 2, &im);
        CHECK(im.c == 3, "rgba -> rgb");
        image_free(&im);
        dataset_close(ds);
    }
    c.strict_images = 1;
    expect_open_error(&c, "dataset.strict_images", "broken.png");
    /* flat folder: unlabeled */
    sc_mkdir_p(tmp("flat"));
    copy_file(fixture_path("data/images/rgb.jpg"), tmp("flat/a.JPG"));
    copy_file(fixture_path("data/images/gray.png"), tmp("flat/b.png"));
    c = cfg(DATASET_FOLDER, tmp("flat"), NULL);
    CHECK(dataset_open(&ds, &c) == 0 && dataset_size(ds) == 2 && dataset_num_classes(ds) == 0 &&
              dataset_label(ds, 1) == -1, "flat folder");
    dataset_close(ds);
    sc_mkdir_p(tmp("empty"));
    c = cfg(DATASET_FOLDER, tmp("empty"), NULL);
    expect_open_error(&c, "empty", "no readable");
    c = cfg(DATASET_FOLDER, tmp("nonexistent"), NULL);
    expect_open_error(&c, "dataset.path", "nonexistent");
}

/* ---- npy --------------------------------------------------------------------------------- */

TEST(npy_images_and_labels) {
    uint8_t px[4 * 6 * 5 * 3];
    for (int i = 0; i < (int)sizeof px; i++) px[i] = (uint8_t)(i * 3);
    int64_t s4[4] = {4, 6, 5, 3}, s3[3] = {12, 6, 5}, s1[1] = {4};
    npy_write(tmp("x4.npy"), NPY_U8, 4, s4, px);
    npy_write(tmp("x3.npy"), NPY_U8, 3, s3, px);
    int64_t l64[4] = {0, 3, 1, 2};
    int32_t l32[4] = {1, 1, 0, 2};
    npy_write(tmp("l64.npy"), NPY_I64, 1, s1, l64);
    npy_write(tmp("l32.npy"), NPY_I32, 1, s1, l32);
    DatasetConfig c = cfg(DATASET_NPY, tmp("x4.npy"), NULL);
    c.labels = tmp("l64.npy");
    Dataset *ds;
    CHECK(dataset_open(&ds, &c) == 0, "%s", sc_error());
    if (ds) {
        ImageU8 im = {0};
        dataset_image(ds, 2, &im);
        CHECK(im.h == 6 && im.w == 5 && im.c == 3 && !memcmp(im.px, px + 2 * 90, 90), "HWC image 2");
        CHECK(dataset_label(ds, 1) == 3 && dataset_num_classes(ds) == 4, "labels");
        image_free(&im);
        dataset_close(ds);
    }
    c = cfg(DATASET_NPY, tmp("x3.npy"), NULL);
    CHECK(dataset_open(&ds, &c) == 0 && dataset_size(ds) == 12 && dataset_num_classes(ds) == 0, "gray npy");
    if (ds) {
        ImageU8 im = {0};
        dataset_image(ds, 11, &im);
        CHECK(im.c == 1 && !memcmp(im.px, px + 11 * 30, 30), "gray image 11");
        dataset_close(ds);
    }
    c = cfg(DATASET_NPY, tmp("x4.npy"), NULL);
    c.labels = tmp("l32.npy");
    CHECK(dataset_open(&ds, &c) == 0 && dataset_label(ds, 3) == 2, "int32 labels: %s", sc_error());
    dataset_close(ds);
    c.labels = tmp("x3.npy");
    expect_open_error(&c, "x3.npy", "expected 4 labels");
    int64_t neg[4] = {0, -1, 0, 0};
    npy_write(tmp("neg.npy"), NPY_I64, 1, s1, neg);
    c.labels = tmp("neg.npy");
    expect_open_error(&c, "neg.npy", "label -1 at index 1");
    float f[4] = {0};
    npy_write(tmp("f.npy"), NPY_F32, 1, s1, f);
    c = cfg(DATASET_NPY, tmp("f.npy"), NULL);
    expect_open_error(&c, "f.npy", "expected uint8");
    int64_t s2[4] = {2, 6, 5, 4};
    npy_write(tmp("x2.npy"), NPY_U8, 4, s2, px);
    c = cfg(DATASET_NPY, tmp("x2.npy"), NULL);
    expect_open_error(&c, "x2.npy", "C 1 or 3");
}

TEST(channel_stats) {
    /* two 1x2 RGB images: R = {0, 255, 255, 255}, G = 51 everywhere, B = {0, 0, 0, 255} */
    uint8_t px[2 * 1 * 2 * 3] = {0, 51, 0, 255, 51, 0, 255, 51, 0, 255, 51, 255};
    int64_t s[4] = {2, 1, 2, 3};
    npy_write(tmp("st.npy"), NPY_U8, 4, s, px);
    DatasetConfig c = cfg(DATASET_NPY, tmp("st.npy"), NULL);
    Dataset *ds;
    if (dataset_open(&ds, &c)) return;
    float m[3], sd[3];
    CHECK(dataset_channel_stats(ds, 0, m, sd) == 0, "%s", sc_error());
    CHECK_CLOSE("mean R", m[0], 0.75, 1e-6, 1e-6);
    CHECK_CLOSE("std R", sd[0], sqrt(0.1875), 1e-5, 1e-6);
    CHECK_CLOSE("mean G", m[1], 0.2, 1e-6, 1e-6);
    CHECK_CLOSE("std G (constant -> 1)", sd[1], 1.0, 0, 0);
    CHECK_CLOSE("mean B", m[2], 0.25, 1e-6, 1e-6);
    dataset_close(ds);
}

TEST(cleanup) { CHECK(test_tmp_remove() == 0, "cleanup"); }
