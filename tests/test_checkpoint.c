/* test_checkpoint.c - checkpoint files: round trip, validation against the model's tensor list,
 * corrupt files, atomic replacement, the run folder guard. */
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "common.h"
#include "safetensors.h"
#include "test.h"

static char tmpdir[256];

static const char *tmp(const char *name) {
    static char b[8][512];
    static int k;
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/simclr_ck_XXXXXX");
        if (!mkdtemp(tmpdir)) abort();
    }
    char *p = b[k++ & 7];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

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
    snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", tmpdir);
    CHECK(system(cmd) != 0, "no temporary files left");
}

TEST(run_dir_guard) {
    const char *dir = tmp("run1");
    CHECK(run_dir_prepare(dir, 0) == 0 && sc_is_dir(dir), "new folder created: %s", sc_error());
    CHECK(run_dir_prepare(dir, 0) == 0, "empty folder reused");
    sc_write_file_atomic(run_path(dir, "config.json"), "{}", 2);
    sc_write_file_atomic(run_path(dir, "notes.txt"), "mine", 4);
    CHECK(run_dir_prepare(dir, 0) != 0 && strstr(sc_error(), "--resume") && strstr(sc_error(), "--force"),
          "another run refused: %s", sc_error());
    CHECK(sc_file_exists(run_path(dir, "config.json")), "nothing removed without --force");
    CHECK(run_dir_prepare(dir, 1) == 0, "--force: %s", sc_error());
    CHECK(!sc_file_exists(run_path(dir, "config.json")) && sc_file_exists(run_path(dir, "notes.txt")),
          "--force removes only run files");
    sc_write_file_atomic(tmp("afile"), "x", 1);
    CHECK(run_dir_prepare(tmp("afile"), 1) != 0, "a file is not a run folder");
    CHECK(!strcmp(run_epoch_path("r", 12), "r/epoch_0012.safetensors"), "%s", run_epoch_path("r", 12));
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    CHECK(system(cmd) == 0, "cleanup");
}
