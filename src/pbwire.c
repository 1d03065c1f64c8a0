/* pbwire.c - see pbwire.h. */
#include "pbwire.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"

void pb_free(PbBuf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

static void reserve(PbBuf *b, size_t extra) {
    if (b->n + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra) cap *= 2;
    b->data = sc_xrealloc(b->data, cap);
    b->cap = cap;
}

void pb_raw(PbBuf *b, const void *p, size_t n) {
    reserve(b, n);
    if (n) memcpy(b->data + b->n, p, n);
    b->n += n;
}

static size_t varint_encode(uint8_t out[10], uint64_t v) {
    size_t k = 0;
    do {
        out[k++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return k;
}

void pb_varint(PbBuf *b, uint64_t v) {
    uint8_t t[10];
    pb_raw(b, t, varint_encode(t, v));
}

void pb_key(PbBuf *b, int field, int wire_type) { pb_varint(b, ((uint64_t)field << 3) | (unsigned)wire_type); }

void pb_int(PbBuf *b, int field, int64_t v) {
    pb_key(b, field, PB_VARINT);
    pb_varint(b, (uint64_t)v);
}

void pb_float(PbBuf *b, int field, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    uint8_t t[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    pb_key(b, field, PB_FIXED32);
    pb_raw(b, t, 4);
}

void pb_double(PbBuf *b, int field, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    uint8_t t[8];
    for (int i = 0; i < 8; i++) t[i] = (uint8_t)(u >> (8 * i));
    pb_key(b, field, PB_FIXED64);
    pb_raw(b, t, 8);
}

void pb_bytes(PbBuf *b, int field, const void *p, size_t n) {
    pb_key(b, field, PB_LEN);
    pb_varint(b, n);
    pb_raw(b, p, n);
}

void pb_string(PbBuf *b, int field, const char *s) { pb_bytes(b, field, s, strlen(s)); }

void pb_packed_floats(PbBuf *b, int field, const float *v, size_t n) {
    pb_key(b, field, PB_LEN);
    pb_varint(b, 4 * n);
    reserve(b, 4 * n);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        uint8_t *d = b->data + b->n + 4 * i;
        d[0] = (uint8_t)u, d[1] = (uint8_t)(u >> 8), d[2] = (uint8_t)(u >> 16), d[3] = (uint8_t)(u >> 24);
    }
    b->n += 4 * n;
}

size_t pb_begin(PbBuf *b, int field) {
    pb_key(b, field, PB_LEN);
    return b->n;
}

void pb_end(PbBuf *b, size_t start) {
    SC_ASSERT(start <= b->n);
    uint8_t t[10];
    size_t len = b->n - start, k = varint_encode(t, len);
    reserve(b, k);
    memmove(b->data + start + k, b->data + start, len);
    memcpy(b->data + start, t, k);
    b->n += k;
}
