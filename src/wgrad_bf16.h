/* wgrad_bf16.h - the weight gradient of a bf16 convolution on AVX512-BF16 dot products.
 *
 * dW[k, c, r, s] = sum over the output pixels p = (b, oh, ow) of d_out[p, k] * in[b, ih, iw, c]
 * with ih = oh*stride - pad + r, iw = ow*stride - pad + s (zero outside the image): for each filter
 * tap (r, s) a matrix product (K x P) . (P x C) whose second operand is read straight from the
 * channels-last input (an implicit im2col, one tap at a time). `vdpbf16ps` multiplies PAIRS of
 * bf16 values along the reduction, so both operands are repacked with consecutive pixels
 * interleaved: d_out once per call, (pixels/2, K) pairs in tiles of 8 output channels; the input
 * per tap, 32 channels and 256 pixel pairs at a time (a 32 KB block that stays in L1 while every
 * output-channel tile of the work unit runs over it).
 *
 * Why not oneDNN's backward-weights kernel: oneDNN 2.6 splits its reduction over the batch by the
 * thread count, so the project runs it single-threaded on 2 fixed batch chunks (conv.h), which
 * caps it at 2 threads and left it at 25-65% of the bf16 peak (doc/core.md). Here every element of
 * dW is ONE reduction in a fixed order (pixel pairs in increasing order, each pair added by one
 * dot-product instruction), and the threads split the outputs (filter tap x 32 input channels x
 * 64 output channels), so the bits never depend on the thread count and every thread has work.
 */
#ifndef SIMCLR_WGRAD_BF16_H
#define SIMCLR_WGRAD_BF16_H

#include <stddef.h>
#include <stdint.h>

#include "conv.h"

/* Whether wgrad_bf16 runs shape s here: bf16 activations, C a multiple of 32, K of 8, a CPU with
 * AVX512-BF16, and a shape where it was measured faster than oneDNN's kernel on fixed batch
 * chunks (strided 3x3 convs, maps of at most 16 pixels). SIMCLR_CONV_WGRAD=own takes every shape
 * it can run (its speed then scales with the threads: oneDNN's chunks use at most 2), =dnnl none
 * (measurements). */
int wgrad_bf16_usable(const ConvShape *s);
/* Bytes of scratch memory wgrad_bf16 needs (the repacked d_out). */
size_t wgrad_bf16_scratch_bytes(const ConvShape *s);
/* dwt (K, R, S, C), float32, OVERWRITTEN with the gradient (tap-major within an output channel:
 * the layout of the GEMM path's weights, conv.c); d_out
 * (B, OH, OW, K) and in (B, H, W, C) are bf16. Call only when wgrad_bf16_usable(s). */
void wgrad_bf16(const ConvShape *s, float *dwt, const uint16_t *d_out, const uint16_t *in, void *scratch);

#endif
