/* test_pretrain.c - recipes, option values from JSON, the metrics log and the plot rasteriser. */
#include <unistd.h>

#include "common.h"
#include "opts.h"
#include "plot.h"
#include "recipe.h"
#include "runlog.h"
#include "test.h"

typedef struct {
    int arch, optimizer, scaling, exclude, batch, stem;
    float lr, wd, tau, blur, jitter;
    const char *out;
} Vals;

static void make_tables(Vals *v, Opt *tab) {
    memset(v, 0, sizeof *v);
    v->batch = 64;
    v->lr = 1;
    Opt t[] = {{"arch", OPT_CHOICE, &v->arch, "", "resnet18|resnet34|resnet50"},
               {"optimizer", OPT_CHOICE, &v->optimizer, "", "adam|adamw|sgd|lars"},
               {"lr-scaling", OPT_CHOICE, &v->scaling, "", "none|linear|sqrt"},
               {"exclude-bn-bias", OPT_FLAG, &v->exclude, ""},
               {"batch-size", OPT_INT, &v->batch, ""},
               {"stem", OPT_CHOICE, &v->stem, "", "imagenet|cifar"},
               {"lr", OPT_FLOAT, &v->lr, ""},
               {"weight-decay", OPT_FLOAT, &v->wd, ""},
               {"temperature", OPT_FLOAT, &v->tau, ""},
               {"blur-prob", OPT_FLOAT, &v->blur, ""},
               {"jitter-strength", OPT_FLOAT, &v->jitter, ""},
               {"out", OPT_STR, &v->out, ""},
               {0}};
    memcpy(tab, t, sizeof t);
}

TEST(recipe_sthalles_defaults) {
    Vals v;
    Opt tab[16];
    make_tables(&v, tab);
    Opt *tables[] = {tab};
    CHECK(recipe_apply(RECIPE_STHALLES, tables, 1, 96) == 0, "%s", sc_error());
    CHECK(v.arch == 0 && v.optimizer == 0 && v.scaling == 0, "arch %d opt %d", v.arch, v.optimizer);
    CHECK_CLOSE("lr", v.lr, 3e-4, 0, 1e-9);
    CHECK_CLOSE("wd", v.wd, 1e-4, 0, 1e-9);
    CHECK_CLOSE("tau", v.tau, 0.07, 0, 1e-7);
    CHECK_CLOSE("blur", v.blur, 1, 0, 0);
    CHECK(v.batch == 256, "batch %d", v.batch);
    CHECK(!opts_was_set(tables, 1, "lr"), "a recipe value does not count as given");
}

TEST(recipe_paper_small_and_large) {
    Vals v;
    Opt tab[16];
    make_tables(&v, tab);
    Opt *tables[] = {tab};
    CHECK(recipe_apply(RECIPE_PAPER, tables, 1, 32) == 0, "%s", sc_error());
    CHECK(v.arch == 2 && v.optimizer == 3 && v.scaling == 1 && v.exclude == 1 && v.stem == 1,
          "arch %d opt %d scaling %d exclude %d stem %d", v.arch, v.optimizer, v.scaling, v.exclude,
          v.stem);
    /* Appendix B.9 / google's CIFAR-10 command: lr 1.0 per 256 images, batch 512, wd 1e-6 */
    CHECK_CLOSE("lr small", v.lr, 1.0, 0, 0);
    CHECK(v.batch == 512, "batch small %d", v.batch);
    CHECK_CLOSE("wd", v.wd, 1e-6, 0, 1e-10);
    CHECK_CLOSE("tau small", v.tau, 0.5, 0, 0);
    CHECK_CLOSE("blur small", v.blur, 0, 0, 0);
    CHECK_CLOSE("jitter small", v.jitter, 0.5, 0, 0);
    make_tables(&v, tab);
    CHECK(recipe_apply(RECIPE_PAPER, tables, 1, 96) == 0, "%s", sc_error());
    CHECK_CLOSE("tau large", v.tau, 0.1, 0, 1e-7);
    CHECK_CLOSE("lr large", v.lr, 0.3, 0, 1e-7);
    CHECK(v.batch == 64, "batch large: left alone (%d)", v.batch);
    CHECK_CLOSE("blur large", v.blur, 0.5, 0, 0);
    CHECK(v.stem == 0, "stem %d", v.stem);
}

TEST(recipe_blog_and_google_head) {
    Vals v;
    Opt tab[16];
    make_tables(&v, tab);
    int out_dim = 128, head_bn = 0;
    Opt extra[] = {{"out-dim", OPT_INT, &out_dim, ""},
                   {"head-bn", OPT_CHOICE, &head_bn, "", "off|on|all"},
                   {0}};
    Opt *tables[] = {tab, extra};
    CHECK(recipe_apply(RECIPE_BLOG, tables, 2, 96) == 0, "%s", sc_error());
    CHECK(out_dim == 64, "blog: z of 64 dimensions, got %d", out_dim);
    CHECK_CLOSE("blog tau", v.tau, 0.5, 0, 0);
    CHECK_CLOSE("blog wd", v.wd, 0, 0, 0);
    CHECK_CLOSE("blog blur", v.blur, 0.5, 0, 0);
    CHECK(v.optimizer == 0, "blog: adam");
    CHECK_CLOSE("blog lr (sthalles')", v.lr, 3e-4, 0, 1e-9);
    CHECK(head_bn == 0, "blog: no BN in the head");
    make_tables(&v, tab);
    CHECK(recipe_apply(RECIPE_PAPER, tables, 2, 96) == 0, "%s", sc_error());
    CHECK(head_bn == 2, "paper: google's head (BN on every layer)");
    CHECK(!strcmp(recipe_stl10_split(RECIPE_STHALLES), "unlabeled") &&
          !strcmp(recipe_stl10_split(RECIPE_BLOG), "train+unlabeled") &&
          !strcmp(recipe_stl10_split(RECIPE_PAPER), "train+unlabeled"),
          "STL-10 pretraining splits");
    CHECK(recipe_apply(7, tables, 2, 96) == -1, "unknown recipe");
}

TEST(recipe_explicit_option_wins) {
    Vals v;
    Opt tab[16];
    make_tables(&v, tab);
    Opt *tables[] = {tab};
    char *argv[] = {"pretrain", "--lr", "0.5", "--temperature=0.2", "--no-exclude-bn-bias"};
    CHECK(opts_parse("pretrain", "", 5, argv, tables, 1, NULL, NULL) == 0, "%s", sc_error());
    CHECK(recipe_apply(RECIPE_PAPER, tables, 1, 32) == 0, "%s", sc_error());
    CHECK_CLOSE("lr", v.lr, 0.5, 0, 0);
    CHECK_CLOSE("tau", v.tau, 0.2, 0, 1e-7);
    CHECK(v.exclude == 0, "explicit --no-exclude-bn-bias kept");
    CHECK(v.optimizer == 3, "the rest comes from the recipe");
}

TEST(config_json_roundtrip) {
    Vals v;
    Opt tab[16];
    make_tables(&v, tab);
    Opt *tables[] = {tab};
    recipe_apply(RECIPE_PAPER, tables, 1, 32);
    v.lr = 0.123456789f;
    v.out = "runs/x \"q\"";
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    opts_write_json(f, tables, 1);
    fclose(f);
    Vals w;
    Opt tab2[16];
    make_tables(&w, tab2);
    Opt *tables2[] = {tab2};
    CHECK(opts_apply_json(tables2, 1, buf, 0, NULL) == 0, "%s", sc_error());
    CHECK(w.lr == v.lr, "float round trip: %.9g vs %.9g", w.lr, v.lr);
    CHECK(w.arch == v.arch && w.optimizer == v.optimizer && w.exclude == v.exclude &&
              w.stem == v.stem && w.batch == v.batch,
          "choices and flags round trip");
    CHECK(w.out && !strcmp(w.out, v.out), "string with quotes: %s", w.out ? w.out : "(null)");
    char val[64];
    CHECK(json_get(buf, "optimizer", val, sizeof val) == 0 && !strcmp(val, "lars"), "json_get");
    CHECK(json_get(buf, "nope", val, sizeof val) != 0, "absent key");
    CHECK(opts_apply_json(tables2, 1, "{\"lr\": }", 0, NULL) != 0, "malformed JSON refused");
    CHECK(opts_apply_json(tables2, 1, "{\"optimizer\": \"rmsprop\"}", 0, NULL) != 0 &&
              strstr(sc_error(), "--optimizer"),
          "bad value names the option: %s", sc_error());
    free(buf);
}

TEST(runlog_write_cut_read) {
    char path[] = "/tmp/simclr_test_metrics_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    RunLog *l;
    CHECK(runlog_open(&l, path, -1) == 0, "%s", sc_error());
    for (int s = 1; s <= 10; s++) {
        StepMetrics m = {s, (s - 1) / 4, 5.0 / s, 0.1 * s, 0.2, 1e-3, 100};
        runlog_step(l, &m);
        if (s % 4 == 0) runlog_eval(l, s, (s - 1) / 4, "knn", 0.5, 0.9);
    }
    StepMetrics bad = {11, 2, NAN, 0, 0, 0, 0};
    runlog_step(l, &bad);
    runlog_close(l);
    Metrics m;
    CHECK(metrics_read(&m, path) == 0, "%s", sc_error());
    CHECK(m.n == 11 && m.ne == 2, "n %ld ne %ld", m.n, m.ne);
    if (m.n == 11) {
        CHECK_CLOSE("loss[2]", m.loss[2], 5.0 / 3, 1e-8, 0);
        CHECK(isnan(m.loss[10]), "NaN loss written as null, read back as NaN");
    }
    metrics_free(&m);
    /* resume at step 6: lines with step <= 6 stay, then appending continues */
    CHECK(runlog_open(&l, path, 6) == 0, "%s", sc_error());
    StepMetrics m7 = {7, 1, 1, 0, 0, 0, 0};
    runlog_step(l, &m7);
    runlog_close(l);
    CHECK(metrics_read(&m, path) == 0, "%s", sc_error());
    CHECK(m.n == 7 && m.ne == 1, "after cut: n %ld ne %ld", m.n, m.ne);
    metrics_free(&m);
    FILE *f = fopen(path, "w");
    fputs("{\"step\": 1, \"loss\": 2}\nnot json\n", f);
    fclose(f);
    CHECK(metrics_read(&m, path) != 0 && strstr(sc_error(), ":2:"), "bad line named: %s", sc_error());
    unlink(path);
}

TEST(font_and_text) {
    const char *all = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:-+%()/_=e";
    for (const char *s = all; *s; s++) CHECK(font_has_glyph(*s), "glyph '%c'", *s);
    Canvas c;
    canvas_init(&c, 100, 20, (Color){255, 255, 255});
    int w = canvas_text(&c, 1, 1, "1.5", 2, (Color){0, 0, 0});
    CHECK(w == text_width("1.5", 2), "width %d vs %d", w, text_width("1.5", 2));
    long ink = 0;
    for (int i = 0; i < 100 * 20; i++) ink += c.px[3 * i] == 0;
    CHECK(ink > 20 && ink < 300, "ink %ld", ink);
    /* nothing drawn outside the text box */
    long outside = 0;
    for (int y = 0; y < 20; y++)
        for (int x = 0; x < 100; x++)
            if ((x < 1 || x > w || y < 1 || y > 17) && c.px[3 * (y * 100 + x)] == 0) outside++;
    CHECK(outside == 0, "ink outside the text box: %ld", outside);
    canvas_free(&c);
}

TEST(nice_ticks_values) {
    double t[32];
    int n = nice_ticks(0, 1, 5, t, 32);
    CHECK(n == 6 && fabs(t[1] - 0.2) < 1e-12, "n %d t1 %g", n, n > 1 ? t[1] : 0);
    n = nice_ticks(3e-6, 2.9e-4, 5, t, 32);
    CHECK(n >= 4 && n <= 8, "n %d", n);
    for (int i = 0; i < n; i++) CHECK(t[i] >= 3e-6 - 1e-12 && t[i] <= 2.9e-4 + 1e-12, "in range");
    n = nice_ticks(1, 1, 5, t, 32);
    CHECK(n == 1, "degenerate range: n %d", n);
}

TEST(plot_metrics_draws_lines) {
    Metrics m = {0};
    double step[3] = {1, 2, 3}, loss[3] = {5, 4, 3}, acc[3] = {0.1, 0.2, 0.3}, lr[3] = {1, 1, 1};
    m.n = 3;
    m.step = step;
    m.loss = loss;
    m.top1 = acc;
    m.top5 = acc;
    m.lr = lr;
    Canvas c;
    CHECK(plot_metrics(&m, "test", &c) == 0, "%s", sc_error());
    /* the loss line is blue (31,100,200): some pixels of that colour in the top-left panel */
    long blue = 0;
    for (int y = 0; y < c.h / 2; y++)
        for (int x = 0; x < c.w / 2; x++) {
            uint8_t *p = c.px + 3 * ((size_t)y * c.w + x);
            blue += p[0] == 31 && p[1] == 100 && p[2] == 200;
        }
    CHECK(blue > 100, "blue pixels %ld", blue);
    canvas_free(&c);
    Metrics empty = {0};
    CHECK(plot_metrics(&empty, NULL, &c) != 0, "no data is an error");
}
