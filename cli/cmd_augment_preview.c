/* cmd_augment_preview.c - `simclr augment-preview`: a PNG grid of K images x (original + V
 * augmented views), the figure every SimCLR write-up shows, and optionally the views as a
 * uint8 .npy (K, V, S, S, 3). With --bench N it instead times N views through the loader
 * (bench/augment_bench.sh uses it). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "checkpoint.h"
#include "cli.h"
#include "dataset.h"
#include "loader.h"
#include "model.h"
#include "npy.h"
#include "preview.h"
#include "recipe.h"
#include "rng.h"
#include "run_defaults.h"
#include "safetensors.h"

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

/* The run's resolved configuration: RUN/config.json, or the "config" metadata of a checkpoint
 * file (RUN/last.safetensors, or RUN itself when it is a file). malloc'ed. */
static char *run_config(const char *run) {
    char *text = NULL;
    if (sc_is_dir(run)) {
        const char *cj = run_path(run, "config.json");
        if (sc_file_exists(cj)) {
            if (sc_read_file(cj, &text, NULL)) return NULL;
            return text;
        }
        run = run_path(run, "last.safetensors");
    }
    SafeTensors *st;
    if (safetensors_open(&st, run)) {
        sc_error_prefix("--from-run");
        return NULL;
    }
    const char *c = safetensors_meta(st, "config");
    text = c ? sc_strdup(c) : NULL;
    safetensors_close(st);
    if (!text) sc_error_set("--from-run %s: no saved configuration (not a pretrain run)", run);
    return text;
}

typedef struct {
    int *recipe, *size;
    const char *from_run;
    DatasetConfig *dc;
    char line[512];
} Resolve;

/* What pretrain would do: the run's configuration, or the image size from the data (square
 * images, when --image-size is not given) and then the recipe. Returns a line saying what was
 * applied. */
static const char *resolve(void *ctx, Opt **tables, int nt) {
    Resolve *r = ctx;
    if (r->from_run) {
        char *cfg = run_config(r->from_run);
        if (!cfg || opts_apply_json(tables, nt, cfg, 1, NULL)) {
            snprintf(r->line, sizeof r->line, "(--from-run %s could not be read: %s)", r->from_run, sc_error());
            free(cfg);
            return r->line;
        }
        free(cfg);
        snprintf(r->line, sizeof r->line, "values from the pretraining run %s (explicit options override)", r->from_run);
        return r->line;
    }
    char what[256];
    if (run_defaults(tables, nt, *r->recipe, r->size, r->dc, NULL, what, sizeof what)) return NULL;
    snprintf(r->line, sizeof r->line, "values as pretrain uses them: %s", what);
    return r->line;
}

int cmd_augment_preview(int argc, char **argv) {
    DatasetConfig dc;
    AugmentConfig ac;
    LoaderConfig lc;
    dataset_config_default(&dc);
    augment_config_default(&ac);
    loader_config_default(&lc);
    ModelConfig mc;
    model_config_default(&mc);
    int images = 8, recipe = RECIPE_STHALLES, sample = 0;
    int size = mc.image_size; /* pretrain's default */
    long long seed = 0, bench_views = 0;
    const char *output = NULL, *npy = NULL, *from_run = NULL;
    Opt dopt[DATASET_OPTS_MAX], aopt[AUGMENT_OPTS_MAX], lopt[LOADER_OPTS_MAX];
    dataset_opts(dopt, &dc);
    augment_opts(aopt, &ac);
    loader_opts(lopt, &lc);
    Opt own[] = {
        {"recipe", OPT_CHOICE, &recipe, "the pretraining recipe whose augmentation to show (as "
         "pretrain: explicit options override)", RECIPE_CHOICES},
        {"from-run", OPT_STR, &from_run, "show exactly the augmentation of this pretraining run "
         "(its folder or checkpoint): dataset, image size, views, seed and every augmentation "
         "option; explicit options override"},
        {"images", OPT_INT, &images, "K: images (rows of the grid)", .min = 1, .max = 4096},
        {"sample", OPT_CHOICE, &sample, "which images: first (the first K of the split) or random "
         "(the first K that epoch 0 of a pretraining run with this --seed visits)", "first|random"},
        {"image-size", OPT_INT, &size, "S: side of each view (default: as pretrain, the side of "
         "square images of the data, else 96)", .min = 8, .max = 4096},
        {"seed", OPT_INT64, &seed, "random seed (views are those of epoch 0 of a run with this seed)"},
        {"output", OPT_STR, &output, "PNG grid to write (K rows x 1 + V columns)", .output = 1},
        {"npy", OPT_STR, &npy, "also write the views as uint8 (K, V, S, S, 3)", .output = 1},
        {"bench", OPT_INT64, &bench_views,
         "instead of drawing, time this many views through the loader with --loader-threads compute threads",
         .min = 0, .max = 1e12},
        {0}};
    Opt *tables[] = {dopt, aopt, lopt, own};
    const int NT = 4;
    const char *summary = "draw K images and V augmented views of each as a PNG grid, with the "
                          "augmentation pretrain would use";
    Resolve res = {.recipe = &recipe, .size = &size, .dc = &dc};
    /* --help resolves the values first; from_run is known only after parsing */
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--from-run")) res.from_run = argv[i + 1];
    opts_on_help(resolve, &res);
    if (opts_parse("augment-preview", summary, argc, argv, tables, NT, NULL, NULL)) sc_fatal("%s", sc_error());
    res.from_run = from_run;
    if (from_run && opts_was_set(tables, NT, "recipe"))
        sc_fatal("--recipe and --from-run exclude each other (the run's configuration already holds its recipe)");
    if (from_run) {
        char *cfg = run_config(from_run);
        if (!cfg) sc_fatal("%s", sc_error());
        if (opts_apply_json(tables, NT, cfg, 1, NULL)) sc_fatal("--from-run %s: %s", from_run, sc_error());
        free(cfg);
    }
    if (!bench_views && !output) sc_fatal("--output: expected a PNG path for the grid");
    Dataset *ds;
    if (dataset_open(&ds, &dc)) sc_fatal("%s", sc_error());
    fprintf(stderr, "augment-preview: %s\n", dataset_describe(ds));
    if (!from_run && run_defaults(tables, NT, recipe, &size, &dc, ds, NULL, 0)) sc_fatal("%s", sc_error());
    dataset_warn_image_size(ds, size);
    ac.out_size = size;
    if (augment_config_finish(&ac)) sc_fatal("%s", sc_error());
    fprintf(stderr, "augment-preview: %s, %dx%d views: crop scale %g-%g, flip %g, jitter %g x "
            "strength %g, gray %g, blur %g\n", from_run ? "the run's augmentation" : "recipe",
            size, size, ac.crop_min_scale, ac.crop_max_scale, ac.flip_prob, ac.jitter_prob,
            ac.jitter_strength, ac.gray_prob, ac.blur_prob);
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
    /* the rows: the first K images, or the first K of epoch 0's permutation (as the loader) */
    uint32_t *rows = sc_alloc(sizeof(uint32_t) * n);
    if (sample) {
        Rng r = rng_derive((uint64_t)seed, RNG_STREAM_SHUFFLE, 0, 0, 0);
        rng_permutation(&r, rows, (uint32_t)n, 1);
    } else
        for (size_t i = 0; i < n; i++) rows[i] = (uint32_t)i;
    int V = ac.views, S = size, gw, gh;
    ac.out_size = S;
    uint8_t *grid, *views = npy ? sc_alloc((size_t)images * V * S * S * 3) : NULL;
    if (preview_grid(ds, &ac, images, rows, (uint64_t)seed, &grid, &gw, &gh, views)) sc_fatal("%s", sc_error());
    for (int i = 0; i < images; i++) {
        const char *file = dataset_file(ds, rows[i]);
        if (sample || file) fprintf(stderr, "row %d: image %u%s%s\n", i, rows[i], file ? " " : "", file ? file : "");
    }
    if (image_write_png(output, grid, gw, gh, 3)) sc_fatal("%s", sc_error());
    if (views) {
        int64_t shape[5] = {images, V, S, S, 3};
        if (npy_write(npy, NPY_U8, 5, shape, views)) sc_fatal("%s", sc_error());
    }
    fprintf(stderr, "augment-preview: wrote %s (%d x %d views of %dx%d)%s%s\n", output, images, V, S, S,
            npy ? " and " : "", npy ? npy : "");
    sc_free(grid), sc_free(views), sc_free(rows);
    dataset_close(ds);
    return 0;
}
