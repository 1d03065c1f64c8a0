/* cmd_plot.c - `simclr plot runs/NAME`: the training curves of a run as a PNG. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "checkpoint.h"
#include "cli.h"
#include "image.h"
#include "plot.h"
#include "runlog.h"

SIMCLR_COMMAND(cmd_plot, "plot", "render a run's loss, contrastive accuracy, lr and kNN curves to PNG")

/* --table FILE: one line per setting, "name<TAB>knn top-1<TAB>linear top-1" (percent; "-" for
 * none): both accuracies against the setting's row number (tools/ablate.sh writes it). */
static int plot_table(const char *path, const char *out, const char *title) {
    FILE *f = fopen(path, "r");
    if (!f) return sc_error_set("--table %s: cannot open", path);
    double x[256], knn[256], lin[256];
    long n = 0;
    char line[1024];
    while (fgets(line, sizeof line, f) && n < 256) {
        char name[512], a[64], b[64];
        if (line[0] == '#' || sscanf(line, "%511[^\t]\t%63s\t%63s", name, a, b) != 3) continue;
        char *e1, *e2;
        knn[n] = strtod(a, &e1);
        lin[n] = strtod(b, &e2);
        if (e1 == a) knn[n] = NAN;
        if (e2 == b) lin[n] = NAN;
        x[n] = (double)(n + 1);
        n++;
    }
    fclose(f);
    if (n == 0) return sc_error_set("--table %s: no line 'name<TAB>knn<TAB>linear'", path);
    Canvas c;
    canvas_init(&c, 900, 520, (Color){255, 255, 255});
    PlotSeries s[2] = {{x, knn, n, {31, 119, 180}, "kNN top-1 (%)", 2, 1},
                       {x, lin, n, {214, 39, 40}, "linear top-1 (%)", 2, 1}};
    plot_panel(&c, 10, 10, 880, 500, title ? title : "top-1 per setting", "setting (row of the table)",
               s, 2, "no results");
    int rc = image_write_png(out, c.px, c.w, c.h, 3);
    canvas_free(&c);
    if (!rc) printf("%s: %ld settings -> %s\n", path, n, out);
    return rc;
}

int cmd_plot(int argc, char **argv) {
    const char *output = NULL, *title = NULL, *table = NULL;
    Opt own[] = {{"output", OPT_STR, &output, "PNG file (default: RUN/curves.png)", .output = 1},
                 {"title", OPT_STR, &title, "title above the charts (default: the run folder)"},
                 {"table", OPT_STR, &table, "instead of a run: a table 'name<TAB>knn<TAB>linear' "
                  "(tools/ablate.sh) drawn as top-1 per setting (needs --output)"},
                 {0}};
    Opt *tables[] = {own};
    const char *pos[1];
    int npos = 1;
    if (opts_parse("plot", "render a run's metrics (RUN/metrics.jsonl or a metrics file) to PNG: "
                   "simclr plot RUN [--output F]",
                   argc, argv, tables, 1, pos, &npos))
        sc_fatal("%s", sc_error());
    if (table) {
        if (!output) sc_fatal("--table: give --output FILE.png");
        if (npos) sc_fatal("--table: give no run folder");
        if (plot_table(table, output, title)) sc_fatal("%s", sc_error());
        return 0;
    }
    if (npos != 1) sc_fatal("plot: give the run folder (or its metrics.jsonl): simclr plot runs/NAME");
    if (!sc_file_exists(pos[0])) sc_fatal("plot: %s: no such run folder or metrics file", pos[0]);
    const char *metrics = sc_is_dir(pos[0]) ? run_path(pos[0], "metrics.jsonl") : pos[0];
    char out[4096];
    if (output) snprintf(out, sizeof out, "%s", output);
    else if (sc_is_dir(pos[0])) snprintf(out, sizeof out, "%s", run_path(pos[0], "curves.png"));
    else sc_fatal("plot: give --output when the input is a metrics file");
    if (!sc_file_exists(metrics)) sc_fatal("%s: no such file (is %s a pretrain run folder?)", metrics, pos[0]);
    Metrics m;
    if (metrics_read(&m, metrics)) sc_fatal("%s", sc_error());
    Canvas c;
    if (plot_metrics(&m, title ? title : pos[0], &c)) sc_fatal("%s: %s", metrics, sc_error());
    if (image_write_png(out, c.px, c.w, c.h, 3)) sc_fatal("%s", sc_error());
    printf("%s: %ld steps, %ld evaluations -> %s (%dx%d)\n", metrics, m.n, m.ne, out, c.w, c.h);
    canvas_free(&c);
    metrics_free(&m);
    return 0;
}
