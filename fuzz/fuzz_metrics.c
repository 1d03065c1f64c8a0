/* fuzz_metrics.c - metrics.jsonl on resume and on plotting: the file is cut back to a step
 * (runlog_open with keep_upto, as pretrain --resume does), appended to, read back
 * (metrics_read) and drawn (plot_metrics, as simclr plot does). The first byte's low 7 bits are
 * the step to keep up to, its high bit asks for the (slow) plot; the rest is the file. */
#include "fuzz.h"

#include "plot.h"
#include "runlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > (1 << 16)) return 0;
    const char *p = fuzz_write("metrics.jsonl", data + 1, size - 1);
    Metrics m;
    int rc = metrics_read(&m, p);
    fuzz_check(rc);
    if (!rc) metrics_free(&m);
    RunLog *log;
    fuzz_check(rc = runlog_open(&log, p, data[0] & 0x7F));
    if (rc) return 0;
    StepMetrics sm = {(data[0] & 0x7F) + 1L, 0, 1.5, 0.25, 0.5, 1e-3, 100};
    fuzz_check(runlog_step(log, &sm));
    runlog_close(log);
    fuzz_check(rc = metrics_read(&m, p));
    if (rc) return 0;
    if (m.n < 1) abort(); /* the line just written is there */
    Canvas c;
    if ((data[0] & 0x80) && plot_metrics(&m, "fuzz", &c) == 0) canvas_free(&c);
    metrics_free(&m);
    return 0;
}
