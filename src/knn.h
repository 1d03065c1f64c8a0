/* knn.h - weighted k-nearest-neighbour classification on L2-normalised features, the monitor of
 * the instance-discrimination literature (Wu et al. 2018) and lightly's knn_predict:
 *
 *     sim(q, x) = <q/|q|, x/|x|>;  the k most similar train rows vote for their label with
 *     weight exp(sim / t);  classes ranked by total weight (ties: the lower class index).
 *
 * norm says what q and x are before the L2 normalisation:
 *     KNN_L2           the features as given (plain cosine similarity);
 *     KNN_CENTER       minus the mean of the train rows (SimpleShot's "CL2N", Wang et al. 2019:
 *                      non-negative features such as ReLU outputs or pixels otherwise all sit in
 *                      one orthant, where cosine similarity is dominated by the common mean);
 *     KNN_STANDARDIZE  minus the train mean, divided by the train standard deviation of each
 *                      feature (1/n; a constant feature is only centred).
 * The statistics come from the train rows alone (each fold's own with --folds), in double.
 *
 *     double top1, top5;
 *     if (knn_eval(Xtr, ytr, ntr, Xte, yte, nte, D, K, 200, 0.1f, KNN_CENTER, &top1, &top5, NULL))
 *         error(sc_error());
 *
 * Neighbours with equal similarity are taken in train order (the lower index first), so the
 * result is deterministic and independent of the thread count. A zero feature vector is left
 * as zeros (all its similarities are 0). k larger than the train set uses the whole set.
 */
#ifndef SIMCLR_KNN_H
#define SIMCLR_KNN_H

#include <stddef.h>

enum { KNN_L2 = 0, KNN_CENTER = 1, KNN_STANDARDIZE = 2 };
#define KNN_NORM_CHOICES "l2|center|standardize" /* option choices, in enum order */

/* Xtr (ntr, D), Xte (nte, D) float32 row-major; labels in [0, K). top1/top5 in [0, 1];
 * pred (nte) receives the top class of each test row when not NULL. Returns 0, or -1 with
 * sc_error() set (labels out of range, non-finite features, k < 1, t <= 0, unknown norm). */
int knn_eval(const float *Xtr, const int *ytr, size_t ntr, const float *Xte, const int *yte,
             size_t nte, int D, int K, int k, float t, int norm, double *top1, double *top5,
             int *pred);

/* "l2", "center" or "standardize" */
const char *knn_norm_name(int norm);

#endif
