/* eval_features.h - (named so because glibc owns <features.h>) frozen-encoder features over a dataset, and raw pixels, for the evaluations.
 *
 *     AugmentConfig a; augment_config_default(&a);
 *     a.out_size = model_config(m)->image_size;  a.normalize = NORMALIZE_NONE;
 *     float *X = sc_alloc(n * features_dim(m, FEATURES_H) * sizeof(float));
 *     int *y = sc_alloc(n * sizeof(int));
 *     if (features_extract(m, ds, &a, FEATURES_H, 128, NULL, n, X, y, 1)) error(sc_error());
 *
 * The model runs in eval mode (model_forward(..., training = 0): BN uses its running
 * statistics and nothing in the model changes), with no random augmentation: each image is
 * resized to the model's input size (augment mode forced to none) and normalised as `aug` says.
 * Images of a batch are decoded and resized in parallel; the features do not depend on the
 * thread count or the batch size beyond float rounding of the convolutions.
 * features_model_hash() hashes every parameter, BN buffer and counter byte: the evaluation
 * commands check that it is the same after extraction as after loading (frozen means frozen).
 */
#ifndef SIMCLR_EVAL_FEATURES_H
#define SIMCLR_EVAL_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#include "augment.h"
#include "dataset.h"
#include "model.h"

enum { FEATURES_H = 0, FEATURES_Z = 1 }; /* encoder output h, or the projection z */

/* Columns of the features of `layer`: model_feature_dim or model_out_dim. */
int features_dim(const Model *m, int layer);

/* Rows idx[0..n) of ds (0..n-1 when idx is NULL) -> out (n, features_dim) float32 and, when
 * labels != NULL, labels (n) (-1 for unlabeled images). batch <= model_max_batch(m).
 * progress != 0 draws a progress line on stderr when it is a terminal. Returns 0, or -1 with
 * sc_error() set (unreadable image, image size / model mismatch). */
int features_extract(Model *m, const Dataset *ds, const AugmentConfig *aug, int layer, int batch,
                     const size_t *idx, size_t n, float *out, int *labels, int progress);

/* Raw pixels of every image as float32 in [0, 1], HWC order, one row per image: X (N, h*w*c).
 * The images must all have the same size (else size > 0 resizes every image to size x size x 3
 * through the augment path with no augmentation). labels (N) may be NULL. */
int features_pixels(const Dataset *ds, int size, float **X, size_t *N, int *D, int *labels);

/* FNV-1a 64 over the bytes of the parameters, BN buffers and counters. */
uint64_t features_model_hash(Model *m);

#endif
