/* probe.c - see probe.h. */
#include "probe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "common.h"

struct Probe {
    int D, K;
    float *w, *b;          /* (K, D), (K): views into par */
    float *par, *m, *v;    /* (K*D + K) each: parameters, Adam moments */
    float *g;              /* gradient (K*D + K) */
    float *logits, *dl;    /* (rows, K): scratch grown as needed */
    int cap;
    int64_t step;
    Comm *comm;            /* NULL or one process: alone */
    CkTensor ck[7];
};

int probe_create(Probe **out, int dim, int classes) {
    *out = NULL;
    if (dim < 1 || classes < 2)
        return sc_error_set("online probe: expected features and at least 2 classes, got %d x %d", dim, classes);
    Probe *p = calloc(1, sizeof *p);
    SC_ASSERT(p);
    p->D = dim, p->K = classes;
    size_t P = (size_t)classes * dim + classes;
    p->par = sc_alloc(P * sizeof(float)), p->m = sc_alloc(P * sizeof(float));
    p->v = sc_alloc(P * sizeof(float)), p->g = sc_alloc(P * sizeof(float));
    memset(p->par, 0, P * sizeof(float)), memset(p->m, 0, P * sizeof(float));
    memset(p->v, 0, P * sizeof(float));
    p->w = p->par, p->b = p->par + (size_t)classes * dim;
    *out = p;
    return 0;
}

void probe_set_comm(Probe *p, Comm *c) { p->comm = c; }

void probe_free(Probe *p) {
    if (!p) return;
    sc_free(p->par), sc_free(p->m), sc_free(p->v), sc_free(p->g), sc_free(p->logits), sc_free(p->dl);
    free(p);
}

static void logits_row(const Probe *p, const float *x, float *out) {
    for (int k = 0; k < p->K; k++) {
        const float *w = p->w + (size_t)k * p->D;
        float s = 0;
        for (int d = 0; d < p->D; d++) s += w[d] * x[d];
        out[k] = s + p->b[k];
    }
}

void probe_logits(const Probe *p, const float *h, int n, float *out) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < n; r++) logits_row(p, h + (size_t)r * p->D, out + (size_t)r * p->K);
}

int probe_step(Probe *p, const float *h, int N, int V, const int *labels, float lr, ProbeStats *st) {
    int D = p->D, K = p->K, rows = N * V;
    st->rows = 0, st->loss = 0, st->top1 = NAN;
    if (!labels) return 0;
    /* the labelled rows, in order */
    int *idx = sc_alloc(sizeof(int) * (rows ? rows : 1)), n = 0;
    for (int r = 0; r < rows; r++) {
        int y = labels[r % N];
        if (y >= K) {
            sc_free(idx);
            return sc_error_set("online probe: label %d of image %d is out of range 0..%d", y, r % N, K - 1);
        }
        if (y >= 0) idx[n++] = r;
    }
    /* several processes: each takes its own rows; the count, the gradient and the statistics are
     * summed over the processes (rank order), so every process makes the same update */
    Comm *cm = p->comm && comm_size(p->comm) > 1 ? p->comm : NULL;
    double ng = n;
    if (cm && comm_allreduce_f64(cm, &ng, 1)) {
        sc_free(idx);
        return -1;
    }
    if (ng == 0) {
        sc_free(idx);
        return 0;
    }
    if (n > p->cap) {
        sc_free(p->logits), sc_free(p->dl);
        p->logits = sc_alloc((size_t)n * K * sizeof(float)), p->dl = sc_alloc((size_t)n * K * sizeof(float));
        p->cap = n;
    }
    float *lg = p->logits, *dl = p->dl;
#pragma omp parallel for schedule(static)
    for (int j = 0; j < n; j++) logits_row(p, h + (size_t)idx[j] * D, lg + (size_t)j * K);
    double loss = 0;
    int correct = 0;
    for (int j = 0; j < n; j++) { /* softmax cross-entropy, gradient / n */
        const float *l = lg + (size_t)j * K;
        int y = labels[idx[j] % N], arg = 0;
        float mx = l[0];
        for (int k = 1; k < K; k++)
            if (l[k] > mx) mx = l[k], arg = k;
        double se = 0;
        for (int k = 0; k < K; k++) se += exp((double)l[k] - mx);
        loss += log(se) + mx - l[y];
        correct += arg == y;
        for (int k = 0; k < K; k++)
            dl[(size_t)j * K + k] = (float)((exp((double)l[k] - mx) / se - (k == y)) / ng);
    }
    /* gradient: dW[k] = sum_j dl[j,k] h[j], db[k] = sum_j dl[j,k]; each k in its own order */
#pragma omp parallel for schedule(static)
    for (int k = 0; k < K; k++) {
        float *gw = p->g + (size_t)k * D;
        memset(gw, 0, D * sizeof(float));
        float gb = 0;
        for (int j = 0; j < n; j++) {
            float c = dl[(size_t)j * K + k];
            const float *x = h + (size_t)idx[j] * D;
            for (int d = 0; d < D; d++) gw[d] += c * x[d];
            gb += c;
        }
        p->g[(size_t)K * D + k] = gb;
    }
    size_t P = (size_t)K * D + K;
    if (cm) {
        double lc[2] = {loss, correct};
        if (comm_allreduce_f32(cm, p->g, P) || comm_allreduce_f64(cm, lc, 2)) {
            sc_free(idx);
            return -1;
        }
        loss = lc[0], correct = (int)lc[1];
    }
    /* Adam */
    p->step++;
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    double c1 = 1 - pow(b1, (double)p->step), c2 = 1 - pow(b2, (double)p->step);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < P; i++) {
        float g = p->g[i];
        p->m[i] = (float)(b1 * p->m[i] + (1 - b1) * g);
        p->v[i] = (float)(b2 * p->v[i] + (1 - b2) * (double)g * g);
        p->par[i] -= (float)(lr * (p->m[i] / c1) / (sqrt(p->v[i] / c2) + eps));
    }
    sc_free(idx);
    st->rows = (int)ng, st->loss = loss / ng, st->top1 = (double)correct / ng;
    return 0;
}

CkTensor *probe_state(Probe *p, int *n) {
    int64_t K = p->K, D = p->D;
    const char *names[6] = {"probe.weight", "probe.bias", "optim.probe.weight.m", "optim.probe.weight.v",
                            "optim.probe.bias.m", "optim.probe.bias.v"};
    float *data[6] = {p->w, p->b, p->m, p->v, p->m + K * D, p->v + K * D};
    for (int i = 0; i < 6; i++) {
        CkTensor *c = &p->ck[i];
        memset(c, 0, sizeof *c);
        snprintf(c->name, sizeof c->name, "%s", names[i]);
        c->dtype = ST_F32;
        int bias = i == 1 || i >= 4;
        c->ndim = bias ? 1 : 2;
        c->shape[0] = K, c->shape[1] = D;
        c->data = data[i];
    }
    CkTensor *c = &p->ck[6];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "probe.step");
    c->dtype = ST_I64, c->ndim = 0, c->data = &p->step;
    *n = 7;
    return p->ck;
}
