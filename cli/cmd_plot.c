/* cmd_plot.c - `simclr plot runs/NAME`: the training curves of a run as a PNG. */
#include <stdio.h>

#include "checkpoint.h"
#include "cli.h"
#include "image.h"
#include "plot.h"
#include "runlog.h"

SIMCLR_COMMAND(cmd_plot, "plot", "render a run's loss, contrastive accuracy, lr and kNN curves to PNG")

int cmd_plot(int argc, char **argv) {
    const char *output = NULL, *title = NULL;
    Opt own[] = {{"output", OPT_STR, &output, "PNG file (default: RUN/curves.png)", .output = 1},
                 {"title", OPT_STR, &title, "title above the charts (default: the run folder)"},
                 {0}};
    Opt *tables[] = {own};
    const char *pos[1];
    int npos = 1;
    if (opts_parse("plot", "render a run's metrics (RUN/metrics.jsonl or a metrics file) to PNG: "
                   "simclr plot RUN [--output F]",
                   argc, argv, tables, 1, pos, &npos))
        sc_fatal("%s", sc_error());
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
