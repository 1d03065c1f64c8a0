/* conv_small.h - our own fp32 forward convolution for small output maps (OH*OW <= 16: the last
 * stage of a ResNet at 64-96 px), channels-last, AVX-512, deterministic by construction.
 *
 * Dimension legend as in conv.h: B batch rows, H W input map, C input channels, K output
 * channels, R S kernel, OH OW output map; a "position" is one output pixel (oh, ow) of an image,
 * a "tap" one kernel position t = r*S + q.
 *
 * out (B*OH*OW, K) = sum over the taps t and channels c of in[pixel(b, pos, t), c] * W[t, c, k]:
 * an implicit GEMM that reads the NHWC input in place (no im2col). The output pixels are grouped
 * by position: pixels at the same position of different images have the same taps inside the
 * map, so a register tile of up to 7 images at one position x 64 output channels (28 zmm
 * accumulators; 4 weight vectors per channel, each input value broadcast) runs over exactly the
 * valid taps. Padding taps are skipped, not multiplied by zeros: on a 3x3 map with padding 1 only
 * 49 of the 81 (position, tap) pairs are inside, so this kernel does 40% fewer multiply-adds than
 * the im2col GEMM (conv_macs and the profile's percentages still count all 81).
 *
 * Work: units (output-channel block of 64, position), a fixed range of units per thread; within a
 * unit, for every valid tap in order and every block of channels, all image groups in turn, each
 * tile adding its block of channels to its sums (kept in `out` between blocks: exact float stores
 * and loads, so the blocking changes no bit). Every output element is ONE reduction in a fixed
 * order (taps ascending, channels ascending) by one tile: the bits do not depend on the thread
 * count, the tile height or the channel block.
 *
 * Weights: packed once per weight change (conv_small_pack) as (K/64, R*S, C, 64), K padded to a
 * multiple of 64 with zeros, so that the 64 weights of one (tap, channel) are one line.
 *
 * Backward data (conv_small_create_bwd; the strided convs, whose backward data is no forward
 * convolution): the same kernel with the roles swapped: a position is an input pixel (ih, iw),
 * its pairs are the d_out pixels (oh, ow) whose tap (r, q) lands on it, and
 * d_in(b, ih, iw, c) = sum over those pairs (taps ascending) and k of d_out(b, oh, ow, k) *
 * W(k, c, r, q), the weights packed as (C/64, R*S, K, 64).
 *
 * What it does not do: bf16, the weight gradient, non-AVX-512 CPUs (conv_small_supported() says 0;
 * conv.c keeps im2col + oneDNN matmul there, and with SIMCLR_CONV_SMALL=0).
 */
#ifndef SIMCLR_CONV_SMALL_H
#define SIMCLR_CONV_SMALL_H

#include <stddef.h>

#include "conv.h"

/* 1 when this CPU runs the kernel (AVX-512F), else 0. */
int conv_small_supported(void);

typedef struct ConvSmall ConvSmall;
/* The plan of one shape (fp32; s->B the batch it runs on). Returns NULL when
 * !conv_small_supported() or s->dt is not fp32. SIMCLR_CONV_SMALL_MR (1-7, tile height in
 * images) and SIMCLR_CONV_SMALL_CB (channels per block) are read here (experiments, tests). */
ConvSmall *conv_small_create(const ConvShape *s);
/* The plan of the backward data of shape s (same conditions). */
ConvSmall *conv_small_create_bwd(const ConvShape *s);
void conv_small_free(ConvSmall *p);
/* Bytes of the packed weights. */
size_t conv_small_weight_bytes(const ConvSmall *p);
/* wp (conv_small_weight_bytes, 64-byte aligned) = the packed form of w (K,C,R,S). */
void conv_small_pack(const ConvSmall *p, float *wp, const float *w);
/* For a forward plan of shape (B, OH, OW, K) -> C (the backward data of a stride-1 conv as a
 * forward conv): wp = the packed form of W'(c, k, r, q) = w(k, c, R-1-r, S-1-q), read straight
 * from that conv's weights w (K,C,R,S) (no flipped copy). */
void conv_small_pack_flipped(const ConvSmall *p, float *wp, const float *w);
/* Forward plan: out (B,OH,OW,K) = conv(in (B,H,W,C)); backward plan: out = d_in (B,H,W,C), the
 * gradient wrt the input, from in = d_out (B,OH,OW,K). With the weights wp packed for that plan;
 * overwrites out. Uses every OpenMP thread; bit-identical for any thread count. */
void conv_small_run(const ConvSmall *p, float *out, const float *in, const float *wp);

#endif
