/* rng.h - explicit, splittable random numbers. No global state, no clock seeding.
 *
 * Every random decision in the project comes from an Rng derived from the run's seed and the
 * coordinates of the decision, e.g. rng_derive(seed, RNG_STREAM_AUGMENT, epoch, image, view).
 * The same coordinates give the same stream whatever thread computes them, so results do not
 * depend on the number of threads and a resumed run continues the exact sequence.
 * Generator: xoshiro256** seeded through splitmix64 of the hashed coordinates.
 */
#ifndef SIMCLR_RNG_H
#define SIMCLR_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} Rng;

/* Stream tags: the first coordinate after the seed, so streams of different purposes never
 * collide. Add new tags at the end. */
enum {
    RNG_STREAM_INIT = 1,    /* parameter initialisation: (tensor index) */
    RNG_STREAM_SHUFFLE = 2, /* epoch permutation: (epoch) */
    RNG_STREAM_AUGMENT = 3, /* augmentation: (epoch, image index, view) */
    RNG_STREAM_BENCH = 4,   /* random benchmark inputs */
    RNG_STREAM_EVAL = 5,    /* train/validation splits, solver init in evaluation */
    RNG_STREAM_TEST = 6,    /* tests */
    RNG_STREAM_LABELS = 7,  /* labelled subsets of finetune: (class) */
};

Rng rng_derive(uint64_t seed, uint64_t a, uint64_t b, uint64_t c, uint64_t d);
uint64_t rng_u64(Rng *r);
uint32_t rng_u32(Rng *r);
/* Uniform float in [0, 1) with 24 random bits. */
float rng_uniform(Rng *r);
/* Uniform double in [0, 1) with 53 random bits. */
double rng_uniform_d(Rng *r);
/* Uniform in [lo, hi). */
float rng_range(Rng *r, float lo, float hi);
/* Integer uniform in [0, n), n >= 1, without modulo bias. */
uint64_t rng_below(Rng *r, uint64_t n);
/* Standard normal (Box-Muller, double precision). */
double rng_normal(Rng *r);
/* Fisher-Yates shuffle of perm[0..n) (fills it with 0..n-1 first when fill != 0). */
void rng_permutation(Rng *r, uint32_t *perm, uint32_t n, int fill);

#endif
