/* conv.h - 2-D convolution (no bias), forward and backward, float32, channels-last.
 *
 * Dimension legend (used in every shape comment of this file):
 *   B batch rows, H W input height/width, C input channels, K output channels,
 *   R S kernel height/width, OH OW output height/width:
 *   OH = (H + 2*pad - R) / stride + 1, OW = (W + 2*pad - S) / stride + 1.
 * Activations are channels-last (B, H, W, C) ("nhwc"); weights are torchvision's (K, C, R, S).
 *
 * Two implementations:
 *   conv2d_forward_ref / conv2d_backward_ref: plain loops, the algorithmic reference (tests only;
 *     far too slow for training).
 *   Conv: oneDNN 2.6 primitives (forward, backward data, backward weights) created once per layer
 *     shape in conv_create, on nhwc activations so no activation is ever reordered; weights are
 *     reordered from (K,C,R,S) into the layout the primitive chose once per step
 *     (conv_set_weights), weight gradients back into (K,C,R,S) and added.
 *   Small output maps (OH*OW <= 16: the last stages of a ResNet at 64-96 px) run as GEMMs
 *     instead (oneDNN's direct kernels block a row of the map into registers, and a 3-pixel row
 *     leaves them mostly idle). fp32: the forward on our own AVX-512 kernel (conv_small.h: an
 *     implicit GEMM reading the channels-last input in place, tiles of images at one output
 *     position, padding taps skipped; weights packed once per conv_set_weights;
 *     SIMCLR_CONV_SMALL=0 or a CPU without AVX-512: im2col + oneDNN matmul primitives on weights
 *     packed once per conv_set_weights), backward data as matmuls into the im2col gradient and a
 *     col2im gather, backward weights as dnnl_sgemm (strided) or our kernel (below); bf16:
 *     forward and backward weights as im2col + bf16 matmuls, backward data a oneDNN convolution.
 *     The oneDNN GEMMs are cut into fixed blocks (rows of the output for the forward, columns of
 *     the result for backward data and the fp32 weight gradient, output channels for the bf16
 *     one), one single-threaded GEMM per block.
 *
 * fp32 weight gradients run on our own AVX-512 kernel (conv_wgrad.h: an implicit-im2col GEMM in
 *   register tiles, parallel over the tiles of dW, each element reduced over the whole batch in
 *   one fixed order) on the shapes where it was measured faster than oneDNN: all but the 1x1
 *   convs on maps larger than 16 pixels and the strided convs on the small maps of the GEMM path;
 *   bf16 weight gradients of all but the 1x1 convs on maps larger than 16 pixels run on our own
 *   AVX512-BF16 kernel (wgrad_bf16.h, the same scheme on pairs of images); the other shapes and
 *   CPUs without AVX-512 keep oneDNN's kernels in fixed batch chunks (below) or the GEMM path.
 *   SIMCLR_CONV_WGRAD=own|dnnl forces one path for every shape (experiments, tests).
 * fp32 backward data of the stride-1 3x3 convs runs as the FORWARD convolution of d_out with the
 *   weights flipped and transposed (W'[c][k][r][s] = W[k][c][R-1-r][S-1-s], padding R-1-pad: a
 *   second, forward-only Conv, whose kernels are faster than oneDNN's backward-data ones: oneDNN's
 *   forward on maps larger than 16 pixels, conv_small.h's on the small maps where that kernel is
 *   the forward); SIMCLR_CONV_BWD_AS_FWD=0|1 forces
 *   oneDNN's backward data / the forward wherever it applies (experiments, tests).
 * What it deliberately does not do: bias, groups, dilation (ResNets need none of them).
 *
 * Threads: oneDNN plans its work split when a primitive is created, from omp_get_max_threads();
 * call sc_set_threads() before conv_create. The forward pass and backward data give the same bits
 * for any thread count (each output is one dot product in a fixed order). oneDNN's own backward
 * weights reduces over the batch in a split that follows the thread count, so conv_backward_weights
 * uses our kernel (deterministic by construction) or fixed batch chunks (CONV_WGRAD_CHUNKS below):
 * every result of this file is bit-identical for any number of threads.
 */
#ifndef SIMCLR_CONV_H
#define SIMCLR_CONV_H

#include <stddef.h>

typedef struct {
    int B, H, W, C, K, R, S, stride, pad;
    int OH, OW; /* filled by conv_shape_init */
    /* precision (DT_F32 by conv_shape_init; set DT_BF16 before conv_create): with DT_BF16 the
     * input `in`, the output `out` and the incoming gradient `d_out` are bf16 buffers, the
     * weights are converted to bf16 in conv_set_weights, and the products are accumulated in
     * float32; the gradients d_in and d_w stay float32. */
    int dt;
} ConvShape;

/* Fills OH/OW; returns 0, or -1 when the output would be empty (sc_error set). */
int conv_shape_init(ConvShape *s, int B, int H, int W, int C, int K, int R, int S, int stride,
                    int pad);
/* Multiply-accumulates of one forward pass of the whole batch. */
double conv_macs(const ConvShape *s);

/* ---- reference ----------------------------------------------------------------------------- */
/* out (B,OH,OW,K) = conv(in (B,H,W,C), w (K,C,R,S)); overwrites out. */
void conv2d_forward_ref(float *out, const float *in, const float *w, const ConvShape *s);
/* d_in (B,H,W,C) += ..., d_w (K,C,R,S) += ... from d_out (B,OH,OW,K). d_in may be NULL. */
void conv2d_backward_ref(float *d_in, float *d_w, const float *d_out, const float *in,
                         const float *w, const ConvShape *s);

/* ---- fast path (oneDNN) -------------------------------------------------------------------- */
typedef struct Conv Conv;
/* oneDNN's backward weights (where our kernel is not used) cuts the batch into 2 fixed chunks
 * (SIMCLR_CONV_WGRAD_CHUNKS: 1 to this many, whatever the thread count), runs one single-threaded
 * oneDNN primitive per chunk, and adds the partial sums in chunk order: the weight gradients are
 * bit-identical for any number of threads. */
#define CONV_WGRAD_CHUNKS 4
/* Creates the primitives for shape s (s->B is the batch they run on). need_bwd_data = 0 skips the
 * backward-data primitive (first layer: nobody needs the gradient of the images). */
int conv_create(Conv **c, const ConvShape *s, int need_bwd_data);
void conv_free(Conv *c);
/* Bytes of scratch memory the primitives need (pass a buffer at least that large to the calls;
 * one buffer can be shared by every Conv that runs one after another). */
size_t conv_scratch_bytes(const Conv *c);
/* Name of the oneDNN implementations chosen (e.g. "jit:avx512_core"), for logs and docs. */
const char *conv_impl_name(const Conv *c, int which /* 0 fwd, 1 bwd data, 2 bwd weights */);
/* Copies weights w (K,C,R,S) into the primitives' private layout. Call after every change of w,
 * and before conv_forward. */
void conv_set_weights(Conv *c, const float *w);
/* Weight memory: by default each Conv keeps its weights in its own buffers (forward layout,
 * backward-data layout, GEMM layout). conv_share_weights makes it use wbuf (at least
 * conv_weight_bytes(c) bytes) instead, a buffer any number of Convs can share: conv_set_weights
 * then prepares only what conv_forward reads (call it right before conv_forward, as the model
 * does), and conv_backward_data reorders its own layout from the w last given to
 * conv_set_weights, which must still hold the same values (bit-identical results either way). */
size_t conv_weight_bytes(const Conv *c);
void conv_share_weights(Conv *c, void *wbuf);
/* out (B,OH,OW,K) = conv(in (B,H,W,C)); overwrites. out, in: of type s->dt. */
void conv_forward(Conv *c, void *out, const void *in, void *scratch);
/* d_in (B,H,W,C) float32 = gradient wrt the input; OVERWRITES d_in (not accumulated).
 * d_out: of type s->dt. */
void conv_backward_data(Conv *c, float *d_in, const void *d_out, void *scratch);
/* d_w (K,C,R,S) += gradient wrt the weights. wtmp: scratch of at least conv_wtmp_floats floats.
 * d_out, in: of type s->dt. */
void conv_backward_weights(Conv *c, float *d_w, const void *d_out, const void *in,
                           float *wtmp, void *scratch);
size_t conv_wtmp_floats(const Conv *c);
/* oneDNN's multi-threaded backward weights (result depends on the thread count); comparison only. */
void conv_backward_weights_threaded(Conv *c, float *d_w, const void *d_out, const void *in,
                                    float *wtmp, void *scratch);

#endif
