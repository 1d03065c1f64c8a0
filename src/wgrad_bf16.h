/* wgrad_bf16.h - the weight gradient of a bf16 convolution on AVX512-BF16 dot products.
 *
 * Dimension legend as in conv.h; "image pair" bp = images 2bp and 2bp+1 of the batch; "joint
 * column" j = s * C + c (0 <= j < S*C).
 *
 * dW[k, c, r, s] = sum over the output pixels (b, oh, ow) of d_out[b, oh, ow, k] * in[b, ih, iw, c]
 * with ih = oh*stride - pad + r, iw = ow*stride - pad + s (zero outside the image). `vdpbf16ps`
 * multiplies PAIRS of bf16 values along the reduction; the pairs here are the same pixel of the
 * two images of an image pair. Both operands are repacked into u32 pairs (x[2bp], x[2bp+1]) of
 * the same element, which keeps the geometry of one image: the kernel is then conv_wgrad.h's fp32
 * scheme on a batch of B/2 "pair images" (an odd last image is paired with zeros): for every
 * kernel row r, dW_r (S*C x K) = sum over the pair pixels p of X_r[p]^T dY[p] with X_r[p] the
 * contiguous S*C-pair span of the input row the window covers (an implicit im2col), in register
 * tiles of 6 joint columns x 64 output channels (24 zmm accumulators, d_out's pairs
 * loaded as 4 vectors, each input pair broadcast). Pairing images rather than neighbouring pixels
 * packs every element once (neighbouring pixels would need each input pair packed per tap parity,
 * and odd maps like 3x3 waste a third of the products).
 *
 * Each thread packs, one block of output rows at a time, the input rows of the block and, per
 * block of 64 output channels, the block's d_out into its own scratch (a few hundred KB that stay
 * in its L2), then runs its tiles over them. Every element of dW is ONE reduction in a fixed order
 * (pair pixels in (pair image, oh, ow) order, the blocks in order, the sums kept in T between
 * blocks: exact float stores and loads), by one tile, whatever thread runs it: the threads split
 * the tiles (contiguous ranges of (channel block, r, joint-column block)), never a reduction, so
 * the bits do not depend on the thread count, no partial sums are combined, and no thread waits
 * for another until the end.
 *
 * Why not oneDNN's backward-weights kernel: oneDNN 2.6 splits its reduction over the batch by the
 * thread count, so the project runs it single-threaded on 2 fixed batch chunks (conv.h), which
 * caps it at 2 threads (doc/core.md).
 */
#ifndef SIMCLR_WGRAD_BF16_H
#define SIMCLR_WGRAD_BF16_H

#include <stddef.h>
#include <stdint.h>

#include "conv.h"

/* Whether the weight gradient of shape s runs here: bf16 activations, a CPU with AVX512-BF16, and
 * a shape where it was measured faster than the alternatives (doc/core.md). SIMCLR_CONV_WGRAD=own
 * takes every bf16 shape, =dnnl none (measurements, tests). */
int wgrad_bf16_usable(const ConvShape *s);

typedef struct WgradBf16 WgradBf16;
/* The plan of one bf16 shape (s->B the batch it runs on) for the current OpenMP thread count:
 * tiles, blocks, the pixel lists of small maps. NULL when the CPU lacks AVX512-BF16 or s is not
 * bf16. */
WgradBf16 *wgrad_bf16_create(const ConvShape *s);
void wgrad_bf16_free(WgradBf16 *p);
/* Bytes of scratch wgrad_bf16_run needs (every thread's packed blocks). */
size_t wgrad_bf16_scratch_bytes(const WgradBf16 *p);
/* Floats of tmp wgrad_bf16_run needs (the tiles' sums: K*C*R*S, rounded up to whole tiles). */
size_t wgrad_bf16_tmp_floats(const WgradBf16 *p);
/* d_w (K,C,R,S) float32 += the gradient wrt the weights, from d_out (B,OH,OW,K) and in (B,H,W,C),
 * bf16. tmp: wgrad_bf16_tmp_floats floats; scratch: wgrad_bf16_scratch_bytes, 64-byte aligned or not. Uses the
 * plan's thread count; bit-identical for any thread count. */
void wgrad_bf16_run(const WgradBf16 *p, float *d_w, const uint16_t *d_out, const uint16_t *in, float *tmp,
                    void *scratch);

#endif
