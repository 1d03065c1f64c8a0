/* conv.c - 2-D convolution: plain reference loops and the oneDNN fast path (see conv.h). */
#include "conv.h"

#include <dnnl.h>
#include <dnnl_debug.h>
#include <omp.h>
#include <pthread.h>
#include <string.h>

#include <stdlib.h>

#include "bf16.h"
#include "common.h"
#include "conv_small.h"
#include "conv_pw.h"
#include "conv_wgrad.h"
#include "wgrad_bf16.h"

int conv_shape_init(ConvShape *s, int B, int H, int W, int C, int K, int R, int S, int stride,
                    int pad) {
    s->B = B, s->H = H, s->W = W, s->C = C, s->K = K, s->R = R, s->S = S;
    s->stride = stride, s->pad = pad, s->dt = DT_F32;
    if (B < 1 || H < 1 || W < 1 || C < 1 || K < 1 || R < 1 || S < 1 || stride < 1 || pad < 0)
        return sc_error_set("convolution: invalid shape B%d H%d W%d C%d K%d R%d S%d stride %d pad %d",
                            B, H, W, C, K, R, S, stride, pad);
    int oh = H + 2 * pad - R, ow = W + 2 * pad - S;
    if (oh < 0 || ow < 0)
        return sc_error_set("convolution: %dx%d input too small for a %dx%d kernel with padding %d",
                            H, W, R, S, pad);
    s->OH = oh / stride + 1;
    s->OW = ow / stride + 1;
    return 0;
}

double conv_macs(const ConvShape *s) {
    return (double)s->B * s->OH * s->OW * s->K * s->C * s->R * s->S;
}

/* ---- reference ----------------------------------------------------------------------------- */

void conv2d_forward_ref(float *out, const float *in, const float *w, const ConvShape *s) {
    int B = s->B, H = s->H, W = s->W, C = s->C, K = s->K, R = s->R, S = s->S;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < s->OH; oh++)
            for (int ow = 0; ow < s->OW; ow++)
                for (int k = 0; k < K; k++) {
                    double acc = 0;
                    for (int r = 0; r < R; r++) {
                        int ih = oh * s->stride - s->pad + r;
                        if (ih < 0 || ih >= H) continue;
                        for (int q = 0; q < S; q++) {
                            int iw = ow * s->stride - s->pad + q;
                            if (iw < 0 || iw >= W) continue;
                            const float *x = in + (((size_t)b * H + ih) * W + iw) * C;
                            for (int c = 0; c < C; c++)
                                acc += (double)x[c] * w[(((size_t)k * C + c) * R + r) * S + q];
                        }
                    }
                    out[(((size_t)b * s->OH + oh) * s->OW + ow) * K + k] = (float)acc;
                }
}

void conv2d_backward_ref(float *d_in, float *d_w, const float *d_out, const float *in,
                         const float *w, const ConvShape *s) {
    int B = s->B, H = s->H, W = s->W, C = s->C, K = s->K, R = s->R, S = s->S;
    /* d_w[k,c,r,q] = sum_{b,oh,ow} d_out[b,oh,ow,k] * in[b, ih, iw, c]; one thread per k. */
#pragma omp parallel for schedule(static)
    for (int k = 0; k < K; k++)
        for (int c = 0; c < C; c++)
            for (int r = 0; r < R; r++)
                for (int q = 0; q < S; q++) {
                    double acc = 0;
                    for (int b = 0; b < B; b++)
                        for (int oh = 0; oh < s->OH; oh++) {
                            int ih = oh * s->stride - s->pad + r;
                            if (ih < 0 || ih >= H) continue;
                            for (int ow = 0; ow < s->OW; ow++) {
                                int iw = ow * s->stride - s->pad + q;
                                if (iw < 0 || iw >= W) continue;
                                acc += (double)d_out[(((size_t)b * s->OH + oh) * s->OW + ow) * K + k] *
                                       in[(((size_t)b * H + ih) * W + iw) * C + c];
                            }
                        }
                    d_w[(((size_t)k * C + c) * R + r) * S + q] += (float)acc;
                }
    if (!d_in) return;
    /* d_in[b,ih,iw,c] = sum over the outputs whose window covers (ih,iw); one thread per image. */
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < s->OH; oh++)
            for (int ow = 0; ow < s->OW; ow++)
                for (int r = 0; r < R; r++) {
                    int ih = oh * s->stride - s->pad + r;
                    if (ih < 0 || ih >= H) continue;
                    for (int q = 0; q < S; q++) {
                        int iw = ow * s->stride - s->pad + q;
                        if (iw < 0 || iw >= W) continue;
                        float *dx = d_in + (((size_t)b * H + ih) * W + iw) * C;
                        const float *dy = d_out + (((size_t)b * s->OH + oh) * s->OW + ow) * K;
                        for (int k = 0; k < K; k++)
                            for (int c = 0; c < C; c++)
                                dx[c] += dy[k] * w[(((size_t)k * C + c) * R + r) * S + q];
                    }
                }
}

/* ---- oneDNN -------------------------------------------------------------------------------- */

static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;
static int g_dnnl_ok;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void dnnl_init_once(void) {
    if (dnnl_engine_create(&g_engine, dnnl_cpu, 0) != dnnl_success) return;
    if (dnnl_stream_create(&g_stream, g_engine, dnnl_stream_default_flags) != dnnl_success) return;
    g_dnnl_ok = 1;
}

#define DNNL_TRY(call)                                                                           \
    do {                                                                                         \
        dnnl_status_t st_ = (call);                                                              \
        if (st_ != dnnl_success) {                                                               \
            sc_error_set("oneDNN: %s failed (%s) for a conv B%d %dx%dx%d -> %d, %dx%d/%d pad %d",  \
                         #call, dnnl_status2str(st_), s->B, s->H, s->W, s->C, s->K, s->R, s->S,  \
                         s->stride, s->pad);                                                     \
            goto fail;                                                                           \
        }                                                                                        \
    } while (0)

#define DNNL_RUN(call) SC_ASSERT((call) == dnnl_success)

#define GEMM_CHUNKS 8 /* fixed split of the GEMMs over threads: the bits never depend on it */

/* C (M, N) = A (M, Kd) . B (Kd, N) as GEMM_CHUNKS fixed blocks of rows (or of columns), one
 * single-threaded oneDNN matmul primitive per block size, run side by side by our parallel loop;
 * every element of C is one complete reduction by one block, so the bits never depend on the
 * thread count. With pack_b, B is in a layout the primitive chose (filled by mm_pack_b once per
 * weight change, read by every block: B is not repacked per block). */
typedef struct {
    int nkind, kind_len[2], blk_kind[GEMM_CHUNKS], used[GEMM_CHUNKS];
    dnnl_primitive_desc_t pd[2];
    dnnl_primitive_t p[2];
    dnnl_stream_t stream[GEMM_CHUNKS];
    dnnl_memory_t a[GEMM_CHUNKS], b[GEMM_CHUNKS], c[GEMM_CHUNKS], scr[GEMM_CHUNKS];
    size_t off_a[GEMM_CHUNKS], off_b[GEMM_CHUNKS], off_c[GEMM_CHUNKS]; /* bytes, per block */
    size_t scr_bytes; /* per block, rounded to 64 */
    dnnl_primitive_t reo_b; /* pack_b: (Kd, N) given as (N, Kd) row-major -> the packed layout */
    dnnl_memory_t m_bu, m_bp;
    size_t bp_bytes;
} MmBlocks;

struct Conv {
    ConvShape s;
    dnnl_primitive_desc_t pd_fwd, pd_bwd_d, pd_bwd_w;
    dnnl_primitive_t fwd, bwd_d, bwd_w;
    dnnl_primitive_t reo_w_fwd, reo_w_bwd, reo_dw; /* oihw -> fwd layout, -> bwd-data, dw -> oihw */
    dnnl_memory_t m_src, m_dst, m_w_user, m_w_fwd, m_w_bwd, m_dw, m_dw_user, m_scratch;
    dnnl_memory_t m_dsrc, m_ddst;
    /* weights in the primitives' layouts: own buffers (allocated at the first conv_set_weights;
     * w_bwd may equal w_fwd), or one buffer shared with other Convs (conv_share_weights): then
     * each pass reorders from w_src right before it runs */
    void *w_fwd, *w_bwd, *dw;
    size_t wf_bytes, wb_bytes; /* wb_bytes 0: the backward-data layout is the forward's */
    void *wshared;
    const float *w_src;
    size_t scratch_bytes, wtmp_floats;
    /* deterministic backward weights: the batch is cut into nch fixed chunks (CONV_WGRAD_CHUNKS,
     * independent of the thread count), each reduced by one single-threaded primitive (kind 0:
     * q+1 rows, kind 1: q rows), partial sums combined in chunk order */
    int nch, ch_rows[CONV_WGRAD_CHUNKS], ch_row0[CONV_WGRAD_CHUNKS], ch_kind[CONV_WGRAD_CHUNKS];
    dnnl_primitive_desc_t pd_wc[2];
    dnnl_primitive_t bwd_wc[2], reo_dwc[2];
    dnnl_stream_t ch_stream[CONV_WGRAD_CHUNKS];
    dnnl_memory_t ch_src[CONV_WGRAD_CHUNKS], ch_ddst[CONV_WGRAD_CHUNKS], ch_dw[CONV_WGRAD_CHUNKS],
        ch_dwu[CONV_WGRAD_CHUNKS], ch_scr[CONV_WGRAD_CHUNKS];
    size_t ch_scr_bytes, ch_dw_bytes; /* per chunk, rounded to 64 */
    /* small output maps: forward and backward weights as im2col + GEMM (see conv.h) */
    int gemm;
    ConvWgrad *wg; /* fp32 weight gradient by our own kernel (conv_wgrad.h) instead of oneDNN */
    void *w_krsc; /* (K, R, S, C); bf16: uint16 (the shared buffer when shared); fp32: followed
                     (at krsc_bytes rounded to 64) by the forward's packed copy */
    dnnl_primitive_t reo_krsc; /* fp32: (K,C,R,S) -> (K,R,S,C) */
    dnnl_memory_t m_krsc;
    /* GEMMs as single-threaded oneDNN matmuls per fixed block: forward (rows of the output;
     * fp32: weights packed once per step), bf16 backward weights (output channels), fp32
     * backward data (columns of the im2col gradient) */
    MmBlocks mm_fwd, mm_wgt, mm_bwd;
    size_t mm_col_bytes, mm_dyt_bytes; /* scratch layout: col, d_out transposed, per block */
    /* bf16 backward weights by our own kernel (wgrad_bf16.h) instead of the chunks / mm_wgt */
    WgradBf16 *wb;
    /* fp32 forward of the GEMM path by our own kernel (conv_small.h) instead of im2col + mm_fwd;
     * its packed weights take the place of mm_fwd's after the (K, R, S, C) copy; and the
     * backward data where it is no forward conv (strided) instead of mm_bwd + col2im, its packed
     * weights in place of the (K, R, S, C) copy */
    ConvSmall *small, *small_bwd;
    /* strided 1x1 (fp32): the forward (pw_fwd; weights W^T (C, K) in w_fwd) and backward data
     * (pw_bwd; reading w_src) by conv_pw.h */
    int pw_fwd, pw_bwd;
    /* stride-1 backward data as a forward convolution of d_out with the flipped, transposed
     * weights (see bwdf_wanted); the flipped (C,K,R,S) copy lives at the start of the scratch */
    Conv *bwdf;
    size_t flip_bytes;
    char bwdf_name[64];
};

/* conv_create_impl's flags: a forward-only Conv (no backward primitives or plans), and one whose
 * output is float32 whatever s->dt (bf16 inputs and weights, float32 output) */
enum { CONV_FWD_ONLY = 1, CONV_OUT_F32 = 2 };

/* Output maps with at most this many pixels use the GEMM path (override: SIMCLR_CONV_GEMM_PIXELS,
 * for experiments; 0 disables it). */
static int gemm_max_pixels(void) {
    const char *e = getenv("SIMCLR_CONV_GEMM_PIXELS");
    return e ? atoi(e) : 16;
}

/* Which fp32 weight gradients run on our own kernel (conv_wgrad.h): SIMCLR_CONV_WGRAD=own (every
 * shape), dnnl (none), or unset (the shapes where it was measured faster, below). */
static int use_own_wgrad(const ConvShape *s) {
    if (s->dt != DT_F32 || !conv_wgrad_supported()) return 0;
    const char *e = getenv("SIMCLR_CONV_WGRAD");
    if (e && !strcmp(e, "own")) return 1;
    if (e && !strcmp(e, "dnnl")) return 0;
    /* where it was measured faster (doc/core.md): every conv but the 1x1 ones on maps larger than
     * the GEMM path's (oneDNN's 1x1 kernels win there) and the strided ones on the GEMM path's
     * small maps (im2col + sgemm wins there) */
    int small = (long long)s->OH * s->OW <= 16;
    if (s->R == 1 && s->S == 1 && !small) return 0;
    return !(s->stride > 1 && small);
}

/* Whether the fp32 forward of the GEMM path runs on our own kernel (conv_small.h): by default
 * wherever the CPU has AVX-512; SIMCLR_CONV_SMALL=0 keeps im2col + oneDNN matmul (A/B, tests). */
static int use_small(const ConvShape *s) {
    if (s->dt != DT_F32 || !conv_small_supported()) return 0;
    const char *e = getenv("SIMCLR_CONV_SMALL");
    return !(e && !strcmp(e, "0"));
}

/* col (B*OH*OW, R*S*C) from in (B,H,W,C): row (b,oh,ow) holds the receptive field, zero padded */
static void im2col_nhwc(void *col_, const void *in_, const ConvShape *s) {
    size_t rsc = (size_t)s->R * s->S * s->C, es = dt_size(s->dt);
    char *col = col_;
    const char *in = in_;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < s->B; b++)
        for (int oh = 0; oh < s->OH; oh++)
            for (int ow = 0; ow < s->OW; ow++) {
                char *row = col + (((size_t)b * s->OH + oh) * s->OW + ow) * rsc * es;
                for (int r = 0; r < s->R; r++)
                    for (int q = 0; q < s->S; q++) {
                        int ih = oh * s->stride - s->pad + r, iw = ow * s->stride - s->pad + q;
                        char *dst = row + ((size_t)r * s->S + q) * s->C * es;
                        if (ih < 0 || ih >= s->H || iw < 0 || iw >= s->W)
                            memset(dst, 0, es * s->C);
                        else
                            memcpy(dst, in + (((size_t)b * s->H + ih) * s->W + iw) * s->C * es,
                                   es * s->C);
                    }
            }
}

/* d_in (B,H,W,C) = col2im of dcol (B*OH*OW, R*S*C), as a gather: every input pixel sums the
 * entries of the receptive fields that cover it, in (r, s) order (fixed: the bits never depend
 * on the thread count); pixels no window covers get 0 */
static void col2im_nhwc(float *d_in, const float *dcol, const ConvShape *s) {
    size_t rsc = (size_t)s->R * s->S * s->C;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < s->B; b++)
        for (int ih = 0; ih < s->H; ih++)
            for (int iw = 0; iw < s->W; iw++) {
                float *d = d_in + (((size_t)b * s->H + ih) * s->W + iw) * s->C;
                for (int ch = 0; ch < s->C; ch++) d[ch] = 0;
                for (int r = 0; r < s->R; r++) {
                    int t = ih + s->pad - r, oh = t / s->stride;
                    if (t < 0 || t % s->stride || oh >= s->OH) continue;
                    for (int q = 0; q < s->S; q++) {
                        int u = iw + s->pad - q, ow = u / s->stride;
                        if (u < 0 || u % s->stride || ow >= s->OW) continue;
                        const float *g = dcol + (((size_t)b * s->OH + oh) * s->OW + ow) * rsc +
                                         ((size_t)r * s->S + q) * s->C;
#pragma omp simd
                        for (int ch = 0; ch < s->C; ch++) d[ch] += g[ch];
                    }
                }
            }
}

static int wgrad_chunks(void) {
    const char *e = getenv("SIMCLR_CONV_WGRAD_CHUNKS");
    int n = e ? atoi(e) : 2;
    return n < 1 ? 1 : n > CONV_WGRAD_CHUNKS ? CONV_WGRAD_CHUNKS : n;
}

static size_t pd_scratch(const_dnnl_primitive_desc_t pd) {
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    return md ? dnnl_memory_desc_get_size(md) : 0;
}

/* oneDNN type of the activations (src, dst, diff_dst) and of the weights the kernels read */
static dnnl_data_type_t act_type(const ConvShape *s) { return s->dt == DT_BF16 ? dnnl_bf16 : dnnl_f32; }

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

/* The chunked backward-weights primitives, planned for ONE thread each (oneDNN plans its split
 * from omp_get_max_threads() at creation), run side by side by our own parallel loop. */
static int wgrad_chunks_create(Conv *c, dnnl_primitive_attr_t attr, const dnnl_memory_desc_t *md_w_user) {
    const ConvShape *s = &c->s;
    /* 2 chunks: one per thread on the 2-core machines this is tuned for; more chunks cost CPU
     * time (each single-threaded primitive runs less efficiently on a smaller batch, and every
     * chunk adds a partial sum to reorder and add: 4 chunks ran the weight gradients of layers
     * 1-3 at 52-67% of one core's peak per CPU-second, 2 chunks at 55-84%).
     * SIMCLR_CONV_WGRAD_CHUNKS=1..CONV_WGRAD_CHUNKS overrides it (the bits follow the count). */
    int nch = wgrad_chunks();
    if (nch > s->B) nch = s->B;
    int q = s->B / nch, r = s->B % nch, row = 0;
    c->nch = nch;
    for (int k = 0; k < nch; k++) {
        c->ch_rows[k] = q + (k < r);
        c->ch_kind[k] = k < r ? 0 : 1;
        c->ch_row0[k] = row;
        row += c->ch_rows[k];
    }
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    int rc = -1;
    dnnl_primitive_desc_t rpd = NULL;
    for (int kind = 0; kind < 2; kind++) {
        int rows = kind == 0 ? q + 1 : q;
        if ((kind == 0 && r == 0) || rows == 0) continue;
        dnnl_memory_desc_t md_src, md_dst, md_w_any;
        dnnl_dims_t src_dims = {rows, s->C, s->H, s->W}, dst_dims = {rows, s->K, s->OH, s->OW};
        dnnl_dims_t w_dims = {s->K, s->C, s->R, s->S};
        dnnl_dims_t strides = {s->stride, s->stride}, pad_l = {s->pad, s->pad};
        dnnl_dims_t pad_r = {(s->OH - 1) * s->stride + s->R - s->H - s->pad,
                             (s->OW - 1) * s->stride + s->S - s->W - s->pad};
        dnnl_convolution_desc_t d, df;
        dnnl_primitive_desc_t hint = NULL;
        dnnl_data_type_t adt = act_type(s), wdt_any;
        dnnl_memory_desc_t md_dw_any;
        wdt_any = adt;
        DNNL_TRY(dnnl_memory_desc_init_by_tag(&md_src, 4, src_dims, adt, dnnl_nhwc));
        DNNL_TRY(dnnl_memory_desc_init_by_tag(&md_dst, 4, dst_dims, adt, dnnl_nhwc));
        DNNL_TRY(dnnl_memory_desc_init_by_tag(&md_w_any, 4, w_dims, wdt_any, dnnl_format_tag_any));
        DNNL_TRY(dnnl_memory_desc_init_by_tag(&md_dw_any, 4, w_dims, dnnl_f32, dnnl_format_tag_any));
        DNNL_TRY(dnnl_convolution_forward_desc_init(&df, dnnl_forward_training, dnnl_convolution_direct,
                                                    &md_src, &md_w_any, NULL, &md_dst, strides, pad_l, pad_r));
        DNNL_TRY(dnnl_primitive_desc_create(&hint, &df, attr, g_engine, NULL));
        DNNL_TRY(dnnl_convolution_backward_weights_desc_init(&d, dnnl_convolution_direct, &md_src,
                                                             &md_dw_any, NULL, &md_dst, strides,
                                                             pad_l, pad_r));
        dnnl_status_t st = dnnl_primitive_desc_create(&c->pd_wc[kind], &d, attr, g_engine, hint);
        dnnl_primitive_desc_destroy(hint);
        DNNL_TRY(st);
        DNNL_TRY(dnnl_primitive_create(&c->bwd_wc[kind], c->pd_wc[kind]));
        const dnnl_memory_desc_t *md_dw = dnnl_primitive_desc_query_md(c->pd_wc[kind], dnnl_query_diff_weights_md, 0);
        DNNL_TRY(dnnl_reorder_primitive_desc_create(&rpd, md_dw, g_engine, md_w_user, g_engine, NULL));
        DNNL_TRY(dnnl_primitive_create(&c->reo_dwc[kind], rpd));
        dnnl_primitive_desc_destroy(rpd);
        rpd = NULL;
        if (round64(pd_scratch(c->pd_wc[kind])) > c->ch_scr_bytes) c->ch_scr_bytes = round64(pd_scratch(c->pd_wc[kind]));
        if (round64(dnnl_memory_desc_get_size(md_dw)) > c->ch_dw_bytes) c->ch_dw_bytes = round64(dnnl_memory_desc_get_size(md_dw));
    }
    for (int k = 0; k < nch; k++) {
        int kind = c->ch_kind[k];
        dnnl_memory_desc_t md_scr;
        dnnl_dims_t scr_dims = {(dnnl_dim_t)(c->ch_scr_bytes ? c->ch_scr_bytes : 1)};
        DNNL_TRY(dnnl_memory_desc_init_by_tag(&md_scr, 1, scr_dims, dnnl_u8, dnnl_a));
        DNNL_TRY(dnnl_stream_create(&c->ch_stream[k], g_engine, dnnl_stream_default_flags));
        DNNL_TRY(dnnl_memory_create(&c->ch_src[k], dnnl_primitive_desc_query_md(c->pd_wc[kind], dnnl_query_src_md, 0), g_engine, DNNL_MEMORY_NONE));
        DNNL_TRY(dnnl_memory_create(&c->ch_ddst[k], dnnl_primitive_desc_query_md(c->pd_wc[kind], dnnl_query_diff_dst_md, 0), g_engine, DNNL_MEMORY_NONE));
        DNNL_TRY(dnnl_memory_create(&c->ch_dw[k], dnnl_primitive_desc_query_md(c->pd_wc[kind], dnnl_query_diff_weights_md, 0), g_engine, DNNL_MEMORY_NONE));
        DNNL_TRY(dnnl_memory_create(&c->ch_dwu[k], md_w_user, g_engine, DNNL_MEMORY_NONE));
        DNNL_TRY(dnnl_memory_create(&c->ch_scr[k], &md_scr, g_engine, DNNL_MEMORY_NONE));
    }
    rc = 0;
fail:
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    omp_set_num_threads(saved);
    return rc;
}

static dnnl_status_t md2(dnnl_memory_desc_t *md, long rows, long cols, dnnl_data_type_t t,
                         long rs, long cs) {
    dnnl_dims_t d = {rows, cols}, st = {rs, cs};
    return dnnl_memory_desc_init_by_strides(md, 2, d, t, st);
}

/* Plans mb for C (M, N) = A (M, Kd) . B (Kd, N): A row-major of type at with leading dimension
 * lda, C row-major of type ct with ldc (elements); B of type at: b_trans 0 row-major (Kd, N) with
 * ldb, 1 row-major (N, Kd) with ldb, or with pack_b the layout the primitive picks. Blocks of rows
 * (cols 0) or of columns of B and C (cols 1, B not packed). */
static int mm_blocks_create(MmBlocks *mb, long M, long Kd, long N, int cols, dnnl_data_type_t at,
                            long lda, int b_trans, long ldb, int pack_b, dnnl_data_type_t ct,
                            long ldc) {
    int saved = omp_get_max_threads(), rc = -1;
    omp_set_num_threads(1);
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    size_t ea = at == dnnl_bf16 ? 2 : 4, ec = ct == dnnl_bf16 ? 2 : 4;
    long total = cols ? N : M;
    SC_ASSERT(!(cols && pack_b));
    if (dnnl_primitive_attr_create(&attr) != dnnl_success ||
        dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) != dnnl_success)
        goto out;
    const char *eb = getenv(cols ? "SIMCLR_GEMM_BLOCKS_COLS" : "SIMCLR_GEMM_BLOCKS_ROWS");
    int nb = eb ? atoi(eb) : GEMM_CHUNKS;
    if (nb < 1 || nb > GEMM_CHUNKS) nb = GEMM_CHUNKS;
    for (int k = 0; k < GEMM_CHUNKS; k++) {
        long i0 = k < nb ? total * k / nb : total, len = k < nb ? total * (k + 1) / nb - i0 : 0;
        long rows = cols ? M : len, n = cols ? len : N;
        mb->used[k] = len > 0;
        if (!len) continue;
        mb->off_a[k] = cols ? 0 : i0 * lda * ea;
        mb->off_b[k] = cols ? i0 * ea : 0;
        mb->off_c[k] = cols ? i0 * ec : i0 * ldc * ec;
        int kind = -1;
        for (int j = 0; j < mb->nkind; j++)
            if (mb->kind_len[j] == len) kind = j;
        dnnl_memory_desc_t ma, mbd, mc;
        if (md2(&ma, rows, Kd, at, lda, 1) || md2(&mc, rows, n, ct, ldc, 1)) goto out;
        if (pack_b && mb->nkind > 0) /* every block reads the one packed B of kind 0's layout */
            mbd = *dnnl_primitive_desc_query_md(mb->pd[0], dnnl_query_weights_md, 0);
        else if (pack_b) {
            dnnl_dims_t db = {Kd, n};
            if (dnnl_memory_desc_init_by_tag(&mbd, 2, db, at, dnnl_format_tag_any)) goto out;
        } else if (md2(&mbd, Kd, n, at, b_trans ? 1 : ldb, b_trans ? ldb : 1))
            goto out;
        if (kind < 0) {
            SC_ASSERT(mb->nkind < 2);
            kind = mb->nkind++;
            mb->kind_len[kind] = (int)len;
            dnnl_matmul_desc_t md;
            if (dnnl_matmul_desc_init(&md, &ma, &mbd, NULL, &mc) ||
                dnnl_primitive_desc_create(&mb->pd[kind], &md, attr, g_engine, NULL) ||
                dnnl_primitive_create(&mb->p[kind], mb->pd[kind]))
                goto out;
            if (pack_b && kind > 0 &&
                !dnnl_memory_desc_equal(dnnl_primitive_desc_query_md(mb->pd[kind], dnnl_query_weights_md, 0),
                                        dnnl_primitive_desc_query_md(mb->pd[0], dnnl_query_weights_md, 0)))
                goto out;
            if (round64(pd_scratch(mb->pd[kind])) > mb->scr_bytes) mb->scr_bytes = round64(pd_scratch(mb->pd[kind]));
        }
        if (pack_b) mbd = *dnnl_primitive_desc_query_md(mb->pd[kind], dnnl_query_weights_md, 0);
        mb->blk_kind[k] = kind;
        if (dnnl_stream_create(&mb->stream[k], g_engine, dnnl_stream_default_flags) ||
            dnnl_memory_create(&mb->a[k], &ma, g_engine, DNNL_MEMORY_NONE) ||
            dnnl_memory_create(&mb->b[k], &mbd, g_engine, DNNL_MEMORY_NONE) ||
            dnnl_memory_create(&mb->c[k], &mc, g_engine, DNNL_MEMORY_NONE))
            goto out;
    }
    for (int k = 0; k < GEMM_CHUNKS; k++) {
        if (!mb->used[k]) continue;
        dnnl_memory_desc_t md_scr;
        dnnl_dims_t sd = {(dnnl_dim_t)(mb->scr_bytes ? mb->scr_bytes : 1)};
        if (dnnl_memory_desc_init_by_tag(&md_scr, 1, sd, dnnl_u8, dnnl_a) ||
            dnnl_memory_create(&mb->scr[k], &md_scr, g_engine, DNNL_MEMORY_NONE))
            goto out;
    }
    if (pack_b) {
        const dnnl_memory_desc_t *mbp = dnnl_primitive_desc_query_md(mb->pd[0], dnnl_query_weights_md, 0);
        dnnl_memory_desc_t mbu;
        if (md2(&mbu, Kd, N, at, b_trans ? 1 : ldb, b_trans ? ldb : 1) ||
            dnnl_reorder_primitive_desc_create(&rpd, &mbu, g_engine, mbp, g_engine, NULL) ||
            dnnl_primitive_create(&mb->reo_b, rpd) ||
            dnnl_memory_create(&mb->m_bu, &mbu, g_engine, DNNL_MEMORY_NONE) ||
            dnnl_memory_create(&mb->m_bp, mbp, g_engine, DNNL_MEMORY_NONE))
            goto out;
        mb->bp_bytes = round64(dnnl_memory_desc_get_size(mbp));
    }
    rc = 0;
out:
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    omp_set_num_threads(saved);
    return rc;
}

static void mm_blocks_free(MmBlocks *mb) {
    for (int k = 0; k < GEMM_CHUNKS; k++) {
        dnnl_memory_t m[] = {mb->a[k], mb->b[k], mb->c[k], mb->scr[k]};
        for (int i = 0; i < 4; i++)
            if (m[i]) dnnl_memory_destroy(m[i]);
        if (mb->stream[k]) dnnl_stream_destroy(mb->stream[k]);
    }
    for (int j = 0; j < mb->nkind; j++) {
        if (mb->p[j]) dnnl_primitive_destroy(mb->p[j]);
        if (mb->pd[j]) dnnl_primitive_desc_destroy(mb->pd[j]);
    }
    if (mb->reo_b) dnnl_primitive_destroy(mb->reo_b);
    if (mb->m_bu) dnnl_memory_destroy(mb->m_bu);
    if (mb->m_bp) dnnl_memory_destroy(mb->m_bp);
}

/* pack_b: B (given as at the creation) into bp (mb->bp_bytes) */
static void mm_pack_b(MmBlocks *mb, const void *b, void *bp) {
    DNNL_RUN(dnnl_memory_set_data_handle(mb->m_bu, (void *)b));
    DNNL_RUN(dnnl_memory_set_data_handle(mb->m_bp, bp));
    dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, mb->m_bu}, {DNNL_ARG_TO, mb->m_bp}};
    DNNL_RUN(dnnl_primitive_execute(mb->reo_b, g_stream, 2, args));
    DNNL_RUN(dnnl_stream_wait(g_stream));
}

/* Runs the blocks on A at a, B at b (the packed one with pack_b), C at c; block k's scratch at
 * scr + k * scr_bytes. */
static void mm_blocks_run(MmBlocks *mb, const void *a, const void *b, void *c, char *scr) {
#pragma omp parallel for schedule(static, 1)
    for (int k = 0; k < GEMM_CHUNKS; k++) {
        if (!mb->used[k]) continue;
        DNNL_RUN(dnnl_memory_set_data_handle(mb->a[k], (char *)a + mb->off_a[k]));
        DNNL_RUN(dnnl_memory_set_data_handle(mb->b[k], (char *)b + mb->off_b[k]));
        DNNL_RUN(dnnl_memory_set_data_handle(mb->c[k], (char *)c + mb->off_c[k]));
        DNNL_RUN(dnnl_memory_set_data_handle(mb->scr[k], scr + k * mb->scr_bytes));
        dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, mb->a[k]}, {DNNL_ARG_WEIGHTS, mb->b[k]},
                                  {DNNL_ARG_DST, mb->c[k]}, {DNNL_ARG_SCRATCHPAD, mb->scr[k]}};
        DNNL_RUN(dnnl_primitive_execute(mb->p[mb->blk_kind[k]], mb->stream[k], 4, args));
        DNNL_RUN(dnnl_stream_wait(mb->stream[k]));
    }
}

/* Backward data of a stride-1 conv is the forward conv of d_out (B,OH,OW,K) with the weights
 * W'[c][k][r][s] = W[k][c][R-1-r][S-1-s] and padding R-1-pad: the same sums, and oneDNN's forward
 * kernels run 10-20% faster than its backward-data kernels on the same problem (doc/core.md).
 * SIMCLR_CONV_BWD_AS_FWD=0 keeps oneDNN's backward data, =1 forces the forward everywhere it
 * applies (experiments, tests); unset: where it was measured faster. */
static int bwdf_wanted(const ConvShape *s) {
    if (s->stride != 1 || s->R - 1 - s->pad < 0 || s->S - 1 - s->pad < 0 || s->R != s->S)
        return 0;
    const char *e = getenv("SIMCLR_CONV_BWD_AS_FWD");
    if (e) return atoi(e) != 0;
    /* fp32 only (in bf16 oneDNN's backward data is as fast as its forward), not 1x1 (no faster
     * there), and on the GEMM path's small maps only where their forward is our own kernel
     * (conv_small.h; im2col + matmul is no faster than the backward data's matmul + col2im) */
    return s->dt == DT_F32 && s->R > 1 &&
           ((long long)s->OH * s->OW > gemm_max_pixels() || use_small(s));
}

static int conv_create_impl(Conv **out, const ConvShape *s, int need_bwd_data, int flags);

int conv_create(Conv **out, const ConvShape *s, int need_bwd_data) {
    return conv_create_impl(out, s, need_bwd_data, 0);
}

static int conv_create_impl(Conv **out, const ConvShape *s, int need_bwd_data, int flags) {
    pthread_once(&g_once, dnnl_init_once);
    if (!g_dnnl_ok) return sc_error_set("oneDNN: cannot create the CPU engine");
    Conv *c = sc_alloc(sizeof *c);
    c->s = *s;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_memory_desc_t md_src, md_dst, md_w_any, md_w_user, md_dsrc, md_dw_any;
    dnnl_data_type_t adt = act_type(s);
    dnnl_dims_t src_dims = {s->B, s->C, s->H, s->W}, dst_dims = {s->B, s->K, s->OH, s->OW};
    dnnl_dims_t w_dims = {s->K, s->C, s->R, s->S};
    dnnl_dims_t strides = {s->stride, s->stride}, pad_l = {s->pad, s->pad};
    /* right padding so that the output size is exactly OH/OW (oneDNN checks consistency) */
    dnnl_dims_t pad_r = {(s->OH - 1) * s->stride + s->R - s->H - s->pad,
                         (s->OW - 1) * s->stride + s->S - s->W - s->pad};
    DNNL_TRY(dnnl_primitive_attr_create(&attr));
    DNNL_TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&md_src, 4, src_dims, adt, dnnl_nhwc));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&md_dsrc, 4, src_dims, dnnl_f32, dnnl_nhwc));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&md_dst, 4, dst_dims,
                                          flags & CONV_OUT_F32 ? dnnl_f32 : adt, dnnl_nhwc));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&md_w_any, 4, w_dims, adt, dnnl_format_tag_any));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&md_dw_any, 4, w_dims, dnnl_f32, dnnl_format_tag_any));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&md_w_user, 4, w_dims, dnnl_f32, dnnl_oihw));

    dnnl_convolution_desc_t d;
    DNNL_TRY(dnnl_convolution_forward_desc_init(&d, dnnl_forward_training, dnnl_convolution_direct,
                                                &md_src, &md_w_any, NULL, &md_dst, strides, pad_l,
                                                pad_r));
    DNNL_TRY(dnnl_primitive_desc_create(&c->pd_fwd, &d, attr, g_engine, NULL));
    DNNL_TRY(dnnl_primitive_create(&c->fwd, c->pd_fwd));
    if (need_bwd_data && bwdf_wanted(s)) {
        ConvShape t;
        if (conv_shape_init(&t, s->B, s->OH, s->OW, s->K, s->C, s->R, s->S, 1, s->R - 1 - s->pad))
            goto fail;
        t.dt = s->dt;
        SC_ASSERT(t.OH == s->H && t.OW == s->W);
        if (conv_create_impl(&c->bwdf, &t, 0, CONV_FWD_ONLY | CONV_OUT_F32)) goto fail;
        /* the flipped copy in the scratch (not with conv_small, which packs W' from w) */
        c->flip_bytes = c->bwdf->small ? 0 : round64(sizeof(float) * s->K * s->C * s->R * s->S);
        snprintf(c->bwdf_name, sizeof c->bwdf_name, "fwd(flipped w):%s", conv_impl_name(c->bwdf, 0));
        need_bwd_data = 0; /* no backward-data primitive of its own */
    }
    c->gemm = (long long)s->OH * s->OW <= gemm_max_pixels();
    c->pw_fwd = !c->gemm && conv_pw_usable(s, 0);
    c->pw_bwd = !c->gemm && need_bwd_data && conv_pw_usable(s, 1);
    if (c->gemm && use_small(s)) c->small = conv_small_create(s);
    if (c->small && need_bwd_data) c->small_bwd = conv_small_create_bwd(s);
    if (need_bwd_data && !c->pw_bwd && !c->small_bwd) { /* else our kernels: no oneDNN primitive */
        DNNL_TRY(dnnl_convolution_backward_data_desc_init(&d, dnnl_convolution_direct, &md_dsrc,
                                                          &md_w_any, &md_dst, strides, pad_l,
                                                          pad_r));
        DNNL_TRY(dnnl_primitive_desc_create(&c->pd_bwd_d, &d, attr, g_engine, c->pd_fwd));
        DNNL_TRY(dnnl_primitive_create(&c->bwd_d, c->pd_bwd_d));
    }
    int fwd_only = flags & CONV_FWD_ONLY;
    if (!fwd_only) {
        DNNL_TRY(dnnl_convolution_backward_weights_desc_init(&d, dnnl_convolution_direct, &md_src,
                                                             &md_dw_any, NULL, &md_dst, strides,
                                                             pad_l, pad_r));
        DNNL_TRY(dnnl_primitive_desc_create(&c->pd_bwd_w, &d, attr, g_engine, c->pd_fwd));
        DNNL_TRY(dnnl_primitive_create(&c->bwd_w, c->pd_bwd_w));
    }
    if (!fwd_only && use_own_wgrad(s)) c->wg = conv_wgrad_create(s);
    if (!fwd_only && wgrad_bf16_usable(s)) c->wb = wgrad_bf16_create(s);
    /* the GEMM path: oneDNN matmul primitives (Debian's oneDNN 2.6 has no bf16 GEMM function in
     * its C API; in fp32 they beat dnnl_sgemm because the weights are packed once, not once per
     * block), and dnnl_sgemm for the fp32 weight gradient */
    if (c->gemm) {
        long M = (long)s->B * s->OH * s->OW, Kd = (long)s->R * s->S * s->C;
        int bad;
        if (s->dt == DT_BF16) {
            bad = mm_blocks_create(&c->mm_fwd, M, Kd, s->K, 0, dnnl_bf16, Kd, 1, Kd, 0,
                                   flags & CONV_OUT_F32 ? dnnl_f32 : dnnl_bf16, s->K) ||
                  (!fwd_only && !c->wb &&
                   mm_blocks_create(&c->mm_wgt, s->K, M, Kd, 0, dnnl_bf16, M, 0, Kd, 0, dnnl_f32, Kd));
            c->mm_col_bytes = round64(2 * (size_t)M * Kd);
            c->mm_dyt_bytes = c->wb || fwd_only ? 0 : round64(2 * (size_t)M * s->K);
        } else {
            bad = (!c->small &&
                   mm_blocks_create(&c->mm_fwd, M, Kd, s->K, 0, dnnl_f32, Kd, 1, Kd, 1, dnnl_f32, s->K)) ||
                  (need_bwd_data && !c->small_bwd &&
                   mm_blocks_create(&c->mm_bwd, M, s->K, Kd, 1, dnnl_f32, s->K, 0, Kd, 0, dnnl_f32, Kd));
            /* col, or the gradient wrt col: for the matmul forward, backward data and the
             * weight gradient by dnnl_sgemm (not needed by conv_small's forward) */
            int col = !c->small || (need_bwd_data && !c->small_bwd) || (!fwd_only && !c->wg);
            c->mm_col_bytes = col ? round64(4 * (size_t)M * Kd) : 0;
            dnnl_memory_desc_t md_krsc;
            dnnl_primitive_desc_t kpd = NULL;
            DNNL_TRY(dnnl_memory_desc_init_by_tag(&md_krsc, 4, w_dims, dnnl_f32, dnnl_ohwi));
            DNNL_TRY(dnnl_memory_create(&c->m_krsc, &md_krsc, g_engine, DNNL_MEMORY_NONE));
            DNNL_TRY(dnnl_reorder_primitive_desc_create(&kpd, &md_w_user, g_engine, &md_krsc, g_engine, NULL));
            dnnl_status_t st = dnnl_primitive_create(&c->reo_krsc, kpd);
            dnnl_primitive_desc_destroy(kpd);
            DNNL_TRY(st);
        }
        if (bad) {
            sc_error_set("oneDNN: matmul for a conv B%d %dx%dx%d -> %d", s->B, s->H, s->W, s->C, s->K);
            goto fail;
        }
    } else if (!fwd_only && !c->wg && !c->wb && wgrad_chunks_create(c, attr, &md_w_user))
        goto fail;

    /* memories: activations get their handles at every call */
    DNNL_TRY(dnnl_memory_create(&c->m_src, &md_src, g_engine, DNNL_MEMORY_NONE));
    DNNL_TRY(dnnl_memory_create(&c->m_dst, &md_dst, g_engine, DNNL_MEMORY_NONE));
    DNNL_TRY(dnnl_memory_create(&c->m_dsrc, &md_dsrc, g_engine, DNNL_MEMORY_NONE));
    DNNL_TRY(dnnl_memory_create(&c->m_ddst, &md_dst, g_engine, DNNL_MEMORY_NONE));
    DNNL_TRY(dnnl_memory_create(&c->m_w_user, &md_w_user, g_engine, DNNL_MEMORY_NONE));
    DNNL_TRY(dnnl_memory_create(&c->m_dw_user, &md_w_user, g_engine, DNNL_MEMORY_NONE));

    const dnnl_memory_desc_t *md_wf = dnnl_primitive_desc_query_md(c->pd_fwd, dnnl_query_weights_md, 0);
    c->wf_bytes = dnnl_memory_desc_get_size(md_wf);
    DNNL_TRY(dnnl_memory_create(&c->m_w_fwd, md_wf, g_engine, DNNL_MEMORY_NONE));
    dnnl_primitive_desc_t rpd;
    DNNL_TRY(dnnl_reorder_primitive_desc_create(&rpd, &md_w_user, g_engine, md_wf, g_engine, NULL));
    DNNL_TRY(dnnl_primitive_create(&c->reo_w_fwd, rpd));
    dnnl_primitive_desc_destroy(rpd);
    if (c->pd_bwd_d) {
        const dnnl_memory_desc_t *md_wb = dnnl_primitive_desc_query_md(c->pd_bwd_d, dnnl_query_weights_md, 0);
        DNNL_TRY(dnnl_memory_create(&c->m_w_bwd, md_wb, g_engine, DNNL_MEMORY_NONE));
        if (!dnnl_memory_desc_equal(md_wb, md_wf)) {
            c->wb_bytes = dnnl_memory_desc_get_size(md_wb);
            DNNL_TRY(dnnl_reorder_primitive_desc_create(&rpd, &md_w_user, g_engine, md_wb, g_engine, NULL));
            DNNL_TRY(dnnl_primitive_create(&c->reo_w_bwd, rpd));
            dnnl_primitive_desc_destroy(rpd);
        }
    }
    if (!fwd_only) {
        const dnnl_memory_desc_t *md_dw = dnnl_primitive_desc_query_md(c->pd_bwd_w, dnnl_query_diff_weights_md, 0);
        DNNL_TRY(dnnl_memory_create(&c->m_dw, md_dw, g_engine, DNNL_MEMORY_NONE)); /* threaded only */
        DNNL_TRY(dnnl_reorder_primitive_desc_create(&rpd, md_dw, g_engine, &md_w_user, g_engine, NULL));
        DNNL_TRY(dnnl_primitive_create(&c->reo_dw, rpd));
        dnnl_primitive_desc_destroy(rpd);
    }

    c->scratch_bytes = pd_scratch(c->pd_fwd);
    if (c->pd_bwd_d && pd_scratch(c->pd_bwd_d) > c->scratch_bytes) c->scratch_bytes = pd_scratch(c->pd_bwd_d);
    if (c->pd_bwd_w && pd_scratch(c->pd_bwd_w) > c->scratch_bytes) c->scratch_bytes = pd_scratch(c->pd_bwd_w);
    if (c->bwdf && c->flip_bytes + c->bwdf->scratch_bytes > c->scratch_bytes)
        c->scratch_bytes = c->flip_bytes + c->bwdf->scratch_bytes;
    {
        size_t chunked = (size_t)c->nch * (c->ch_scr_bytes + c->ch_dw_bytes);
        if (chunked > c->scratch_bytes) c->scratch_bytes = chunked;
    }
    c->wtmp_floats = fwd_only ? 0
                     : c->wg  ? conv_wgrad_tmp_floats(s)
                              : (size_t)(c->gemm || c->wb ? 1 : c->nch) * s->K * s->C * s->R * s->S;
    if (c->wb && wgrad_bf16_scratch_bytes(c->wb) > c->scratch_bytes) c->scratch_bytes = wgrad_bf16_scratch_bytes(c->wb);
    if (c->wb && wgrad_bf16_tmp_floats(c->wb) > c->wtmp_floats) c->wtmp_floats = wgrad_bf16_tmp_floats(c->wb);
    if (c->gemm) {
        size_t mscr = c->mm_fwd.scr_bytes;
        if (c->mm_wgt.scr_bytes > mscr) mscr = c->mm_wgt.scr_bytes;
        if (c->mm_bwd.scr_bytes > mscr) mscr = c->mm_bwd.scr_bytes;
        size_t col = c->mm_col_bytes + c->mm_dyt_bytes + GEMM_CHUNKS * mscr;
        if (col > c->scratch_bytes) c->scratch_bytes = col;
    }
    {
        dnnl_memory_desc_t md_scr;
        dnnl_dims_t scr_dims = {(dnnl_dim_t)(c->scratch_bytes ? c->scratch_bytes : 1)};
        DNNL_TRY(dnnl_memory_desc_init_by_tag(&md_scr, 1, scr_dims, dnnl_u8, dnnl_a));
        DNNL_TRY(dnnl_memory_create(&c->m_scratch, &md_scr, g_engine, DNNL_MEMORY_NONE));
    }
    dnnl_primitive_attr_destroy(attr);
    *out = c;
    return 0;
fail:
    if (attr) dnnl_primitive_attr_destroy(attr);
    conv_free(c);
    return -1;
}

void conv_free(Conv *c) {
    if (!c) return;
    for (int k = 0; k < CONV_WGRAD_CHUNKS; k++) {
        dnnl_memory_t cm[] = {c->ch_src[k], c->ch_ddst[k], c->ch_dw[k], c->ch_dwu[k], c->ch_scr[k]};
        for (int i = 0; i < 5; i++)
            if (cm[i]) dnnl_memory_destroy(cm[i]);
        if (c->ch_stream[k]) dnnl_stream_destroy(c->ch_stream[k]);
    }
    for (int k = 0; k < 2; k++) {
        if (c->bwd_wc[k]) dnnl_primitive_destroy(c->bwd_wc[k]);
        if (c->reo_dwc[k]) dnnl_primitive_destroy(c->reo_dwc[k]);
        if (c->pd_wc[k]) dnnl_primitive_desc_destroy(c->pd_wc[k]);
    }
    dnnl_primitive_t prims[] = {c->fwd, c->bwd_d, c->bwd_w, c->reo_w_fwd, c->reo_w_bwd, c->reo_dw};
    for (size_t i = 0; i < sizeof prims / sizeof *prims; i++)
        if (prims[i]) dnnl_primitive_destroy(prims[i]);
    dnnl_primitive_desc_t pds[] = {c->pd_fwd, c->pd_bwd_d, c->pd_bwd_w};
    for (size_t i = 0; i < 3; i++)
        if (pds[i]) dnnl_primitive_desc_destroy(pds[i]);
    dnnl_memory_t mems[] = {c->m_src, c->m_dst, c->m_w_user, c->m_w_fwd, c->m_w_bwd, c->m_dw,
                            c->m_dw_user, c->m_scratch, c->m_dsrc, c->m_ddst};
    for (size_t i = 0; i < sizeof mems / sizeof *mems; i++)
        if (mems[i]) dnnl_memory_destroy(mems[i]);
    mm_blocks_free(&c->mm_fwd);
    mm_blocks_free(&c->mm_wgt);
    mm_blocks_free(&c->mm_bwd);
    if (c->reo_krsc) dnnl_primitive_destroy(c->reo_krsc);
    if (c->m_krsc) dnnl_memory_destroy(c->m_krsc);
    if (!c->wshared) {
        if (c->w_bwd != c->w_fwd) sc_free(c->w_bwd);
        sc_free(c->w_fwd);
        sc_free(c->w_krsc);
    }
    sc_free(c->dw);
    conv_wgrad_free(c->wg);
    wgrad_bf16_free(c->wb);
    conv_small_free(c->small);
    conv_small_free(c->small_bwd);
    conv_free(c->bwdf);
    sc_free(c);
}

size_t conv_scratch_bytes(const Conv *c) { return c->scratch_bytes; }
size_t conv_wtmp_floats(const Conv *c) { return c->wtmp_floats; }

const char *conv_impl_name(const Conv *c, int which) {
    const_dnnl_primitive_desc_t pd = which == 0 ? c->pd_fwd : which == 1 ? c->pd_bwd_d : c->pd_bwd_w;
    const char *name = "none";
    if (which == 2 && c->wg) return "own:avx512_nhwc";
    if (which == 2 && c->wb) return "own:avx512_bf16_dot";
    if (which == 0 && c->small) return "own:avx512_small";
    if (which == 1 && c->small_bwd) return "own:avx512_small_bwd";
    if ((which == 0 && c->pw_fwd) || (which == 1 && c->pw_bwd)) return "own:avx512_1x1";
    if (which == 1 && c->bwdf) return c->bwdf_name;
    if (c->gemm && c->s.dt == DT_BF16 && which != 1) return "im2col+matmul_bf16";
    if (c->gemm && c->s.dt == DT_F32)
        return which == 0 ? "im2col+matmul" : which == 1 ? "matmul+col2im" : "im2col+dnnl_sgemm";
    if (pd) dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name);
    return name;
}

static void set(dnnl_memory_t m, const void *p) {
    DNNL_RUN(dnnl_memory_set_data_handle(m, (void *)p));
}

static void exec(dnnl_primitive_t p, int n, const dnnl_exec_arg_t *args) {
    DNNL_RUN(dnnl_primitive_execute(p, g_stream, n, args));
    DNNL_RUN(dnnl_stream_wait(g_stream));
}

/* the GEMM path's weights: (K,R,S,C) (fp32 with small_bwd: its packed weights instead), and in
 * fp32 the forward's packed copy after it */
static size_t krsc_only_bytes(const Conv *c) {
    if (c->small_bwd) return conv_small_weight_bytes(c->small_bwd);
    return dt_size(c->s.dt) * c->s.K * c->s.C * c->s.R * c->s.S;
}
static size_t krsc_bytes(const Conv *c) {
    if (!c->gemm) return 0;
    if (c->s.dt != DT_F32) return krsc_only_bytes(c);
    return round64(krsc_only_bytes(c)) + (c->small ? conv_small_weight_bytes(c->small) : c->mm_fwd.bp_bytes);
}
static void *packed_w(const Conv *c) { return (char *)c->w_krsc + round64(krsc_only_bytes(c)); }

size_t conv_weight_bytes(const Conv *c) {
    size_t n = c->bwdf ? conv_weight_bytes(c->bwdf) : 0;
    if (c->wf_bytes > n) n = c->wf_bytes;
    if (c->pw_fwd && sizeof(float) * c->s.K * c->s.C > n) n = sizeof(float) * c->s.K * c->s.C;
    if (c->wb_bytes > n) n = c->wb_bytes;
    if (krsc_bytes(c) > n) n = krsc_bytes(c);
    return n;
}

void conv_share_weights(Conv *c, void *wbuf) {
    if (!c->wshared) {
        if (c->w_bwd != c->w_fwd) sc_free(c->w_bwd);
        sc_free(c->w_fwd);
        sc_free(c->w_krsc);
    }
    c->wshared = wbuf;
    c->w_fwd = c->w_bwd = c->w_krsc = wbuf;
    if (c->bwdf) conv_share_weights(c->bwdf, wbuf);
}

/* w (K,C,R,S) -> the GEMM path's (K,R,S,C) of type dt */
static void weights_krsc(Conv *c, const float *w) {
    const ConvShape *s = &c->s;
    if (s->dt == DT_F32) {
        set(c->m_w_user, w);
        set(c->m_krsc, c->w_krsc);
        dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, c->m_w_user}, {DNNL_ARG_TO, c->m_krsc}};
        exec(c->reo_krsc, 2, a);
        return;
    }
    /* bf16: written in order, each row (R,S,C) of an output channel read from its (C,R,S) row in
     * L1 (vectorised with gathers; the loop in (C,R,S) order cost ~14 ms of CPU per ResNet-18
     * step, its scattered 2-byte stores) */
    size_t rs = (size_t)s->R * s->S, n = rs * s->C;
    uint16_t *o = c->w_krsc;
    const int C = s->C;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < s->K; k++) {
        const float *wk = w + (size_t)k * n;
        uint16_t *ok = o + (size_t)k * n;
        for (size_t p = 0; p < rs; p++)
#pragma omp simd
            for (int ch = 0; ch < C; ch++) ok[p * C + ch] = bf16_from_f32(wk[(size_t)ch * rs + p]);
    }
}

/* w -> the backward-data layout in w_bwd (its own reorder, or the forward's when they agree) */
static void weights_bwd(Conv *c, const float *w) {
    set(c->m_w_user, w);
    set(c->m_w_bwd, c->w_bwd);
    dnnl_exec_arg_t b[] = {{DNNL_ARG_FROM, c->m_w_user}, {DNNL_ARG_TO, c->m_w_bwd}};
    exec(c->reo_w_bwd ? c->reo_w_bwd : c->reo_w_fwd, 2, b);
}

void conv_set_weights(Conv *c, const float *w) {
    c->w_src = w;
    if (c->pw_fwd) { /* W^T for the forward (the oneDNN layout's buffer holds it: as large or larger) */
        if (!c->w_fwd) c->w_fwd = c->w_bwd = sc_alloc(conv_weight_bytes(c));
        conv_pw_weights(&c->s, c->w_fwd, w);
        return;
    }
    if (c->gemm && c->s.dt == DT_F32) { /* (K,R,S,C), read by backward data, and the packed copy */
        if (!c->w_krsc) c->w_krsc = sc_alloc(krsc_bytes(c));
        if (c->small) { /* packed from w; with a shared buffer conv_backward_data packs small_bwd's */
            if (c->small_bwd && !c->wshared) conv_small_pack(c->small_bwd, c->w_krsc, w);
            conv_small_pack(c->small, packed_w(c), w);
            return;
        }
        weights_krsc(c, w);
        mm_pack_b(&c->mm_fwd, c->w_krsc, packed_w(c));
        return;
    }
    if (c->wshared) { /* only what the forward reads; conv_backward_data reorders its own */
        if (c->gemm) weights_krsc(c, w);
        else {
            set(c->m_w_user, w);
            set(c->m_w_fwd, c->w_fwd);
            dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, c->m_w_user}, {DNNL_ARG_TO, c->m_w_fwd}};
            exec(c->reo_w_fwd, 2, a);
        }
        return;
    }
    if (!c->w_fwd) {
        c->w_fwd = sc_alloc(c->wf_bytes);
        c->w_bwd = c->wb_bytes ? sc_alloc(c->wb_bytes) : c->w_fwd;
        if (c->gemm) c->w_krsc = sc_alloc(krsc_bytes(c));
    }
    if (c->gemm) weights_krsc(c, w);
    set(c->m_w_user, w);
    set(c->m_w_fwd, c->w_fwd);
    dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, c->m_w_user}, {DNNL_ARG_TO, c->m_w_fwd}};
    exec(c->reo_w_fwd, 2, a);
    if (c->bwd_d && c->reo_w_bwd) weights_bwd(c, w);
}

void conv_forward(Conv *c, void *out_, const void *in_, void *scratch) {
    if (c->pw_fwd) {
        conv_pw_forward(&c->s, out_, in_, c->w_fwd);
        return;
    }
    if (c->gemm && c->s.dt == DT_BF16) {
        /* out (M, K) bf16 = col (M, Kd) . w_krsc^T, blocks of output rows */
        char *col = scratch;
        im2col_nhwc(col, in_, &c->s);
        mm_blocks_run(&c->mm_fwd, col, c->w_krsc, out_, col + c->mm_col_bytes + c->mm_dyt_bytes);
        return;
    }
    if (c->small) { /* our implicit GEMM on the input in place (conv_small.h) */
        conv_small_run(c->small, out_, in_, packed_w(c));
        return;
    }
    if (c->gemm) { /* out (M, K) = col (M, Kd) . W^T, blocks of output rows, W packed */
        char *col = scratch;
        im2col_nhwc(col, in_, &c->s);
        mm_blocks_run(&c->mm_fwd, col, packed_w(c), out_, col + c->mm_col_bytes);
        return;
    }
    set(c->m_src, in_);
    set(c->m_dst, out_);
    set(c->m_scratch, scratch);
    set(c->m_w_fwd, c->w_fwd);
    dnnl_exec_arg_t a[] = {{DNNL_ARG_SRC, c->m_src}, {DNNL_ARG_WEIGHTS, c->m_w_fwd},
                           {DNNL_ARG_DST, c->m_dst}, {DNNL_ARG_SCRATCHPAD, c->m_scratch}};
    exec(c->fwd, 4, a);
}

/* w (K,C,R,S) -> wf (C,K,R,S) with each kernel rotated by 180 degrees: wf[c][k][r][s] =
 * w[k][c][R-1-r][S-1-s]; in blocks of 16 input channels, so that each reads a contiguous run of
 * w per output channel and writes 16 streams */
static void weights_flip(float *wf, const float *w, const ConvShape *s) {
    const int K = s->K, C = s->C, rs = s->R * s->S;
    const int nb = (C + 15) / 16;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < nb; b++) {
        int c0 = b * 16, c1 = c0 + 16 < C ? c0 + 16 : C;
        for (int k = 0; k < K; k++)
            for (int ch = c0; ch < c1; ch++) {
                const float *src = w + ((size_t)k * C + ch) * rs;
                float *dst = wf + ((size_t)ch * K + k) * rs;
                for (int p = 0; p < rs; p++) dst[p] = src[rs - 1 - p];
            }
    }
}

void conv_backward_data(Conv *c, float *d_in, const void *d_out, void *scratch) {
    SC_ASSERT((c->bwd_d || c->bwdf || c->pw_bwd || c->small_bwd) && c->w_src);
    if (c->pw_bwd) {
        conv_pw_backward_data(&c->s, d_in, d_out, c->w_src);
        return;
    }
    if (c->bwdf && c->bwdf->small) { /* W' packed straight from w: no flipped copy */
        Conv *f = c->bwdf;
        if (!f->w_krsc) f->w_krsc = sc_alloc(krsc_bytes(f));
        conv_small_pack_flipped(f->small, packed_w(f), c->w_src);
        conv_small_run(f->small, d_in, d_out, packed_w(f));
        return;
    }
    if (c->bwdf) {
        float *wf = scratch;
        weights_flip(wf, c->w_src, &c->s);
        conv_set_weights(c->bwdf, wf);
        conv_forward(c->bwdf, d_in, d_out, (char *)scratch + c->flip_bytes);
        return;
    }
    if (c->small_bwd) { /* our kernel, positions = input pixels (conv_small.h) */
        if (c->wshared) conv_small_pack(c->small_bwd, c->w_krsc, c->w_src); /* another layer's now */
        conv_small_run(c->small_bwd, d_in, d_out, c->w_krsc);
        return;
    }
    if (c->gemm && c->s.dt == DT_F32) {
        /* dcol (M, Kd) = d_out (M, K) . W_krsc (K, Kd), blocks of columns; then each input pixel
         * gathers its entries of dcol */
        if (c->wshared) weights_krsc(c, c->w_src); /* the shared buffer holds another layer's */
        char *dcol = scratch;
        mm_blocks_run(&c->mm_bwd, d_out, c->w_krsc, dcol, dcol + c->mm_col_bytes);
        col2im_nhwc(d_in, (const float *)dcol, &c->s);
        return;
    }
    if (c->wshared) weights_bwd(c, c->w_src); /* the shared buffer holds another layer's now */
    set(c->m_w_bwd, c->w_bwd);
    set(c->m_dsrc, d_in);
    set(c->m_ddst, d_out);
    set(c->m_scratch, scratch);
    dnnl_exec_arg_t a[] = {{DNNL_ARG_DIFF_SRC, c->m_dsrc}, {DNNL_ARG_WEIGHTS, c->m_w_bwd},
                           {DNNL_ARG_DIFF_DST, c->m_ddst}, {DNNL_ARG_SCRATCHPAD, c->m_scratch}};
    exec(c->bwd_d, 4, a);
}

void conv_backward_weights(Conv *c, float *d_w, const void *d_out_, const void *in_,
                           float *wtmp, void *scratch) {
    const char *d_out = d_out_, *in = in_; /* byte pointers: element size dt_size(s->dt) */
    const ConvShape *s = &c->s;
    size_t wn = (size_t)s->K * s->C * s->R * s->S;
    if (c->wg) {
        conv_wgrad_run(c->wg, d_w, (const float *)d_out, (const float *)in, wtmp);
        return;
    }
    if (c->wb) {
        wgrad_bf16_run(c->wb, d_w, (const uint16_t *)d_out, (const uint16_t *)in, wtmp, scratch);
        return;
    }
    if (c->gemm) {
        /* dW_krsc (K, RSC) into wtmp, then added into d_w (K, C, R, S): d_out^T (K, M) . col
         * (M, RSC) split over output channels; every element is one full reduction in a fixed
         * order */
        long M = (long)s->B * s->OH * s->OW, Kd = (long)s->R * s->S * s->C, N = s->K;
        if (s->dt == DT_BF16) {
            char *col = scratch, *dyt = col + c->mm_col_bytes;
            im2col_nhwc(col, in, s);
            /* d_out (M, K) -> (K, M): the matmul's A rows are output channels */
            const uint16_t *dy = (const uint16_t *)d_out;
            uint16_t *t = (uint16_t *)dyt;
#pragma omp parallel for schedule(static)
            for (long k = 0; k < N; k++)
                for (long mi = 0; mi < M; mi++) t[k * M + mi] = dy[mi * N + k];
            mm_blocks_run(&c->mm_wgt, dyt, col, wtmp, dyt + c->mm_dyt_bytes);
        } else {
            float *col = scratch;
            im2col_nhwc(col, in, s);
            /* blocks of columns of dW (each block reads all of d_out and its own columns of
             * col, so the large col is packed once in all) */
#pragma omp parallel for schedule(static, 1)
            for (int k = 0; k < GEMM_CHUNKS; k++) {
                long k0 = Kd * k / GEMM_CHUNKS, k1 = Kd * (k + 1) / GEMM_CHUNKS;
                if (k1 > k0)
                    DNNL_RUN(dnnl_sgemm('T', 'N', N, k1 - k0, M, 1.0f, (const float *)d_out, N,
                                        col + k0, Kd, 0.0f, wtmp + k0, Kd));
            }
        }
        size_t rs = (size_t)s->R * s->S;
#pragma omp parallel for schedule(static)
        for (int k = 0; k < s->K; k++)
            for (int ch = 0; ch < s->C; ch++)
                for (size_t p = 0; p < rs; p++)
                    d_w[((size_t)k * s->C + ch) * rs + p] += wtmp[((size_t)k * rs + p) * s->C + ch];
        return;
    }
    size_t in_row = (size_t)s->H * s->W * s->C * dt_size(s->dt),
           out_row = (size_t)s->OH * s->OW * s->K * dt_size(s->dt); /* bytes */
    /* chunk k: single-threaded primitive on rows [row0, row0 + rows), its own stream, memories,
     * scratchpad and partial sum wtmp[k] (OIHW) */
#pragma omp parallel for schedule(static, 1)
    for (int k = 0; k < c->nch; k++) {
        int kind = c->ch_kind[k];
        char *base = (char *)scratch + (size_t)k * (c->ch_scr_bytes + c->ch_dw_bytes);
        DNNL_RUN(dnnl_memory_set_data_handle(c->ch_src[k], (void *)(in + c->ch_row0[k] * in_row)));
        DNNL_RUN(dnnl_memory_set_data_handle(c->ch_ddst[k], (void *)(d_out + c->ch_row0[k] * out_row)));
        DNNL_RUN(dnnl_memory_set_data_handle(c->ch_scr[k], base));
        DNNL_RUN(dnnl_memory_set_data_handle(c->ch_dw[k], base + c->ch_scr_bytes));
        DNNL_RUN(dnnl_memory_set_data_handle(c->ch_dwu[k], wtmp + k * wn));
        dnnl_exec_arg_t a[] = {{DNNL_ARG_SRC, c->ch_src[k]}, {DNNL_ARG_DIFF_DST, c->ch_ddst[k]},
                               {DNNL_ARG_DIFF_WEIGHTS, c->ch_dw[k]}, {DNNL_ARG_SCRATCHPAD, c->ch_scr[k]}};
        DNNL_RUN(dnnl_primitive_execute(c->bwd_wc[kind], c->ch_stream[k], 4, a));
        dnnl_exec_arg_t r[] = {{DNNL_ARG_FROM, c->ch_dw[k]}, {DNNL_ARG_TO, c->ch_dwu[k]}};
        DNNL_RUN(dnnl_primitive_execute(c->reo_dwc[kind], c->ch_stream[k], 2, r));
        DNNL_RUN(dnnl_stream_wait(c->ch_stream[k]));
    }
    int nch = c->nch;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < wn; i++) {
        float acc = wtmp[i];
        for (int k = 1; k < nch; k++) acc += wtmp[k * wn + i];
        d_w[i] += acc;
    }
}

/* oneDNN's own multi-threaded backward weights (its reduction split follows the thread count);
 * kept for the speed comparison in the tests. */
void conv_backward_weights_threaded(Conv *c, float *d_w, const void *d_out, const void *in,
                                    float *wtmp, void *scratch) {
    set(c->m_src, in);
    set(c->m_ddst, d_out);
    set(c->m_scratch, scratch);
    if (!c->dw) c->dw = sc_alloc(dnnl_memory_desc_get_size(
                    dnnl_primitive_desc_query_md(c->pd_bwd_w, dnnl_query_diff_weights_md, 0)));
    set(c->m_dw, c->dw);
    dnnl_exec_arg_t a[] = {{DNNL_ARG_SRC, c->m_src}, {DNNL_ARG_DIFF_DST, c->m_ddst},
                           {DNNL_ARG_DIFF_WEIGHTS, c->m_dw}, {DNNL_ARG_SCRATCHPAD, c->m_scratch}};
    exec(c->bwd_w, 4, a);
    set(c->m_dw_user, wtmp);
    dnnl_exec_arg_t r[] = {{DNNL_ARG_FROM, c->m_dw}, {DNNL_ARG_TO, c->m_dw_user}};
    exec(c->reo_dw, 2, r);
    size_t n = (size_t)c->s.K * c->s.C * c->s.R * c->s.S;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) d_w[i] += wtmp[i];
}
