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
#include "common.h"
#include "model.h"
#include "rng.h"
#include "train.h"

/* CPU seconds of all threads of the process: a load-robust companion of the wall time on a
 * shared machine (work done, not time waited for a core). */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

SIMCLR_COMMAND(cmd_bench, "bench", "time full training steps (forward, NT-Xent, backward, Adam) on random inputs")

int cmd_bench(int argc, char **argv) {
    ModelConfig mc;
    model_config_default(&mc);
    int batch = 64, steps = 10, warmup = 2, threads = 2, precision = 0, views = 2, profile = 0;
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
        {"precision", OPT_CHOICE, &precision, "arithmetic (bf16 comes later)", .choices = "fp32"},
        {"seed", OPT_INT64, &seed, "seed of the init and the random inputs"},
        {"temperature", OPT_FLOAT, &tau, "NT-Xent temperature", .min = 1e-4, .max = 1e4},
        {"lr", OPT_FLOAT, &lr, "Adam learning rate", .min = 0, .max = 1e3},
        {"profile", OPT_FLAG, &profile, "print the time per phase (conv, batch norm, ...)"},
        {0}};
    Opt *tables[] = {mopts, common};
    if (opts_parse("bench", "time full training steps on random inputs", argc, argv, tables, 2,
                   NULL, NULL))
        sc_fatal("%s", sc_error());
    if (model_config_check(&mc)) sc_fatal("%s", sc_error());
    sc_set_threads(threads);
    int B = batch * views;
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
    Trainer *t;
    if (trainer_create(&t, &tc)) sc_fatal("%s", sc_error());
    Model *m = t->model;
    int dim = model_out_dim(m);

    size_t S = (size_t)mc.image_size, nx = (size_t)B * 3 * S * S;
    float *x = sc_alloc(nx * sizeof(float));
    Rng r = rng_derive((uint64_t)seed, RNG_STREAM_BENCH, 0, 0, 0);
    for (size_t i = 0; i < nx; i++) x[i] = rng_uniform(&r);

    const ResNetSpec *sp = model_spec(m);
    printf("simclr bench: %s, %s stem, width %g, %dx%d, batch %d (%d views), %d threads, fp32, "
           "conv %s\n", resnet_arch_names[mc.arch], resnet_stem_names[mc.stem], mc.width,
           mc.image_size, mc.image_size, batch, B, threads, model_conv_impl(m));
    printf("params %zu, features %d, projection %d, %.3f GFLOP per view per step\n",
           model_num_params(m), sp->feat_dim, dim, 3 * model_forward_flops(m, 1) / 1e9);
    TrainStats st = {0};
    double t0 = 0, tf = 0, tb = 0, c0 = 0;
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup) t0 = sc_now(), c0 = cpu_now(), tf = tb = 0, model_profile(profile);
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
    double dt = (sc_now() - t0) / steps, cpu = (cpu_now() - c0) / steps;
    if (profile) {
        double tot = 0;
        for (int k = 0; k < MODEL_PROF_N; k++) {
            double sec;
            const char *name = model_profile_get(k, &sec);
            tot += sec;
            printf("  %-24s %8.1f ms/step  %5.1f%%\n", name, sec / steps * 1e3, 100 * sec / steps / dt);
        }
        printf("  %-24s %8.1f ms/step  %5.1f%%\n", "other (loss, optimizer)", dt * 1e3 - tot / steps * 1e3,
               100 - 100 * tot / steps / dt);
        model_profile(0);
    }
    double vps = B / dt, gflops = 3 * model_forward_flops(m, B) / dt / 1e9;
    double rss = sc_peak_rss() / (1024.0 * 1024.0);
    printf("%.1f views/s, %.1f ms/step (forward %.1f, loss+backward+update %.1f), %.1f GFLOP/s, "
           "peak RSS %.0f MB, loss %.4f, CPU %.1f ms/step (%.2f cores busy)\n", vps, dt * 1e3,
           tf / steps * 1e3, tb / steps * 1e3, gflops, rss, st.loss, cpu * 1e3, cpu / dt);
    printf("{\"impl\": \"simclr\", \"arch\": \"%s\", \"stem\": \"%s\", \"width\": %g, "
           "\"image_size\": %d, \"batch_size\": %d, \"views\": %d, \"threads\": %d, "
           "\"precision\": \"fp32\", \"views_per_s\": %.2f, \"ms_per_step\": %.2f, "
           "\"gflops\": %.1f, \"peak_rss_mb\": %.1f, \"loss\": %.6f, \"cpu_ms_per_step\": %.2f}\n",
           resnet_arch_names[mc.arch], resnet_stem_names[mc.stem], mc.width, mc.image_size, batch,
           views, threads, vps, dt * 1e3, gflops, rss, st.loss, cpu * 1e3);
    trainer_free(t);
    sc_free(x);
    return 0;
}
