/* ntxent.h - the NT-Xent (normalised temperature-scaled cross-entropy) loss of SimCLR,
 * forward and backward in one call, with contrastive top-1/top-5 accuracy.
 *
 *     Ntxent *ws;
 *     ntxent_create(&ws, 2 * N, 2 * N, 128);           // once: the step allocates nothing
 *     NtxentStats st;
 *     if (ntxent_loss(ws, z, N, 2, 128, 0.5f, dz, &st)) sc_fatal("%s", sc_error());
 *     ...  model_backward(m, dz);  ntxent_free(ws);
 *
 * Dimension legend: N images, V views, B = V*N rows (view v of image i is row v*N + i),
 * D embedding dim, R local rows, C gathered columns (the global batch), tau temperature.
 *
 * Definition (see doc/loss-and-optim.md for the derivation). u_c = z_c / max(||z_c||, 1e-12)
 * (as torch.nn.functional.normalize), s_rc = u_r.u_c / tau. Row r's positives P(r) are the
 * columns c != r holding another view of the same image. Its loss is
 *     l_r = logsumexp_{c != r} s_rc  -  (1/|P(r)|) sum_{p in P(r)} s_rp
 * i.e. the mean over its positives of -log softmax(s_r.)_p taken over all non-self columns
 * (the SupCon "L_out" / solo-learn multi-positive form). With V = 2 there is one positive and
 * this is exactly SimCLR's NT-Xent (sthalles' info_nce_loss; google's add_contrastive_loss
 * returns loss_a + loss_b, twice this value: see doc/loss-and-optim.md for what it means for lr).
 * The loss is the mean of l_r over the B rows.
 *
 * Contrastive accuracy: for each (row, positive) pair, the positive's rank is the number of
 * negatives (columns that are neither self nor a positive) with a strictly larger similarity;
 * top-k is the fraction of pairs with rank < k. With V = 2 this is sthalles' acc/top1, acc/top5
 * (is the positive first / in the top 5 among the 2N-1 candidates). With V > 2 the other
 * positives of the row are not counted as competitors.
 *
 * Determinism: the similarities come from cblas_sgemm, every other reduction runs in a fixed
 * order in double precision, so the result does not depend on the OpenMP thread count.
 */
#ifndef SIMCLR_NTXENT_H
#define SIMCLR_NTXENT_H

typedef struct Ntxent Ntxent;

typedef struct {
    float loss; /* mean NT-Xent over the rows */
    float top1; /* contrastive accuracy in [0,1] */
    float top5;
} NtxentStats;

/* Workspace for up to max_rows local rows against max_cols columns of dimension dim.
 * Returns 0, or -1 with sc_error() set on non-positive sizes. */
int ntxent_create(Ntxent **ws, int max_rows, int max_cols, int dim);
void ntxent_free(Ntxent *ws);

/* Single process. z is (V*N, D) unnormalised, view v of image i at row v*N + i. Writes dL/dz
 * into dz (V*N, D) (overwritten, not added) when dz != NULL, and the loss and accuracies into
 * *st when st != NULL. Needs views >= 2, tau > 0, V*N <= max_rows and max_cols, dim == the
 * workspace's. Returns 0 or -1. This is ntxent_loss_rows with R = C = V*N, row0 = 0 and
 * dz = dz_rows + dz_cols. */
int ntxent_loss(Ntxent *ws, const float *z, int n_images, int views, int dim, float tau,
                float *dz, NtxentStats *st);

/* Multi-process form. z_cols (C, D) holds the unnormalised embeddings of the whole global
 * batch, gathered from every process; this process owns the R rows z_cols[row0 .. row0+R).
 * ids (C) gives the image of every column (columns sharing an id are positives of each other);
 * ids == NULL means the single-process layout, id(c) = c % (C / views).
 * Outputs (each may be NULL):
 *   dz_rows (R, D): gradient through this process's rows acting as queries (anchors);
 *   dz_cols (C, D): gradient through the columns (keys) from this process's rows;
 *   st: this process's CONTRIBUTIONS: loss = sum_{local r} l_r / C, top1/top5 = local correct
 *       pairs / all pairs of the batch, so summing st over processes gives the global values.
 * The loss is averaged over the C rows of the global batch. The full gradient of global row j
 * is dz_rows of its owner plus the sum over processes of dz_cols[j] (an all-reduce).
 * Returns 0, or -1 when sizes are out of range or a row has no positive. */
int ntxent_loss_rows(Ntxent *ws, const float *z_cols, int C, int row0, int R, const int *ids,
                     int views, int dim, float tau, float *dz_rows, float *dz_cols,
                     NtxentStats *st);

/* Naive reference (plain loops, double accumulation, no BLAS, no workspace): same contract as
 * ntxent_loss. Allocates; for tests and as the readable definition. */
int ntxent_loss_ref(const float *z, int n_images, int views, int dim, float tau, float *dz,
                    NtxentStats *st);

#endif
