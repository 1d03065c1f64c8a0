/* finetune.c - the labelled subset and the classification loss of `simclr finetune` (see
 * finetune.h). */
#include "finetune.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "model.h"
#include "rng.h"

static int cmp_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

int finetune_select_labels(const int32_t *labels, size_t n, int K, double fraction, int per_class,
                           uint64_t seed, size_t **idx_out, size_t *count) {
    *idx_out = NULL;
    *count = 0;
    if (!labels || K < 1) return sc_error_set("finetune: the dataset has no labels");
    if (per_class <= 0 && !(fraction > 0 && fraction <= 1))
        return sc_error_set("finetune.label_fraction: expected a fraction in (0, 1], got %g", fraction);
    size_t *nc = calloc((size_t)K, sizeof *nc);
    for (size_t i = 0; i < n; i++)
        if (labels[i] >= 0 && labels[i] < K) nc[labels[i]]++;
    size_t *idx = sc_alloc(sizeof(size_t) * (n ? n : 1)), m = 0;
    uint32_t *members = sc_alloc(sizeof(uint32_t) * (n ? n : 1)), *perm = sc_alloc(sizeof(uint32_t) * (n ? n : 1));
    int rc = 0;
    for (int c = 0; c < K && !rc; c++) {
        if (nc[c] == 0) continue;
        size_t k = per_class > 0 ? (size_t)per_class : (size_t)llround(fraction * (double)nc[c]);
        if (k < 1) k = 1;
        if (k > nc[c]) {
            rc = sc_error_set("finetune.labels_per_class %d: class %d has only %zu images", per_class, c, nc[c]);
            break;
        }
        size_t q = 0;
        for (size_t i = 0; i < n; i++)
            if (labels[i] == c) members[q++] = (uint32_t)i;
        Rng r = rng_derive(seed, RNG_STREAM_LABELS, (uint64_t)c, 0, 0);
        rng_permutation(&r, perm, (uint32_t)q, 1);
        for (size_t j = 0; j < k; j++) idx[m++] = members[perm[j]];
    }
    free(nc);
    sc_free(members);
    sc_free(perm);
    if (!rc && m == 0) rc = sc_error_set("finetune: no labelled image to select");
    if (rc) {
        sc_free(idx);
        return -1;
    }
    qsort(idx, m, sizeof *idx, cmp_size);
    *idx_out = idx;
    *count = m;
    return 0;
}

double softmax_ce(const float *logits, const int *y, int B, int K, float *grad, double *top1,
                  double *top5) {
    double *row = sc_alloc(sizeof(double) * (size_t)B * 3);
    double *loss = row, *c1 = row + B, *c5 = row + 2 * B;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * K;
        double mx = -INFINITY, se = 0;
        for (int k = 0; k < K; k++) mx = fmax(mx, z[k]);
        for (int k = 0; k < K; k++) se += exp(z[k] - mx);
        int lab = y[b], rank = 0;
        for (int k = 0; k < K; k++) rank += z[k] > z[lab] || (z[k] == z[lab] && k < lab);
        loss[b] = mx + log(se) - z[lab];
        c1[b] = rank < 1, c5[b] = rank < 5;
        if (grad)
            for (int k = 0; k < K; k++)
                grad[(size_t)b * K + k] = (float)((exp(z[k] - mx) / se - (k == lab)) / B);
    }
    double L = 0, t1 = 0, t5 = 0;
    for (int b = 0; b < B; b++) L += loss[b], t1 += c1[b], t5 += c5[b];
    sc_free(row);
    if (top1) *top1 = t1 / B;
    if (top5) *top5 = t5 / B;
    return L / B;
}

int finetune_ce_loss(void *ctx, Trainer *t, const int *labels, float *grad, TrainStats *st) {
    int K = *(const int *)ctx, B = trainer_rows(t);
    if (!labels) return sc_error_set("finetune: the batch has no labels");
    for (int b = 0; b < B; b++)
        if (labels[b] < 0 || labels[b] >= K)
            return sc_error_set("finetune: label %d of batch row %d is outside 0..%d", labels[b], b, K - 1);
    double t1, t5;
    st->loss = (float)softmax_ce(model_z(t->model), labels, B, K, grad, &t1, &t5);
    st->top1 = (float)t1, st->top5 = (float)t5;
    return 0;
}
