/* The kernels' threads: `run_parts` cuts a job's rows into parts and runs part 0 on the calling
 * thread and each other part on a worker thread of its own, all at once.
 *
 * A kernel call of a training step lasts 0.1-3 ms. Handing work to Python threads cost 50-75 us
 * a call here (a queue, a future, a sleeping thread woken, the GIL taken twice), as much as a
 * LeNet-5 pooling pass; these workers are plain POSIX threads that take no GIL. Each one waits
 * for its next part spinning for SPIN_NS (the Python between two kernel calls of a step is
 * shorter than that), then asleep on a condition variable, so an idle process uses no CPU.
 *
 * Worker i has a slot: the caller writes the part into it and then bumps the slot's `posted`
 * counter; the worker reads the part only after it sees the new count and bumps `finished`
 * when done, and the caller writes the slot again only after it saw that. One region runs at
 * a time: a thread that calls while another's region runs (two Python threads each calling a
 * kernel) runs all its parts itself. After a fork the child starts without workers.
 */
#include "common.h"

#if defined(_WIN32)

void threads_init(void) {}

int run_parts(const job *j, idx n0, idx n1, int parts)
{
    int rc = 0;
    for (int t = 0; t < parts && rc == 0; t++)
        rc = j->rows(j, n0 + (n1 - n0) * t / parts, n0 + (n1 - n0) * (t + 1) / parts, t);
    return rc;
}

#else

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define SPIN_NS 100000 /* 0.1 ms */

typedef struct {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;    /* the worker sleeps on it waiting for `posted` to move */
    pthread_cond_t done;    /* the caller sleeps on it waiting for `finished` to move */
    atomic_uint posted;     /* parts handed to this worker so far */
    atomic_uint finished;   /* parts it has finished */
    atomic_int sleeping;    /* the worker is (about to be) asleep on `wake` */
    atomic_int waiting;     /* the caller is (about to be) asleep on `done` */
    const job *j;           /* the part: job, rows [r0, r1), part index, its result */
    idx r0, r1;
    int part, rc;
} slot;

static slot slots[MAX_PARTS - 1];
static int started;         /* workers running */
static pthread_mutex_t region = PTHREAD_MUTEX_INITIALIZER;

static void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Wait until *counter differs from seen: spin for SPIN_NS, then sleep on cond with *flag set.
 * The waker changes the counter and then looks at the flag (both sequentially consistent),
 * so at least one of the two sees the other's write and no wake-up is lost. */
static void await(slot *s, atomic_uint *counter, unsigned seen, atomic_int *flag,
                  pthread_cond_t *cond)
{
    const long long until = now_ns() + SPIN_NS;
    for (int i = 1; atomic_load(counter) == seen; i++) {
        relax();
        if (i % 64 == 0 && now_ns() > until) {
            pthread_mutex_lock(&s->lock);
            atomic_store(flag, 1);
            while (atomic_load(counter) == seen)
                pthread_cond_wait(cond, &s->lock);
            atomic_store(flag, 0);
            pthread_mutex_unlock(&s->lock);
            return;
        }
    }
}

static void notify(slot *s, atomic_int *flag, pthread_cond_t *cond)
{
    if (atomic_load(flag)) {
        pthread_mutex_lock(&s->lock);
        pthread_cond_signal(cond);
        pthread_mutex_unlock(&s->lock);
    }
}

static void *worker(void *arg)
{
    slot *s = arg;
    for (unsigned seen = 0;; seen++) { /* `posted` was 0 when the thread was created */
        await(s, &s->posted, seen, &s->sleeping, &s->wake);
        s->rc = s->j->rows(s->j, s->r0, s->r1, s->part);
        atomic_store(&s->finished, seen + 1);
        notify(s, &s->waiting, &s->done);
    }
    return NULL;
}

/* Workers up to `count`; returns how many run (fewer if a thread could not be created). */
static int start_workers(int count)
{
    while (started < count) {
        slot *s = &slots[started];
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->wake, NULL);
        pthread_cond_init(&s->done, NULL);
        atomic_init(&s->posted, 0);
        atomic_init(&s->finished, 0);
        atomic_init(&s->sleeping, 0);
        atomic_init(&s->waiting, 0);
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        const int failed = pthread_create(&s->thread, &attr, worker, s);
        pthread_attr_destroy(&attr);
        if (failed)
            break;
        started++;
    }
    return started;
}

/* fork(): the parent waits for a running region to end; the child has no workers. */
static void lock_region(void) { pthread_mutex_lock(&region); }
static void unlock_region(void) { pthread_mutex_unlock(&region); }
static void forget_workers(void)
{
    started = 0;
    pthread_mutex_init(&region, NULL);
}

void threads_init(void) { pthread_atfork(lock_region, unlock_region, forget_workers); }

static int part_rows(const job *j, idx n0, idx n1, int t, int parts)
{
    const idx n = n1 - n0;
    return j->rows(j, n0 + n * t / parts, n0 + n * (t + 1) / parts, t);
}

int run_parts(const job *j, idx n0, idx n1, int parts)
{
    const int owner = parts > 1 && pthread_mutex_trylock(&region) == 0;
    int helpers = owner ? start_workers(parts - 1) : 0;
    if (helpers > parts - 1)
        helpers = parts - 1;
    const idx n = n1 - n0;
    for (int t = 1; t <= helpers; t++) {
        slot *s = &slots[t - 1];
        s->j = j;
        s->r0 = n0 + n * t / parts;
        s->r1 = n0 + n * (t + 1) / parts;
        s->part = t;
        atomic_fetch_add(&s->posted, 1);
        notify(s, &s->sleeping, &s->wake);
    }
    int rc = part_rows(j, n0, n1, 0, parts); /* this thread: part 0, and any no worker took */
    for (int t = helpers + 1; t < parts; t++) {
        const int r = part_rows(j, n0, n1, t, parts);
        rc = rc ? rc : r;
    }
    for (int t = 1; t <= helpers; t++) {
        slot *s = &slots[t - 1];
        await(s, &s->finished, atomic_load(&s->posted) - 1, &s->waiting, &s->done);
        rc = rc ? rc : s->rc;
    }
    if (owner)
        pthread_mutex_unlock(&region);
    return rc;
}

#endif
