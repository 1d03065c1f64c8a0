/* finetune.h - what `simclr finetune` needs beyond the Trainer: the class-balanced labelled
 * subset, and the classification loss as a Trainer loss.
 *
 *     size_t *idx, n;
 *     finetune_select_labels(dataset_labels(ds), dataset_size(ds), K, 0.01, 0, seed, &idx, &n);
 *     dataset_select(ds, idx, n);                          // the 1% the classifier learns from
 *     TrainerConfig tc; ... tc.views = 1;
 *     tc.loss = (TrainerLoss){finetune_ce_loss, &classes, 0};   // logits = model_z (head = fc)
 *
 * Selection: for each class c with n_c images, a permutation drawn from
 * rng_derive(seed, RNG_STREAM_LABELS, c, 0, 0); the first k_c of it are kept, with
 * k_c = labels_per_class, or round(fraction * n_c) (at least 1). The indices are returned
 * sorted. So the subset depends only on (seed, labels), is class-balanced (up to rounding for
 * unbalanced classes), and a larger fraction with the same seed contains the smaller one.
 */
#ifndef SIMCLR_FINETUNE_H
#define SIMCLR_FINETUNE_H

#include <stddef.h>
#include <stdint.h>

#include "train.h"

/* labels (n) in [0, K) (-1 entries are never selected). Exactly one of fraction in (0, 1] and
 * per_class >= 1 is used (per_class > 0 wins). *idx is malloc'ed. Returns 0, or -1 with a
 * message naming --label-fraction / --labels-per-class (a class with too few images, a
 * fraction out of range, no labels). */
int finetune_select_labels(const int32_t *labels, size_t n, int K, double fraction, int per_class,
                           uint64_t seed, size_t **idx, size_t *count);

/* Softmax cross-entropy over logits (B, K), mean over the B rows; grad = (softmax - onehot) / B;
 * top1 / top5 classification accuracy of the batch. Fixed-order double sums. */
double softmax_ce(const float *logits, const int *y, int B, int K, float *grad, double *top1,
                  double *top5);

/* A TrainerLoss: ctx points to an int holding K; the logits are model_z of the trainer's model
 * (head whose last layer is the K-way classifier). */
int finetune_ce_loss(void *ctx, Trainer *t, const int *labels, float *grad, TrainStats *st);

#endif
