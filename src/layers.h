/* layers.h - the non-convolution layers of a ResNet and its projection head, float32.
 *
 * Dimension legend: B batch rows; H W spatial size; C channels; N = rows of a (N, C) matrix
 * (N = B*H*W for a channels-last activation, N = B for a (B, C) feature matrix); I O input and
 * output features of a linear layer.
 * Every activation is channels-last, so batch norm over a conv output (B,H,W,C) and
 * BatchNorm1d over features (B,C) are the same kernel on an (N, C) matrix.
 *
 * Order of arguments (llm.c): x_forward(out, saved..., in, params..., dims...),
 * x_backward(d_in, d_params..., d_out, saved..., in, params..., dims...).
 * Parameter gradients are ADDED to; activation gradients (d_in) are overwritten.
 *
 * Determinism: every reduction (batch-norm statistics and their backward sums, the linear
 * layer's weight gradient, the pools) runs over fixed chunks of rows combined in a fixed order,
 * so results are bit-identical for any number of OpenMP threads.
 *
 * Each fast kernel has a plain reference (suffix _ref, double accumulation, no fusion) used by
 * the tests.
 */
#ifndef SIMCLR_LAYERS_H
#define SIMCLR_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "bf16.h"

/* Precision (`dt`, DT_F32 or DT_BF16, see bf16.h): the activation buffers of a call (x, out,
 * residual, relu_out) are all of type dt; batch norm's backward takes the types of its incoming
 * (dt_dout) and outgoing (dt_dx) gradients separately. Statistics, parameters, their gradients
 * and all arithmetic are float32; bf16 values are converted on load and rounded on store.
 *
 * ---- batch norm (2-D over (B,H,W,C) or 1-D over (B,C)), with fused residual add and ReLU ---- */
#define BN_MOMENTUM 0.1f
#define BN_EPS 1e-5f
/* Size in doubles of the `partials` scratch the batch-norm kernels need for N rows, C channels. */
size_t batchnorm_partials(size_t N, int C);

/* training != 0: mean and biased variance over the N rows normalise x; running statistics are
 * updated as PyTorch does (run = (1-m)*run + m*stat with the UNBIASED variance, m = 0.1) and
 * *nbt is incremented (run_mean/run_var/nbt may be NULL to skip the update).
 * training == 0: the running statistics normalise x.
 * out (N,C) = [relu]( gamma * (x - mean) * rstd + beta [+ residual] ); mean, rstd (C) are saved
 * for the backward pass. residual may be NULL. out may alias residual, not x. */
void batchnorm_forward(void *out, float *mean, float *rstd, const void *x, const float *gamma,
                       const float *beta, float *run_mean, float *run_var, int64_t *nbt,
                       const void *residual, int relu, int training, size_t N, int C,
                       double *partials, int dt);
/* dout (N,C): the gradient wrt out. With relu_out (= the forward's out) non-NULL the ReLU mask
 * is applied and the MASKED gradient is written back into dout (the residual branch reads it).
 * dx (N,C) is overwritten and may alias dout. dgamma, dbeta (C) are added to.
 * training must match the forward (eval: mean/rstd are constants). */
void batchnorm_backward(void *dx, float *dgamma, float *dbeta, void *dout, const void *relu_out,
                        const void *x, const float *mean, const float *rstd, const float *gamma,
                        int training, size_t N, int C, double *partials, int dt, int dt_dout,
                        int dt_dx);
/* Synchronized batch norm (multi-process training): the same functions over a global batch
 * of world x N rows spread over `world` processes, each holding N. allreduce(ctx, buf, n) sums
 * n doubles over the processes in place (the same bits everywhere; it must not fail: the
 * communicator aborts the job on an error). Forward: the per-channel sum and the centred sum
 * of squares are all-reduced (two calls); backward: sum(dy) and sum(dy * (x - mean)) (one call
 * of 2C). dgamma/dbeta get this process's share only: the gradient all-reduce sums them.
 * sync == NULL or world == 1: exactly batchnorm_forward / batchnorm_backward. */
typedef struct {
    int (*allreduce)(void *ctx, double *buf, size_t n);
    void *ctx;
    int world;
} BnSync;
void batchnorm_forward_sync(void *out, float *mean, float *rstd, const void *x,
                            const float *gamma, const float *beta, float *run_mean,
                            float *run_var, int64_t *nbt, const void *residual, int relu,
                            int training, size_t N, int C, double *partials, int dt,
                            const BnSync *sync);
void batchnorm_backward_sync(void *dx, float *dgamma, float *dbeta, void *dout,
                             const void *relu_out, const void *x, const float *mean,
                             const float *rstd, const float *gamma, int training, size_t N, int C,
                             double *partials, int dt, int dt_dout, int dt_dx, const BnSync *sync);
/* The elementwise half of batchnorm_forward with given mean/rstd: out = [relu](gamma * (x - mean)
 * * rstd + beta [+ residual]), bit-identical to what batchnorm_forward wrote (recomputation of an
 * activation in the backward pass instead of storing it). */
void batchnorm_apply(void *out, const void *x, const float *mean, const float *rstd,
                     const float *gamma, const float *beta, const void *residual, int relu,
                     size_t N, int C, double *partials, int dt);
/* The statistics half of batchnorm_forward_sync: mean, rstd (and the running statistics, nbt)
 * of x, without writing an output (batchnorm_forward_sync = this + batchnorm_apply). */
void batchnorm_stats_sync(float *mean, float *rstd, const void *x, float *run_mean, float *run_var,
                          int64_t *nbt, int training, size_t N, int C, double *partials, int dt,
                          const BnSync *sync);
/* Applies the ReLU mask of a BN(+residual)+ReLU forward (same x, mean, rstd, gamma, beta,
 * residual; residual may be NULL) to dout in place, recomputing the pre-activation instead of
 * reading the forward's output, which therefore need not be kept. Then call batchnorm_backward
 * with relu_out = NULL: the same bits as passing the forward's output as relu_out. */
void batchnorm_relu_mask_recompute(void *dout, const void *x, const float *mean,
                                   const float *rstd, const float *gamma, const float *beta,
                                   const void *residual, size_t N, int C, double *partials, int dt,
                                   int dt_dout);
/* batchnorm_relu_mask_recompute then batchnorm_backward_sync (relu_out NULL) fused: the sums read
 * dout and x once with the mask applied on the fly (dout is still masked in place: the residual
 * branch reads it). Bit-identical to the two calls. */
void batchnorm_relu_mask_backward_sync(void *dx, float *dgamma, float *dbeta, void *dout,
                                       const void *x, const void *residual, const float *mean,
                                       const float *rstd, const float *gamma, const float *beta,
                                       int training, size_t N, int C, double *partials, int dt,
                                       int dt_dout, int dt_dx, const BnSync *sync);
/* The stem fused: out (B,OH,OW,C) = maxpool(relu(BN(x))) with given mean/rstd (x (B,H,W,C) of
 * type dt), the BN+ReLU output never stored: bit-identical to batchnorm_apply into a buffer and
 * maxpool_forward on it (values and argmax). argmax may be NULL (recomputation).
 * work: batchnorm_relu_maxpool_work(W, C, k, work_threads) floats, the caller's (it allocates
 * nothing); it runs on at most work_threads threads. */
size_t batchnorm_relu_maxpool_work(int W, int C, int k, int threads);
void batchnorm_relu_maxpool_forward(void *out, uint8_t *argmax, const void *x, const float *mean,
                                    const float *rstd, const float *gamma, const float *beta,
                                    int B, int H, int W, int C, int k, int stride, int pad, int dt,
                                    float *work, int work_threads);
/* The same output again from the argmax the forward wrote (one BN+ReLU per output instead of
 * a window of them): bit-identical to batchnorm_relu_maxpool_forward's out. */
void batchnorm_relu_maxpool_recompute(void *out, const uint8_t *argmax, const void *x,
                                      const float *mean, const float *rstd, const float *gamma,
                                      const float *beta, int B, int H, int W, int C, int k,
                                      int stride, int pad, int dt);
/* Its backward from d_pool (B,OH,OW,C) float32, the gradient wrt the pooled output: dx (B,H,W,C)
 * of type dt (may be x itself: overwritten row by row), dgamma/dbeta added to. Bit-identical to
 * maxpool_backward into a dt buffer, batchnorm_relu_mask_recompute, batchnorm_backward_sync
 * (relu_out NULL, dt_dout = dt_dx = dt), without the stem-sized gradient buffer. */
void batchnorm_relu_maxpool_backward(void *dx, float *dgamma, float *dbeta, const float *d_pool,
                                     const uint8_t *argmax, const void *x, const float *mean,
                                     const float *rstd, const float *gamma, const float *beta,
                                     int training, int B, int H, int W, int C, int k, int stride,
                                     int pad, double *partials, int dt, const BnSync *sync);
/* References: the same contract without fusion-specific tricks, double accumulation, serial. */
void batchnorm_forward_ref(float *out, float *mean, float *rstd, const float *x,
                           const float *gamma, const float *beta, float *run_mean, float *run_var,
                           int64_t *nbt, const float *residual, int relu, int training, size_t N,
                           int C);
void batchnorm_backward_ref(float *dx, float *dgamma, float *dbeta, float *dout,
                            const float *relu_out, const float *x, const float *mean,
                            const float *rstd, const float *gamma, int training, size_t N, int C);

/* ---- ReLU and residual add ---------------------------------------------------------------- */
void relu_forward(float *out, const float *in, size_t n);                        /* may alias */
void relu_backward(float *d_in, const float *d_out, const float *out, size_t n); /* may alias */
void add_inplace(float *y, const float *x, size_t n);                            /* y += x */

/* ---- max pool (k x k, stride, pad; PyTorch floor mode; first maximum wins on ties) -------- */
int pool_out_size(int in, int k, int stride, int pad);
/* out (B,OH,OW,C), argmax (B,OH,OW,C): window position r*k+q of the maximum (k*k <= 255).
 * in, out of type dt. */
void maxpool_forward(void *out, uint8_t *argmax, const void *in, int B, int H, int W, int C,
                     int k, int stride, int pad, int dt);
/* d_in (B,H,W,C) of type dt, overwritten; d_out float32. */
void maxpool_backward(void *d_in, const float *d_out, const uint8_t *argmax, int B, int H, int W,
                      int C, int k, int stride, int pad, int dt);
void maxpool_forward_ref(float *out, const float *in, int B, int H, int W, int C, int k,
                         int stride, int pad);

/* ---- global average pool: (B, HW, C) -> (B, C) -------------------------------------------- */
void avgpool_forward(float *out, const void *in, int B, int HW, int C, int dt); /* in: dt */
void avgpool_backward(float *d_in, const float *d_out, int B, int HW, int C); /* overwrites */

/* ---- linear: out (B,O) = in (B,I) w (O,I)^T + bias (O) ------------------------------------ */
void linear_forward(float *out, const float *in, const float *w, const float *bias, int B, int I,
                    int O);
/* d_in (B,I) overwritten (may be NULL); d_w (O,I), d_bias (O) added to (d_bias may be NULL). */
void linear_backward(float *d_in, float *d_w, float *d_bias, const float *d_out, const float *in,
                     const float *w, int B, int I, int O);
void linear_forward_ref(float *out, const float *in, const float *w, const float *bias, int B,
                        int I, int O);
void linear_backward_ref(float *d_in, float *d_w, float *d_bias, const float *d_out,
                         const float *in, const float *w, int B, int I, int O);

#endif
