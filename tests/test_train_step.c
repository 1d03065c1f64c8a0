/* test_train_step.c - one full SimCLR training step, model + NT-Xent + optimizer, against
 * PyTorch (tools/make_opt_fixtures.py, joint_fixture): a ResNet-18 at width 1/16 (32 px,
 * imagenet stem) with the default head Linear(d,d), ReLU, Linear(d,128), N = 4 images x 2 views,
 * tau 0.5. Checks the loss, every parameter gradient, and the parameters after one step of
 * Adam, AdamW, SGD-Nesterov and LARS with the Trainer's BN/bias segments. The gradients come
 * from the Trainer's phases (src/train.h: zero-grad, forward, loss, backward).
 * (Width 1/16 rather than 1/8 keeps the six parameter-sized fixtures near 1.2 MB.) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "model.h"
#include "npy.h"
#include "ntxent.h"
#include "optim.h"
#include "test.h"
#include "train.h"

static float *load(const char *file, size_t *count) {
    char rel[256];
    snprintf(rel, sizeof rel, "opt/joint_r18/%s", file);
    float *d = NULL;
    int64_t shape[8];
    int nd = 0;
    if (npy_load_f32(fixture_path(rel), &d, shape, &nd)) {
        CHECK(0, "cannot load %s: %s", rel, sc_error());
        return NULL;
    }
    size_t n = 1;
    for (int i = 0; i < nd; i++) n *= shape[i];
    if (count) *count = n;
    return d;
}

static double maxabs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

typedef struct {
    Trainer *t;
    Model *m;
    float *p0, *gt; /* torch's initial params and gradients */
    OptimSegment *seg; /* the Trainer's: one per parameter tensor */
    int nseg;
    size_t P;
} Step;

/* Builds a Trainer with torch's weights, runs its phases zero-grad, forward, loss, backward. */
static int setup(Step *s) {
    memset(s, 0, sizeof *s);
    size_t nb, nx;
    float *b0 = load("buffers0.npy", &nb), *x = load("x.npy", &nx), *out = load("out.npy", NULL);
    s->p0 = load("params0.npy", &s->P);
    s->gt = load("grads.npy", NULL);
    if (!b0 || !x || !out || !s->p0 || !s->gt) return -1;
    TrainerConfig tc;
    trainer_config_default(&tc);
    tc.model.width = 0.0625f, tc.model.image_size = 32, tc.model.head_layers = 2,
    tc.model.out_dim = 128;
    tc.batch = (int)out[1], tc.views = (int)out[2], tc.temperature = out[3];
    if (trainer_create(&s->t, &tc)) { CHECK(0, "trainer_create: %s", sc_error()); return -1; }
    s->m = s->t->model, s->seg = s->t->seg, s->nseg = s->t->nseg;
    CHECK(s->P == model_num_params(s->m), "%zu params in the fixture, %zu in the model", s->P,
          model_num_params(s->m));
    CHECK(nb == model_num_buffers(s->m), "buffer count");
    if (s->P != model_num_params(s->m) || nb != model_num_buffers(s->m)) return -1;
    /* parameters and buffers are both in state_dict order, without gaps, in torch and in C */
    memcpy(model_params(s->m), s->p0, s->P * 4);
    memcpy(model_buffers(s->m), b0, nb * 4);
    int np = 0;
    for (int i = 0; i < model_num_tensors(s->m); i++) {
        const ModelTensor *t = model_tensor(s->m, i);
        if (t->kind != MODEL_PARAM) continue;
        CHECK(t->is_bn_or_bias == (t->ndim == 1), "%s: is_bn_or_bias %d", t->name, t->is_bn_or_bias);
        CHECK(np < s->nseg && s->seg[np].offset == t->offset && s->seg[np].numel == t->numel &&
                  s->seg[np].no_decay == t->is_bn_or_bias,
              "%s: the Trainer's segment %d", t->name, np);
        np++;
    }
    CHECK(s->nseg == np, "%d parameter segments for %d parameter tensors", s->nseg, np);
    trainer_zero_grad(s->t);
    CHECK(!trainer_forward(s->t, x), "forward: %s", sc_error());
    TrainStats st;
    CHECK(!trainer_loss(s->t, NULL, &st), "%s", sc_error());
    /* loss: rtol 1e-5 (measured 1.2e-7 relative) */
    CHECK_CLOSE("loss", st.loss, out[0], 1e-5, 1e-7);
    trainer_backward(s->t);
    free(b0), free(x), free(out);
    return 0;
}

static void teardown(Step *s) {
    trainer_free(s->t);
    free(s->p0), free(s->gt);
}

TEST(simclr_step_loss_and_every_gradient) {
    Step s;
    if (setup(&s)) { teardown(&s); return; }
    const float *g = model_grads(s.m);
    /* per tensor: rtol 1e-3, atol 1e-4 x max|grad| of the tensor (gradients through small-batch
     * BN; every tensor measured within rtol 1e-3 + 1e-5 x max) */
    for (int i = 0; i < model_num_tensors(s.m); i++) {
        const ModelTensor *t = model_tensor(s.m, i);
        if (t->kind != MODEL_PARAM) continue;
        char what[128];
        snprintf(what, sizeof what, "grad %s", t->name);
        CHECK_ARRAY_CLOSE(what, g + t->offset, s.gt + t->offset, t->numel, 1e-3,
                          1e-4 * maxabs(s.gt + t->offset, t->numel) + 1e-9);
    }
    teardown(&s);
}

static void check_step(Step *s, const char *name, int type, float lr, float wd, int excl) {
    OptimConfig c;
    optim_config_default(&c, type);
    c.weight_decay = wd, c.exclude_bn_bias = excl, c.nesterov = type == OPTIM_SGD;
    char file[64], what[160];
    snprintf(file, sizeof file, "step_%s.npy", name);
    float *want = load(file, NULL);
    if (!want) return;
    /* (a) our optimizer on torch's gradients: the update rule alone, rtol 1e-5, atol 1e-7 */
    Optimizer *o;
    SC_ASSERT(!optim_create(&o, &c, s->P, s->seg, s->nseg));
    float *p = malloc(s->P * 4);
    memcpy(p, s->p0, s->P * 4);
    optim_step(o, p, s->gt, lr);
    snprintf(what, sizeof what, "%s step on torch's gradients", name);
    CHECK_ARRAY_CLOSE(what, p, want, s->P, 1e-5, 1e-7);
    optim_free(o);
    /* (b) the whole C step (our gradients). Per tensor, atol = lr-scaled gradient tolerance:
     *   SGD/LARS: the update is linear in g: atol = 2 x (1 + mu) x lr x trust x 1e-3 max|g|;
     *   Adam(W): the first update is lr x g / (|g| + eps), i.e. about lr x sign(g): elements
     *   whose torch gradient is below 1e-2 max|g| of their tensor (sign not determined by a
     *   1e-3 gradient tolerance) are skipped, the others must match to 1e-6 + 1e-3 x lr. */
    SC_ASSERT(!optim_create(&o, &c, s->P, s->seg, s->nseg));
    memcpy(p, model_params(s->m), s->P * 4);
    optim_step(o, p, model_grads(s->m), lr);
    for (int i = 0; i < s->nseg; i++) {
        const OptimSegment *sg = &s->seg[i];
        const float *gt = s->gt + sg->offset, *pw = want + sg->offset, *pg = p + sg->offset;
        double gmax = maxabs(gt, sg->numel);
        size_t bad = 0, worst = 0;
        double worst_err = -1;
        for (size_t k = 0; k < sg->numel; k++) {
            double err = fabs(pg[k] - pw[k]), tol;
            if (type == OPTIM_ADAM || type == OPTIM_ADAMW) {
                if (fabs(gt[k]) < 1e-2 * gmax) continue;
                tol = 1e-6 + 1e-3 * lr;
            } else {
                tol = 1e-7 + 2 * 1.9 * lr * 1e-3 * gmax; /* trust <= 1 for LARS here */
            }
            if (err > tol) {
                bad++;
                if (err > worst_err) worst_err = err, worst = k;
            }
        }
        CHECK(bad == 0, "%s full step, segment %d (offset %zu): %zu elements differ, worst [%zu] got "
              "%.9g want %.9g", name, i, sg->offset, bad, worst, pg[worst], pw[worst]);
    }
    optim_free(o);
    free(p), free(want);
}

TEST(simclr_step_then_each_optimizer) {
    Step s;
    if (setup(&s)) { teardown(&s); return; }
    /* the hyperparameters of JOINT_OPTS in tools/make_opt_fixtures.py */
    check_step(&s, "adam", OPTIM_ADAM, 1e-3f, 1e-4f, 0);
    check_step(&s, "adamw", OPTIM_ADAMW, 1e-3f, 0.05f, 1);
    check_step(&s, "sgd_nesterov", OPTIM_SGD, 0.1f, 5e-4f, 1);
    check_step(&s, "lars", OPTIM_LARS, 0.5f, 1e-6f, 1);
    teardown(&s);
}
