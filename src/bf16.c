/* bf16.c - array conversions between float32 and bf16 (see bf16.h). */
#include "bf16.h"

void bf16_from_f32_array(uint16_t *out, const float *in, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = bf16_from_f32(in[i]);
}

void bf16_to_f32_array(float *out, const uint16_t *in, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = bf16_to_f32(in[i]);
}

void bf16_round_array(float *out, const float *in, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = bf16_to_f32(bf16_from_f32(in[i]));
}
