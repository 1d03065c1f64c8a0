/* test_layers.c - every layer: fast kernel against its reference, and finite-difference
 * gradient checks of forward/backward on tiny shapes.
 *
 * Finite differences: L = sum(out * R) for a fixed random R, so dL/dout = R; a central
 * difference with step EPS on a sample of inputs/params, L summed in double. Float32 forward
 * passes limit the accuracy to about 1e-3 relative: tolerance rtol 2e-2, atol 2e-3. */
#include <stdlib.h>

#include "bf16.h"
#include "common.h"
#include "conv.h"
#include "conv_small.h"
#include "conv_pw.h"
#include "conv_wgrad.h"
#include "layers.h"
#include "peak.h"
#include "rng.h"
#include "test.h"

static float *randv(size_t n, uint64_t tag, float lo, float hi) {
    float *v = malloc(n * sizeof(float));
    Rng r = rng_derive(77, RNG_STREAM_TEST, tag, 0, 0);
    for (size_t i = 0; i < n; i++) v[i] = rng_range(&r, lo, hi);
    return v;
}

static double dotd(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

#define EPS 1e-2f
#define FD_RTOL 2e-2
#define FD_ATOL 2e-3

/* Checks analytic gradient `an` of variable v (n elements) against central differences of
 * loss(): probes up to 40 evenly spread elements. */
typedef double (*LossFn)(void *ctx);
static void fd_check(const char *what, float *v, const float *an, size_t n, LossFn loss, void *ctx,
                     float eps) {
    size_t step = n > 40 ? n / 40 : 1;
    int bad = 0;
    for (size_t i = 0; i < n; i += step) {
        float s = v[i];
        v[i] = s + eps;
        double lp = loss(ctx);
        v[i] = s - eps;
        double lm = loss(ctx);
        v[i] = s;
        double fd = (lp - lm) / (2.0 * eps);
        if (!test_close(an[i], fd, FD_RTOL, FD_ATOL) && bad++ < 3)
            CHECK(0, "%s[%zu]: analytic %.6g, finite difference %.6g", what, i, an[i], fd);
    }
    CHECK(!bad, "%s: %d elements off", what, bad);
}

/* ---- convolution --------------------------------------------------------------------------- */

typedef struct {
    ConvShape s;
    float *in, *w, *out, *R;
} ConvCtx;

static double conv_loss(void *p) {
    ConvCtx *c = p;
    conv2d_forward_ref(c->out, c->in, c->w, &c->s);
    return dotd(c->out, c->R, (size_t)c->s.B * c->s.OH * c->s.OW * c->s.K);
}

static const int conv_cases[][9] = {
    /* B H W C K R stride pad */
    {2, 5, 6, 3, 4, 3, 1, 1, 0}, {2, 7, 7, 3, 5, 3, 2, 1, 0}, {1, 9, 8, 3, 4, 7, 2, 3, 0},
    {2, 6, 6, 4, 6, 1, 2, 0, 0}, {3, 4, 4, 5, 3, 1, 1, 0, 0}, {1, 5, 5, 16, 16, 3, 1, 1, 0},
};

TEST(conv_reference_gradcheck) {
    for (size_t k = 0; k < sizeof conv_cases / sizeof *conv_cases; k++) {
        const int *q = conv_cases[k];
        ConvCtx c;
        SC_ASSERT(!conv_shape_init(&c.s, q[0], q[1], q[2], q[3], q[4], q[5], q[5], q[6], q[7]));
        size_t ni = (size_t)q[0] * q[1] * q[2] * q[3], nw = (size_t)q[4] * q[3] * q[5] * q[5];
        size_t no = (size_t)c.s.B * c.s.OH * c.s.OW * c.s.K;
        c.in = randv(ni, 1 + k, -1, 1), c.w = randv(nw, 2 + k, -1, 1), c.R = randv(no, 3 + k, -1, 1);
        c.out = malloc(no * 4);
        float *din = calloc(ni, 4), *dw = calloc(nw, 4);
        conv2d_backward_ref(din, dw, c.R, c.in, c.w, &c.s);
        char what[64];
        snprintf(what, sizeof what, "conv case %zu d_in", k);
        fd_check(what, c.in, din, ni, conv_loss, &c, EPS);
        snprintf(what, sizeof what, "conv case %zu d_w", k);
        fd_check(what, c.w, dw, nw, conv_loss, &c, EPS);
        free(c.in), free(c.w), free(c.R), free(c.out), free(din), free(dw);
    }
}

/* shape q = {B, H, W, C, K, R (= S), stride, pad}; ni, nw, no: elements of the input, the
 * weights and the output */
static ConvShape conv_case(const int *q, size_t *ni, size_t *nw, size_t *no) {
    ConvShape s;
    SC_ASSERT(!conv_shape_init(&s, q[0], q[1], q[2], q[3], q[4], q[5], q[5], q[6], q[7]));
    *ni = (size_t)q[0] * q[1] * q[2] * q[3], *nw = (size_t)q[4] * q[3] * q[5] * q[5];
    *no = (size_t)s.B * s.OH * s.OW * s.K;
    return s;
}

/* oneDNN path against the reference, on ResNet-like shapes (incl. the 7x7/2 stem on 3 channels,
 * strided 1x1 downsample, odd sizes). Tolerance rtol 1e-4, atol 1e-5 x sqrt(reduction length). */
/* Run twice: the routing as shipped, then with backward data as a forward conv of the flipped
 * weights wherever it applies (SIMCLR_CONV_BWD_AS_FWD=1: also 1x1, the GEMM path's maps, bf16) */
static void conv_onednn_cases(const char *bwd_as_fwd);
TEST(conv_onednn_matches_reference) {
    conv_onednn_cases(NULL);
    conv_onednn_cases("1");
}
static void conv_onednn_cases(const char *bwd_as_fwd) {
    if (bwd_as_fwd) setenv("SIMCLR_CONV_BWD_AS_FWD", bwd_as_fwd, 1);
    static const int cases[][8] = {
        {2, 16, 16, 3, 8, 7, 2, 3}, {2, 8, 8, 8, 8, 3, 1, 1},   {3, 9, 9, 8, 16, 3, 2, 1},
        {2, 8, 8, 8, 16, 1, 2, 0},  {2, 5, 7, 32, 16, 3, 1, 1}, {2, 6, 6, 16, 64, 1, 1, 0},
        {4, 4, 4, 64, 64, 3, 1, 1},   {3, 7, 7, 32, 48, 3, 2, 1}, {5, 3, 3, 40, 24, 3, 1, 1},
        {3, 6, 6, 24, 40, 1, 2, 0}, /* maps of <= 16 pixels: the im2col + GEMM path */
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const int *q = cases[k];
        size_t ni, nw, no;
        ConvShape s = conv_case(q, &ni, &nw, &no);
        float *in = randv(ni, 10 + k, -1, 1), *w = randv(nw, 20 + k, -1, 1), *dout = randv(no, 30 + k, -1, 1);
        float *out = malloc(no * 4), *out_ref = malloc(no * 4);
        float *din = malloc(ni * 4), *din_ref = calloc(ni, 4);
        float *dw = calloc(nw, 4), *dw_ref = calloc(nw, 4), *wtmp;
        Conv *c;
        if (conv_create(&c, &s, 1)) {
            CHECK(0, "conv_create: %s", sc_error());
            continue;
        }
        void *scratch = sc_alloc(conv_scratch_bytes(c) + 64);
        wtmp = malloc(conv_wtmp_floats(c) * 4);
        conv_set_weights(c, w);
        conv_forward(c, out, in, scratch);
        conv2d_forward_ref(out_ref, in, w, &s);
        conv_backward_data(c, din, dout, scratch);
        for (size_t i = 0; i < nw; i++) dw[i] = 0.5f; /* backward weights must add */
        conv_backward_weights(c, dw, dout, in, wtmp, scratch);
        for (size_t i = 0; i < nw; i++) dw[i] -= 0.5f;
        conv2d_backward_ref(din_ref, dw_ref, dout, in, w, &s);
        double at = 1e-5 * sqrt((double)q[3] * q[5] * q[5] + s.OH * s.OW * s.B);
        char what[96];
        snprintf(what, sizeof what, "case %zu (%s) forward", k, conv_impl_name(c, 0));
        CHECK_ARRAY_CLOSE(what, out, out_ref, no, 1e-4, at);
        if (bwd_as_fwd && q[6] == 1) /* stride 1: the forced route must be the one taken */
            CHECK(!strncmp(conv_impl_name(c, 1), "fwd(flipped w)", 14), "case %zu: %s", k,
                  conv_impl_name(c, 1));
        snprintf(what, sizeof what, "case %zu (%s) backward data", k, conv_impl_name(c, 1));
        CHECK_ARRAY_CLOSE(what, din, din_ref, ni, 1e-4, at);
        snprintf(what, sizeof what, "case %zu (%s) backward weights", k, conv_impl_name(c, 2));
        CHECK_ARRAY_CLOSE(what, dw, dw_ref, nw, 1e-4, at);
        conv_free(c);
        sc_free(scratch);
        free(in), free(w), free(dout), free(out), free(out_ref), free(din), free(din_ref), free(dw),
            free(dw_ref), free(wtmp);
    }
    unsetenv("SIMCLR_CONV_BWD_AS_FWD");
}

/* The fp32 weight gradient on both paths, oneDNN's fixed batch chunks (SIMCLR_CONV_WGRAD=dnnl) and
 * our own kernel (=own, conv_wgrad.h), on odd shapes: C and K not multiples of 16 (C = 3 and 5:
 * tiles that span several taps), strides 2 and 3, padding wider than needed, 7x7, 5x5 and 1x1
 * kernels, maps of 2x2 to 40x40 (the per-image pixel lists of small maps; several blocks of
 * rows, so sums go through memory between blocks). Against the double reference within rtol
 * 1e-4, atol 1e-5 x sqrt(reduction length): float32 sums of n terms of |x| <= 1 err by about
 * 1e-7 sqrt(n) per unit of magnitude, so this is about 100x the expected error, while a lost or
 * doubled term is off by ~0.1. Our kernel must also give the same bits for 1, 2, 3 and 4
 * threads, and for other tile and block sizes. */
TEST(conv_wgrad_matches_reference_any_threads) {
    static const int cases[][8] = {
        /* B H W C K R stride pad */
        {2, 9, 11, 3, 20, 7, 2, 3},  {3, 7, 7, 13, 70, 3, 2, 1}, {2, 5, 6, 17, 33, 3, 1, 1},
        {2, 8, 8, 24, 40, 1, 2, 0},  {5, 3, 3, 40, 24, 3, 1, 1}, {3, 2, 2, 7, 5, 3, 1, 1},
        {2, 4, 5, 6, 129, 3, 1, 2},  {2, 11, 10, 5, 16, 5, 3, 2}, {4, 40, 40, 8, 16, 3, 1, 1},
        {80, 3, 3, 8, 8, 3, 1, 1},   {3, 6, 6, 64, 64, 3, 2, 1},
    };
    int saved = sc_threads(), own_ok = conv_wgrad_supported();
    if (!own_ok) printf("# this CPU has no AVX-512: only oneDNN's path is checked\n");
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const int *q = cases[k];
        size_t ni, nw, no;
        ConvShape s = conv_case(q, &ni, &nw, &no);
        float *in = randv(ni, 700 + k, -1, 1), *dout = randv(no, 720 + k, -1, 1);
        float *ref = calloc(nw, 4), *dw[8];
        conv2d_backward_ref(NULL, ref, dout, in, NULL, &s);
        double at = 1e-5 * sqrt((double)s.B * s.OH * s.OW);
        /* v 0: oneDNN (2 threads); 1..4: ours on v threads; 5: ours on 3 threads with other tile
         * and block sizes (5 columns, 37-pixel blocks, no prefetch), which must not change a bit;
         * 6, 7: ours with the batch cut into 3 parts, and in 1 (other bits: only against the
         * reference; by default every shape here runs in 2 parts, its sums being small) */
        for (int v = 0; v < 8; v++) {
            if (v && !own_ok) break;
            setenv("SIMCLR_CONV_WGRAD", v ? "own" : "dnnl", 1);
            if (v == 5) {
                setenv("SIMCLR_CONV_WGRAD_MR", "5", 1);
                setenv("SIMCLR_CONV_WGRAD_BLOCK", "37", 1);
                setenv("SIMCLR_CONV_WGRAD_PF", "0", 1);
            }
            if (v == 6) setenv("SIMCLR_CONV_WGRAD_PARTS", "3", 1);
            if (v == 7) setenv("SIMCLR_CONV_WGRAD_PARTS", "1", 1);
            sc_set_threads(v == 5 || v == 7 ? 3 : v == 6 ? 2 : v ? v : 2);
            Conv *c;
            SC_ASSERT(!conv_create(&c, &s, 0));
            unsetenv("SIMCLR_CONV_WGRAD");
            unsetenv("SIMCLR_CONV_WGRAD_MR");
            unsetenv("SIMCLR_CONV_WGRAD_BLOCK");
            unsetenv("SIMCLR_CONV_WGRAD_PF");
            unsetenv("SIMCLR_CONV_WGRAD_PARTS");
            void *scratch = sc_alloc(conv_scratch_bytes(c) + 64);
            float *wtmp = sc_alloc(conv_wtmp_floats(c) * 4);
            dw[v] = malloc(nw * 4);
            for (size_t i = 0; i < nw; i++) dw[v][i] = 0.5f; /* backward weights must add */
            conv_backward_weights(c, dw[v], dout, in, wtmp, scratch);
            for (size_t i = 0; i < nw; i++) dw[v][i] -= 0.5f;
            char what[96];
            snprintf(what, sizeof what, "case %zu (%s, %d threads%s)", k, conv_impl_name(c, 2),
                     v == 5 || v == 7 ? 3 : v == 6 ? 2 : v ? v : 2,
                     v == 5 ? ", other tiles and blocks" : v == 6 ? ", 3 batch parts" : v == 7 ? ", 1 batch part" : "");
            CHECK(v == 0 || !strcmp(conv_impl_name(c, 2), "own:avx512_nhwc"), "%s: not our kernel", what);
            CHECK_ARRAY_CLOSE(what, dw[v], ref, nw, 1e-4, at);
            if (v > 1 && v < 6) CHECK(!memcmp(dw[v], dw[1], nw * 4), "%s: bits differ from 1 thread", what);
            conv_free(c);
            sc_free(scratch), sc_free(wtmp);
        }
        for (int v = 0; v < 8 && (v == 0 || own_ok); v++) free(dw[v]);
        free(in), free(dout), free(ref);
    }
    sc_set_threads(saved);
}

/* The fp32 forward and backward data of small output maps on both paths, im2col + oneDNN matmul
 * (+ col2im) (SIMCLR_CONV_SMALL=0) and our own kernel (conv_small.h: the backward data of the
 * stride-1 3x3 convs as its forward on flipped weights, of the others as its backward plan), on
 * odd shapes: 3x3, 2x2 and 4x4 maps, C and K not multiples of 16 or 64 (masked output channels),
 * batches that split into image groups of different sizes, stride 2 (3x3 and 1x1: input pixels
 * no output reads, their gradient 0), padding wider than the kernel (border positions with no
 * tap inside the map: zeros) and wider than needed (one tap row per position). Against the
 * double reference within rtol 1e-4, atol 1e-5 x sqrt(reduction length) (as above); ours must
 * give the same bits on 1, 2 and 3 threads and with other tile heights and channel blocks. */
TEST(conv_small_matches_reference_any_threads) {
    static const int cases[][8] = {
        /* B H W C K R stride pad */
        {5, 3, 3, 20, 70, 3, 1, 1}, {9, 2, 2, 13, 33, 3, 1, 1},  {16, 4, 4, 24, 64, 3, 1, 1},
        {3, 6, 6, 20, 40, 3, 2, 1}, {4, 6, 6, 24, 130, 1, 2, 0}, {3, 2, 2, 7, 20, 1, 1, 1},
        {2, 1, 1, 5, 17, 3, 1, 2},  {29, 3, 3, 16, 64, 3, 1, 1}, {8, 5, 5, 32, 96, 3, 2, 1},
    };
    int saved = sc_threads(), own_ok = conv_small_supported();
    if (!own_ok) printf("# this CPU has no AVX-512: only the im2col path is checked\n");
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const int *q = cases[k];
        size_t ni, nw, no;
        ConvShape s = conv_case(q, &ni, &nw, &no);
        float *in = randv(ni, 760 + k, -1, 1), *w = randv(nw, 780 + k, -1, 1);
        float *dout = randv(no, 800 + k, -1, 1), *ref = malloc(no * 4), *out[5], *din[5];
        float *din_ref = calloc(ni, 4), *dw_ref = calloc(nw, 4);
        conv2d_forward_ref(ref, in, w, &s);
        conv2d_backward_ref(din_ref, dw_ref, dout, in, w, &s);
        double at = 1e-5 * sqrt((double)s.C * s.R * s.S), atd = 1e-5 * sqrt((double)s.K * s.R * s.S);
        /* v 0: im2col + matmul (2 threads); 1..3: ours on v threads; 4: ours on 2 threads with
         * tiles of 3 images and blocks of 7 channels (sums through memory between blocks), which
         * must not change a bit */
        for (int v = 0; v < 5; v++) {
            if (v && !own_ok) break;
            if (!v) setenv("SIMCLR_CONV_SMALL", "0", 1);
            if (v == 4) setenv("SIMCLR_CONV_SMALL_MR", "3", 1), setenv("SIMCLR_CONV_SMALL_CB", "7", 1);
            int nt = v == 0 || v == 4 ? 2 : v;
            sc_set_threads(nt);
            Conv *c;
            SC_ASSERT(!conv_create(&c, &s, 1));
            unsetenv("SIMCLR_CONV_SMALL");
            unsetenv("SIMCLR_CONV_SMALL_MR");
            unsetenv("SIMCLR_CONV_SMALL_CB");
            void *scratch = sc_alloc(conv_scratch_bytes(c) + 64);
            out[v] = malloc(no * 4), din[v] = malloc(ni * 4);
            for (size_t i = 0; i < no; i++) out[v][i] = 1e30f; /* both must overwrite */
            for (size_t i = 0; i < ni; i++) din[v][i] = 1e30f;
            conv_set_weights(c, w);
            conv_forward(c, out[v], in, scratch);
            conv_backward_data(c, din[v], dout, scratch);
            char what[96], whatd[128];
            snprintf(what, sizeof what, "case %zu (%s, %d threads%s)", k, conv_impl_name(c, 0), nt,
                     v == 4 ? ", other tiles and blocks" : "");
            snprintf(whatd, sizeof whatd, "case %zu backward data (%s, %d threads%s)", k,
                     conv_impl_name(c, 1), nt, v == 4 ? ", other tiles and blocks" : "");
            CHECK(v == 0 || !strcmp(conv_impl_name(c, 0), "own:avx512_small"), "%s: not our kernel", what);
            CHECK(v == 0 || strstr(conv_impl_name(c, 1), "own:avx512_small"), "%s: not our kernel", whatd);
            CHECK_ARRAY_CLOSE(what, out[v], ref, no, 1e-4, at);
            CHECK_ARRAY_CLOSE(whatd, din[v], din_ref, ni, 1e-4, atd);
            if (v > 1) CHECK(!memcmp(out[v], out[1], no * 4), "%s: bits differ from 1 thread", what);
            if (v > 1) CHECK(!memcmp(din[v], din[1], ni * 4), "%s: bits differ from 1 thread", whatd);
            conv_free(c);
            sc_free(scratch);
        }
        for (int v = 0; v < 5 && (v == 0 || own_ok); v++) free(out[v]), free(din[v]);
        free(in), free(w), free(dout), free(ref), free(din_ref), free(dw_ref);
    }
    sc_set_threads(saved);
}

/* Strided 1x1 convs on conv_pw.h's GEMMs (forward and backward data): against the double
 * reference within rtol 1e-4, atol 1e-5 x sqrt(reduction length), on shapes with C and K not
 * multiples of 16 and under 64 (masked column tiles), a pixel count that is no multiple of the
 * 6-row tile, strides 2 and 3 with input rows and columns no output reads (their gradient must be
 * 0: d_in starts as garbage), and a stride-1 shape (SIMCLR_CONV_PW=own); the same bits on 1, 2
 * and 3 threads, through a weight buffer shared with other Convs too (conv_share_weights). */
TEST(conv_pw_matches_reference_any_threads) {
    static const int cases[][8] = {
        /* B H W C K R stride pad */
        {3, 7, 9, 24, 40, 1, 2, 0}, {2, 11, 14, 70, 130, 1, 3, 0}, {2, 12, 12, 64, 128, 1, 2, 0},
        {1, 9, 9, 5, 3, 1, 2, 0},   {2, 5, 4, 33, 17, 1, 1, 0},
    };
    int saved = sc_threads();
    if (!conv_wgrad_supported()) printf("# this CPU has no AVX-512: the 1x1 GEMMs are not used\n");
    for (size_t k = 0; k < sizeof cases / sizeof *cases && conv_wgrad_supported(); k++) {
        const int *q = cases[k];
        size_t ni, nw, no;
        ConvShape s = conv_case(q, &ni, &nw, &no);
        float *in = randv(ni, 800 + k, -1, 1), *w = randv(nw, 810 + k, -1, 1), *dout = randv(no, 820 + k, -1, 1);
        float *out_ref = malloc(no * 4), *din_ref = calloc(ni, 4), *dw_ref = calloc(nw, 4), *out[4], *din[4];
        conv2d_forward_ref(out_ref, in, w, &s);
        conv2d_backward_ref(din_ref, dw_ref, dout, in, w, &s);
        /* v 0: the default routing (2 threads; conv_pw_usable says which passes run here), 1-3:
         * both passes here (SIMCLR_CONV_PW=own) on v threads, 3 with a shared weight buffer */
        for (int v = 0; v <= 3; v++) {
            sc_set_threads(v ? v : 2);
            if (v) setenv("SIMCLR_CONV_PW", "own", 1);
            Conv *c;
            SC_ASSERT(!conv_create(&c, &s, 1));
            unsetenv("SIMCLR_CONV_PW");
            void *wbuf = NULL;
            if (v == 3) conv_share_weights(c, wbuf = sc_alloc(conv_weight_bytes(c)));
            void *scratch = sc_alloc(conv_scratch_bytes(c) + 64);
            out[v] = malloc(no * 4), din[v] = malloc(ni * 4);
            for (size_t i = 0; i < no; i++) out[v][i] = 7.0f;
            for (size_t i = 0; i < ni; i++) din[v][i] = 7.0f;
            conv_set_weights(c, w);
            conv_forward(c, out[v], in, scratch);
            conv_backward_data(c, din[v], dout, scratch);
            char what[96];
            snprintf(what, sizeof what, "case %zu (%s, %d threads) forward", k, conv_impl_name(c, 0), v);
            CHECK(!strcmp(conv_impl_name(c, 0), "own:avx512_1x1") == (v || conv_pw_usable(&s, 0)) &&
                      !strcmp(conv_impl_name(c, 1), "own:avx512_1x1") == (v || conv_pw_usable(&s, 1)),
                  "%s: routed to %s / %s", what, conv_impl_name(c, 0), conv_impl_name(c, 1));
            CHECK_ARRAY_CLOSE(what, out[v], out_ref, no, 1e-4, 1e-5 * sqrt((double)q[3]));
            snprintf(what, sizeof what, "case %zu (%d threads) backward data", k, v);
            CHECK_ARRAY_CLOSE(what, din[v], din_ref, ni, 1e-4, 1e-5 * sqrt((double)q[4]));
            if (v > 1)
                CHECK(!memcmp(out[v], out[1], no * 4) && !memcmp(din[v], din[1], ni * 4),
                      "case %zu: bits on %d threads differ from 1 thread", k, v);
            conv_free(c);
            sc_free(scratch), sc_free(wbuf);
        }
        for (int v = 0; v <= 3; v++) free(out[v]), free(din[v]);
        free(in), free(w), free(dout), free(out_ref), free(din_ref), free(dw_ref);
    }
    sc_set_threads(saved);
}

/* Convs sharing one weight buffer (conv_share_weights, as the model runs them: each forward right
 * after its conv_set_weights, backward data later from the remembered weights) give the same bits
 * as Convs with their own buffers; both paths (direct, im2col + GEMM) and the strided 1x1 GEMMs (conv_pw.h), fp32 and bf16. */
TEST(conv_shared_weights_bit_identical) {
    static const int cases[][8] = {{2, 8, 8, 8, 16, 3, 1, 1}, {3, 9, 9, 8, 16, 3, 2, 1},
                                   {5, 3, 3, 16, 24, 3, 1, 1}, {2, 10, 10, 8, 16, 1, 2, 0},
                                   {2, 10, 10, 128, 16, 1, 2, 0}};
    enum { NC = 5 };
    for (int dt = DT_F32; dt <= DT_BF16; dt++) {
        Conv *own[NC], *sh[NC];
        ConvShape s[NC];
        float *w[NC], *in[NC], *dout[NC];
        void *inb[NC], *doutb[NC];
        size_t wbytes = 0, scr = 0, wt = 0;
        for (int k = 0; k < NC; k++) {
            const int *q = cases[k];
            SC_ASSERT(!conv_shape_init(&s[k], q[0], q[1], q[2], q[3], q[4], q[5], q[5], q[6], q[7]));
            s[k].dt = dt;
            SC_ASSERT(!conv_create(&own[k], &s[k], 1) && !conv_create(&sh[k], &s[k], 1));
            size_t ni = (size_t)q[0] * q[1] * q[2] * q[3], no = (size_t)s[k].B * s[k].OH * s[k].OW * s[k].K;
            w[k] = randv((size_t)q[4] * q[3] * q[5] * q[5], 400 + k, -1, 1);
            in[k] = randv(ni, 410 + k, -1, 1), dout[k] = randv(no, 420 + k, -1, 1);
            inb[k] = in[k], doutb[k] = dout[k];
            if (dt == DT_BF16) {
                inb[k] = malloc(ni * 2), doutb[k] = malloc(no * 2);
                bf16_from_f32_array(inb[k], in[k], ni), bf16_from_f32_array(doutb[k], dout[k], no);
            }
            if (conv_weight_bytes(sh[k]) > wbytes) wbytes = conv_weight_bytes(sh[k]);
            if (conv_scratch_bytes(own[k]) > scr) scr = conv_scratch_bytes(own[k]);
            if (conv_wtmp_floats(own[k]) > wt) wt = conv_wtmp_floats(own[k]);
        }
        void *wbuf = sc_alloc(wbytes), *scratch = sc_alloc(scr + 64);
        float *wtmp = sc_alloc(wt * 4);
        for (int k = 0; k < NC; k++) conv_share_weights(sh[k], wbuf);
        int same = 1;
        float *o[2][NC], *di[2][NC], *dw[2][NC];
        for (int v = 0; v < 2; v++) {
            Conv **cv = v ? sh : own;
            for (int k = 0; k < NC; k++) { /* all forwards, then all backwards in reverse */
                size_t no = (size_t)s[k].B * s[k].OH * s[k].OW * s[k].K;
                o[v][k] = calloc(no, 4);
                conv_set_weights(cv[k], w[k]);
                conv_forward(cv[k], o[v][k], inb[k], scratch);
            }
            for (int k = NC - 1; k >= 0; k--) {
                size_t ni = (size_t)s[k].B * s[k].H * s[k].W * s[k].C;
                size_t nw = (size_t)s[k].K * s[k].C * s[k].R * s[k].S;
                di[v][k] = malloc(ni * 4), dw[v][k] = calloc(nw, 4);
                conv_backward_weights(cv[k], dw[v][k], doutb[k], inb[k], wtmp, scratch);
                conv_backward_data(cv[k], di[v][k], doutb[k], scratch);
            }
        }
        for (int k = 0; k < NC; k++) {
            size_t no = (size_t)s[k].B * s[k].OH * s[k].OW * s[k].K * dt_size(dt);
            size_t ni = (size_t)s[k].B * s[k].H * s[k].W * s[k].C * 4;
            size_t nw = (size_t)s[k].K * s[k].C * s[k].R * s[k].S * 4;
            same &= !memcmp(o[0][k], o[1][k], no) && !memcmp(di[0][k], di[1][k], ni) &&
                    !memcmp(dw[0][k], dw[1][k], nw);
            for (int v = 0; v < 2; v++) free(o[v][k]), free(di[v][k]), free(dw[v][k]);
            conv_free(own[k]), conv_free(sh[k]);
            if (dt == DT_BF16) free(inb[k]), free(doutb[k]);
            free(w[k]), free(in[k]), free(dout[k]);
        }
        CHECK(same, "shared weight buffer (%s): outputs and gradients differ", dt ? "bf16" : "fp32");
        sc_free(wbuf), sc_free(scratch), sc_free(wtmp);
    }
}

/* The memory-saving forms the model runs give the same bits as the plain layer sequence they
 * replace: the stem's fused BN + ReLU + max pool (forward and backward, in place over the conv
 * output) and the ReLU mask of a block output recomputed from its conv output and shortcut. */
TEST(fused_stem_and_recomputed_masks_bit_identical) {
    int B = 3, H = 11, W = 14, C = 20, OH = pool_out_size(H, 3, 2, 1), OW = pool_out_size(W, 3, 2, 1);
    size_t N = (size_t)B * H * W, n = N * C, no = (size_t)B * OH * OW * C; /* 462 rows: 2 chunks */
    /* gammas of both signs: the recomputed stem output takes the window's min of x where the
     * BN scale is negative */
    float *g = randv(C, 440, 0.5, 1.5), *b = randv(C, 441, -0.5, 0.5), *dp = randv(no, 442, -1, 1);
    for (int c = 0; c < C; c += 3) g[c] = -g[c];
    double *part = malloc(batchnorm_partials(N, C) * sizeof(double));
    for (int dt = DT_F32; dt <= DT_BF16; dt++) {
        size_t es = dt_size(dt);
        float *xf = randv(n, 443, -2, 2), *res = randv(n, 444, -1, 1), *dy = randv(n, 445, -1, 1);
        void *x = xf, *r = res;
        if (dt == DT_BF16) {
            x = malloc(n * 2), r = malloc(n * 2);
            bf16_from_f32_array(x, xf, n), bf16_from_f32_array(r, res, n);
        }
        float mean[20], rstd[20], dg1[20] = {0}, db1[20] = {0}, dg2[20] = {0}, db2[20] = {0};
        void *a = malloc(n * es), *p1 = malloc(no * es), *p2 = malloc(no * es), *d1 = malloc(n * es);
        void *x2 = malloc(n * es);
        uint8_t *am1 = malloc(no), *am2 = malloc(no);
        /* forward: stats + apply + max pool against the fused pass */
        batchnorm_forward(a, mean, rstd, x, g, b, NULL, NULL, NULL, NULL, 1, 1, N, C, part, dt);
        maxpool_forward(p1, am1, a, B, H, W, C, 3, 2, 1, dt);
        float m2[20], r2[20];
        batchnorm_stats_sync(m2, r2, x, NULL, NULL, NULL, 1, N, C, part, dt, NULL);
        int nt = sc_threads();
        float *work = malloc(sizeof(float) * batchnorm_relu_maxpool_work(W, C, 3, nt));
        batchnorm_relu_maxpool_forward(p2, am2, x, m2, r2, g, b, B, H, W, C, 3, 2, 1, dt, work, nt);
        CHECK(!memcmp(mean, m2, sizeof mean) && !memcmp(rstd, r2, sizeof rstd) &&
                  !memcmp(p1, p2, no * es) && !memcmp(am1, am2, no),
              "fused stem forward (%s) differs from BN+ReLU then max pool", dt ? "bf16" : "fp32");
        memset(p2, 0, no * es);
        batchnorm_relu_maxpool_forward(p2, NULL, x, m2, r2, g, b, B, H, W, C, 3, 2, 1, dt, work, 1);
        CHECK(!memcmp(p1, p2, no * es), "fused stem forward with one work slice (%s) differs",
              dt ? "bf16" : "fp32");
        memset(p2, 0, no * es);
        batchnorm_relu_maxpool_recompute(p2, am2, x, m2, r2, g, b, B, H, W, C, 3, 2, 1, dt);
        CHECK(!memcmp(p1, p2, no * es), "stem output recomputed from the window extremes (%s) differs",
              dt ? "bf16" : "fp32");
        {   /* a zero BN scale (gamma 0) takes the argmax path: the same bits too */
            float g0 = g[1];
            g[1] = 0;
            void *p3 = malloc(no * es);
            uint8_t *am3 = malloc(no);
            batchnorm_relu_maxpool_forward(p3, am3, x, m2, r2, g, b, B, H, W, C, 3, 2, 1, dt, work, nt);
            memset(p2, 0, no * es);
            batchnorm_relu_maxpool_recompute(p2, am3, x, m2, r2, g, b, B, H, W, C, 3, 2, 1, dt);
            CHECK(!memcmp(p3, p2, no * es), "stem output recomputed from the argmax (%s) differs",
                  dt ? "bf16" : "fp32");
            g[1] = g0;
            free(p3), free(am3);
        }
        /* backward: max pool backward into a dt buffer, mask, BN backward; against the fused
         * kernel writing in place over a copy of x */
        maxpool_backward(d1, dp, am1, B, H, W, C, 3, 2, 1, dt);
        batchnorm_relu_mask_recompute(d1, x, mean, rstd, g, b, NULL, N, C, part, dt, dt);
        batchnorm_backward(d1, dg1, db1, d1, NULL, x, mean, rstd, g, 1, N, C, part, dt, dt, dt);
        memcpy(x2, x, n * es);
        batchnorm_relu_maxpool_backward(x2, dg2, db2, dp, am1, x2, mean, rstd, g, b, 1, B, H, W, C,
                                        3, 2, 1, part, dt, NULL);
        CHECK(!memcmp(d1, x2, n * es) && !memcmp(dg1, dg2, sizeof dg1) && !memcmp(db1, db2, sizeof db1),
              "fused stem backward (%s) differs from the unfused sequence", dt ? "bf16" : "fp32");
        /* a block's last BN: relu_out = the stored output against the mask recomputed from x and
         * the residual; the masked dout and the gradients must agree */
        float *dA = malloc(n * 4), *dB = malloc(n * 4);
        void *dxA = malloc(n * es), *dxB = malloc(n * es);
        batchnorm_forward(a, mean, rstd, x, g, b, NULL, NULL, NULL, r, 1, 1, N, C, part, dt);
        memcpy(dA, dy, n * 4), memcpy(dB, dy, n * 4);
        memset(dg1, 0, sizeof dg1), memset(dg2, 0, sizeof dg2);
        batchnorm_backward(dxA, dg1, db1, dA, a, x, mean, rstd, g, 1, N, C, part, dt, DT_F32, dt);
        batchnorm_relu_mask_recompute(dB, x, mean, rstd, g, b, r, N, C, part, dt, DT_F32);
        batchnorm_backward(dxB, dg2, db2, dB, NULL, x, mean, rstd, g, 1, N, C, part, dt, DT_F32, dt);
        CHECK(!memcmp(dA, dB, n * 4) && !memcmp(dxA, dxB, n * es) && !memcmp(dg1, dg2, sizeof dg1),
              "recomputed block-output mask (%s) differs from the stored output's", dt ? "bf16" : "fp32");
        /* the mask and the backward fused into one kernel: the same bits */
        memcpy(dB, dy, n * 4);
        float dg3[20] = {0}, db3[20] = {0};
        memset(db2, 0, sizeof db2);
        batchnorm_relu_mask_backward_sync(dxB, dg3, db3, dB, x, r, mean, rstd, g, b, 1, N, C, part, dt,
                                          DT_F32, dt, NULL);
        memset(dg2, 0, sizeof dg2);
        batchnorm_backward(dxA, dg2, db2, dA, NULL, x, mean, rstd, g, 1, N, C, part, dt, DT_F32, dt);
        CHECK(!memcmp(dA, dB, n * 4) && !memcmp(dxA, dxB, n * es) && !memcmp(dg2, dg3, sizeof dg2) &&
                  !memcmp(db2, db3, sizeof db2),
              "fused mask + BN backward (%s) differs from the two kernels", dt ? "bf16" : "fp32");
        if (dt == DT_BF16) free(x), free(r);
        free(work);
        free(xf), free(res), free(dy), free(a), free(p1), free(p2), free(d1), free(x2), free(am1),
            free(am2), free(dA), free(dB), free(dxA), free(dxB);
    }
    free(g), free(b), free(dp), free(part);
}

/* Relative error of got against want over a whole tensor: ||got - want|| / ||want||. */
static double rel_l2(const float *got, const float *want, size_t n) {
    double d = 0, w = 0;
    for (size_t i = 0; i < n; i++) d += ((double)got[i] - want[i]) * ((double)got[i] - want[i]), w += (double)want[i] * want[i];
    return sqrt(d / (w > 0 ? w : 1));
}

/* bf16 convolutions (DT_BF16: bf16 inputs, weights and incoming gradients, float32 accumulation,
 * bf16 forward output, float32 gradients out). Two checks per pass:
 *  - exactness: against the double reference on the bf16-ROUNDED operands, the forward output
 *    within one bf16 rounding (rtol 2^-8) and the float32 gradients within rtol 1e-4 (float32
 *    accumulation only): the kernel computes exactly the rounded problem;
 *  - the documented bf16 tolerance against the float32 problem: relative L2 error of each tensor
 *    at most 1e-2 (bf16 keeps 8 significant bits: about 2^-9 relative per operand; the sums of
 *    random-signed products here measure 2e-3 to 5e-3). */
static void conv_bf16_cases(const char *bwd_as_fwd);
TEST(conv_bf16_matches_reference) { /* as shipped, and backward data as a forward (see above) */
    conv_bf16_cases(NULL);
    conv_bf16_cases("1");
}
static void conv_bf16_cases(const char *bwd_as_fwd) {
    if (bwd_as_fwd) setenv("SIMCLR_CONV_BWD_AS_FWD", bwd_as_fwd, 1);
    static const int cases[][8] = {
        {2, 16, 16, 3, 8, 7, 2, 3}, {2, 8, 8, 8, 8, 3, 1, 1},   {3, 9, 9, 8, 16, 3, 2, 1},
        {2, 8, 8, 8, 16, 1, 2, 0},  {2, 5, 7, 32, 16, 3, 1, 1}, {4, 4, 4, 64, 64, 3, 1, 1},
        {5, 3, 3, 40, 24, 3, 1, 1}, {3, 6, 6, 24, 40, 1, 2, 0}, {4, 3, 3, 128, 256, 1, 1, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const int *q = cases[k];
        ConvShape s;
        SC_ASSERT(!conv_shape_init(&s, q[0], q[1], q[2], q[3], q[4], q[5], q[5], q[6], q[7]));
        s.dt = DT_BF16;
        size_t ni = (size_t)q[0] * q[1] * q[2] * q[3], nw = (size_t)q[4] * q[3] * q[5] * q[5];
        size_t no = (size_t)s.B * s.OH * s.OW * s.K;
        float *in = randv(ni, 10 + k, -1, 1), *w = randv(nw, 20 + k, -1, 1), *dout = randv(no, 30 + k, -1, 1);
        float *in_r = malloc(ni * 4), *w_r = malloc(nw * 4), *dout_r = malloc(no * 4);
        bf16_round_array(in_r, in, ni), bf16_round_array(w_r, w, nw), bf16_round_array(dout_r, dout, no);
        uint16_t *in_b = malloc(ni * 2), *out_b = malloc(no * 2), *dout_b = malloc(no * 2);
        bf16_from_f32_array(in_b, in, ni), bf16_from_f32_array(dout_b, dout, no);
        float *out = malloc(no * 4), *ref = malloc(no * 4), *ref32 = malloc(no * 4);
        float *din = malloc(ni * 4), *din_ref = calloc(ni, 4), *din32 = calloc(ni, 4);
        float *dw = calloc(nw, 4), *dw_ref = calloc(nw, 4), *dw32 = calloc(nw, 4), *wtmp;
        Conv *c;
        if (conv_create(&c, &s, 1)) {
            CHECK(0, "conv_create: %s", sc_error());
            continue;
        }
        void *scratch = sc_alloc(conv_scratch_bytes(c) + 64);
        wtmp = malloc(conv_wtmp_floats(c) * 4);
        conv_set_weights(c, w);
        conv_forward(c, out_b, in_b, scratch);
        bf16_to_f32_array(out, out_b, no);
        conv_backward_data(c, din, dout_b, scratch);
        for (size_t i = 0; i < nw; i++) dw[i] = 0.5f; /* backward weights must add */
        conv_backward_weights(c, dw, dout_b, in_b, wtmp, scratch);
        for (size_t i = 0; i < nw; i++) dw[i] -= 0.5f;
        conv2d_forward_ref(ref, in_r, w_r, &s);
        conv2d_backward_ref(din_ref, dw_ref, dout_r, in_r, w_r, &s);
        conv2d_forward_ref(ref32, in, w, &s);
        conv2d_backward_ref(din32, dw32, dout, in, w, &s);
        double at = 1e-5 * sqrt((double)q[3] * q[5] * q[5] + s.OH * s.OW * s.B);
        char what[128];
        snprintf(what, sizeof what, "bf16 case %zu (%s) forward", k, conv_impl_name(c, 0));
        CHECK_ARRAY_CLOSE(what, out, ref, no, 1.0 / 256, at);
        if (bwd_as_fwd && q[6] == 1)
            CHECK(!strncmp(conv_impl_name(c, 1), "fwd(flipped w)", 14), "bf16 case %zu: %s", k,
                  conv_impl_name(c, 1));
        CHECK(rel_l2(out, ref32, no) < 1e-2, "%s: relative L2 error vs fp32 %.3g", what, rel_l2(out, ref32, no));
        snprintf(what, sizeof what, "bf16 case %zu (%s) backward data", k, conv_impl_name(c, 1));
        CHECK_ARRAY_CLOSE(what, din, din_ref, ni, 1e-4, at);
        CHECK(rel_l2(din, din32, ni) < 1e-2, "%s: relative L2 error vs fp32 %.3g", what, rel_l2(din, din32, ni));
        snprintf(what, sizeof what, "bf16 case %zu (%s) backward weights", k, conv_impl_name(c, 2));
        CHECK_ARRAY_CLOSE(what, dw, dw_ref, nw, 1e-4, at);
        CHECK(rel_l2(dw, dw32, nw) < 1e-2, "%s: relative L2 error vs fp32 %.3g", what, rel_l2(dw, dw32, nw));
        if (getenv("SIMCLR_TEST_VERBOSE"))
            printf("  %s / %s / %s: rel L2 vs fp32 %.2e %.2e %.2e\n", conv_impl_name(c, 0),
                   conv_impl_name(c, 1), conv_impl_name(c, 2), rel_l2(out, ref32, no),
                   rel_l2(din, din32, ni), rel_l2(dw, dw32, nw));
        conv_free(c);
        sc_free(scratch);
        free(in), free(w), free(dout), free(in_r), free(w_r), free(dout_r), free(in_b), free(out_b),
            free(dout_b), free(out), free(ref), free(ref32), free(din), free(din_ref), free(din32),
            free(dw), free(dw_ref), free(dw32), free(wtmp);
    }
    unsetenv("SIMCLR_CONV_BWD_AS_FWD");
}

/* Every float -> bf16 conversion rounds to nearest, ties to even: ours (bf16.h: activations,
 * the GEMM path's weights) and oneDNN's (the weight reorder of the direct convolutions, the bf16
 * store of a conv's output on both paths). Truncation (or ties away from zero) would bias every
 * stored activation; exact ties make the rule visible bit for bit. */
TEST(bf16_rounding_nearest_even) {
    /* ours: 1 + k 2^-8 for k = 1..7 sits exactly halfway for odd k (bf16's step at 1 is 2^-7) */
    static const struct { float f; uint16_t want; } cases[] = {
        {1.00390625f, 0x3f80},  /* 1 + 2^-8: tie -> even 1.0 (truncation agrees) */
        {1.01171875f, 0x3f82},  /* 1 + 3 2^-8: tie -> even 1 + 2^-6 (truncation: 0x3f81) */
        {1.0040283203125f, 0x3f81}, /* just above a tie: up */
        {-1.01171875f, 0xbf82}, /* the same for negatives */
        {1.0f, 0x3f80},         {0.0f, 0x0000}, {-0.0f, 0x8000},
        {3.4028235e38f, 0x7f80}, /* FLT_MAX rounds up to inf (nearest even), truncation keeps it finite */
        {INFINITY, 0x7f80},     {-INFINITY, 0xff80},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        CHECK(bf16_from_f32(cases[i].f) == cases[i].want, "bf16_from_f32(%a) = 0x%04x, want 0x%04x",
              cases[i].f, bf16_from_f32(cases[i].f), cases[i].want);
    uint16_t qn = bf16_from_f32(NAN);
    CHECK((qn & 0x7f80) == 0x7f80 && (qn & 0x7f), "NaN -> 0x%04x, not a NaN", qn);
    float arr[64];
    uint16_t ha[64];
    for (int i = 0; i < 64; i++) arr[i] = 1.0f + (float)i / 256; /* every k 2^-8, ties included */
    bf16_from_f32_array(ha, arr, 64);
    int same = 1;
    for (int i = 0; i < 64; i++) same &= ha[i] == bf16_from_f32(arr[i]);
    CHECK(same, "bf16_from_f32_array differs from bf16_from_f32");
    /* oneDNN: 1x1 conv, 2 input channels, K = 16 outputs, on a 4x4 map (the GEMM path: matmul)
     * and a 6x6 map (the direct kernel; its weights go through oneDNN's reorder).
     *  - weights: input (1, 0) at every pixel, w[k][0] = 1 + (2k+1) 2^-8 (a tie; rounded by
     *    the weight conversion, then multiplied by 1 exactly) -> out[k] = bf16(w[k][0]);
     *  - the output store: input (1, 1), w[k] = (1, (2k+1) 2^-8), both exact in bf16: the float32
     *    sum is a tie (or k >= 8: exact) -> out[k] = bf16(1 + (2k+1) 2^-8). */
    for (int hw = 4; hw <= 6; hw += 2) {
        ConvShape s;
        SC_ASSERT(!conv_shape_init(&s, 2, hw, hw, 2, 16, 1, 1, 1, 0));
        s.dt = DT_BF16;
        size_t np = (size_t)s.B * hw * hw, no = np * 16;
        float w[32];
        uint16_t *in = malloc(np * 2 * 2), *out = malloc(no * 2);
        Conv *c;
        if (conv_create(&c, &s, 1)) {
            CHECK(0, "conv_create: %s", sc_error());
            free(in), free(out);
            continue;
        }
        void *scratch = sc_alloc(conv_scratch_bytes(c) + 64);
        for (int pass = 0; pass < 2; pass++) {
            for (int k = 0; k < 16; k++) {
                float v = 1.0f + (float)(2 * k + 1) / 256;
                w[2 * k] = pass == 0 ? v : 1.0f;   /* OIHW: (k, ch) */
                w[2 * k + 1] = pass == 0 ? 0.5f : (float)(2 * k + 1) / 256;
            }
            for (size_t p = 0; p < np; p++) in[2 * p] = bf16_from_f32(1.0f), in[2 * p + 1] = bf16_from_f32(pass ? 1.0f : 0.0f);
            conv_set_weights(c, w);
            conv_forward(c, out, in, scratch);
            int bad = 0;
            for (size_t p = 0; p < np && !bad; p++)
                for (int k = 0; k < 16; k++) {
                    uint16_t want = (uint16_t)(0x3f80 + k + (k & 1)); /* the even neighbour */
                    if (out[p * 16 + k] != want) {
                        CHECK(0, "%s, %s: pixel %zu channel %d = 0x%04x, want 0x%04x (round to nearest even)",
                              conv_impl_name(c, 0), pass ? "output store" : "weight conversion", p, k,
                              out[p * 16 + k], want);
                        bad = 1;
                        break;
                    }
                }
        }
        conv_free(c);
        sc_free(scratch);
        free(in), free(out);
    }
}

/* Our bf16 weight-gradient kernel (wgrad_bf16.h) on shapes of every kind it takes
 * (SIMCLR_CONV_WGRAD=own routes every bf16 conv to it): exact on the bf16 operands (the double
 * reference within rtol 1e-4, float32 accumulation only), with an odd batch (the last image's
 * missing partner), blocks of whole pair images (several per block, and several blocks), blocks of
 * rows within an image (maps over 512 pixels, 256 when strided), the pixel lists of small maps,
 * stride 2 with padding, 7x7 and 1x1 kernels, C = 3 (tiles that span several taps, border pixels
 * with some columns in the padding), C and K not multiples of 64 (partial tiles, zero lanes); and
 * bit-identical for 1 to 4 threads (each element of dW is one reduction in a fixed order, the
 * threads split the tiles). */
TEST(conv_bf16_own_wgrad) {
    if (!peak_cpu_has_bf16()) {
        printf("  skipped: no AVX512-BF16 on this CPU\n");
        return;
    }
    static const int cases[][8] = {
        {8, 16, 16, 32, 64, 3, 1, 1}, {3, 9, 9, 32, 24, 3, 2, 1}, {2, 11, 11, 64, 40, 7, 2, 3},
        {4, 6, 6, 96, 8, 1, 2, 0},    {6, 12, 12, 32, 264, 3, 1, 1}, {5, 3, 3, 64, 72, 3, 1, 1},
        {2, 48, 48, 3, 16, 7, 2, 3},  {3, 34, 34, 32, 64, 3, 1, 1},  {3, 10, 10, 20, 40, 3, 1, 1},
    };
    const char *prev = getenv("SIMCLR_CONV_WGRAD");
    char *saved_env = prev ? strdup(prev) : NULL;
    setenv("SIMCLR_CONV_WGRAD", "own", 1);
    int saved = sc_threads();
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const int *q = cases[k];
        ConvShape s;
        SC_ASSERT(!conv_shape_init(&s, q[0], q[1], q[2], q[3], q[4], q[5], q[5], q[6], q[7]));
        s.dt = DT_BF16;
        size_t ni = (size_t)q[0] * q[1] * q[2] * q[3], nw = (size_t)q[4] * q[3] * q[5] * q[5];
        size_t no = (size_t)s.B * s.OH * s.OW * s.K;
        float *in = randv(ni, 40 + k, -1, 1), *dout = randv(no, 50 + k, -1, 1), *w = randv(nw, 60 + k, -1, 1);
        float *in_r = malloc(ni * 4), *dout_r = malloc(no * 4), *dw_ref = calloc(nw, 4), *dw[4];
        uint16_t *in_b = malloc(ni * 2), *dout_b = malloc(no * 2);
        bf16_round_array(in_r, in, ni), bf16_round_array(dout_r, dout, no);
        bf16_from_f32_array(in_b, in, ni), bf16_from_f32_array(dout_b, dout, no);
        conv2d_backward_ref(NULL, dw_ref, dout_r, in_r, w, &s);
        for (int t = 0; t < 4; t++) {
            sc_set_threads(t + 1);
            dw[t] = calloc(nw, 4);
            Conv *c;
            if (conv_create(&c, &s, 0)) {
                CHECK(0, "conv_create: %s", sc_error());
                continue;
            }
            CHECK(!strcmp(conv_impl_name(c, 2), "own:avx512_bf16_dot"), "case %zu runs our kernel (%s)", k,
                  conv_impl_name(c, 2));
            void *scratch = sc_alloc(conv_scratch_bytes(c) + 64);
            float *wtmp = malloc(conv_wtmp_floats(c) * 4);
            conv_set_weights(c, w);
            conv_backward_weights(c, dw[t], dout_b, in_b, wtmp, scratch);
            conv_free(c);
            sc_free(scratch);
            free(wtmp);
        }
        char what[96];
        snprintf(what, sizeof what, "own bf16 weight gradient, case %zu", k);
        CHECK_ARRAY_CLOSE(what, dw[0], dw_ref, nw, 1e-4, 1e-5 * sqrt((double)s.B * s.OH * s.OW));
        for (int t = 1; t < 4; t++)
            CHECK(!memcmp(dw[0], dw[t], nw * 4), "case %zu: bit-identical with 1 and %d threads", k, t + 1);
        for (int t = 0; t < 4; t++) free(dw[t]);
        free(in), free(dout), free(w), free(in_r), free(dout_r), free(dw_ref), free(in_b), free(dout_b);
    }
    sc_set_threads(saved);
    if (saved_env) setenv("SIMCLR_CONV_WGRAD", saved_env, 1);
    else unsetenv("SIMCLR_CONV_WGRAD");
    free(saved_env);
}

TEST(conv_shape_errors) {
    ConvShape s;
    CHECK(conv_shape_init(&s, 1, 2, 2, 3, 4, 7, 7, 2, 0) == -1 && strstr(sc_error(), "too small"),
          "%s", sc_error());
    CHECK(conv_shape_init(&s, 0, 2, 2, 3, 4, 1, 1, 1, 0) == -1, "B = 0");
    CHECK(conv_shape_init(&s, 1, 1, 1, 3, 4, 7, 7, 2, 3) == 0 && s.OH == 1, "1x1 with pad 3");
}

/* ---- batch norm ---------------------------------------------------------------------------- */

typedef struct {
    size_t N;
    int C, relu, training, fast;
    float *x, *gamma, *beta, *res, *out, *R, *mean, *rstd, *rm, *rv;
    double *partials;
} BnCtx;

static double bn_loss(void *p) {
    BnCtx *b = p;
    if (b->fast)
        batchnorm_forward(b->out, b->mean, b->rstd, b->x, b->gamma, b->beta,
                          b->training ? NULL : b->rm, b->training ? NULL : b->rv, NULL,
                          b->res, b->relu, b->training, b->N, b->C, b->partials, DT_F32);
    else
        batchnorm_forward_ref(b->out, b->mean, b->rstd, b->x, b->gamma, b->beta, b->rm, b->rv,
                              NULL, b->res, b->relu, b->training, b->N, b->C);
    return dotd(b->out, b->R, b->N * b->C);
}

TEST(batchnorm_gradcheck) {
    /* (N, C, relu, residual, training, fast) */
    static const int cases[][6] = {{12, 3, 0, 0, 1, 0}, {12, 3, 1, 0, 1, 0}, {10, 4, 1, 1, 1, 0},
                                   {12, 3, 0, 0, 1, 1}, {300, 5, 0, 1, 1, 1}, {12, 3, 1, 1, 1, 1}, {9, 3, 1, 0, 0, 1},
                                   {9, 3, 0, 1, 0, 0}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const int *q = cases[k];
        BnCtx b = {.N = q[0], .C = q[1], .relu = q[2], .training = q[4], .fast = q[5]};
        size_t n = b.N * b.C;
        b.x = randv(n, 40 + k, -2, 3);
        b.gamma = randv(b.C, 50 + k, 0.5f, 1.5f), b.beta = randv(b.C, 60 + k, -0.5f, 0.5f);
        b.res = q[3] ? randv(n, 70 + k, -1, 1) : NULL;
        b.R = randv(n, 80 + k, -1, 1);
        b.out = malloc(n * 4), b.mean = malloc(b.C * 4), b.rstd = malloc(b.C * 4);
        b.rm = randv(b.C, 90 + k, -0.2f, 0.2f), b.rv = randv(b.C, 95 + k, 0.5f, 2.0f);
        b.partials = malloc(batchnorm_partials(b.N, b.C) * sizeof(double));
        bn_loss(&b);
        float *dout = malloc(n * 4), *dx = malloc(n * 4), *dg = calloc(b.C, 4), *db = calloc(b.C, 4);
        memcpy(dout, b.R, n * 4);
        if (b.fast)
            batchnorm_backward(dx, dg, db, dout, b.relu ? b.out : NULL, b.x, b.mean, b.rstd,
                               b.gamma, b.training, b.N, b.C, b.partials, DT_F32, DT_F32, DT_F32);
        else
            batchnorm_backward_ref(dx, dg, db, dout, b.relu ? b.out : NULL, b.x, b.mean, b.rstd,
                                   b.gamma, b.training, b.N, b.C);
        /* the masked upstream gradient is the residual's gradient */
        if (b.res) {
            int ok = 1;
            for (size_t i = 0; i < n; i++) ok &= dout[i] == (b.relu && !(b.out[i] > 0) ? 0 : b.R[i]);
            CHECK(ok, "case %zu: masked dout written back", k);
        }
        char what[64];
        snprintf(what, sizeof what, "bn case %zu dx", k);
        float eps = b.relu ? 1e-3f : 1e-2f; /* small steps across the ReLU kinks */
        fd_check(what, b.x, dx, n, bn_loss, &b, eps);
        snprintf(what, sizeof what, "bn case %zu dgamma", k);
        fd_check(what, b.gamma, dg, b.C, bn_loss, &b, eps);
        snprintf(what, sizeof what, "bn case %zu dbeta", k);
        fd_check(what, b.beta, db, b.C, bn_loss, &b, eps);
        free(b.x), free(b.gamma), free(b.beta), free(b.res), free(b.R), free(b.out), free(b.mean),
            free(b.rstd), free(b.rm), free(b.rv), free(b.partials), free(dout), free(dx), free(dg), free(db);
    }
}

/* Fast kernel vs reference on a large N (several reduction chunks), all fusions, train and eval;
 * running statistics as PyTorch (momentum 0.1, unbiased variance). */
TEST(batchnorm_fast_matches_reference) {
    size_t N = 1000;
    int C = 19;
    for (int mode = 0; mode < 8; mode++) {
        int relu = mode & 1, use_res = mode & 2, training = !(mode & 4);
        size_t n = N * C;
        float *x = randv(n, 100 + mode, -1, 5), *g = randv(C, 110, 0.5f, 2), *b = randv(C, 111, -1, 1);
        float *res = use_res ? randv(n, 112, -1, 1) : NULL, *R = randv(n, 113, -1, 1);
        float *o1 = malloc(n * 4), *o2 = malloc(n * 4), m1[19], m2[19], r1[19], r2[19];
        float rm1[19], rv1[19], rm2[19], rv2[19];
        int64_t nb1 = 3, nb2 = 3;
        for (int c = 0; c < C; c++) rm1[c] = rm2[c] = 0.1f * c, rv1[c] = rv2[c] = 1 + 0.05f * c;
        double *part = malloc(batchnorm_partials(N, C) * sizeof(double));
        batchnorm_forward(o1, m1, r1, x, g, b, rm1, rv1, &nb1, res, relu, training, N, C, part, DT_F32);
        batchnorm_forward_ref(o2, m2, r2, x, g, b, rm2, rv2, &nb2, res, relu, training, N, C);
        CHECK_ARRAY_CLOSE("bn out", o1, o2, n, 1e-5, 1e-5);
        CHECK_ARRAY_CLOSE("bn running mean", rm1, rm2, C, 1e-5, 1e-6);
        CHECK_ARRAY_CLOSE("bn running var", rv1, rv2, C, 1e-5, 1e-6);
        CHECK(nb1 == 3 + training && nb2 == nb1, "num_batches_tracked %lld", (long long)nb1);
        if (training) {
            /* running stats by hand: 0.9 * old + 0.1 * stat, unbiased variance */
            for (int c = 0; c < C; c++) {
                double s = 0, ss = 0;
                for (size_t r = 0; r < N; r++) s += x[r * C + c];
                double mu = s / N;
                for (size_t r = 0; r < N; r++) ss += (x[r * C + c] - mu) * (x[r * C + c] - mu);
                CHECK_CLOSE("running mean", rm1[c], 0.9 * 0.1 * c + 0.1 * mu, 1e-5, 1e-6);
                CHECK_CLOSE("running var", rv1[c], 0.9 * (1 + 0.05 * c) + 0.1 * ss / (N - 1), 1e-5, 1e-6);
            }
        }
        float *d1 = malloc(n * 4), *d2 = malloc(n * 4), *dx1 = malloc(n * 4), *dx2 = malloc(n * 4);
        float dg1[19] = {0}, db1[19] = {0}, dg2[19] = {0}, db2[19] = {0};
        memcpy(d1, R, n * 4), memcpy(d2, R, n * 4);
        batchnorm_backward(dx1, dg1, db1, d1, relu ? o1 : NULL, x, m1, r1, g, training, N, C, part, DT_F32, DT_F32, DT_F32);
        batchnorm_backward_ref(dx2, dg2, db2, d2, relu ? o2 : NULL, x, m2, r2, g, training, N, C);
        CHECK_ARRAY_CLOSE("bn dx", dx1, dx2, n, 1e-4, 1e-5);
        CHECK_ARRAY_CLOSE("bn dgamma", dg1, dg2, C, 1e-4, 1e-4);
        CHECK_ARRAY_CLOSE("bn dbeta", db1, db2, C, 1e-4, 1e-4);
        /* in place (dx aliasing dout) gives the same */
        memcpy(d1, R, n * 4);
        memset(dg1, 0, sizeof dg1), memset(db1, 0, sizeof db1);
        batchnorm_backward(d1, dg1, db1, d1, relu ? o1 : NULL, x, m1, r1, g, training, N, C, part, DT_F32, DT_F32, DT_F32);
        CHECK(!memcmp(d1, dx1, n * 4), "in-place backward identical");
        free(x), free(g), free(b), free(res), free(R), free(o1), free(o2), free(part), free(d1),
            free(d2), free(dx1), free(dx2);
    }
}

TEST(batchnorm_thread_independent) {
    size_t N = 5000;
    int C = 24, saved = sc_threads();
    float *x = randv(N * C, 120, -1, 3), *g = randv(C, 121, 0.5f, 2), *b = randv(C, 122, -1, 1);
    float *R = randv(N * C, 123, -1, 1), *o[3], *dx[3], dg[3][24], db[3][24];
    double *part = malloc(batchnorm_partials(N, C) * sizeof(double));
    for (int t = 0; t < 3; t++) {
        sc_set_threads(t + 1);
        float mean[24], rstd[24];
        o[t] = malloc(N * C * 4), dx[t] = malloc(N * C * 4);
        memset(dg[t], 0, sizeof dg[t]), memset(db[t], 0, sizeof db[t]);
        batchnorm_forward(o[t], mean, rstd, x, g, b, NULL, NULL, NULL, NULL, 1, 1, N, C, part, DT_F32);
        memcpy(dx[t], R, N * C * 4);
        batchnorm_backward(dx[t], dg[t], db[t], dx[t], o[t], x, mean, rstd, g, 1, N, C, part, DT_F32, DT_F32, DT_F32);
    }
    sc_set_threads(saved);
    for (int t = 1; t < 3; t++) {
        CHECK(!memcmp(o[0], o[t], N * C * 4), "bn out, %d threads vs 1", t + 1);
        CHECK(!memcmp(dx[0], dx[t], N * C * 4), "bn dx, %d threads vs 1", t + 1);
        CHECK(!memcmp(dg[0], dg[t], C * 4) && !memcmp(db[0], db[t], C * 4), "bn dgamma/dbeta");
    }
    for (int t = 0; t < 3; t++) free(o[t]), free(dx[t]);
    free(x), free(g), free(b), free(R), free(part);
}

/* ---- relu, pools, linear ------------------------------------------------------------------- */

typedef struct {
    int B, H, W, C, kind; /* 0 relu, 1 maxpool, 2 avgpool, 3 linear */
    int I, O;
    float *in, *out, *R, *w, *bias;
    uint8_t *am;
} MiscCtx;

static double misc_loss(void *p) {
    MiscCtx *m = p;
    size_t n = 0;
    if (m->kind == 0) n = (size_t)m->B * m->C, relu_forward(m->out, m->in, n);
    if (m->kind == 1) {
        maxpool_forward(m->out, m->am, m->in, m->B, m->H, m->W, m->C, 3, 2, 1, DT_F32);
        n = (size_t)m->B * pool_out_size(m->H, 3, 2, 1) * pool_out_size(m->W, 3, 2, 1) * m->C;
    }
    if (m->kind == 2) n = (size_t)m->B * m->C, avgpool_forward(m->out, m->in, m->B, m->H * m->W, m->C, DT_F32);
    if (m->kind == 3) n = (size_t)m->B * m->O, linear_forward(m->out, m->in, m->w, m->bias, m->B, m->I, m->O);
    return dotd(m->out, m->R, n);
}

/* The bf16 variants of batch norm and the pools compute in float32 exactly what the float32
 * kernels compute on the bf16-rounded inputs, and round once on store: bit-identical to rounding
 * the float32 kernel's output (forward, backward with each gradient type, the stem's in-place
 * form, max pool forward/backward, global average pool). */
TEST(layers_bf16_equal_rounded_fp32) {
    int N = 600, C = 24; /* 3 chunks of BN_CHUNK rows, one partial */
    size_t n = (size_t)N * C;
    float *x = randv(n, 201, -2, 2), *res = randv(n, 202, -1, 1), *dy = randv(n, 203, -1, 1);
    float *g = randv(C, 204, 0.5, 1.5), *b = randv(C, 205, -0.5, 0.5);
    bf16_round_array(x, x, n), bf16_round_array(res, res, n);
    uint16_t *xb = malloc(n * 2), *rb = malloc(n * 2), *ob = malloc(n * 2), *db = malloc(n * 2), *dyb = malloc(n * 2);
    bf16_from_f32_array(xb, x, n), bf16_from_f32_array(rb, res, n);
    float *o = malloc(n * 4), *o2 = malloc(n * 4), *dx = malloc(n * 4), *dx2 = malloc(n * 4), *dyc = malloc(n * 4);
    float m1[24], r1[24], m2[24], r2[24], dg1[24] = {0}, db1[24] = {0}, dg2[24] = {0}, db2[24] = {0};
    double *part = malloc(batchnorm_partials(N, C) * sizeof(double));
    for (int relu = 0; relu < 2; relu++) {
        batchnorm_forward(o, m1, r1, x, g, b, NULL, NULL, NULL, res, relu, 1, N, C, part, DT_F32);
        batchnorm_forward(ob, m2, r2, xb, g, b, NULL, NULL, NULL, rb, relu, 1, N, C, part, DT_BF16);
        bf16_round_array(o, o, n);
        bf16_to_f32_array(o2, ob, n);
        CHECK(!memcmp(o, o2, n * 4) && !memcmp(m1, m2, sizeof m1) && !memcmp(r1, r2, sizeof r1),
              "BN forward bf16 (relu %d) = rounded fp32", relu);
        /* backward: dout float32 (masked in place), dx bf16; relu_out is the bf16 output */
        memcpy(dx, dy, n * 4), memcpy(dyc, dy, n * 4);
        batchnorm_backward(dx, dg1, db1, dx, relu ? o2 : NULL, x, m1, r1, g, 1, N, C, part, DT_F32, DT_F32, DT_F32);
        batchnorm_backward(db, dg2, db2, dyc, relu ? (const void *)ob : NULL, xb, m2, r2, g, 1, N, C, part,
                           DT_BF16, DT_F32, DT_BF16);
        bf16_round_array(dx, dx, n);
        bf16_to_f32_array(dx2, db, n);
        CHECK(!memcmp(dx, dx2, n * 4) && !memcmp(dg1, dg2, sizeof dg1) && !memcmp(db1, db2, sizeof db1),
              "BN backward f32 -> bf16 (relu %d) = rounded fp32", relu);
    }
    /* the stem's form: bf16 gradient in, bf16 out, in place, after the recomputed ReLU mask */
    bf16_from_f32_array(dyb, dy, n);
    bf16_round_array(dyc, dy, n);
    batchnorm_forward(o, m1, r1, x, g, b, NULL, NULL, NULL, NULL, 1, 1, N, C, part, DT_F32);
    batchnorm_relu_mask_recompute(dyc, x, m1, r1, g, b, NULL, N, C, part, DT_F32, DT_F32);
    batchnorm_backward(dyc, dg1, db1, dyc, NULL, x, m1, r1, g, 1, N, C, part, DT_F32, DT_F32, DT_F32);
    batchnorm_relu_mask_recompute(dyb, xb, m1, r1, g, b, NULL, N, C, part, DT_BF16, DT_BF16);
    batchnorm_backward(dyb, dg2, db2, dyb, NULL, xb, m1, r1, g, 1, N, C, part, DT_BF16, DT_BF16, DT_BF16);
    bf16_round_array(dyc, dyc, n);
    bf16_to_f32_array(dx2, dyb, n);
    CHECK(!memcmp(dyc, dx2, n * 4) && !memcmp(dg1, dg2, sizeof dg1), "BN stem backward bf16 -> bf16 = rounded fp32");
    /* pools on a (2, 10, 15, 24) map (600 rows) */
    int B = 2, H = 10, W = 15, OH = pool_out_size(H, 3, 2, 1), OW = pool_out_size(W, 3, 2, 1);
    size_t no = (size_t)B * OH * OW * C;
    uint8_t *a1 = malloc(no), *a2 = malloc(no);
    maxpool_forward(o, a1, x, B, H, W, C, 3, 2, 1, DT_F32);
    maxpool_forward(ob, a2, xb, B, H, W, C, 3, 2, 1, DT_BF16);
    bf16_to_f32_array(o2, ob, no);
    CHECK(!memcmp(o, o2, no * 4) && !memcmp(a1, a2, no), "max pool forward bf16 = fp32 on bf16 values");
    maxpool_backward(dx, dy, a1, B, H, W, C, 3, 2, 1, DT_F32);
    maxpool_backward(db, dy, a1, B, H, W, C, 3, 2, 1, DT_BF16);
    bf16_round_array(dx, dx, n);
    bf16_to_f32_array(dx2, db, n);
    CHECK(!memcmp(dx, dx2, n * 4), "max pool backward into bf16 = rounded fp32");
    avgpool_forward(o, x, B, H * W, C, DT_F32);
    avgpool_forward(o2, xb, B, H * W, C, DT_BF16);
    CHECK(!memcmp(o, o2, (size_t)B * C * 4), "average pool of bf16 = of the same values in fp32");
    free(x), free(res), free(dy), free(g), free(b), free(xb), free(rb), free(ob), free(db), free(dyb),
        free(o), free(o2), free(dx), free(dx2), free(dyc), free(part), free(a1), free(a2);
}

TEST(relu_gradcheck) {
    MiscCtx m = {.B = 4, .C = 10, .kind = 0};
    m.in = randv(40, 130, -1, 1), m.out = malloc(160), m.R = randv(40, 131, -1, 1);
    float *d = malloc(160);
    misc_loss(&m);
    relu_backward(d, m.R, m.out, 40);
    fd_check("relu d_in", m.in, d, 40, misc_loss, &m, 1e-3f);
    float y[3] = {1, 2, 3}, x[3] = {0.5f, -1, 2};
    add_inplace(y, x, 3);
    CHECK(y[0] == 1.5f && y[1] == 1 && y[2] == 5, "add");
    free(m.in), free(m.out), free(m.R), free(d);
}

TEST(maxpool_matches_reference_and_gradcheck) {
    static const int cases[][4] = {{2, 8, 8, 3}, {1, 7, 5, 4}, {2, 6, 6, 17}};
    for (int k = 0; k < 3; k++) {
        MiscCtx m = {.B = cases[k][0], .H = cases[k][1], .W = cases[k][2], .C = cases[k][3], .kind = 1};
        int OH = pool_out_size(m.H, 3, 2, 1), OW = pool_out_size(m.W, 3, 2, 1);
        size_t ni = (size_t)m.B * m.H * m.W * m.C, no = (size_t)m.B * OH * OW * m.C;
        m.in = randv(ni, 140 + k, -1, 1), m.out = malloc(no * 4), m.R = randv(no, 150 + k, -1, 1);
        m.am = malloc(no);
        float *ref = malloc(no * 4), *d = malloc(ni * 4);
        misc_loss(&m);
        maxpool_forward_ref(ref, m.in, m.B, m.H, m.W, m.C, 3, 2, 1);
        CHECK(!memcmp(ref, m.out, no * 4), "maxpool case %d equals reference", k);
        maxpool_backward(d, m.R, m.am, m.B, m.H, m.W, m.C, 3, 2, 1, DT_F32);
        fd_check("maxpool d_in", m.in, d, ni, misc_loss, &m, 1e-3f);
        free(m.in), free(m.out), free(m.R), free(m.am), free(ref), free(d);
    }
    /* ties: the first maximum in scan order gets the gradient (PyTorch) */
    float in[4] = {1, 1, 1, 1}, out[1], dout[1] = {1}, din[4];
    uint8_t am[1];
    maxpool_forward(out, am, in, 1, 2, 2, 1, 3, 2, 1, DT_F32);
    maxpool_backward(din, dout, am, 1, 2, 2, 1, 3, 2, 1, DT_F32);
    CHECK(out[0] == 1 && din[0] == 1 && din[1] == 0 && din[2] == 0 && din[3] == 0, "tie rule");
    CHECK(pool_out_size(96 / 2, 3, 2, 1) == 24 && pool_out_size(1, 3, 2, 1) == 1, "pool sizes");
}

TEST(avgpool_gradcheck) {
    MiscCtx m = {.B = 3, .H = 3, .W = 2, .C = 5, .kind = 2};
    size_t ni = 3 * 6 * 5;
    m.in = randv(ni, 160, -1, 1), m.out = malloc(15 * 4), m.R = randv(15, 161, -1, 1);
    float *d = malloc(ni * 4);
    misc_loss(&m);
    CHECK_CLOSE("avg", m.out[0], (m.in[0] + m.in[5] + m.in[10] + m.in[15] + m.in[20] + m.in[25]) / 6, 1e-6, 1e-7);
    avgpool_backward(d, m.R, 3, 6, 5);
    fd_check("avgpool d_in", m.in, d, ni, misc_loss, &m, 1e-2f);
    free(m.in), free(m.out), free(m.R), free(d);
}

TEST(linear_matches_reference_and_gradcheck) {
    MiscCtx m = {.B = 5, .I = 7, .O = 3, .kind = 3};
    m.in = randv(35, 170, -1, 1), m.w = randv(21, 171, -1, 1), m.bias = randv(3, 172, -1, 1);
    m.out = malloc(15 * 4), m.R = randv(15, 173, -1, 1);
    float ref[15], din[35], din_ref[35], dw[21] = {0}, dw_ref[21] = {0}, db[3] = {0}, db_ref[3] = {0};
    misc_loss(&m);
    linear_forward_ref(ref, m.in, m.w, m.bias, 5, 7, 3);
    CHECK_ARRAY_CLOSE("linear forward", m.out, ref, 15, 1e-6, 1e-6);
    linear_backward(din, dw, db, m.R, m.in, m.w, 5, 7, 3);
    linear_backward_ref(din_ref, dw_ref, db_ref, m.R, m.in, m.w, 5, 7, 3);
    CHECK_ARRAY_CLOSE("linear d_in", din, din_ref, 35, 1e-5, 1e-6);
    CHECK_ARRAY_CLOSE("linear d_w", dw, dw_ref, 21, 1e-5, 1e-6);
    CHECK_ARRAY_CLOSE("linear d_bias", db, db_ref, 3, 1e-5, 1e-6);
    fd_check("linear d_in", m.in, din, 35, misc_loss, &m, 1e-2f);
    fd_check("linear d_w", m.w, dw, 21, misc_loss, &m, 1e-2f);
    fd_check("linear d_bias", m.bias, db, 3, misc_loss, &m, 1e-2f);
    /* backward adds into parameter grads */
    linear_backward(NULL, dw, db, m.R, m.in, m.w, 5, 7, 3);
    for (int i = 0; i < 21; i++) dw_ref[i] *= 2;
    CHECK_ARRAY_CLOSE("linear d_w accumulates", dw, dw_ref, 21, 1e-5, 1e-6);
    free(m.in), free(m.w), free(m.bias), free(m.out), free(m.R);
}
