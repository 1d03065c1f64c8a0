/* probe.h - the online linear probe (google-research/simclr's lineareval_while_pretraining,
 * solo-learn's online classifier): during pretraining, a linear classifier on the DETACHED
 * encoder features h of the labelled images of each batch (every view of an image carries its
 * label; unlabelled rows, label -1, are skipped), trained by its own Adam (betas 0.9, 0.999,
 * eps 1e-8, no weight decay) on the softmax cross-entropy. No gradient reaches the encoder: the
 * probe reads model_h after the step and never writes into the model.
 *
 *     Probe *p;
 *     probe_create(&p, D, K);                          // zero-initialised: no randomness
 *     trainer_step(t, x, labels, &st);
 *     ProbeStats ps;
 *     probe_step(p, model_h(t->model), N, V, labels, 1e-3f, &ps);   // ps.top1: accuracy of
 *                                                      // this batch BEFORE the update (online)
 *     trainer_set_extra_state(t, probe_state(p, &n), n);   // saved and resumed with the run
 *
 * Deterministic for any thread count: rows and classes are independent loops, every sum runs
 * in a fixed order.
 */
#ifndef SIMCLR_PROBE_H
#define SIMCLR_PROBE_H

#include "checkpoint.h"
#include "comm.h"

typedef struct Probe Probe;

typedef struct {
    int rows;      /* labelled rows used (0: nothing to learn from in this batch) */
    double loss;   /* mean cross-entropy over those rows (before the update) */
    double top1;   /* their accuracy before the update, in [0, 1]; NAN when rows == 0 */
} ProbeStats;

int probe_create(Probe **p, int dim, int classes);
/* Several processes (comm_size > 1): each passes its own rows (its share of the global batch) to
 * probe_step, which sums the labelled-row count, the gradient (in rank order) and the statistics
 * over the processes: every process makes the same update, the one a single process makes on
 * the whole batch (to rounding), and ProbeStats are global. A collective: every process calls
 * probe_step at every step. */
void probe_set_comm(Probe *p, Comm *c);
void probe_free(Probe *p);
/* h (V*N, dim), row v*N + i is view v of image i; labels (N), -1 = unlabelled, else < classes. */
int probe_step(Probe *p, const float *h, int n_images, int views, const int *labels, float lr,
               ProbeStats *st);
/* The probe's tensors for a checkpoint: probe.weight (classes, dim), probe.bias (classes),
 * optim.probe.{weight,bias}.{m,v} and probe.step (I64 scalar); pointers into the probe. */
CkTensor *probe_state(Probe *p, int *n);
/* Logits (n, classes) of features h (n, dim), for tests. */
void probe_logits(const Probe *p, const float *h, int n, float *out);

#endif
