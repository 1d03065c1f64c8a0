/* conv_wgrad.h - our own fp32 weight gradient of a convolution on channels-last activations
 * (AVX-512), deterministic by construction.
 *
 * Dimension legend as in conv.h: B batch rows, H W input map, C input channels, K output
 * channels, R S kernel, OH OW output map; "joint column" j = s * C + c (0 <= j < S*C).
 *
 * For every kernel row r, dW_r (S*C joint columns x K) = sum over the output pixels p of
 * X_r[p, :]^T dY[p, :], where X_r[p, :] is the S*C-float span of the input row that the window
 * of p covers at kernel row r: for a channels-last input that span is contiguous (consecutive s
 * are consecutive input pixels), so the product is a GEMM with an implicit im2col. It is computed
 * in register tiles of 6 or 7 joint columns x 64 output channels (24 or 28 zmm accumulators;
 * the dY row is loaded as 4 vectors, each input value broadcast); out-of-range taps (padding) add
 * nothing. Every element of dW is reduced by ONE tile over all B*OH*OW pixels in one fixed order
 * (blocks of output rows in order, pixels left to right), whatever thread runs it: the threads
 * share the tiles, never a reduction, so the bits do not depend on the thread count. Most shapes
 * (the stem, layers 1-2, strided convs with few output channels: see wgrad_parts) cut the batch
 * into 2 FIXED parts, each reduced by its own tiles, the two partial sums added in order: fixed
 * too.
 *
 * What it does not do: bf16 (that stays on oneDNN), non-AVX-512 CPUs (conv_wgrad_supported()
 * says 0; the caller keeps oneDNN's path).
 */
#ifndef SIMCLR_CONV_WGRAD_H
#define SIMCLR_CONV_WGRAD_H

#include <stddef.h>

#include "conv.h"

/* 1 when this CPU runs the kernel (AVX-512F), else 0. */
int conv_wgrad_supported(void);

typedef struct ConvWgrad ConvWgrad;
/* The plan of one shape (fp32, s->B the batch it runs on): tile and block sizes, the pixel lists
 * of small maps. Returns NULL when !conv_wgrad_supported() or s->dt is not fp32. */
ConvWgrad *conv_wgrad_create(const ConvShape *s);
void conv_wgrad_free(ConvWgrad *p);
/* Floats of scratch conv_wgrad_run needs: K*C*R*S per batch part (1 or 2). */
size_t conv_wgrad_tmp_floats(const ConvShape *s);
/* d_w (K,C,R,S) += gradient wrt the weights, from d_out (B,OH,OW,K) and in (B,H,W,C), fp32.
 * tmp: at least conv_wgrad_tmp_floats floats. Uses every OpenMP thread; bit-identical for any
 * thread count. */
void conv_wgrad_run(const ConvWgrad *p, float *d_w, const float *d_out, const float *in,
                    float *tmp);

/* Shared with the bf16 kernel (wgrad_bf16.c), which runs the same scheme on pairs of images:
 * the first and last output column ow whose tap q lands inside the map (iw = ow*stride - pad + q
 * in [0, W); an empty range when lo > hi; rows likewise with H, OH) */
int conv_wgrad_out_lo(int pad, int stride, int q);
int conv_wgrad_out_hi(int W, int OW, int pad, int stride, int q);
/* The pixel lists of a small map (sc_alloc'ed into *lst, *off, *n): for every tap (r, q), the
 * output pixels of one image whose tap is inside the map, in (oh, ow) order, as pairs (offset of
 * the pixel's d_out row: pixel * dstride, offset of column j = 0 of its input span: (ih*W +
 * ow*stride - pad) * C) starting at (*lst)[(*off)[tap]], (*n)[tap] of them. */
void conv_wgrad_tap_lists(const ConvShape *s, int dstride, int **lst, int **off, int **n);

#endif
