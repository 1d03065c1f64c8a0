/* peak.c - measured fp32 FMA and bf16 dot-product peaks (see peak.h). */
#include "peak.h"

#include <time.h>

#include <immintrin.h>
#include <omp.h>

#include "common.h"

int peak_cpu_has_bf16(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
}

/* Each kernel runs `iters` rounds of NACC independent multiply-adds and returns a value that
 * depends on every accumulator, so the compiler cannot drop any of them. acc = acc * x + y with
 * x just below 1 converges to y / (1 - x) and never reaches a denormal. */

#define NACC_F32 16
__attribute__((target("avx512f"), noinline)) static float fma_avx512(long iters) {
    __m512 acc[NACC_F32];
    __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(1e-3f);
#pragma GCC unroll 16
    for (int i = 0; i < NACC_F32; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 16
        for (int i = 0; i < NACC_F32; i++) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
        __asm__ volatile("" : "+v"(x)); /* keeps the loop a loop */
    }
    __m512 s = acc[0];
#pragma GCC unroll 16
    for (int i = 1; i < NACC_F32; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"), noinline)) static float fma_avx2(long iters) {
    __m256 acc[NACC_F32];
    __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(1e-3f);
#pragma GCC unroll 16
    for (int i = 0; i < NACC_F32; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 16
        for (int i = 0; i < NACC_F32; i++) acc[i] = _mm256_fmadd_ps(acc[i], x, y);
        __asm__ volatile("" : "+x"(x));
    }
    __m256 s = acc[0];
#pragma GCC unroll 16
    for (int i = 1; i < NACC_F32; i++) s = _mm256_add_ps(s, acc[i]);
    float v[8];
    _mm256_storeu_ps(v, s);
    return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}

#define NACC_BF16 24
__attribute__((target("avx512f,avx512bf16"), noinline)) static float dpbf16(long iters) {
    __m512 acc[NACC_BF16];
    /* a, b: 32 bf16 values each; 1 * (-1e-3) keeps the sums bounded */
    __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1.0f), _mm512_set1_ps(1.0f));
    __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(-1e-3f), _mm512_set1_ps(1e-3f));
#pragma GCC unroll 24
    for (int i = 0; i < NACC_BF16; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 24
        for (int i = 0; i < NACC_BF16; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
        __asm__ volatile("" : "+v"(a));
    }
    __m512 s = acc[0];
#pragma GCC unroll 24
    for (int i = 1; i < NACC_BF16; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

enum { K_AVX512, K_AVX2, K_BF16 };

static double flops_per_iter(int kind) {
    return kind == K_AVX512 ? NACC_F32 * 16 * 2.0 : kind == K_AVX2 ? NACC_F32 * 8 * 2.0 : NACC_BF16 * 16 * 4.0;
}

static volatile float g_sink;

/* FLOP/s of `threads` threads, each running chunks of `iters` rounds until `seconds` have passed
 * (timed per thread, so a thread that waits for a core on a busy machine does less work, not
 * a fixed amount late); all FLOPs over the wall time of the parallel region. */
static double thread_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static double run(int kind, long iters, int threads, double seconds, double *per_cpu) {
    double t0 = 0, t1 = 0, flops = 0, cpu = 0;
#pragma omp parallel num_threads(threads) reduction(+ : flops, cpu)
    {
        double c0 = thread_cpu();
#pragma omp barrier
#pragma omp master
        t0 = sc_now();
#pragma omp barrier
        double start = sc_now();
        float v = 0;
        do {
            v += kind == K_AVX512 ? fma_avx512(iters) : kind == K_AVX2 ? fma_avx2(iters) : dpbf16(iters);
            flops += flops_per_iter(kind) * iters;
        } while (sc_now() - start < seconds);
        cpu += thread_cpu() - c0;
#pragma omp atomic
        g_sink += v;
#pragma omp barrier
#pragma omp master
        t1 = sc_now();
    }
    *per_cpu = cpu > 0 ? flops / cpu : 0;
    return flops / (t1 - t0);
}

static double measure(int kind, int threads, double seconds, double *core) {
    /* chunks of ~1 MFLOP... 100 MFLOP: short against the budget, long against sc_now() */
    long iters = (long)(2e7 / flops_per_iter(kind));
    double best = 0, best_cpu = 0;
    for (int k = 0; k < 3; k++) {
        double pc, f = run(kind, iters, threads, seconds / 3, &pc);
        if (f > best) best = f;
        if (pc > best_cpu) best_cpu = pc;
    }
    *core = best_cpu / 1e9;
    return best / 1e9;
}

void peak_measure(Peak *p, int threads, double seconds) {
    __builtin_cpu_init();
    if (threads < 1) threads = 1;
    if (seconds < 0.02) seconds = 0.02;
    p->threads = threads;
    p->has_avx512 = __builtin_cpu_supports("avx512f");
    p->has_fma = __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx2");
    p->has_bf16 = peak_cpu_has_bf16();
    p->fp32_core_gflops = p->bf16_core_gflops = 0;
    p->fp32_gflops = p->has_avx512 ? measure(K_AVX512, threads, seconds, &p->fp32_core_gflops)
                     : p->has_fma  ? measure(K_AVX2, threads, seconds, &p->fp32_core_gflops)
                                   : 0;
    p->bf16_gflops = p->has_bf16 ? measure(K_BF16, threads, seconds, &p->bf16_core_gflops) : 0;
}
