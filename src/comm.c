/* comm.c - the communicator: single-process backend and MPI backend (see comm.h).
 *
 * What it deliberately does not do: use MPI's own reduction operators (their summation order
 * depends on the algorithm MPI picks; MPI_Allreduce also measured 10x slower here), overlap
 * communication with computation (it would not pay on these nodes: see README "Multi-process
 * training"), or support MPI_THREAD_MULTIPLE.
 *
 * Large float sums take one of two paths, which give the same bits:
 *   - shared memory, when every process runs on this machine: each process copies its vector
 *     into its segment of an MPI-3 shared window, sums its block of all segments in rank order
 *     in place, and copies every block back out (memory bandwidth, no messages);
 *   - messages otherwise (several machines, or a user who chose `--mca btl tcp,self` or set
 *     SIMCLR_COMM_SHM=0): reduce-scatter by alltoallv, the same sum, allgatherv.
 */
#include "comm.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

struct Comm {
    int mpi, rank, size;
    CommStats st;
    double *scratch; /* reduction scratch, grown on demand */
    size_t scratch_n;
    int shm;         /* every process on this machine: sums through a shared window */
    MPI_Comm node;   /* the processes of this machine (MPI_COMM_NULL when not split) */
    MPI_Win win;     /* shared window of win_n floats per process, locked for its lifetime */
    float **seg;     /* (size) each process's segment, mapped here */
    size_t win_n;
};

static int env_int(const char *name, int dflt) {
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    char *end;
    long x = strtol(v, &end, 10);
    return *end || x < 0 || x > 1 << 24 ? dflt : (int)x;
}

int comm_env_size(void) {
    int n = env_int("OMPI_COMM_WORLD_SIZE", 0);
    if (!n) n = env_int("PMI_SIZE", 0);
    return n > 0 ? n : 1;
}

int comm_env_rank(void) {
    int r = env_int("OMPI_COMM_WORLD_RANK", -1);
    if (r < 0) r = env_int("PMIX_RANK", -1);
    if (r < 0) r = env_int("PMI_RANK", -1);
    return r > 0 ? r : 0;
}

static int mpi_fail(int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    msg[len < MPI_MAX_ERROR_STRING ? len : MPI_MAX_ERROR_STRING - 1] = 0;
    return sc_error_set("MPI %s: %s", what, msg);
}

int comm_init(Comm **out) {
    Comm *c = sc_alloc(sizeof *c);
    memset(c, 0, sizeof *c);
    c->size = 1;
    *out = c;
    if (comm_env_size() <= 1) return 0;
    int provided = 0, rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return sc_error_set("MPI_Init_thread failed (code %d)", rc);
    c->mpi = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    if (provided < MPI_THREAD_FUNNELED)
        return sc_error_set("MPI: the library gives thread level %d, FUNNELED (%d) needed",
                            provided, MPI_THREAD_FUNNELED);
    /* the shared-memory path: every process on one machine, unless the user restricted the
     * transports to ones without shared memory (--mca btl tcp,self) or set SIMCLR_COMM_SHM=0 */
    c->node = MPI_COMM_NULL;
    c->win = MPI_WIN_NULL;
    int local = 0;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &c->node) ==
        MPI_SUCCESS)
        MPI_Comm_size(c->node, &local);
    const char *btl = getenv("OMPI_MCA_btl"), *shm = getenv("SIMCLR_COMM_SHM");
    int btl_sm = !btl || !*btl || btl[0] == '^' || strstr(btl, "vader") || strstr(btl, "sm");
    c->shm = local == c->size && btl_sm && !(shm && !strcmp(shm, "0"));
    return 0;
}

static void shm_release(Comm *c) {
    if (c->win != MPI_WIN_NULL) {
        MPI_Win_unlock_all(c->win);
        MPI_Win_free(&c->win);
    }
    c->win_n = 0;
}

void comm_free(Comm *c) {
    if (!c) return;
    if (c->mpi) {
        shm_release(c);
        if (c->node != MPI_COMM_NULL) MPI_Comm_free(&c->node);
        MPI_Finalize();
    }
    sc_free(c->seg);
    sc_free(c->scratch);
    sc_free(c);
}

int comm_set_shm(Comm *c, int on) {
    int was = c->shm;
    if (on && c->mpi && c->node != MPI_COMM_NULL) {
        int local = 0;
        MPI_Comm_size(c->node, &local);
        c->shm = local == c->size;
    } else
        c->shm = 0;
    return was;
}

int comm_rank(const Comm *c) { return c->rank; }
int comm_size(const Comm *c) { return c->size; }
const char *comm_backend(const Comm *c) {
    return !c->mpi ? "single" : c->shm ? "mpi, shared memory" : "mpi";
}

void comm_abort(Comm *c, int code) {
    fflush(stdout);
    fflush(stderr);
    if (c && c->mpi) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

static double *scratch(Comm *c, size_t n) {
    if (n > c->scratch_n) {
        sc_free(c->scratch);
        c->scratch = sc_alloc(n * sizeof(double));
        c->scratch_n = n;
    }
    return c->scratch;
}

#define BEGIN double t0_ = sc_now()
#define END(nbytes_) (c->st.calls++, c->st.bytes += (double)(nbytes_), c->st.seconds += sc_now() - t0_)

/* Block b of n elements split over P: [lo, hi). */
static void block(size_t n, int P, int b, size_t *lo, size_t *hi) {
    size_t q = n / P, r = n % P;
    *lo = b * q + (b < (int)r ? b : r);
    *hi = *lo + q + (b < (int)r);
}

/* Sum of float vectors, large: each rank reduces its block of the P contributions (alltoallv),
 * in rank order, then everyone gathers the blocks (allgatherv). */
static int allreduce_f32_blocks(Comm *c, float *buf, size_t n) {
    int P = c->size;
    int *cnt = malloc(sizeof(int) * 4 * P), *dsp = cnt + P, *rcnt = cnt + 2 * P, *rdsp = cnt + 3 * P;
    size_t mlo, mhi;
    block(n, P, c->rank, &mlo, &mhi);
    size_t m = mhi - mlo;
    for (int b = 0; b < P; b++) {
        size_t lo, hi;
        block(n, P, b, &lo, &hi);
        cnt[b] = (int)(hi - lo), dsp[b] = (int)lo;
        rcnt[b] = (int)m, rdsp[b] = (int)(b * m);
    }
    float *recv = (float *)scratch(c, (P * m + 1) / 2 + 1);
    int rc = MPI_Alltoallv(buf, cnt, dsp, MPI_FLOAT, recv, rcnt, rdsp, MPI_FLOAT, MPI_COMM_WORLD);
    if (rc == MPI_SUCCESS) {
        float *mine = buf + mlo;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < m; i++) {
            double s = recv[i];
            for (int b = 1; b < P; b++) s += recv[(size_t)b * m + i];
            mine[i] = (float)s;
        }
        rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, cnt, dsp, MPI_FLOAT,
                            MPI_COMM_WORLD);
    }
    free(cnt);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "allreduce");
}

/* The shared window holds n floats per process (collective: every process asks for the same n). */
static int shm_window(Comm *c, size_t n) {
    if (c->win_n >= n) return 0;
    shm_release(c);
    float *base;
    int rc = MPI_Win_allocate_shared((MPI_Aint)(n * sizeof(float)), sizeof(float), MPI_INFO_NULL,
                                     c->node, &base, &c->win);
    if (rc != MPI_SUCCESS) {
        c->win = MPI_WIN_NULL;
        return mpi_fail(rc, "shared window");
    }
    if (!c->seg) c->seg = sc_alloc(sizeof(float *) * (size_t)c->size);
    for (int b = 0; b < c->size && rc == MPI_SUCCESS; b++) {
        MPI_Aint sz;
        int du;
        rc = MPI_Win_shared_query(c->win, b, &sz, &du, &c->seg[b]);
    }
    if (rc == MPI_SUCCESS) rc = MPI_Win_lock_all(MPI_MODE_NOCHECK, c->win);
    if (rc != MPI_SUCCESS) {
        MPI_Win_free(&c->win);
        return mpi_fail(rc, "shared window");
    }
    c->win_n = n;
    return 0;
}

/* every process's writes to the window visible to all (the unified memory model's idiom) */
static int shm_sync(Comm *c) {
    MPI_Win_sync(c->win);
    int rc = MPI_Barrier(c->node);
    MPI_Win_sync(c->win);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "barrier");
}

/* Sum of float vectors through the shared window: copy in, each process sums its block of all
 * segments in rank order (in place, in its own segment), copy every block out. */
static int allreduce_f32_shm(Comm *c, float *buf, size_t n) {
    if (shm_window(c, n)) return -1;
    int P = c->size;
    float *mine = c->seg[c->rank], *const *seg = c->seg;
    memcpy(mine, buf, n * sizeof(float));
    if (shm_sync(c)) return -1;
    size_t lo, hi;
    block(n, P, c->rank, &lo, &hi);
#pragma omp parallel for schedule(static)
    for (size_t i = lo; i < hi; i++) {
        double s = seg[0][i];
        for (int b = 1; b < P; b++) s += seg[b][i];
        mine[i] = (float)s;
    }
    if (shm_sync(c)) return -1;
    for (int b = 0; b < P; b++) {
        block(n, P, b, &lo, &hi);
        memcpy(buf + lo, seg[b] + lo, (hi - lo) * sizeof(float));
    }
    return shm_sync(c); /* nobody copies in the next vector before all have copied out */
}

/* Small vectors: gather all P copies, sum in rank order. */
static int allreduce_small(Comm *c, void *buf, size_t n, int dbl) {
    size_t es = dbl ? sizeof(double) : sizeof(float);
    int P = c->size;
    char *all = (char *)scratch(c, (n * es * P + 7) / 8 + 1);
    int rc = MPI_Allgather(buf, (int)n, dbl ? MPI_DOUBLE : MPI_FLOAT, all, (int)n,
                           dbl ? MPI_DOUBLE : MPI_FLOAT, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "allreduce");
    for (size_t i = 0; i < n; i++) {
        if (dbl) {
            const double *a = (const double *)all;
            double s = a[i];
            for (int b = 1; b < P; b++) s += a[(size_t)b * n + i];
            ((double *)buf)[i] = s;
        } else {
            const float *a = (const float *)all;
            double s = a[i];
            for (int b = 1; b < P; b++) s += a[(size_t)b * n + i];
            ((float *)buf)[i] = (float)s;
        }
    }
    return 0;
}

int comm_allreduce_f32(Comm *c, float *buf, size_t n) {
    if (!c->mpi || n == 0) return 0;
    BEGIN;
    int P = c->size, rc;
    if (n * sizeof(float) * P <= 65536) {
        rc = allreduce_small(c, buf, n, 0);
        END((P - 1) * n * sizeof(float));
    } else {
        rc = c->shm ? allreduce_f32_shm(c, buf, n) : allreduce_f32_blocks(c, buf, n);
        END(2.0 * (P - 1) / P * n * sizeof(float));
    }
    return rc;
}

int comm_allreduce_f64(Comm *c, double *buf, size_t n) {
    if (!c->mpi || n == 0) return 0;
    BEGIN;
    int rc = allreduce_small(c, buf, n, 1);
    END((c->size - 1) * n * sizeof(double));
    return rc;
}

int comm_allgather_f32(Comm *c, const float *send, size_t n, float *recv) {
    if (!c->mpi) {
        if (recv != send) memmove(recv, send, n * sizeof(float));
        return 0;
    }
    BEGIN;
    int rc = MPI_Allgather(send, (int)n, MPI_FLOAT, recv, (int)n, MPI_FLOAT, MPI_COMM_WORLD);
    END((c->size - 1) * n * sizeof(float));
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "allgather");
}

int comm_reduce_scatter_add_f32(Comm *c, const float *send, float *recv, size_t n) {
    if (!c->mpi) {
        for (size_t i = 0; i < n; i++) recv[i] += send[i];
        return 0;
    }
    BEGIN;
    int P = c->size;
    float *all = (float *)scratch(c, (P * n + 1) / 2 + 1);
    /* every rank sends block b of its buffer to rank b */
    int rc = MPI_Alltoall(send, (int)n, MPI_FLOAT, all, (int)n, MPI_FLOAT, MPI_COMM_WORLD);
    if (rc == MPI_SUCCESS)
        for (size_t i = 0; i < n; i++) {
            double s = all[i];
            for (int b = 1; b < P; b++) s += all[(size_t)b * n + i];
            recv[i] += (float)s;
        }
    END((P - 1) * n * sizeof(float));
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "reduce-scatter");
}

int comm_bcast(Comm *c, void *buf, size_t bytes, int root) {
    if (!c->mpi) return 0;
    BEGIN;
    int rc = MPI_SUCCESS;
    for (size_t off = 0; off < bytes && rc == MPI_SUCCESS; off += 1 << 30) {
        size_t k = bytes - off < (1u << 30) ? bytes - off : 1u << 30;
        rc = MPI_Bcast((char *)buf + off, (int)k, MPI_BYTE, root, MPI_COMM_WORLD);
    }
    END(c->rank == root ? bytes : 0);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "broadcast");
}

int comm_allgather_u64(Comm *c, uint64_t v, uint64_t *all) {
    if (!c->mpi) {
        all[0] = v;
        return 0;
    }
    BEGIN;
    int rc = MPI_Allgather(&v, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    END((c->size - 1) * sizeof v);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "allgather");
}

int comm_any(Comm *c, int flag) {
    if (!c->mpi) return flag != 0;
    BEGIN;
    int in = flag != 0, outv = 0;
    int rc = MPI_Allreduce(&in, &outv, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    END((c->size - 1) * sizeof in);
    return rc == MPI_SUCCESS ? outv : mpi_fail(rc, "allreduce");
}

int comm_barrier(Comm *c) {
    if (!c->mpi) return 0;
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "barrier");
}

int comm_pingpong(Comm *c, size_t bytes, int reps, double *one_way) {
    *one_way = 0;
    if (!c->mpi || c->rank > 1) return comm_barrier(c);
    char *buf = sc_alloc(bytes ? bytes : 1);
    int peer = 1 - c->rank, rc = MPI_Barrier(MPI_COMM_WORLD);
    double t0 = sc_now();
    for (int r = 0; r < reps && rc == MPI_SUCCESS; r++) {
        if (c->rank == 0) {
            rc = MPI_Send(buf, (int)bytes, MPI_BYTE, peer, 7, MPI_COMM_WORLD);
            if (rc == MPI_SUCCESS)
                rc = MPI_Recv(buf, (int)bytes, MPI_BYTE, peer, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else {
            rc = MPI_Recv(buf, (int)bytes, MPI_BYTE, peer, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            if (rc == MPI_SUCCESS) rc = MPI_Send(buf, (int)bytes, MPI_BYTE, peer, 7, MPI_COMM_WORLD);
        }
    }
    *one_way = (sc_now() - t0) / (2.0 * (reps > 0 ? reps : 1));
    sc_free(buf);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "ping-pong");
    return comm_barrier(c);
}

void comm_stats(const Comm *c, CommStats *s) { *s = c->st; }
void comm_stats_reset(Comm *c) { memset(&c->st, 0, sizeof c->st); }
