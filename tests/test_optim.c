/* test_optim.c - optimizers against torch.optim (Adam, AdamW, SGD momentum / Nesterov) and a
 * re-implementation of google's LARS, three steps each; the naive reference; state
 * save/restore; thread-count independence; the lr schedule against its formula and google's;
 * the option fragment; bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "npy.h"
#include "optim.h"
#include "option_tables.h"
#include "rng.h"
#include "test.h"

typedef struct {
    float *p0, *grads;
    float lrs[3];
    OptimSegment seg[16];
    int nseg;
    size_t P;
} Fx;

static int load_fx(Fx *f) {
    int64_t sh[2];
    float *lrs, *segf;
    if (npy_load_f32(fixture_path("opt/optim_params0.npy"), &f->p0, sh, NULL)) return -1;
    f->P = (size_t)sh[0];
    if (npy_load_f32(fixture_path("opt/optim_grads.npy"), &f->grads, NULL, NULL)) return -1;
    if (npy_load_f32(fixture_path("opt/optim_lrs.npy"), &lrs, NULL, NULL)) return -1;
    if (npy_load_f32(fixture_path("opt/optim_segments.npy"), &segf, sh, NULL)) return -1;
    f->nseg = (int)sh[0];
    for (int i = 0; i < f->nseg; i++)
        f->seg[i] = (OptimSegment){(size_t)segf[3 * i], (size_t)segf[3 * i + 1], (int)segf[3 * i + 2]};
    memcpy(f->lrs, lrs, sizeof f->lrs);
    free(lrs), free(segf);
    return 0;
}

static void free_fx(Fx *f) { free(f->p0), free(f->grads); }

/* Runs 3 steps of the fast and the naive update and compares with the fixture after each step.
 * Tolerance: rtol 1e-6, atol 1e-7 (float32 updates; torch's op order differs slightly: measured
 * worst 1e-8 absolute near zero). */
static void check_case(const char *name, const OptimConfig *c) {
    Fx f;
    if (load_fx(&f)) { CHECK(0, "%s", sc_error()); return; }
    char path[256];
    float *want, *wm, *wv = NULL;
    snprintf(path, sizeof path, "opt/optim_%s_params.npy", name);
    if (npy_load_f32(fixture_path(path), &want, NULL, NULL)) { CHECK(0, "%s", sc_error()); return; }
    snprintf(path, sizeof path, "opt/optim_%s_m.npy", name);
    SC_ASSERT(!npy_load_f32(fixture_path(path), &wm, NULL, NULL));
    snprintf(path, sizeof path, "opt/optim_%s_v.npy", name);
    if (sc_file_exists(fixture_path(path))) SC_ASSERT(!npy_load_f32(fixture_path(path), &wv, NULL, NULL));
    for (int naive = 0; naive < 2; naive++) {
        Optimizer *o;
        if (optim_create(&o, c, f.P, f.seg, f.nseg)) { CHECK(0, "%s", sc_error()); break; }
        float *p = malloc(f.P * sizeof(float));
        memcpy(p, f.p0, f.P * sizeof(float));
        for (int s = 0; s < 3; s++) {
            (naive ? optim_step_ref : optim_step)(o, p, f.grads + s * f.P, f.lrs[s]);
            char what[128];
            snprintf(what, sizeof what, "%s%s params after step %d", name, naive ? " (naive)" : "", s + 1);
            CHECK_ARRAY_CLOSE(what, p, want + s * f.P, f.P, 1e-6, 1e-7);
        }
        OptimState st[2];
        int ns = optim_state_tensors(o, st);
        CHECK(ns == (wv ? 2 : 1), "%s: %d state tensors", name, ns);
        CHECK(!strcmp(st[0].name, "m"), "state 0 named %s", st[0].name);
        CHECK_ARRAY_CLOSE("first moment / momentum buffer", st[0].data, wm, f.P, 1e-5, 1e-7);
        if (wv && ns == 2) CHECK_ARRAY_CLOSE("second moment", st[1].data, wv, f.P, 1e-5, 1e-9);
        CHECK(optim_get_step(o) == 3, "step count %ld", optim_get_step(o));
        optim_free(o);
        free(p);
    }
    free(want), free(wm), free(wv);
    free_fx(&f);
}

TEST(adam_matches_torch) {
    OptimConfig c;
    optim_config_default(&c, OPTIM_ADAM);
    c.weight_decay = 0.1f;
    check_case("adam", &c);
    c.beta1 = 0.8, c.beta2 = 0.99, c.eps = 1e-6f, c.exclude_bn_bias = 1;
    check_case("adam_excl", &c);
}

TEST(adamw_matches_torch) {
    OptimConfig c;
    optim_config_default(&c, OPTIM_ADAMW);
    c.weight_decay = 0.1f;
    check_case("adamw", &c);
    c.exclude_bn_bias = 1;
    check_case("adamw_excl", &c);
}

TEST(sgd_matches_torch) {
    OptimConfig c;
    optim_config_default(&c, OPTIM_SGD);
    c.weight_decay = 0.01f;
    check_case("sgd", &c);
    c.nesterov = 1, c.exclude_bn_bias = 1;
    check_case("sgd_nesterov", &c);
}

TEST(lars_matches_google_formula) {
    OptimConfig c;
    optim_config_default(&c, OPTIM_LARS);
    c.weight_decay = 0.01f;
    check_case("lars", &c); /* exclude_bn_bias off: LARS excludes BN/bias anyway */
    c.nesterov = 1;
    check_case("lars_nesterov", &c);
}

TEST(lars_trust_ratio_edge_cases) {
    /* zero weights: ||w|| = 0 -> trust 1, first update = lr * g */
    OptimSegment seg[2] = {{0, 4, 0}, {4, 2, 1}};
    OptimConfig c;
    optim_config_default(&c, OPTIM_LARS);
    c.weight_decay = 0.5f;
    Optimizer *o;
    SC_ASSERT(!optim_create(&o, &c, 6, seg, 2));
    float p[6] = {0, 0, 0, 0, 2, -2}, g[6] = {1, -2, 3, 0.5f, 1, 1};
    optim_step(o, p, g, 0.1f);
    float want[6] = {-0.1f, 0.2f, -0.3f, -0.05f, 2 - 0.1f, -2 - 0.1f}; /* bias: no decay, no trust */
    CHECK_ARRAY_CLOSE("zero-norm weights and excluded bias", p, want, 6, 1e-6, 1e-7);
    /* trust ratio value: w = (3, 4) (norm 5), g = (0, 0.5), wd 0: trust = 0.001 * 5 / 0.5 */
    OptimSegment one = {0, 2, 0};
    c.weight_decay = 0;
    Optimizer *o2;
    SC_ASSERT(!optim_create(&o2, &c, 2, &one, 1));
    float w[2] = {3, 4}, gg[2] = {0, 0.5f};
    optim_step(o2, w, gg, 1.0f);
    CHECK_CLOSE("w1 after one LARS step", w[1], 4 - 0.01 * 0.5, 1e-6, 1e-7);
    /* zero gradient: trust 1 (not a division by zero), nothing moves */
    float z0[2] = {0, 0};
    optim_step(o2, w, z0, 1.0f);
    CHECK(isfinite(w[0]) && isfinite(w[1]), "non-finite after a zero gradient");
    optim_free(o), optim_free(o2);
}

TEST(state_restore_continues_exactly) {
    Fx f;
    if (load_fx(&f)) { CHECK(0, "%s", sc_error()); return; }
    for (int type = OPTIM_ADAM; type <= OPTIM_LARS; type++) {
        OptimConfig c;
        optim_config_default(&c, type);
        c.weight_decay = 0.01f;
        Optimizer *a, *b;
        SC_ASSERT(!optim_create(&a, &c, f.P, f.seg, f.nseg));
        SC_ASSERT(!optim_create(&b, &c, f.P, f.seg, f.nseg));
        float *pa = malloc(f.P * 4), *pb = malloc(f.P * 4);
        memcpy(pa, f.p0, f.P * 4);
        for (int s = 0; s < 2; s++) optim_step(a, pa, f.grads + s * f.P, f.lrs[s]);
        /* "checkpoint": copy the state into a fresh optimizer */
        memcpy(pb, pa, f.P * 4);
        OptimState sa[2], sb[2];
        int n = optim_state_tensors(a, sa);
        CHECK(optim_state_tensors(b, sb) == n, "state count differs");
        for (int k = 0; k < n; k++) memcpy(sb[k].data, sa[k].data, f.P * 4);
        optim_set_step(b, optim_get_step(a));
        optim_step(a, pa, f.grads + 2 * f.P, f.lrs[2]);
        optim_step(b, pb, f.grads + 2 * f.P, f.lrs[2]);
        CHECK(!memcmp(pa, pb, f.P * 4), "optimizer %d: restored run differs", type);
        optim_free(a), optim_free(b);
        free(pa), free(pb);
    }
    free_fx(&f);
}

void openblas_set_num_threads(int);

TEST(updates_do_not_depend_on_thread_count) {
    const size_t P = 300000; /* large segments take the parallel paths */
    OptimSegment seg[3] = {{0, 200000, 0}, {200000, 1000, 1}, {201000, 99000, 0}};
    float *p0 = malloc(P * 4), *g = malloc(P * 4), *r[2];
    Rng rng = rng_derive(3, RNG_STREAM_TEST, 1, 0, 0);
    for (size_t i = 0; i < P; i++) p0[i] = (float)rng_normal(&rng), g[i] = (float)rng_normal(&rng);
    int keep = sc_threads();
    for (int type = OPTIM_ADAM; type <= OPTIM_LARS; type++) {
        for (int t = 0; t < 2; t++) {
            sc_set_threads(t + 1);
            OptimConfig c;
            optim_config_default(&c, type);
            c.weight_decay = 1e-4f;
            Optimizer *o;
            SC_ASSERT(!optim_create(&o, &c, P, seg, 3));
            r[t] = malloc(P * 4);
            memcpy(r[t], p0, P * 4);
            for (int s = 0; s < 3; s++) optim_step(o, r[t], g, 0.1f);
            optim_free(o);
        }
        CHECK(!memcmp(r[0], r[1], P * 4), "optimizer %d: 1 and 2 threads differ", type);
        free(r[0]), free(r[1]);
    }
    sc_set_threads(keep);
    free(p0), free(g);
}

TEST(rejects_bad_segments_and_config) {
    OptimConfig c;
    optim_config_default(&c, OPTIM_SGD);
    Optimizer *o;
    OptimSegment gap[2] = {{0, 4, 0}, {5, 3, 0}}, overlap[2] = {{0, 4, 0}, {3, 5, 0}},
                 shuffled[2] = {{4, 4, 1}, {0, 4, 0}};
    CHECK(optim_create(&o, &c, 8, gap, 2) == -1 && o == NULL, "gap accepted");
    CHECK(optim_create(&o, &c, 8, overlap, 2) == -1, "overlap accepted");
    CHECK(optim_create(&o, &c, 9, shuffled, 2) == -1 && strstr(sc_error(), "cover"),
          "short coverage: %s", sc_error());
    CHECK(optim_create(&o, &c, 8, shuffled, 2) == 0, "segments in any order: %s", sc_error());
    optim_free(o);
    c.weight_decay = -1;
    CHECK(optim_create(&o, &c, 8, shuffled, 2) == -1 && strstr(sc_error(), "optim.weight_decay"),
          "negative weight decay: %s", sc_error());
    c.weight_decay = 0, c.momentum = 1.5f;
    CHECK(optim_create(&o, &c, 8, shuffled, 2) == -1 && strstr(sc_error(), "optim.momentum"),
          "momentum 1.5: %s", sc_error());
    c.momentum = 0, c.nesterov = 1;
    CHECK(optim_create(&o, &c, 8, shuffled, 2) == -1, "nesterov without momentum accepted");
    c.type = 9;
    CHECK(optim_create(&o, &c, 8, shuffled, 2) == -1, "unknown optimizer accepted");
}

/* ---- schedule ---- */

static void check_lr(const char *name, double lr, int scaling, long batch, long w, long T, int sched) {
    char path[128];
    float *want, *goog = NULL;
    snprintf(path, sizeof path, "opt/lr_%s.npy", name);
    if (npy_load_f32(fixture_path(path), &want, NULL, NULL)) { CHECK(0, "%s", sc_error()); return; }
    snprintf(path, sizeof path, "opt/lr_%s_google.npy", name);
    if (sc_file_exists(fixture_path(path))) SC_ASSERT(!npy_load_f32(fixture_path(path), &goog, NULL, NULL));
    LrSchedule s;
    CHECK(!lr_schedule_init(&s, lr, scaling, batch, 0, w, 100, T, sched), "%s", sc_error());
    float *got = malloc((T + 1) * sizeof(float));
    for (long i = 0; i <= T; i++) got[i] = lr_at_step(&s, i);
    char what[96];
    snprintf(what, sizeof what, "lr schedule %s", name);
    CHECK_ARRAY_CLOSE(what, got, want, T + 1, 1e-6, 1e-9); /* float32 of a double formula */
    if (goog) {
        /* ours is google's shifted by one step in the warmup (no wasted lr-0 step), equal after */
        for (long i = 0; i <= T; i++) {
            double g = i < w ? goog[i + 1] : goog[i];
            CHECK(test_close(got[i], g, 1e-6, 1e-9), "%s step %ld: %g vs google %g", name, i, got[i], g);
        }
        CHECK(goog[0] == 0, "google's first warmup step has lr %g", goog[0]);
    }
    CHECK(got[0] > 0, "%s: first step lr is 0", name);
    CHECK(sched != LR_COSINE || got[T] == 0, "%s: lr after the last step %g, expected 0", name, got[T]);
    free(want), free(goog), free(got);
}

TEST(lr_schedule_matches_formula_and_google) {
    check_lr("cos_linear", 0.3, LR_SCALING_LINEAR, 512, 10, 50, LR_COSINE);
    check_lr("cos_sqrt", 0.075, LR_SCALING_SQRT, 512, 7, 30, LR_COSINE);
    check_lr("const", 3e-4, LR_SCALING_NONE, 512, 5, 20, LR_CONSTANT);
    check_lr("cos_nowarm", 0.1, LR_SCALING_NONE, 64, 0, 25, LR_COSINE);
}

TEST(lr_schedule_epochs_and_errors) {
    CHECK_CLOSE("linear scaling", lr_scaled(0.3, LR_SCALING_LINEAR, 4096), 4.8, 1e-12, 0);
    CHECK_CLOSE("sqrt scaling", lr_scaled(0.075, LR_SCALING_SQRT, 4096), 4.8, 1e-12, 0);
    CHECK_CLOSE("no scaling", lr_scaled(3e-4, LR_SCALING_NONE, 4096), 3e-4, 1e-12, 0);
    LrSchedule s;
    /* 10 warmup epochs of 195 steps in a 100-epoch run; the cosine spans the other 90 epochs */
    SC_ASSERT(!lr_schedule_init(&s, 0.3, LR_SCALING_LINEAR, 256, 10, -1, 195, 19500, LR_COSINE));
    CHECK(s.warmup_steps == 1950, "warmup steps %ld", s.warmup_steps);
    CHECK_CLOSE("end of warmup", lr_at_step(&s, 1949), 0.3, 1e-6, 0);
    CHECK_CLOSE("half way through the cosine", lr_at_step(&s, 1950 + 8775), 0.15, 1e-5, 0);
    CHECK(lr_at_step(&s, 19499) > 0 && lr_at_step(&s, 19499) < 1e-6, "last step lr %g", lr_at_step(&s, 19499));
    /* --warmup-steps overrides --warmup-epochs */
    SC_ASSERT(!lr_schedule_init(&s, 0.3, LR_SCALING_NONE, 256, 10, 5, 195, 100, LR_COSINE));
    CHECK(s.warmup_steps == 5, "warmup steps %ld", s.warmup_steps);
    CHECK(lr_schedule_init(&s, 0.3, LR_SCALING_NONE, 256, 10, -1, 195, 1000, LR_COSINE) == -1 &&
              strstr(sc_error(), "schedule.warmup_epochs"), "warmup longer than the run: %s", sc_error());
    CHECK(lr_schedule_init(&s, -1, LR_SCALING_NONE, 256, 0, 0, 1, 10, LR_COSINE) == -1, "negative lr");
    CHECK(lr_schedule_init(&s, 0.1, LR_SCALING_NONE, 0, 0, 0, 1, 10, LR_COSINE) == -1, "batch 0");
    CHECK(lr_schedule_init(&s, 0.1, LR_SCALING_NONE, 8, 0, 0, 1, 0, LR_COSINE) == -1, "0 steps");
}

TEST(option_fragment_parses) {
    TrainOptions t;
    train_options_default(&t);
    Opt tab[OPTIM_NUM_OPTS + 1];
    Opt *tables[] = {optim_opts(tab, &t)};
    char *argv[] = {"pretrain", "--optimizer", "lars", "--lr", "0.3", "--lr-scaling", "sqrt",
                    "--nesterov", "--warmup-steps", "100", "--exclude-bn-bias", "--temperature",
                    "0.5", "--schedule", "constant", "--weight-decay", "1e-6", "--momentum",
                    "0.8", "--warmup-epochs", "2.5"};
    CHECK(!opts_parse("pretrain", "x", 21, argv, tables, 1, NULL, NULL), "%s", sc_error());
    CHECK(t.optimizer == OPTIM_LARS && t.lr_scaling == LR_SCALING_SQRT && t.nesterov &&
              t.warmup_steps == 100 && t.exclude_bn_bias && t.schedule == LR_CONSTANT,
          "parsed values wrong");
    CHECK_CLOSE("lr", t.lr, 0.3, 1e-7, 0);
    CHECK_CLOSE("temperature", t.temperature, 0.5, 1e-7, 0);
    CHECK_CLOSE("weight decay", t.weight_decay, 1e-6, 1e-6, 0);
    CHECK_CLOSE("warmup epochs", t.warmup_epochs, 2.5, 0, 0);
    CHECK(opts_was_set(tables, 1, "lr") && !opts_was_set(tables, 1, "none"), "set flags");
    OptimConfig c;
    train_options_optim_config(&t, &c);
    CHECK(c.type == OPTIM_LARS && c.nesterov && c.exclude_bn_bias && c.momentum == t.momentum &&
              c.trust_coef == 1e-3f, "config from options");
    train_options_default(&t);
    optim_opts(tab, &t);
    char *bad[] = {"pretrain", "--optimizer", "rmsprop"};
    CHECK(opts_parse("pretrain", "x", 3, bad, tables, 1, NULL, NULL) == -1 &&
              strstr(sc_error(), "--optimizer"), "bad optimizer: %s", sc_error());
    char *bad2[] = {"pretrain", "--temperature", "0"};
    CHECK(opts_parse("pretrain", "x", 3, bad2, tables, 1, NULL, NULL) == -1, "tau 0 accepted");
}
