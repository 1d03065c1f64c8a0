/* cmd_bench.c - `simclr bench`: times full SimCLR training steps on random inputs.
 *
 * One step = forward of 2N views through encoder + head, NT-Xent, backward, Adam update: the
 * Trainer's phases (src/train.h), exactly what `simclr pretrain` does per batch minus the data
 * loader (timed separately: forward, then loss + backward + update). Prints views/s, ms/step, achieved
 * GFLOP/s (FLOPs counted analytically from the layer shapes: forward 2 x MACs of convs and
 * linears, a training step 3 x forward) and the peak RSS; the LAST line is one JSON object.
 * The PyTorch twin is bench/pytorch_train_bench.py; bench/bench_train.sh runs both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "comm.h"
#include "common.h"
#include "model.h"
#include "peak.h"
#include "rng.h"
#include "train.h"

/* CPU seconds of all threads of the process: a load-robust companion of the wall time on a
 * shared machine (work done, not time waited for a core). */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* --network: ping-pong latency and bandwidth between processes 0 and 1, then the all-reduce of
 * a gradient buffer of the model's size (the dominant transfer of a step). */
static int bench_network(Comm *comm, const ModelConfig *mc, int reps) {
    if (comm_size(comm) < 2) {
        fprintf(stderr, "simclr: error: --network: run under mpirun with at least 2 processes\n");
        return 1;
    }
    double lat, bw_t;
    size_t big = 16u << 20;
    if (comm_pingpong(comm, 8, 200 * reps, &lat) || comm_pingpong(comm, big, reps, &bw_t)) {
        fprintf(stderr, "simclr: error: %s\n", sc_error());
        return 1;
    }
    printf("link 0-1: latency %.1f us (8-byte one-way), bandwidth %.2f GB/s (16 MiB messages)\n",
           lat * 1e6, big / bw_t / 1e9);
    Model *m;
    if (model_create(&m, mc, 1, 0)) sc_fatal("%s", sc_error());
    size_t n = model_num_params(m);
    model_free(m);
    float *g = sc_alloc(n * sizeof(float));
    /* each path timed rep by rep, the paths alternating: the minimum is what an idle machine
     * gives (on a shared one most reps wait for a core), the median what this one gave */
    int shm0 = comm_set_shm(comm, 1), paths = comm_set_shm(comm, shm0) ? 2 : 1;
    double *tm = sc_alloc(sizeof(double) * 2 * (size_t)reps), res[2][2] = {{0}};
    for (int p = 0; p < paths; p++) { /* warm-up: the shared window, first touches */
        comm_set_shm(comm, p == 0 && paths == 2);
        if (comm_allreduce_f32(comm, g, n)) sc_fatal("%s", sc_error());
    }
    comm_stats_reset(comm);
    for (int r = 0; r < reps; r++)
        for (int p = 0; p < paths; p++) {
            comm_set_shm(comm, p == 0 && paths == 2);
            if (comm_barrier(comm)) sc_fatal("%s", sc_error());
            double t0 = sc_now();
            if (comm_allreduce_f32(comm, g, n)) sc_fatal("%s", sc_error());
            tm[p * reps + r] = sc_now() - t0;
        }
    comm_set_shm(comm, shm0);
    CommStats cs;
    comm_stats(comm, &cs);
    double sent = cs.bytes / reps / paths;
    for (int p = 0; p < paths; p++) {
        qsort(tm + p * reps, reps, sizeof(double), cmp_double);
        res[p][0] = tm[p * reps], res[p][1] = tm[p * reps + reps / 2];
        printf("gradient all-reduce of %zu floats (%.1f MB) over %d processes, %s: %.1f ms "
               "(minimum of %d; median %.1f ms), %.2f MB sent per process (%.2f GB/s)\n", n,
               n * 4 / 1e6, comm_size(comm), paths == 2 && p == 0 ? "shared memory" : "messages",
               res[p][0] * 1e3, reps, res[p][1] * 1e3, sent / 1e6, sent / res[p][0] / 1e9);
    }
    int mp = paths - 1; /* the messages path */
    printf("{\"latency_us\": %.2f, \"bandwidth_gbs\": %.3f, \"allreduce_ms\": %.2f, "
           "\"allreduce_median_ms\": %.2f, \"allreduce_shm_ms\": %.2f, "
           "\"allreduce_shm_median_ms\": %.2f, \"allreduce_floats\": %zu, \"processes\": %d}\n",
           lat * 1e6, big / bw_t / 1e9, res[mp][0] * 1e3, res[mp][1] * 1e3,
           paths == 2 ? res[0][0] * 1e3 : -1.0, paths == 2 ? res[0][1] * 1e3 : -1.0, n,
           comm_size(comm));
    sc_free(tm);
    sc_free(g);
    return 0;
}

SIMCLR_COMMAND(cmd_bench, "bench", "time full training steps (forward, NT-Xent, backward, Adam) on random inputs")

int cmd_bench(int argc, char **argv) {
    ModelConfig mc;
    model_config_default(&mc);
    int batch = 64, steps = 10, warmup = 2, threads = 2, views = 2, profile = 0, peak_only = 0;
    int network = 0;
    long long seed = 0;
    float tau = 0.5f, lr = 3e-4f;
    Opt mopts[MODEL_OPTS_MAX];
    model_opts(mopts, &mc);
    Opt common[] = {
        {"batch-size", OPT_INT, &batch, "images per step (each gives --views views)", .min = 1, .max = 1 << 16},
        {"views", OPT_INT, &views, "views per image", .min = 2, .max = 16},
        {"steps", OPT_INT, &steps, "timed training steps", .min = 1, .max = 1000000},
        {"warmup", OPT_INT, &warmup, "untimed steps first", .min = 0, .max = 1000000},
        {"threads", OPT_INT, &threads, "compute threads", .min = 1, .max = 1024},
        {"precision", OPT_CHOICE, &mc.precision,
         "convolution arithmetic: fp32, or bf16 with fp32 accumulation (needs AVX512-BF16)",
         .choices = PRECISION_CHOICES},
        {"seed", OPT_INT64, &seed, "seed of the init and the random inputs"},
        {"temperature", OPT_FLOAT, &tau, "NT-Xent temperature", .min = 1e-4, .max = 1e4},
        {"lr", OPT_FLOAT, &lr, "Adam learning rate", .min = 0, .max = 1e3},
        {"profile", OPT_FLAG, &profile, "print the time per phase (conv, batch norm, ...)"},
        {"peak", OPT_FLAG, &peak_only, "only measure this CPU's fp32 FMA and bf16 dot-product peak on --threads"},
        {"network", OPT_FLAG, &network, "under mpirun: measure the link between processes 0 and 1 "
         "(latency, bandwidth) and the gradient all-reduce of the model instead of training"},
        {0}};
    Opt *tables[] = {mopts, common};
    if (opts_parse("bench", "time full training steps on random inputs", argc, argv, tables, 2,
                   NULL, NULL))
        sc_fatal("%s", sc_error());
    if (model_config_check(&mc)) sc_fatal("%s", sc_error());
    /* under mpirun: --batch-size is the global batch, each process runs its share */
    Comm *comm;
    if (comm_init(&comm)) sc_fatal("%s", sc_error());
    int P = comm_size(comm), rank = comm_rank(comm);
    if (rank > 0 && !freopen("/dev/null", "w", stdout)) sc_fatal("cannot silence process %d", rank);
    if (batch % P) {
        if (rank == 0)
            fprintf(stderr, "simclr: error: --batch-size %d: not divisible by the %d processes of "
                    "this run: give a multiple of %d\n", batch, P, P);
        comm_free(comm);
        return 1;
    }
    sc_set_threads(threads);
    if (network) {
        int rc = bench_network(comm, &mc, steps);
        comm_free(comm);
        return rc;
    }
    /* the peak first, on the same threads: every result is also a percentage of it */
    Peak pk;
    peak_measure(&pk, threads, peak_only ? 1.5 : 0.6);
    printf("peak, %d threads: fp32 FMA %.1f GFLOP/s (%s), bf16 dot product %.1f GFLOP/s (%s); "
           "per CPU-second (one core): fp32 %.1f, bf16 %.1f\n",
           threads, pk.fp32_gflops, pk.has_avx512 ? "avx512" : pk.has_fma ? "avx2" : "none",
           pk.bf16_gflops, pk.has_bf16 ? "avx512_bf16" : "not supported by this CPU",
           pk.fp32_core_gflops, pk.bf16_core_gflops);
    if (peak_only) {
        printf("{\"impl\": \"peak\", \"threads\": %d, \"fp32_gflops\": %.1f, \"bf16_gflops\": %.1f, "
               "\"avx512\": %s, \"avx512_bf16\": %s}\n", threads, pk.fp32_gflops, pk.bf16_gflops,
               pk.has_avx512 ? "true" : "false", pk.has_bf16 ? "true" : "false");
        comm_free(comm);
        return 0;
    }
    double peak_gflops = mc.precision == PRECISION_BF16 ? pk.bf16_gflops : pk.fp32_gflops;
    double core_peak = mc.precision == PRECISION_BF16 ? pk.bf16_core_gflops : pk.fp32_core_gflops;
    int B = batch / P * views; /* this process's rows */
    TrainerConfig tc;
    trainer_config_default(&tc);
    tc.model = mc;
    optim_config_default(&tc.optim, OPTIM_ADAM);
    tc.schedule = (LrSchedule){.base_lr = lr, .warmup_steps = 0, .total_steps = warmup + steps,
                               .schedule = LR_CONSTANT};
    tc.batch = batch;
    tc.views = views;
    tc.temperature = tau;
    tc.seed = (uint64_t)seed;
    tc.comm = comm;
    Trainer *t;
    if (trainer_create(&t, &tc)) sc_fatal("%s", sc_error());
    Model *m = t->model;
    int dim = model_out_dim(m);

    size_t S = (size_t)mc.image_size, nx = (size_t)B * 3 * S * S;
    float *x = sc_alloc(nx * sizeof(float));
    Rng r = rng_derive((uint64_t)seed, RNG_STREAM_BENCH, (uint64_t)rank, 0, 0);
    for (size_t i = 0; i < nx; i++) x[i] = rng_uniform(&r);

    const ResNetSpec *sp = model_spec(m);
    const char *prec = mc.precision == PRECISION_BF16 ? "bf16" : "fp32";
    double bpv = (double)model_activation_bytes(m) / B;
    printf("simclr bench: %s, %s stem, width %g, %dx%d, batch %d (%d views), %d threads, %s, "
           "conv %s\n", resnet_arch_names[mc.arch], resnet_stem_names[mc.stem], mc.width,
           mc.image_size, mc.image_size, batch, batch * views, threads, prec, model_conv_impl(m));
    printf("activation and gradient memory: %.2f MB per view (%.0f MB for %d views)\n", bpv / 1e6,
           bpv * B / 1e6, B);
    if (P > 1)
        printf("processes: %d (%s), %d images x %d views each, %d threads each\n", P,
               comm_backend(comm), batch / P, views, threads);
    printf("params %zu, features %d, projection %d, %.3f GFLOP per view per step\n",
           model_num_params(m), sp->feat_dim, dim, 3 * model_forward_flops(m, 1) / 1e9);
    TrainStats st = {0};
    double t0 = 0, tf = 0, tb = 0, c0 = 0;
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup) {
            if (comm_barrier(comm)) sc_fatal("%s", sc_error());
            t0 = sc_now(), c0 = cpu_now(), tf = tb = 0, model_profile(profile);
            comm_stats_reset(comm);
        }
        double a = sc_now();
        trainer_zero_grad(t);
        if (trainer_forward(t, x)) sc_fatal("%s", sc_error());
        double b = sc_now();
        int rc = trainer_loss(t, NULL, &st);
        if (rc < 0) sc_fatal("%s", sc_error());
        if (rc == TRAIN_NONFINITE) sc_fatal("the loss is not finite at step %d", s + 1);
        trainer_backward(t);
        if (trainer_allreduce(t)) sc_fatal("%s", sc_error());
        trainer_update(t, st.lr);
        double c = sc_now();
        tf += b - a, tb += c - b;
    }
    if (comm_barrier(comm)) sc_fatal("%s", sc_error());
    double dt = (sc_now() - t0) / steps, cpu = (cpu_now() - c0) / steps;
    if (P > 1 && comm_allreduce_f64(comm, &cpu, 1)) sc_fatal("%s", sc_error()); /* all processes */
    CommStats cs;
    comm_stats(comm, &cs);
    if (P > 1)
        printf("communication per step and process: %.3f MB sent in %.0f collectives, %.1f ms "
               "inside them (%.1f%% of the step; includes waiting for the slowest process)\n",
               cs.bytes / steps / 1e6, (double)cs.calls / steps, cs.seconds / steps * 1e3,
               100 * cs.seconds / steps / dt);
    if (profile) {
        /* SIMCLR_PROFILE_CPU=1: the phases are CPU times (see model.h), shares of the CPU time */
        const char *pc = getenv("SIMCLR_PROFILE_CPU");
        double ref = pc && !strcmp(pc, "1") ? cpu : dt;
        double tot = 0;
        for (int k = 0; k < MODEL_PROF_N; k++) {
            double sec;
            const char *name = model_profile_get(k, &sec);
            tot += sec;
            printf("  %-24s %8.1f ms/step  %5.1f%%\n", name, sec / steps * 1e3, 100 * sec / steps / ref);
        }
        printf("  %-24s %8.1f ms/step  %5.1f%%\n", "other (loss, optimizer)", ref * 1e3 - tot / steps * 1e3,
               100 - 100 * tot / steps / ref);
        if (pc && !strcmp(pc, "2")) {
            /* critical paths: each phase's largest per-thread CPU time, and the cores it keeps
             * busy (CPU time of all threads / critical path) */
            double busy_all, crit = model_profile_critical(&busy_all), btot = 0;
            printf("  critical path (largest per-thread CPU time) | all threads | cores busy:\n");
            for (int k = 0; k < MODEL_PROF_N; k++) {
                double sec, b = model_profile_busy(k);
                const char *name = model_profile_get(k, &sec);
                btot += b;
                printf("  %-24s %8.1f ms | %8.1f ms | %.2f\n", name, sec / steps * 1e3,
                       b / steps * 1e3, sec > 0 ? b / sec : 0);
            }
            printf("  %-24s %8.1f ms | %8.1f ms | %.2f\n", "outside the phases",
                   (crit - tot) / steps * 1e3, (busy_all - btot) / steps * 1e3,
                   crit > tot ? (busy_all - btot) / (crit - tot) : 0);
            printf("  %-24s %8.1f ms | %8.1f ms | %.2f\n", "whole step", crit / steps * 1e3,
                   busy_all / steps * 1e3, crit > 0 ? busy_all / crit : 0);
        }
        /* per conv: ms per step and the rate against the peak (per core when the timers are CPU
         * time: one CPU-second can at most reach peak / threads) */
        int cpu_t = pc && !strcmp(pc, "1");
        double unit_peak = cpu_t ? core_peak : peak_gflops;
        printf("  per conv (%s; GFLOP/s and %% of the %s peak %.0f), forward | backward data | "
               "backward weights:\n", cpu_t ? "CPU time" : "wall time", cpu_t ? "per-core" : "measured",
               unit_peak);
        const ResNetSpec *ps = model_spec(m);
        for (int i = 0; i < ps->nunits; i++) {
            const ResUnit *u = &ps->units[i];
            double gf = 2.0 * B * u->OH * u->OW * u->K * u->C * u->R * u->R / 1e9;
            printf("  %-22s %3dx%-3d %4d->%-4d %dx%d/%d", u->conv, u->OH, u->OW, u->C, u->K, u->R,
                   u->R, u->stride);
            for (int k = 0; k < 3; k++) {
                double sec = model_profile_unit(i, k) / steps;
                if (sec > 0)
                    printf(" | %6.1f ms %5.0f %3.0f%%", sec * 1e3, gf / sec, 100 * gf / sec / unit_peak);
                else
                    printf(" | %18s", "-");
            }
            printf("\n");
        }
        model_profile(0);
    }
    double vps = (double)batch * views / dt, gflops = 3 * model_forward_flops(m, B) * P / dt / 1e9;
    double rss = sc_peak_rss() / (1024.0 * 1024.0);
    double pct = peak_gflops > 0 ? 100 * gflops / peak_gflops : 0;
    printf("%.1f views/s, %.1f ms/step (forward %.1f, loss+backward+update %.1f), %.1f GFLOP/s "
           "= %.1f%% of the measured peak, peak RSS %.0f MB, loss %.4f, CPU %.1f ms/step (%.2f cores "
           "busy%s)\n", vps, dt * 1e3, tf / steps * 1e3, tb / steps * 1e3, gflops, pct, rss, st.loss,
           cpu * 1e3, cpu / dt, P > 1 ? ", all processes" : "");
    /* per CPU-second against one core's peak: the figure a shared machine does not distort */
    double gf_cpu = 3 * model_forward_flops(m, B) * P / cpu / 1e9; /* cpu: all processes */
    double pct_cpu = core_peak > 0 ? 100 * gf_cpu / core_peak : 0;
    printf("%.1f GFLOP per CPU-second = %.1f%% of one core's peak (%.1f)\n", gf_cpu, pct_cpu, core_peak);
    {
        /* what grows with the batch: activations, scratch, the images; the rest of the peak RSS
         * (parameters, gradients, optimizer state, code) is fixed */
        double per_view = (bpv * B + model_scratch_bytes(m) + nx * sizeof(float)) / B;
        double fixed = rss * 1024 * 1024 - per_view * B, gib24 = 24.0 * 1024 * 1024 * 1024;
        long fit = fixed < gib24 ? (long)((gib24 - fixed) / per_view) / views : 0;
        printf("largest batch in 24 GiB (estimated from this run: %.0f MB fixed + %.2f MB per "
               "view): about %ld images (%ld views)\n", fixed / 1048576, per_view / 1048576, fit,
               fit * views);
    }
    printf("{\"impl\": \"simclr\", \"arch\": \"%s\", \"stem\": \"%s\", \"width\": %g, "
           "\"image_size\": %d, \"batch_size\": %d, \"views\": %d, \"threads\": %d, "
           "\"precision\": \"%s\", \"views_per_s\": %.2f, \"ms_per_step\": %.2f, "
           "\"gflops\": %.1f, \"peak_gflops\": %.1f, \"pct_of_peak\": %.1f, \"peak_rss_mb\": %.1f, "
           "\"bytes_per_view\": %.0f, \"loss\": %.6f, \"cpu_ms_per_step\": %.2f, "
           "\"core_peak_gflops\": %.1f, \"pct_of_core_peak_cpu\": %.1f, \"processes\": %d, \"comm_mb_per_step\": %.4f, \"comm_ms_per_step\": %.2f}\n",
           resnet_arch_names[mc.arch], resnet_stem_names[mc.stem], mc.width, mc.image_size, batch,
           views, threads, prec, vps, dt * 1e3, gflops, peak_gflops, pct, rss, bpv, st.loss, cpu * 1e3,
           core_peak, pct_cpu, P, cs.bytes / steps / 1e6, cs.seconds / steps * 1e3);
    trainer_free(t);
    sc_free(x);
    comm_free(comm);
    return 0;
}
