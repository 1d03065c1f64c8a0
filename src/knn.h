/* knn.h - weighted k-nearest-neighbour classification on L2-normalised features, the monitor of
 * the instance-discrimination literature (Wu et al. 2018) and lightly's knn_predict:
 *
 *     sim(q, x) = <q/|q|, x/|x|>;  the k most similar train rows vote for their label with
 *     weight exp(sim / t);  classes ranked by total weight (ties: the lower class index).
 *
 *     double top1, top5;
 *     if (knn_eval(Xtr, ytr, ntr, Xte, yte, nte, D, K, 200, 0.1f, &top1, &top5, NULL))
 *         error(sc_error());
 *
 * Neighbours with equal similarity are taken in train order (the lower index first), so the
 * result is deterministic and independent of the thread count. A zero feature vector is left
 * as zeros (all its similarities are 0). k larger than the train set uses the whole set.
 */
#ifndef SIMCLR_KNN_H
#define SIMCLR_KNN_H

#include <stddef.h>

/* Xtr (ntr, D), Xte (nte, D) float32 row-major; labels in [0, K). top1/top5 in [0, 1];
 * pred (nte) receives the top class of each test row when not NULL. Returns 0, or -1 with
 * sc_error() set (labels out of range, non-finite features, k < 1, t <= 0). */
int knn_eval(const float *Xtr, const int *ytr, size_t ntr, const float *Xte, const int *yte,
             size_t nte, int D, int K, int k, float t, double *top1, double *top5, int *pred);

#endif
