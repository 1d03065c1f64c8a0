/* checkpoint.h - the state of a pretraining run in one safetensors file, and the run folder.
 *
 * A checkpoint is a safetensors file (src/safetensors.h) holding
 *   - every encoder tensor under its torchvision state_dict name, shape and dtype (F32, and I64
 *     scalars for num_batches_tracked): torchvision.models.resnet18().load_state_dict(w,
 *     strict=False) loads them all and reports only fc.* missing (plus the unexpected head.* and
 *     optim.* keys, which a user drops with a dict comprehension);
 *   - the projection head under head.* (nn.Sequential names);
 *   - with --online-probe, the probe under probe.* and optim.probe.* (src/probe.h);
 *   - the optimizer state: optim.<param name>.m (Adam first moment or SGD/LARS momentum buffer)
 *     and optim.<param name>.v (Adam second moment), F32, the parameter's shape;
 *   - __metadata__ (string -> string): "format" "pt", "simclr_checkpoint" <version>,
 *     "step" (optimizer steps done), "epoch" and "batch" (the loader position of the next step:
 *     epoch 0-based, batch within it), "seed", "optimizer_step", "arch" (e.g. "resnet18 x0.25
 *     cifar 32px"), and "config": the full resolved configuration as one flat JSON object.
 * Files are written atomically (temporary file, fsync, rename): a crash leaves the previous file.
 * In a run folder last.safetensors is always the latest complete checkpoint; epoch_NNNN are kept.
 *
 * Loading validates against the current model: every tensor must be present with the right
 * dtype and shape, and the file may not hold encoder tensors the model lacks; the message names
 * the file, the tensor and both architectures. A corrupt file (bad header, sizes that do not
 * tile the buffer, truncated) is refused by the safetensors reader with its reason.
 */
#ifndef SIMCLR_CHECKPOINT_H
#define SIMCLR_CHECKPOINT_H

#include <stdint.h>

#include "safetensors.h"

#define CHECKPOINT_VERSION 1

/* ---- generic part: a list of named tensors plus run metadata ------------------------------ */
typedef struct {
    char name[160];
    StDtype dtype; /* ST_F32 or ST_I64 */
    int ndim;
    int64_t shape[4];
    void *data;   /* read from (save) or written into (load) */
    int optional; /* load: a tensor absent from the file is left untouched */
} CkTensor;

typedef struct {
    long step;           /* optimizer steps done */
    long epoch, batch;   /* loader position of the next step */
    uint64_t seed;
    char arch[128];      /* human description of the architecture, for error messages */
    char *config_json;   /* resolved configuration (save: borrowed; load: malloc'ed or NULL) */
} CkMeta;

/* Writes the tensors and the metadata atomically to path. */
int checkpoint_write(const char *path, const CkTensor *t, int n, const CkMeta *meta);

enum {
    CK_ALLOW_EXTRA = 1,    /* tolerate tensors in the file that are not requested (any prefix) */
};
/* Reads the requested tensors from path into their data, checking dtype and shape; meta may be
 * NULL. Tensors the file holds but t does not ask for are an error when they belong to the
 * encoder (not head.*, optim.*, fc.*), unless CK_ALLOW_EXTRA: the sign of another architecture.
 * A file without simclr metadata (a plain torchvision state_dict saved with safetensors) is
 * accepted; meta then keeps step 0. */
int checkpoint_read(const char *path, CkTensor *t, int n, CkMeta *meta, int flags);
void ck_meta_free(CkMeta *meta);

/* ---- the run folder ---------------------------------------------------------------------- */
/* Prepares dir for a new run: creates it; refuses (error) when it holds another run
 * (config.json, metrics.jsonl or a *.safetensors) unless force, which removes those files. */
int run_dir_prepare(const char *dir, int force);
/* Takes the run folder's lock: an exclusive flock on dir/.simclr.lock (dir and the file are
 * created as needed) that records the holder's pid and is held until the process exits (the
 * kernel releases it on any exit, kill -9 included). While one process holds it, a second
 * pretrain, a --force or a --resume on the same folder fails with
 * "dir: in use by another simclr process (pid N) ...". Returns the descriptor (leave it open)
 * or -1. Take it before anything in the folder is read for writing or removed. */
int run_dir_lock(const char *dir);
/* Removes temporaries of interrupted atomic writes ("<run file>.tmp.<pid>", "*.tmp.link") left
 * in dir by a killed run. Returns the number removed. */
int run_dir_clean_temps(const char *dir);
/* path = dir + "/" + name (static rotating buffer, 8 slots). */
const char *run_path(const char *dir, const char *name);
/* "runs/x/epoch_0012.safetensors" */
const char *run_epoch_path(const char *dir, long epoch);

/* ---- a Model and its Optimizer as a checkpoint ------------------------------------------- */
typedef struct Model Model;
typedef struct Optimizer Optimizer;

/* Every tensor of the model in state_dict order (parameters, BN buffers, I64 counters), then,
 * when o != NULL, optim.<name>.m/.v for every parameter. *t is malloc'ed (free it). The head's
 * tensors are marked optional when head_optional != 0 (loading a torchvision state_dict). */
int checkpoint_model_tensors(Model *m, Optimizer *o, int head_optional, CkTensor **t, int *n);
/* "resnet18 x0.25 cifar-stem 32px head 2x128" */
void checkpoint_arch_string(const Model *m, char *buf, size_t n);
/* Saves model (+ optimizer state when o != NULL) with meta (meta->arch is filled in). */
int checkpoint_save(const char *path, Model *m, Optimizer *o, CkMeta *meta);
/* Loads into model (+ optimizer when o != NULL, then its step count too). Weights-only loads
 * (o == NULL) accept files without a head (head left as initialised) and ignore optim.*. */
int checkpoint_load(const char *path, Model *m, Optimizer *o, CkMeta *meta);
/* The same with more tensors saved / loaded beside the model's (the online probe's state,
 * named probe.* and optim.probe.*; probe.* tensors are ignored by plain loads like head.*). */
int checkpoint_save_extra(const char *path, Model *m, Optimizer *o, CkMeta *meta, const CkTensor *extra,
                          int nextra);
int checkpoint_load_extra(const char *path, Model *m, Optimizer *o, CkMeta *meta, CkTensor *extra, int nextra);

#endif
