/* conv_pw.h - the forward and backward-data passes of strided 1x1 convolutions (ResNet's
 * downsample shortcuts) as GEMMs over the pixels the kernel reads, fp32, AVX-512, channels-last;
 * deterministic by construction.
 *
 * Dimension legend as in conv.h. A 1x1 convolution without padding is a GEMM over the M =
 * B*OH*OW output pixels: out[p, :] (K) = W (K, C) . in[pix(p), :] (C), where pix(p) is the input
 * pixel (b, oh*stride, ow*stride). Forward: each register tile of 6 output pixels x 64 output
 * channels sums over the C input channels, reading the 6 input pixels where they are (no
 * gathered copy) and W^T (C, K) rows (conv_pw_weights prepares it once per weight change).
 * Backward data: the same tile over K, d_in[pix(p), :] = W^T . d_out[p, :], W (K, C) as given;
 * the input pixels no output reads get 0. Every output element is one tile's sum over the whole
 * reduction in index order, whatever thread runs the tile: the bits do not depend on the thread
 * count. The weight gradient of these convs stays on conv_wgrad.h's kernel.
 *
 * What it does not do: padding, kernels other than 1x1, bf16, CPUs without AVX-512F (the caller
 * keeps oneDNN's path there).
 */
#ifndef SIMCLR_CONV_PW_H
#define SIMCLR_CONV_PW_H

#include <stddef.h>

#include "conv.h"

/* 1 when pass (0 forward, 1 backward data) of this shape runs here: fp32, 1x1, no padding, an
 * AVX-512F CPU, stride > 1 (where it was measured faster than oneDNN, doc/core.md; today the
 * same for both passes); SIMCLR_CONV_PW=own takes both passes of every such shape of any stride,
 * =dnnl none (experiments and tests). */
int conv_pw_usable(const ConvShape *s, int pass);

/* wt (C, K) = the transpose of w (K, C, 1, 1), the forward's layout. */
void conv_pw_weights(const ConvShape *s, float *wt, const float *w);
/* out (B,OH,OW,K) = conv(in (B,H,W,C)); wt from conv_pw_weights. Overwrites out. */
void conv_pw_forward(const ConvShape *s, float *out, const float *in, const float *wt);
/* d_in (B,H,W,C) = gradient wrt the input from d_out (B,OH,OW,K) and w (K,C,1,1); overwrites
 * d_in (0 at the pixels no output reads). */
void conv_pw_backward_data(const ConvShape *s, float *d_in, const float *d_out, const float *w);

#endif
