/* runlog.h - the metrics file of a run and the progress display.
 *
 * metrics.jsonl holds one JSON object per line:
 *   training step:  {"step": 12, "epoch": 0, "loss": 5.1, "acc_top1": 0.1, "acc_top5": 0.3,
 *                    "lr": 0.0003, "views_per_s": 310.2[, "probe_top1": 0.4]}
 *   evaluation:     {"step": 234, "epoch": 1, "knn_top1": 0.71, "knn_top5": 0.95}
 * "step" counts optimizer steps done (1 after the first), "epoch" is 0-based. Values are printed
 * with %.9g so that a float round-trips: two runs can be compared line by line (views_per_s
 * aside). On resume the file is cut back to the checkpoint's step (runlog_open with keep_upto),
 * so an interrupted-and-resumed run leaves the same lines as an uninterrupted one.
 *
 * The progress display writes one live line (\r, on a terminal) or plain lines at most every
 * `interval` seconds (off a terminal: logs, CI).
 */
#ifndef SIMCLR_RUNLOG_H
#define SIMCLR_RUNLOG_H

#include <stdio.h>

#include "tensorboard.h"

typedef struct {
    long step;
    int epoch;
    double loss, top1, top5, lr, views_per_s;
    int has_probe;     /* --online-probe: probe_top1 is written (null when no labelled row) */
    double probe_top1; /* the online probe's accuracy on this batch before its update */
} StepMetrics;

typedef struct RunLog RunLog;

/* Opens path for appending. keep_upto < 0: start a new file (an old one is replaced).
 * keep_upto >= 0: keep the existing lines whose "step" <= keep_upto (rewritten atomically),
 * drop the rest, then append. */
int runlog_open(RunLog **log, const char *path, long keep_upto);
int runlog_step(RunLog *log, const StepMetrics *m);
int runlog_eval(RunLog *log, long step, int epoch, const char *name, double top1, double top5);
int runlog_flush(RunLog *log);
/* Mirrors every following line into a TensorBoard event file (the log takes ownership): step
 * lines as train/loss, <accuracy>_top1, <accuracy>_top5 (pretrain: accuracy "train/contrastive",
 * finetune: "train/accuracy"), train/lr, train/views_per_s (and train/probe_top1); evaluation
 * lines as eval/<name>_top1, eval/<name>_top5; same step. accuracy is copied. */
void runlog_set_tensorboard(RunLog *log, TbWriter *tb, const char *accuracy);
/* The TensorBoard mirror (NULL when none): for more than the metrics (an image). */
TbWriter *runlog_tensorboard(RunLog *log);
void runlog_close(RunLog *log);

/* ---- reading metrics back (plot, tests) -------------------------------------------------- */
typedef struct {
    long n, cap;
    double *step, *epoch, *loss, *top1, *top5, *lr, *vps; /* training lines */
    double *probe;                                        /* probe_top1, NAN when absent */
    long ne, ecap;
    double *e_step, *e_epoch, *e_top1, *e_top5;           /* evaluation lines (knn) */
} Metrics;
int metrics_read(Metrics *m, const char *path);
void metrics_free(Metrics *m);

/* ---- progress display -------------------------------------------------------------------- */
typedef struct {
    FILE *f;
    int tty;
    double interval, last_print, t_start;
    long step_start;
    int line_open;
} Progress;
/* interval: seconds between plain lines off a terminal (the live line refreshes at most 4/s). */
void progress_init(Progress *p, FILE *f, double interval, long step_start);
/* steps_total: the run's total number of steps (for ETA). force: print regardless of time. */
void progress_update(Progress *p, const StepMetrics *m, int epochs, long steps_total, int force);
/* Prints a message on its own line (ends a live line first). */
void progress_message(Progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void progress_end(Progress *p);
/* "1h02m", "3m05s", "12s" */
void format_duration(char *buf, size_t n, double seconds);

#endif
