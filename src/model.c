/* model.c - builds and runs the ResNet encoder + projection head (see model.h).
 *
 * Activations are channels-last (B, H, W, C) from the first conv to the global pool, the layout
 * oneDNN's convolutions run on directly, so no activation is ever reordered; the images are
 * converted from NCHW once at the input. Batch norm, ReLU and the residual add are fused into
 * one pass (layers.c). Saved for the backward pass, per conv+BN unit: the conv output c and,
 * when a ReLU follows inside a block, the BN+ReLU output a; per block its output.
 */
#include "model.h"

#include <dnnl.h>
#include <math.h>
#include <omp.h>
#include <string.h>
#include <time.h>

#include <stdlib.h>

#include "bf16.h"
#include "common.h"
#include "conv.h"
#include "peak.h"
#include "layers.h"
#include "rng.h"

#define NCACHE 3 /* conv primitive sets kept per unit, one per batch size seen */
#define MAX_TENSORS 512
#define MAX_HEAD 16

enum { INIT_NONE, INIT_CONV, INIT_UNIFORM, INIT_ONE, INIT_ZERO };

typedef struct {
    ConvShape shape; /* at max_batch */
    Conv *conv[NCACHE];
    int conv_B[NCACHE], nconv, next_evict;
    int t_w, t_bn;   /* tensor index of the conv weight, of the BN weight (bias +1, mean +2,
                        var +3, num_batches_tracked +4) */
    void *c;         /* conv output, of type dt (the only activation kept per unit) */
    float *mean, *rstd;
} Unit;

typedef struct {
    int I, O, bn, relu;
    int fixed_shift;    /* output BN of head-bn all: the BN shift stays 0 (gradient dropped) */
    int t_w, t_b, t_bn; /* t_b -1 without bias; t_bn -1 without BN */
    float *u, *r;       /* linear output (B,O); post BN/ReLU output (B,O) for hidden layers */
    float *mean, *rstd;
} HeadLayer;

struct Model {
    ModelConfig cfg;
    ResNetSpec spec;
    int max_batch, B; /* B of the last forward */
    int training;     /* of the last forward */
    int dt;           /* activations: DT_F32, or DT_BF16 (cfg.precision bf16) */
    size_t act_bytes; /* bytes of activation and gradient buffers (memory per view x max_batch) */
    ModelTensor tensors[MAX_TENSORS];
    unsigned char init[MAX_TENSORS];
    float init_arg[MAX_TENSORS];
    int ntensors;
    size_t nparams, nbuffers, ncounters;
    float *params, *grads, *buffers;
    int64_t *counters;
    Unit units[RESNET_MAX_UNITS];
    const float *x;              /* the last forward's images (B,3,S,S), the caller's: converted
                                    to (B,S,S,3) of type dt into xa for the first conv's forward,
                                    and again in the backward for its weight gradient */
    void *xa;                    /* block inputs (B * max activation, type dt): the forward's
                                    ping-pong with g[1]; in the backward the recomputed input of
                                    the current block; the images' NHWC copy for the first conv */
    uint8_t *argmax;             /* the stem's max pool (B,PH,PW,C) */
    void *stem_out;              /* bf16 with a max pool: the pooled stem output (B,PH,PW,C),
                                    kept for the backward (NULL: recomputed, as in fp32) */
    float *stem_work;            /* the fused stem forward's rows, one slice per thread */
    int stem_threads;            /* threads stem_work has slices for (those of model_create) */
    float *h, *dh;               /* (B,D) */
    HeadLayer head[MAX_HEAD];
    int nhead;
    float *hs[2];                /* head gradient scratch (B, max width) */
    float *g[3];                 /* encoder gradient / scratch buffers (B * max activation) */
    int bwd_ready;               /* a training forward ran and no backward consumed it yet */
    void *gb;                    /* bf16 only: the gradient going into a conv (B * max act.) */
    void *ascratch;             /* BN+ReLU outputs inside blocks: written in the forward, read by
                                    the next conv, recomputed from the conv output in backward */
    size_t act_max;              /* floats per row of the largest activation */
    void *scratch;               /* oneDNN scratchpad */
    size_t scratch_bytes;
    void *wshared;               /* every conv's weights in its primitives' layout, one conv at a
                                    time (conv_share_weights) */
    size_t wshared_bytes;
    float *wtmp;
    size_t wtmp_floats;
    double *partials;
    const BnSync *bn_sync;       /* synchronized BN over processes (NULL: this batch alone) */
};

/* ---- optional phase timers (model_profile) ---------------------------------------------------- */

static double g_prof[MODEL_PROF_N], g_prof_unit[RESNET_MAX_UNITS][3], g_prof_busy[MODEL_PROF_N];
static int g_prof_on;
static const char *const g_prof_names[MODEL_PROF_N] = {
    "conv forward", "conv backward data", "conv backward weights", "batch norm forward",
    "batch norm backward", "pool/input/add", "head"};
/* wall time, or with SIMCLR_PROFILE_CPU=1 the CPU time of the process (all threads; run with
 * OMP_WAIT_POLICY=passive so that waiting threads do not count): on a machine shared with other
 * jobs, the work each phase does rather than how long it waited for a core. SIMCLR_PROFILE_CPU=2:
 * the critical path instead, each phase's largest CPU time of one OpenMP thread (what the phase
 * would take on idle cores, idle threads included), and in g_prof_busy the CPU time of all of
 * them; the ratio is how many cores the phase keeps busy, robust to other jobs' load. */
static int g_prof_cpu;
static double g_crit_clock, g_thr_cpu[64], g_thr_sum;
static double thread_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
/* mode 2: advances g_crit_clock by the largest per-thread CPU time since the last call */
static double crit_now(void) {
    double t[64] = {0};
    int n = 1;
#pragma omp parallel
    {
        int i = omp_get_thread_num();
        if (i < 64) t[i] = thread_cpu();
#pragma omp single
        n = omp_get_num_threads();
    }
    if (n > 64) n = 64;
    double mx = 0, sum = 0;
    for (int i = 0; i < n; i++) {
        double d = t[i] - g_thr_cpu[i];
        if (d > mx) mx = d;
        sum += d;
        g_thr_cpu[i] = t[i];
    }
    g_crit_clock += mx, g_thr_sum += sum;
    return g_crit_clock;
}
static double prof_now(void) {
    if (!g_prof_cpu) return sc_now();
    if (g_prof_cpu == 2) return crit_now();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
#define PROF_BEGIN double prof_t0_ = g_prof_on ? prof_now() : 0, prof_b0_ = g_thr_sum
#define PROF_RESTART prof_t0_ = g_prof_on ? prof_now() : 0, prof_b0_ = g_thr_sum
#define PROF_END(k)                                                   \
    if (g_prof_on) g_prof[k] += prof_now() - prof_t0_, g_prof_busy[k] += g_thr_sum - prof_b0_
/* a conv pass k (0 fwd, 1 bwd data, 2 wgrad) of unit i: the phase total and the unit's own */
#define PROF_END_UNIT(k, i)                        \
    if (g_prof_on) {                               \
        double dt_ = prof_now() - prof_t0_;        \
        g_prof[k] += dt_, g_prof_unit[i][k] += dt_; \
        g_prof_busy[k] += g_thr_sum - prof_b0_;    \
    }

void model_profile(int on) {
    g_prof_on = on;
    const char *e = getenv("SIMCLR_PROFILE_CPU");
    g_prof_cpu = e ? atoi(e) : 0;
    memset(g_prof, 0, sizeof g_prof);
    memset(g_prof_busy, 0, sizeof g_prof_busy);
    memset(g_prof_unit, 0, sizeof g_prof_unit);
    if (on && g_prof_cpu == 2) crit_now();
    g_crit_clock = g_thr_sum = 0;
}
double model_profile_critical(double *busy) {
    if (g_prof_on && g_prof_cpu == 2) crit_now();
    *busy = g_thr_sum;
    return g_crit_clock;
}
double model_profile_busy(int k) { return k >= 0 && k < MODEL_PROF_N ? g_prof_busy[k] : 0; }
double model_profile_unit(int i, int pass) {
    return i >= 0 && i < RESNET_MAX_UNITS && pass >= 0 && pass < 3 ? g_prof_unit[i][pass] : 0;
}
const char *model_profile_get(int k, double *seconds) {
    *seconds = g_prof[k];
    return g_prof_names[k];
}

/* ---- configuration and options ------------------------------------------------------------- */

void model_config_default(ModelConfig *c) {
    *c = (ModelConfig){.arch = ARCH_RESNET18, .stem = STEM_IMAGENET, .width = 1.0f,
                       .image_size = 96, .head_layers = 2, .head_bn = 0, .head_hidden = 0,
                       .out_dim = 128, .zero_init_residual = 0};
}

int model_config_check(const ModelConfig *c) {
    ResNetSpec spec;
    if (resnet_spec(&spec, c->arch, c->stem, c->width, c->image_size)) return -1;
    if (c->head_layers < 0 || c->head_layers > MAX_HEAD)
        return sc_error_set("model.head_layers: expected 0..%d, got %d", MAX_HEAD, c->head_layers);
    if (c->head_layers > 0 && (c->out_dim < 1 || c->out_dim > 1 << 20))
        return sc_error_set("model.out_dim: expected a positive size, got %d", c->out_dim);
    if (c->head_hidden < 0 || c->head_hidden > 1 << 20)
        return sc_error_set("model.head_hidden: expected 0 (feature dim) or a positive size, got %d",
                            c->head_hidden);
    if (c->precision != PRECISION_FP32 && c->precision != PRECISION_BF16)
        return sc_error_set("model.precision: expected fp32 or bf16, got %d", c->precision);
    if (c->precision == PRECISION_BF16 && !model_bf16_native()) {
        /* oneDNN would run emulated bf16 kernels (avx512_core) or reference loops: measured
         * slower than fp32 (doc/core.md), so refuse; SIMCLR_BF16_FALLBACK=1 allows it (tests,
         * measurements) */
        const char *e = getenv("SIMCLR_BF16_FALLBACK");
        if (!e || strcmp(e, "1"))
            return sc_error_set("model.precision: bf16 needs a CPU with AVX512-BF16 instructions (and "
                                "oneDNN allowed to use them), this one has %s; oneDNN's fallback is "
                                "slower than fp32 here: use model.precision fp32",
                                peak_cpu_has_bf16() ? "them but oneDNN is limited (ONEDNN_MAX_CPU_ISA)" : "none");
    }
    return 0;
}

int model_bf16_native(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return peak_cpu_has_bf16() && (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
}

/* ---- tensor table -------------------------------------------------------------------------- */

static int add_tensor(Model *m, const char *prefix, const char *suffix, int ndim, const int64_t *shape,
                      int kind, int is_bn_or_bias, int init, float init_arg) {
    SC_ASSERT(m->ntensors < MAX_TENSORS);
    int i = m->ntensors++;
    ModelTensor *t = &m->tensors[i];
    snprintf(t->name, sizeof t->name, "%s%s", prefix, suffix);
    t->ndim = ndim;
    t->numel = 1;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d], t->numel *= shape[d];
    t->kind = kind;
    t->is_bn_or_bias = is_bn_or_bias;
    size_t *count = kind == MODEL_PARAM ? &m->nparams : kind == MODEL_BUFFER ? &m->nbuffers : &m->ncounters;
    t->offset = *count;
    *count += t->numel;
    m->init[i] = (unsigned char)init;
    m->init_arg[i] = init_arg;
    return i;
}

/* BN tensors (weight, bias, running_mean, running_var, num_batches_tracked); returns the first. */
static int add_bn(Model *m, const char *name, int C) {
    int64_t s[1] = {C};
    int first = add_tensor(m, name, ".weight", 1, s, MODEL_PARAM, 1, INIT_ONE, 0);
    add_tensor(m, name, ".bias", 1, s, MODEL_PARAM, 1, INIT_ZERO, 0);
    add_tensor(m, name, ".running_mean", 1, s, MODEL_BUFFER, 0, INIT_ZERO, 0);
    add_tensor(m, name, ".running_var", 1, s, MODEL_BUFFER, 0, INIT_ONE, 0);
    add_tensor(m, name, ".num_batches_tracked", 0, s, MODEL_COUNTER, 0, INIT_ZERO, 0);
    return first;
}

static float *tp(Model *m, int t) { return m->params + m->tensors[t].offset; }
static float *tg(Model *m, int t) { return m->grads + m->tensors[t].offset; }
static float *tb(Model *m, int t) { return m->buffers + m->tensors[t].offset; }
static int64_t *tc(Model *m, int t) { return m->counters + m->tensors[t].offset; }

static void init_tensors(Model *m, uint64_t seed) {
    for (int i = 0; i < m->ntensors; i++) {
        ModelTensor *t = &m->tensors[i];
        if (t->kind == MODEL_COUNTER) {
            m->counters[t->offset] = 0;
            continue;
        }
        float *p = (t->kind == MODEL_PARAM ? m->params : m->buffers) + t->offset;
        Rng r = rng_derive(seed, RNG_STREAM_INIT, (uint64_t)i, 0, 0);
        for (size_t k = 0; k < t->numel; k++) {
            switch (m->init[i]) {
            case INIT_CONV: p[k] = (float)(rng_normal(&r) * m->init_arg[i]); break;
            case INIT_UNIFORM: p[k] = rng_range(&r, -m->init_arg[i], m->init_arg[i]); break;
            case INIT_ONE: p[k] = 1; break;
            default: p[k] = 0; break;
            }
        }
    }
}

/* ---- creation ------------------------------------------------------------------------------ */

static Conv *unit_conv(Model *m, Unit *u, int B, int first) {
    for (int i = 0; i < u->nconv; i++)
        if (u->conv_B[i] == B) return u->conv[i];
    ConvShape s = u->shape;
    s.B = B;
    s.dt = m->dt;
    Conv *c;
    if (conv_create(&c, &s, !first)) return NULL;
    int slot;
    if (u->nconv < NCACHE) slot = u->nconv++;
    else {
        /* never evict the max_batch set (slot 0) */
        slot = 1 + u->next_evict;
        u->next_evict = (u->next_evict + 1) % (NCACHE - 1);
        conv_free(u->conv[slot]);
    }
    u->conv[slot] = c;
    u->conv_B[slot] = B;
    if (conv_weight_bytes(c) > m->wshared_bytes) { /* grow, and point every conv at the new one */
        sc_free(m->wshared);
        m->wshared_bytes = conv_weight_bytes(c);
        m->wshared = sc_alloc(m->wshared_bytes);
        for (int i = 0; i < m->spec.nunits; i++)
            for (int k = 0; k < m->units[i].nconv; k++)
                if (m->units[i].conv[k] != c) conv_share_weights(m->units[i].conv[k], m->wshared);
    }
    conv_share_weights(c, m->wshared);
    if (conv_scratch_bytes(c) > m->scratch_bytes) {
        sc_free(m->scratch);
        m->scratch_bytes = conv_scratch_bytes(c);
        m->scratch = sc_alloc(m->scratch_bytes);
    }
    if (conv_wtmp_floats(c) > m->wtmp_floats) {
        sc_free(m->wtmp);
        m->wtmp_floats = conv_wtmp_floats(c);
        m->wtmp = sc_alloc(m->wtmp_floats * sizeof(float));
    }
    return c;
}

static size_t maxz(size_t a, size_t b) { return a > b ? a : b; }

int model_create(Model **out, const ModelConfig *cfg, int max_batch, uint64_t seed) {
    *out = NULL;
    if (model_config_check(cfg)) return -1;
    if (max_batch < 1 || max_batch > 1 << 20)
        return sc_error_set("model.max_batch: expected a positive batch size, got %d", max_batch);
    Model *m = sc_alloc(sizeof *m);
    m->cfg = *cfg;
    m->max_batch = max_batch;
    resnet_spec(&m->spec, cfg->arch, cfg->stem, cfg->width, cfg->image_size);
    const ResNetSpec *sp = &m->spec;
    size_t B = (size_t)max_batch;
    m->dt = cfg->precision == PRECISION_BF16 ? DT_BF16 : DT_F32;
    size_t es = dt_size(m->dt); /* bytes per activation element */

    /* tensors in state_dict order */
    for (int i = 0; i < sp->nunits; i++) {
        const ResUnit *ru = &sp->units[i];
        Unit *u = &m->units[i];
        int64_t ws[4] = {ru->K, ru->C, ru->R, ru->R};
        u->t_w = add_tensor(m, ru->conv, ".weight", 4, ws, MODEL_PARAM, 0, INIT_CONV,
                            (float)sqrt(2.0 / ((double)ru->K * ru->R * ru->R)));
        u->t_bn = add_bn(m, ru->bn, ru->K);
        conv_shape_init(&u->shape, max_batch, ru->H, ru->W, ru->C, ru->K, ru->R, ru->R, ru->stride, ru->pad);
    }
    if (cfg->zero_init_residual)
        for (int b = 0; b < sp->nblocks; b++) {
            const ResBlock *blk = &sp->blocks[b];
            m->init[m->units[blk->unit[blk->nconv - 1]].t_bn] = INIT_ZERO;
        }
    int D = sp->feat_dim, hid = cfg->head_hidden ? cfg->head_hidden : D;
    m->nhead = cfg->head_layers;
    int idx = 0, in = D, widest = D;
    for (int l = 0; l < m->nhead; l++) {
        HeadLayer *hl = &m->head[l];
        int last = l == m->nhead - 1;
        hl->I = in, hl->O = last ? cfg->out_dim : hid;
        /* head-bn all: the output linear too gets BN, with its shift fixed at 0 (google's
         * center=False); its bias slot is kept (as zeros) so nn.BatchNorm1d loads it */
        hl->bn = cfg->head_bn == HEAD_BN_ALL || (!last && cfg->head_bn == HEAD_BN_ON);
        hl->fixed_shift = last && hl->bn;
        hl->relu = !last;
        char name[32];
        snprintf(name, sizeof name, "head.%d", idx);
        int64_t ws[2] = {hl->O, hl->I}, bs[1] = {hl->O};
        float bound = (float)(1.0 / sqrt((double)hl->I));
        hl->t_w = add_tensor(m, name, ".weight", 2, ws, MODEL_PARAM, 0, INIT_UNIFORM, bound);
        hl->t_b = hl->bn ? -1 : add_tensor(m, name, ".bias", 1, bs, MODEL_PARAM, 1, INIT_UNIFORM, bound);
        hl->t_bn = -1;
        idx++;
        if (hl->bn) {
            snprintf(name, sizeof name, "head.%d", idx++);
            hl->t_bn = add_bn(m, name, hl->O);
        }
        if (hl->relu) idx++;
        in = hl->O;
        if (hl->O > widest) widest = hl->O;
    }
    m->params = sc_alloc(maxz(m->nparams, 1) * sizeof(float));
    m->grads = sc_alloc(maxz(m->nparams, 1) * sizeof(float));
    m->buffers = sc_alloc(maxz(m->nbuffers, 1) * sizeof(float));
    m->counters = sc_alloc(maxz(m->ncounters, 1) * sizeof(int64_t));
    init_tensors(m, seed);

    /* activations */
    size_t S = (size_t)cfg->image_size, act = 0, part = 0;
    m->act_bytes = 0;
#define ACT_ALLOC(n) (m->act_bytes += (n), sc_alloc(n))
    for (int i = 0; i < sp->nunits; i++) {
        const ResUnit *ru = &sp->units[i];
        Unit *u = &m->units[i];
        size_t n = (size_t)ru->OH * ru->OW * ru->K;
        /* the gradient buffers hold block activations; the stem's (larger, before the pool)
         * gradient goes into the stem's own output buffer, see encoder_backward */
        if (i > 0 || !sp->pool) act = maxz(act, n);
        u->c = ACT_ALLOC(B * n * es);
        u->mean = sc_alloc(ru->K * sizeof(float));
        u->rstd = sc_alloc(ru->K * sizeof(float));
        part = maxz(part, batchnorm_partials(B * ru->OH * ru->OW, ru->K));
    }
    if (sp->pool) {
        size_t n = (size_t)sp->pool_H * sp->pool_W * sp->units[0].K;
        m->argmax = ACT_ALLOC(B * n);
        act = maxz(act, n);
        /* bf16 keeps the pooled stem output (+4.5% activation memory per view at 96 px): the
         * backward then reads it instead of recomputing it three times from the stem-sized conv
         * output (about 10 ms of CPU each at 128 views, memory bound); fp32 recomputes it, its
         * memory target leaves no room (doc/core.md) */
        if (m->dt == DT_BF16) m->stem_out = ACT_ALLOC(B * n * es);
        m->stem_threads = sc_threads();
        m->stem_work = sc_alloc(sizeof(float) * batchnorm_relu_maxpool_work(
                                                    sp->units[0].OW, sp->units[0].K, 3, m->stem_threads));
    }
    /* block outputs are not kept: recomputed from the conv outputs where needed */
    m->act_max = act;
    m->xa = ACT_ALLOC(B * maxz(act, S * S * 3) * es); /* also the images' NHWC copy */
    for (int k = 0; k < 3; k++) m->g[k] = ACT_ALLOC(B * act * sizeof(float));
    if (m->dt == DT_BF16) m->gb = ACT_ALLOC(B * act * es);
    m->ascratch = ACT_ALLOC(B * act * es);
    m->h = ACT_ALLOC(B * D * sizeof(float));
    m->dh = ACT_ALLOC(B * D * sizeof(float));
    for (int l = 0; l < m->nhead; l++) {
        HeadLayer *hl = &m->head[l];
        hl->u = ACT_ALLOC(B * hl->O * sizeof(float));
        if (hl->relu || hl->bn) hl->r = ACT_ALLOC(B * hl->O * sizeof(float));
        if (hl->bn) {
            hl->mean = sc_alloc(hl->O * sizeof(float));
            hl->rstd = sc_alloc(hl->O * sizeof(float));
            part = maxz(part, batchnorm_partials(B, hl->O));
        }
    }
    for (int k = 0; k < 2; k++) m->hs[k] = ACT_ALLOC(B * widest * sizeof(float));
#undef ACT_ALLOC
    m->partials = sc_alloc(part * sizeof(double));

    /* conv primitives for max_batch */
    for (int i = 0; i < sp->nunits; i++)
        if (!unit_conv(m, &m->units[i], max_batch, i == 0)) {
            sc_error_prefix("%s", sp->units[i].conv);
            model_free(m);
            return -1;
        }
    *out = m;
    return 0;
}

void model_free(Model *m) {
    if (!m) return;
    for (int i = 0; i < m->spec.nunits; i++) {
        Unit *u = &m->units[i];
        for (int k = 0; k < u->nconv; k++) conv_free(u->conv[k]);
        sc_free(u->c), sc_free(u->mean), sc_free(u->rstd);
    }
    sc_free(m->xa);
    for (int l = 0; l < m->nhead; l++) {
        HeadLayer *hl = &m->head[l];
        sc_free(hl->u), sc_free(hl->r), sc_free(hl->mean), sc_free(hl->rstd);
    }
    for (int k = 0; k < 3; k++) sc_free(m->g[k]);
    sc_free(m->gb);
    sc_free(m->ascratch);
    for (int k = 0; k < 2; k++) sc_free(m->hs[k]);
    sc_free(m->params), sc_free(m->grads), sc_free(m->buffers), sc_free(m->counters);
    sc_free(m->argmax), sc_free(m->stem_work), sc_free(m->stem_out), sc_free(m->h), sc_free(m->dh);
    sc_free(m->scratch), sc_free(m->wtmp), sc_free(m->partials), sc_free(m->wshared);
    sc_free(m);
}

/* ---- forward ------------------------------------------------------------------------------- */

/* x (B,3,S,S) -> xin (B,S,S,3) of type dt */
static void nchw_to_nhwc(void *out, const float *x, int B, int C, int HW, int dt) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        if (dt == DT_BF16 && C <= 4) {
            /* 64 pixels at a time: each channel's run rounded to bf16 (vectorised), then
             * interleaved (the element-wise loop cost ~6 ms of CPU per call at 128 views) */
            uint16_t t[4][64], *o = (uint16_t *)out + (size_t)b * HW * C;
            for (int p0 = 0; p0 < HW; p0 += 64) {
                int n = HW - p0 < 64 ? HW - p0 : 64;
                for (int c = 0; c < C; c++) {
                    const float *xc = x + ((size_t)b * C + c) * HW + p0;
#pragma omp simd
                    for (int i = 0; i < n; i++) t[c][i] = bf16_from_f32(xc[i]);
                }
                for (int i = 0; i < n; i++)
                    for (int c = 0; c < C; c++) o[(size_t)(p0 + i) * C + c] = t[c][i];
            }
            continue;
        }
        for (int p = 0; p < HW; p++)
            for (int c = 0; c < C; c++)
                dt_store(out, ((size_t)b * HW + p) * C + c, dt, x[((size_t)b * C + c) * HW + p]);
    }
}

/* conv + BN of one unit: out = [relu](bn(conv(in)) [+ residual]) */
static int unit_forward(Model *m, int i, void *out, const void *in, const void *residual,
                        int relu, int B) {
    Unit *u = &m->units[i];
    Conv *c = unit_conv(m, u, B, i == 0);
    if (!c) return sc_error_prefix("%s", m->spec.units[i].conv);
    PROF_BEGIN;
    conv_set_weights(c, tp(m, u->t_w));
    conv_forward(c, u->c, in, m->scratch);
    PROF_END_UNIT(0, i);
    const ResUnit *ru = &m->spec.units[i];
    int t = u->t_bn;
    PROF_RESTART;
    batchnorm_forward_sync(out, u->mean, u->rstd, u->c, tp(m, t), tp(m, t + 1), tb(m, t + 2),
                           tb(m, t + 3), tc(m, t + 4), residual, relu, m->training,
                           (size_t)B * ru->OH * ru->OW, ru->K, m->partials, m->dt, m->bn_sync);
    PROF_END(3);
    return 0;
}

/* ---- recomputation of activations that are not kept --------------------------------------- */

static void unit_apply(Model *m, int i, void *out, const void *residual, int relu) {
    Unit *u = &m->units[i];
    const ResUnit *ru = &m->spec.units[i];
    int t = u->t_bn;
    PROF_BEGIN;
    batchnorm_apply(out, u->c, u->mean, u->rstd, tp(m, t), tp(m, t + 1), residual, relu,
                    (size_t)m->B * ru->OH * ru->OW, ru->K, m->partials, m->dt);
    PROF_END(3);
}

/* the stem's output (after the pool when there is one) into dst, bit-identical to the forward's */
static void stem_recompute(Model *m, void *dst) {
    const ResUnit *r0 = &m->spec.units[0];
    Unit *u0 = &m->units[0];
    if (!m->spec.pool) {
        unit_apply(m, 0, dst, NULL, 1);
        return;
    }
    if (m->stem_out) {
        memcpy(dst, m->stem_out, (size_t)m->B * m->spec.pool_H * m->spec.pool_W * r0->K * dt_size(m->dt));
        return;
    }
    PROF_BEGIN;
    batchnorm_relu_maxpool_recompute(dst, m->argmax, u0->c, u0->mean, u0->rstd, tp(m, u0->t_bn),
                                     tp(m, u0->t_bn + 1), m->B, r0->OH, r0->OW, r0->K, 3, 2, 1,
                                     m->dt);
    PROF_END(5);
}

/* the output of block b into dst: out(b) = relu(bn(c_last) + residual), the residual being the
 * downsample's BN output or out(b-1); from the nearest block with a downsample (or the stem)
 * forwards, each step in place over dst (batchnorm_apply's out may alias its residual) */
static void block_recompute(Model *m, int b, void *dst) {
    const ResNetSpec *sp = &m->spec;
    int s = b;
    while (s > 0 && sp->blocks[s].down < 0) s--;
    const void *res = dst; /* the first step's residual: a kept stem output is read in place */
    if (sp->blocks[s].down >= 0) unit_apply(m, sp->blocks[s].down, dst, NULL, 0);
    else if (m->stem_out && sp->pool) res = m->stem_out;
    else stem_recompute(m, dst);
    for (int k = s; k <= b; k++, res = dst) {
        const ResBlock *blk = &sp->blocks[k];
        unit_apply(m, blk->unit[blk->nconv - 1], dst, res, 1);
    }
}

/* ---- the encoder ------------------------------------------------------------------------------ */

static int encoder_forward(Model *m, const float *x, int B) {
    const ResNetSpec *sp = &m->spec;
    int S = sp->image_size;
    void *xin = m->xa; /* the first conv reads it before anything writes xa */
    m->x = x;
    nchw_to_nhwc(xin, x, B, 3, S * S, m->dt);
    /* block inputs and outputs alternate between xa and g[1] (free until the backward) */
    void *cur = m->xa, *nxt = m->g[1], *t;
    if (sp->pool) {
        /* conv, BN statistics, then BN + ReLU + max pool in one pass: the stem-sized BN+ReLU
         * output is never stored (the backward recomputes its ReLU mask from the conv output) */
        Unit *u0 = &m->units[0];
        const ResUnit *r0 = &sp->units[0];
        Conv *c = unit_conv(m, u0, B, 1);
        if (!c) return sc_error_prefix("%s", r0->conv);
        PROF_BEGIN;
        conv_set_weights(c, tp(m, u0->t_w));
        conv_forward(c, u0->c, xin, m->scratch);
        PROF_END_UNIT(0, 0);
        int t0 = u0->t_bn;
        PROF_RESTART;
        batchnorm_stats_sync(u0->mean, u0->rstd, u0->c, tb(m, t0 + 2), tb(m, t0 + 3), tc(m, t0 + 4),
                             m->training, (size_t)B * r0->OH * r0->OW, r0->K, m->partials, m->dt,
                             m->bn_sync);
        PROF_END(3);
        PROF_RESTART;
        if (m->stem_out) cur = m->stem_out; /* kept for the backward; blocks ping-pong xa, g[1] */
        batchnorm_relu_maxpool_forward(cur, m->argmax, u0->c, u0->mean, u0->rstd, tp(m, t0),
                                       tp(m, t0 + 1), B, r0->OH, r0->OW, r0->K, 3, 2, 1, m->dt,
                                       m->stem_work, m->stem_threads);
        PROF_END(5);
    } else if (unit_forward(m, 0, cur, xin, NULL, 1, B)) {
        return -1;
    }
    for (int b = 0; b < sp->nblocks; b++) {
        const ResBlock *blk = &sp->blocks[b];
        const void *res = cur;
        if (blk->down >= 0) {
            /* shortcut BN output goes to scratch g[0] (unused until the backward pass) */
            if (unit_forward(m, blk->down, m->g[0], cur, NULL, 0, B)) return -1;
            res = m->g[0];
        }
        const void *bin = cur;
        for (int j = 0; j < blk->nconv; j++) {
            int last = j == blk->nconv - 1;
            /* a BN+ReLU output inside the block lives in ascratch until the next conv has read it
             * (a bottleneck's second one overwrites the first after conv2 consumed it) */
            if (unit_forward(m, blk->unit[j], last ? nxt : m->ascratch, bin, last ? res : NULL, 1, B))
                return -1;
            bin = m->ascratch;
        }
        t = cur, cur = nxt, nxt = t == m->stem_out ? m->xa : t;
    }
    avgpool_forward(m->h, cur, B, sp->final_H * sp->final_W, sp->feat_dim, m->dt);
    return 0;
}

static void head_forward(Model *m, int B) {
    const float *x = m->h;
    for (int l = 0; l < m->nhead; l++) {
        HeadLayer *hl = &m->head[l];
        linear_forward(hl->u, x, tp(m, hl->t_w), hl->t_b >= 0 ? tp(m, hl->t_b) : NULL, B, hl->I, hl->O);
        if (hl->bn) {
            int t = hl->t_bn;
            batchnorm_forward_sync(hl->r, hl->mean, hl->rstd, hl->u, tp(m, t), tp(m, t + 1),
                                   tb(m, t + 2), tb(m, t + 3), tc(m, t + 4), NULL, hl->relu, m->training,
                                   B, hl->O, m->partials, DT_F32, m->bn_sync);
        } else if (hl->relu) {
            relu_forward(hl->r, hl->u, (size_t)B * hl->O);
        }
        x = hl->relu || hl->bn ? hl->r : hl->u;
    }
}

int model_forward(Model *m, const float *x, int B, int training) {
    if (B < 1 || B > m->max_batch)
        return sc_error_set("model_forward: batch of %d rows, expected 1..%d", B, m->max_batch);
    m->B = B;
    m->training = training != 0;
    m->bwd_ready = 0;
    if (encoder_forward(m, x, B)) return -1;
    m->bwd_ready = 1;
    PROF_BEGIN;
    head_forward(m, B);
    PROF_END(6);
    return 0;
}

const float *model_h(const Model *m) { return m->h; }
const float *model_z(const Model *m) {
    if (!m->nhead) return m->h;
    const HeadLayer *hl = &m->head[m->nhead - 1];
    return hl->bn ? hl->r : hl->u;
}

/* ---- backward ------------------------------------------------------------------------------ */

/* dx (type dt_dx) from dout (type dt_dout, masked in place by the ReLU of relu_out) */
static void unit_bn_backward(Model *m, int i, void *dx, void *dout, const void *relu_out, int B,
                             int dt_dout, int dt_dx) {
    Unit *u = &m->units[i];
    const ResUnit *ru = &m->spec.units[i];
    int t = u->t_bn;
    PROF_BEGIN;
    batchnorm_backward_sync(dx, tg(m, t), tg(m, t + 1), dout, relu_out, u->c, u->mean, u->rstd,
                            tp(m, t), m->training, (size_t)B * ru->OH * ru->OW, ru->K,
                            m->partials, m->dt, dt_dout, dt_dx, m->bn_sync);
    PROF_END(4);
}

static Conv *cur_conv(Model *m, int i) {
    Unit *u = &m->units[i];
    for (int k = 0; k < u->nconv; k++)
        if (u->conv_B[k] == m->B) return u->conv[k];
    SC_ASSERT(!"conv primitives of the last forward's batch size");
    return NULL;
}

/* The gradients between layers are float32 (g, p, q: wrt block outputs, conv inputs); the
 * gradient INTO a conv (wrt its output, after its BN's backward) is of the activation type: in
 * float32 it is computed in place in p/q/g, in bf16 into the bf16 buffer gb (consumed by the conv's
 * two backward passes before the next BN backward writes it again).
 * Only the conv outputs (with their BN mean/rstd) are kept from the forward: each block's input is
 * recomputed into xa, the BN+ReLU outputs inside a block into ascratch, and the ReLU masks of the
 * block outputs and of the stem straight from the conv outputs; all bit-identical to the forward. */
static void encoder_backward(Model *m, const float *dh) {
    const ResNetSpec *sp = &m->spec;
    int B = m->B, dt = m->dt, bf = dt == DT_BF16;
    float *g = m->g[0], *p = m->g[1], *q = m->g[2], *t;
    avgpool_backward(g, dh, B, sp->final_H * sp->final_W, sp->feat_dim);
    for (int b = sp->nblocks - 1; b >= 0; b--) {
        const ResBlock *blk = &sp->blocks[b];
        void *block_in = m->xa;
        if (b > 0) block_recompute(m, b - 1, block_in);
        else if (m->stem_out) block_in = m->stem_out;
        else stem_recompute(m, block_in);
        int last = blk->unit[blk->nconv - 1];
        /* g: grad wrt the block output; masked in place by its ReLU (recomputed from the last conv
         * output and the shortcut) -> grad of the sum, which the shortcut reads at the end */
        const void *res = block_in;
        if (blk->down >= 0) {
            unit_apply(m, blk->down, p, NULL, 0); /* p is free until the BN backward below */
            res = p;
        }
        void *dc = bf ? m->gb : (void *)p; /* grad wrt the current conv's output */
        {
            /* the mask and the last BN's backward in one kernel (g masked in place) */
            Unit *ul = &m->units[last];
            const ResUnit *rl = &sp->units[last];
            int tl = ul->t_bn;
            PROF_BEGIN;
            batchnorm_relu_mask_backward_sync(dc, tg(m, tl), tg(m, tl + 1), g, ul->c, res, ul->mean,
                                              ul->rstd, tp(m, tl), tp(m, tl + 1), m->training,
                                              (size_t)B * rl->OH * rl->OW, rl->K, m->partials, dt,
                                              DT_F32, dt, m->bn_sync);
            PROF_END(4);
        }
        for (int j = blk->nconv - 1; j >= 0; j--) {
            int ui = blk->unit[j];
            const void *x_in = block_in;
            if (j > 0) {
                /* recompute the previous unit's BN+ReLU output (bit-identical to the forward's):
                 * the input of this conv and the ReLU mask of that unit's BN backward */
                int pi = blk->unit[j - 1], tbn = m->units[pi].t_bn;
                const ResUnit *pr = &sp->units[pi];
                PROF_BEGIN;
                batchnorm_apply(m->ascratch, m->units[pi].c, m->units[pi].mean, m->units[pi].rstd,
                                tp(m, tbn), tp(m, tbn + 1), NULL, 1, (size_t)B * pr->OH * pr->OW, pr->K,
                                m->partials, dt);
                PROF_END(4);
                x_in = m->ascratch;
            }
            Conv *c = cur_conv(m, ui);
            PROF_BEGIN;
            conv_backward_weights(c, tg(m, m->units[ui].t_w), dc, x_in, m->wtmp, m->scratch);
            PROF_END_UNIT(2, ui);
            PROF_RESTART;
            conv_backward_data(c, q, dc, m->scratch);
            PROF_END_UNIT(1, ui);
            if (j > 0) {
                int prev = blk->unit[j - 1];
                dc = bf ? m->gb : (void *)q;
                unit_bn_backward(m, prev, dc, q, m->ascratch, B, DT_F32, dt);
            }
            t = p, p = q, q = t;
        }
        /* p: grad wrt the block input through the main branch */
        if (blk->down >= 0) {
            void *dd = bf ? m->gb : (void *)g;
            unit_bn_backward(m, blk->down, dd, g, NULL, B, DT_F32, dt);
            Conv *c = cur_conv(m, blk->down);
            PROF_BEGIN;
            conv_backward_weights(c, tg(m, m->units[blk->down].t_w), dd, block_in, m->wtmp, m->scratch);
            PROF_END_UNIT(2, blk->down);
            PROF_RESTART;
            conv_backward_data(c, q, dd, m->scratch);
            PROF_END_UNIT(1, blk->down);
            const ResUnit *ru = &sp->units[blk->down];
            add_inplace(p, q, (size_t)B * ru->H * ru->W * ru->C);
        } else {
            add_inplace(p, g, (size_t)B * blk->OH * blk->OW * blk->K);
        }
        t = g, g = p, p = t;
    }
    /* g: grad wrt the pool output (or the stem output, which xa still holds) */
    const ResUnit *r0 = &sp->units[0];
    Unit *u0 = &m->units[0];
    void *d0; /* grad wrt the stem conv's output, of type dt */
    if (sp->pool) {
        /* max pool, ReLU mask and BN backward in one kernel; the gradient overwrites the stem's
         * conv output, its last use (so the backward runs once per forward) */
        int t0 = u0->t_bn;
        PROF_BEGIN;
        batchnorm_relu_maxpool_backward(u0->c, tg(m, t0), tg(m, t0 + 1), g, m->argmax, u0->c,
                                        u0->mean, u0->rstd, tp(m, t0), tp(m, t0 + 1), m->training,
                                        B, r0->OH, r0->OW, r0->K, 3, 2, 1, m->partials, dt,
                                        m->bn_sync);
        PROF_END(4);
        d0 = u0->c;
    } else {
        d0 = bf ? m->gb : (void *)g;
        unit_bn_backward(m, 0, d0, g, m->xa, B, DT_F32, dt);
    }
    /* the images again, into xa (free now; the caller keeps x until the backward) */
    PROF_BEGIN;
    nchw_to_nhwc(m->xa, m->x, B, 3, sp->image_size * sp->image_size, dt);
    PROF_END(5);
    PROF_RESTART;
    conv_backward_weights(cur_conv(m, 0), tg(m, m->units[0].t_w), d0, m->xa, m->wtmp, m->scratch);
    PROF_END_UNIT(2, 0);
}

static void head_backward(Model *m, const float *dz) {
    int B = m->B;
    const float *g = dz;
    int k = 0;
    for (int l = m->nhead - 1; l >= 0; l--) {
        HeadLayer *hl = &m->head[l];
        if (l == m->nhead - 1 && hl->bn) { /* head-bn all: the output BN (no ReLU, fixed shift) */
            int t = hl->t_bn;
            memcpy(m->hs[k], g, sizeof(float) * B * hl->O);
            batchnorm_backward(m->hs[k], tg(m, t), tg(m, t + 1), m->hs[k], NULL, hl->u, hl->mean,
                               hl->rstd, tp(m, t), m->training, B, hl->O, m->partials, DT_F32, DT_F32,
                               DT_F32);
            if (hl->fixed_shift) memset(tg(m, t + 1), 0, sizeof(float) * hl->O);
            g = m->hs[k];
            k ^= 1;
        }
        const float *in = l > 0 ? m->head[l - 1].r : m->h;
        float *d_in = l > 0 ? m->hs[k] : m->dh;
        linear_backward(d_in, tg(m, hl->t_w), hl->t_b >= 0 ? tg(m, hl->t_b) : NULL, g, in,
                        tp(m, hl->t_w), B, hl->I, hl->O);
        if (l > 0) {
            HeadLayer *pl = &m->head[l - 1];
            if (pl->bn) {
                int t = pl->t_bn;
                batchnorm_backward_sync(d_in, tg(m, t), tg(m, t + 1), d_in, pl->r, pl->u,
                                        pl->mean, pl->rstd, tp(m, t), m->training, B, pl->O,
                                        m->partials, DT_F32, DT_F32, DT_F32, m->bn_sync);
            } else {
                relu_backward(d_in, d_in, pl->r, (size_t)B * pl->O);
            }
            g = d_in;
            k ^= 1;
        }
    }
    if (m->nhead == 0) memcpy(m->dh, dz, sizeof(float) * B * m->spec.feat_dim);
}

void model_backward(Model *m, const float *dz) {
    SC_ASSERT(m->B > 0 && m->bwd_ready);
    m->bwd_ready = 0;
    PROF_BEGIN;
    head_backward(m, dz);
    PROF_END(6);
    encoder_backward(m, m->dh);
}

void model_backward_h(Model *m, const float *dh) {
    SC_ASSERT(m->B > 0 && m->bwd_ready);
    m->bwd_ready = 0;
    encoder_backward(m, dh);
}

void model_zero_grad(Model *m) {
    /* 46 MB for ResNet-18: split over the threads (a serial memset kept one core idle) */
#pragma omp parallel
    {
        size_t nt = omp_get_num_threads(), id = omp_get_thread_num();
        size_t nb = (m->nparams + 15) / 16, a = nb * id / nt * 16, b = nb * (id + 1) / nt * 16;
        if (b > m->nparams) b = m->nparams;
        if (a < b) memset(m->grads + a, 0, sizeof(float) * (b - a)); /* 64-byte aligned halves */
    }
}

/* ---- accessors ----------------------------------------------------------------------------- */

float *model_params(Model *m) { return m->params; }
float *model_grads(Model *m) { return m->grads; }
size_t model_num_params(const Model *m) { return m->nparams; }
float *model_buffers(Model *m) { return m->buffers; }
size_t model_num_buffers(const Model *m) { return m->nbuffers; }
int64_t *model_counters(Model *m) { return m->counters; }
size_t model_num_counters(const Model *m) { return m->ncounters; }
int model_num_tensors(const Model *m) { return m->ntensors; }
const ModelTensor *model_tensor(const Model *m, int i) {
    return i >= 0 && i < m->ntensors ? &m->tensors[i] : NULL;
}
int model_find_tensor(const Model *m, const char *name) {
    for (int i = 0; i < m->ntensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return i;
    return -1;
}
const ModelConfig *model_config(const Model *m) { return &m->cfg; }
const ResNetSpec *model_spec(const Model *m) { return &m->spec; }
int model_feature_dim(const Model *m) { return m->spec.feat_dim; }
int model_out_dim(const Model *m) { return m->nhead ? m->head[m->nhead - 1].O : m->spec.feat_dim; }
int model_max_batch(const Model *m) { return m->max_batch; }

double model_forward_flops(const Model *m, int B) {
    double macs = 0;
    for (int i = 0; i < m->spec.nunits; i++) {
        ConvShape s = m->units[i].shape;
        s.B = B;
        macs += conv_macs(&s);
    }
    for (int l = 0; l < m->nhead; l++) macs += (double)B * m->head[l].I * m->head[l].O;
    return 2 * macs;
}

const void *model_block_output(Model *m, int i) {
    if (i >= m->spec.nblocks || m->B < 1) return NULL;
    /* recomputed into g[2], which the backward overwrites before reading */
    if (i < 0) stem_recompute(m, m->g[2]);
    else block_recompute(m, i, m->g[2]);
    return m->g[2];
}

int model_act_dtype(const Model *m) { return m->dt; }
size_t model_activation_bytes(const Model *m) { return m->act_bytes; }
size_t model_scratch_bytes(const Model *m) { return m->scratch_bytes; }

const char *model_conv_impl(const Model *m) {
    return m->spec.nunits > 1 ? conv_impl_name(m->units[1].conv[0], 0) : "none";
}

void model_set_bn_sync(Model *m, const BnSync *sync) { m->bn_sync = sync; }
