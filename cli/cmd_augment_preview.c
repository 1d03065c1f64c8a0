/* cmd_augment_preview.c - `simclr augment-preview`: a PNG grid of K images x (original + V
 * augmented views), the figure every SimCLR write-up shows, and optionally the views as a
 * uint8 .npy (K, V, S, S, 3). With --bench N it instead times N views through the loader
 * (bench/augment_bench.sh uses it). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "cli.h"
#include "dataset.h"
#include "loader.h"
#include "npy.h"
#include "preview.h"
#include "rng.h"

SIMCLR_COMMAND(cmd_augment_preview, "augment-preview", "draw a grid of augmented views (PNG, optional .npy)")

static int bench(Dataset *ds, const AugmentConfig *a, long long nviews, int threads, long long seed) {
    LoaderConfig lc;
    loader_config_default(&lc);
    size_t n = dataset_size(ds);
    lc.batch_size = n < 64 ? (int)n : 64;
    lc.seed = (uint64_t)seed;
    lc.threads = threads < 1 ? 0 : threads - 1; /* the consumer computes while it waits */
    Loader *L;
    if (loader_create(&L, ds, a, &lc)) sc_fatal("%s", sc_error());
    long per = (long)lc.batch_size * a->views;
    if (!loader_next(L, NULL)) sc_fatal("%s", sc_error()); /* warm-up: thread start, scratch */
    double t0 = sc_now();
    long long done = 0;
    while (done < nviews) {
        if (!loader_next(L, NULL)) sc_fatal("%s", sc_error());
        done += per;
    }
    double dt = sc_now() - t0;
    printf("views %lld seconds %.3f views_per_s %.1f compute_threads %d image_size %d blur_prob %g\n", done, dt,
           done / dt, threads < 1 ? 1 : threads, a->out_size, a->blur_prob);
    loader_free(L);
    return 0;
}

int cmd_augment_preview(int argc, char **argv) {
    DatasetConfig dc;
    AugmentConfig ac;
    LoaderConfig lc;
    dataset_config_default(&dc);
    augment_config_default(&ac);
    loader_config_default(&lc);
    int images = 8, size = 96;
    long long seed = 0, bench_views = 0;
    const char *output = NULL, *npy = NULL;
    Opt dopt[DATASET_OPTS_MAX], aopt[AUGMENT_OPTS_MAX], lopt[LOADER_OPTS_MAX];
    dataset_opts(dopt, &dc);
    augment_opts(aopt, &ac);
    loader_opts(lopt, &lc);
    Opt own[] = {
        {"images", OPT_INT, &images, "K: images (rows of the grid), the first K of the split", .min = 1, .max = 4096},
        {"image-size", OPT_INT, &size, "S: side of each view", .min = 8, .max = 1024},
        {"seed", OPT_INT64, &seed, "random seed (views use epoch 0 of this seed)"},
        {"output", OPT_STR, &output, "PNG grid to write (K rows x 1 + V columns)"},
        {"npy", OPT_STR, &npy, "also write the views as uint8 (K, V, S, S, 3)"},
        {"bench", OPT_INT64, &bench_views,
         "instead of drawing, time this many views through the loader with --loader-threads compute threads",
         .min = 0, .max = 1e12},
        {0}};
    Opt *tables[] = {dopt, aopt, lopt, own};
    const char *summary = "draw K images and V augmented views of each as a PNG grid";
    if (opts_parse("augment-preview", summary, argc, argv, tables, 4, NULL, NULL)) sc_fatal("%s", sc_error());
    ac.out_size = size;
    if (augment_config_finish(&ac)) sc_fatal("%s", sc_error());
    if (!bench_views && !output) sc_fatal("--output: expected a PNG path for the grid");
    Dataset *ds;
    if (dataset_open(&ds, &dc)) sc_fatal("%s", sc_error());
    fprintf(stderr, "augment-preview: %s\n", dataset_describe(ds));
    if (bench_views) {
        int rc = bench(ds, &ac, bench_views, lc.threads, seed);
        dataset_close(ds);
        return rc;
    }
    size_t n = dataset_size(ds);
    if ((size_t)images > n) {
        fprintf(stderr, "augment-preview: the split has %zu images; drawing %zu rows\n", n, n);
        images = (int)n;
    }
    int V = ac.views, S = size, gw, gh;
    ac.out_size = S;
    uint8_t *grid, *views = npy ? sc_alloc((size_t)images * V * S * S * 3) : NULL;
    if (preview_grid(ds, &ac, images, (uint64_t)seed, &grid, &gw, &gh, views)) sc_fatal("%s", sc_error());
    if (image_write_png(output, grid, gw, gh, 3)) sc_fatal("%s", sc_error());
    if (views) {
        int64_t shape[5] = {images, V, S, S, 3};
        if (npy_write(npy, NPY_U8, 5, shape, views)) sc_fatal("%s", sc_error());
    }
    fprintf(stderr, "augment-preview: wrote %s (%d x %d views of %dx%d)%s%s\n", output, images, V, S, S,
            npy ? " and " : "", npy ? npy : "");
    sc_free(grid), sc_free(views);
    dataset_close(ds);
    return 0;
}
