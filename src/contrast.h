/* contrast.h - the contrastive objectives of the paper's ablations (Table 2, Table 5), on the
 * Trainer's pluggable loss: NT-Xent, NT-Logistic and margin triplet, with cosine or dot-product
 * similarity.
 *
 *     ContrastConfig cc; contrast_config_default(&cc);     // NT-Xent, cosine, tau 0.5
 *     cc.loss = CONTRAST_NT_LOGISTIC; cc.tau = 0.2f;
 *     Contrast *c;
 *     if (contrast_create(&c, &cc, 2 * N, 128)) sc_fatal("%s", sc_error());
 *     double loss; NtxentStats st;
 *     contrast_loss(c, z, N, 2, 128, dz, &loss, &st);      // dz (2N, 128) overwritten
 *     contrast_free(c);
 *
 * Dimension legend: N images, V views, B = V*N rows (view v of image i is row v*N + i), D the
 * embedding dim. u_r = z_r / max(||z_r||, 1e-12) with similarity cosine, u_r = z_r with dot
 * (the paper's "without l2 norm": cosine IS the dot product of L2-normalised z, so
 * `--similarity dot` is the z-normalisation-off ablation); s_rc = u_r . u_c. For row r, P(r)
 * holds the other V-1 views of its image, N(r) every other non-self row (2N-2 for V = 2).
 *
 *   ntxent:         l_r = logsumexp_{c != r} s_rc/tau  -  mean_{p in P} s_rp/tau
 *   nt-logistic:    l_r = mean_{p in P} -log sigmoid(s_rp/tau) + mean_{k in N} -log sigmoid(-s_rk/tau)
 *   margin-triplet: l_r = mean_{p in P} mean_{k in N} max(0, s_rk - s_rp + margin)   (no tau)
 *
 * The loss is the mean of l_r over the B rows. The paper's Table 2 writes each loss for one
 * positive and one negative; the means over the negatives weight the positive and the
 * negative terms equally whatever the batch size (the paper balances them too; it also tries
 * semi-hard negative mining, which is not offered here). With cosine similarity and ntxent this
 * is exactly ntxent_loss (tested), whose faster float path pretraining uses by default.
 *
 * Contrastive accuracy as ntxent.h: the rank of each positive among the negatives.
 * Everything runs in double with fixed-order loops (OpenMP over rows): bit-identical for any
 * thread count; no BLAS. The workspace is allocated once; the step allocates nothing.
 */
#ifndef SIMCLR_CONTRAST_H
#define SIMCLR_CONTRAST_H

#include "ntxent.h"

enum { CONTRAST_NTXENT = 0, CONTRAST_NT_LOGISTIC = 1, CONTRAST_MARGIN = 2 };
#define CONTRAST_LOSS_CHOICES "ntxent|nt-logistic|margin-triplet"
enum { SIMILARITY_COSINE = 0, SIMILARITY_DOT = 1 };
#define SIMILARITY_CHOICES "cosine|dot"

typedef struct {
    int loss;       /* CONTRAST_* */
    int similarity; /* SIMILARITY_* */
    float tau;      /* temperature (ntxent, nt-logistic) */
    float margin;   /* margin-triplet */
} ContrastConfig;

typedef struct Contrast Contrast;

void contrast_config_default(ContrastConfig *c);
/* 1 when the configuration is plain NT-Xent with cosine similarity (ntxent_loss serves it). */
int contrast_is_default(const ContrastConfig *c);

int contrast_create(Contrast **c, const ContrastConfig *cfg, int max_rows, int dim);
void contrast_free(Contrast *c);
/* z (V*N, D) -> dz (V*N, D) (overwritten; may be NULL), the loss in double (may be NULL) and
 * the stats (may be NULL). Returns 0 or -1 (sizes, fewer than 2 views). */
int contrast_loss(Contrast *c, const float *z, int n_images, int views, int dim, float *dz,
                  double *loss, NtxentStats *st);

#endif
