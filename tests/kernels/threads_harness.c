/* A check of the compiled kernels' threads (src/striate/kernels/native/threads.c) under
 * ThreadSanitizer, built by tests/kernels/test_native.py: three threads each make 2000 calls
 * of run_parts, cut into 1 to 4 parts, on a job that doubles its rows; every result is
 * checked, and the sanitizer reports any data race between the callers and the workers. */
#include "common.h"
#include <pthread.h>
#include <stdio.h>
#include <time.h>

enum { ROWS = 1000, CALLS = 2000 };

static int double_rows(const job *j, idx r0, idx r1, int part)
{
    const double *in = j->in[0];
    double *out = j->out[0];
    for (idx i = r0; i < r1; i++)
        out[i] = 2.0 * in[i];
    return 0;
}

static void *caller(void *unused)
{
    double in[ROWS], out[ROWS];
    for (int i = 0; i < ROWS; i++)
        in[i] = i;
    for (int call = 0; call < CALLS; call++) {
        const job j = {double_rows, DT_F64, 0, 0, NULL, 0, {in}, {out}};
        if (run_parts(&j, 0, ROWS, 1 + call % 4) != 0)
            return "an error";
        for (int i = 0; i < ROWS; i++)
            if (out[i] != 2.0 * i)
                return "a wrong row";
        if (call % 500 == 0) { /* long enough for the workers to fall asleep */
            const struct timespec pause = {0, 300000};
            nanosleep(&pause, NULL);
        }
    }
    return NULL;
}

int main(void)
{
    threads_init();
    pthread_t threads[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&threads[i], NULL, caller, NULL);
    const char *failed = NULL;
    for (int i = 0; i < 3; i++) {
        void *result;
        pthread_join(threads[i], &result);
        failed = failed ? failed : result;
    }
    printf("%s\n", failed ? failed : "threads-harness-ok");
    return failed != NULL;
}
