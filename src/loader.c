/* loader.c - see loader.h.
 *
 * A ring of prefetch+1 batch slots. Each slot holds one batch, identified by its sequence
 * number seq = epoch * batches_per_epoch + batch. A slot is FREE, FILLING (workers claim its
 * images one at a time: all V views of an image are done together so a folder image is
 * decoded once), READY, or HANDED (the consumer has it). loader_next releases the previously
 * handed slot, refills free slots with the next sequence numbers and waits for the slot it
 * wants, helping with the work meanwhile (so threads == 0 simply means "the caller does it").
 * Every view is a pure function of (seed, epoch, dataset index, view): which thread computes
 * it changes nothing.
 */
#include "loader.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

enum { SLOT_FREE, SLOT_FILLING, SLOT_READY, SLOT_HANDED };

typedef struct {
    int state;
    long seq, epoch, batch;
    int n;          /* images in this batch */
    int next_item;  /* next image to claim */
    int done_items;
    uint32_t *idx;  /* (N) dataset indices */
    int *labels;    /* (N) */
    float *x;       /* (V*N, 3, S, S) */
} Slot;

struct Loader {
    Dataset *ds;
    AugmentConfig a;
    LoaderConfig c;
    int V, S, N;
    size_t nimg, view_floats;
    long bpe;
    Slot *slots;
    int nslots;
    long next_seq, want_seq;
    uint32_t *perm;
    long perm_epoch;
    pthread_t *th;
    int nth;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    int stop, pausing, inflight;
    Slot *handed;
    char err[512];
    int failed;
    ImageU8 cim; /* the consumer's decode buffer when it helps */
};

void loader_config_default(LoaderConfig *c) {
    memset(c, 0, sizeof *c);
    c->batch_size = 256;
    c->seed = 0;
    c->threads = 2;
    c->prefetch = 2;
    c->shuffle = 1;
    c->keep_last = 0;
}

/* ---- slot bookkeeping (mutex held) ---------------------------------------------------------- */

static void ensure_perm(Loader *L, long epoch) {
    if (L->perm_epoch == epoch) return;
    if (L->c.shuffle) {
        Rng r = rng_derive(L->c.seed, RNG_STREAM_SHUFFLE, (uint64_t)epoch, 0, 0);
        rng_permutation(&r, L->perm, (uint32_t)L->nimg, 1);
    } else
        for (size_t i = 0; i < L->nimg; i++) L->perm[i] = (uint32_t)i;
    L->perm_epoch = epoch;
}

static void assign(Loader *L, Slot *s) {
    long seq = L->next_seq++;
    s->seq = seq, s->epoch = seq / L->bpe, s->batch = seq % L->bpe;
    ensure_perm(L, s->epoch);
    size_t start = (size_t)s->batch * L->N;
    size_t n = L->nimg - start < (size_t)L->N ? L->nimg - start : (size_t)L->N;
    if (L->c.shard_count > 1) { /* this process's share of the global batch (N % count == 0) */
        size_t share = (size_t)L->N / L->c.shard_count;
        start += (size_t)L->c.shard_rank * share;
        n = share;
    }
    s->n = (int)n;
    for (size_t i = 0; i < n; i++) {
        s->idx[i] = L->perm[start + i];
        s->labels[i] = dataset_label(L->ds, s->idx[i]);
    }
    s->next_item = s->done_items = 0;
    s->state = SLOT_FILLING;
}

static void refill(Loader *L) {
    for (int k = 0; k < L->nslots; k++)
        if (L->slots[k].state == SLOT_FREE) assign(L, &L->slots[k]);
    pthread_cond_broadcast(&L->work_cv);
}

/* The FILLING slot with the lowest seq that still has unclaimed images (only `only` if set). */
static Slot *pick(Loader *L, Slot *only) {
    if (L->pausing) return NULL;
    Slot *best = NULL;
    for (int k = 0; k < L->nslots; k++) {
        Slot *s = &L->slots[k];
        if (only && s != only) continue;
        if (s->state == SLOT_FILLING && s->next_item < s->n && (!best || s->seq < best->seq)) best = s;
    }
    return best;
}

/* ---- work ----------------------------------------------------------------------------------- */

/* Claims one image of s (mutex held on entry and exit; released while computing). */
static void work_one(Loader *L, Slot *s, ImageU8 *im) {
    int i = s->next_item++;
    L->inflight++;
    uint32_t d = s->idx[i];
    long epoch = s->epoch;
    int n = s->n;
    float *x = s->x;
    pthread_mutex_unlock(&L->mu);

    int bad = dataset_image(L->ds, d, im);
    char msg[512];
    if (bad) snprintf(msg, sizeof msg, "%s", sc_error());
    for (int v = 0; v < L->V; v++) {
        float *out = x + ((size_t)v * n + i) * L->view_floats;
        if (bad) {
            memset(out, 0, sizeof(float) * L->view_floats);
            continue;
        }
        Rng r = rng_derive(L->c.seed, RNG_STREAM_AUGMENT, (uint64_t)epoch, d, (uint64_t)v);
        augment_view(im, &L->a, &r, out);
    }

    pthread_mutex_lock(&L->mu);
    if (bad && !L->failed) {
        L->failed = 1;
        snprintf(L->err, sizeof L->err, "%s", msg);
    }
    L->inflight--;
    if (++s->done_items == s->n) s->state = SLOT_READY;
    pthread_cond_broadcast(&L->done_cv);
}

static void *worker(void *arg) {
    Loader *L = arg;
    ImageU8 im = {0};
    pthread_mutex_lock(&L->mu);
    while (!L->stop) {
        Slot *s = pick(L, NULL);
        if (!s) {
            pthread_cond_wait(&L->work_cv, &L->mu);
            continue;
        }
        work_one(L, s, &im);
    }
    pthread_mutex_unlock(&L->mu);
    image_free(&im);
    return NULL;
}

/* ---- public --------------------------------------------------------------------------------- */

int loader_create(Loader **out, Dataset *ds, const AugmentConfig *a, const LoaderConfig *c) {
    *out = NULL;
    if (c->batch_size < 1) return sc_error_set("loader.batch_size: expected >= 1, got %d", c->batch_size);
    if (a->out_size < 1) return sc_error_set("augment.out_size: expected >= 1, got %d", a->out_size);
    size_t n = dataset_size(ds);
    if (n > UINT32_MAX) return sc_error_set("dataset: more than 2^32 images");
    if (c->shard_count > 1 && (c->keep_last || c->batch_size % c->shard_count ||
                               c->shard_rank < 0 || c->shard_rank >= c->shard_count))
        return sc_error_set("loader: a batch of %d images cannot be split into %d equal shares",
                            c->batch_size, c->shard_count);
    if (!c->keep_last && n < (size_t)c->batch_size)
        return sc_error_set("loader.batch_size: %d is larger than the dataset (%zu images; the last "
                            "partial batch is dropped in training)", c->batch_size, n);
    Loader *L = calloc(1, sizeof *L);
    SC_ASSERT(L);
    L->ds = ds, L->a = *a, L->c = *c;
    if (L->c.prefetch < 1) L->c.prefetch = 1;
    if (L->a.normalize == NORMALIZE_DATASET && !L->a.stats_set) {
        if (dataset_channel_stats(ds, 10000, L->a.mean, L->a.std)) {
            free(L);
            return -1;
        }
        L->a.stats_set = 1;
    } else if (L->a.normalize == NORMALIZE_IMAGENET && !L->a.stats_set) {
        AugmentConfig t = L->a;
        if (augment_config_finish(&t) == 0) L->a = t;
    }
    L->V = a->views < 1 ? 1 : a->views, L->S = a->out_size, L->N = c->batch_size;
    L->nimg = n;
    L->view_floats = (size_t)3 * L->S * L->S;
    L->bpe = c->keep_last ? (long)((n + L->N - 1) / L->N) : (long)(n / L->N);
    L->perm = sc_alloc(sizeof(uint32_t) * n);
    L->perm_epoch = -1;
    L->nslots = L->c.prefetch + 1;
    L->slots = calloc(L->nslots, sizeof(Slot));
    for (int k = 0; k < L->nslots; k++) {
        L->slots[k].idx = sc_alloc(sizeof(uint32_t) * L->N);
        L->slots[k].labels = sc_alloc(sizeof(int) * L->N);
        L->slots[k].x = sc_alloc(sizeof(float) * L->view_floats * L->V * L->N);
    }
    pthread_mutex_init(&L->mu, NULL);
    pthread_cond_init(&L->work_cv, NULL);
    pthread_cond_init(&L->done_cv, NULL);
    pthread_mutex_lock(&L->mu);
    refill(L);
    pthread_mutex_unlock(&L->mu);
    L->nth = c->threads < 0 ? 0 : c->threads;
    L->th = calloc(L->nth ? L->nth : 1, sizeof(pthread_t));
    for (int t = 0; t < L->nth; t++)
        if (pthread_create(&L->th[t], NULL, worker, L) != 0) {
            L->nth = t;
            loader_free(L);
            return sc_error_set("loader.threads: cannot start thread %d", t);
        }
    *out = L;
    return 0;
}

void loader_free(Loader *L) {
    if (!L) return;
    pthread_mutex_lock(&L->mu);
    L->stop = 1;
    pthread_cond_broadcast(&L->work_cv);
    pthread_mutex_unlock(&L->mu);
    for (int t = 0; t < L->nth; t++) pthread_join(L->th[t], NULL);
    for (int k = 0; k < L->nslots; k++) {
        sc_free(L->slots[k].idx);
        sc_free(L->slots[k].labels);
        sc_free(L->slots[k].x);
    }
    free(L->slots);
    free(L->th);
    image_free(&L->cim);
    sc_free(L->perm);
    pthread_mutex_destroy(&L->mu);
    pthread_cond_destroy(&L->work_cv);
    pthread_cond_destroy(&L->done_cv);
    free(L);
}

long loader_batches_per_epoch(const Loader *L) { return L->bpe; }

int loader_ready_batches(Loader *L) {
    pthread_mutex_lock(&L->mu);
    int n = 0;
    for (int k = 0; k < L->nslots; k++) n += L->slots[k].state == SLOT_READY;
    pthread_mutex_unlock(&L->mu);
    return n;
}
const AugmentConfig *loader_augment(const Loader *L) { return &L->a; }
const uint32_t *loader_indices(const Loader *L) { return L->handed ? L->handed->idx : NULL; }

void loader_seek(Loader *L, long epoch, long batch) {
    pthread_mutex_lock(&L->mu);
    L->pausing = 1; /* no new claims; wait for the images being computed */
    while (L->inflight > 0) pthread_cond_wait(&L->done_cv, &L->mu);
    for (int k = 0; k < L->nslots; k++) L->slots[k].state = SLOT_FREE;
    L->handed = NULL;
    L->next_seq = L->want_seq = epoch * L->bpe + batch;
    L->pausing = 0;
    refill(L);
    pthread_mutex_unlock(&L->mu);
}

const float *loader_next_n(Loader *L, const int **labels, int *n, long *epoch, long *batch) {
    pthread_mutex_lock(&L->mu);
    if (L->handed) {
        L->handed->state = SLOT_FREE;
        L->handed = NULL;
        refill(L);
    }
    Slot *want = NULL;
    for (int k = 0; k < L->nslots; k++)
        if (L->slots[k].seq == L->want_seq && L->slots[k].state != SLOT_FREE) want = &L->slots[k];
    SC_ASSERT(want);
    while (want->state != SLOT_READY) {
        Slot *s = pick(L, want); /* help with the batch we are waiting for */
        if (s) work_one(L, s, &L->cim);
        else pthread_cond_wait(&L->done_cv, &L->mu);
    }
    want->state = SLOT_HANDED;
    L->handed = want;
    L->want_seq++;
    int failed = L->failed;
    char err[512];
    memcpy(err, L->err, sizeof err);
    pthread_mutex_unlock(&L->mu);
    if (failed) {
        sc_error_set("%s", err);
        return NULL;
    }
    if (labels) *labels = want->labels;
    if (n) *n = want->n;
    if (epoch) *epoch = want->epoch;
    if (batch) *batch = want->batch;
    return want->x;
}

const float *loader_next(Loader *L, const int **labels) {
    return loader_next_n(L, labels, NULL, NULL, NULL);
}
