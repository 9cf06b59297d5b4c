/* queue.c — worker pool over a ring buffer guarded by one mutex and two condition variables
 * (work available / pool became idle). Contention is negligible next to image work. */
#include "queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct pimg_pool {
    pthread_mutex_t mu;
    pthread_cond_t work;  /* signalled when a job is queued or the pool closes */
    pthread_cond_t idle;  /* signalled when a job finishes */
    void **ring;
    int cap, head, count;
    int running;
    int closed;
    int n_threads;
    pthread_t *threads;
    pimg_job_fn fn;
    void *arg;
};

static void *worker_main(void *vp)
{
    pimg_pool *p = vp;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->count && !p->closed)
            pthread_cond_wait(&p->work, &p->mu);
        if (!p->count && p->closed)
            break;
        void *job = p->ring[p->head];
        p->head = (p->head + 1) % p->cap;
        p->count--;
        p->running++;
        pthread_mutex_unlock(&p->mu);
        p->fn(job, p->arg);
        pthread_mutex_lock(&p->mu);
        p->running--;
        pthread_cond_broadcast(&p->idle);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

pimg_pool *pimg_pool_new(int workers, int capacity, pimg_job_fn fn, void *arg)
{
    if (workers < 1 || capacity < 1)
        return NULL;
    pimg_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->ring = calloc((size_t)capacity, sizeof *p->ring);
    p->threads = calloc((size_t)workers, sizeof *p->threads);
    if (!p->ring || !p->threads) {
        free(p->ring);
        free(p->threads);
        free(p);
        return NULL;
    }
    p->cap = capacity;
    p->fn = fn;
    p->arg = arg;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->idle, &ca);
    pthread_condattr_destroy(&ca);
    for (int i = 0; i < workers; i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, p))
            break;
        p->n_threads++;
    }
    if (p->n_threads != workers) {
        pimg_pool_free(p);
        return NULL;
    }
    return p;
}

int pimg_pool_submit(pimg_pool *p, void *job, void (*on_accept)(void *job))
{
    int r = PIMG_POOL_OK;
    pthread_mutex_lock(&p->mu);
    if (p->closed)
        r = PIMG_POOL_CLOSED;
    else if (p->count >= p->cap)
        r = PIMG_POOL_FULL;
    else {
        if (on_accept)
            on_accept(job);
        p->ring[(p->head + p->count) % p->cap] = job;
        p->count++;
        pthread_cond_signal(&p->work);
    }
    pthread_mutex_unlock(&p->mu);
    return r;
}

int pimg_pool_waiting(pimg_pool *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->count;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int pimg_pool_running(pimg_pool *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->running;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int pimg_pool_capacity(const pimg_pool *p) { return p->cap; }

void pimg_pool_close(pimg_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->closed = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
}

int pimg_pool_wait_idle(pimg_pool *p, int timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    int r = 0;
    pthread_mutex_lock(&p->mu);
    while (p->count || p->running) {
        if (pthread_cond_timedwait(&p->idle, &p->mu, &dl) == ETIMEDOUT) {
            r = (p->count || p->running) ? -1 : 0;
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return r;
}

void pimg_pool_free(pimg_pool *p)
{
    if (!p)
        return;
    pimg_pool_close(p);
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->idle);
    free(p->ring);
    free(p->threads);
    free(p);
}
