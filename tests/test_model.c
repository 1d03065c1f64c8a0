/* test_model.c - the Model against PyTorch/torchvision fixtures (tools/make_core_fixtures.py),
 * torchvision names and parameter counts, init, thread-count independence, bad configurations. */
#include <stdlib.h>

#include "bf16.h"
#include "common.h"
#include "model.h"
#include "npy.h"
#include "rng.h"
#include "test.h"

/* ---- fixture loading ----------------------------------------------------------------------- */

typedef struct {
    char name[64], kind[16];
    size_t numel;
    int ndim;
    int64_t shape[4];
} FxTensor;

static int read_tensor_list(const char *path, FxTensor *t, int max) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[512];
    int n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        FxTensor *x = &t[n];
        memset(x, 0, sizeof *x);
        char *tok = strtok(line, " \n");
        if (!tok) continue;
        snprintf(x->name, sizeof x->name, "%s", tok);
        tok = strtok(NULL, " \n");
        if (tok) snprintf(x->kind, sizeof x->kind, "%s", tok);
        tok = strtok(NULL, " \n");
        x->numel = tok ? strtoull(tok, NULL, 10) : 0;
        while ((tok = strtok(NULL, " \n")) && x->ndim < 4) x->shape[x->ndim++] = atoll(tok);
        n++;
    }
    fclose(f);
    return n;
}

static float *load(const char *dir, const char *file, size_t *count) {
    char rel[256];
    snprintf(rel, sizeof rel, "core/%s/%s", dir, file);
    float *d = NULL;
    int64_t shape[8];
    int nd = 0;
    if (npy_load_f32(fixture_path(rel), &d, shape, &nd)) {
        fprintf(stderr, "  cannot load %s: %s\n", rel, sc_error());
        return NULL;
    }
    size_t n = 1;
    for (int i = 0; i < nd; i++) n *= shape[i];
    if (count) *count = n;
    return d;
}

/* Copies the fixture's params and initial buffers into m by name; checks names, order, shapes. */
static int load_fixture_weights(Model *m, const char *dir, FxTensor *ft, int *nft) {
    char rel[256];
    snprintf(rel, sizeof rel, "core/%s/tensors.txt", dir);
    int n = read_tensor_list(fixture_path(rel), ft, 512);
    CHECK(n == model_num_tensors(m), "%s: %d tensors in the fixture, %d in the model", dir, n,
          model_num_tensors(m));
    size_t np_, nb;
    float *p = load(dir, "params.npy", &np_), *b = load(dir, "buffers0.npy", &nb);
    if (!p || !b) return -1;
    CHECK(np_ == model_num_params(m), "%s: %zu params in the fixture, %zu in the model", dir, np_,
          model_num_params(m));
    size_t po = 0, bo = 0;
    int ok = 1;
    for (int i = 0; i < n; i++) {
        int k = model_find_tensor(m, ft[i].name);
        if (k != i) {
            CHECK(k == i, "%s: tensor %s at index %d in the model, %d in torch", dir, ft[i].name, k, i);
            ok = 0;
            continue;
        }
        const ModelTensor *t = model_tensor(m, k);
        int same = t->numel == ft[i].numel && t->ndim == ft[i].ndim;
        for (int d = 0; d < t->ndim && same; d++) same = t->shape[d] == ft[i].shape[d];
        CHECK(same, "%s: shape of %s differs", dir, ft[i].name);
        int kind = !strcmp(ft[i].kind, "param") ? MODEL_PARAM : !strcmp(ft[i].kind, "buffer") ? MODEL_BUFFER : MODEL_COUNTER;
        CHECK(t->kind == kind, "%s: kind of %s", dir, ft[i].name);
        if (!same || t->kind != kind) { ok = 0; continue; }
        if (kind == MODEL_PARAM) memcpy(model_params(m) + t->offset, p + po, t->numel * 4), po += t->numel;
        if (kind == MODEL_BUFFER) memcpy(model_buffers(m) + t->offset, b + bo, t->numel * 4), bo += t->numel;
    }
    free(p), free(b);
    *nft = n;
    return ok ? 0 : -1;
}

/* The references are PyTorch in float64 (the exact answer for our float32 inputs and params).
 * Tolerances (our float32 against it):
 *   activations, h, z: rtol 1e-4, atol 1e-4 * max|want| (BN renormalises, so errors stay relative)
 *   parameter gradients: rtol 1e-3, atol 1e-3 * max|want| of the tensor (small batches make BN
 *     backward subtract nearly equal sums; worst cases seen are well inside this)
 *   running statistics: rtol 1e-4, atol 1e-5. */
static double maxabs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

static void compare(const char *what, const float *got, const float *want, size_t n, double rtol,
                    double arel) {
    CHECK_ARRAY_CLOSE(what, got, want, n, rtol, arel * maxabs(want, n) + 1e-7);
}

static void run_case(const char *dir, ModelConfig cfg, int B) {
    Model *m;
    if (model_create(&m, &cfg, B, 7)) {
        CHECK(0, "model_create: %s", sc_error());
        return;
    }
    static FxTensor ft[512];
    int nft = 0;
    if (load_fixture_weights(m, dir, ft, &nft)) {
        model_free(m);
        return;
    }
    float *x = load(dir, "x.npy", NULL), *dz = load(dir, "dz.npy", NULL);
    CHECK(model_forward(m, x, B, 1) == 0, "forward: %s", sc_error());
    char what[160];
    size_t n;
    float *want = load(dir, "stem.npy", &n);
    snprintf(what, sizeof what, "%s stem", dir);
    compare(what, model_block_output(m, -1), want, n, 1e-4, 1e-4);
    free(want);
    for (int b = 0; b < model_spec(m)->nblocks; b++) {
        char f[32];
        snprintf(f, sizeof f, "block%d.npy", b);
        want = load(dir, f, &n);
        snprintf(what, sizeof what, "%s block %d", dir, b);
        compare(what, model_block_output(m, b), want, n, 1e-4, 1e-4);
        free(want);
    }
    want = load(dir, "h.npy", &n);
    snprintf(what, sizeof what, "%s h", dir);
    compare(what, model_h(m), want, n, 1e-4, 1e-4);
    free(want);
    want = load(dir, "z.npy", &n);
    snprintf(what, sizeof what, "%s z", dir);
    compare(what, model_z(m), want, n, 1e-4, 1e-4);
    free(want);

    model_zero_grad(m);
    model_backward(m, dz);
    float *g = load(dir, "grads.npy", &n);
    size_t off = 0;
    for (int i = 0; i < nft; i++) {
        const ModelTensor *t = model_tensor(m, i);
        if (t->kind != MODEL_PARAM) continue;
        snprintf(what, sizeof what, "%s grad %s", dir, t->name);
        compare(what, model_grads(m) + t->offset, g + off, t->numel, 1e-3, 1e-3);
        off += t->numel;
    }
    free(g);
    float *b1 = load(dir, "buffers1.npy", &n);
    snprintf(what, sizeof what, "%s running stats", dir);
    CHECK_ARRAY_CLOSE(what, model_buffers(m), b1, n, 1e-4, 1e-5);
    free(b1);
    for (int i = 0; i < nft; i++) {
        const ModelTensor *t = model_tensor(m, i);
        if (t->kind == MODEL_COUNTER)
            CHECK(model_counters(m)[t->offset] == 1, "%s: %s = %lld after one step", dir, t->name,
                  (long long)model_counters(m)[t->offset]);
    }
    CHECK(model_forward(m, x, B, 0) == 0, "eval forward: %s", sc_error());
    want = load(dir, "z_eval.npy", &n);
    snprintf(what, sizeof what, "%s z (eval mode)", dir);
    compare(what, model_z(m), want, n, 1e-4, 1e-4);
    free(want);
    free(x), free(dz);
    model_free(m);
}

TEST(fixture_resnet18_width0125) {
    ModelConfig c;
    model_config_default(&c);
    c.width = 0.125f, c.image_size = 32, c.out_dim = 16;
    run_case("resnet18_w0125", c, 8);
}

TEST(fixture_resnet50_base6) {
    ModelConfig c;
    model_config_default(&c);
    c.arch = ARCH_RESNET50, c.width = 6 / 64.0f, c.image_size = 32, c.out_dim = 16;
    run_case("resnet50_base6", c, 16);
}

TEST(fixture_resnet18_cifar_stem_head3_bn) {
    ModelConfig c;
    model_config_default(&c);
    c.stem = STEM_CIFAR, c.width = 0.0625f, c.image_size = 8, c.out_dim = 8;
    c.head_layers = 3, c.head_bn = 1;
    run_case("resnet18_cifar_headbn", c, 6);
}

/* google-research/simclr's head: BN after every linear, the output BN without a shift */
TEST(fixture_resnet18_cifar_stem_head2_bn_all) {
    ModelConfig c;
    model_config_default(&c);
    c.stem = STEM_CIFAR, c.width = 0.0625f, c.image_size = 8, c.out_dim = 8;
    c.head_layers = 2, c.head_bn = HEAD_BN_ALL;
    run_case("resnet18_cifar_headbnall", c, 6);
    Model *m;
    CHECK(model_create(&m, &c, 6, 1) == 0, "create: %s", sc_error());
    CHECK(model_find_tensor(m, "head.0.bias") < 0 && model_find_tensor(m, "head.1.running_var") >= 0 &&
          model_find_tensor(m, "head.3.weight") >= 0 && model_find_tensor(m, "head.3.bias") < 0 &&
          model_find_tensor(m, "head.4.weight") >= 0 && model_find_tensor(m, "head.4.bias") >= 0,
          "names: head.0 linear, head.1 BN, head.3 linear without bias, head.4 BN");
    model_free(m);
}

/* ---- names, counts ------------------------------------------------------------------------- */

static void check_names(int arch, const char *file, size_t want_params, int want_tensors) {
    ModelConfig c;
    model_config_default(&c);
    c.arch = arch, c.head_layers = 0, c.image_size = 32;
    Model *m;
    if (model_create(&m, &c, 1, 1)) {
        CHECK(0, "%s", sc_error());
        return;
    }
    CHECK(model_num_params(m) == want_params, "%s: %zu params, want %zu", file,
          model_num_params(m), want_params);
    CHECK(model_num_tensors(m) == want_tensors, "%s: %d tensors, want %d", file,
          model_num_tensors(m), want_tensors);
    char rel[128];
    snprintf(rel, sizeof rel, "core/%s", file);
    FILE *f = fopen(fixture_path(rel), "r");
    CHECK(f != NULL, "cannot open %s", rel);
    char line[512];
    int i = 0, bad = 0;
    while (f && fgets(line, sizeof line, f)) {
        char *tok = strtok(line, " \n");
        const ModelTensor *t = model_tensor(m, i);
        if (!t || strcmp(t->name, tok)) {
            if (bad++ < 3) CHECK(0, "%s: key %d is %s in torchvision, %s here", file, i, tok, t ? t->name : "(none)");
        } else {
            int d = 0;
            while ((tok = strtok(NULL, " \n"))) {
                if (d >= t->ndim || t->shape[d] != atoll(tok)) bad++;
                d++;
            }
            if (d != t->ndim) bad++;
            CHECK(!bad, "%s: shape of %s", file, t->name);
        }
        i++;
    }
    if (f) fclose(f);
    CHECK(i == model_num_tensors(m), "%s: %d keys in torchvision, %d here", file, i, model_num_tensors(m));
    model_free(m);
}

TEST(names_and_counts_resnet18) { check_names(ARCH_RESNET18, "names_resnet18.txt", 11176512, 120); }
TEST(names_and_counts_resnet34) { check_names(ARCH_RESNET34, "names_resnet34.txt", 21284672, 216); }
TEST(names_and_counts_resnet50) { check_names(ARCH_RESNET50, "names_resnet50.txt", 23508032, 318); }

TEST(head_names_and_kinds) {
    ModelConfig c;
    model_config_default(&c);
    c.width = 0.125f, c.image_size = 32;
    Model *m;
    SC_ASSERT(!model_create(&m, &c, 2, 1));
    int i = model_find_tensor(m, "head.0.weight");
    CHECK(i >= 0 && model_tensor(m, i)->shape[0] == 64 && model_tensor(m, i)->shape[1] == 64, "head.0.weight (64,64)");
    CHECK(model_find_tensor(m, "head.0.bias") >= 0 && model_find_tensor(m, "head.2.weight") >= 0 &&
          model_find_tensor(m, "head.2.bias") >= 0, "default head names");
    CHECK(model_out_dim(m) == 128, "out dim %d", model_out_dim(m));
    const ModelTensor *t = model_tensor(m, model_find_tensor(m, "head.2.bias"));
    CHECK(t->is_bn_or_bias, "bias flagged");
    t = model_tensor(m, model_find_tensor(m, "layer1.0.bn1.weight"));
    CHECK(t->is_bn_or_bias && t->kind == MODEL_PARAM, "bn weight flagged");
    t = model_tensor(m, model_find_tensor(m, "layer1.0.conv1.weight"));
    CHECK(!t->is_bn_or_bias, "conv weight not flagged");
    t = model_tensor(m, model_find_tensor(m, "bn1.num_batches_tracked"));
    CHECK(t->kind == MODEL_COUNTER && t->ndim == 0, "counter");
    /* the params buffer is gap-free: offsets follow each other in state_dict order */
    size_t off = 0;
    for (int k = 0; k < model_num_tensors(m); k++)
        if (model_tensor(m, k)->kind == MODEL_PARAM) {
            CHECK(model_tensor(m, k)->offset == off, "offset of %s", model_tensor(m, k)->name);
            off += model_tensor(m, k)->numel;
        }
    CHECK(off == model_num_params(m), "params cover the buffer");
    model_free(m);
    c.head_layers = 2, c.head_bn = 1;
    SC_ASSERT(!model_create(&m, &c, 2, 1));
    CHECK(model_find_tensor(m, "head.0.bias") < 0 && model_find_tensor(m, "head.1.running_var") >= 0 &&
          model_find_tensor(m, "head.3.weight") >= 0 && model_find_tensor(m, "head.3.bias") >= 0,
          "BN head names: head.0 (no bias), head.1 BN, head.3 output");
    model_free(m);
    c.head_layers = 0;
    SC_ASSERT(!model_create(&m, &c, 2, 1));
    CHECK(model_out_dim(m) == 64 && model_find_tensor(m, "head.0.weight") < 0, "no head");
    model_free(m);
}

/* ---- init ---------------------------------------------------------------------------------- */

TEST(init_like_torchvision) {
    ModelConfig c;
    model_config_default(&c);
    c.image_size = 32;
    Model *m;
    SC_ASSERT(!model_create(&m, &c, 1, 42));
    const ModelTensor *t = model_tensor(m, model_find_tensor(m, "layer4.1.conv2.weight"));
    const float *w = model_params(m) + t->offset;
    double s = 0, ss = 0;
    for (size_t i = 0; i < t->numel; i++) s += w[i], ss += (double)w[i] * w[i];
    double mean = s / t->numel, sd = sqrt(ss / t->numel - mean * mean), want = sqrt(2.0 / (512 * 9));
    CHECK(fabs(mean) < 3 * want / sqrt(t->numel) + 1e-6, "conv mean %g", mean);
    CHECK(fabs(sd / want - 1) < 0.01, "conv std %g want %g (kaiming fan_out)", sd, want);
    t = model_tensor(m, model_find_tensor(m, "head.0.weight"));
    w = model_params(m) + t->offset;
    double mx = 0;
    for (size_t i = 0; i < t->numel; i++) mx = fabs(w[i]) > mx ? fabs(w[i]) : mx;
    CHECK(mx <= 1 / sqrt(512.0) && mx > 0.99 / sqrt(512.0), "linear bound %g", mx);
    t = model_tensor(m, model_find_tensor(m, "layer1.0.bn2.weight"));
    CHECK(model_params(m)[t->offset] == 1, "bn weight 1");
    t = model_tensor(m, model_find_tensor(m, "layer1.0.bn2.running_var"));
    CHECK(model_buffers(m)[t->offset] == 1, "running var 1");
    /* same seed, same params; other seed, other params */
    Model *m2, *m3;
    SC_ASSERT(!model_create(&m2, &c, 1, 42));
    c.zero_init_residual = 1;
    SC_ASSERT(!model_create(&m3, &c, 1, 43));
    CHECK(!memcmp(model_params(m), model_params(m2), model_num_params(m) * 4), "same seed same init");
    CHECK(memcmp(model_params(m), model_params(m3), 1000 * 4), "other seed other init");
    for (int b = 0; b < 4; b++)
        for (int i = 0; i < 2; i++) {
            char name[64];
            for (int k = 1; k <= 2; k++) {
                snprintf(name, sizeof name, "layer%d.%d.bn%d.weight", b + 1, i, k);
                t = model_tensor(m3, model_find_tensor(m3, name));
                float v = model_params(m3)[t->offset];
                CHECK(v == (k == 2 ? 0.0f : 1.0f), "zero-init-residual: %s = %g", name, v);
            }
        }
    model_free(m), model_free(m2), model_free(m3);
}

TEST(zero_init_residual_resnet50) {
    ModelConfig c;
    model_config_default(&c);
    c.arch = ARCH_RESNET50, c.width = 0.0625f, c.image_size = 32, c.zero_init_residual = 1;
    Model *m;
    SC_ASSERT(!model_create(&m, &c, 1, 1));
    int zeros = 0, ones = 0;
    for (int i = 0; i < model_num_tensors(m); i++) {
        const ModelTensor *t = model_tensor(m, i);
        if (!strstr(t->name, ".weight") || !strstr(t->name, "bn")) continue;
        float v = model_params(m)[t->offset];
        if (strstr(t->name, "bn3")) zeros += v == 0; else ones += v == 1;
    }
    CHECK(zeros == 16 && ones == 1 + 32, "bn3 zeros %d (want 16), other bn ones %d", zeros, ones);
    model_free(m);
}

/* ---- thread-count independence ------------------------------------------------------------- */

static void run_prec(int threads, float **h, float **z, float **g, size_t *ng, int B, int precision) {
    sc_set_threads(threads);
    ModelConfig c;
    model_config_default(&c);
    c.width = 0.25f, c.image_size = 64, c.precision = precision < 0 ? PRECISION_FP32 : precision;
    Model *m;
    SC_ASSERT(!model_create(&m, &c, B, 5));
    float *x = malloc(sizeof(float) * B * 3 * 64 * 64), *dz = malloc(sizeof(float) * B * 128);
    Rng r = rng_derive(9, RNG_STREAM_TEST, 0, 0, 0);
    for (int i = 0; i < B * 3 * 64 * 64; i++) x[i] = rng_uniform(&r);
    for (int i = 0; i < B * 128; i++) dz[i] = rng_uniform(&r) - 0.5f;
    if (precision < 0) { /* fp32 on operands rounded to bf16: the case's sensitivity to bf16 */
        bf16_round_array(model_params(m), model_params(m), model_num_params(m));
        bf16_round_array(x, x, (size_t)B * 3 * 64 * 64);
    }
    model_zero_grad(m);
    SC_ASSERT(!model_forward(m, x, B, 1));
    model_backward(m, dz);
    *h = malloc(sizeof(float) * B * 128);
    memcpy(*h, model_h(m), sizeof(float) * B * 128);
    *z = malloc(sizeof(float) * B * 128);
    memcpy(*z, model_z(m), sizeof(float) * B * 128);
    *ng = model_num_params(m);
    *g = malloc(sizeof(float) * *ng);
    memcpy(*g, model_grads(m), sizeof(float) * *ng);
    free(x), free(dz);
    model_free(m);
}

static void run_threads(int threads, float **h, float **z, float **g, size_t *ng, int B) {
    run_prec(threads, h, z, g, ng, B, PRECISION_FP32);
}

static double rel_l2(const float *got, const float *want, size_t n) {
    double d = 0, w = 0;
    for (size_t i = 0; i < n; i++) d += ((double)got[i] - want[i]) * ((double)got[i] - want[i]), w += (double)want[i] * want[i];
    return sqrt(d / (w > 0 ? w : 1));
}

/* bf16 (convolutions in bf16, bf16 saved activations): bit-identical h, z and gradients for 1, 2
 * and 3 threads, and close to fp32 from the same weights and inputs. "Close" is measured against
 * the case's own sensitivity to bf16: the same fp32 model run on weights and images merely ROUNDED
 * to bf16. A deep network at initialisation with batch statistics over 8 rows is ill-conditioned
 * (rounding only the operands moves z by 1.5% and the weight gradients by 30%, relative L2), so
 * absolute tolerances would say little; bf16 rounds at every layer (activations, the gradients
 * entering the convs) and may add a few times that: documented tolerance 3x the rounding-only
 * error for h, z and all gradients together (measured: 1.9x for z, 1.4x for the gradients). The
 * per-layer tests (test_layers: conv_bf16_matches_reference) hold each kernel tightly. */
TEST(bf16_thread_independent_and_close_to_fp32) {
    if (!model_bf16_native()) {
        printf("  skipped: no AVX512-BF16 on this CPU\n");
        return;
    }
    int B = 8;
    float *h[3], *z[3], *g[3], *hf, *zf, *gf, *hr, *zr, *gr;
    size_t n;
    int saved = sc_threads();
    for (int t = 0; t < 3; t++) run_prec(t + 1, &h[t], &z[t], &g[t], &n, B, PRECISION_BF16);
    run_prec(2, &hf, &zf, &gf, &n, B, PRECISION_FP32);
    run_prec(2, &hr, &zr, &gr, &n, B, -1); /* fp32 on bf16-rounded weights and images */
    sc_set_threads(saved);
    for (int t = 1; t < 3; t++) {
        CHECK(!memcmp(h[0], h[t], sizeof(float) * B * 128), "bf16 h bit-identical, 1 and %d threads", t + 1);
        CHECK(!memcmp(z[0], z[t], sizeof(float) * B * 128), "bf16 z bit-identical, 1 and %d threads", t + 1);
        CHECK(!memcmp(g[0], g[t], sizeof(float) * n), "bf16 grads bit-identical, 1 and %d threads", t + 1);
    }
    double eh = rel_l2(h[0], hf, B * 128), ez = rel_l2(z[0], zf, B * 128), eg = rel_l2(g[0], gf, n);
    double rh = rel_l2(hr, hf, B * 128), rz = rel_l2(zr, zf, B * 128), rg = rel_l2(gr, gf, n);
    printf("  relative L2 vs fp32: bf16 h %.2e z %.2e grads %.2e; fp32 on rounded operands h %.2e "
           "z %.2e grads %.2e\n", eh, ez, eg, rh, rz, rg);
    CHECK(eh < 3 * rh && ez < 3 * rz && eh < 5e-2 && ez < 5e-2, "bf16 h, z vs fp32: %.3g %.3g", eh, ez);
    CHECK(eg < 3 * rg, "bf16 grads vs fp32: %.3g (rounding alone %.3g)", eg, rg);
    for (int t = 0; t < 3; t++) free(h[t]), free(z[t]), free(g[t]);
    free(hf), free(zf), free(gf), free(hr), free(zr), free(gr);
}

TEST(same_result_for_any_thread_count) {
    int B = 8;
    float *h1, *z1, *g1, *h2, *z2, *g2, *h3, *z3, *g3;
    size_t n;
    int saved = sc_threads();
    run_threads(1, &h1, &z1, &g1, &n, B);
    run_threads(2, &h2, &z2, &g2, &n, B);
    run_threads(3, &h3, &z3, &g3, &n, B);
    sc_set_threads(saved);
    CHECK(!memcmp(h1, h2, sizeof(float) * B * 128) && !memcmp(h1, h3, sizeof(float) * B * 128),
          "h bit-identical for 1, 2, 3 threads");
    CHECK(!memcmp(z1, z2, sizeof(float) * B * 128) && !memcmp(z1, z3, sizeof(float) * B * 128),
          "z bit-identical for 1, 2, 3 threads");
    /* weight gradients: see doc/core.md (oneDNN's backward-weights split) */
    CHECK_ARRAY_CLOSE("grads 2 threads vs 1", g2, g1, n, 1e-5, 1e-7);
    CHECK_ARRAY_CLOSE("grads 3 threads vs 1", g3, g1, n, 1e-5, 1e-7);
    size_t diff = 0;
    for (size_t i = 0; i < n; i++) diff += g1[i] != g2[i] || g1[i] != g3[i];
    printf("  grads differing in any bit between 1/2/3 threads: %zu of %zu\n", diff, n);
    free(h1), free(z1), free(g1), free(h2), free(z2), free(g2), free(h3), free(z3), free(g3);
}

/* Only the conv outputs are kept from the forward: block outputs are recomputed from them
 * (model_block_output, and the backward's block inputs and ReLU masks). The recomputed last block
 * output gives h bit for bit (ResNet-34: chains of up to 6 identity blocks; cifar stem: no pool),
 * and recomputing block outputs between forward and backward changes no gradient bit. */
TEST(recomputed_activations_match_forward) {
    for (int k = 0; k < 2; k++) {
        ModelConfig c;
        model_config_default(&c);
        c.arch = ARCH_RESNET34, c.width = 0.125f, c.image_size = k ? 16 : 32;
        c.stem = k ? STEM_CIFAR : STEM_IMAGENET;
        int B = 4, S = c.image_size;
        Model *m;
        SC_ASSERT(!model_create(&m, &c, B, 3));
        const ResNetSpec *sp = model_spec(m);
        float *x = malloc(sizeof(float) * B * 3 * S * S), dz[4 * 128];
        Rng r = rng_derive(2, RNG_STREAM_TEST, 9, 0, 0);
        for (int i = 0; i < B * 3 * S * S; i++) x[i] = rng_uniform(&r);
        for (int i = 0; i < B * 128; i++) dz[i] = rng_uniform(&r) - 0.5f;
        size_t np = model_num_params(m), D = sp->feat_dim;
        float *g0 = malloc(np * 4), *h = malloc(D * B * 4);
        for (int pass = 0; pass < 2; pass++) {
            model_zero_grad(m);
            SC_ASSERT(!model_forward(m, x, B, 0)); /* eval: the same statistics both passes */
            if (pass) {
                for (int b = -1; b < sp->nblocks; b++) CHECK(model_block_output(m, b), "block %d", b);
                avgpool_forward(h, model_block_output(m, sp->nblocks - 1), B,
                                sp->final_H * sp->final_W, D, model_act_dtype(m));
                CHECK(!memcmp(h, model_h(m), D * B * 4), "%s stem: h from the recomputed last block",
                      k ? "cifar" : "imagenet");
            }
            model_backward(m, dz);
            if (!pass) memcpy(g0, model_grads(m), np * 4);
            else CHECK(!memcmp(g0, model_grads(m), np * 4), "gradients after recomputing blocks");
        }
        free(x), free(g0), free(h);
        model_free(m);
    }
}

TEST(smaller_batch_after_create) {
    ModelConfig c;
    model_config_default(&c);
    c.width = 0.125f, c.image_size = 32;
    Model *m;
    SC_ASSERT(!model_create(&m, &c, 6, 1));
    float x[6 * 3 * 32 * 32];
    Rng r = rng_derive(1, RNG_STREAM_TEST, 1, 0, 0);
    for (size_t i = 0; i < sizeof x / 4; i++) x[i] = rng_uniform(&r);
    SC_ASSERT(!model_forward(m, x, 6, 0));
    float z6[2 * 128];
    memcpy(z6, model_z(m), sizeof z6);
    CHECK(model_forward(m, x, 2, 0) == 0, "forward with 2 of 6 rows: %s", sc_error());
    CHECK_ARRAY_CLOSE("eval-mode z of the first rows", model_z(m), z6, 2 * 128, 1e-5, 1e-6);
    CHECK(model_forward(m, x, 7, 0) == -1 && strstr(sc_error(), "batch"), "7 > max batch refused");
    model_free(m);
}

/* ---- configuration errors ------------------------------------------------------------------ */

TEST(config_errors) {
    ModelConfig c;
    model_config_default(&c);
    CHECK(model_config_check(&c) == 0, "default ok");
    c.arch = 7;
    CHECK(model_config_check(&c) && strstr(sc_error(), "--arch"), "bad arch: %s", sc_error());
    model_config_default(&c);
    c.width = 0;
    CHECK(model_config_check(&c) && strstr(sc_error(), "--width"), "width 0: %s", sc_error());
    model_config_default(&c);
    c.image_size = -3;
    CHECK(model_config_check(&c) && strstr(sc_error(), "--image-size"), "size < 0: %s", sc_error());
    c.image_size = 16;
    CHECK(model_config_check(&c) && strstr(sc_error(), "too small"), "16 px imagenet: %s", sc_error());
    c.stem = STEM_CIFAR;
    CHECK(model_config_check(&c) == 0, "16 px cifar ok");
    c.image_size = 4;
    CHECK(model_config_check(&c) && strstr(sc_error(), "too small"), "4 px cifar: %s", sc_error());
    model_config_default(&c);
    c.out_dim = 0;
    CHECK(model_config_check(&c) && strstr(sc_error(), "--out-dim"), "out dim 0: %s", sc_error());
    model_config_default(&c);
    c.head_layers = -1;
    CHECK(model_config_check(&c) && strstr(sc_error(), "--head-layers"), "head -1: %s", sc_error());
    model_config_default(&c);
    Model *m = (Model *)1;
    CHECK(model_create(&m, &c, 0, 1) == -1 && m == NULL && strstr(sc_error(), "batch"), "batch 0");
}

TEST(options_fragment) {
    ModelConfig c;
    model_config_default(&c);
    Opt o[MODEL_OPTS_MAX];
    int n = model_opts(o, &c);
    CHECK(n == 9 && o[n].name == NULL, "9 options");
    Opt *tables[] = {o};
    char *argv[] = {"x", "--arch", "resnet50", "--stem=cifar", "--width", "0.5", "--image-size", "32",
                    "--head-layers", "3", "--head-bn", "--out-dim", "64", "--zero-init-residual"};
    CHECK(opts_parse("x", "t", 14, argv, tables, 1, NULL, NULL) == 0, "%s", sc_error());
    CHECK(c.arch == ARCH_RESNET50 && c.stem == STEM_CIFAR && c.width == 0.5f && c.image_size == 32 &&
          c.head_layers == 3 && c.head_bn && c.out_dim == 64 && c.zero_init_residual, "parsed");
    CHECK(c.head_bn == HEAD_BN_ON, "bare --head-bn is on");
    char *bad[] = {"x", "--arch", "resnet99"};
    CHECK(opts_parse("x", "t", 3, bad, tables, 1, NULL, NULL) == -1 && strstr(sc_error(), "--arch"),
          "unknown arch: %s", sc_error());
    char *all[] = {"x", "--head-bn", "all"};
    CHECK(opts_parse("x", "t", 3, all, tables, 1, NULL, NULL) == 0 && c.head_bn == HEAD_BN_ALL,
          "--head-bn all");
    char *off[] = {"x", "--no-head-bn"};
    CHECK(opts_parse("x", "t", 2, off, tables, 1, NULL, NULL) == 0 && c.head_bn == HEAD_BN_OFF,
          "--no-head-bn");
    char *wrong[] = {"x", "--head-bn", "some"};
    CHECK(opts_parse("x", "t", 3, wrong, tables, 1, NULL, NULL) == -1 &&
          strstr(sc_error(), "off|on|all"), "--head-bn some: %s", sc_error());
}
