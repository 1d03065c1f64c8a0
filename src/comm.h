/* comm.h - the communicator of a multi-process run: world size, rank, and the few collective
 * operations data-parallel SimCLR needs. Two backends behind one interface:
 *   - single: the program was not launched by mpirun (or with one process): size 1, rank 0,
 *     every operation is a copy or nothing. MPI is never started.
 *   - mpi: launched by mpirun with P > 1 processes (detected from the environment mpirun sets:
 *     OMPI_COMM_WORLD_SIZE, or PMI_SIZE / PMIX_SIZE-style launchers): MPI_Init_thread(FUNNELED)
 *     in comm_init, MPI_Finalize in comm_free. OpenMP threads and loader threads never call MPI.
 *
 *     Comm *c;
 *     if (comm_init(&c)) sc_fatal("%s", sc_error());
 *     comm_allreduce_f32(c, grads, n);          // sum over processes, in place
 *     comm_free(c);
 *
 * Determinism: the sums are computed by this module, not by MPI's reduction algorithms:
 * element e is summed as ((x_0 + x_1) + x_2) + ... in rank order (floats in double), so every
 * process gets the same bits and two runs with the same P give the same bits. Large float
 * buffers: when every process runs on one machine, through an MPI-3 shared window (copy in, sum
 * one block of every segment, copy out: memory bandwidth); otherwise (several machines,
 * `--mca btl tcp,self`, or SIMCLR_COMM_SHM=0) as reduce-scatter (alltoallv) + allgatherv, i.e.
 * 2 (P-1)/P x n x 4 bytes sent per process. Both paths give the same bits. Small ones
 * (<= 64 KiB gathered) as one allgather.
 *
 * Errors: MPI errors are returned (MPI_ERRORS_RETURN) as -1 with sc_error() set; the caller
 * prints and calls comm_abort, which ends every process of the job. A process that dies makes
 * mpirun end the others (its own message names the rank).
 */
#ifndef SIMCLR_COMM_H
#define SIMCLR_COMM_H

#include <stddef.h>
#include <stdint.h>

typedef struct Comm Comm;

/* Counters of the traffic this process sent, and the wall time spent inside the collectives. */
typedef struct {
    long calls;
    double bytes;   /* payload bytes sent by this process */
    double seconds; /* wall time inside comm_* calls */
} CommStats;

/* The number of processes mpirun started (from the environment), 1 when not launched by it. */
int comm_env_size(void);
/* The rank mpirun gave this process (environment), 0 when not launched by it. */
int comm_env_rank(void);

int comm_init(Comm **c);
void comm_free(Comm *c);   /* MPI_Finalize for the mpi backend */
int comm_rank(const Comm *c);
int comm_size(const Comm *c);
const char *comm_backend(const Comm *c); /* "single" | "mpi, shared memory" | "mpi" */
/* Ends every process of the job with status code (MPI_Abort), or exit(code) alone. */
void comm_abort(Comm *c, int code) __attribute__((noreturn));

/* Large sums through shared memory (on != 0; possible only when every process runs on this
 * machine) or messages: for measurements (`simclr bench --network` times both). Returns the
 * previous setting. Every process must make the same call. */
int comm_set_shm(Comm *c, int on);

/* Sum over processes, in place, the same bits on every process. */
int comm_allreduce_f32(Comm *c, float *buf, size_t n);
int comm_allreduce_f64(Comm *c, double *buf, size_t n);
/* recv (P*n) = the n-element send buffers of ranks 0..P-1, in rank order. */
int comm_allgather_f32(Comm *c, const float *send, size_t n, float *recv);
/* recv (n) += sum over ranks (rank order) of block `rank` of their send (P*n). */
int comm_reduce_scatter_add_f32(Comm *c, const float *send, float *recv, size_t n);
int comm_bcast(Comm *c, void *buf, size_t bytes, int root);
/* all (P) = the value of every rank. */
int comm_allgather_u64(Comm *c, uint64_t v, uint64_t *all);
/* Logical OR of flag over the processes (1 or 0), -1 on error. */
int comm_any(Comm *c, int flag);
int comm_barrier(Comm *c);

/* Ping-pong of `bytes` between ranks 0 and 1, reps round trips: the one-way time per message
 * (latency for small messages, bytes / time = bandwidth for large ones) into *one_way on those
 * two ranks. A collective: every rank calls it. */
int comm_pingpong(Comm *c, size_t bytes, int reps, double *one_way);

void comm_stats(const Comm *c, CommStats *s);
void comm_stats_reset(Comm *c);

#endif
