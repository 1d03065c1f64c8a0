/* test_checkpoint.c - checkpoint files: round trip, validation against the model's tensor list,
 * corrupt files, atomic replacement, the run folder guard. */
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "common.h"
#include "safetensors.h"
#include "test.h"

#define tmp test_tmp

/* A tiny "model": conv weight, bn stats and counter, a head weight, an optimizer moment. */
typedef struct {
    float w[2 * 3 * 3 * 3], mean[2], head[4 * 2], m[2 * 3 * 3 * 3];
    int64_t nbt;
    CkTensor t[5];
} Tiny;

static void tiny_init(Tiny *x, float base) {
    for (int i = 0; i < 54; i++) x->w[i] = base + i, x->m[i] = -base - i;
    x->mean[0] = base;
    x->mean[1] = 2 * base;
    for (int i = 0; i < 8; i++) x->head[i] = base * i;
    x->nbt = (int64_t)base * 1000;
    CkTensor t[5] = {{"conv1.weight", ST_F32, 4, {2, 3, 3, 3}, x->w},
                     {"bn1.running_mean", ST_F32, 1, {2}, x->mean},
                     {"bn1.num_batches_tracked", ST_I64, 0, {0}, &x->nbt},
                     {"head.0.weight", ST_F32, 2, {4, 2}, x->head},
                     {"optim.conv1.weight.m", ST_F32, 4, {2, 3, 3, 3}, x->m}};
    memcpy(x->t, t, sizeof t);
}

TEST(roundtrip_with_metadata) {
    Tiny a, b;
    tiny_init(&a, 3);
    tiny_init(&b, 0);
    CkMeta m = {.step = 1234, .epoch = 5, .batch = 7, .seed = 42, .config_json = "{\"lr\": 0.3}"};
    snprintf(m.arch, sizeof m.arch, "tiny");
    CHECK(checkpoint_write(tmp("a.safetensors"), a.t, 5, &m) == 0, "%s", sc_error());
    CkMeta r = {0};
    CHECK(checkpoint_read(tmp("a.safetensors"), b.t, 5, &r, 0) == 0, "%s", sc_error());
    CHECK(!memcmp(a.w, b.w, sizeof a.w) && !memcmp(a.m, b.m, sizeof a.m) &&
              !memcmp(a.head, b.head, sizeof a.head) && a.nbt == b.nbt,
          "tensors round trip bit for bit");
    CHECK(r.step == 1234 && r.epoch == 5 && r.batch == 7 && r.seed == 42, "meta %ld %ld %ld",
          r.step, r.epoch, r.batch);
    CHECK(r.config_json && !strcmp(r.config_json, "{\"lr\": 0.3}"), "config %s",
          r.config_json ? r.config_json : "(null)");
    CHECK(!strcmp(r.arch, "tiny"), "arch %s", r.arch);
    ck_meta_free(&r);
    /* the file is a plain safetensors file: dtype and rank-0 int64 counter as torch writes it */
    SafeTensors *st;
    CHECK(safetensors_open(&st, tmp("a.safetensors")) == 0, "%s", sc_error());
    const StTensor *c = safetensors_find(st, "bn1.num_batches_tracked");
    CHECK(c && c->dtype == ST_I64 && c->ndim == 0, "counter is I64 []");
    CHECK(safetensors_meta(st, "format") && !strcmp(safetensors_meta(st, "format"), "pt"), "format pt");
    safetensors_close(st);
}

TEST(mismatch_is_refused_and_named) {
    Tiny a, b;
    tiny_init(&a, 1);
    tiny_init(&b, 0);
    CkMeta m = {0};
    snprintf(m.arch, sizeof m.arch, "resnet18 x1");
    checkpoint_write(tmp("b.safetensors"), a.t, 5, &m);
    /* shape */
    b.t[0].shape[0] = 4;
    CkMeta want = {0};
    snprintf(want.arch, sizeof want.arch, "resnet34 x1");
    CHECK(checkpoint_read(tmp("b.safetensors"), b.t, 5, &want, 0) != 0, "shape mismatch refused");
    CHECK(strstr(sc_error(), "conv1.weight") && strstr(sc_error(), "resnet18 x1") &&
              strstr(sc_error(), "resnet34 x1"),
          "message: %s", sc_error());
    CHECK(b.w[0] == 0, "nothing copied on failure");
    b.t[0].shape[0] = 2;
    /* missing tensor */
    snprintf(b.t[1].name, sizeof b.t[1].name, "layer9.bn.running_mean");
    CHECK(checkpoint_read(tmp("b.safetensors"), b.t, 5, NULL, 0) != 0 &&
              strstr(sc_error(), "layer9.bn.running_mean"),
          "missing tensor named: %s", sc_error());
    /* ... unless optional (a head absent from a torchvision state_dict) */
    b.t[1].optional = 1;
    CHECK(checkpoint_read(tmp("b.safetensors"), b.t, 5, NULL, 0) != 0 &&
              strstr(sc_error(), "bn1.running_mean") && strstr(sc_error(), "does not exist"),
          "extra encoder tensor in the file refused: %s", sc_error());
    CHECK(checkpoint_read(tmp("b.safetensors"), b.t, 5, NULL, CK_ALLOW_EXTRA) == 0, "%s",
          sc_error());
    /* dtype */
    tiny_init(&b, 0);
    b.t[2].dtype = ST_F32;
    CHECK(checkpoint_read(tmp("b.safetensors"), b.t, 5, NULL, 0) != 0 && strstr(sc_error(), "I64"),
          "dtype mismatch: %s", sc_error());
    /* extra head/optim tensors the caller does not ask for are fine (weights-only load) */
    tiny_init(&b, 0);
    CHECK(checkpoint_read(tmp("b.safetensors"), b.t, 3, NULL, 0) == 0, "%s", sc_error());
}

TEST(corrupt_files_refused) {
    Tiny a, b;
    tiny_init(&a, 1);
    tiny_init(&b, 0);
    CkMeta m = {0};
    checkpoint_write(tmp("c.safetensors"), a.t, 5, &m);
    char *data;
    size_t n;
    CHECK(sc_read_file(tmp("c.safetensors"), &data, &n) == 0, "read");
    /* truncated */
    sc_write_file_atomic(tmp("t.safetensors"), data, n - 5);
    CHECK(checkpoint_read(tmp("t.safetensors"), b.t, 5, NULL, 0) != 0 &&
              strstr(sc_error(), "t.safetensors"),
          "truncated: %s", sc_error());
    /* header length beyond the file */
    char *bad = malloc(n);
    memcpy(bad, data, n);
    bad[5] = 0x7f;
    sc_write_file_atomic(tmp("h.safetensors"), bad, n);
    CHECK(checkpoint_read(tmp("h.safetensors"), b.t, 5, NULL, 0) != 0, "bad header length");
    /* garbage JSON */
    memcpy(bad, data, n);
    bad[8] = '[';
    sc_write_file_atomic(tmp("j.safetensors"), bad, n);
    CHECK(checkpoint_read(tmp("j.safetensors"), b.t, 5, NULL, 0) != 0, "bad JSON");
    /* empty file, missing file */
    sc_write_file_atomic(tmp("e.safetensors"), "", 0);
    CHECK(checkpoint_read(tmp("e.safetensors"), b.t, 5, NULL, 0) != 0, "empty file");
    CHECK(checkpoint_read(tmp("none.safetensors"), b.t, 5, NULL, 0) != 0, "missing file");
    CHECK(b.w[1] == 1, "nothing copied (w[1] = %g)", b.w[1]);
    free(bad);
    free(data);
}

TEST(failed_write_keeps_old_file) {
    Tiny a;
    tiny_init(&a, 1);
    CkMeta m = {.step = 1};
    CHECK(checkpoint_write(tmp("keep.safetensors"), a.t, 5, &m) == 0, "%s", sc_error());
    /* a duplicate name makes the writer fail before anything is renamed */
    Tiny d;
    tiny_init(&d, 9);
    snprintf(d.t[1].name, sizeof d.t[1].name, "conv1.weight");
    m.step = 2;
    CHECK(checkpoint_write(tmp("keep.safetensors"), d.t, 5, &m) != 0, "duplicate names refused");
    Tiny b;
    tiny_init(&b, 0);
    CkMeta r = {0};
    CHECK(checkpoint_read(tmp("keep.safetensors"), b.t, 5, &r, 0) == 0 && r.step == 1 && b.w[3] == 4,
          "old checkpoint intact (step %ld)", r.step);
    ck_meta_free(&r);
    /* no temporary left behind */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", test_tmp(""));
    CHECK(system(cmd) != 0, "no temporary files left");
}

TEST(run_dir_guard) {
    const char *dir = tmp("run1");
    CHECK(run_dir_prepare(dir, 0) == 0 && sc_is_dir(dir), "new folder created: %s", sc_error());
    CHECK(run_dir_prepare(dir, 0) == 0, "empty folder reused");
    sc_write_file_atomic(run_path(dir, "config.json"), "{}", 2);
    sc_write_file_atomic(run_path(dir, "notes.txt"), "mine", 4);
    CHECK(run_dir_prepare(dir, 0) != 0 && strstr(sc_error(), "run.resume") && strstr(sc_error(), "run.force"),
          "another run refused: %s", sc_error());
    CHECK(sc_file_exists(run_path(dir, "config.json")), "nothing removed without --force");
    CHECK(run_dir_prepare(dir, 1) == 0, "--force: %s", sc_error());
    CHECK(!sc_file_exists(run_path(dir, "config.json")) && sc_file_exists(run_path(dir, "notes.txt")),
          "--force removes only run files");
    sc_write_file_atomic(tmp("afile"), "x", 1);
    CHECK(run_dir_prepare(tmp("afile"), 1) != 0, "a file is not a run folder");
    CHECK(!strcmp(run_epoch_path("r", 12), "r/epoch_0012.safetensors"), "%s", run_epoch_path("r", 12));
}

/* ---- real models ----------------------------------------------------------------------------- */
#include "model.h"
#include "optim.h"
#include "rng.h"

/* The checkpoint of a width-1 model, read back from disk, lists exactly torchvision's state_dict
 * (fixture from tools/make_pretrain_fixtures.py): same names, order-free, dtypes and shapes. */
static void check_against_torchvision(int arch, const char *fixture) {
    ModelConfig mc;
    model_config_default(&mc);
    mc.arch = arch;
    mc.image_size = 32;
    Model *m;
    CHECK(model_create(&m, &mc, 2, 1) == 0, "%s", sc_error());
    if (!m) return;
    CkMeta meta = {.step = 3};
    const char *path = tmp(arch == ARCH_RESNET50 ? "r50.safetensors" : "r18.safetensors");
    CHECK(checkpoint_save(path, m, NULL, &meta) == 0, "%s", sc_error());
    SafeTensors *st;
    CHECK(safetensors_open(&st, path) == 0, "%s", sc_error());
    char *txt;
    CHECK(sc_read_file(fixture_path(fixture), &txt, NULL) == 0, "%s", sc_error());
    int lines = 0, bad = 0;
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
        char name[128], dt[8], shp[64] = "";
        int k = sscanf(line, "%127s %7s %63s", name, dt, shp);
        if (k < 2) continue;
        lines++;
        const StTensor *t = safetensors_find(st, name);
        char got[64] = "";
        if (t)
            for (int d = 0, o = 0; d < t->ndim; d++)
                o += snprintf(got + o, sizeof got - o, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        if (!t || strcmp(st_dtype_name(t->dtype), dt) || strcmp(got, shp)) {
            if (bad++ < 5)
                fprintf(stderr, "  %s: want %s [%s], got %s [%s]\n", name, dt, shp,
                        t ? st_dtype_name(t->dtype) : "(absent)", got);
        }
    }
    int encoder = 0;
    for (int i = 0; i < st->n; i++) encoder += strncmp(st->t[i].name, "head.", 5) != 0;
    CHECK(bad == 0, "%d tensors differ from torchvision's", bad);
    CHECK(encoder == lines, "encoder tensors in the file %d, torchvision %d", encoder, lines);
    CHECK(safetensors_find(st, "head.0.weight") && safetensors_find(st, "head.2.bias"), "head.");
    free(txt);
    safetensors_close(st);
    model_free(m);
}

TEST(resnet18_names_shapes_dtypes_match_torchvision) {
    check_against_torchvision(ARCH_RESNET18, "pretrain/resnet18_state_dict.txt");
}

TEST(resnet50_names_shapes_dtypes_match_torchvision) {
    check_against_torchvision(ARCH_RESNET50, "pretrain/resnet50_state_dict.txt");
}

static Model *small_model(int arch, float width, uint64_t seed) {
    ModelConfig mc;
    model_config_default(&mc);
    mc.arch = arch;
    mc.width = width;
    mc.stem = STEM_CIFAR;
    mc.image_size = 16;
    Model *m = NULL;
    if (model_create(&m, &mc, 4, seed)) return NULL;
    return m;
}

static Optimizer *adam_for(Model *m) {
    int nt = model_num_tensors(m), ns = 0;
    OptimSegment seg[512];
    for (int i = 0; i < nt; i++) {
        const ModelTensor *t = model_tensor(m, i);
        if (t->kind == MODEL_PARAM) seg[ns++] = (OptimSegment){t->offset, t->numel, t->is_bn_or_bias};
    }
    OptimConfig oc;
    optim_config_default(&oc, OPTIM_ADAM);
    Optimizer *o;
    if (optim_create(&o, &oc, model_num_params(m), seg, ns)) return NULL;
    return o;
}

TEST(model_and_optimizer_state_roundtrip) {
    Model *a = small_model(ARCH_RESNET18, 0.125f, 1), *b = small_model(ARCH_RESNET18, 0.125f, 2);
    CHECK(a && b, "%s", sc_error());
    if (!a || !b) return;
    Optimizer *oa = adam_for(a), *ob = adam_for(b);
    /* one real training step so that moments, BN statistics and counters are non-trivial */
    float x[4 * 3 * 16 * 16];
    Rng r = rng_derive(1, RNG_STREAM_TEST, 0, 0, 0);
    for (size_t i = 0; i < sizeof x / sizeof *x; i++) x[i] = rng_uniform(&r);
    model_zero_grad(a);
    CHECK(model_forward(a, x, 4, 1) == 0, "%s", sc_error());
    float dz[4 * 128];
    for (int i = 0; i < 4 * 128; i++) dz[i] = rng_uniform(&r) - 0.5f;
    model_backward(a, dz);
    optim_step(oa, model_params(a), model_grads(a), 1e-3f);
    CkMeta meta = {.step = 1, .epoch = 0, .batch = 1, .seed = 1, .config_json = "{}"};
    CHECK(checkpoint_save(tmp("ab.safetensors"), a, oa, &meta) == 0, "%s", sc_error());
    CkMeta back = {0};
    CHECK(checkpoint_load(tmp("ab.safetensors"), b, ob, &back) == 0, "%s", sc_error());
    CHECK(!memcmp(model_params(a), model_params(b), model_num_params(a) * sizeof(float)), "params");
    CHECK(!memcmp(model_buffers(a), model_buffers(b), model_num_buffers(a) * sizeof(float)), "BN stats");
    CHECK(!memcmp(model_counters(a), model_counters(b), model_num_counters(a) * sizeof(int64_t)) &&
              model_counters(b)[0] == 1,
          "num_batches_tracked");
    OptimState sa[2], sb[2];
    int na = optim_state_tensors(oa, sa);
    optim_state_tensors(ob, sb);
    for (int k = 0; k < na; k++)
        CHECK(!memcmp(sa[k].data, sb[k].data, model_num_params(a) * sizeof(float)), "moment %s", sa[k].name);
    CHECK(optim_get_step(ob) == 1, "optimizer step %ld", optim_get_step(ob));
    CHECK(strstr(back.arch, "resnet18 x0.125"), "arch %s", back.arch);
    ck_meta_free(&back);
    /* the same step on both gives the same parameters: the state is complete */
    model_zero_grad(a);
    model_zero_grad(b);
    model_forward(a, x, 4, 1);
    model_forward(b, x, 4, 1);
    model_backward(a, dz);
    model_backward(b, dz);
    optim_step(oa, model_params(a), model_grads(a), 1e-3f);
    optim_step(ob, model_params(b), model_grads(b), 1e-3f);
    CHECK(!memcmp(model_params(a), model_params(b), model_num_params(a) * sizeof(float)),
          "next step identical after restore");
    optim_free(oa);
    optim_free(ob);
    model_free(a);
    model_free(b);
}

TEST(other_architecture_refused) {
    Model *r18 = small_model(ARCH_RESNET18, 0.125f, 1), *r34 = small_model(ARCH_RESNET34, 0.125f, 1),
          *wide = small_model(ARCH_RESNET18, 0.25f, 1);
    CHECK(r18 && r34 && wide, "%s", sc_error());
    if (!r18 || !r34 || !wide) return;
    CkMeta meta = {0};
    checkpoint_save(tmp("r34.safetensors"), r34, NULL, &meta);
    float before = model_params(r18)[0];
    CHECK(checkpoint_load(tmp("r34.safetensors"), r18, NULL, NULL) != 0 &&
              strstr(sc_error(), "resnet34") && strstr(sc_error(), "resnet18"),
          "resnet34 into resnet18: %s", sc_error());
    CHECK(model_params(r18)[0] == before, "model untouched");
    checkpoint_save(tmp("wide.safetensors"), wide, NULL, &meta);
    CHECK(checkpoint_load(tmp("wide.safetensors"), r18, NULL, NULL) != 0 && strstr(sc_error(), "x0.25"),
          "width 0.25 into width 0.125: %s", sc_error());
    /* weights-only: a file without head (a torchvision state_dict) initialises the encoder */
    CkTensor *t;
    int n;
    checkpoint_model_tensors(r18, NULL, 0, &t, &n);
    int ne = 0;
    while (ne < n && strncmp(t[ne].name, "head.", 5)) ne++;
    CHECK(checkpoint_write(tmp("nohead.safetensors"), t, ne, &meta) == 0, "%s", sc_error());
    free(t);
    CHECK(checkpoint_load(tmp("nohead.safetensors"), r18, NULL, NULL) == 0,
          "encoder-only file loads for --init: %s", sc_error());
    Optimizer *o = adam_for(r18);
    CHECK(checkpoint_load(tmp("nohead.safetensors"), r18, o, NULL) != 0, "but not for --resume");
    optim_free(o);
    model_free(r18);
    model_free(r34);
    model_free(wide);
}

TEST(cleanup) { CHECK(test_tmp_remove() == 0, "cleanup"); }
