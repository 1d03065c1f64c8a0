/* cmd_pretrain.c - `simclr pretrain`: the SimCLR training loop with checkpoints, resume, logs,
 * periodic kNN evaluation and a curves plot.
 *
 * The loop, top to bottom:
 *   options -> (resume: saved config | new run: recipe) -> dataset, model, optimizer, loader
 *   -> (resume: load last.safetensors, seek the loader | --init: load weights)
 *   -> for each step: batch of V*N views -> forward -> NT-Xent -> backward -> optimizer step
 *      -> metrics line; at each epoch end: kNN eval (--eval-every), checkpoint, plot.
 * The run is reproducible: every random draw is derived from (seed, coordinates), the loader's
 * position and the optimizer's moments and step count are in the checkpoint, so a resumed run
 * writes the same metrics lines as an uninterrupted one.
 */
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "contrast.h"
#include "cli.h"
#include "comm.h"
#include "dataset.h"
#include "eval_features.h"
#include "image.h"
#include "knn.h"
#include "preview.h"
#include "probe.h"
#include "loader.h"
#include "model.h"
#include "npy.h"
#include "optim.h"
#include "plot.h"
#include "recipe.h"
#include "run_cli.h"
#include "run_defaults.h"
#include "runlog.h"
#include "safetensors.h"
#include "train.h"

SIMCLR_COMMAND(cmd_pretrain, "pretrain", "pretrain an encoder with SimCLR (NT-Xent), with checkpoints and resume")

static volatile sig_atomic_t stop_signal;
static void on_signal(int sig) {
    stop_signal = sig;
    signal(sig, SIG_DFL); /* a second Ctrl-C kills at once */
}

typedef struct {
    int recipe, epochs, batch, threads, checkpoint_every, eval_every, eval_k, shuffle, force;
    int log_every, eval_dataset, eval_norm, save_init, test_on_train, force_override, tensorboard, online_probe;
    float probe_lr;
    long long max_steps, stop_after, limit, eval_limit, nan_step;
    int seed;
    float eval_t;
    const char *out, *resume, *init, *eval_data, *eval_split, *eval_train_split;
} PretrainOptions;

/* ---- --limit: the first N images as an in-memory .npy dataset ---------------------------- */

/* Writes the first n images (and labels) of ds into dir/images.npy, dir/labels.npy and opens
 * them as a DATASET_NPY. Needs images of one size. */
static int open_subset(Dataset **out, Dataset *ds, size_t n, const char *dir) {
    int h, w;
    dataset_image_size(ds, &h, &w);
    if (h <= 0) return sc_error_set("--limit: needs a dataset whose images share one size");
    ImageU8 im = {0};
    if (dataset_image(ds, 0, &im)) return -1;
    int c = im.c;
    size_t per = (size_t)h * w * c;
    uint8_t *px = sc_alloc(n * per);
    int64_t *lab = sc_alloc(n * sizeof *lab);
    int labeled = dataset_num_classes(ds) > 0;
    for (size_t i = 0; i < n; i++) {
        if (dataset_image(ds, i, &im)) {
            image_free(&im);
            sc_free(px);
            sc_free(lab);
            return -1;
        }
        if (im.h != h || im.w != w || im.c != c) {
            image_free(&im);
            sc_free(px);
            sc_free(lab);
            return sc_error_set("--limit: image %zu has another size or channel count", i);
        }
        memcpy(px + i * per, im.px, per);
        lab[i] = dataset_label(ds, i);
    }
    image_free(&im);
    int64_t shape[4] = {(int64_t)n, h, w, c};
    char ipath[4096], lpath[4096];
    snprintf(ipath, sizeof ipath, "%s/images.npy", dir);
    snprintf(lpath, sizeof lpath, "%s/labels.npy", dir);
    int rc = npy_write(ipath, NPY_U8, c == 1 ? 3 : 4, shape, px);
    if (!rc && labeled) rc = npy_write(lpath, NPY_I64, 1, shape, lab);
    sc_free(px);
    sc_free(lab);
    if (rc) return -1;
    DatasetConfig dc;
    dataset_config_default(&dc);
    dc.kind = DATASET_NPY;
    dc.path = ipath;
    dc.labels = labeled ? lpath : NULL;
    rc = dataset_open(out, &dc);
    unlink(ipath); /* the dataset keeps its memory map */
    if (labeled) unlink(lpath);
    return rc;
}

/* ---- kNN evaluation ------------------------------------------------------------------------ */

typedef struct {
    Dataset *bank, *query;
    size_t nb, nq;       /* images used (evenly spaced when limited) */
    size_t *ib, *iq;     /* their indices */
    float *fb, *fq;      /* features (nb, D), (nq, D) */
    int *yb, *yq;
    int chunk, classes, k, norm;
    float t;
    AugmentConfig aug;   /* resize only, the training normalisation */
} KnnEval;

/* n evenly spaced indices of 0..total-1 */
static size_t *spaced(size_t n, size_t total) {
    size_t *idx = sc_alloc((n ? n : 1) * sizeof *idx);
    for (size_t i = 0; i < n; i++) idx[i] = n == total ? i : i * total / n;
    return idx;
}

/* --tensorboard in a new run: the augmentation preview of the first 8 images (the loader's
 * epoch-0 views) at step 0. */
static int tensorboard_preview(RunLog *log, const Dataset *ds, const AugmentConfig *aug,
                               uint64_t seed) {
    TbWriter *tb = runlog_tensorboard(log);
    uint8_t *grid, *png;
    int gw, gh;
    size_t n;
    if (preview_grid(ds, aug, 8, NULL, seed, &grid, &gw, &gh, NULL)) return -1;
    int rc = image_encode_png(grid, gw, gh, 3, &png, &n);
    sc_free(grid);
    if (rc) return -1;
    rc = tb_image_png(tb, "augmentations", 0, png, n, gh, gw, 3);
    free(png);
    return rc ? sc_error_prefix("--tensorboard") : runlog_flush(log);
}

static int knn_run(Model *m, KnnEval *e, double *top1, double *top5) {
    if (features_extract(m, e->bank, &e->aug, FEATURES_H, e->chunk, e->ib, e->nb, e->fb, e->yb, 0) ||
        features_extract(m, e->query, &e->aug, FEATURES_H, e->chunk, e->iq, e->nq, e->fq, e->yq, 0))
        return sc_error_prefix("kNN evaluation");
    return knn_eval(e->fb, e->yb, e->nb, e->fq, e->yq, e->nq, model_feature_dim(m), e->classes,
                    e->k, e->t, e->norm, top1, top5, NULL);
}

static int open_labeled(Dataset **ds, const DatasetConfig *base, int kind, const char *data,
                        const char *split, int test, const char *what) {
    DatasetConfig dc = *base;
    dc.kind = kind;
    dc.path = data;
    dc.split = split ? split : dataset_default_split(&dc, test);
    dc.fold = -1;
    if (kind != base->kind || data != base->path) dc.labels = NULL;
    if (dataset_open(ds, &dc)) return sc_error_prefix("%s", what);
    if (dataset_num_classes(*ds) <= 0) {
        dataset_close(*ds);
        return sc_error_set("%s: %s has no labels (the kNN monitor needs labeled images: --eval-data "
                            "a labeled dataset, e.g. a folder with train/ and test/ subfolders of "
                            "class folders)", what, dc.path ? dc.path : dataset_default_split(&dc, test));
    }
    return 0;
}

static int knn_setup(KnnEval *e, const PretrainOptions *po, const DatasetConfig *dc,
                     const AugmentConfig *train_aug, int chunk, int D) {
    memset(e, 0, sizeof *e);
    int kind = po->eval_dataset > 0 ? po->eval_dataset - 1 : dc->kind;
    const char *data = po->eval_data ? po->eval_data : (po->eval_dataset > 0 ? NULL : dc->path);
    if (open_labeled(&e->bank, dc, kind, data, po->eval_train_split, 0, "--eval-train-split") ||
        open_labeled(&e->query, dc, kind, data, po->eval_split, 1, "--eval-split"))
        return -1;
    if (dataset_same_images(e->bank, e->query) && !po->test_on_train)
        return sc_error_set("--eval-data: the kNN monitor would score images against themselves (%s); "
                            "give --eval-data a labeled dataset with train and test splits (a folder "
                            "with train/ and test/ subfolders), other --eval-split/--eval-train-split, "
                            "or --test-on-train", dataset_describe(e->bank));
    if (dataset_align_classes(e->query, e->bank, "--eval-split")) return -1;
    e->classes = dataset_num_classes(e->bank);
    if (dataset_num_classes(e->query) > e->classes) e->classes = dataset_num_classes(e->query);
    size_t lim = po->eval_limit > 0 ? (size_t)po->eval_limit : (size_t)-1;
    e->nb = dataset_size(e->bank) < lim ? dataset_size(e->bank) : lim;
    e->nq = dataset_size(e->query) < lim ? dataset_size(e->query) : lim;
    e->fb = sc_alloc(e->nb * D * sizeof(float));
    e->fq = sc_alloc(e->nq * D * sizeof(float));
    e->yb = sc_alloc(e->nb * sizeof(int));
    e->yq = sc_alloc(e->nq * sizeof(int));
    e->ib = spaced(e->nb, dataset_size(e->bank));
    e->iq = spaced(e->nq, dataset_size(e->query));
    e->chunk = chunk;
    e->aug = *train_aug;
    e->aug.mode = AUGMENT_NONE;
    e->k = po->eval_k;
    e->t = po->eval_t;
    e->norm = po->eval_norm;
    return 0;
}

static void knn_free(KnnEval *e) {
    if (e->bank) dataset_close(e->bank);
    if (e->query) dataset_close(e->query);
    sc_free(e->fb);
    sc_free(e->fq);
    sc_free(e->yb);
    sc_free(e->yq);
    sc_free(e->ib);
    sc_free(e->iq);
}

/* ---- helpers ------------------------------------------------------------------------------- */

/* Options that --resume may change freely: they do not alter the trajectory of the weights
 * (speed, logging, checkpoint cadence, the kNN monitor). */
static const char *const resume_harmless[] = {
    "threads", "loader-threads", "checkpoint-every", "log-every", "eval-every", "eval-limit",
    "eval-dataset", "eval-data", "eval-split", "eval-train-split", "test-on-train", "knn-k",
    "knn-temperature", "knn-norm", "tensorboard",
    NULL};

/* ---- the ablation losses on the Trainer ---------------------------------------------------- */

static int contrast_trainer_loss(void *ctx, Trainer *t, const int *labels, float *grad,
                                 TrainStats *st) {
    NtxentStats ns;
    if (contrast_loss(ctx, model_z(t->model), t->cfg.batch, t->cfg.views, model_out_dim(t->model),
                      grad, NULL, &ns))
        return -1;
    st->loss = ns.loss, st->top1 = ns.top1, st->top5 = ns.top5;
    return 0;
}

/* ---- the recipe's defaults, before the dataset is opened (--help) and after ---------------- */

/* What a new run takes from its recipe before the dataset is opened: the STL-10 split. */
static void recipe_split(int recipe, Opt **tables, int nt, DatasetConfig *dc) {
    if (dc->kind == DATASET_STL10 && !opts_was_set(tables, nt, "split"))
        dc->split = recipe_stl10_split(recipe);
}

/* FNV-1a 64 of a buffer, continuing from h */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* Multi-process start-up check: every process must run the same binary with the same resolved
 * configuration (thread counts aside). Returns the first process that differs from process 0,
 * 0 when all agree, -1 on a communication error. */
static int config_mismatch(Comm *comm, const char *cfg_no_threads) {
    uint64_t h = 1469598103934665603ull;
    char *exe = NULL;
    size_t n = 0;
    if (sc_read_file("/proc/self/exe", &exe, &n) == 0) h = fnv1a(h, exe, n);
    free(exe);
    h = fnv1a(h, cfg_no_threads, strlen(cfg_no_threads));
    int P = comm_size(comm);
    uint64_t *all = sc_alloc(sizeof(uint64_t) * P);
    int bad = comm_allgather_u64(comm, h, all) ? -1 : 0;
    for (int p = 1; p < P && !bad; p++)
        if (all[p] != all[0]) bad = p;
    sc_free(all);
    return bad;
}

/* Broadcasts a string of process 0 (NULL allowed) to every process (malloc'ed copy). */
static char *bcast_string(Comm *comm, const char *s) {
    long n = s ? (long)strlen(s) : -1;
    if (comm_bcast(comm, &n, sizeof n, 0)) return NULL;
    if (n < 0) return NULL;
    char *out = sc_xrealloc(NULL, (size_t)n + 1);
    if (comm_rank(comm) == 0) memcpy(out, s, (size_t)n + 1);
    if (comm_bcast(comm, out, (size_t)n + 1, 0)) {
        free(out);
        return NULL;
    }
    return out;
}

/* An error of this process: on the progress display (process 0) or plainly on stderr. */
static void error_line(Progress *pg, int r0) {
    if (r0) progress_message(pg, "simclr: error: %s", sc_error());
    else fprintf(stderr, "simclr: error: %s\n", sc_error());
}

/* ---- --help: the values the run would use ------------------------------------------------- */

typedef struct {
    int *recipe, *image_size;
    DatasetConfig *dc;
    char line[320];
} HelpResolve;

/* As a new run resolves them: the image size of square images from the data, then the recipe. */
static const char *help_resolve(void *ctx, Opt **tables, int nt) {
    HelpResolve *r = ctx;
    recipe_split(*r->recipe, tables, nt, r->dc);
    char what[256];
    if (run_defaults(tables, nt, *r->recipe, r->image_size, r->dc, NULL, what, sizeof what)) return NULL;
    snprintf(r->line, sizeof r->line, "a new run resolves: %s", what);
    return r->line;
}

/* ---- the command --------------------------------------------------------------------------- */

int cmd_pretrain(int argc, char **argv) {
    PretrainOptions po = {.recipe = RECIPE_STHALLES, .epochs = 100, .batch = 256, .threads = 0,
                          .checkpoint_every = 10, .eval_every = 0, .eval_k = 200, .eval_norm = KNN_L2, .shuffle = 1,
                          .log_every = 1, .max_steps = 0, .stop_after = 0, .limit = 0, .probe_lr = 1e-3f,
                          .eval_limit = 10000, .nan_step = -1, .seed = 0, .eval_t = 0.1f,
                          .eval_split = NULL, .eval_train_split = NULL};
    ModelConfig mc;
    TrainOptions to;
    DatasetConfig dc;
    AugmentConfig ac;
    LoaderConfig lc;
    RunTables rt; /* the library settings' options, over their defaults */
    run_tables_init(&rt, &mc, &to, &dc, &ac, &lc);
    /* ---- processes: one, or the P that mpirun started (src/comm.h) ---- */
    Comm *comm;
    if (comm_init(&comm)) sc_fatal("%s", sc_error());
    const int P = comm_size(comm), rank = comm_rank(comm), r0 = rank == 0;
    int saved_stderr = -1;
    if (!r0) { /* set-up messages come from process 0 only; errors of the run from any */
        if (!freopen("/dev/null", "w", stdout)) sc_fatal("cannot silence process %d", rank);
        fflush(stderr);
        saved_stderr = dup(2);
        int dn = open("/dev/null", O_WRONLY);
        if (dn >= 0) dup2(dn, 2), close(dn);
        sc_set_process(rank, saved_stderr); /* but its set-up errors: one line, "process R:" */
    }
    /* default threads: the cores shared by the processes of this machine */
    int local = 1;
    const char *ls = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (P > 1 && ls && atoi(ls) > 0) local = atoi(ls);
    po.threads = sc_threads() / local > 0 ? sc_threads() / local : 1;

    Opt own[] = {
        {"recipe", OPT_CHOICE, &po.recipe, "defaults: sthalles (reference PyTorch code, fixed "
         "schedule), paper (Chen et al. 2020, google-research/simclr) or blog (the Exploring "
         "SimCLR write-up's settings); explicit options override", RECIPE_CHOICES},
        {"out", OPT_STR, &po.out, "run folder (checkpoints, metrics.jsonl, config.json, curves.png)"},
        {"epochs", OPT_INT, &po.epochs, "training epochs", .min = 1, .max = 1e7},
        {"max-steps", OPT_INT64, &po.max_steps, "total optimizer steps (0: epochs x batches per "
         "epoch); the schedule runs over this many", .min = 0, .max = 1e15},
        {"batch-size", OPT_INT, &po.batch, "images per batch (V views each)", .min = 1, .max = 1 << 20},
        {"seed", OPT_INT, &po.seed, "seed of every random draw (init, shuffle, augmentation)",
         .min = 0, .max = 2147483647},
        {"threads", OPT_INT, &po.threads, "compute threads", .min = 1, .max = 1024},
        {"shuffle", OPT_CHOICE, &po.shuffle, "new image order every epoch (off: dataset order)",
         "off|on"},
        {"checkpoint-every", OPT_INT, &po.checkpoint_every,
         "keep epoch_NNNN.safetensors every E epochs (last.safetensors: every epoch)", .min = 0,
         .max = 1e7},
        {"resume", OPT_STR, &po.resume, "continue the run in this folder from last.safetensors"},
        {"force", OPT_FLAG, &po.force, "overwrite a run already in --out"},
        {"force-override", OPT_FLAG, &po.force_override, "with --resume: accept options that "
         "change the run's trajectory (--lr, --epochs, --batch-size, ...); config.json then "
         "records the new values"},
        {"init", OPT_STR, &po.init, "start from the weights of this checkpoint (encoder, and head "
         "when present; a torchvision state_dict works)"},
        {"limit", OPT_INT64, &po.limit, "use only the first N images (0: all)", .min = 0, .max = 1e12},
        {"eval-every", OPT_INT, &po.eval_every, "kNN accuracy every E epochs (0: never)", .min = 0,
         .max = 1e7},
        {"eval-dataset", OPT_CHOICE, &po.eval_dataset, "dataset of the kNN evaluation (same: the "
         "training dataset)", "same|" DATASET_CHOICES},
        {"eval-data", OPT_STR, &po.eval_data, "location of the evaluation dataset"},
        {"eval-train-split", OPT_STR, &po.eval_train_split, "labeled split the kNN votes with "
         "(default: train; all for a folder without train/ and test/)"},
        {"eval-split", OPT_STR, &po.eval_split, "labeled split the kNN accuracy is measured on "
         "(default: test, or val for a folder with train/ and val/ only)"},
        {"test-on-train", OPT_FLAG, &po.test_on_train, "allow the kNN monitor to measure on its own "
         "voting images (refused by default)"},
        {"eval-limit", OPT_INT64, &po.eval_limit, "at most N images of each evaluation split "
         "(evenly spaced; 0: all)", .min = 0, .max = 1e12},
        {"knn-k", OPT_INT, &po.eval_k, "kNN neighbours", .min = 1, .max = 1e6},
        {"knn-temperature", OPT_FLOAT, &po.eval_t, "kNN vote temperature", .min = 1e-6, .max = 1e6},
        {"knn-norm", OPT_CHOICE, &po.eval_norm, "kNN features before the cosine: l2 (as they are), "
         "center (minus the voting images' mean), standardize (also / their std)", KNN_NORM_CHOICES},
        {"save-init", OPT_FLAG, &po.save_init, "also write init.safetensors: the weights before "
         "training (the random-init baseline of the same encoder)"},
        {"log-every", OPT_INT, &po.log_every, "metrics line every N steps", .min = 1, .max = 1e9},
        {"online-probe", OPT_FLAG, &po.online_probe, "train a linear classifier on the detached "
         "features h of the labelled images of each batch; its accuracy goes to the metrics "
         "(probe_top1), the progress line, TensorBoard and the plots"},
        {"probe-lr", OPT_FLOAT, &po.probe_lr,
         "Adam learning rate of the online probe", .min = 1e-9, .max = 10},
        {"tensorboard", OPT_FLAG, &po.tensorboard, "also write the metrics (and the augmentation "
         "preview, at the start) as a TensorBoard log in OUT/tensorboard/"},
        {"precision", OPT_CHOICE, &mc.precision, "convolution arithmetic: fp32, or bf16 with fp32 "
         "accumulation (AVX512-BF16 CPUs; weights, optimizer, BN, loss stay fp32)", PRECISION_CHOICES},
        {"stop-after-steps", OPT_INT64, &po.stop_after, "debugging: save last.safetensors and stop "
         "after this step (the schedule is unchanged; --resume continues)", .min = 0, .max = 1e15},
        {"debug-nan-at-step", OPT_INT64, &po.nan_step, "debugging: make the loss NaN at this step",
         .min = -1, .max = 1e15},
        {0}};
    ContrastConfig cc;
    contrast_config_default(&cc);
    Opt contrast_tab[CONTRAST_OPTS_MAX];
    contrast_opts(contrast_tab, &cc);
    Opt *tables[] = {own, rt.model, rt.optim, contrast_tab, rt.data, rt.aug, rt.loader};
    const int NT = (int)(sizeof tables / sizeof *tables);
    const char *summary =
        "pretrain an encoder with SimCLR. New run: --out DIR; continue one: --resume DIR.";
    HelpResolve hr = {.recipe = &po.recipe, .image_size = &mc.image_size, .dc = &dc};
    opts_on_help(help_resolve, &hr);
    if (opts_parse("pretrain", summary, argc, argv, tables, NT, NULL, NULL))
        sc_fatal("%s", sc_error());

    /* ---- configuration: saved (resume) or recipe (new run) ---- */
    const char *dir = po.resume ? po.resume : po.out;
    if (!dir) sc_fatal("pretrain: give --out DIR for a new run or --resume DIR to continue one");
    if (po.resume && po.out && strcmp(po.resume, po.out))
        sc_fatal("--out %s and --resume %s: give only --resume to continue a run", po.out, po.resume);
    if (po.resume && po.init) sc_fatal("--init and --resume exclude each other");
    char *resume_cfg = NULL;
    char last[4096];
    snprintf(last, sizeof last, "%s", run_path(dir, "last.safetensors"));
    if (po.resume) {
        /* process 0 reads the run folder and sends the configuration to the others */
        if (r0) {
            if (!sc_file_exists(last))
                sc_fatal("--resume %s: no last.safetensors in the folder (nothing to continue)", dir);
            SafeTensors *st;
            if (safetensors_open(&st, last)) sc_fatal("--resume: %s", sc_error());
            const char *c = safetensors_meta(st, "config");
            if (!c) sc_fatal("--resume: %s has no saved configuration (not a pretrain checkpoint)", last);
            resume_cfg = sc_strdup(c);
            safetensors_close(st);
        }
        if (P > 1) {
            char *c = bcast_string(comm, resume_cfg);
            if (!c) sc_fatal("--resume: %s", sc_error());
            free(resume_cfg);
            resume_cfg = c;
        }
        /* run-control options are never restored; the saved values of all others are, unless
         * given again: a value that changes the trajectory is refused without --force-override
         * (the run would no longer match its record nor an uninterrupted one) */
        static const char *const control[] = {"resume", "out", "force", "force-override", "init",
                                              "stop-after-steps", "debug-nan-at-step", NULL};
        if (run_resume_options(tables, NT, dir, resume_cfg, control, resume_harmless,
                               po.force_override))
            sc_fatal("%s", sc_error());
        po.resume = dir;
        po.out = dir;
    }
    if (po.threads < 1) po.threads = 1;
    sc_set_threads(po.threads);
    lc.shuffle = po.shuffle;
    if (po.batch % P) {
        if (r0)
            fprintf(stderr, "simclr: error: --batch-size %d: not divisible by the %d processes of "
                    "this run (mpirun -np %d): give a multiple of %d\n", po.batch, P, P, P);
        comm_free(comm);
        return 1;
    }

    /* ---- data ---- */
    if (!po.resume) recipe_split(po.recipe, tables, NT, &dc);
    Dataset *ds;
    if (dataset_open(&ds, &dc)) sc_fatal("%s", sc_error());
    if (po.limit > 0 && (size_t)po.limit < dataset_size(ds)) {
        char tmpl[] = "/tmp/simclr_limit_XXXXXX";
        if (!mkdtemp(tmpl)) sc_fatal("--limit: cannot create a temporary folder");
        Dataset *sub;
        if (open_subset(&sub, ds, (size_t)po.limit, tmpl)) sc_fatal("%s", sc_error());
        rmdir(tmpl);
        dataset_close(ds);
        ds = sub;
    }
    if (!po.resume && run_defaults(tables, NT, po.recipe, &mc.image_size, &dc, ds, NULL, 0))
        sc_fatal("%s", sc_error());
    size_t nimg = dataset_size(ds);
    dataset_warn_image_size(ds, mc.image_size);
    if (po.batch < 2)
        sc_warn("--batch-size %d: every batch holds one image, so NT-Xent has no negatives (the loss "
                "and the contrastive accuracy say nothing, the encoder learns nothing useful); use "
                "--batch-size 2 or more", po.batch);
    if ((size_t)po.batch > nimg)
        sc_fatal("--batch-size %d is larger than the dataset (%zu images in %s)", po.batch, nimg,
                 dataset_describe(ds));
    ac.out_size = mc.image_size;
    if (augment_config_finish(&ac)) sc_fatal("%s", sc_error());
    static char stats_buf[160];
    if (ac.normalize == NORMALIZE_DATASET && !ac.stats_set) {
        /* computed once from the training data and stored in the configuration, so a resumed
         * run and the evaluation commands normalise exactly as training did */
        if (dataset_channel_stats(ds, 10000, ac.mean, ac.std)) sc_fatal("%s", sc_error());
        augment_format_stats(stats_buf, sizeof stats_buf, ac.mean, ac.std);
        ac.normalize_stats = stats_buf;
        ac.stats_set = 1;
    }
    if (model_config_check(&mc)) sc_fatal("%s", sc_error());
    if (ac.views < 2) sc_fatal("--views: NT-Xent needs at least 2 views per image, got %d", ac.views);

    /* ---- run folder, configuration print and file ---- */
    /* one process per run folder, from here to exit: a second pretrain, --force or --resume
     * on it is refused (before anything in the folder is removed or rewritten) */
    if (r0 && run_folder_claim(dir, po.resume != NULL, po.force)) sc_fatal("%s", sc_error());
    /* The saved configuration describes the run, not this invocation: run-control options are
     * stored at their neutral values, so a resumed run writes the same files as an
     * uninterrupted one. */
    PretrainOptions saved_po = po;
    po.resume = NULL;
    po.force = 0;
    po.force_override = 0;
    po.stop_after = 0;
    po.nan_step = -1;
    char *cfg = run_config_json(tables, NT);
    int saved_lt = lc.threads;
    po.threads = lc.threads = 0;
    char *cfg_hash = run_config_json(tables, NT); /* for the start-up check: threads may differ */
    po = saved_po;
    lc.threads = saved_lt;
    /* the run records its number of processes (not an option: mpirun decides it) */
    size_t cl = strlen(cfg);
    if (cl && cfg[cl - 1] == '}') {
        char *c2 = sc_xrealloc(NULL, cl + 64);
        snprintf(c2, cl + 64, "%.*s, \"processes\": %d}", (int)(cl - 1), cfg, P);
        free(cfg);
        cfg = c2;
    }
    if (P > 1) {
        int bad = config_mismatch(comm, cfg_hash);
        if (bad) {
            if (r0)
                fprintf(stderr, "simclr: error: process %d: %s\n", bad < 0 ? 0 : bad,
                        bad < 0 ? sc_error()
                                : "runs another binary or configuration than process 0 (the "
                                  "configuration and executable hashes differ): start every "
                                  "process with the same simclr and the same options");
            comm_free(comm);
            return 1;
        }
        if (!r0) { /* errors of the run: any process */
            dup2(saved_stderr, 2), close(saved_stderr);
            sc_set_process(rank, -1);
        }
    }
    free(cfg_hash);
    printf("simclr pretrain: %s\n", dataset_describe(ds));
    if (P > 1)
        printf("processes: %d (%s), global batch %d = %d x %d images, %d threads each\n", P,
               comm_backend(comm), po.batch, P, po.batch / P, po.threads);
    if (P > 1) { /* how to stop: mpirun SIGKILLs 1 s after it forwards Ctrl-C / SIGTERM */
        const char *kt = getenv("OMPI_MCA_odls_base_sigkill_timeout");
        int k = kt ? atoi(kt) : 1;
        char how[160];
        if (k > 1)
            snprintf(how, sizeof how, ", or Ctrl-C on mpirun (it SIGKILLs %d s later)", k);
        else
            snprintf(how, sizeof how, "; Ctrl-C on mpirun saves only with mpirun --mca "
                     "odls_base_sigkill_timeout 60");
        printf("to stop and save: kill -TERM %ld (process 0, also in %s/.simclr.lock)%s\n",
               (long)getpid(), dir, how);
    }
    printf("configuration (%s):\n", po.resume ? "resumed from the run's saved values" : "resolved");
    opts_print(stdout, tables, NT);
    fflush(stdout);
    /* also on resume: an accepted override makes config.json describe what is trained */
    if (r0 && run_write_config(dir, cfg)) sc_fatal("%s", sc_error());

    /* ---- trainer (model, loss, optimizer, schedule), loader ---- */
    int V = ac.views, N = po.batch, B = V * N;
    lc.batch_size = N;
    lc.seed = (uint64_t)po.seed;
    lc.shard_rank = rank, lc.shard_count = P; /* this process's share of every global batch */
    Loader *L;
    if (loader_create(&L, ds, &ac, &lc)) sc_fatal("%s", sc_error());
    long bpe = loader_batches_per_epoch(L);
    long total = po.max_steps > 0 ? (long)po.max_steps : (long)po.epochs * bpe;
    int epochs_total = (int)((total + bpe - 1) / bpe);
    TrainerConfig tc;
    trainer_config_default(&tc);
    tc.model = mc;
    train_options_optim_config(&to, &tc.optim);
    tc.batch = N;
    tc.views = V;
    tc.temperature = to.temperature;
    tc.seed = (uint64_t)po.seed;
    tc.steps_per_epoch = bpe;
    tc.debug_nan_step = po.nan_step;
    /* the ablation losses (--loss, --similarity) through the Trainer's pluggable loss; plain
     * NT-Xent with cosine similarity keeps the Trainer's own (faster, float) path */
    Contrast *contrast = NULL;
    cc.tau = to.temperature;
    if (!contrast_is_default(&cc)) {
        if (comm_size(comm) > 1)
            sc_fatal("--loss/--similarity: the ablation losses run in one process (their loss "
                     "sees only this process's rows); run them without mpirun");
        ResNetSpec sp;
        if (resnet_spec(&sp, mc.arch, mc.stem, mc.width, mc.image_size)) sc_fatal("%s", sc_error());
        if (contrast_create(&contrast, &cc, B, mc.head_layers ? mc.out_dim : sp.feat_dim))
            sc_fatal("%s", sc_error());
        tc.loss = (TrainerLoss){contrast_trainer_loss, contrast, 0};
    }
    tc.comm = comm;
    if (run_schedule(&tc.schedule, &to, tables, NT, N, bpe, total)) sc_fatal("%s", sc_error());
    Trainer *t;
    if (trainer_create(&t, &tc)) sc_fatal("%s", sc_error());
    Model *m = t->model;
    Probe *probe = NULL;
    if (po.online_probe) { /* before a resume: its state is part of the checkpoint */
        if (dataset_num_classes(ds) < 2)
            sc_fatal("--online-probe: the training split %s has no labels to learn from",
                     dataset_describe(ds));
        if (probe_create(&probe, model_feature_dim(m), dataset_num_classes(ds)))
            sc_fatal("--online-probe: %s", sc_error());
        probe_set_comm(probe, comm); /* mpirun: each process its rows, the gradient summed */
        int nps;
        CkTensor *ps = probe_state(probe, &nps);
        trainer_set_extra_state(t, ps, nps);
    }

    /* ---- starting point ---- */
    if (po.resume) {
        if (trainer_resume(t, last, NULL)) sc_fatal("--resume: %s", sc_error());
        int cleaned = r0 ? run_dir_clean_temps(dir) : 0;
        if (cleaned) printf("removed %d temporary file(s) of an interrupted write\n", cleaned);
        printf("resuming %s at step %ld (epoch %ld, batch %ld)\n", dir, t->step, trainer_epoch(t),
               trainer_batch(t));
    } else if (po.init) {
        if (r0 && checkpoint_load(po.init, m, NULL, NULL)) sc_fatal("--init: %s", sc_error());
        if (trainer_broadcast(t)) sc_fatal("--init: %s", sc_error()); /* process 0's weights */
        printf("initialised from %s\n", po.init);
    }
    if (r0 && po.save_init && t->step == 0) {
        CkMeta im = {.seed = (uint64_t)po.seed, .config_json = cfg};
        if (checkpoint_save(run_path(dir, "init.safetensors"), m, NULL, &im))
            sc_fatal("%s", sc_error());
    }
    loader_seek(L, trainer_epoch(t), trainer_batch(t));
    /* from here on a stop request finishes the current step and saves: installed before the
     * metrics file appears (the first sign of a running job a script can watch for) */
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    /* process 0 writes the metrics, the checkpoints, the plot */
    RunFolder rf = {.dir = dir, .command = "pretrain", .cfg = cfg, .steps_per_epoch = bpe,
                    .total = total, .checkpoint_every = po.checkpoint_every};
    if (r0 && run_folder_open_log(&rf, po.resume ? t->step : -1,
                                  po.tensorboard ? "train/contrastive" : NULL))
        sc_fatal("%s", sc_error());
    if (r0 && po.tensorboard && !po.resume &&
        tensorboard_preview(rf.log, ds, loader_augment(L), (uint64_t)po.seed))
        sc_fatal("%s", sc_error());

    KnnEval ke = {0};
    if (r0 && po.eval_every > 0 &&
        knn_setup(&ke, &po, &dc, loader_augment(L), trainer_rows(t), model_feature_dim(m)))
        sc_fatal("%s", sc_error());

    char arch[128];
    checkpoint_arch_string(m, arch, sizeof arch);
    printf("model %s: %zu parameters; %ld steps (%d epochs x %ld batches of %d images, %d views)\n",
           arch, model_num_params(m), total, epochs_total, bpe, N, V);
    fflush(stdout);

    Progress pg;
    progress_init(&pg, r0 ? stderr : stdout, 30.0, t->step); /* stdout: /dev/null off rank 0 */
    double t_run = sc_now(), vps_avg = 0;
    long steps_run = 0;
    int rc = 0, collective = 0; /* collective: every process leaves the loop at this step */
    int job_ending = 0;
    StepMetrics sm = {0};
    while (t->step < total) {
        double t0 = sc_now();
        const int *labels;
        const float *x = loader_next(L, &labels);
        if (!x) { /* this process alone: comm_abort below ends the others */
            error_line(&pg, r0);
            rc = 1;
            break;
        }
        TrainStats st;
        int src = trainer_step(t, x, labels, &st); /* the loss is global: every process agrees */
        if (src == TRAIN_NONFINITE) {
            long s0 = t->step;
            if (r0) {
                progress_message(&pg,
                                 "simclr: error: the loss is %s at step %ld (epoch %ld): stopping. "
                                 "The last good checkpoint is %s; try a lower --lr.",
                                 isnan(st.loss) ? "NaN" : "infinite", s0 + 1, s0 / bpe + 1,
                                 sc_file_exists(last) ? last : "(none yet)");
                sm = (StepMetrics){s0 + 1, (int)(s0 / bpe), st.loss, st.top1, st.top5, st.lr, 0};
                runlog_step(rf.log, &sm);
            }
            rc = 1;
            collective = 1; /* every process saw the same global loss */
            break;
        }
        if (src) {
            error_line(&pg, r0);
            rc = 1;
            break;
        }
        ProbeStats pst = {0};
        if (probe && probe_step(probe, model_h(m), N / P, V, labels, po.probe_lr, &pst)) {
            progress_message(&pg, "simclr: error: --online-probe: %s", sc_error());
            rc = 1;
            break;
        }
        long step = t->step;
        steps_run++;
        double dt = sc_now() - t0, vps = B / dt;
        vps_avg = steps_run == 1 ? vps : 0.9 * vps_avg + 0.1 * vps;
        sm = (StepMetrics){step, (int)((step - 1) / bpe), st.loss, st.top1, st.top5, st.lr, vps,
                           probe != NULL, pst.top1};
        if (r0 && run_folder_step(&rf, &sm, po.log_every)) {
            error_line(&pg, r0); /* a full disk; the other processes are ended below */
            rc = 1;
            break;
        }
        StepMetrics shown = sm;
        shown.views_per_s = vps_avg;
        if (r0) progress_update(&pg, &shown, epochs_total, total, step == total);

        int epoch_end = step % bpe == 0 || step == total;
        if (epoch_end && r0) {
            long ep = (step + bpe - 1) / bpe; /* epochs completed */
            if (po.eval_every > 0 && (ep % po.eval_every == 0 || step == total)) {
                double t1, t5, te = sc_now();
                if (knn_run(m, &ke, &t1, &t5)) {
                    progress_message(&pg, "simclr: error: %s", sc_error());
                    rc = 1;
                    break;
                }
                if (runlog_eval(rf.log, step, (int)(ep - 1), "knn", t1, t5)) {
                    progress_message(&pg, "simclr: error: %s", sc_error());
                    rc = 1;
                    break;
                }
                progress_message(&pg, "epoch %ld: kNN top-1 %.2f%%  top-5 %.2f%%  (%zu vs %zu "
                                 "images, %.1fs)", ep, 100 * t1, 100 * t5, ke.nq, ke.nb,
                                 sc_now() - te);
            }
            if (run_folder_epoch_end(&rf, t, step)) {
                progress_message(&pg, "simclr: error: %s", sc_error());
                rc = 1;
                break;
            }
        }
        /* every process stops at the same step: a signal reaches the processes at different
         * moments, so the decision is one collective OR per step */
        int want = stop_signal || (po.stop_after > 0 && step >= po.stop_after && step < total);
        int stop = P > 1 ? comm_any(comm, want) : want;
        if (stop < 0) {
            error_line(&pg, r0);
            rc = 1;
            break;
        }
        if (stop) {
            int interrupted = P > 1 ? comm_any(comm, stop_signal != 0) : stop_signal != 0;
            /* the signal reached every process: mpirun is ending the job (Ctrl-C or SIGTERM on
             * mpirun), and MPI_Finalize would wait for it until it SIGKILLs us */
            if (P > 1 && interrupted) job_ending = comm_any(comm, stop_signal == 0) == 0;
            if (r0 && run_folder_stop(&rf, t, step, epoch_end, interrupted, &pg)) {
                error_line(&pg, r0);
                rc = 1;
                break;
            }
            rc = interrupted ? 130 : 0;
            collective = 1;
            break;
        }
    }
    progress_end(&pg);
    run_folder_close(&rf);
    /* an error of one process: the others wait in a collective; end the whole job */
    if (P > 1 && rc != 0 && !collective) comm_abort(comm, rc);
    if (r0 && rc == 0 && t->step >= total) {
        double el = sc_now() - t_run;
        char d[32];
        format_duration(d, sizeof d, el);
        printf("done: %ld steps in %s (%.1f views/s), final loss %.4f, contrastive top-1 %.3f\n"
               "checkpoint: %s\n",
               steps_run, d, steps_run ? steps_run * (double)B / el : 0.0, sm.loss, sm.top1, last);
    }
    if (r0 && po.eval_every > 0) knn_free(&ke);
    loader_free(L);
    trainer_free(t);
    probe_free(probe);
    contrast_free(contrast);
    dataset_close(ds);
    free(cfg);
    free(resume_cfg);
    if (job_ending) { /* the checkpoint is saved: leave before mpirun's SIGKILL */
        fflush(stdout), fflush(stderr);
        _exit(rc);
    }
    comm_free(comm);
    return rc;
}
