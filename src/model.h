/* model.h - the SimCLR network: a torchvision ResNet encoder f and a projection head g.
 *
 *     ModelConfig cfg; model_config_default(&cfg);          // resnet18, imagenet stem, 96 px
 *     sc_set_threads(2);                                    // before model_create
 *     Model *m;
 *     if (model_create(&m, &cfg, 128, seed)) sc_fatal("%s", sc_error());
 *     model_zero_grad(m);
 *     model_forward(m, x, 128, 1);                          // x (128, 3, 96, 96) NCHW
 *     ... loss on model_z(m) gives dz ...
 *     model_backward(m, dz);                                // adds into model_grads(m)
 *     optimizer step on model_params(m) / model_grads(m)
 *     model_free(m);
 *
 * Parameters live in ONE contiguous float buffer (model_params) in torchvision's state_dict
 * order, without gaps, and the gradients in a buffer of the same layout (model_grads). BN running
 * statistics live in a second float buffer (model_buffers), the int64 num_batches_tracked
 * counters in a third (model_counters). model_tensor(i) describes every tensor in state_dict
 * order: name, shape, kind and offset into its buffer.
 *
 * Head (nn.Sequential under "head."), with L = head_layers, d = feature dim, hid = head_hidden
 * (0 = d):
 *   L = 0: z = h (no tensors).
 *   L = 1: head.0 = Linear(d, out_dim).
 *   L >= 2 without BN: [Linear(., hid) with bias, ReLU] x (L-1), Linear(hid, out_dim):
 *          default L = 2 -> head.0.weight/bias, head.2.weight/bias (ReLU is head.1).
 *   L >= 2 with --head-bn (SimCLRv2 / lightly style): [Linear(., hid) WITHOUT bias,
 *          BatchNorm1d(hid), ReLU] x (L-1), Linear(hid, out_dim) with bias and no BN:
 *          L = 2 -> head.0.weight, head.1.{weight,bias,running_mean,running_var,
 *          num_batches_tracked}, head.3.weight, head.3.bias (ReLU is head.2).
 *   (--head-bn on has no effect when L <= 1: the output layer has no BN.)
 *   --head-bn all (google-research/simclr's projection_head): every linear, the output one
 *          included, has no bias and is followed by BatchNorm1d; the output BN has no shift
 *          (TF's center=False): its bias tensor is kept, at 0 and never trained (its gradient
 *          is dropped), so the head still loads into nn.Sequential with nn.BatchNorm1d.
 *          L = 2 -> head.0.weight, head.1 BN, (ReLU head.2), head.3.weight, head.4 BN.
 *
 * Init (as torchvision): convs kaiming_normal_(fan_out, relu) = N(0, 2 / (K*R*S)); BN weight 1,
 * bias 0, running mean 0, var 1; head linears as nn.Linear: weight and bias U(+-1/sqrt(fan_in)).
 * zero_init_residual: the last BN weight of each block starts at 0. Tensor i draws only from
 * rng_derive(seed, RNG_STREAM_INIT, i, 0, 0).
 *
 * Memory: every activation is allocated for max_batch in model_create; forward/backward allocate
 * nothing (a first call with a new, smaller batch size creates that size's conv primitives once).
 * Call sc_set_threads() before model_create: the conv primitives plan for that thread count.
 */
#ifndef SIMCLR_MODEL_H
#define SIMCLR_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "layers.h"
#include "resnet.h"

typedef struct {
    int arch;            /* ARCH_RESNET18 | ARCH_RESNET34 | ARCH_RESNET50 */
    int stem;            /* STEM_IMAGENET (7x7/2 + maxpool) | STEM_CIFAR (3x3/1, no maxpool) */
    float width;         /* width multiplier, 1.0 = torchvision (64 base channels) */
    int image_size;      /* S */
    int head_layers;     /* 0 none, 1 linear, 2 default MLP, >2 SimCLRv2 */
    int head_bn;         /* HEAD_BN_OFF | HEAD_BN_ON (hidden layers) | HEAD_BN_ALL (google) */
    int head_hidden;     /* hidden width, 0 = feature dim */
    int out_dim;         /* 128 */
    int zero_init_residual;
    int precision;       /* PRECISION_FP32 | PRECISION_BF16 (convolutions in bf16, see below) */
} ModelConfig;

/* --precision (the option lives with the commands that train or run the model):
 * fp32: everything float32.
 * bf16: the convolutions take bf16 inputs and weights and accumulate in float32 (oneDNN's
 *   avx512_core_bf16 kernels); the activations stored for the backward pass are bf16, and so is
 *   the gradient that enters each convolution. Master weights, their gradients, the optimizer,
 *   batch-norm statistics and arithmetic, the global pool, the head, NT-Xent: float32. The
 *   parameters are the same tensors in both precisions (checkpoints are interchangeable).
 *   Refused (model_config_check) where the CPU or oneDNN lacks AVX512-BF16: oneDNN's fallback
 *   is slower than float32 (doc/core.md). */
enum { PRECISION_FP32 = 0, PRECISION_BF16 = 1 };
#define PRECISION_CHOICES "fp32|bf16"
enum { HEAD_BN_OFF = 0, HEAD_BN_ON = 1, HEAD_BN_ALL = 2 };
#define HEAD_BN_CHOICES "off|on|all"

typedef enum { MODEL_PARAM = 0, MODEL_BUFFER = 1, MODEL_COUNTER = 2 } ModelTensorKind;

typedef struct {
    char name[64];       /* torchvision state_dict name, e.g. "layer1.0.bn1.running_mean" */
    int ndim;            /* 0 for num_batches_tracked (a scalar) */
    int64_t shape[4];
    size_t numel;
    int kind;            /* MODEL_PARAM (model_params), MODEL_BUFFER (model_buffers, F32),
                            MODEL_COUNTER (model_counters, I64) */
    size_t offset;       /* in elements, into the buffer of its kind */
    int is_bn_or_bias;   /* BN weight/bias or any bias: excluded from weight decay / LARS */
} ModelTensor;

typedef struct Model Model;

void model_config_default(ModelConfig *cfg);
/* 0, or -1 with a message naming the option (unknown arch, sizes <= 0, image too small, bf16 on a
 * CPU without AVX512-BF16, ...). */
int model_config_check(const ModelConfig *cfg);
/* 1 when bf16 runs on native AVX512-BF16 kernels here (cpuid and oneDNN's effective ISA). */
int model_bf16_native(void);

int model_create(Model **m, const ModelConfig *cfg, int max_batch, uint64_t seed);
void model_free(Model *m);
/* x (B,3,S,S) NCHW, 1 <= B <= max_batch. training != 0: batch statistics, running stats updated
 * (momentum 0.1, unbiased var). Returns 0, or -1 (B out of range, primitive creation failed).
 * x must stay valid and unchanged until the backward of this forward: the backward reads the
 * images again (the first conv's weight gradient) instead of keeping a copy. */
int model_forward(Model *m, const float *x, int B, int training);
const float *model_h(const Model *m); /* (B, D) after the last forward */
const float *model_z(const Model *m); /* (B, out_dim); equals h when head_layers == 0 */
/* dz (B, out_dim) for the B of the last forward; adds into the grads. When only the encoder is
 * trained from h, model_backward_h takes dh (B, D) and skips the head. One backward per forward:
 * it consumes what the forward saved (the stem's conv output becomes its gradient). */
void model_backward(Model *m, const float *dz);
void model_backward_h(Model *m, const float *dh);
void model_zero_grad(Model *m);

float *model_params(Model *m);
float *model_grads(Model *m);
size_t model_num_params(const Model *m);
float *model_buffers(Model *m);     /* BN running mean/var */
size_t model_num_buffers(const Model *m);
int64_t *model_counters(Model *m);  /* num_batches_tracked */
size_t model_num_counters(const Model *m);
int model_num_tensors(const Model *m);
const ModelTensor *model_tensor(const Model *m, int i);
int model_find_tensor(const Model *m, const char *name); /* index or -1 */

const ModelConfig *model_config(const Model *m);
const ResNetSpec *model_spec(const Model *m);
int model_feature_dim(const Model *m);   /* D */
int model_out_dim(const Model *m);       /* out_dim, or D when head_layers == 0 */
int model_max_batch(const Model *m);
/* FLOPs (2 x multiply-adds of convs and linears) of one forward pass over B rows. A training
 * step costs about 3x this (forward + backward data + backward weights). */
double model_forward_flops(const Model *m, int B);
/* Activation block index boundaries for tests: the output (B, OH, OW, K) channels-last of
 * block i (0..nblocks-1), or of the stem (i = -1, after the max pool when there is one).
 * Block outputs are not kept: each call recomputes one from the saved conv outputs into a
 * scratch buffer (valid until the next call, a backward or a forward). Call it after
 * model_forward and before model_backward (which overwrites the stem's conv output). */
const void *model_block_output(Model *m, int i);
/* Type of the activation buffers (DT_F32 or DT_BF16, bf16.h), e.g. of model_block_output. */
int model_act_dtype(const Model *m);
/* Bytes of every activation and gradient buffer allocated for max_batch rows (the memory that
 * grows with the batch; divide by max_batch for the bytes per view). */
size_t model_activation_bytes(const Model *m);
/* Bytes of the shared convolution scratch (oneDNN scratchpads, the im2col matrices of the GEMM
 * path): it too grows with the batch. */
size_t model_scratch_bytes(const Model *m);
/* Phase timers for `simclr bench --profile`: model_profile(1) resets and starts accumulating
 * wall time per phase k in [0, MODEL_PROF_N) (conv forward / backward data / backward weights,
 * BN forward / backward, pool+input+add, head); model_profile_get returns the phase name. */
#define MODEL_PROF_N 7
void model_profile(int on);
const char *model_profile_get(int k, double *seconds);
/* The same timers per conv unit i (state_dict order, 0 = stem) and pass (0 forward, 1 backward
 * data, 2 backward weights): seconds accumulated since model_profile(1). */
double model_profile_unit(int i, int pass);
/* With SIMCLR_PROFILE_CPU=2 (phases as critical paths, see model.c): the critical path since
 * model_profile(1) in seconds (sum of each interval's largest per-thread CPU time), *busy the
 * CPU time of all threads over the same intervals; model_profile_busy(k) phase k's. */
double model_profile_critical(double *busy);
double model_profile_busy(int k);
/* Synchronized batch norm: every BN of the encoder and the head computes its training-mode
 * statistics (and the backward's two reductions) over the global batch of all processes
 * (layers.h, BnSync; kept by pointer, NULL switches it off). Evaluation mode is unaffected. */
void model_set_bn_sync(Model *m, const BnSync *sync);
/* The oneDNN implementation names of the first conv (for logs). */
const char *model_conv_impl(const Model *m);

#endif
