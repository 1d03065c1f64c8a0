/* test_train.c - the Trainer (src/train.h): its step against the plain composition of model,
 * NT-Xent and optimizer calls (bit for bit), the same losses for any thread count, save and
 * resume continuing exactly, a non-finite loss stopping before the update, and a pluggable loss.
 * Model: ResNet-18 at width 1/8, 32 px, N = 4 images x 2 views, Adam. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "model.h"
#include "ntxent.h"
#include "optim.h"
#include "rng.h"
#include "test.h"
#include "train.h"

enum { N = 4, V = 2, S = 32, B = N * V };

static void small_config(TrainerConfig *tc) {
    trainer_config_default(tc);
    tc->model.width = 0.125f, tc->model.image_size = S;
    tc->batch = N, tc->views = V, tc->temperature = 0.5f, tc->seed = 11;
    tc->schedule = (LrSchedule){.base_lr = 1e-3, .warmup_steps = 2, .total_steps = 8,
                                .schedule = LR_COSINE};
    tc->steps_per_epoch = 3;
}

/* a fixed batch per step s: (B, 3, S, S) */
static void batch(float *x, int s) {
    Rng r = rng_derive(3, RNG_STREAM_TEST, 5, (uint64_t)s, 0);
    for (int i = 0; i < B * 3 * S * S; i++) x[i] = rng_uniform(&r);
}

/* nsteps Trainer steps; losses[s] and the final parameters into params (may be NULL) */
static void run_trainer(int threads, int nsteps, float *losses, float **params) {
    sc_set_threads(threads);
    TrainerConfig tc;
    small_config(&tc);
    Trainer *t;
    SC_ASSERT(!trainer_create(&t, &tc));
    float *x = sc_alloc(sizeof(float) * B * 3 * S * S);
    for (int s = 0; s < nsteps; s++) {
        batch(x, s);
        TrainStats st;
        CHECK(trainer_step(t, x, NULL, &st) == 0, "step %d: %s", s, sc_error());
        losses[s] = st.loss;
    }
    CHECK(t->step == nsteps, "step count %ld", t->step);
    if (params) {
        *params = sc_alloc(model_num_params(t->model) * sizeof(float));
        memcpy(*params, model_params(t->model), model_num_params(t->model) * sizeof(float));
    }
    sc_free(x);
    trainer_free(t);
}

TEST(trainer_step_equals_the_plain_loop) {
    /* the loop as every command wrote it before the Trainer: the oracle of the refactoring */
    const int nsteps = 4;
    float lt[4], lp[4], *pt;
    run_trainer(2, nsteps, lt, &pt);
    TrainerConfig tc;
    small_config(&tc);
    Model *m;
    SC_ASSERT(!model_create(&m, &tc.model, B, tc.seed));
    Ntxent *nt;
    SC_ASSERT(!ntxent_create(&nt, B, B, 128));
    OptimSegment seg[256];
    int ns = 0;
    for (int i = 0; i < model_num_tensors(m); i++) {
        const ModelTensor *mt = model_tensor(m, i);
        if (mt->kind == MODEL_PARAM) seg[ns++] = (OptimSegment){mt->offset, mt->numel, mt->is_bn_or_bias};
    }
    Optimizer *o;
    SC_ASSERT(!optim_create(&o, &tc.optim, model_num_params(m), seg, ns));
    float *x = sc_alloc(sizeof(float) * B * 3 * S * S), *dz = sc_alloc(sizeof(float) * B * 128);
    for (int s = 0; s < nsteps; s++) {
        batch(x, s);
        NtxentStats st;
        model_zero_grad(m);
        SC_ASSERT(!model_forward(m, x, B, 1));
        SC_ASSERT(!ntxent_loss(nt, model_z(m), N, V, 128, 0.5f, dz, &st));
        model_backward(m, dz);
        optim_step(o, model_params(m), model_grads(m), lr_at_step(&tc.schedule, s));
        lp[s] = st.loss;
    }
    CHECK(!memcmp(lt, lp, sizeof lt), "losses: trainer %.9g .. %.9g, loop %.9g .. %.9g", lt[0],
          lt[3], lp[0], lp[3]);
    CHECK(!memcmp(pt, model_params(m), model_num_params(m) * sizeof(float)),
          "parameters after %d steps differ", nsteps);
    sc_free(x), sc_free(dz), sc_free(pt);
    optim_free(o);
    ntxent_free(nt);
    model_free(m);
}

TEST(training_losses_identical_for_any_thread_count) {
    float l1[5], l2[5], l3[5];
    int saved = sc_threads();
    run_trainer(1, 5, l1, NULL);
    run_trainer(2, 5, l2, NULL);
    run_trainer(3, 5, l3, NULL);
    sc_set_threads(saved);
    CHECK(!memcmp(l1, l2, sizeof l1) && !memcmp(l1, l3, sizeof l1),
          "losses of 5 Adam steps, 1/2/3 threads: %.9g %.9g %.9g ... last %.9g %.9g %.9g", l1[0], l2[0],
          l3[0], l1[4], l2[4], l3[4]);
}

TEST(save_and_resume_continue_exactly) {
    char dir[] = "/tmp/simclr_train_XXXXXX";
    SC_ASSERT(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/last.safetensors", dir);
    float lu[6], *pu;
    run_trainer(2, 6, lu, &pu);
    /* 4 steps, save, a fresh trainer resumes for 2 */
    TrainerConfig tc;
    small_config(&tc);
    Trainer *a, *b;
    SC_ASSERT(!trainer_create(&a, &tc));
    float *x = sc_alloc(sizeof(float) * B * 3 * S * S);
    TrainStats st;
    for (int s = 0; s < 4; s++) {
        batch(x, s);
        SC_ASSERT(trainer_step(a, x, NULL, &st) == 0);
    }
    CHECK(trainer_epoch(a) == 1 && trainer_batch(a) == 1, "position %ld/%ld", trainer_epoch(a),
          trainer_batch(a));
    CHECK(trainer_save(a, path, "{\"x\": 1}") == 0, "%s", sc_error());
    tc.seed = 99; /* another init: everything must come from the file */
    SC_ASSERT(!trainer_create(&b, &tc));
    CkMeta meta = {0};
    CHECK(trainer_resume(b, path, &meta) == 0, "%s", sc_error());
    CHECK(b->step == 4 && meta.epoch == 1 && meta.batch == 1 && meta.config_json &&
              !strcmp(meta.config_json, "{\"x\": 1}"),
          "step %ld epoch %ld batch %ld", b->step, meta.epoch, meta.batch);
    ck_meta_free(&meta);
    float l[2];
    for (int s = 4; s < 6; s++) {
        batch(x, s);
        SC_ASSERT(trainer_step(b, x, NULL, &st) == 0);
        l[s - 4] = st.loss;
    }
    CHECK(!memcmp(l, lu + 4, sizeof l), "losses after resume %.9g %.9g, uninterrupted %.9g %.9g",
          l[0], l[1], lu[4], lu[5]);
    CHECK(!memcmp(pu, model_params(b->model), model_num_params(b->model) * sizeof(float)),
          "parameters after resume differ");
    CHECK(trainer_resume(b, "/nonexistent/x.safetensors", NULL) == -1, "missing file accepted");
    unlink(path);
    rmdir(dir);
    sc_free(x), sc_free(pu);
    trainer_free(a);
    trainer_free(b);
}

TEST(nonfinite_loss_stops_before_the_update) {
    TrainerConfig tc;
    small_config(&tc);
    tc.debug_nan_step = 1;
    Trainer *t;
    SC_ASSERT(!trainer_create(&t, &tc));
    float *x = sc_alloc(sizeof(float) * B * 3 * S * S);
    batch(x, 0);
    TrainStats st;
    SC_ASSERT(trainer_step(t, x, NULL, &st) == 0);
    size_t P = model_num_params(t->model);
    float *before = sc_alloc(P * sizeof(float));
    memcpy(before, model_params(t->model), P * sizeof(float));
    CHECK(trainer_step(t, x, NULL, &st) == TRAIN_NONFINITE && isnan(st.loss), "rc / loss %g", st.loss);
    CHECK(t->step == 1, "step advanced to %ld", t->step);
    CHECK(!memcmp(before, model_params(t->model), P * sizeof(float)), "parameters changed");
    CHECK_CLOSE("lr of the failed step", st.lr, lr_at_step(&tc.schedule, 1), 0, 0);
    sc_free(x), sc_free(before);
    trainer_free(t);
}

/* A pluggable loss: NT-Xent at another temperature, computed by the plug-in. */
typedef struct { Ntxent *ws; int calls; } Plug;
static int plug_loss(void *ctx, Trainer *t, const int *labels, float *grad, TrainStats *st) {
    Plug *p = ctx;
    NtxentStats ns;
    p->calls++;
    if (ntxent_loss(p->ws, model_z(t->model), t->cfg.batch, t->cfg.views, model_out_dim(t->model),
                    0.25f, grad, &ns))
        return -1;
    st->loss = ns.loss, st->top1 = ns.top1, st->top5 = ns.top5;
    return 0;
}

TEST(pluggable_loss) {
    TrainerConfig tc;
    small_config(&tc);
    Plug p = {0};
    SC_ASSERT(!ntxent_create(&p.ws, B, B, 128));
    tc.loss = (TrainerLoss){plug_loss, &p, 0};
    Trainer *a, *b;
    SC_ASSERT(!trainer_create(&a, &tc));
    CHECK(a->ntxent == NULL, "built-in workspace allocated with a plug-in loss");
    small_config(&tc);
    tc.temperature = 0.25f;
    SC_ASSERT(!trainer_create(&b, &tc));
    float *x = sc_alloc(sizeof(float) * B * 3 * S * S);
    for (int s = 0; s < 3; s++) {
        batch(x, s);
        TrainStats sa, sb;
        SC_ASSERT(trainer_step(a, x, NULL, &sa) == 0);
        SC_ASSERT(trainer_step(b, x, NULL, &sb) == 0);
        CHECK(sa.loss == sb.loss && sa.lr == sb.lr, "step %d: %g vs %g", s, sa.loss, sb.loss);
    }
    CHECK(p.calls == 3, "plug-in called %d times", p.calls);
    CHECK(!memcmp(model_params(a->model), model_params(b->model),
                  model_num_params(a->model) * sizeof(float)), "parameters differ");
    sc_free(x);
    ntxent_free(p.ws);
    trainer_free(a);
    trainer_free(b);
}

TEST(bad_configuration_refused) {
    TrainerConfig tc;
    small_config(&tc);
    Trainer *t = (Trainer *)1;
    tc.views = 1;
    CHECK(trainer_create(&t, &tc) == -1 && t == NULL && strstr(sc_error(), "2 views"), "%s", sc_error());
    small_config(&tc);
    tc.batch = 0;
    CHECK(trainer_create(&t, &tc) == -1 && strstr(sc_error(), "batch"), "%s", sc_error());
    small_config(&tc);
    tc.steps_per_epoch = 0;
    CHECK(trainer_create(&t, &tc) == -1, "0 steps per epoch accepted");
}

TEST(features_survive_the_step) {
    /* an online probe reads model_h after trainer_step: backward and update must leave it */
    TrainerConfig tc;
    small_config(&tc);
    Trainer *t;
    SC_ASSERT(!trainer_create(&t, &tc));
    float *x = sc_alloc(sizeof(float) * B * 3 * S * S);
    batch(x, 0);
    int D = model_feature_dim(t->model);
    float *h = sc_alloc(sizeof(float) * B * D);
    trainer_zero_grad(t);
    SC_ASSERT(!trainer_forward(t, x));
    memcpy(h, model_h(t->model), sizeof(float) * B * D);
    TrainStats st;
    SC_ASSERT(trainer_loss(t, NULL, &st) == 0);
    trainer_backward(t);
    SC_ASSERT(!trainer_allreduce(t));
    trainer_update(t, st.lr);
    CHECK(!memcmp(h, model_h(t->model), sizeof(float) * B * D), "h changed by backward/update");
    sc_free(x), sc_free(h);
    trainer_free(t);
}
