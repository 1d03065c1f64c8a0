/* bf16.h - the element types of activation buffers, and float <-> bf16 conversion.
 *
 * bf16 ("brain float") is the upper half of an IEEE float32: 1 sign, 8 exponent, 7 mantissa bits,
 * so it has float32's range with about 3 significant decimal digits (relative step 2^-8 = 0.4%).
 * Conversion from float rounds to nearest, ties to even (as oneDNN and PyTorch do); NaN stays NaN.
 *
 * Precision is data: a buffer of activations is a `void *` plus a DType, and the layer kernels
 * convert at their loads and stores (arithmetic is always float32).
 */
#ifndef SIMCLR_BF16_H
#define SIMCLR_BF16_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum { DT_F32 = 0, DT_BF16 = 1 } DType;

static inline size_t dt_size(int dt) { return dt == DT_BF16 ? 2 : 4; }

static inline uint16_t bf16_from_f32(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Element i of a buffer of type dt, as float; and the store. */
static inline float dt_load(const void *p, size_t i, int dt) {
    return dt == DT_BF16 ? bf16_to_f32(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}
static inline void dt_store(void *p, size_t i, int dt, float v) {
    if (dt == DT_BF16) ((uint16_t *)p)[i] = bf16_from_f32(v);
    else ((float *)p)[i] = v;
}

/* Whole arrays (n elements), vectorised; used at layer boundaries and in the tests. */
void bf16_from_f32_array(uint16_t *out, const float *in, size_t n);
void bf16_to_f32_array(float *out, const uint16_t *in, size_t n);
/* out[i] = in[i] rounded to bf16 and back (the value a bf16 buffer would hold). */
void bf16_round_array(float *out, const float *in, size_t n);

#endif
