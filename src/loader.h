/* loader.h - batches of augmented views, prepared by a pool of pthreads ahead of the consumer.
 *
 *     LoaderConfig lc;
 *     loader_config_default(&lc);
 *     lc.batch_size = 256; lc.seed = seed;              // from the training options
 *     Loader *L;
 *     if (loader_create(&L, ds, &aug, &lc)) sc_fatal("%s", sc_error());
 *     loader_seek(L, start_epoch, start_batch);         // resume (default 0, 0)
 *     for (long step = 0; ...; step++) {
 *         const int *labels;                            // (N), -1 when unlabeled
 *         const float *x = loader_next(L, &labels);     // (V*N, 3, S, S)
 *         ...                                           // valid until the next loader_next
 *     }
 *     loader_free(L);
 *
 * Order: epoch e visits the images in the permutation rng_derive(seed, RNG_STREAM_SHUFFLE, e,
 * 0, 0) (or in order with shuffle off), N at a time; the last partial batch is dropped unless
 * keep_last is set (then it is returned short: see loader_next_n). After the last batch of an
 * epoch comes batch 0 of the next. View v of image i (dataset index d) at row v*N + i is
 * augment_view(.., rng_derive(seed, RNG_STREAM_AUGMENT, epoch, d, v)): the batches do not
 * depend on the number of threads, and loader_seek(e, b) resumes the exact sequence.
 *
 * Threads: plain pthreads, not OpenMP (the trainer's OpenMP team runs at the same time).
 * With threads >= 1 the workers fill up to `prefetch` batches ahead; with threads == 0 the
 * batch is computed in the caller's thread inside loader_next.
 */
#ifndef SIMCLR_LOADER_H
#define SIMCLR_LOADER_H

#include <stdint.h>

#include "augment.h"
#include "dataset.h"

typedef struct {
    int batch_size;   /* N images per batch (from --batch-size, set by the caller) */
    uint64_t seed;    /* from --seed, set by the caller */
    int threads;      /* --loader-threads: worker pthreads (0: synchronous) */
    int prefetch;     /* batches prepared ahead (>= 1; 2 = double buffering + one) */
    int shuffle;      /* 1: new permutation per epoch; 0: dataset order */
    int keep_last;    /* 1: return the last partial batch (feature extraction) */
    int shard_rank;   /* multi-process training: with shard_count > 1 every batch holds only */
    int shard_count;  /* images [r*N/P, (r+1)*N/P) of the global batch of N (N % P == 0), */
} LoaderConfig;       /* so the P processes' batches together are the one-process batch */

typedef struct Loader Loader;

void loader_config_default(LoaderConfig *c); /* threads 2, prefetch 2, shuffle on */

/* Keeps pointers to ds (must outlive the loader) and a copy of *a. For --normalize dataset
 * without stats, computes them with dataset_channel_stats(ds, 10000, ...). */
int loader_create(Loader **L, Dataset *ds, const AugmentConfig *a, const LoaderConfig *c);
void loader_free(Loader *L);
long loader_batches_per_epoch(const Loader *L);
/* Resume: the next loader_next returns batch `batch` of epoch `epoch`. */
void loader_seek(Loader *L, long epoch, long batch);
/* The next batch (V*N, 3, S, S); labels (N) per image. Valid until the next call. */
const float *loader_next(Loader *L, const int **labels);
/* Same, also giving the number of images n in it (N, or fewer for a kept last batch; the
 * rows are then V*n with view v of image i at row v*n + i) and its position. */
const float *loader_next_n(Loader *L, const int **labels, int *n, long *epoch, long *batch);
/* Dataset indices of the images of the batch last returned (n of them). */
const uint32_t *loader_indices(const Loader *L);
/* Batches prepared and waiting (READY), for tests and progress displays. */
int loader_ready_batches(Loader *L);
/* The augmentation config in use (normalisation stats resolved). */
const AugmentConfig *loader_augment(const Loader *L);

#endif
