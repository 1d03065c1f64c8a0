/* replay.c - a main() for the harnesses without libFuzzer: runs LLVMFuzzerTestOneInput on every
 * file named on the command line (folders: every file inside), so the normal gcc build replays
 * the seed corpora and every input that once crashed (tests/cli/fuzz_replay.sh). Exits 0 when
 * all ran; a crash or a harness abort() is the failure. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return 1;
    }
    size_t cap = 1 << 16, n = 0, r;
    uint8_t *buf = malloc(cap);
    while ((r = fread(buf + n, 1, cap - n, f)) > 0)
        if ((n += r) == cap) buf = realloc(buf, cap *= 2);
    fclose(f);
    uint8_t *exact = malloc(n ? n : 1); /* exactly n bytes, so an overread is one */
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

int main(int argc, char **argv) {
    int bad = 0, count = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            struct dirent **names;
            int k = scandir(argv[i], &names, NULL, alphasort);
            for (int j = 0; j < k; j++) {
                char p[4096];
                snprintf(p, sizeof p, "%s/%s", argv[i], names[j]->d_name);
                if (names[j]->d_name[0] != '.') bad |= run_file(p), count++;
                free(names[j]);
            }
            free(names);
        } else
            bad |= run_file(argv[i]), count++;
    }
    printf("replayed %d inputs\n", count);
    return bad;
}
