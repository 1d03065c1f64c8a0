/* test_mpi.c - multi-process training (src/comm.h, src/train.h, `simclr pretrain` under mpirun).
 *
 * The equivalence test that matters: the same pretraining command as 1 process x 2 threads and
 * as `mpirun -np 2` x 1 thread gives the same weights and BN running statistics after 20 steps
 * (reduction order is the only difference); two runs with the same P are bit-identical; over
 * shared memory and over TCP (--mca btl tcp,self) the 2-process runs are bit-identical too (the
 * communicator sums in rank order itself). Then the operations: a batch not divisible by P, a
 * mismatched configuration, a set-up error in process 1 only, --stop-after-steps + --resume with
 * the same and another P, a NaN loss, SIGTERM to process 0 and to mpirun, a process killed with
 * SIGKILL, an unknown host. Every run trains the online probe too (--online-probe: each process
 * its rows, the probe's gradient summed), so its tensors are compared like the model's. Needs mpirun (openmpi-bin) and dataset-fashion-mnist,
 * like the CLI tests; runs ./simclr ($SIMCLR). Tiny model: ResNet-18 x1/16, 16 px, 16 images.
 *
 * Tolerance: the relative 2-norm difference of all parameters, and of all BN running
 * statistics, <= 1e-5, and every element within 1e-5 x the largest magnitude of its group. The
 * configuration uses SGD at lr 1e-4: SimCLR's first steps amplify rounding differences fast (a
 * 1e-6 change of ONE weight of a single-process run moves all weights by 1e-3 relative after 20
 * Adam steps at lr 1e-3, measured), so a faster configuration compares chaos, not reductions.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "comm.h"
#include "common.h"
#include "safetensors.h"
#include "test.h"

static char dir[64];
static const char *simclr;
static const char *MPIRUN = "mpirun --allow-run-as-root --oversubscribe";
static const char *CFG =
    "--dataset fashion-mnist --arch resnet18 --width 0.0625 --stem cifar --image-size 16 "
    "--limit 160 --batch-size 16 --epochs 2 --max-steps 20 --seed 7 --loader-threads 1 "
    "--optimizer sgd --lr 0.0001 --momentum 0.9 --weight-decay 1e-4 --warmup-steps 0 "
    "--temperature 0.5 --checkpoint-every 0 --online-probe";

static int setup(void) {
    if (dir[0]) return 0;
    simclr = getenv("SIMCLR");
    if (!simclr) simclr = "./simclr";
    if (system("command -v mpirun >/dev/null 2>&1")) {
        CHECK(0, "mpirun is not installed (tools/deps.sh installs openmpi-bin)");
        return -1;
    }
    snprintf(dir, sizeof dir, "/tmp/simclr_mpi_XXXXXX");
    SC_ASSERT(mkdtemp(dir));
    return 0;
}

/* Runs a shell command (output into dir/NAME.log); returns its exit status (-1: signal). */
static int sh(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sh(const char *name, const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(cmd + n, sizeof cmd - n, " >%s/%s.log 2>&1", dir, name);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static const char *path(const char *run, const char *file) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s/%s", dir, run, file);
    return buf[k];
}

static const char *logpath(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s.log", dir, name);
    return buf;
}

static char *slurp(const char *p) {
    char *d = NULL;
    size_t n;
    if (sc_read_file(p, &d, &n)) return sc_strdup("");
    return d;
}

/* a run of CFG with P processes (0: no mpirun) and T threads; extra options appended */
static int run(const char *name, int P, int T, const char *extra) {
    if (P == 0)
        return sh(name, "%s pretrain --out %s/%s %s --threads %d %s", simclr, dir, name, CFG, T,
                  extra);
    return sh(name, "%s -np %d %s pretrain --out %s/%s %s --threads %d %s", MPIRUN, P, simclr, dir,
              name, CFG, T, extra);
}

/* Compares the F32 tensors of two checkpoints: parameters and BN buffers as two groups.
 * Returns the larger relative 2-norm difference (0: bit-identical), -1 when unreadable. */
static double compare(const char *a, const char *b, double *worst_elem) {
    SafeTensors *sa, *sb;
    if (safetensors_open(&sa, a)) return -1;
    if (safetensors_open(&sb, b)) {
        safetensors_close(sa);
        return -1;
    }
    double d2[2] = {0, 0}, n2[2] = {0, 0}, mx[2] = {0, 0}, dmax[2] = {0, 0};
    int bad = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < sa->n; i++) {
            const StTensor *x = &sa->t[i];
            if (x->dtype != ST_F32 || !strncmp(x->name, "optim.", 6)) continue;
            const StTensor *y = safetensors_find(sb, x->name);
            if (!y || y->numel != x->numel) {
                bad = 1;
                continue;
            }
            int g = strstr(x->name, "running_") != NULL;
            for (size_t e = 0; e < x->numel; e++) {
                float u, v;
                memcpy(&u, (const char *)x->data + 4 * e, 4);
                memcpy(&v, (const char *)y->data + 4 * e, 4);
                if (pass == 0) {
                    d2[g] += ((double)u - v) * ((double)u - v), n2[g] += (double)u * u;
                    if (fabs(u) > mx[g]) mx[g] = fabs(u);
                } else if (fabs((double)u - v) / mx[g] > dmax[g]) {
                    dmax[g] = fabs((double)u - v) / mx[g];
                }
            }
        }
    safetensors_close(sa);
    safetensors_close(sb);
    if (bad) return -1;
    *worst_elem = fmax(dmax[0], dmax[1]);
    return fmax(sqrt(d2[0] / n2[0]), sqrt(d2[1] / n2[1]));
}

/* the data part (after the header) of two files identical */
static int same_tensors(const char *a, const char *b) {
    SafeTensors *sa, *sb;
    if (safetensors_open(&sa, a)) return 0;
    if (safetensors_open(&sb, b)) {
        safetensors_close(sa);
        return 0;
    }
    int same = sa->n == sb->n;
    for (int i = 0; same && i < sa->n; i++) {
        const StTensor *y = safetensors_find(sb, sa->t[i].name);
        same = y && y->nbytes == sa->t[i].nbytes && !memcmp(y->data, sa->t[i].data, y->nbytes);
    }
    safetensors_close(sa);
    safetensors_close(sb);
    return same;
}

TEST(single_backend_without_mpirun) {
    unsetenv("OMPI_COMM_WORLD_SIZE");
    Comm *c;
    CHECK(comm_init(&c) == 0, "%s", sc_error());
    CHECK(comm_size(c) == 1 && comm_rank(c) == 0 && !strcmp(comm_backend(c), "single"), "%s",
          comm_backend(c));
    float a[3] = {1, 2, 3}, g[3];
    CHECK(comm_allreduce_f32(c, a, 3) == 0 && a[0] == 1 && a[2] == 3, "allreduce alone changed data");
    CHECK(comm_allgather_f32(c, a, 3, g) == 0 && !memcmp(a, g, sizeof a), "allgather alone");
    float r[3] = {1, 1, 1};
    CHECK(comm_reduce_scatter_add_f32(c, a, r, 3) == 0 && r[2] == 4, "reduce-scatter alone adds");
    CHECK(comm_any(c, 0) == 0 && comm_any(c, 5) == 1, "any");
    CommStats st;
    comm_stats(c, &st);
    CHECK(st.calls == 0 && st.bytes == 0, "a single process sends nothing");
    comm_free(c);
    setenv("OMPI_COMM_WORLD_SIZE", "1", 1);
    CHECK(comm_env_size() == 1, "-np 1 is one process");
    unsetenv("OMPI_COMM_WORLD_SIZE");
}

TEST(one_process_two_threads_equals_two_processes) {
    if (setup()) return;
    CHECK(run("p1", 0, 2, "") == 0, "1 x 2 run failed: %s", slurp(logpath("p1")));
    CHECK(run("p2", 2, 1, "") == 0, "mpirun -np 2 failed: %s", slurp(logpath("p2")));
    double w = 0, d = compare(path("p1", "last.safetensors"), path("p2", "last.safetensors"), &w);
    printf("  1 x 2 threads vs 2 x 1 thread after 20 steps: relative difference %.3g (worst "
           "element %.3g of its group's scale)\n", d, w);
    CHECK(d >= 0 && d <= 1e-5 && w <= 1e-5, "difference %.3g, worst element %.3g", d, w);
    char *m1 = slurp(path("p2", "metrics.jsonl"));
    CHECK(strstr(m1, "\"step\": 20,") != NULL, "20 step lines from process 0");
    char *cfg = slurp(path("p2", "config.json"));
    CHECK(strstr(cfg, "\"processes\": 2") != NULL, "config records the world size: %s", cfg);
    free(m1), free(cfg);
}

/* also the "same P, same bits" check: a second 2-process run, over the other transport */
TEST(tcp_path_bit_identical_to_shared_memory) {
    if (setup()) return;
    CHECK(sh("tcp", "%s -np 2 --mca btl tcp,self %s pretrain --out %s/tcp %s --threads 1", MPIRUN,
             simclr, dir, CFG) == 0,
          "mpirun over TCP failed: %s", slurp(logpath("tcp")));
    CHECK(same_tensors(path("p2", "last.safetensors"), path("tcp", "last.safetensors")),
          "TCP run differs from the shared-memory run");
}

TEST(bad_batch_and_mismatched_configuration) {
    if (setup()) return;
    int rc = sh("div", "%s -np 2 %s pretrain --out %s/div %s --batch-size 15", MPIRUN, simclr, dir, CFG);
    char *log = slurp(logpath("div"));
    int lines = 0;
    for (char *p = log; (p = strstr(p, "simclr: error:")); p++) lines++;
    CHECK(rc != 0 && lines == 1 && strstr(log, "--batch-size 15: not divisible by the 2 processes"),
          "rc %d, %d error lines: %s", rc, lines, log);
    free(log);
    rc = sh("mismatch", "%s -np 1 %s pretrain --out %s/mm %s : -np 1 %s pretrain --out %s/mm %s "
            "--seed 8", MPIRUN, simclr, dir, CFG, simclr, dir, CFG);
    log = slurp(logpath("mismatch"));
    CHECK(rc != 0 && strstr(log, "simclr: error: process 1: runs another binary or configuration"),
          "rc %d: %s", rc, log);
    free(log);
}

/* the dataset missing on one machine only: one error line, from that process, and a failure */
TEST(setup_error_in_another_process) {
    if (setup()) return;
    int rc = sh("setup1", "%s -np 1 %s pretrain --out %s/su %s : -np 1 %s pretrain --out %s/su %s "
                "--dataset npy --data %s/nonexistent.npy", MPIRUN, simclr, dir, CFG, simclr, dir, CFG,
                dir);
    char *log = slurp(logpath("setup1"));
    int lines = 0;
    for (char *p = log; (p = strstr(p, "simclr: error:")); p++) lines++;
    CHECK(rc != 0 && lines == 1 && strstr(log, "simclr: error: process 1: ") &&
              strstr(log, "nonexistent.npy"),
          "rc %d, %d error lines: %s", rc, lines, log);
    free(log);
}

TEST(stop_resume_with_same_and_other_process_count) {
    if (setup()) return;
    CHECK(run("s2", 2, 1, "--stop-after-steps 7") == 0, "stop failed: %s", slurp(logpath("s2")));
    char *m = slurp(path("s2", "metrics.jsonl"));
    CHECK(strstr(m, "\"step\": 7,") && !strstr(m, "\"step\": 8,"), "7 lines before the stop");
    free(m);
    char cp[1024];
    snprintf(cp, sizeof cp, "cp -r %s/s2 %s/s1", dir, dir);
    SC_ASSERT(system(cp) == 0);
    CHECK(sh("r2", "%s -np 2 %s pretrain --resume %s/s2 --threads 1", MPIRUN, simclr, dir) == 0,
          "resume with 2 failed: %s", slurp(logpath("r2")));
    CHECK(same_tensors(path("p2", "last.safetensors"), path("s2", "last.safetensors")),
          "stop + resume (2 processes) differs from the uninterrupted 2-process run");
    CHECK(sh("r1", "%s pretrain --resume %s/s1 --threads 2", simclr, dir) == 0,
          "resume alone failed: %s", slurp(logpath("r1")));
    double w = 0, d = compare(path("p1", "last.safetensors"), path("s1", "last.safetensors"), &w);
    CHECK(d >= 0 && d <= 1e-5 && w <= 1e-5, "2 processes then 1: difference %.3g (%.3g)", d, w);
}

TEST(nan_stops_every_process) {
    if (setup()) return;
    int rc = run("nan", 2, 1, "--debug-nan-at-step 4");
    char *log = slurp(logpath("nan"));
    CHECK(rc != 0 && strstr(log, "loss is NaN at step 5"), "rc %d: %s", rc, log);
    CHECK(!strstr(log, "MPI_ABORT"), "a NaN is a collective stop, not an abort: %s", log);
    free(log);
}

/* running (a zombie waiting for its reaper counts as ended) */
static int alive(int pid) {
    char p[64], buf[256] = {0};
    snprintf(p, sizeof p, "/proc/%d/stat", pid);
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    const char *rp = strrchr(buf, ')');
    return n && !(rp && rp[1] == ' ' && rp[2] == 'Z');
}

TEST(killed_process_ends_the_job) {
    if (setup()) return;
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "%s -np 2 %s pretrain --out %s/kill %s --threads 1 --max-steps 100000 --epochs 1000 "
             ">%s/kill.log 2>&1 & echo $!",
             MPIRUN, simclr, dir, CFG, dir);
    FILE *f = popen(cmd, "r");
    int mp = 0;
    SC_ASSERT(f && fscanf(f, "%d", &mp) == 1);
    pclose(f);
    /* wait for the first metrics, then SIGKILL one of the simclr processes */
    double t0 = sc_now();
    while (sc_now() - t0 < 60 && access(path("kill", "metrics.jsonl"), F_OK)) usleep(100000);
    usleep(1500000);
    snprintf(cmd, sizeof cmd, "pgrep -P %d -f 'simclr pretrain' | tail -n 1 | xargs -r kill -9", mp);
    SC_ASSERT(system(cmd) == 0);
    double tk = sc_now();
    int gone = 0;
    while (sc_now() - tk < 20) {
        if (!alive(mp)) {
            gone = 1;
            break;
        }
        usleep(50000);
    }
    double took = sc_now() - tk;
    if (!gone) {
        kill(mp, SIGKILL);
        snprintf(cmd, sizeof cmd, "pkill -9 -P %d", mp);
        (void)system(cmd);
    }
    char *log = slurp(logpath("kill"));
    printf("  job ended %.1f s after a process was killed\n", took);
    CHECK(gone && took < 10, "mpirun still running %.1f s after a process died", took);
    CHECK(strstr(log, "signal 9") || strstr(log, "Killed"), "no message naming the dead process: %s", log);
    free(log);
}

/* waits up to `limit` seconds for pid to end; its exit status, -1 when still running (killed) */
static int wait_for(int pid, double limit, double *took) {
    double t0 = sc_now();
    int st = 0, r = 0;
    while ((r = waitpid(pid, &st, WNOHANG)) == 0 && sc_now() - t0 < limit) usleep(50000);
    *took = sc_now() - t0;
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    kill(pid, SIGKILL);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "pkill -9 -P %d", pid);
    (void)system(cmd);
    return -1;
}

/* starts CFG with 2 processes in the background for ever; returns mpirun's pid once the first
 * step is logged (0 on time-out) */
static int start_long_run(const char *name, const char *mca) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "exec %s %s -np 2 %s pretrain --out %s/%s %s --threads 1 --max-steps 100000 "
             "--epochs 1000 >%s/%s.log 2>&1",
             MPIRUN, mca, simclr, dir, name, CFG, dir, name);
    int mp = fork(); /* our child: waitpid gives mpirun's exit status */
    SC_ASSERT(mp >= 0);
    if (mp == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    double t0 = sc_now();
    while (sc_now() - t0 < 60 && access(path(name, "metrics.jsonl"), F_OK)) usleep(100000);
    if (access(path(name, "metrics.jsonl"), F_OK) == 0) return mp;
    double took;
    wait_for(mp, 0, &took);
    return 0;
}

/* SIGTERM to process 0 (its pid is in the run's lock file): every process stops after the same
 * step, one checkpoint, mpirun ends at once with the interrupted status 130 */
TEST(sigterm_to_process_0_stops_every_process) {
    if (setup()) return;
    int mp = start_long_run("term0", "");
    CHECK(mp > 0, "no first step within 60 s: %s", slurp(logpath("term0")));
    if (!mp) return;
    char *lock = slurp(path("term0", ".simclr.lock"));
    int p0 = atoi(lock);
    free(lock);
    CHECK(p0 > 0 && kill(p0, SIGTERM) == 0, "no pid in the lock file");
    double took;
    int rc = wait_for(mp, 30, &took);
    char *log = slurp(logpath("term0"));
    printf("  SIGTERM to process 0: mpirun ended after %.1f s, status %d\n", took, rc);
    CHECK(rc == 130 && strstr(log, "interrupted at step") && strstr(log, "to stop and save: kill -TERM"),
          "status %d: %s", rc, log);
    CHECK(access(path("term0", "last.safetensors"), F_OK) == 0, "no checkpoint");
    free(log);
}

/* SIGTERM to mpirun: it forwards the signal and SIGKILLs after odls_base_sigkill_timeout (1 s by
 * default): with a longer one every process finishes its step, process 0 saves, all leave */
TEST(sigterm_to_mpirun_saves_with_a_kill_timeout) {
    if (setup()) return;
    int mp = start_long_run("termall", "--mca odls_base_sigkill_timeout 5");
    CHECK(mp > 0, "no first step within 60 s: %s", slurp(logpath("termall")));
    if (!mp) return;
    CHECK(kill(mp, SIGTERM) == 0, "kill mpirun");
    double took;
    int rc = wait_for(mp, 40, &took);
    char *log = slurp(logpath("termall"));
    printf("  SIGTERM to mpirun: it ended after %.1f s, status %d\n", took, rc);
    CHECK(rc >= 0 && strstr(log, "interrupted at step") && strstr(log, "or Ctrl-C on mpirun"),
          "status %d: %s", rc, log);
    CHECK(access(path("termall", "last.safetensors"), F_OK) == 0, "no checkpoint");
    free(log);
}

/* a host that does not exist: mpirun's own error naming it, a failure, within seconds */
TEST(unknown_host_fails_fast) {
    if (setup()) return;
    double t0 = sc_now();
    int rc = sh("host", "timeout 60 %s -np 2 --host localhost,nosuchhost.invalid --mca "
                "plm_rsh_args '-o ConnectTimeout=5 -o BatchMode=yes' %s pretrain --out %s/host %s",
                MPIRUN, simclr, dir, CFG);
    double took = sc_now() - t0;
    char *log = slurp(logpath("host"));
    CHECK(rc != 0 && rc != 124 && strstr(log, "nosuchhost") && took < 30, "status %d after %.1f s: %s",
          rc, took, log);
    free(log);
}

TEST(cleanup) {
    if (!dir[0]) return;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cannot remove %s", dir);
}
