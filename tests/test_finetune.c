/* test_finetune.c - `simclr finetune`'s parts: one fine-tuning step of the Trainer with the
 * cross-entropy loss against its PyTorch twin (tools/make_finetune_fixtures.py: logits, loss,
 * every gradient, the running statistics, the parameters after SGD-Nesterov), the softmax
 * cross-entropy against finite differences, and the class-balanced labelled subsets. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "finetune.h"
#include "model.h"
#include "optim.h"
#include "test.h"
#include "train.h"

static double maxabs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

TEST(one_step_against_pytorch) {
    int64_t sh[4];
    float *p0 = fixture_f32("finetune/params0.npy", sh);
    size_t P = (size_t)sh[0];
    float *b0 = fixture_f32("finetune/buffers0.npy", sh);
    size_t NB = (size_t)sh[0];
    float *x = fixture_f32("finetune/x.npy", NULL), *logits = fixture_f32("finetune/logits.npy", NULL);
    float *grads = fixture_f32("finetune/grads.npy", NULL), *p1 = fixture_f32("finetune/params1.npy", NULL);
    float *b1 = fixture_f32("finetune/buffers1.npy", NULL), *out = fixture_f32("finetune/out.npy", NULL);
    size_t B;
    int *y = fixture_labels("finetune/y.npy", &B);
    int K = 5;
    TrainerConfig tc;
    trainer_config_default(&tc);
    tc.model.stem = STEM_CIFAR, tc.model.width = 0.0625f, tc.model.image_size = 16;
    tc.model.head_layers = 1, tc.model.out_dim = K;
    optim_config_default(&tc.optim, OPTIM_SGD);
    tc.optim.momentum = out[3], tc.optim.nesterov = 1, tc.optim.weight_decay = 0;
    CHECK(!lr_schedule_init(&tc.schedule, out[2], LR_SCALING_NONE, (long)B, 0, 0, 1, 1, LR_CONSTANT),
          "%s", sc_error());
    tc.batch = (int)B, tc.views = 1;
    tc.loss = (TrainerLoss){finetune_ce_loss, &K, 0};
    Trainer *t;
    CHECK(trainer_create(&t, &tc) == 0, "trainer_create: %s", sc_error());
    if (!t) return;
    Model *m = t->model;
    CHECK(model_num_params(m) == P && model_num_buffers(m) == NB, "sizes %zu/%zu vs %zu/%zu",
          model_num_params(m), model_num_buffers(m), P, NB);
    CHECK(model_find_tensor(m, "head.0.weight") >= 0, "the classifier is head.0");
    memcpy(model_params(m), p0, P * 4);
    memcpy(model_buffers(m), b0, NB * 4);
    TrainStats st;
    CHECK(trainer_step(t, x, y, &st) == 0, "step: %s", sc_error());
    /* loss rtol 1e-5; logits rtol 1e-4 (as the model fixtures); top-1 exact */
    CHECK_CLOSE("loss", st.loss, out[0], 1e-5, 1e-7);
    CHECK_CLOSE("top1", st.top1, out[1], 0, 1e-6);
    CHECK_ARRAY_CLOSE("logits", model_z(m), logits, B * K, 1e-4, 1e-4 * maxabs(logits, B * K));
    CHECK(t->step == 1, "one step");
    /* per tensor: gradients rtol 1e-3 + 1e-4 x max|g| (the model fixtures' tolerance); the
     * parameters after the step: atol = lr x (1 + mu) x the gradient tolerance */
    for (int i = 0; i < model_num_tensors(m); i++) {
        const ModelTensor *mt = model_tensor(m, i);
        if (mt->kind != MODEL_PARAM) continue;
        char what[128];
        double gm = maxabs(grads + mt->offset, mt->numel), gtol = 1e-3 * gm + 1e-4 * gm + 1e-9;
        snprintf(what, sizeof what, "grad %s", mt->name);
        CHECK_ARRAY_CLOSE(what, model_grads(m) + mt->offset, grads + mt->offset, mt->numel, 1e-3,
                          1e-4 * gm + 1e-9);
        snprintf(what, sizeof what, "param after SGD-Nesterov %s", mt->name);
        CHECK_ARRAY_CLOSE(what, model_params(m) + mt->offset, p1 + mt->offset, mt->numel, 1e-6,
                          out[2] * (1 + out[3]) * gtol + 1e-7);
    }
    CHECK_ARRAY_CLOSE("running statistics", model_buffers(m), b1, NB, 1e-4, 1e-5);
    trainer_free(t);
    free(p0), free(b0), free(x), free(logits), free(grads), free(p1), free(b1), free(out), free(y);
}

TEST(cross_entropy_finite_differences) {
    int B = 5, K = 4;
    float z[20], g[20];
    int y[5] = {0, 3, 1, 1, 2};
    for (int i = 0; i < B * K; i++) z[i] = (float)sin(1.7 * i) * 3;
    double t1, t5;
    double L = softmax_ce(z, y, B, K, g, &t1, &t5);
    CHECK(L > 0 && t5 == 1, "loss %g, top-5 %g with 4 classes", L, t5);
    double worst = 0;
    for (int i = 0; i < B * K; i++) {
        float z0 = z[i];
        z[i] = z0 + 1e-2f;
        float up = z[i];
        double lp = softmax_ce(z, y, B, K, NULL, NULL, NULL);
        z[i] = z0 - 1e-2f;
        float dn = z[i];
        double lm = softmax_ce(z, y, B, K, NULL, NULL, NULL);
        z[i] = z0;
        worst = fmax(worst, fabs((lp - lm) / ((double)up - dn) - g[i]));
    }
    CHECK(worst < 1e-5, "worst |fd - grad| %g", worst);
    float big[3] = {1000, 0, -1000};
    int yb = 2;
    CHECK(isfinite(softmax_ce(big, &yb, 1, 3, NULL, NULL, NULL)), "stable for large logits");
}

TEST(labelled_subsets) {
    /* 3 classes of 100, 50 and 7 images, interleaved */
    int32_t lab[157];
    size_t n = 0;
    for (int i = 0; i < 100; i++) {
        lab[n++] = 0;
        if (i < 50) lab[n++] = 1;
        if (i < 7) lab[n++] = 2;
    }
    size_t *a, na, *b, nb;
    CHECK(!finetune_select_labels(lab, n, 3, 0.1, 0, 1, &a, &na), "%s", sc_error());
    int cnt[3] = {0};
    for (size_t i = 0; i < na; i++) cnt[lab[a[i]]]++;
    CHECK(cnt[0] == 10 && cnt[1] == 5 && cnt[2] == 1, "10%% per class: %d %d %d", cnt[0], cnt[1], cnt[2]);
    for (size_t i = 1; i < na; i++) CHECK(a[i - 1] < a[i], "sorted, no repeats");
    CHECK(!finetune_select_labels(lab, n, 3, 0.5, 0, 1, &b, &nb), "%s", sc_error());
    size_t inside = 0;
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++) inside += a[i] == b[j];
    CHECK(inside == na, "the 10%% subset lies inside the 50%% one (same seed)");
    sc_free(b);
    CHECK(!finetune_select_labels(lab, n, 3, 0.1, 0, 1, &b, &nb) && nb == na &&
              !memcmp(a, b, na * sizeof *a), "the same seed gives the same subset");
    sc_free(b);
    CHECK(!finetune_select_labels(lab, n, 3, 0.1, 0, 2, &b, &nb) && (nb != na || memcmp(a, b, na * sizeof *a)),
          "another seed, another subset");
    sc_free(b);
    sc_free(a);
    CHECK(!finetune_select_labels(lab, n, 3, 0, 7, 3, &a, &na) && na == 21, "7 per class: %zu", na);
    sc_free(a);
    CHECK(finetune_select_labels(lab, n, 3, 0, 8, 3, &a, &na) == -1 &&
              strstr(sc_error(), "finetune.labels_per_class 8: class 2 has only 7"), "%s", sc_error());
    CHECK(finetune_select_labels(lab, n, 3, 0, 0, 3, &a, &na) == -1 && strstr(sc_error(), "finetune.label_fraction"),
          "fraction 0: %s", sc_error());
    CHECK(finetune_select_labels(lab, n, 3, 1.5, 0, 3, &a, &na) == -1 && strstr(sc_error(), "(0, 1]"),
          "fraction 1.5: %s", sc_error());
    CHECK(finetune_select_labels(NULL, n, 0, 0.5, 0, 3, &a, &na) == -1 && strstr(sc_error(), "no labels"),
          "no labels: %s", sc_error());
}
