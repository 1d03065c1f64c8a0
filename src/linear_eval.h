/* linear_eval.h - multinomial logistic regression on frozen features (the linear evaluation
 * protocol): standardisation, L2 strength chosen on a held-out part of train, refit, test
 * top-1/top-5.
 *
 *     LinearEvalConfig c; linear_eval_default_config(&c);       // L-BFGS, short grid
 *     LinearEvalResult r;
 *     if (linear_eval_fit_predict(Xtr, ytr, ntr, Xte, yte, nte, D, K, &c, &r)) error(sc_error());
 *     printf("top-1 %.2f%%  lambda %g\n", 100 * r.top1, r.lambda);
 *
 * The objective (what "lambda", the penalty strength, means everywhere in this project):
 *
 *     L(W, b) = (1/N) sum_i CE(softmax(W x_i + b), y_i)  +  (lambda / 2) ||W||_F^2
 *
 * with W (K, D) the full multinomial weight matrix (one row per class, as sklearn's
 * multi_class='multinomial') and the biases b (K) not penalised. scikit-learn's
 * LogisticRegression minimises 0.5 ||W||^2 + C sum_i CE_i, the same problem scaled by C N:
 *
 *     lambda = 1 / (C * N)        C = 1 / (lambda * N)      (N = training rows of that fit)
 *
 * Solvers: full-batch L-BFGS (written here: two-loop recursion, memory m = 10, backtracking
 * Armijo line search, double precision, BLAS dgemm for the logits and the gradient), and
 * mini-batch Adam as sthalles/SimCLR's evaluation notebook (lr 3e-4, PyTorch-style L2 weight
 * decay 8e-4 on weights and biases, batch 256, 100 epochs; no penalty search).
 * Determinism: the validation split and the Adam shuffles come from
 * rng_derive(seed, RNG_STREAM_EVAL, ...); every reduction has a fixed order, so results do not
 * depend on the thread count.
 * Not done here: data augmentation during evaluation (the protocol uses fixed features).
 */
#ifndef SIMCLR_LINEAR_EVAL_H
#define SIMCLR_LINEAR_EVAL_H

#include <stddef.h>
#include <stdint.h>

enum { LINEAR_SOLVER_LBFGS = 0, LINEAR_SOLVER_ADAM = 1 };
/* Penalty grids (log-spaced, in lambda as defined above):
 *   SHORT: 10 values in [1e-6, 1e1] (default)   PAPER: 45 values in [1e-6, 1e5] (SimCLR B.8)
 *   FIXED: no search, lambda = cfg.lambda. */
enum { LINEAR_GRID_SHORT = 0, LINEAR_GRID_PAPER = 1, LINEAR_GRID_FIXED = 2 };
#define LINEAR_MAX_GRID 64

typedef struct {
    int solver;          /* LINEAR_SOLVER_* */
    int grid;            /* LINEAR_GRID_* (L-BFGS only) */
    double lambda;       /* penalty for LINEAR_GRID_FIXED */
    double val_frac;     /* part of train held out to choose lambda (0.2) */
    int standardize;     /* 1: z-score every feature with the train mean / std (default 1) */
    /* L-BFGS */
    int max_iter;        /* per fit (1000) */
    double tol;          /* stop when max |gradient| <= tol (1e-5, objective above) */
    int history;         /* L-BFGS memory (10) */
    /* Adam */
    double adam_lr;      /* 3e-4 */
    double adam_wd;      /* 8e-4 */
    int adam_epochs;     /* 100 */
    int adam_batch;      /* 256 */
    uint64_t seed;       /* split and Adam shuffles */
    int verbose;         /* 1: one line per grid value on stderr */
    int patience;        /* > 0: stop the search (strong to weak penalty) once this many
                            penalties in a row did not beat the best held-out accuracy */
} LinearEvalConfig;

typedef struct {
    double top1, top5;            /* test accuracy in [0, 1] */
    double train_top1;            /* accuracy of the final model on its training rows */
    double lambda;                /* the penalty used for the final fit */
    double C;                     /* sklearn's C of the final fit: 1 / (lambda * n_train) */
    double val_top1;              /* held-out accuracy at the chosen lambda (-1: no search) */
    int iters;                    /* iterations (L-BFGS) or epochs (Adam) of the final fit */
    int n_grid;
    double grid_lambda[LINEAR_MAX_GRID], grid_val_top1[LINEAR_MAX_GRID];
    size_t n_fit, n_val;          /* rows used to fit / hold out during the search */
    double seconds;
} LinearEvalResult;

void linear_eval_default_config(LinearEvalConfig *c);

/* Checks features and labels: labels in [0, K), every feature finite. `what` names the input in
 * the message ("--train-features"). Returns 0 or -1 with sc_error() set. */
int linear_eval_check_input(const float *X, const int *y, size_t N, int D, int K, const char *what);

/* The whole protocol. X* are (N*, D) row-major float32, y* labels in [0, K). The inputs are not
 * modified. Returns 0, or -1 with sc_error() set (bad labels, non-finite features, empty input). */
int linear_eval_fit_predict(const float *Xtr, const int *ytr, size_t ntr, const float *Xte,
                            const int *yte, size_t nte, int D, int K, const LinearEvalConfig *c,
                            LinearEvalResult *r);

/* ---- lower level, used by the tests and by the fit above ---------------------------------
 * Parameters theta are one vector of K*D + K doubles: W (K, D) row-major, then b (K). */

/* Objective L at theta and its gradient into grad (K*D + K; NULL: the value only). X (N, D),
 * y (N). work: N*(K+1) doubles. Sums over rows run in a fixed order. */
double logreg_loss_grad(const double *X, const int *y, size_t N, int D, int K, double lambda,
                        const double *theta, double *grad, double *work);
/* Minimises L from the starting point in theta (warm start; zeros for a cold one). Returns the
 * number of iterations; *converged set when the gradient test passed. */
int logreg_fit_lbfgs(const double *X, const int *y, size_t N, int D, int K, double lambda,
                     double *theta, int max_iter, double tol, int history, int *converged);
/* Mini-batch Adam with L2 weight decay wd on W and b (PyTorch's Adam(weight_decay=wd)),
 * theta initialised here as torch.nn.Linear does (uniform +-1/sqrt(D)). */
void logreg_fit_adam(const double *X, const int *y, size_t N, int D, int K, double lr, double wd,
                     int epochs, int batch, uint64_t seed, double *theta);
/* Counts of rows whose label is the top-1 class / among the top-5 classes (ties: lower class). */
void logreg_score(const double *X, const int *y, size_t N, int D, int K, const double *theta,
                  size_t *correct1, size_t *correct5);

#endif
