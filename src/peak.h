/* peak.h - this CPU's arithmetic peak, measured: fp32 FMA and bf16 dot-product throughput.
 *
 *     Peak p;
 *     peak_measure(&p, 2, 0.3);   // 2 threads, about 0.3 s per kind
 *     printf("%.0f GFLOP/s fp32, %.0f bf16\n", p.fp32_gflops, p.bf16_gflops);
 *
 * The kernels are short register-only loops of independent accumulators (no memory traffic):
 *   fp32: vfmadd231ps on 16 independent zmm accumulators (AVX-512; AVX2+FMA with ymm where the
 *         CPU has no AVX-512), 2 FLOP per lane;
 *   bf16: vdpbf16ps (AVX512-BF16) on 24 accumulators: each fp32 lane adds the products of two
 *         bf16 pairs, 4 FLOP per lane, 64 per instruction.
 * They are compiled with function-level target attributes, so the rest of the program builds
 * with any -march, and chosen at run time from cpuid (__builtin_cpu_supports, which also checks
 * that the OS saves the zmm state). Every thread runs the loop; the figure is the FLOPs of all
 * threads over the wall time, best of three tries (a shared machine only ever lowers it).
 * What it does not do: model memory bandwidth, frequency changes under load, or AMX.
 */
#ifndef SIMCLR_PEAK_H
#define SIMCLR_PEAK_H

typedef struct {
    int threads;
    int has_avx512, has_fma, has_bf16; /* what cpuid reports */
    double fp32_gflops;               /* FMA peak on `threads` threads */
    double bf16_gflops;               /* vdpbf16ps peak; 0 when the CPU lacks AVX512-BF16 */
    /* the same per CPU-second of the measuring threads (the peak of one core, robust on a shared
     * machine where the wall-time figures drop): the reference for CPU-time rates */
    double fp32_core_gflops, bf16_core_gflops;
} Peak;

/* cpuid: AVX512F + AVX512-BF16 available (and enabled by the OS). */
int peak_cpu_has_bf16(void);
/* Measures both kinds on `threads` OpenMP threads, about `seconds` each (>= 0.02). */
void peak_measure(Peak *p, int threads, double seconds);

#endif
