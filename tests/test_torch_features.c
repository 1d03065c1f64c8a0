/* test_torch_features.c - `simclr features` on real photographs equals what a PyTorch user
 * computes with tools/simclr_torch.py (its builder from the checkpoint's configuration and the
 * preprocessing the README states), for three architectures / stems / widths / normalisations.
 * The references and checkpoints are written by tools/make_photo_fixtures.py; the photos are
 * crops of Debian's lomiri-wallpapers-16.04 (tests/fixtures/photos/README.md). */
#include <unistd.h>

#include "test.h"

static const char *simclr_bin(void) {
    const char *s = getenv("SIMCLR");
    return s && *s ? s : "./simclr";
}

/* runs `simclr features` on the photo folder with the case's checkpoint; returns h or NULL */
static float *features_of(const char *tmp, const char *c, int64_t *shape) {
    char cmd[4096], out[1024];
    snprintf(out, sizeof out, "%s/%s.npy", tmp, c);
    char ck[1024];
    snprintf(ck, sizeof ck, "photos/%s.safetensors", c);
    snprintf(cmd, sizeof cmd, "'%s' features --checkpoint '%s' --dataset folder --data '%s' "
             "--output '%s' --threads 2 >/dev/null 2>'%s/err'", simclr_bin(), fixture_path(ck),
             fixture_path("photos/images"), out, tmp);
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof cmd, "cat '%s/err'", tmp);
        if (system(cmd)) {}
        return NULL;
    }
    NpyArray a;
    if (npy_open(&a, out)) return NULL;
    float *x = NULL;
    if (a.dtype == NPY_F32 && a.ndim == 2) {
        shape[0] = a.shape[0], shape[1] = a.shape[1];
        x = malloc(sizeof(float) * a.shape[0] * a.shape[1]);
        memcpy(x, a.data, sizeof(float) * a.shape[0] * a.shape[1]);
    }
    npy_close(&a);
    return x;
}

static void check_case(const char *c) {
    char tmp[] = "/tmp/simclr_torch_XXXXXX";
    CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    char ref_name[256];
    snprintf(ref_name, sizeof ref_name, "photos/%s_h.npy", c);
    int64_t rs[2] = {0}, gs[2] = {0};
    float *want = fixture_f32(ref_name, rs);
    float *got = features_of(tmp, c, gs);
    CHECK(got != NULL, "%s: simclr features failed", c);
    if (got && want) {
        CHECK(gs[0] == rs[0] && gs[1] == rs[1], "%s: shape %lld x %lld, PyTorch %lld x %lld", c,
              (long long)gs[0], (long long)gs[1], (long long)rs[0], (long long)rs[1]);
        if (gs[0] == rs[0] && gs[1] == rs[1]) {
            double worst = 0;
            for (int64_t i = 0; i < rs[0] * rs[1]; i++)
                if (fabs(got[i] - want[i]) > worst) worst = fabs(got[i] - want[i]);
            printf("  %s: %lld photos x %lld features, max |simclr - PyTorch| = %.2g\n", c,
                   (long long)rs[0], (long long)rs[1], worst);
            CHECK_ARRAY_CLOSE(c, got, want, (size_t)(rs[0] * rs[1]), 0, 1e-4);
        }
    }
    free(got);
    free(want);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd)) {}
}

TEST(resnet18_cifar_stem_width_0125) { check_case("r18_cifar"); }
TEST(resnet34_imagenet_stem_width_00625_imagenet_normalisation) { check_case("r34_imagenet"); }
TEST(resnet50_imagenet_stem_width_00625_dataset_normalisation) { check_case("r50_imagenet"); }
