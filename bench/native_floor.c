/* The floor of the writer's design with the writer outside the GIL: see native_floor.py.
 *
 * Callers (Python threads through ctypes, which releases the GIL) enqueue a command into
 * a bounded queue and block on their own condvar. One pthread writer takes everything
 * queued, decides each command in order against an in-memory balance array, appends the
 * batch's rows (user, seq, delta, balance_after) to an O_DSYNC log with ONE pwrite, and
 * only then wakes each caller: acknowledged means durable. No applier (no DuckDB). One
 * instance per process (global state); nf_open / nf_close bracket one measurement.
 *
 *   cc -O2 -shared -fPIC -pthread -o libnative_floor.so native_floor.c
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define NF_QUEUE 4096
#define NF_WAIT_S 30 /* every wait is bounded: a caller gives up after this */

#define NF_INSUFFICIENT (-1) /* the balance would go below zero: nothing changed */
#define NF_TIMEOUT (-2)
#define NF_IO (-3)
#define NF_BAD_USER (-4)
#define NF_CLOSED (-5)

typedef struct {
    int user;
    long long credits;
    long long result;
    int done;
    pthread_mutex_t lock;
    pthread_cond_t answered;
} nf_command;

typedef struct {
    int64_t user, seq, delta, balance_after;
} nf_row;

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_not_empty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t q_not_full = PTHREAD_COND_INITIALIZER;
static nf_command *queue_[NF_QUEUE];
static int q_head, q_count, stopping, running;

static pthread_t writer;
static int log_fd = -1, n_users;
static long long *balances;
static long long batches, commands;

static void deadline(struct timespec *ts, int seconds) {
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += seconds;
}

static void *writer_main(void *unused) {
    static nf_command *batch[NF_QUEUE];
    static nf_row rows[NF_QUEUE];
    long long seq = 0;
    off_t offset = 0;
    (void)unused;
    for (;;) {
        pthread_mutex_lock(&q_lock);
        while (q_count == 0 && !stopping) {
            struct timespec ts;
            deadline(&ts, 1); /* wakes at least every second to re-check `stopping` */
            pthread_cond_timedwait(&q_not_empty, &q_lock, &ts);
        }
        if (q_count == 0) { /* stopping, and every queued caller answered */
            pthread_mutex_unlock(&q_lock);
            return NULL;
        }
        int n = q_count;
        for (int i = 0; i < n; i++) batch[i] = queue_[(q_head + i) % NF_QUEUE];
        q_head = (q_head + n) % NF_QUEUE;
        q_count = 0;
        pthread_cond_broadcast(&q_not_full);
        pthread_mutex_unlock(&q_lock);

        int n_rows = 0;
        for (int i = 0; i < n; i++) {
            nf_command *c = batch[i];
            long long balance = balances[c->user] + c->credits;
            if (balance < 0) {
                c->result = NF_INSUFFICIENT;
                continue;
            }
            balances[c->user] = balance;
            c->result = balance;
            rows[n_rows++] = (nf_row){c->user, ++seq, c->credits, balance};
        }
        size_t size = (size_t)n_rows * sizeof(nf_row);
        if (size > 0) {
            ssize_t written = pwrite(log_fd, rows, size, offset); /* synced: O_DSYNC */
            if (written != (ssize_t)size) {
                for (int i = 0; i < n; i++) batch[i]->result = NF_IO;
            } else {
                offset += (off_t)size;
            }
        }
        batches++;
        commands += n;
        for (int i = 0; i < n; i++) {
            nf_command *c = batch[i];
            pthread_mutex_lock(&c->lock);
            c->done = 1;
            pthread_cond_signal(&c->answered);
            pthread_mutex_unlock(&c->lock);
        }
    }
}

int nf_open(const char *log_path, int users) {
    if (running || users <= 0) return -EINVAL;
    log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_DSYNC, 0600);
    if (log_fd < 0) return -errno;
    balances = malloc(sizeof(long long) * (size_t)users);
    if (!balances) {
        close(log_fd);
        return -ENOMEM;
    }
    for (int i = 0; i < users; i++) balances[i] = 1000000000LL;
    n_users = users;
    q_head = q_count = stopping = 0;
    batches = commands = 0;
    int err = pthread_create(&writer, NULL, writer_main, NULL);
    if (err) {
        free(balances);
        close(log_fd);
        return -err;
    }
    running = 1;
    return 0;
}

long long nf_call(int user, long long credits) {
    if (user < 0 || user >= n_users) return NF_BAD_USER;
    nf_command c = {.user = user, .credits = credits};
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.answered, NULL);
    struct timespec ts;
    deadline(&ts, NF_WAIT_S);
    long long result = NF_TIMEOUT;

    pthread_mutex_lock(&q_lock);
    while (q_count == NF_QUEUE && !stopping)
        if (pthread_cond_timedwait(&q_not_full, &q_lock, &ts) == ETIMEDOUT) break;
    int queued = q_count < NF_QUEUE && !stopping;
    if (queued) {
        queue_[(q_head + q_count) % NF_QUEUE] = &c;
        q_count++;
        pthread_cond_signal(&q_not_empty);
    } else if (stopping) {
        result = NF_CLOSED;
    }
    pthread_mutex_unlock(&q_lock);

    if (queued) {
        /* Once queued, the writer holds &c: wait for it however long it takes, else it
         * would write into a dead stack frame. The writer never drops a queued command. */
        pthread_mutex_lock(&c.lock);
        while (!c.done) pthread_cond_wait(&c.answered, &c.lock);
        pthread_mutex_unlock(&c.lock);
        result = c.result;
    }
    pthread_cond_destroy(&c.answered);
    pthread_mutex_destroy(&c.lock);
    return result;
}

void nf_close(void) {
    if (!running) return;
    pthread_mutex_lock(&q_lock);
    stopping = 1;
    pthread_cond_broadcast(&q_not_empty);
    pthread_cond_broadcast(&q_not_full);
    pthread_mutex_unlock(&q_lock);
    pthread_join(writer, NULL);
    close(log_fd);
    free(balances);
    balances = NULL;
    log_fd = -1;
    running = 0;
}

long long nf_batches(void) { return batches; }
long long nf_commands(void) { return commands; }
