/* fuzz_safetensors.c - safetensors files (checkpoints, --init, torchvision state_dicts): the
 * validating reader safetensors_parse on the raw input, then every lookup a checkpoint load does
 * (find, metadata, checked copy) on what it accepted. */
#include "fuzz.h"

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    SafeTensors *st;
    int rc = safetensors_parse(&st, "fuzz.safetensors", data, size);
    fuzz_check(rc);
    if (rc) return 0;
    for (int i = 0; i < st->n; i++) {
        const StTensor *t = &st->t[i];
        if (!safetensors_find(st, t->name)) abort();
        if ((const uint8_t *)t->data < data || (const uint8_t *)t->data + t->nbytes > data + size)
            abort(); /* every tensor lies inside the buffer */
        if (t->nbytes <= (1 << 16)) {
            void *dst = malloc(t->nbytes ? t->nbytes : 1);
            if (safetensors_read(st, t->name, t->dtype, t->ndim, t->shape, dst)) abort();
            int64_t other[ST_MAX_DIMS] = {0};
            fuzz_check(safetensors_read(st, t->name, ST_F32, 1, other, dst)); /* may refuse */
            free(dst);
        }
    }
    for (int i = 0; i < st->nmeta; i++)
        if (!safetensors_meta(st, st->meta_key[i])) abort();
    const char *cfg = safetensors_meta(st, "config");
    (void)cfg;
    int64_t shape[4] = {64, 3, 7, 7};
    float w[64];
    fuzz_check(safetensors_read(st, "conv1.weight", ST_F32, 4, shape, w) == 0 ? 0 : -1);
    safetensors_close(st);
    return 0;
}
