/* optim.h - optimizers over one contiguous parameter buffer, the learning-rate schedule, and
 * the option fragment shared by every subcommand that trains.
 *
 *     OptimConfig oc;  optim_config_default(&oc, OPTIM_LARS);  oc.weight_decay = 1e-6f;
 *     OptimSegment seg[T];   // one per parameter tensor: offset, numel, no_decay (BN or bias)
 *     Optimizer *opt;  if (optim_create(&opt, &oc, nparams, seg, T)) sc_fatal("%s", sc_error());
 *     LrSchedule sch;  lr_schedule_init(&sch, 0.3f, LR_SCALING_LINEAR, 256, 10, -1, 195, 195*100,
 *                                       LR_COSINE);
 *     for (long step = 0; step < total; step++) {
 *         ...  optim_step(opt, params, grads, lr_at_step(&sch, step));
 *     }
 *
 * Update rules (g = gradient, p = parameter, wd = weight decay, all in float32 like torch):
 *   OPTIM_ADAM   torch.optim.Adam:  g += wd p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *                p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
 *   OPTIM_ADAMW  torch.optim.AdamW: p *= 1 - lr wd; then Adam without the L2 term
 *   OPTIM_SGD    torch.optim.SGD:   g += wd p; buf = g (first step) or mu buf + g;
 *                p -= lr (nesterov ? g + mu buf : buf)
 *   OPTIM_LARS   google-research/simclr lars_optimizer.py (classic momentum):
 *                g += wd p (unless excluded); trust = eta ||p|| / ||g|| (1 when a norm is 0, and
 *                1 for excluded tensors); buf = mu buf + lr trust g;
 *                p -= nesterov ? mu buf + lr trust g : buf
 * A segment with no_decay set is a BN parameter or a bias. It gets no weight decay when
 * exclude_bn_bias is set (any optimizer); with LARS it is ALWAYS excluded from both the weight
 * decay and the trust-ratio adaptation, as in the SimCLR paper and google's code.
 * LARS norms are per segment, accumulated in double in a fixed order of fixed-size chunks, so
 * results do not depend on the thread count.
 */
#ifndef SIMCLR_OPTIM_H
#define SIMCLR_OPTIM_H

#include <stddef.h>


enum { OPTIM_ADAM = 0, OPTIM_ADAMW = 1, OPTIM_SGD = 2, OPTIM_LARS = 3 }; /* --optimizer order */
#define OPTIM_CHOICES "adam|adamw|sgd|lars"

typedef struct {
    size_t offset, numel; /* elements of one parameter tensor in the flat buffer */
    int no_decay;         /* 1 for BN weights/biases and every bias */
} OptimSegment;

typedef struct {
    int type;            /* OPTIM_ADAM | OPTIM_ADAMW | OPTIM_SGD | OPTIM_LARS */
    float momentum;      /* SGD and LARS (0.9) */
    double beta1, beta2; /* Adam(W): 0.9, 0.999 (double: torch computes 1 - beta in double) */
    float eps;           /* Adam(W): 1e-8 */
    float weight_decay;
    float trust_coef;    /* LARS eta: 0.001 */
    int nesterov;        /* SGD and LARS */
    int exclude_bn_bias; /* no weight decay for segments with no_decay (LARS: always) */
} OptimConfig;

typedef struct Optimizer Optimizer;

/* Defaults of the given type: momentum 0.9, betas (0.9, 0.999), eps 1e-8, trust 0.001,
 * weight decay 0, no nesterov, no exclusion. */
void optim_config_default(OptimConfig *c, int type);
/* The segments (any order) must tile [0, nparams) exactly: no gap, no overlap, none empty.
 * The optimizer keeps a copy of them. Returns 0 or -1 with sc_error() set. */
int optim_create(Optimizer **o, const OptimConfig *c, size_t nparams, const OptimSegment *s,
                 int nseg);
void optim_free(Optimizer *o);
/* One update with learning rate lr: params (nparams) -= ..., grads (nparams) is read only.
 * Allocates nothing. */
void optim_step(Optimizer *o, float *params, const float *grads, float lr);

/* ---- state for checkpoints ---- */
typedef struct {
    const char *name; /* "m" (Adam first moment, or the SGD/LARS momentum buffer), "v" */
    float *data;      /* (nparams), aligned element by element with the parameters */
} OptimState;
/* Fills out[0..n) (n <= 2) with the state buffers and returns n: 2 for Adam(W) (m, v), 1 for
 * SGD and LARS (m = momentum buffer). Write into data to restore. */
int optim_state_tensors(Optimizer *o, OptimState out[2]);
long optim_get_step(const Optimizer *o); /* number of updates done */
void optim_set_step(Optimizer *o, long step);
const OptimConfig *optim_config(const Optimizer *o);

/* Naive reference of optim_step (one plain loop per segment, no threads), for the tests. */
void optim_step_ref(Optimizer *o, float *params, const float *grads, float lr);

/* ---- learning-rate schedule ---- */
enum { LR_SCALING_NONE = 0, LR_SCALING_LINEAR = 1, LR_SCALING_SQRT = 2 };
#define LR_SCALING_CHOICES "none|linear|sqrt"
enum { LR_COSINE = 0, LR_CONSTANT = 1 };
#define LR_SCHEDULE_CHOICES "cosine|constant"

typedef struct {
    double base_lr;    /* after scaling */
    long warmup_steps; /* linear warmup */
    long total_steps;  /* all steps of the run */
    int schedule;      /* LR_COSINE | LR_CONSTANT */
} LrSchedule;

/* lr x 1 (none), lr x batch/256 (linear), lr x sqrt(batch) (sqrt). */
double lr_scaled(double lr, int scaling, long batch);
/* warmup_steps >= 0 wins; otherwise warmup = (long)(warmup_epochs * steps_per_epoch).
 * Returns 0, or -1 on negative sizes or a warmup longer than the run. */
int lr_schedule_init(LrSchedule *s, double lr, int scaling, long batch, double warmup_epochs,
                     long warmup_steps, long steps_per_epoch, long total_steps, int schedule);
/* lr of the 0-based step `step` (the update about to be made):
 *   step < W:  base * (step + 1) / W       (google uses base * step / W: its first step has lr 0)
 *   otherwise: cosine: base * 0.5 * (1 + cos(pi * (step - W) / (T - W)))   (T = total_steps;
 *              step T, which is never taken, would have lr 0), constant: base. */
float lr_at_step(const LrSchedule *s, long step);

/* ---- options ---- */
typedef struct {
    int optimizer;        /* OPTIM_* */
    float lr;             /* base learning rate (before scaling) */
    int lr_scaling;       /* LR_SCALING_* */
    float momentum;
    int nesterov;
    float weight_decay;
    int exclude_bn_bias;
    float warmup_epochs;
    long long warmup_steps; /* -1: use warmup_epochs */
    int schedule;         /* LR_* */
    float temperature;    /* NT-Xent tau */
} TrainOptions;

/* sthalles' values: adam, lr 3e-4, no scaling, momentum 0.9, wd 1e-4, warmup 10 epochs,
 * cosine, tau 0.07, no exclusion, no nesterov. */
void train_options_default(TrainOptions *t);
/* OptimConfig of the options (betas, eps, trust coefficient at their defaults). */
void train_options_optim_config(const TrainOptions *t, OptimConfig *c);

#endif
