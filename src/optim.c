/* optim.c - Adam, AdamW, SGD (momentum, Nesterov), LARS over one flat buffer, the learning-rate
 * schedule and the training option fragment. See optim.h for the update rules.
 * Elementwise updates run in parallel (the result per element does not depend on the thread);
 * the only reductions, LARS's norms, use fixed-size chunks summed in order in double.
 * Not here: gradient clipping, per-group learning rates (every segment shares lr).
 */
#include "optim.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define LARS_CHUNK 4096 /* elements per partial sum of the LARS norms */
#define PAR_MIN 32768   /* segments smaller than this are updated by one thread */

struct Optimizer {
    OptimConfig c;
    size_t n;
    OptimSegment *seg;
    int nseg;
    float *m, *v;    /* (n) first moment / momentum buffer, second moment (Adam) */
    double *partial; /* LARS: 2 partial sums per chunk of the largest segment */
    size_t max_chunks;
    long step;
};

void optim_config_default(OptimConfig *c, int type) {
    memset(c, 0, sizeof *c);
    c->type = type;
    c->momentum = 0.9f;
    c->beta1 = 0.9, c->beta2 = 0.999, c->eps = 1e-8f;
    c->trust_coef = 1e-3f;
}

static int seg_cmp(const void *a, const void *b) {
    const OptimSegment *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

int optim_create(Optimizer **out, const OptimConfig *c, size_t nparams, const OptimSegment *s,
                 int nseg) {
    *out = NULL;
    if (c->type < OPTIM_ADAM || c->type > OPTIM_LARS)
        return sc_error_set("optim.type: unknown optimizer %d, expected one of " OPTIM_CHOICES,
                            c->type);
    if (!(c->weight_decay >= 0) || !isfinite(c->weight_decay))
        return sc_error_set("optim.weight_decay: expected a number >= 0, got %g", c->weight_decay);
    if (!(c->momentum >= 0 && c->momentum < 1))
        return sc_error_set("optim.momentum: expected a number in [0, 1), got %g", c->momentum);
    if (c->nesterov && c->momentum <= 0 && (c->type == OPTIM_SGD || c->type == OPTIM_LARS))
        return sc_error_set("optim.nesterov: needs a momentum > 0");
    if ((c->type == OPTIM_ADAM || c->type == OPTIM_ADAMW) &&
        !(c->beta1 >= 0 && c->beta1 < 1 && c->beta2 >= 0 && c->beta2 < 1 && c->eps > 0))
        return sc_error_set("optimizer: Adam needs betas in [0, 1) and eps > 0 (got %g, %g, %g)",
                            c->beta1, c->beta2, c->eps);
    if (c->type == OPTIM_LARS && !(c->trust_coef > 0))
        return sc_error_set("optimizer: LARS trust coefficient must be > 0, got %g", c->trust_coef);
    if (nseg < 1 || nparams < 1) return sc_error_set("optimizer: no parameters");
    OptimSegment *seg = sc_alloc((size_t)nseg * sizeof *seg);
    memcpy(seg, s, (size_t)nseg * sizeof *seg);
    qsort(seg, nseg, sizeof *seg, seg_cmp);
    size_t at = 0, maxn = 0;
    for (int i = 0; i < nseg; i++) {
        if (seg[i].numel == 0 || seg[i].offset != at || seg[i].numel > nparams - at) {
            sc_free(seg);
            return sc_error_set("optimizer: parameter segments must tile [0, %zu) exactly; "
                                "segment at offset %zu (%zu elements) does not follow %zu",
                                nparams, s[i].offset, s[i].numel, at);
        }
        at += seg[i].numel;
        if (seg[i].numel > maxn) maxn = seg[i].numel;
    }
    if (at != nparams) {
        sc_free(seg);
        return sc_error_set("optimizer: segments cover %zu of %zu parameters", at, nparams);
    }
    Optimizer *o = sc_alloc(sizeof *o);
    o->c = *c, o->n = nparams, o->seg = seg, o->nseg = nseg;
    o->m = sc_alloc(nparams * sizeof(float));
    if (c->type == OPTIM_ADAM || c->type == OPTIM_ADAMW) o->v = sc_alloc(nparams * sizeof(float));
    if (c->type == OPTIM_LARS) {
        o->max_chunks = (maxn + LARS_CHUNK - 1) / LARS_CHUNK;
        o->partial = sc_alloc(2 * o->max_chunks * sizeof(double));
    }
    *out = o;
    return 0;
}

void optim_free(Optimizer *o) {
    if (!o) return;
    sc_free(o->seg), sc_free(o->m), sc_free(o->v), sc_free(o->partial), sc_free(o);
}

int optim_state_tensors(Optimizer *o, OptimState out[2]) {
    out[0] = (OptimState){"m", o->m};
    if (!o->v) return 1;
    out[1] = (OptimState){"v", o->v};
    return 2;
}
long optim_get_step(const Optimizer *o) { return o->step; }
void optim_set_step(Optimizer *o, long step) { o->step = step; }
const OptimConfig *optim_config(const Optimizer *o) { return &o->c; }

/* weight decay of a segment */
static float seg_wd(const Optimizer *o, const OptimSegment *s) {
    if (s->no_decay && (o->c.exclude_bn_bias || o->c.type == OPTIM_LARS)) return 0.0f;
    return o->c.weight_decay;
}

/* ||p|| and ||g + wd p|| of one segment: fixed chunks, double partial sums added in order. */
static void lars_norms(Optimizer *o, const float *p, const float *g, float wd, size_t n,
                       double *pn, double *gn) {
    long nch = (long)((n + LARS_CHUNK - 1) / LARS_CHUNK);
    double *part = o->partial;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (long k = 0; k < nch; k++) {
        size_t a = (size_t)k * LARS_CHUNK, b = a + LARS_CHUNK < n ? a + LARS_CHUNK : n;
        double sp = 0, sg = 0;
        for (size_t i = a; i < b; i++) {
            float gi = g[i] + wd * p[i];
            sp += (double)p[i] * p[i], sg += (double)gi * gi;
        }
        part[2 * k] = sp, part[2 * k + 1] = sg;
    }
    double sp = 0, sg = 0;
    for (long k = 0; k < nch; k++) sp += part[2 * k], sg += part[2 * k + 1];
    *pn = sqrt(sp), *gn = sqrt(sg);
}

static double lars_trust(const Optimizer *o, const OptimSegment *s, double pn, double gn) {
    if (s->no_decay) return 1.0; /* BN and bias: no layer adaptation */
    return pn > 0 && gn > 0 ? o->c.trust_coef * pn / gn : 1.0;
}

/* Adam(W) on n elements: restrict (the four streams never overlap) so that it vectorises;
 * sqrtf without errno (-fno-math-errno for this file, see the Makefile; v >= 0 always) is one
 * vsqrtps: the scalar loop was compute-bound (35 ms for 11.5M parameters on one core against
 * 9-10 ms at memory speed) */
static void adam_range(float *restrict p, float *restrict m, float *restrict v,
                       const float *restrict g, long n, float l2, float shrink, float b1, float b2,
                       float ob1, float ob2, float bc2_sqrt, float eps, float step_size) {
#pragma omp simd
    for (long i = 0; i < n; i++) {
        float gi = g[i] + l2 * p[i];
        float pi = p[i] * shrink;
        float mi = m[i] * b1 + ob1 * gi, vi = v[i] * b2 + ob2 * gi * gi;
        m[i] = mi, v[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] = pi - step_size * (mi / denom);
    }
}

void optim_step(Optimizer *o, float *params, const float *grads, float lr) {
    const OptimConfig *c = &o->c;
    o->step++;
    const long t = o->step;
    /* scalars as torch computes them (python floats, i.e. double), then used in float32 */
    const double bc1 = 1.0 - pow(c->beta1, (double)t), bc2 = 1.0 - pow(c->beta2, (double)t);
    const float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    const float b1 = (float)c->beta1, b2 = (float)c->beta2, ob1 = (float)(1.0 - c->beta1),
                ob2 = (float)(1.0 - c->beta2), eps = c->eps, mu = c->momentum;
    for (int si = 0; si < o->nseg && (c->type == OPTIM_SGD || c->type == OPTIM_LARS); si++) {
        const OptimSegment *s = &o->seg[si];
        /* restrict: the four streams never overlap, so the loops below vectorise */
        float *restrict p = params + s->offset, *restrict m = o->m + s->offset;
        const float *restrict g = grads + s->offset;
        const long n = (long)s->numel;
        const float wd = seg_wd(o, s);
        switch (c->type) {
        case OPTIM_ADAM:
        case OPTIM_ADAMW:
            break; /* all segments at once, below */
        case OPTIM_SGD: {
            const int first = t == 1, nest = c->nesterov;
            if (mu == 0.0f) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
                for (long i = 0; i < n; i++) p[i] -= lr * (g[i] + wd * p[i]);
                break;
            }
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
            for (long i = 0; i < n; i++) {
                float gi = g[i] + wd * p[i];
                float mi = first ? gi : mu * m[i] + gi;
                m[i] = mi;
                p[i] -= lr * (nest ? gi + mu * mi : mi);
            }
            break;
        }
        case OPTIM_LARS: {
            double pn = 0, gn = 0;
            if (!s->no_decay) lars_norms(o, p, g, wd, (size_t)n, &pn, &gn);
            const float slr = (float)(lr * lars_trust(o, s, pn, gn));
            const int nest = c->nesterov;
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
            for (long i = 0; i < n; i++) {
                float gi = g[i] + wd * p[i];
                m[i] = mu * m[i] + slr * gi;
                p[i] -= nest ? mu * m[i] + slr * gi : m[i];
            }
            break;
        }
        }
    }
    if (c->type == OPTIM_ADAM || c->type == OPTIM_ADAMW) {
        /* one parallel region for every segment (one per segment woke the threads ~60 times
         * per ResNet-18 step); each large segment split statically, each small one updated by
         * one thread; elementwise, so the bits do not depend on the thread count */
#pragma omp parallel
        for (int si = 0; si < o->nseg; si++) {
            const OptimSegment *s = &o->seg[si];
            const float wd = seg_wd(o, s);
            const float l2 = c->type == OPTIM_ADAM ? wd : 0.0f;
            const float shrink = c->type == OPTIM_ADAMW ? (float)(1.0 - (double)lr * wd) : 1.0f;
            float *p = params + s->offset, *m = o->m + s->offset, *v = o->v + s->offset;
            const float *g = grads + s->offset;
            const long n = (long)s->numel;
            if (n >= PAR_MIN) {
                const int nt = omp_get_num_threads(), id = omp_get_thread_num();
                /* split at multiples of 16 floats (64 bytes): unaligned halves cost 20-30% */
                long nb = (n + 15) / 16, a = nb * id / nt * 16, b = nb * (id + 1) / nt * 16;
                if (b > n) b = n;
                if (a < b)
                    adam_range(p + a, m + a, v + a, g + a, b - a, l2, shrink, b1, b2, ob1, ob2,
                               bc2_sqrt, eps, step_size);
            } else if (si % omp_get_num_threads() == omp_get_thread_num()) {
                adam_range(p, m, v, g, n, l2, shrink, b1, b2, ob1, ob2, bc2_sqrt, eps, step_size);
            }
        }
    }
}

/* Naive reference: the same rules written plainly, element by element, in double where the
 * fast path uses float scalars; norms summed in one sequential double loop. */
void optim_step_ref(Optimizer *o, float *params, const float *grads, float lr) {
    const OptimConfig *c = &o->c;
    long t = ++o->step;
    for (int si = 0; si < o->nseg; si++) {
        const OptimSegment *s = &o->seg[si];
        double wd = seg_wd(o, s);
        double pn = 0, gn = 0;
        if (c->type == OPTIM_LARS && !s->no_decay) {
            for (size_t j = 0; j < s->numel; j++) {
                size_t i = s->offset + j;
                double gi = grads[i] + wd * params[i];
                pn += (double)params[i] * params[i], gn += gi * gi;
            }
            pn = sqrt(pn), gn = sqrt(gn);
        }
        for (size_t j = 0; j < s->numel; j++) {
            size_t i = s->offset + j;
            double p = params[i], g = grads[i];
            if (c->type == OPTIM_ADAM || c->type == OPTIM_ADAMW) {
                if (c->type == OPTIM_ADAM) g += wd * p;
                else p *= 1.0 - lr * wd;
                o->m[i] = (float)(c->beta1 * o->m[i] + (1 - c->beta1) * g);
                o->v[i] = (float)(c->beta2 * o->v[i] + (1 - c->beta2) * g * g);
                double mh = o->m[i] / (1 - pow(c->beta1, t)), vh = o->v[i] / (1 - pow(c->beta2, t));
                p -= lr * mh / (sqrt(vh) + c->eps);
            } else if (c->type == OPTIM_SGD) {
                g += wd * p;
                if (c->momentum != 0) {
                    o->m[i] = (float)(t == 1 ? g : c->momentum * o->m[i] + g);
                    g = c->nesterov ? g + c->momentum * o->m[i] : o->m[i];
                }
                p -= lr * g;
            } else {
                g += wd * p;
                double slr = lr * lars_trust(o, s, pn, gn);
                o->m[i] = (float)(c->momentum * o->m[i] + slr * g);
                p -= c->nesterov ? c->momentum * o->m[i] + slr * g : o->m[i];
            }
            params[i] = (float)p;
        }
    }
}

/* ---- learning-rate schedule ------------------------------------------------------------- */

double lr_scaled(double lr, int scaling, long batch) {
    switch (scaling) {
    case LR_SCALING_LINEAR: return lr * (double)batch / 256.0;
    case LR_SCALING_SQRT: return lr * sqrt((double)batch);
    default: return lr;
    }
}

int lr_schedule_init(LrSchedule *s, double lr, int scaling, long batch, double warmup_epochs,
                     long warmup_steps, long steps_per_epoch, long total_steps, int schedule) {
    memset(s, 0, sizeof *s);
    if (!(lr >= 0) || !isfinite(lr)) return sc_error_set("schedule.lr: expected a number >= 0, got %g", lr);
    if (batch < 1) return sc_error_set("schedule.batch: expected >= 1, got %ld", batch);
    if (total_steps < 1) return sc_error_set("lr schedule: the run has %ld steps, expected >= 1", total_steps);
    if (scaling < LR_SCALING_NONE || scaling > LR_SCALING_SQRT)
        return sc_error_set("schedule.scaling: expected one of " LR_SCALING_CHOICES);
    if (schedule != LR_COSINE && schedule != LR_CONSTANT)
        return sc_error_set("schedule.kind: expected one of " LR_SCHEDULE_CHOICES);
    long w;
    if (warmup_steps >= 0) w = warmup_steps;
    else {
        if (!(warmup_epochs >= 0)) return sc_error_set("schedule.warmup_epochs: expected >= 0, got %g", warmup_epochs);
        w = (long)(warmup_epochs * (double)steps_per_epoch);
    }
    if (w > total_steps)
        return sc_error_set("schedule.warmup_%s: %ld warmup steps exceed the %ld steps of the run",
                            warmup_steps >= 0 ? "steps" : "epochs", w, total_steps);
    s->base_lr = lr_scaled(lr, scaling, batch);
    s->warmup_steps = w, s->total_steps = total_steps, s->schedule = schedule;
    return 0;
}

float lr_at_step(const LrSchedule *s, long step) {
    if (step < 0) step = 0;
    if (step < s->warmup_steps) return (float)(s->base_lr * (double)(step + 1) / s->warmup_steps);
    if (s->schedule == LR_CONSTANT) return (float)s->base_lr;
    long rest = s->total_steps - s->warmup_steps;
    if (rest <= 0 || step >= s->total_steps) return 0.0f;
    double prog = (double)(step - s->warmup_steps) / rest;
    return (float)(s->base_lr * 0.5 * (1.0 + cos(M_PI * prog)));
}

/* ---- options ---------------------------------------------------------------------------- */

void train_options_default(TrainOptions *t) {
    memset(t, 0, sizeof *t);
    t->optimizer = OPTIM_ADAM;
    t->lr = 3e-4f;
    t->lr_scaling = LR_SCALING_NONE;
    t->momentum = 0.9f;
    t->weight_decay = 1e-4f;
    t->warmup_epochs = 10;
    t->warmup_steps = -1;
    t->schedule = LR_COSINE;
    t->temperature = 0.07f;
}

void train_options_optim_config(const TrainOptions *t, OptimConfig *c) {
    optim_config_default(c, t->optimizer);
    c->momentum = t->momentum;
    c->nesterov = t->nesterov;
    c->weight_decay = t->weight_decay;
    c->exclude_bn_bias = t->exclude_bn_bias;
}
