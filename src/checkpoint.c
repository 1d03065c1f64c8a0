/* checkpoint.c - see checkpoint.h. */
#include "checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common.h"
#include "model.h"
#include "optim.h"

/* ---- writing ----------------------------------------------------------------------------- */

int checkpoint_write(const char *path, const CkTensor *t, int n, const CkMeta *meta) {
    StTensorOut *out = sc_xrealloc(NULL, (size_t)(n ? n : 1) * sizeof *out);
    for (int i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].name = t[i].name;
        out[i].dtype = t[i].dtype;
        out[i].ndim = t[i].ndim;
        for (int d = 0; d < t[i].ndim; d++) out[i].shape[d] = t[i].shape[d];
        out[i].data = t[i].data;
    }
    char step[32], epoch[32], batch[32], seed[32], version[16];
    snprintf(step, sizeof step, "%ld", meta->step);
    snprintf(epoch, sizeof epoch, "%ld", meta->epoch);
    snprintf(batch, sizeof batch, "%ld", meta->batch);
    snprintf(seed, sizeof seed, "%" PRIu64, meta->seed);
    snprintf(version, sizeof version, "%d", CHECKPOINT_VERSION);
    StMeta md[] = {{"format", "pt"},
                   {"simclr_checkpoint", version},
                   {"step", step},
                   {"epoch", epoch},
                   {"batch", batch},
                   {"seed", seed},
                   {"arch", meta->arch},
                   {"config", meta->config_json ? meta->config_json : "{}"}};
    int rc = safetensors_write(path, out, n, md, (int)(sizeof md / sizeof *md));
    free(out);
    return rc;
}

/* ---- reading ----------------------------------------------------------------------------- */

static int parse_long_meta(const SafeTensors *st, const char *path, const char *key, long *v) {
    const char *s = safetensors_meta(st, key);
    if (!s) return 1;
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || end == s || *end || x < 0)
        return sc_error_set("%s: metadata \"%s\" is '%s', expected a non-negative integer", path,
                            key, s);
    *v = x;
    return 0;
}

static int is_encoder_name(const char *name) {
    return strncmp(name, "head.", 5) && strncmp(name, "optim.", 6) && strncmp(name, "fc.", 3) &&
           strncmp(name, "probe.", 6);
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? "," : "", (long long)shape[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* A loaded tensor must hold values a training run can produce: finite floats, variances
 * (BatchNorm running_var, Adam's second moment optim.*.v) >= 0, counters >= 0. A damaged or
 * hand-edited file is refused instead of giving finite-looking features from NaN weights. */
static int check_values(const char *path, const CkTensor *t, size_t numel) {
    if (t->dtype == ST_I64) {
        const int64_t *v = t->data;
        for (size_t i = 0; i < numel; i++)
            if (v[i] < 0)
                return sc_error_set("%s: tensor '%s' holds %lld at element %zu; expected a "
                                    "count >= 0 (damaged checkpoint?)", path, t->name,
                                    (long long)v[i], i);
        return 0;
    }
    if (t->dtype != ST_F32) return 0;
    const float *v = t->data;
    int variance = ends_with(t->name, ".running_var") || ends_with(t->name, ".v");
    for (size_t i = 0; i < numel; i++) {
        if (!isfinite(v[i]))
            return sc_error_set("%s: tensor '%s' holds %s at element %zu; expected finite values "
                                "(damaged checkpoint, or saved after the training diverged?)",
                                path, t->name, isnan(v[i]) ? "NaN" : "an infinity", i);
        if (variance && v[i] < 0)
            return sc_error_set("%s: tensor '%s' holds the negative variance %g at element %zu "
                                "(damaged checkpoint?)", path, t->name, v[i], i);
    }
    return 0;
}

int checkpoint_read(const char *path, CkTensor *t, int n, CkMeta *meta, int flags) {
    SafeTensors *st;
    if (safetensors_open(&st, path)) return -1;
    int rc = 0;
    const char *file_arch = safetensors_meta(st, "arch");
    const char *want_arch = meta && meta->arch[0] ? meta->arch : NULL;
    char hint[400] = "";
    if (file_arch && want_arch && strcmp(file_arch, want_arch))
        snprintf(hint, sizeof hint, " (the checkpoint holds %s, the current model is %s)",
                 file_arch, want_arch);
    else if (file_arch)
        snprintf(hint, sizeof hint, " (the checkpoint holds %s)", file_arch);

    const char *ver = safetensors_meta(st, "simclr_checkpoint");
    if (ver && atoi(ver) > CHECKPOINT_VERSION) {
        rc = sc_error_set("%s: checkpoint format version %s is newer than this program's (%d)",
                          path, ver, CHECKPOINT_VERSION);
        goto done;
    }
    /* Every requested tensor: present (unless optional), right dtype and shape. */
    for (int i = 0; i < n && !rc; i++) {
        const StTensor *f = safetensors_find(st, t[i].name);
        if (!f) {
            if (t[i].optional) continue;
            rc = sc_error_set("%s: no tensor '%s'%s", path, t[i].name,
                              hint[0] ? hint : " (a checkpoint of another architecture?)");
            break;
        }
        int same = f->dtype == t[i].dtype && f->ndim == t[i].ndim;
        for (int d = 0; same && d < f->ndim; d++) same = f->shape[d] == t[i].shape[d];
        if (!same) {
            char a[96], b[96];
            shape_str(a, sizeof a, f->ndim, f->shape);
            shape_str(b, sizeof b, t[i].ndim, t[i].shape);
            rc = sc_error_set("%s: tensor '%s' is %s %s, the current model expects %s %s%s", path,
                              t[i].name, st_dtype_name(f->dtype), a, st_dtype_name(t[i].dtype), b,
                              hint);
            break;
        }
    }
    /* Encoder tensors of the file that the model does not have: another architecture. The
     * requested names are sorted once and searched: a file may hold 100k names. */
    const char **want = sc_xrealloc(NULL, sizeof(char *) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) want[i] = t[i].name;
    qsort(want, (size_t)n, sizeof *want, cmp_name);
    if (!rc && !(flags & CK_ALLOW_EXTRA))
        for (int j = 0; j < st->n && !rc; j++) {
            if (!is_encoder_name(st->t[j].name)) continue;
            const char *key = st->t[j].name;
            if (!bsearch(&key, want, (size_t)n, sizeof *want, cmp_name))
                rc = sc_error_set("%s: tensor '%s' does not exist in the current model%s", path,
                                  st->t[j].name,
                                  hint[0] ? hint : " (a checkpoint of another architecture?)");
        }
    long step = 0, epoch = 0, batch = 0;
    if (!rc && (parse_long_meta(st, path, "step", &step) < 0 ||
                parse_long_meta(st, path, "epoch", &epoch) < 0 ||
                parse_long_meta(st, path, "batch", &batch) < 0))
        rc = -1;
    free(want);
    if (!rc) {
        const char *s = safetensors_meta(st, "seed");
        for (int i = 0; i < n && !rc; i++) {
            const StTensor *f = safetensors_find(st, t[i].name);
            if (!f) continue;
            rc = safetensors_read(st, t[i].name, t[i].dtype, t[i].ndim, t[i].shape, t[i].data);
            if (!rc) rc = check_values(path, &t[i], f->numel);
        }
        if (!rc && meta) {
            meta->step = step;
            meta->epoch = epoch;
            meta->batch = batch;
            meta->seed = s ? strtoull(s, NULL, 10) : 0;
            const char *a = safetensors_meta(st, "arch");
            if (a) snprintf(meta->arch, sizeof meta->arch, "%s", a);
            const char *c = safetensors_meta(st, "config");
            meta->config_json = c ? sc_strdup(c) : NULL;
        }
    }
done:
    safetensors_close(st);
    return rc;
}

void ck_meta_free(CkMeta *meta) {
    free(meta->config_json);
    meta->config_json = NULL;
}

/* ---- run folder -------------------------------------------------------------------------- */

const char *run_path(const char *dir, const char *name) {
    static char bufs[8][4096];
    static int k;
    char *b = bufs[k++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

const char *run_epoch_path(const char *dir, long epoch) {
    char name[64];
    snprintf(name, sizeof name, "epoch_%04ld.safetensors", epoch);
    return run_path(dir, name);
}

static int is_run_file(const char *name) {
    size_t n = strlen(name);
    if (!strcmp(name, "config.json") || !strcmp(name, "metrics.jsonl") ||
        !strcmp(name, "results.md") || !strcmp(name, "curves.png"))
        return 1;
    return n > 12 && !strcmp(name + n - 12, ".safetensors");
}

int run_dir_clean_temps(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *t = strstr(e->d_name, ".tmp.");
        if (!t) continue;
        char base[256];
        snprintf(base, sizeof base, "%.*s", (int)(t - e->d_name), e->d_name);
        if (is_run_file(base) || !strcmp(base, "init.safetensors") || !strcmp(base, "last.safetensors"))
            n += unlink(run_path(dir, e->d_name)) == 0;
    }
    closedir(d);
    return n;
}

int run_dir_lock(const char *dir) {
    if (sc_mkdir_p(dir)) return -1;
    const char *path = run_path(dir, ".simclr.lock");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return sc_error_set("%s: cannot create the run lock %s: %s", dir, path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t r = pread(fd, pid, sizeof pid - 1, 0);
        pid[r > 0 ? r : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        close(fd);
        if (e == EWOULDBLOCK)
            return sc_error_set("%s: in use by another simclr process (pid %s); wait for it to "
                                "end or stop it (Ctrl-C saves, run.resume continues)", dir,
                                pid[0] ? pid : "unknown");
        return sc_error_set("%s: cannot lock %s: %s", dir, path, strerror(e));
    }
    /* the pid is only for the message of a refused process: a full disk does not stop us */
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) (void)0;
    return fd;
}

int run_dir_prepare(const char *dir, int force) {
    if (sc_file_exists(dir) && !sc_is_dir(dir))
        return sc_error_set("run.dir %s: exists and is not a directory", dir);
    if (sc_is_dir(dir)) {
        DIR *d = opendir(dir);
        if (!d) return sc_error_set("run.dir %s: cannot read the directory: %s", dir, strerror(errno));
        char found[256] = "";
        struct dirent *e;
        int nfound = 0;
        char **names = NULL;
        while ((e = readdir(d))) {
            if (!is_run_file(e->d_name)) continue;
            if (!nfound) snprintf(found, sizeof found, "%s", e->d_name);
            names = sc_xrealloc(names, (size_t)(nfound + 1) * sizeof *names);
            names[nfound++] = sc_strdup(e->d_name);
        }
        closedir(d);
        int rc = 0;
        if (nfound && !force)
            rc = sc_error_set("run.dir %s: the folder holds another run (%s); use run.resume %s to "
                              "continue it, run.force to overwrite it, or another run.dir",
                              dir, found, dir);
        for (int i = 0; i < nfound; i++) {
            if (!rc && unlink(run_path(dir, names[i])) != 0)
                rc = sc_error_set("run.dir %s: cannot remove %s: %s", dir, names[i], strerror(errno));
            free(names[i]);
        }
        free(names);
        return rc;
    }
    return sc_mkdir_p(dir);
}

/* ---- Model + Optimizer ------------------------------------------------------------------- */

int checkpoint_model_tensors(Model *m, Optimizer *o, int head_optional, CkTensor **tp, int *np) {
    int nt = model_num_tensors(m);
    OptimState os[2];
    int ns = o ? optim_state_tensors(o, os) : 0;
    int cap = nt * (1 + ns), n = 0;
    CkTensor *t = calloc((size_t)(cap ? cap : 1), sizeof *t);
    float *params = model_params(m), *bufs = model_buffers(m);
    int64_t *counters = model_counters(m);
    for (int i = 0; i < nt; i++) {
        const ModelTensor *mt = model_tensor(m, i);
        CkTensor *c = &t[n++];
        snprintf(c->name, sizeof c->name, "%s", mt->name);
        c->ndim = mt->ndim;
        for (int d = 0; d < mt->ndim; d++) c->shape[d] = mt->shape[d];
        c->dtype = mt->kind == MODEL_COUNTER ? ST_I64 : ST_F32;
        c->data = mt->kind == MODEL_PARAM    ? (void *)(params + mt->offset)
                  : mt->kind == MODEL_BUFFER ? (void *)(bufs + mt->offset)
                                             : (void *)(counters + mt->offset);
        c->optional = head_optional && !strncmp(mt->name, "head.", 5);
    }
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < nt; i++) {
            const ModelTensor *mt = model_tensor(m, i);
            if (mt->kind != MODEL_PARAM) continue;
            CkTensor *c = &t[n++];
            snprintf(c->name, sizeof c->name, "optim.%s.%s", mt->name, os[k].name);
            c->ndim = mt->ndim;
            for (int d = 0; d < mt->ndim; d++) c->shape[d] = mt->shape[d];
            c->dtype = ST_F32;
            c->data = os[k].data + mt->offset;
        }
    *tp = t;
    *np = n;
    return 0;
}

void checkpoint_arch_string(const Model *m, char *buf, size_t n) {
    const ModelConfig *c = model_config(m);
    static const char *arch[] = {"resnet18", "resnet34", "resnet50"};
    snprintf(buf, n, "%s x%g %s-stem %dpx head %dx%d%s",
             c->arch >= 0 && c->arch < 3 ? arch[c->arch] : "resnet?", c->width,
             c->stem == STEM_CIFAR ? "cifar" : "imagenet", c->image_size, c->head_layers,
             model_out_dim(m), c->head_bn == HEAD_BN_ALL ? " bn-all" : c->head_bn ? " bn" : "");
}

/* the model's tensors followed by extra[0..nextra) */
static void with_extra(CkTensor **t, int *n, const CkTensor *extra, int nextra) {
    if (nextra <= 0) return;
    *t = sc_xrealloc(*t, sizeof(CkTensor) * (size_t)(*n + nextra));
    memcpy(*t + *n, extra, sizeof(CkTensor) * (size_t)nextra);
    *n += nextra;
}

int checkpoint_save(const char *path, Model *m, Optimizer *o, CkMeta *meta) {
    return checkpoint_save_extra(path, m, o, meta, NULL, 0);
}

int checkpoint_save_extra(const char *path, Model *m, Optimizer *o, CkMeta *meta, const CkTensor *extra,
                          int nextra) {
    CkTensor *t;
    int n;
    checkpoint_model_tensors(m, o, 0, &t, &n);
    with_extra(&t, &n, extra, nextra);
    checkpoint_arch_string(m, meta->arch, sizeof meta->arch);
    int rc = checkpoint_write(path, t, n, meta);
    free(t);
    return rc;
}

int checkpoint_load(const char *path, Model *m, Optimizer *o, CkMeta *meta) {
    return checkpoint_load_extra(path, m, o, meta, NULL, 0);
}

int checkpoint_load_extra(const char *path, Model *m, Optimizer *o, CkMeta *meta, CkTensor *extra, int nextra) {
    CkTensor *t;
    int n;
    checkpoint_model_tensors(m, o, o == NULL, &t, &n);
    with_extra(&t, &n, extra, nextra);
    CkMeta local = {0};
    CkMeta *mm = meta ? meta : &local;
    checkpoint_arch_string(m, mm->arch, sizeof mm->arch);
    int rc = checkpoint_read(path, t, n, mm, 0);
    if (!rc && o) optim_set_step(o, mm->step);
    free(t);
    ck_meta_free(&local);
    return rc;
}
