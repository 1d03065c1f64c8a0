/* train.h - the training step as a library: a Trainer owns the model, the optimizer, the loss
 * workspace, the learning-rate schedule and the position in the data (optimizer steps done),
 * and makes one SimCLR step in one call. `simclr pretrain`, `simclr bench` and the tests use it.
 *
 *     TrainerConfig tc;
 *     trainer_config_default(&tc);                     // resnet18, Adam 3e-4 constant, tau 0.5
 *     tc.model = mc; tc.optim = oc; tc.batch = 256; tc.views = 2; tc.temperature = 0.2f;
 *     tc.seed = seed; tc.steps_per_epoch = bpe;
 *     lr_schedule_init(&tc.schedule, ...);              // or leave the constant default
 *     Trainer *t;
 *     if (trainer_create(&t, &tc)) sc_fatal("%s", sc_error());
 *     if (resuming && trainer_resume(t, "runs/x/last.safetensors", NULL)) sc_fatal(...);
 *     loader_seek(L, trainer_epoch(t), trainer_batch(t));
 *     while (t->step < total) {
 *         const float *x = loader_next(L, &labels);     // (V*N, 3, S, S)
 *         TrainStats st;
 *         int rc = trainer_step(t, x, labels, &st);    // 0 ok, TRAIN_NONFINITE, -1 error
 *         ...
 *     }
 *     trainer_save(t, "runs/x/last.safetensors", config_json);
 *     trainer_free(t);
 *
 * The step, one line per phase (train.c: trainer_step):
 *     trainer_zero_grad(t);                 // model gradients = 0
 *     trainer_forward(t, x);                // encoder + head in training mode (batch BN stats)
 *     trainer_loss(t, labels, &st);         // the loss (NT-Xent, or the pluggable TrainerLoss)
 *     trainer_backward(t);                  // adds into the gradients
 *     trainer_allreduce(t);                 // sums the gradients over processes (a no-op alone)
 *     trainer_update(t, st.lr);             // optimizer step; t->step++
 * Each phase is a public function: a command with another objective composes them itself
 * (see doc/INTERFACES.md, "Trainer").
 *
 * A non-finite loss stops before the backward: trainer_step returns TRAIN_NONFINITE with the
 * stats filled in, no update is made and t->step is unchanged (the caller reports and stops).
 *
 * Errors (return -1, sc_error() set) describe the library's values, not command-line options;
 * the commands prefix them with the option names.
 */
#ifndef SIMCLR_TRAIN_H
#define SIMCLR_TRAIN_H

#include <stdint.h>

#include "checkpoint.h"
#include "comm.h"
#include "model.h"
#include "ntxent.h"
#include "optim.h"

typedef struct Trainer Trainer;

typedef struct {
    float loss;  /* mean loss over the global batch */
    float top1;  /* contrastive (or classification) accuracy in [0,1] */
    float top5;
    float lr;    /* learning rate of this step's update */
} TrainStats;

/* A pluggable loss: reads the forward's outputs (model_z / model_h of t->model, rows
 * trainer_rows(t)) and the batch labels (may be NULL), writes the gradient the backward starts
 * from into grad (rows x out_dim for from_h == 0, rows x feature dim for from_h != 0), and the
 * global loss / accuracies into st. Returns 0 or -1 (sc_error set). */
typedef struct {
    int (*fn)(void *ctx, Trainer *t, const int *labels, float *grad, TrainStats *st);
    void *ctx;
    int from_h; /* 1: the backward starts at h (model_backward_h): the head is not trained */
} TrainerLoss;

typedef struct {
    ModelConfig model;
    OptimConfig optim;
    LrSchedule schedule;    /* lr_at_step(schedule, step) for the update of step `step` */
    int batch;              /* N: images per step (the global batch) */
    int views;              /* V >= 2 for NT-Xent: rows per step B = V*N, view v of image i at
                               row v*N + i */
    float temperature;      /* NT-Xent tau */
    uint64_t seed;          /* parameter init (and the seed recorded in checkpoints) */
    long steps_per_epoch;   /* loader batches per epoch: the position of step s is epoch
                               s / steps_per_epoch, batch s % steps_per_epoch (>= 1) */
    TrainerLoss loss;       /* fn == NULL: NT-Xent over z with `temperature` */
    long debug_nan_step;    /* the loss of this 0-based step is made NaN (tests; -1: never) */
    Comm *comm;             /* borrowed; NULL or size 1: one process. With P processes every
                               process holds N/P images (batch % P == 0) of each global batch,
                               in rank order, and trainer_step takes its V*N/P rows */
} TrainerConfig;

/* The Trainer's state is public (llm.c style): read it freely, change it only through the
 * functions below. */
struct Trainer {
    TrainerConfig cfg;
    Model *model;
    Optimizer *opt;
    Ntxent *ntxent;       /* NULL with a pluggable loss */
    float *grad;          /* (rows, out_dim or feature dim): the loss's gradient */
    long step;            /* optimizer steps done (= global batches consumed) */
    int rows;             /* rows of this process's batch: V*N/P */
    OptimSegment *seg;    /* one per parameter tensor (BN/bias marked no_decay) */
    int nseg;
    CkTensor *extra;      /* more state saved and resumed with the run (trainer_set_extra_state) */
    int nextra;
    /* multi-process state (P > 1) */
    int rank, world;      /* this process, P */
    float *zcols, *dzcols;/* (V*N, out_dim): gathered z of the global batch, its gradient */
    int *ids;             /* (V*N): the image of every gathered column */
    BnSync bn_sync;
};

/* resnet18 (model_config_default), Adam defaults (optim_config_default), constant lr 3e-4
 * schedule, batch 256, views 2, tau 0.5, seed 0, one step per epoch, NT-Xent, no NaN step. */
void trainer_config_default(TrainerConfig *c);
/* Builds the model (initialised from cfg->seed), the optimizer over every parameter tensor
 * (BN weights/biases and biases as no_decay segments) and the loss workspace. Call
 * sc_set_threads() first (the model plans its primitives for that thread count). */
int trainer_create(Trainer **t, const TrainerConfig *cfg);
void trainer_free(Trainer *t);

/* One training step on x (rows, 3, S, S); labels (N) may be NULL. Returns 0, TRAIN_NONFINITE
 * (the loss is NaN or infinite: stats filled in, nothing updated), or -1 with sc_error(). */
enum { TRAIN_NONFINITE = 1 };
int trainer_step(Trainer *t, const float *x, const int *labels, TrainStats *st);

/* ---- the phases of trainer_step, for commands that compose their own step ---- */
void trainer_zero_grad(Trainer *t);
/* x must stay valid and unchanged until trainer_backward (model_forward). */
int trainer_forward(Trainer *t, const float *x);
/* Runs cfg.loss (or NT-Xent) into t->grad; fills st (lr included). Returns 0, TRAIN_NONFINITE
 * or -1. */
int trainer_loss(Trainer *t, const int *labels, TrainStats *st);
void trainer_backward(Trainer *t);
/* Sums the parameter gradients over the processes of a multi-process run; 0 alone. */
int trainer_allreduce(Trainer *t);
/* Optimizer update with learning rate lr, then t->step++. */
void trainer_update(Trainer *t, float lr);

/* ---- schedule and position ---- */
float trainer_lr(const Trainer *t);      /* lr of the next update: lr_at_step(schedule, step) */
long trainer_epoch(const Trainer *t);    /* loader position of the next step: epoch (0-based) */
long trainer_batch(const Trainer *t);    /* ... and batch within it */
int trainer_rows(const Trainer *t);      /* rows of the batch trainer_step expects (V*N) */

/* ---- multi-process ---- */
/* Copies rank 0's complete state (parameters, BN statistics, counters, optimizer state, step)
 * to every process. A no-op alone. */
int trainer_broadcast(Trainer *t);

/* ---- save / resume ---- */
/* Writes model, optimizer state, step, position, seed and config_json (may be NULL)
 * atomically to path. */
int trainer_save(Trainer *t, const char *path, const char *config_json);
/* Loads model and optimizer state from a checkpoint of trainer_save and sets t->step from it.
 * meta (may be NULL) receives the metadata (ck_meta_free it). With P processes, rank 0 reads
 * the file and broadcasts the state (only rank 0 needs the file; meta is rank 0's). */
int trainer_resume(Trainer *t, const char *path, CkMeta *meta);
/* More tensors that trainer_save writes and trainer_resume reads back (borrowed: they must
 * outlive the Trainer), e.g. the online probe's state (probe_state). */
void trainer_set_extra_state(Trainer *t, CkTensor *extra, int n);

#endif
