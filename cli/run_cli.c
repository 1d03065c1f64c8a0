/* run_cli.c - see run_cli.h. */
#include "run_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "checkpoint.h"
#include "common.h"
#include "image.h"
#include "plot.h"
#include "runlog.h"
#include "safetensors.h"

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
