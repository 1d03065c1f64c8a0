/* cmd_finetune.c - `simclr finetune`: fine-tune a pretrained encoder with a new linear classifier
 * on a labelled subset (the write-up's first "what next", the paper's semi-supervised protocol,
 * Appendix B.5), or train the same network from scratch on the same subset (--random-init: the
 * supervised baseline).
 *
 * The loop, top to bottom:
 *   options -> (resume: the run's saved configuration | new: the checkpoint's model options)
 *   -> train split, class-balanced labelled subset (seeded; indices saved as subset.npy)
 *   -> model = encoder [+ the pretrained head's first layer] + a K-way linear classifier (the
 *      head's last layer, zero-initialised as google's zero_init_logits_layer)
 *   -> Trainer with the cross-entropy loss, crop + flip augmentation, BN in training mode
 *   -> steps, metrics, checkpoints, curves, Ctrl-C / resume exactly as pretrain
 *   -> test-split top-1 / top-5 (eval mode), --json, model.safetensors for PyTorch
 *      (encoder under torchvision's names, the classifier as fc.weight / fc.bias).
 */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "cli.h"
#include "dataset.h"
#include "eval_features.h"
#include "eval_io.h"
#include "finetune.h"
#include "loader.h"
#include "model.h"
#include "npy.h"
#include "optim.h"
#include "recipe.h"
#include "run_cli.h"
#include "runlog.h"
#include "train.h"

SIMCLR_COMMAND(cmd_finetune, "finetune", "fine-tune an encoder with a linear classifier on a labelled subset (or train it from scratch)")

static volatile sig_atomic_t stop_signal;
static void on_signal(int sig) {
    stop_signal = sig;
    signal(sig, SIG_DFL);
}

typedef struct {
    const char *checkpoint, *out, *resume, *test_split, *test_data, *test_labels, *json;
    int random_init, force, force_override, keep_head, epochs, batch, seed, threads;
    int checkpoint_every, log_every, eval_every, labels_per_class, classes, tensorboard;
    double label_fraction;
    long long max_steps, stop_after;
} FinetuneOptions;

/* Test-split top-1 / top-5 of the classifier, BN in eval mode (running statistics). */
static int test_accuracy(Model *m, const Dataset *ds, const AugmentConfig *train_aug, int batch,
                         int K, double *top1, double *top5) {
    AugmentConfig a = *train_aug;
    a.mode = AUGMENT_NONE;
    size_t n = dataset_size(ds);
    float *logits = sc_alloc(sizeof(float) * n * K);
    int *y = sc_alloc(sizeof(int) * n);
    int rc = features_extract(m, ds, &a, FEATURES_Z, batch, NULL, n, logits, y, 0);
    if (!rc) softmax_ce(logits, y, (int)n, K, NULL, top1, top5);
    sc_free(logits);
    sc_free(y);
    return rc;
}

/* Loads the encoder (and the kept head layers) of a pretrained checkpoint: every model tensor
 * except the classifier's (the model's last two, head.<i>.weight/bias). */
static int load_pretrained(Model *m, const char *path) {
    CkTensor *t;
    int n;
    checkpoint_model_tensors(m, NULL, 0, &t, &n);
    SC_ASSERT(n >= 2 && !strncmp(t[n - 1].name, "head.", 5) && !strncmp(t[n - 2].name, "head.", 5));
    CkMeta meta = {0};
    checkpoint_arch_string(m, meta.arch, sizeof meta.arch);
    int rc = checkpoint_read(path, t, n - 2, &meta, CK_ALLOW_EXTRA);
    free(t);
    ck_meta_free(&meta);
    return rc;
}

/* The model for PyTorch: every tensor under its torchvision name, the head renamed fc
 * (fc.weight / fc.bias with one classifier layer: torchvision.models.resnetXX(num_classes=K)
 * loads it with strict=True). */
static int save_torch(const char *path, Model *m, const char *cfg) {
    CkTensor *t;
    int n;
    checkpoint_model_tensors(m, NULL, 0, &t, &n);
    int layers = model_config(m)->head_layers;
    for (int i = 0; i < n; i++) {
        if (strncmp(t[i].name, "head.", 5)) continue;
        char rest[160];
        snprintf(rest, sizeof rest, "%s", t[i].name + 5);
        if (layers == 1) /* head.0.weight -> fc.weight */
            snprintf(t[i].name, sizeof t[i].name, "fc.%s", strchr(rest, '.') + 1);
        else /* head.k.x -> fc.k.x: an nn.Sequential as model.fc */
            snprintf(t[i].name, sizeof t[i].name, "fc.%s", rest);
    }
    CkMeta meta = {.config_json = (char *)cfg};
    checkpoint_arch_string(m, meta.arch, sizeof meta.arch);
    int rc = checkpoint_write(path, t, n, &meta);
    free(t);
    return rc;
}

int cmd_finetune(int argc, char **argv) {
    FinetuneOptions fo = {.epochs = 60, .batch = 64, .checkpoint_every = 0, .log_every = 1,
                          .label_fraction = 1.0, .test_split = "test", .threads = sc_threads()};
    ModelConfig mc;
    TrainOptions to;
    DatasetConfig dc;
    AugmentConfig ac;
    LoaderConfig lc;
    RunTables rt; /* the library settings' options, over their defaults */
    run_tables_init(&rt, &mc, &to, &dc, &ac, &lc);
    /* the paper's fine-tuning (B.5): Nesterov momentum 0.9, lr 0.05 x batch/256, no weight
     * decay, no warmup; cosine decay here (explicit options override) */
    to.optimizer = OPTIM_SGD;
    to.nesterov = 1;
    to.momentum = 0.9f;
    to.lr = 0.05f;
    to.lr_scaling = LR_SCALING_LINEAR;
    to.weight_decay = 0;
    to.warmup_epochs = 0;
    /* the paper's fine-tuning augmentation: random resized crop and flip only */
    ac.views = 1;
    ac.jitter_prob = 0;
    ac.gray_prob = 0;
    ac.blur_prob = 0;

    Opt own[] = {
        {"checkpoint", OPT_STR, &fo.checkpoint, "pretrained encoder (a simclr checkpoint, or a "
         "torchvision state_dict in safetensors with --arch etc.)"},
        {"random-init", OPT_FLAG, &fo.random_init, "train the same network from its random "
         "initialisation instead (the supervised baseline on the same subset)"},
        {"keep-head", OPT_INT, &fo.keep_head, "keep the first layer of the pretrained projection "
         "head (1: SimCLRv2's fine-tuning from the head's middle layer) or none (0)", .min = 0, .max = 1},
        {"label-fraction", OPT_DOUBLE, &fo.label_fraction, "fraction of the labelled images used, "
         "class-balanced and drawn from --seed (0.01: 1%)", .min = 1e-12, .max = 1},
        {"labels-per-class", OPT_INT, &fo.labels_per_class, "instead: this many labelled images of "
         "each class (0: use --label-fraction)", .min = 0, .max = 1 << 30},
        {"out", OPT_STR, &fo.out, "run folder (checkpoints, metrics.jsonl, subset.npy, "
         "model.safetensors, curves.png)"},
        {"resume", OPT_STR, &fo.resume, "continue the run in this folder from last.safetensors"},
        {"force", OPT_FLAG, &fo.force, "overwrite a run already in --out"},
        {"force-override", OPT_FLAG, &fo.force_override, "with --resume: accept options that "
         "change the run's trajectory (--lr, --epochs, --label-fraction, ...); config.json then "
         "records the new values"},
        {"epochs", OPT_INT, &fo.epochs, "training epochs over the labelled subset", .min = 1, .max = 1e7},
        {"max-steps", OPT_INT64, &fo.max_steps, "total optimizer steps (0: epochs x batches)", .min = 0, .max = 1e15},
        {"batch-size", OPT_INT, &fo.batch, "images per batch", .min = 1, .max = 1 << 20},
        {"seed", OPT_INT, &fo.seed, "seed of the subset, the classifier's init (random-init: the "
         "network's), the shuffle and the augmentation", .min = 0, .max = 2147483647},
        {"threads", OPT_INT, &fo.threads, "compute threads", .min = 1, .max = 1024},
        {"checkpoint-every", OPT_INT, &fo.checkpoint_every, "keep epoch_NNNN.safetensors every E "
         "epochs (last.safetensors: every epoch)", .min = 0, .max = 1e7},
        {"log-every", OPT_INT, &fo.log_every, "metrics line every N steps", .min = 1, .max = 1e9},
        {"eval-every", OPT_INT, &fo.eval_every, "test accuracy every E epochs (0: at the end only)",
         .min = 0, .max = 1e7},
        {"test-split", OPT_STR, &fo.test_split, "split the accuracy is measured on"},
        {"test-data", OPT_STR, &fo.test_data, "--data of the test split when it is another file (npy)"},
        {"test-labels", OPT_STR, &fo.test_labels, "labels of --test-data (npy)"},
        {"json", OPT_STR, &fo.json, "write top1, top5 and the run's facts to this JSON file"},
        {"tensorboard", OPT_FLAG, &fo.tensorboard, "also write the metrics (loss, batch accuracy, "
         "lr, test accuracy) as a TensorBoard log in OUT/tensorboard/"},
        {"stop-after-steps", OPT_INT64, &fo.stop_after, "debugging: save and stop after this "
         "step (--resume continues)", .min = 0, .max = 1e15},
        {0}};
    Opt *tables[] = {own, rt.model, rt.optim, rt.data, rt.aug, rt.loader};
    const int NT = (int)(sizeof tables / sizeof *tables);
    if (opts_parse("finetune", "fine-tune a pretrained encoder (--checkpoint) or train it from "
                   "scratch (--random-init) on a labelled subset, then test it. New run: --out "
                   "DIR; continue one: --resume DIR.", argc, argv, tables, NT, NULL, NULL))
        sc_fatal("%s", sc_error());

    /* ---- configuration: saved (resume) or new ---- */
    const char *dir = fo.resume ? fo.resume : fo.out;
    if (!dir) sc_fatal("finetune: give --out DIR for a new run or --resume DIR to continue one");
    if (fo.resume && fo.out && strcmp(fo.resume, fo.out))
        sc_fatal("--out %s and --resume %s: give only --resume to continue a run", fo.out, fo.resume);
    char last[4096];
    snprintf(last, sizeof last, "%s", run_path(dir, "last.safetensors"));
    int pre_head_layers = 0, pre_head_bn = 0;
    if (fo.resume) {
        if (!sc_file_exists(last))
            sc_fatal("--resume %s: no last.safetensors in the folder (nothing to continue)", dir);
        char *saved = run_saved_config(last);
        if (!saved) sc_fatal("--resume: %s", sc_error());
        /* run-control options are never restored; those that do not change the weights'
         * trajectory may change freely; any other given again with another value is refused
         * without --force-override */
        static const char *const control[] = {"resume", "out", "force", "force-override",
                                              "stop-after-steps", NULL};
        static const char *const harmless[] = {"threads", "loader-threads", "checkpoint-every",
                                               "log-every", "eval-every", "test-split",
                                               "test-data", "test-labels", "json", "tensorboard",
                                               NULL};
        if (run_resume_options(tables, NT, dir, saved, control, harmless, fo.force_override))
            sc_fatal("%s", sc_error());
        free(saved);
        fo.out = dir;
    } else {
        if (!!fo.checkpoint == !!fo.random_init)
            sc_fatal("finetune: give --checkpoint CK (fine-tune a pretrained encoder) or "
                     "--random-init (the supervised baseline), one of them");
        if (fo.checkpoint) {
            if (!sc_file_exists(fo.checkpoint)) sc_fatal("--checkpoint %s: file not found", fo.checkpoint);
            SafeTensors *st;
            if (safetensors_open(&st, fo.checkpoint)) sc_fatal("--checkpoint: %s", sc_error());
            const char *js = safetensors_meta(st, "config");
            char *cfg0 = js ? sc_strdup(js) : NULL;
            safetensors_close(st);
            if (cfg0) { /* the pretrained model's options (and normalisation), unless given */
                Opt norm[3] = {{0}};
                int k = 0;
                for (Opt *o = rt.aug; o->name; o++)
                    if (!strcmp(o->name, "normalize") || !strcmp(o->name, "normalize-stats")) norm[k++] = *o;
                Opt *tabs[2] = {rt.model, norm};
                if (opts_apply_json(tabs, 2, cfg0, 1, NULL))
                    sc_fatal("--checkpoint %s: stored configuration: %s", fo.checkpoint, sc_error());
                free(cfg0);
            }
            pre_head_layers = mc.head_layers;
            pre_head_bn = mc.head_bn;
            if (fo.keep_head && pre_head_layers < 2)
                sc_fatal("--keep-head 1: the checkpoint's projection head has %d layer(s); keeping "
                         "its first layer needs a head of 2 or more", pre_head_layers);
        }
    }
    if (fo.threads < 1) fo.threads = 1;
    sc_set_threads(fo.threads);
    lc.shuffle = 1;

    /* ---- data: the train split and its labelled subset ---- */
    Dataset *ds;
    if (dataset_open(&ds, &dc)) sc_fatal("%s", sc_error());
    int K = dataset_num_classes(ds);
    if (K <= 0)
        sc_fatal("finetune: %s has no labels (fine-tuning needs a labelled split: --split, or "
                 "--labels for npy)", dataset_describe(ds));
    size_t *sub, nsub;
    if (finetune_select_labels(dataset_labels(ds), dataset_size(ds), K, fo.label_fraction,
                               fo.labels_per_class, (uint64_t)fo.seed, &sub, &nsub))
        sc_fatal("%s", sc_error());
    size_t nall = dataset_size(ds);
    if (dataset_select(ds, sub, nsub)) sc_fatal("%s", sc_error());
    if ((size_t)fo.batch > nsub)
        sc_fatal("--batch-size %d is larger than the labelled subset (%zu images)", fo.batch, nsub);
    DatasetConfig tdc = dc;
    tdc.split = fo.test_split;
    tdc.fold = -1;
    if (fo.test_data) tdc.path = fo.test_data;
    if (fo.test_labels) tdc.labels = fo.test_labels;
    Dataset *test;
    if (dataset_open(&test, &tdc)) sc_fatal("--test-split: %s", sc_error());
    if (dataset_num_classes(test) <= 0) sc_fatal("--test-split: %s has no labels", dataset_describe(test));
    if (dataset_num_classes(test) > K) K = dataset_num_classes(test);

    /* ---- the model: encoder [+ kept head layer] + K-way classifier ---- */
    if (!fo.resume) {
        if (!opts_was_set(tables, NT, "image-size")) {
            int h, w;
            dataset_image_size(ds, &h, &w);
            if (!fo.checkpoint && h > 0 && h == w) mc.image_size = h;
        }
        mc.head_layers = fo.keep_head + 1;
        mc.out_dim = K;
        mc.head_bn = fo.keep_head && pre_head_bn ? HEAD_BN_ON : HEAD_BN_OFF;
    }
    if (mc.out_dim != K)
        sc_fatal("--resume: the run's classifier has %d classes, the data %d", mc.out_dim, K);
    if (model_config_check(&mc)) sc_fatal("%s", sc_error());
    ac.out_size = mc.image_size;
    if (augment_config_finish(&ac)) sc_fatal("%s", sc_error());

    /* one process per run folder, from here to exit: a second finetune (or pretrain), --force
     * or --resume on it is refused before anything in the folder is removed or rewritten */
    if (run_folder_claim(dir, fo.resume != NULL, fo.force)) sc_fatal("%s", sc_error());
    /* the saved configuration describes the run, not this invocation: run-control options at
     * their neutral values */
    FinetuneOptions saved_fo = fo;
    fo.resume = NULL;
    fo.force = 0;
    fo.force_override = 0;
    fo.stop_after = 0;
    char *cfg = run_config_json(tables, NT);
    fo = saved_fo;
    printf("simclr finetune: %zu of %zu labelled images (%d classes) of %s; test: %s\n", nsub, nall,
           K, dataset_describe(ds), dataset_describe(test));
    printf("configuration (%s):\n", fo.resume ? "resumed from the run's saved values" : "resolved");
    opts_print(stdout, tables, NT);
    fflush(stdout);
    /* also on resume: an accepted override makes config.json describe what is trained */
    if (run_write_config(dir, cfg)) sc_fatal("%s", sc_error());
    if (!fo.resume) {
        int64_t *ix = sc_alloc(sizeof(int64_t) * nsub);
        for (size_t i = 0; i < nsub; i++) ix[i] = (int64_t)sub[i];
        int64_t shape[1] = {(int64_t)nsub};
        if (npy_write(run_path(dir, "subset.npy"), NPY_I64, 1, shape, ix)) sc_fatal("%s", sc_error());
        sc_free(ix);
    }

    /* ---- trainer, loader, schedule ---- */
    int N = fo.batch;
    lc.batch_size = N;
    lc.seed = (uint64_t)fo.seed;
    Loader *L;
    if (loader_create(&L, ds, &ac, &lc)) sc_fatal("%s", sc_error());
    long bpe = loader_batches_per_epoch(L);
    long total = fo.max_steps > 0 ? (long)fo.max_steps : (long)fo.epochs * bpe;
    int epochs_total = (int)((total + bpe - 1) / bpe);
    TrainerConfig tc;
    trainer_config_default(&tc);
    tc.model = mc;
    train_options_optim_config(&to, &tc.optim);
    tc.batch = N;
    tc.views = 1;
    tc.seed = (uint64_t)fo.seed;
    tc.steps_per_epoch = bpe;
    tc.loss = (TrainerLoss){finetune_ce_loss, &K, 0};
    if (run_schedule(&tc.schedule, &to, tables, NT, N, bpe, total)) sc_fatal("%s", sc_error());
    Trainer *t;
    if (trainer_create(&t, &tc)) sc_fatal("%s", sc_error());
    Model *m = t->model;
    /* the classifier (the head's last layer) starts at zero, as google's zero_init_logits_layer */
    for (int i = model_num_tensors(m) - 2; i < model_num_tensors(m); i++) {
        const ModelTensor *mt = model_tensor(m, i);
        memset(model_params(m) + mt->offset, 0, sizeof(float) * mt->numel);
    }
    if (fo.resume) {
        if (trainer_resume(t, last, NULL)) sc_fatal("--resume: %s", sc_error());
        int cleaned = run_dir_clean_temps(dir);
        if (cleaned) printf("removed %d temporary file(s) of an interrupted write\n", cleaned);
        printf("resuming %s at step %ld\n", dir, t->step);
    } else if (fo.checkpoint) {
        if (load_pretrained(m, fo.checkpoint)) sc_fatal("--checkpoint: %s", sc_error());
        printf("encoder%s from %s\n", fo.keep_head ? " and the head's first layer" : "", fo.checkpoint);
    }
    loader_seek(L, trainer_epoch(t), trainer_batch(t));
    /* a stop request from here on finishes the step and saves (installed before the metrics
     * file, the first sign of a running job, appears) */
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    RunFolder rf = {.dir = dir, .command = "finetune", .cfg = cfg, .steps_per_epoch = bpe,
                    .total = total, .checkpoint_every = fo.checkpoint_every};
    if (run_folder_open_log(&rf, fo.resume ? t->step : -1,
                            fo.tensorboard ? "train/accuracy" : NULL))
        sc_fatal("%s", sc_error());
    char arch[128];
    checkpoint_arch_string(m, arch, sizeof arch);
    printf("model %s: %zu parameters; %ld steps (%d epochs x %ld batches of %d images)\n", arch,
           model_num_params(m), total, epochs_total, bpe, N);
    fflush(stdout);

    Progress pg;
    progress_init(&pg, stderr, 30.0, t->step);
    int rc = 0;
    StepMetrics sm = {0};
    double top1 = -1, top5 = -1, t_run = sc_now();
    while (t->step < total) {
        double t0 = sc_now();
        const int *labels;
        const float *x = loader_next(L, &labels);
        if (!x) {
            progress_message(&pg, "simclr: error: %s", sc_error());
            rc = 1;
            break;
        }
        TrainStats st;
        int src = trainer_step(t, x, labels, &st);
        if (src) {
            if (src == TRAIN_NONFINITE)
                progress_message(&pg, "simclr: error: the loss is not finite at step %ld: stopping "
                                 "(try a lower --lr)", t->step + 1);
            else
                progress_message(&pg, "simclr: error: %s", sc_error());
            rc = 1;
            break;
        }
        long step = t->step;
        sm = (StepMetrics){step, (int)((step - 1) / bpe), st.loss, st.top1, st.top5, st.lr,
                           N / (sc_now() - t0)};
        if (run_folder_step(&rf, &sm, fo.log_every)) {
            progress_message(&pg, "simclr: error: %s", sc_error());
            rc = 1;
            break;
        }
        progress_update(&pg, &sm, epochs_total, total, step == total);
        int epoch_end = step % bpe == 0 || step == total;
        if (epoch_end) {
            long ep = (step + bpe - 1) / bpe;
            if (step == total || (fo.eval_every > 0 && ep % fo.eval_every == 0)) {
                if (test_accuracy(m, test, &ac, N, K, &top1, &top5)) {
                    progress_message(&pg, "simclr: error: test split: %s", sc_error());
                    rc = 1;
                    break;
                }
                if (runlog_eval(rf.log, step, (int)(ep - 1), "test", top1, top5)) {
                    progress_message(&pg, "simclr: error: %s", sc_error());
                    rc = 1;
                    break;
                }
                progress_message(&pg, "epoch %ld: test top-1 %.2f%%  top-5 %.2f%%", ep, 100 * top1,
                                 100 * top5);
            }
            if (run_folder_epoch_end(&rf, t, step)) {
                progress_message(&pg, "simclr: error: %s", sc_error());
                rc = 1;
                break;
            }
        }
        if (stop_signal || (fo.stop_after > 0 && step >= fo.stop_after && step < total)) {
            if (run_folder_stop(&rf, t, step, epoch_end, stop_signal != 0, &pg)) {
                progress_message(&pg, "simclr: error: %s", sc_error());
                rc = 1;
                break;
            }
            rc = stop_signal ? 130 : 0;
            break;
        }
    }
    progress_end(&pg);
    run_folder_close(&rf);
    if (rc == 0 && t->step >= total) {
        if (top1 < 0 && test_accuracy(m, test, &ac, N, K, &top1, &top5)) /* resumed a finished run */
            sc_fatal("test split: %s", sc_error());
        if (save_torch(run_path(dir, "model.safetensors"), m, cfg)) sc_fatal("%s", sc_error());
        printf("done: %ld steps in %.1fs; test top-1 %.2f%%  top-5 %.2f%% (%zu test images)\n"
               "checkpoint: %s; for PyTorch: %s\n", t->step, sc_now() - t_run, 100 * top1,
               100 * top5, dataset_size(test), last, run_path(dir, "model.safetensors"));
        if (fo.json) {
            EvalJson j;
            if (eval_json_begin(&j, fo.json)) sc_fatal("--json: %s", sc_error());
            eval_json_str(&j, "command", "finetune");
            eval_json_num(&j, "top1", top1);
            eval_json_num(&j, "top5", top5);
            eval_json_str(&j, "init", fo.checkpoint ? fo.checkpoint : "random");
            eval_json_num(&j, "n_labels", (double)nsub);
            eval_json_num(&j, "n_train_split", (double)nall);
            eval_json_num(&j, "n_test", (double)dataset_size(test));
            eval_json_num(&j, "classes", K);
            eval_json_num(&j, "steps", (double)t->step);
            eval_json_num(&j, "final_loss", sm.loss);
            eval_json_raw(&j, "options", cfg);
            if (eval_json_end(&j)) sc_fatal("--json: %s", sc_error());
        }
    }
    loader_free(L);
    trainer_free(t);
    dataset_close(ds);
    dataset_close(test);
    sc_free(sub);
    free(cfg);
    return rc;
}
