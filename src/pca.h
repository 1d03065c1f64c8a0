/* pca.h - principal component analysis of a data matrix (the PCA-on-pixels baseline, and any
 * reduction of features), matching scikit-learn's PCA(svd_solver='full'):
 *
 *     Pca p;
 *     if (pca_fit(&p, X, N, D, 256, PCA_AUTO)) error(sc_error());   // X (N, D) float32
 *     pca_transform(&p, X, N, Y);                                    // Y (N, 256)
 *     pca_free(&p);
 *
 * Method: the eigendecomposition of a symmetric matrix in double precision (LAPACK dsyevr,
 * only the k largest eigenpairs), accumulated by BLAS dsyrk over column blocks of the centred
 * data converted to double:
 *   PCA_COV   the covariance Xc^T Xc (D, D); used when N >= D
 *   PCA_GRAM  the Gram matrix Xc Xc^T (N, N), eigenvectors U, then components = U^T Xc / s;
 *             used when N < D (5000 images of 96x96x3 pixels: a 5000 x 5000 problem instead of
 *             27648 x 27648)
 *   PCA_RANDOMIZED  the Gram matrix (float blocks summed in double), then randomized subspace
 *             iteration for its top k eigenpairs (2k columns, 8 products, Rayleigh-Ritz), the
 *             default for N > PCA_EXACT_MAX where the full eigensolver costs N^3. Leading
 *             components are exact to solver precision; with a flat spectrum tail the last
 *             eigenvalues can come out low (1.8% for the 256th of 5000 x 27648 synthetic
 *             pixels, sklearn's randomized solver 8.5%; the total kept within 1e-4)
 * Signs follow sklearn's svd_flip: in each component, the largest-magnitude entry of the
 * corresponding left singular vector U[:, j] (the scores of the rows) is positive.
 * explained_variance = s^2 / (N - 1), the ratio divides by the total variance (trace of the
 * covariance). Results do not depend on the thread count (BLAS splits outputs only; the
 * remaining sums are serial).
 */
#ifndef SIMCLR_PCA_H
#define SIMCLR_PCA_H

#include <stddef.h>

enum { PCA_AUTO = 0, PCA_COV = 1, PCA_GRAM = 2, PCA_RANDOMIZED = 3 };
/* PCA_AUTO picks PCA_COV when N >= D, else PCA_GRAM up to N = PCA_EXACT_MAX rows, else
 * PCA_RANDOMIZED. */
#define PCA_EXACT_MAX 2048

typedef struct {
    int D, k, method;                 /* method actually used (PCA_COV or PCA_GRAM) */
    size_t n_samples;
    float *mean;                      /* (D) */
    float *components;                /* (k, D), orthonormal rows, by decreasing variance */
    double *explained_variance;       /* (k) */
    double *explained_variance_ratio; /* (k) */
    double *singular_values;          /* (k) of the centred data */
    double total_variance;            /* sum of all D variances (ddof 1) */
    double seconds;                   /* wall time of pca_fit */
    double cpu_seconds;               /* CPU time of the process (all threads) during pca_fit */
} Pca;

/* X (N, D) row-major; 1 <= k <= min(N, D), N >= 2. Returns 0, or -1 with sc_error() set
 * (bad sizes, non-finite values, LAPACK failure). */
int pca_fit(Pca *p, const float *X, size_t N, int D, int k, int method);
/* out (N, k) = (X - mean) components^T. */
void pca_transform(const Pca *p, const float *X, size_t N, float *out);
void pca_free(Pca *p);

#endif
