/* test_augment.c - the augmentations against torchvision fixtures (tools/make_data_fixtures.py)
 * and their invariants.
 *
 * Tolerances (values in [0,1]):
 *  - against torchvision's float tensor ops (same formulas, float32 both sides): 2e-5 absolute
 *    (resampling, blur: different summation order; hue: 3e-5, division order);
 *  - against torchvision's uint8 PIL path (what SimCLR code runs on PIL images), per pixel in
 *    units of 1/255; measured maxima in brackets (doc/data.md): resize 1.5 (0.96; PIL rounds
 *    to uint8 between its two passes), blur 1 (0.5: rounding only), brightness 1.5 (1.0),
 *    saturation 1.5 (1.26), contrast 1.5 (0.77), gray 1 (0.52), hue 6 (4.9: PIL's HSV is
 *    8-bit), a whole view 5 (3.1), mean 1.5 (1.07).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "common.h"
#include "image.h"
#include "npy.h"
#include "rng.h"
#include "test.h"

static float *load_f(const char *rel, int64_t *shape, int *nd) {
    float *d = NULL;
    int64_t sh[NPY_MAX_DIMS];
    int n;
    if (npy_load_f32(fixture_path(rel), &d, shape ? shape : sh, nd ? nd : &n)) {
        fprintf(stderr, "  cannot load fixture %s: %s\n", rel, sc_error());
        return NULL;
    }
    return d;
}

/* src.npy as an ImageU8 (40, 52, 3) */
static ImageU8 load_src(const char *rel) {
    ImageU8 im = {0};
    int64_t sh[NPY_MAX_DIMS];
    int nd;
    float *f = load_f(rel, sh, &nd);
    if (!f) return im;
    im.h = (int)sh[0], im.w = (int)sh[1], im.c = nd == 3 ? (int)sh[2] : 1;
    size_t n = (size_t)im.h * im.w * im.c;
    uint8_t *px = image_reserve(&im, n);
    for (size_t i = 0; i < n; i++) px[i] = (uint8_t)f[i];
    free(f);
    return im;
}

static AugmentConfig cfg_for(int S) {
    AugmentConfig a;
    augment_config_default(&a);
    a.out_size = S;
    return a;
}

static AugmentParams plain(int y, int x, int h, int w) {
    AugmentParams p;
    memset(&p, 0, sizeof p);
    p.crop_y = y, p.crop_x = x, p.crop_h = h, p.crop_w = w;
    p.brightness = p.contrast = p.saturation = 1, p.hue = 0;
    for (int i = 0; i < 4; i++) p.order[i] = i;
    return p;
}

/* max |got*255 - want_u8| where want is HWC uint8 (as float) and got is CHW float */
static double max_diff_u8(const float *got, const float *want_hwc, int c, int h, int w) {
    double m = 0;
    for (int ch = 0; ch < c; ch++)
        for (int p = 0; p < h * w; p++) {
            double d = fabs(got[(size_t)ch * h * w + p] * 255.0 - want_hwc[(size_t)p * c + ch]);
            if (d > m) m = d;
        }
    return m;
}

static float *src_float(const ImageU8 *im) { /* (3, H, W) in [0,1] */
    float *x = malloc(sizeof(float) * 3 * im->h * im->w);
    for (int c = 0; c < 3; c++)
        for (int p = 0; p < im->h * im->w; p++) x[(size_t)c * im->h * im->w + p] = im->px[p * 3 + c] / 255.0f;
    return x;
}

TEST(resized_crop_matches_torch_antialias) {
    ImageU8 src = load_src("data/src.npy");
    int64_t sh[8];
    int nd;
    float *cases = load_f("data/rrc_params.npy", sh, &nd);
    CHECK(cases && src.px, "fixtures missing");
    if (!cases || !src.px) return;
    for (int k = 0; k < (int)sh[0]; k++) {
        float *c = cases + 5 * k;
        int S = (int)c[4];
        AugmentConfig a = cfg_for(S);
        AugmentParams p = plain((int)c[0], (int)c[1], (int)c[2], (int)c[3]);
        float *out = malloc(sizeof(float) * 3 * S * S);
        augment_apply(&src, &a, &p, out);
        char name[64];
        snprintf(name, sizeof name, "data/rrc%d_tensor_aa.npy", k);
        float *want = load_f(name, NULL, NULL);
        if (want) CHECK_ARRAY_CLOSE(name, out, want, (size_t)3 * S * S, 0, 2e-5);
        snprintf(name, sizeof name, "data/rrc%d_pil.npy", k);
        float *pil = load_f(name, NULL, NULL);
        if (pil) {
            double d = max_diff_u8(out, pil, 3, S, S);
            printf("  resize case %d vs PIL uint8: max diff %.3f/255\n", k, d);
            CHECK(d <= 1.5, "case %d: %.3f/255 from PIL", k, d);
        }
        free(want), free(pil), free(out);
    }
    free(cases);
    image_free(&src);
}

TEST(resample_fast_matches_naive_reference) {
    ImageU8 src = load_src("data/src.npy");
    if (!src.px) return;
    float *x = src_float(&src);
    Rng r = rng_derive(1, RNG_STREAM_TEST, 1, 0, 0);
    for (int t = 0; t < 40; t++) {
        int ch = 1 + (int)rng_below(&r, 40), cw = 1 + (int)rng_below(&r, 52);
        int y0 = (int)rng_below(&r, 40 - ch + 1), x0 = (int)rng_below(&r, 52 - cw + 1);
        int S = 1 + (int)rng_below(&r, 60);
        AugmentConfig a = cfg_for(S);
        AugmentParams p = plain(y0, x0, ch, cw);
        float *out = malloc(sizeof(float) * 3 * S * S), *ref = malloc(sizeof(float) * S * S);
        augment_apply(&src, &a, &p, out);
        for (int c = 0; c < 3; c++) {
            image_resample_ref(ref, S, S, x + (size_t)c * 40 * 52, 40, 52, y0, x0, ch, cw);
            if (!CHECK_ARRAY_CLOSE("fast vs naive", out + (size_t)c * S * S, ref, (size_t)S * S, 0, 2e-5))
                fprintf(stderr, "  crop (%d,%d,%d,%d) -> %d\n", y0, x0, ch, cw, S);
        }
        free(out), free(ref);
    }
    free(x);
    image_free(&src);
}

TEST(gray_source_becomes_three_channels) {
    ImageU8 src = load_src("data/src_gray.npy");
    float *pil = load_f("data/rrc_gray_pil.npy", NULL, NULL);
    if (!src.px || !pil) return;
    CHECK(src.c == 1, "gray fixture has %d channels", src.c);
    AugmentConfig a = cfg_for(24);
    AugmentParams p = plain(4, 6, 30, 40);
    float out[3 * 24 * 24];
    augment_apply(&src, &a, &p, out);
    CHECK(!memcmp(out, out + 576, 576 * sizeof(float)) && !memcmp(out, out + 1152, 576 * sizeof(float)),
          "channels differ");
    double d = max_diff_u8(out, pil, 1, 24, 24);
    CHECK(d <= 2.0, "gray resize %.3f/255 from PIL", d);
    free(pil);
    image_free(&src);
}

typedef void (*ColorFn)(float *, int, float);

static void check_color(const char *name, ColorFn fn, double tol_tensor, double tol_pil) {
    ImageU8 src = load_src("data/src.npy");
    char path[128];
    int64_t sh[8];
    int nd;
    snprintf(path, sizeof path, "data/%s_factors.npy", name);
    float *fac = load_f(path, sh, &nd);
    snprintf(path, sizeof path, "data/%s_tensor.npy", name);
    float *want = load_f(path, NULL, NULL);
    snprintf(path, sizeof path, "data/%s_pil.npy", name);
    float *pil = load_f(path, NULL, NULL);
    CHECK(src.px && fac && want && pil, "fixtures for %s", name);
    if (!src.px || !fac || !want || !pil) return;
    int hw = 40 * 52;
    for (int k = 0; k < (int)sh[0]; k++) {
        float *x = src_float(&src);
        fn(x, hw, fac[k]);
        char what[64];
        snprintf(what, sizeof what, "%s %g vs tensor", name, fac[k]);
        CHECK_ARRAY_CLOSE(what, x, want + (size_t)k * 3 * hw, (size_t)3 * hw, 0, tol_tensor);
        double d = max_diff_u8(x, pil + (size_t)k * 3 * hw, 3, 40, 52);
        printf("  %s %g vs PIL uint8: max diff %.3f/255\n", name, fac[k], d);
        CHECK(d <= tol_pil, "%s %g: %.3f/255 from PIL (tolerance %g)", name, fac[k], d, tol_pil);
        free(x);
    }
    free(fac), free(want), free(pil);
    image_free(&src);
}

TEST(brightness_matches_torchvision) { check_color("brightness", aug_brightness, 2e-5, 1.5); }
TEST(contrast_matches_torchvision) { check_color("contrast", aug_contrast, 2e-5, 1.5); }
TEST(saturation_matches_torchvision) { check_color("saturation", aug_saturation, 2e-5, 1.5); }
TEST(hue_matches_torchvision) { check_color("hue", aug_hue, 3e-5, 6.0); }

TEST(jitter_order_matches_torchvision) {
    ImageU8 src = load_src("data/src.npy");
    float *p = load_f("data/jitter_params.npy", NULL, NULL), *want = load_f("data/jitter_tensor.npy", NULL, NULL);
    if (!src.px || !p || !want) return;
    int order[4] = {(int)p[0], (int)p[1], (int)p[2], (int)p[3]}, hw = 40 * 52;
    float *x = src_float(&src);
    aug_jitter(x, hw, order, p[4], p[5], p[6], p[7]);
    CHECK_ARRAY_CLOSE("fused jitter vs torchvision", x, want, (size_t)3 * hw, 0, 3e-5);
    /* fused == the ops one after the other */
    float *y = src_float(&src);
    for (int k = 0; k < 4; k++) {
        int o = order[k];
        if (o == 0) aug_brightness(y, hw, p[4]);
        if (o == 1) aug_contrast(y, hw, p[5]);
        if (o == 2) aug_saturation(y, hw, p[6]);
        if (o == 3) aug_hue(y, hw, p[7]);
    }
    CHECK_ARRAY_CLOSE("fused vs sequential", x, y, (size_t)3 * hw, 0, 1e-6);
    /* every order: fused == sequential */
    Rng r = rng_derive(2, RNG_STREAM_TEST, 0, 0, 0);
    for (int t = 0; t < 24; t++) {
        uint32_t perm[4];
        rng_permutation(&r, perm, 4, 1);
        int ord[4] = {(int)perm[0], (int)perm[1], (int)perm[2], (int)perm[3]};
        float f[4] = {rng_range(&r, 0.2f, 1.8f), rng_range(&r, 0.2f, 1.8f), rng_range(&r, 0.2f, 1.8f),
                      rng_range(&r, -0.5f, 0.5f)};
        float *a = src_float(&src), *b = src_float(&src);
        aug_jitter(a, hw, ord, f[0], f[1], f[2], f[3]);
        for (int k = 0; k < 4; k++) {
            if (ord[k] == 0) aug_brightness(b, hw, f[0]);
            if (ord[k] == 1) aug_contrast(b, hw, f[1]);
            if (ord[k] == 2) aug_saturation(b, hw, f[2]);
            if (ord[k] == 3) aug_hue(b, hw, f[3]);
        }
        CHECK_ARRAY_CLOSE("fused vs sequential (random order)", a, b, (size_t)3 * hw, 0, 1e-6);
        free(a), free(b);
    }
    free(x), free(y), free(p), free(want);
    image_free(&src);
}

TEST(grayscale_matches_torchvision) {
    ImageU8 src = load_src("data/src.npy");
    float *want = load_f("data/gray_tensor.npy", NULL, NULL), *pil = load_f("data/gray_pil.npy", NULL, NULL);
    if (!src.px || !want || !pil) return;
    float *x = src_float(&src);
    aug_grayscale(x, 40 * 52);
    CHECK_ARRAY_CLOSE("grayscale vs tensor", x, want, 3 * 40 * 52, 0, 1e-6);
    double d = max_diff_u8(x, pil, 3, 40, 52);
    printf("  grayscale vs PIL uint8: max diff %.3f/255\n", d);
    CHECK(d <= 1.0, "grayscale %.3f/255 from PIL", d);
    free(x), free(want), free(pil);
    image_free(&src);
}

TEST(blur_matches_torchvision_and_reference) {
    ImageU8 src = load_src("data/src.npy");
    int64_t sh[8];
    int nd;
    float *bp = load_f("data/blur_params.npy", sh, &nd);
    if (!src.px || !bp) return;
    for (int k = 0; k < (int)sh[0]; k++) {
        int ks = (int)bp[2 * k];
        float sg = bp[2 * k + 1];
        char name[64];
        snprintf(name, sizeof name, "data/blur%d_tensor.npy", k);
        float *want = load_f(name, NULL, NULL);
        snprintf(name, sizeof name, "data/blur%d_pil.npy", k);
        float *pil = load_f(name, NULL, NULL);
        float *x = src_float(&src), *tmp = malloc(sizeof(float) * 40 * 52), *ref = malloc(sizeof(float) * 3 * 40 * 52);
        aug_gaussian_blur_ref(ref, x, 3, 40, 52, ks, sg);
        aug_gaussian_blur(x, 3, 40, 52, ks, sg, tmp);
        CHECK_ARRAY_CLOSE("blur vs tensor", x, want, 3 * 40 * 52, 0, 2e-5);
        CHECK_ARRAY_CLOSE("blur fast vs naive", x, ref, 3 * 40 * 52, 0, 1e-5);
        double d = max_diff_u8(x, pil, 3, 40, 52);
        printf("  blur k=%d sigma=%g vs PIL uint8: max diff %.3f/255\n", ks, sg, d);
        CHECK(d <= 1.0, "blur %.3f/255 from PIL", d);
        free(want), free(pil), free(x), free(tmp), free(ref);
    }
    /* a kernel as wide as allowed by reflect padding on a tiny image */
    float tiny[3 * 5 * 5], ref[3 * 5 * 5], tmp[25];
    Rng r = rng_derive(3, RNG_STREAM_TEST, 0, 0, 0);
    for (int i = 0; i < 75; i++) tiny[i] = rng_uniform(&r);
    aug_gaussian_blur_ref(ref, tiny, 3, 5, 5, 9, 1.5f);
    aug_gaussian_blur(tiny, 3, 5, 5, 9, 1.5f, tmp);
    CHECK_ARRAY_CLOSE("blur k=9 on 5x5", tiny, ref, 75, 0, 1e-5);
    free(bp);
    image_free(&src);
}

TEST(normalize_matches_torchvision) {
    ImageU8 src = load_src("data/src.npy");
    float *want = load_f("data/normalize_tensor.npy", NULL, NULL);
    if (!src.px || !want) return;
    AugmentConfig a = cfg_for(8);
    a.normalize = NORMALIZE_IMAGENET;
    CHECK(augment_config_finish(&a) == 0, "%s", sc_error());
    float *x = src_float(&src);
    aug_normalize(x, 40 * 52, a.mean, a.std);
    CHECK_ARRAY_CLOSE("normalize", x, want, 3 * 40 * 52, 1e-6, 1e-6);
    free(x), free(want);
    image_free(&src);
}

TEST(whole_view_with_explicit_params) {
    ImageU8 src = load_src("data/src.npy");
    float *vp = load_f("data/view_params.npy", NULL, NULL), *want = load_f("data/view_tensor.npy", NULL, NULL);
    float *pil = load_f("data/view_pil.npy", NULL, NULL);
    if (!src.px || !vp || !want || !pil) return;
    int S = (int)vp[4];
    AugmentConfig a = cfg_for(S);
    AugmentParams p = plain((int)vp[0], (int)vp[1], (int)vp[2], (int)vp[3]);
    p.flip = (int)vp[5];
    p.jitter = 1;
    for (int i = 0; i < 4; i++) p.order[i] = (int)vp[6 + i];
    p.brightness = vp[10], p.contrast = vp[11], p.saturation = vp[12], p.hue = vp[13];
    p.blur = 1, p.kernel = (int)vp[14], p.sigma = vp[15];
    float *out = malloc(sizeof(float) * 3 * S * S);
    augment_apply(&src, &a, &p, out);
    CHECK_ARRAY_CLOSE("view vs torchvision float chain", out, want, (size_t)3 * S * S, 0, 1e-4);
    double d = max_diff_u8(out, pil, 3, S, S), mean = 0;
    for (int c = 0; c < 3; c++)
        for (int q = 0; q < S * S; q++) mean += fabs(out[c * S * S + q] * 255.0 - pil[q * 3 + c]);
    mean /= 3.0 * S * S;
    printf("  whole view vs torchvision PIL chain: max diff %.2f/255, mean %.3f/255\n", d, mean);
    CHECK(d <= 5.0 && mean <= 1.5, "view %.2f/255 (mean %.3f) from PIL", d, mean);
    free(out), free(vp), free(want), free(pil);
    image_free(&src);
}

TEST(crop_fallback_matches_torchvision) {
    int64_t sh[8];
    int nd;
    float *rows = load_f("data/crop_fallback.npy", sh, &nd);
    if (!rows) return;
    for (int k = 0; k < (int)sh[0]; k++) {
        float *r = rows + 8 * k;
        int t, l, h, w;
        /* scale (2, 3) never fits: the draws fail 10 times and the fallback decides */
        Rng rng = rng_derive(4, RNG_STREAM_TEST, (uint64_t)k, 0, 0);
        augment_crop_params((int)r[0], (int)r[1], 2.0f, 3.0f, r[2], r[3], &rng, &t, &l, &h, &w);
        CHECK(t == (int)r[4] && l == (int)r[5] && h == (int)r[6] && w == (int)r[7],
              "case %d (%gx%g ratio %g..%g): got (%d,%d,%d,%d), torchvision (%g,%g,%g,%g)", k, r[0], r[1],
              r[2], r[3], t, l, h, w, r[4], r[5], r[6], r[7]);
    }
    free(rows);
}

TEST(crop_params_distribution) {
    Rng r = rng_derive(5, RNG_STREAM_TEST, 0, 0, 0);
    int H = 96, W = 96, n = 20000, full = 0;
    double area_sum = 0;
    for (int i = 0; i < n; i++) {
        int t, l, h, w;
        augment_crop_params(H, W, 0.08f, 1.0f, 0.75f, 4.0f / 3, &r, &t, &l, &h, &w);
        CHECK(t >= 0 && l >= 0 && h >= 1 && w >= 1 && t + h <= H && l + w <= W, "bad crop %d %d %d %d", t, l, h, w);
        double a = (double)h * w / (H * W), asp = (double)w / h;
        /* rounding of w and h moves area and aspect a little beyond the sampled range */
        CHECK(a >= 0.08 * 0.8 && a <= 1.0, "area %g", a);
        CHECK(asp >= 0.75 * 0.85 && asp <= 4.0 / 3 / 0.85, "aspect %g", asp);
        area_sum += a;
        full += h == H && w == W;
    }
    /* mean area: E[U(0.08,1)] = 0.54, minus draws that do not fit (then retried) */
    double mean = area_sum / n;
    printf("  mean crop area %.4f, full-frame fallbacks %d of %d\n", mean, full, n);
    CHECK(mean > 0.40 && mean < 0.56, "mean area %g", mean);
}

TEST(identity_params_return_input) {
    ImageU8 src = load_src("data/src.npy");
    if (!src.px) return;
    /* a square crop at its own size: the resampling weights are exactly one tap of 1 */
    ImageU8 sq = {0};
    uint8_t *px = image_reserve(&sq, 32 * 32 * 3);
    sq.h = sq.w = 32, sq.c = 3;
    for (int y = 0; y < 32; y++) memcpy(px + y * 32 * 3, src.px + ((y + 3) * 52 + 5) * 3, 32 * 3);
    AugmentConfig a = cfg_for(32);
    AugmentParams p = plain(0, 0, 32, 32);
    p.jitter = 1; /* with identity factors: skipped exactly */
    float out[3 * 32 * 32];
    augment_apply(&sq, &a, &p, out);
    int bad = 0;
    for (int c = 0; c < 3; c++)
        for (int q = 0; q < 32 * 32; q++) bad += out[c * 1024 + q] != px[q * 3 + c] / 255.0f;
    CHECK(bad == 0, "%d pixels changed", bad);
    /* brightness 1, contrast 1, saturation 1, hue 0 individually */
    float *x = src_float(&src), *y = src_float(&src);
    aug_brightness(y, 40 * 52, 1.0f);
    aug_contrast(y, 40 * 52, 1.0f);
    aug_saturation(y, 40 * 52, 1.0f);
    CHECK_ARRAY_CLOSE("b/c/s identity", y, x, 3 * 40 * 52, 0, 1e-6);
    aug_hue(y, 40 * 52, 0.0f);
    CHECK_ARRAY_CLOSE("hue 0 identity (rgb->hsv->rgb)", y, x, 3 * 40 * 52, 0, 2e-6);
    free(x), free(y);
    image_free(&sq);
    image_free(&src);
}

TEST(two_flips_return_input_and_flip_matches_resample_flip) {
    ImageU8 src = load_src("data/src.npy");
    if (!src.px) return;
    AugmentConfig a = cfg_for(24);
    AugmentParams p = plain(3, 10, 33, 17);
    float A[3 * 24 * 24], B[3 * 24 * 24], C[3 * 24 * 24];
    augment_apply(&src, &a, &p, A);
    p.flip = 1;
    augment_apply(&src, &a, &p, B);
    memcpy(C, A, sizeof A);
    aug_flip(C, 3, 24, 24);
    CHECK(!memcmp(B, C, sizeof B), "flip during resampling differs from flipping after");
    aug_flip(C, 3, 24, 24);
    CHECK(!memcmp(A, C, sizeof A), "two flips changed the image");
    image_free(&src);
}

TEST(full_frame_crop_equals_plain_resize) {
    ImageU8 src = load_src("data/src.npy");
    if (!src.px) return;
    AugmentConfig a = cfg_for(20), none = cfg_for(20);
    none.mode = AUGMENT_NONE;
    float A[3 * 400], B[3 * 400];
    AugmentParams p = plain(0, 0, 40, 52);
    augment_apply(&src, &a, &p, A);
    Rng r = rng_derive(6, RNG_STREAM_TEST, 0, 0, 0);
    augment_view(&src, &none, &r, B);
    CHECK(!memcmp(A, B, sizeof A), "augment none differs from a full-frame crop");
    float *want = load_f("data/rrc1_tensor_aa.npy", NULL, NULL); /* case 1: full frame to 20 */
    if (want) CHECK_ARRAY_CLOSE("augment none vs torch resize", B, want, 3 * 400, 0, 2e-5);
    free(want);
    image_free(&src);
}

TEST(view_is_deterministic_and_views_differ) {
    ImageU8 src = load_src("data/src.npy");
    if (!src.px) return;
    AugmentConfig a = cfg_for(32);
    a.blur_prob = 1.0f;
    CHECK(augment_config_finish(&a) == 0, "%s", sc_error());
    CHECK(augment_blur_kernel(&a) == 3, "kernel %d for 32", augment_blur_kernel(&a));
    a.out_size = 96;
    CHECK(augment_blur_kernel(&a) == 9, "kernel %d for 96", augment_blur_kernel(&a));
    a.out_size = 224;
    CHECK(augment_blur_kernel(&a) == 23, "kernel %d for 224", augment_blur_kernel(&a));
    a.out_size = 32;
    float A[3 * 1024], B[3 * 1024], C[3 * 1024];
    Rng r1 = rng_derive(7, RNG_STREAM_AUGMENT, 0, 5, 0), r2 = rng_derive(7, RNG_STREAM_AUGMENT, 0, 5, 0);
    Rng r3 = rng_derive(7, RNG_STREAM_AUGMENT, 0, 5, 1);
    augment_view(&src, &a, &r1, A);
    augment_view(&src, &a, &r2, B);
    augment_view(&src, &a, &r3, C);
    CHECK(!memcmp(A, B, sizeof A), "same rng, different view");
    CHECK(memcmp(A, C, sizeof A), "different views are identical");
    for (int i = 0; i < 3 * 1024; i++)
        if (!(A[i] >= 0 && A[i] <= 1)) {
            CHECK(0, "value %g out of [0,1] at %d", A[i], i);
            break;
        }
    image_free(&src);
}

TEST(sampled_probabilities) {
    AugmentConfig a = cfg_for(96);
    int n = 20000, flip = 0, jit = 0, gray = 0, blur = 0, firsts[4] = {0};
    double smin = 1e9, smax = -1e9, hmin = 1e9, hmax = -1e9;
    for (int i = 0; i < n; i++) {
        Rng r = rng_derive(8, RNG_STREAM_AUGMENT, 0, (uint64_t)i, 0);
        AugmentParams p;
        augment_sample_params(&a, 96, 96, &r, &p);
        flip += p.flip, jit += p.jitter, gray += p.gray, blur += p.blur;
        if (p.jitter) {
            firsts[p.order[0]]++;
            if (p.brightness < smin) smin = p.brightness;
            if (p.brightness > smax) smax = p.brightness;
            if (p.hue < hmin) hmin = p.hue;
            if (p.hue > hmax) hmax = p.hue;
        }
        if (p.blur) CHECK(p.sigma >= 0.1f && p.sigma < 2.0f && p.kernel == 9, "sigma %g kernel %d", p.sigma, p.kernel);
    }
    /* binomial: 5 sigma at n = 20000 is < 0.018 */
    CHECK(fabs(flip / (double)n - 0.5) < 0.018, "flip rate %g", flip / (double)n);
    CHECK(fabs(jit / (double)n - 0.8) < 0.015, "jitter rate %g", jit / (double)n);
    CHECK(fabs(gray / (double)n - 0.2) < 0.015, "gray rate %g", gray / (double)n);
    CHECK(fabs(blur / (double)n - 0.5) < 0.018, "blur rate %g", blur / (double)n);
    for (int k = 0; k < 4; k++) CHECK(fabs(firsts[k] / (double)jit - 0.25) < 0.02, "op %d first %d", k, firsts[k]);
    CHECK(smin >= 0.2 && smin < 0.21 && smax <= 1.8 && smax > 1.79, "brightness range %g..%g", smin, smax);
    CHECK(hmin >= -0.2 && hmin < -0.19 && hmax <= 0.2 && hmax > 0.19, "hue range %g..%g", hmin, hmax);
}

TEST(config_errors_name_the_option) {
    AugmentConfig a = cfg_for(0);
    CHECK(augment_config_finish(&a) == -1 && strstr(sc_error(), "augment.out_size"), "%s", sc_error());
    a = cfg_for(32);
    a.crop_min_scale = 0.9f, a.crop_max_scale = 0.5f;
    CHECK(augment_config_finish(&a) == -1 && strstr(sc_error(), "augment.crop_min_scale"), "%s", sc_error());
    a = cfg_for(32);
    a.jitter_strength = 3.0f;
    CHECK(augment_config_finish(&a) == -1 && strstr(sc_error(), "augment.jitter_strength"), "%s", sc_error());
    a = cfg_for(32);
    a.blur_sigma_min = 3.0f;
    CHECK(augment_config_finish(&a) == -1 && strstr(sc_error(), "augment.blur_sigma"), "%s", sc_error());
}
