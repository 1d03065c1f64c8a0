/* train.c - the Trainer: one SimCLR training step, its phases, save and resume (see train.h).
 *
 * What it deliberately does not do: read data (the caller hands it the batch, so `bench` feeds
 * random inputs and `pretrain` the loader's), print, log or decide when to checkpoint.
 */
#include "train.h"

#include <math.h>
#include <stdio.h>
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

static int bn_allreduce(void *ctx, double *buf, size_t n) {
    int rc = comm_allreduce_f64(ctx, buf, n);
    if (rc) { /* inside a layer: nothing to return to; the job ends with the reason */
        fprintf(stderr, "simclr: error: synchronized batch norm: %s\n", sc_error());
        comm_abort(ctx, 1);
    }
    return 0;
}

int trainer_create(Trainer **out, const TrainerConfig *cfg) {
    *out = NULL;
    int P = cfg->comm ? comm_size(cfg->comm) : 1;
    if (cfg->batch < 1) return sc_error_set("trainer: batch size must be >= 1, got %d", cfg->batch);
    if (cfg->views < 1 || (!cfg->loss.fn && cfg->views < 2))
        return sc_error_set("trainer: NT-Xent needs at least 2 views per image, got %d", cfg->views);
    if (cfg->steps_per_epoch < 1)
        return sc_error_set("trainer: steps per epoch must be >= 1, got %ld", cfg->steps_per_epoch);
    if ((long long)cfg->batch * cfg->views > (1 << 24))
        return sc_error_set("trainer: %d images x %d views is too large a batch", cfg->batch,
                            cfg->views);
    if (cfg->batch % P)
        return sc_error_set("the batch of %d images cannot be split evenly over %d processes "
                            "(give a multiple of %d)", cfg->batch, P, P);
    Trainer *t = sc_alloc(sizeof *t);
    memset(t, 0, sizeof *t);
    t->cfg = *cfg;
    t->world = P;
    t->rank = cfg->comm ? comm_rank(cfg->comm) : 0;
    t->rows = cfg->batch / P * cfg->views;
    if (model_create(&t->model, &cfg->model, t->rows, cfg->seed)) goto fail;
    if (P > 1) {
        t->bn_sync = (BnSync){bn_allreduce, cfg->comm, P};
        model_set_bn_sync(t->model, &t->bn_sync);
    }
    int nt = model_num_tensors(t->model);
    t->seg = sc_alloc((size_t)(nt > 0 ? nt : 1) * sizeof *t->seg);
    for (int i = 0; i < nt; i++) {
        const ModelTensor *mt = model_tensor(t->model, i);
        if (mt->kind != MODEL_PARAM) continue;
        t->seg[t->nseg++] = (OptimSegment){mt->offset, mt->numel, mt->is_bn_or_bias};
    }
    if (optim_create(&t->opt, &cfg->optim, model_num_params(t->model), t->seg, t->nseg)) goto fail;
    int gdim = cfg->loss.from_h ? model_feature_dim(t->model) : model_out_dim(t->model);
    int C = cfg->batch * cfg->views; /* columns: the global batch */
    if (!cfg->loss.fn && ntxent_create(&t->ntxent, t->rows, C, gdim)) goto fail;
    t->grad = sc_alloc((size_t)t->rows * gdim * sizeof(float));
    if (P > 1 && !cfg->loss.fn) {
        t->zcols = sc_alloc((size_t)C * gdim * sizeof(float));
        t->dzcols = sc_alloc((size_t)C * gdim * sizeof(float));
        t->ids = sc_alloc((size_t)C * sizeof(int));
        /* column p*R + v*n + i is view v of image i of process p: global image p*n + i */
        int n = cfg->batch / P, R = t->rows;
        for (int p = 0; p < P; p++)
            for (int v = 0; v < cfg->views; v++)
                for (int i = 0; i < n; i++) t->ids[p * R + v * n + i] = p * n + i;
    }
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
    sc_free(t->zcols);
    sc_free(t->dzcols);
    sc_free(t->ids);
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

/* NT-Xent over the global batch: gather every process's z, take this process's rows against
 * all columns, send the columns' gradients back to their owners, sum the statistics. */
static int ntxent_global(Trainer *t, TrainStats *st) {
    Comm *c = t->cfg.comm;
    int D = model_out_dim(t->model), R = t->rows, C = R * t->world;
    if (comm_allgather_f32(c, model_z(t->model), (size_t)R * D, t->zcols)) return -1;
    NtxentStats ns;
    if (ntxent_loss_rows(t->ntxent, t->zcols, C, t->rank * R, R, t->ids, t->cfg.views, D,
                         t->cfg.temperature, t->grad, t->dzcols, &ns))
        return -1;
    if (comm_reduce_scatter_add_f32(c, t->dzcols, t->grad, (size_t)R * D)) return -1;
    double s[3] = {ns.loss, ns.top1, ns.top5};
    if (comm_allreduce_f64(c, s, 3)) return -1;
    st->loss = (float)s[0], st->top1 = (float)s[1], st->top5 = (float)s[2];
    return 0;
}

int trainer_loss(Trainer *t, const int *labels, TrainStats *st) {
    memset(st, 0, sizeof *st);
    if (t->cfg.loss.fn) {
        if (t->cfg.loss.fn(t->cfg.loss.ctx, t, labels, t->grad, st)) return -1;
    } else if (t->world > 1) {
        if (ntxent_global(t, st)) return -1;
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

int trainer_allreduce(Trainer *t) {
    if (t->world <= 1) return 0;
    return comm_allreduce_f32(t->cfg.comm, model_grads(t->model), model_num_params(t->model));
}

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

int trainer_broadcast(Trainer *t) {
    if (t->world <= 1) return 0;
    Comm *c = t->cfg.comm;
    Model *m = t->model;
    if (comm_bcast(c, model_params(m), model_num_params(m) * sizeof(float), 0) ||
        comm_bcast(c, model_buffers(m), model_num_buffers(m) * sizeof(float), 0) ||
        comm_bcast(c, model_counters(m), model_num_counters(m) * sizeof(int64_t), 0))
        return -1;
    OptimState os[2];
    int ns = optim_state_tensors(t->opt, os);
    for (int k = 0; k < ns; k++)
        if (comm_bcast(c, os[k].data, model_num_params(m) * sizeof(float), 0)) return -1;
    for (int k = 0; k < t->nextra; k++) { /* a resumed online probe: the same everywhere */
        const CkTensor *e = &t->extra[k];
        size_t n = e->dtype == ST_I64 ? sizeof(int64_t) : sizeof(float);
        for (int d = 0; d < e->ndim; d++) n *= (size_t)e->shape[d];
        if (comm_bcast(c, e->data, n, 0)) return -1;
    }
    long steps[2] = {t->step, optim_get_step(t->opt)};
    if (comm_bcast(c, steps, sizeof steps, 0)) return -1;
    t->step = steps[0];
    optim_set_step(t->opt, steps[1]);
    return 0;
}

int trainer_resume(Trainer *t, const char *path, CkMeta *meta) {
    CkMeta m = {0};
    int rc = 0;
    if (t->rank == 0) {
        rc = checkpoint_load_extra(path, t->model, t->opt, &m, t->extra, t->nextra);
        if (!rc && m.step < 0) {
            ck_meta_free(&m);
            rc = sc_error_set("%s: negative step %ld in the checkpoint", path, m.step);
        }
        if (!rc) t->step = m.step;
    }
    if (t->world > 1) {
        if (comm_bcast(t->cfg.comm, &rc, sizeof rc, 0)) return -1;
        if (rc && t->rank != 0) return sc_error_set("%s: process 0 could not load it", path);
    }
    if (rc) return -1;
    if (trainer_broadcast(t)) {
        if (t->rank == 0) ck_meta_free(&m);
        return -1;
    }
    if (meta) *meta = m;
    else ck_meta_free(&m);
    return 0;
}
