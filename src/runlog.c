/* runlog.c - see runlog.h. */
#include "runlog.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "recipe.h"

struct RunLog {
    FILE *f;
    char *path;
    TbWriter *tb; /* NULL, or the TensorBoard mirror of every line */
    char acc_tag[2][96]; /* the TensorBoard tags of acc_top1, acc_top5 */
};

/* Prints a double as JSON: %.9g, with non-finite values as null (JSON has no NaN). */
static void json_num(FILE *f, double x) {
    if (isfinite(x)) fprintf(f, "%.9g", x);
    else fputs("null", f);
}

static int cut_back(const char *path, long keep_upto) {
    if (!sc_file_exists(path)) return 0;
    char *data;
    size_t n;
    if (sc_read_file(path, &data, &n)) return -1;
    AtomicFile af;
    if (sc_atomic_open(&af, path)) {
        free(data);
        return -1;
    }
    char *line = data;
    while (*line) {
        char *nl = strchr(line, '\n');
        if (!nl) break; /* a partial last line (crash while writing): dropped */
        *nl = 0;
        char v[64];
        if (json_get(line, "step", v, sizeof v) == 0 && atol(v) <= keep_upto)
            fprintf(af.f, "%s\n", line);
        line = nl + 1;
    }
    free(data);
    return sc_atomic_commit(&af);
}

int runlog_open(RunLog **log, const char *path, long keep_upto) {
    *log = NULL;
    if (keep_upto >= 0) {
        if (cut_back(path, keep_upto)) return -1;
    } else if (sc_write_file_atomic(path, "", 0))
        return -1;
    FILE *f = fopen(path, "a");
    if (!f) return sc_error_set("%s: cannot open for appending", path);
    RunLog *l = calloc(1, sizeof *l);
    l->f = f;
    l->path = sc_strdup(path);
    *log = l;
    return 0;
}

int runlog_step(RunLog *l, const StepMetrics *m) {
    fprintf(l->f, "{\"step\": %ld, \"epoch\": %d, \"loss\": ", m->step, m->epoch);
    json_num(l->f, m->loss);
    fputs(", \"acc_top1\": ", l->f);
    json_num(l->f, m->top1);
    fputs(", \"acc_top5\": ", l->f);
    json_num(l->f, m->top5);
    fputs(", \"lr\": ", l->f);
    json_num(l->f, m->lr);
    fputs(", \"views_per_s\": ", l->f);
    double vps = isfinite(m->views_per_s) ? m->views_per_s : 0.0;
    fprintf(l->f, "%.1f", vps);
    if (m->has_probe) {
        fputs(", \"probe_top1\": ", l->f);
        json_num(l->f, m->probe_top1);
    }
    fputs("}\n", l->f);
    if (ferror(l->f)) return sc_error_set("%s: write failed: %s", l->path, strerror(errno));
    if (l->tb) { /* the same values (views/s rounded as in the file) */
        const char *tags[5] = {"train/loss", l->acc_tag[0], l->acc_tag[1], "train/lr",
                               "train/views_per_s"};
        double v[5] = {m->loss, m->top1, m->top5, m->lr, round(vps * 10) / 10};
        for (int k = 0; k < 5; k++)
            if (tb_scalar(l->tb, tags[k], m->step, v[k])) return -1;
        if (m->has_probe && isfinite(m->probe_top1) && tb_scalar(l->tb, "train/probe_top1", m->step, m->probe_top1))
            return -1;
    }
    return 0;
}

int runlog_eval(RunLog *l, long step, int epoch, const char *name, double top1, double top5) {
    fprintf(l->f, "{\"step\": %ld, \"epoch\": %d, \"%s_top1\": ", step, epoch, name);
    json_num(l->f, top1);
    fprintf(l->f, ", \"%s_top5\": ", name);
    json_num(l->f, top5);
    fputs("}\n", l->f);
    fflush(l->f);
    if (ferror(l->f)) return sc_error_set("%s: write failed: %s", l->path, strerror(errno));
    if (l->tb) {
        char tag[96];
        snprintf(tag, sizeof tag, "eval/%s_top1", name);
        if (tb_scalar(l->tb, tag, step, top1)) return -1;
        snprintf(tag, sizeof tag, "eval/%s_top5", name);
        if (tb_scalar(l->tb, tag, step, top5) || tb_flush(l->tb)) return -1;
    }
    return 0;
}

void runlog_set_tensorboard(RunLog *l, TbWriter *tb, const char *accuracy) {
    tb_close(l->tb);
    l->tb = tb;
    snprintf(l->acc_tag[0], sizeof l->acc_tag[0], "%s_top1", accuracy);
    snprintf(l->acc_tag[1], sizeof l->acc_tag[1], "%s_top5", accuracy);
}

int runlog_flush(RunLog *l) {
    if (fflush(l->f) != 0 || ferror(l->f))
        return sc_error_set("%s: write failed: %s", l->path, strerror(errno));
    if (l->tb && tb_flush(l->tb)) return -1;
    return 0;
}

TbWriter *runlog_tensorboard(RunLog *l) { return l ? l->tb : NULL; }

void runlog_close(RunLog *l) {
    if (!l) return;
    fclose(l->f);
    tb_close(l->tb);
    free(l->path);
    free(l);
}

/* ---- reading ----------------------------------------------------------------------------- */

/* Appends v at index n of one of a group of arrays that share the capacity *cap (all of them
 * are pushed for every line, the group's last with last = 1, which records the new capacity):
 * geometric growth, so reading a long run is linear in its lines. */
static void push(double **a, long n, long *cap, double v, int last) {
    if (n >= *cap) {
        long grown = *cap < 64 ? 64 : 2 * *cap;
        *a = sc_xrealloc(*a, (size_t)grown * sizeof **a);
        if (last) *cap = grown;
    }
    (*a)[n] = v;
}

static double getd(const char *line, const char *key) {
    char v[64];
    if (json_get(line, key, v, sizeof v)) return NAN;
    if (!strcmp(v, "null")) return NAN;
    return strtod(v, NULL);
}

int metrics_read(Metrics *m, const char *path) {
    memset(m, 0, sizeof *m);
    char *data;
    size_t n;
    if (sc_read_file(path, &data, &n)) return -1;
    char *line = data;
    long lineno = 0;
    while (*line) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        lineno++;
        char v[64];
        if (*line && json_get(line, "step", v, sizeof v) == 0) {
            double step = strtod(v, NULL), epoch = getd(line, "epoch");
            char tmp[64];
            if (json_get(line, "loss", tmp, sizeof tmp) == 0) {
                push(&m->step, m->n, &m->cap, step, 0);
                push(&m->epoch, m->n, &m->cap, epoch, 0);
                push(&m->loss, m->n, &m->cap, getd(line, "loss"), 0);
                push(&m->top1, m->n, &m->cap, getd(line, "acc_top1"), 0);
                push(&m->top5, m->n, &m->cap, getd(line, "acc_top5"), 0);
                push(&m->lr, m->n, &m->cap, getd(line, "lr"), 0);
                push(&m->vps, m->n, &m->cap, getd(line, "views_per_s"), 0);
                push(&m->probe, m->n, &m->cap, getd(line, "probe_top1"), 1);
                m->n++;
            } else if (json_get(line, "knn_top1", tmp, sizeof tmp) == 0) {
                push(&m->e_step, m->ne, &m->ecap, step, 0);
                push(&m->e_epoch, m->ne, &m->ecap, epoch, 0);
                push(&m->e_top1, m->ne, &m->ecap, getd(line, "knn_top1"), 0);
                push(&m->e_top5, m->ne, &m->ecap, getd(line, "knn_top5"), 1);
                m->ne++;
            }
        } else if (*line && nl) {
            free(data);
            metrics_free(m);
            return sc_error_set("%s:%ld: not a metrics line (expected a JSON object with \"step\")",
                                path, lineno);
        }
        if (!nl) break;
        line = nl + 1;
    }
    free(data);
    return 0;
}

void metrics_free(Metrics *m) {
    double **a[] = {&m->step, &m->epoch, &m->loss, &m->top1, &m->top5, &m->lr, &m->vps, &m->probe,
                    &m->e_step, &m->e_epoch, &m->e_top1, &m->e_top5};
    for (size_t i = 0; i < sizeof a / sizeof *a; i++) {
        free(*a[i]);
        *a[i] = NULL;
    }
    m->n = m->ne = 0;
}

/* ---- progress ---------------------------------------------------------------------------- */

void format_duration(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0) {
        snprintf(buf, n, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60) snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, n, "%lds", t);
}

void progress_init(Progress *p, FILE *f, double interval, long step_start) {
    memset(p, 0, sizeof *p);
    p->f = f;
    p->tty = isatty(fileno(f));
    p->interval = interval;
    p->t_start = sc_now();
    p->last_print = -1e30;
    p->step_start = step_start;
}

void progress_update(Progress *p, const StepMetrics *m, int epochs, long steps_total, int force) {
    double now = sc_now();
    double gap = p->tty ? 0.25 : p->interval;
    if (!force && now - p->last_print < gap) return;
    p->last_print = now;
    long done = m->step - p->step_start;
    double eta = done > 0 ? (now - p->t_start) / done * (steps_total - m->step) : NAN;
    char etas[32];
    format_duration(etas, sizeof etas, eta);
    char line[256], probe[32] = "";
    if (m->has_probe) snprintf(probe, sizeof probe, "  probe %.3f", m->probe_top1);
    snprintf(line, sizeof line,
             "epoch %d/%d  step %ld/%ld  loss %.4f  top1 %.3f  top5 %.3f%s  lr %.3g  %.0f views/s  ETA %s",
             m->epoch + 1, epochs, m->step, steps_total, m->loss, m->top1, m->top5, probe, m->lr,
             m->views_per_s, etas);
    if (p->tty) {
        fprintf(p->f, "\r%s\033[K", line);
        p->line_open = 1;
    } else
        fprintf(p->f, "%s\n", line);
    fflush(p->f);
}

void progress_message(Progress *p, const char *fmt, ...) {
    if (p->line_open) {
        fputc('\n', p->f);
        p->line_open = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->f, fmt, ap);
    va_end(ap);
    fputc('\n', p->f);
    fflush(p->f);
}

void progress_end(Progress *p) {
    if (p->line_open) fputc('\n', p->f);
    p->line_open = 0;
    fflush(p->f);
}
