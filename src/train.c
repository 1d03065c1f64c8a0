/* train.c - the Trainer: one SimCLR training step, its phases, save and resume (see train.h).
 *
 * What it deliberately does not do: read data (the caller hands it the batch, so `bench` feeds
 * random inputs and `pretrain` the loader's), print, log or decide when to checkpoint.
 */
#include "train.h"

#include <math.h>
#include <string.h>

#include "common.h"

void trainer_config_default(TrainerConfig *c) {
    memset(c, 0, sizeof *c);
    model_config_default(&c->model);
    optim_config_default(&c->optim, OPTIM_ADAM);
    c->schedule = (LrSchedule){.base_lr = 3e-4, .warmup_steps = 0, .total_steps = 1,
                               .schedule = LR_CONSTANT};
    c->batch = 256;
    c->views = 2;
    c->temperature = 0.5f;
    c->seed = 0;
    c->steps_per_epoch = 1;
    c->debug_nan_step = -1;
}

int trainer_create(Trainer **out, const TrainerConfig *cfg) {
    *out = NULL;
    if (cfg->batch < 1) return sc_error_set("trainer: batch size must be >= 1, got %d", cfg->batch);
    if (cfg->views < 1 || (!cfg->loss.fn && cfg->views < 2))
        return sc_error_set("trainer: NT-Xent needs at least 2 views per image, got %d", cfg->views);
    if (cfg->steps_per_epoch < 1)
        return sc_error_set("trainer: steps per epoch must be >= 1, got %ld", cfg->steps_per_epoch);
    if ((long long)cfg->batch * cfg->views > (1 << 24))
        return sc_error_set("trainer: %d images x %d views is too large a batch", cfg->batch,
                            cfg->views);
    Trainer *t = sc_alloc(sizeof *t);
    memset(t, 0, sizeof *t);
    t->cfg = *cfg;
    t->rows = cfg->batch * cfg->views;
    if (model_create(&t->model, &cfg->model, t->rows, cfg->seed)) goto fail;
    int nt = model_num_tensors(t->model);
    t->seg = sc_alloc((size_t)(nt > 0 ? nt : 1) * sizeof *t->seg);
    for (int i = 0; i < nt; i++) {
        const ModelTensor *mt = model_tensor(t->model, i);
        if (mt->kind != MODEL_PARAM) continue;
        t->seg[t->nseg++] = (OptimSegment){mt->offset, mt->numel, mt->is_bn_or_bias};
    }
    if (optim_create(&t->opt, &cfg->optim, model_num_params(t->model), t->seg, t->nseg)) goto fail;
    int gdim = cfg->loss.from_h ? model_feature_dim(t->model) : model_out_dim(t->model);
    if (!cfg->loss.fn && ntxent_create(&t->ntxent, t->rows, t->rows, gdim)) goto fail;
    t->grad = sc_alloc((size_t)t->rows * gdim * sizeof(float));
    *out = t;
    return 0;
fail:
    trainer_free(t);
    return -1;
}

void trainer_free(Trainer *t) {
    if (!t) return;
    if (t->ntxent) ntxent_free(t->ntxent);
    if (t->opt) optim_free(t->opt);
    if (t->model) model_free(t->model);
    sc_free(t->grad);
    sc_free(t->seg);
    sc_free(t);
}

/* ---- the step -------------------------------------------------------------------------------- */

int trainer_step(Trainer *t, const float *x, const int *labels, TrainStats *st) {
    trainer_zero_grad(t);
    if (trainer_forward(t, x)) return -1;
    int rc = trainer_loss(t, labels, st);
    if (rc) return rc; /* -1, or TRAIN_NONFINITE: no backward, no update */
    trainer_backward(t);
    if (trainer_allreduce(t)) return -1;
    trainer_update(t, st->lr);
    return 0;
}

void trainer_zero_grad(Trainer *t) { model_zero_grad(t->model); }

int trainer_forward(Trainer *t, const float *x) { return model_forward(t->model, x, t->rows, 1); }

int trainer_loss(Trainer *t, const int *labels, TrainStats *st) {
    memset(st, 0, sizeof *st);
    if (t->cfg.loss.fn) {
        if (t->cfg.loss.fn(t->cfg.loss.ctx, t, labels, t->grad, st)) return -1;
    } else {
        NtxentStats ns;
        if (ntxent_loss(t->ntxent, model_z(t->model), t->cfg.batch, t->cfg.views,
                        model_out_dim(t->model), t->cfg.temperature, t->grad, &ns))
            return -1;
        st->loss = ns.loss, st->top1 = ns.top1, st->top5 = ns.top5;
    }
    if (t->step == t->cfg.debug_nan_step) st->loss = NAN;
    st->lr = trainer_lr(t);
    return isfinite(st->loss) ? 0 : TRAIN_NONFINITE;
}

void trainer_backward(Trainer *t) {
    if (t->cfg.loss.from_h) model_backward_h(t->model, t->grad);
    else model_backward(t->model, t->grad);
}

int trainer_allreduce(Trainer *t) { return 0; }

void trainer_update(Trainer *t, float lr) {
    optim_step(t->opt, model_params(t->model), model_grads(t->model), lr);
    t->step++;
}

/* ---- schedule and position ------------------------------------------------------------------- */

float trainer_lr(const Trainer *t) { return lr_at_step(&t->cfg.schedule, t->step); }
long trainer_epoch(const Trainer *t) { return t->step / t->cfg.steps_per_epoch; }
long trainer_batch(const Trainer *t) { return t->step % t->cfg.steps_per_epoch; }
int trainer_rows(const Trainer *t) { return t->rows; }

/* ---- save / resume --------------------------------------------------------------------------- */

int trainer_save(Trainer *t, const char *path, const char *config_json) {
    CkMeta meta = {.step = t->step, .epoch = trainer_epoch(t), .batch = trainer_batch(t),
                   .seed = t->cfg.seed, .config_json = (char *)config_json};
    return checkpoint_save_extra(path, t->model, t->opt, &meta, t->extra, t->nextra);
}

void trainer_set_extra_state(Trainer *t, CkTensor *extra, int n) {
    t->extra = extra;
    t->nextra = n;
}

int trainer_resume(Trainer *t, const char *path, CkMeta *meta) {
    CkMeta m = {0};
    if (checkpoint_load_extra(path, t->model, t->opt, &m, t->extra, t->nextra)) return -1;
    if (m.step < 0) {
        ck_meta_free(&m);
        return sc_error_set("%s: negative step %ld in the checkpoint", path, m.step);
    }
    t->step = m.step;
    if (meta) *meta = m;
    else ck_meta_free(&m);
    return 0;
}
