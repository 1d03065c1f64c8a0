/* run_cli.c - see run_cli.h. */
#include "run_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "common.h"
#include "image.h"
#include "plot.h"
#include "recipe.h"
#include "runlog.h"
#include "safetensors.h"
#include "tensorboard.h"

void run_tables_init(RunTables *rt, ModelConfig *mc, TrainOptions *to, DatasetConfig *dc,
                     AugmentConfig *ac, LoaderConfig *lc) {
    model_config_default(mc);
    train_options_default(to);
    dataset_config_default(dc);
    augment_config_default(ac);
    loader_config_default(lc);
    model_opts(rt->model, mc);
    optim_opts(rt->optim, to);
    dataset_opts(rt->data, dc);
    augment_opts(rt->aug, ac);
    loader_opts(rt->loader, lc);
}

char *run_config_json(Opt **tables, int nt) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    opts_write_json(f, tables, nt);
    fclose(f);
    if (n && buf[n - 1] == '\n') buf[n - 1] = 0;
    return buf;
}

int run_save_checkpoint(const char *dir, Trainer *t, const char *cfg, long epoch_file) {
    const char *last = run_path(dir, "last.safetensors");
    if (epoch_file >= 0) {
        const char *ep = run_epoch_path(dir, epoch_file);
        if (trainer_save(t, ep, cfg)) return -1;
        /* last = a hard link to the epoch file, swapped in atomically; a copy when links fail */
        const char *tmp = run_path(dir, "last.safetensors.tmp.link");
        unlink(tmp);
        if (link(ep, tmp) == 0 && rename(tmp, last) == 0) return 0;
        unlink(tmp);
    }
    return trainer_save(t, last, cfg);
}

void run_write_plot(const char *dir) {
    Metrics mt;
    if (metrics_read(&mt, run_path(dir, "metrics.jsonl"))) return;
    Canvas c;
    if (plot_metrics(&mt, dir, &c) == 0) {
        if (image_write_png(run_path(dir, "curves.png"), c.px, c.w, c.h, 3))
            sc_warn("%s", sc_error());
        canvas_free(&c);
    }
    metrics_free(&mt);
}

char *run_saved_config(const char *checkpoint) {
    SafeTensors *st;
    if (safetensors_open(&st, checkpoint)) return NULL;
    const char *c = safetensors_meta(st, "config");
    char *r = c ? sc_strdup(c) : NULL;
    safetensors_close(st);
    if (!r) sc_error_set("%s has no saved configuration (not a checkpoint of a simclr run)", checkpoint);
    return r;
}

/* ---- claiming the folder, the configuration ---------------------------------------------- */

int run_folder_claim(const char *dir, int resume, int force) {
    /* the descriptor stays open (and the lock held) until the process exits */
    if (run_dir_lock(dir) < 0) { /* "--out DIR: in use by ..." */
        char why[1024];
        snprintf(why, sizeof why, "%s", sc_error());
        return sc_error_set("%s %s", resume ? "--resume" : "--out", why);
    }
    if (!resume && run_dir_prepare(dir, force)) return -1;
    return 0;
}

int run_write_config(const char *dir, const char *cfg) {
    size_t n = strlen(cfg);
    char *withnl = sc_xrealloc(NULL, n + 2);
    memcpy(withnl, cfg, n);
    withnl[n] = '\n';
    int rc = sc_write_file_atomic(run_path(dir, "config.json"), withnl, n + 1);
    free(withnl);
    return rc;
}

static int name_in(const char *name, const char *const *list) {
    for (; list && *list; list++)
        if (!strcmp(*list, name)) return 1;
    return 0;
}

/* 1 when the command-line value of o differs from its value in the saved configuration (or the
 * configuration lacks it). o->dst is left as given. */
static int differs_from_saved(Opt *o, const char *saved_json) {
    char saved[4096];
    if (json_get(saved_json, o->name, saved, sizeof saved)) return 1;
    if (o->type == OPT_STR) {
        const char *now = *(const char **)o->dst;
        int saved_null = !strcmp(saved, "null") || !saved[0];
        return now ? saved_null || strcmp(now, saved) : !saved_null;
    }
    unsigned char keep[sizeof(long long) > sizeof(double) ? sizeof(long long) : sizeof(double)];
    size_t n = o->type == OPT_INT64 ? sizeof(long long) : o->type == OPT_FLOAT ? sizeof(float)
               : o->type == OPT_DOUBLE ? sizeof(double) : sizeof(int);
    memcpy(keep, o->dst, n);
    int differs = opt_assign(o, saved) != 0 || memcmp(keep, o->dst, n) != 0;
    memcpy(o->dst, keep, n);
    return differs;
}

int run_resume_options(Opt **tables, int nt, const char *dir, const char *saved,
                       const char *const *control, const char *const *harmless,
                       int force_override) {
    char changed[512] = "";
    for (int t = 0; t < nt; t++)
        for (Opt *o = tables[t]; o->name; o++) {
            if (!o->set || name_in(o->name, control) || name_in(o->name, harmless)) continue;
            if (!differs_from_saved(o, saved)) continue;
            size_t k = strlen(changed);
            snprintf(changed + k, sizeof changed - k, "%s--%s", k ? ", " : "", o->name);
        }
    if (changed[0] && !force_override)
        return sc_error_set("--resume %s: %s would change the run's trajectory (its saved values "
                            "are in %s/config.json); give --force-override to continue with the "
                            "new values, or start a new run with --out", dir, changed, dir);
    if (changed[0])
        sc_warn("--force-override: %s replace the run's saved values; config.json records them "
                "(the run no longer matches an uninterrupted one)", changed);
    if (opts_apply_json(tables, nt, saved, 1, control))
        return sc_error_prefix("--resume: %s: saved configuration", run_path(dir, "last.safetensors"));
    return 0;
}

int run_schedule(LrSchedule *s, const TrainOptions *to, Opt **tables, int nt, int batch, long bpe,
                 long total) {
    double warm = to->warmup_epochs;
    long long wsteps = to->warmup_steps;
    long wcount = wsteps >= 0 ? (long)wsteps : (long)(warm * bpe);
    int given = opts_was_set(tables, nt, "warmup-epochs") || opts_was_set(tables, nt, "warmup-steps");
    if (wcount > total) {
        if (given)
            return sc_error_set("--warmup-epochs/--warmup-steps: the warmup (%ld steps) is longer "
                                "than the run (%ld steps)", wcount, total);
        wsteps = total / 10;
        if (wsteps > 0)
            printf("note: the recipe's warmup (%g epochs) is longer than the run: warming up over "
                   "%lld steps (10%%)\n", warm, wsteps);
        else
            printf("note: the recipe's warmup (%g epochs) is longer than the run: no warmup (the "
                   "run has fewer than 10 steps)\n", warm);
    } else if (2 * wcount > total) {
        sc_warn("the warmup (%ld of %ld steps%s) takes more than half of the run: the learning "
                "rate peaks at step %ld, then decays%s", wcount, total,
                wsteps >= 0 ? "" : " from --warmup-epochs", wcount,
                given ? "" : " (the recipe's default; give --warmup-epochs to shorten it)");
    }
    return lr_schedule_init(s, to->lr, to->lr_scaling, batch, warm, wsteps, bpe, total, to->schedule);
}

/* ---- metrics, checkpoints, stops --------------------------------------------------------- */

int run_folder_open_log(RunFolder *rf, long keep_upto, const char *tb_accuracy) {
    if (runlog_open(&rf->log, run_path(rf->dir, "metrics.jsonl"), keep_upto)) return -1;
    if (tb_accuracy) {
        TbWriter *tb;
        if (tb_open(&tb, run_path(rf->dir, "tensorboard"), keep_upto))
            return sc_error_prefix("--tensorboard");
        runlog_set_tensorboard(rf->log, tb, tb_accuracy);
    }
    return 0;
}

int run_folder_step(RunFolder *rf, const StepMetrics *sm, int log_every) {
    if (sm->step % log_every && sm->step != rf->total) return 0;
    return runlog_step(rf->log, sm);
}

int run_folder_epoch_end(RunFolder *rf, Trainer *t, long step) {
    /* the metrics first: a checkpoint never claims steps whose lines were lost */
    if (runlog_flush(rf->log)) return -1;
    long bpe = rf->steps_per_epoch, ep = (step + bpe - 1) / bpe; /* epochs completed */
    int keep = step % bpe == 0 &&
               ((rf->checkpoint_every > 0 && ep % rf->checkpoint_every == 0) || step == rf->total);
    if (run_save_checkpoint(rf->dir, t, rf->cfg, keep ? ep : -1)) return -1;
    run_write_plot(rf->dir);
    return 0;
}

int run_folder_stop(RunFolder *rf, Trainer *t, long step, int saved, int interrupted, Progress *pg) {
    if (runlog_flush(rf->log)) return -1;
    if (!saved && run_save_checkpoint(rf->dir, t, rf->cfg, -1)) return -1;
    progress_message(pg, "%s at step %ld: saved %s; continue with: simclr %s --resume %s",
                     interrupted ? "interrupted" : "stopped", step,
                     run_path(rf->dir, "last.safetensors"), rf->command, rf->dir);
    return 0;
}

void run_folder_close(RunFolder *rf) {
    runlog_close(rf->log);
    rf->log = NULL;
}
