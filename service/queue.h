/* queue.h — a fixed pool of worker threads fed by a bounded FIFO of jobs.
 *
 * Submitting never blocks: when the FIFO is full the caller gets PIMG_POOL_FULL at once and
 * answers 503, so load above capacity is shed instead of queued without bound. Jobs are opaque
 * pointers; the pool does not own them. Workers inherit the signal mask of the thread that
 * creates the pool (the server blocks SIGTERM/SIGINT first, so only its main thread sees them). */
#ifndef PIMG_SERVICE_QUEUE_H
#define PIMG_SERVICE_QUEUE_H

typedef struct pimg_pool pimg_pool;

/* Runs one job on a worker thread; arg is the pool's user argument. */
typedef void (*pimg_job_fn)(void *job, void *arg);

enum { PIMG_POOL_OK = 0, PIMG_POOL_FULL = -1, PIMG_POOL_CLOSED = -2 };

/* Starts `workers` threads and a FIFO of `capacity` waiting jobs. NULL on failure.
 * Ownership: free with pimg_pool_free. */
pimg_pool *pimg_pool_new(int workers, int capacity, pimg_job_fn fn, void *arg);

/* Queues job; PIMG_POOL_FULL when capacity jobs already wait, PIMG_POOL_CLOSED after close.
 * on_accept (may be NULL) runs under the pool lock only when the job is accepted, before any
 * worker can see it — the server suspends the connection there, so a worker never resumes a
 * connection that is not yet suspended, and a refused job leaves nothing to undo. It must not
 * call back into the pool. */
int pimg_pool_submit(pimg_pool *p, void *job, void (*on_accept)(void *job));

/* Jobs waiting, jobs running (snapshot). */
int pimg_pool_waiting(pimg_pool *p);
int pimg_pool_running(pimg_pool *p);
int pimg_pool_capacity(const pimg_pool *p);

/* Refuses further submissions; queued jobs still run. */
void pimg_pool_close(pimg_pool *p);

/* Waits until no job waits or runs, at most timeout_ms. Returns 0 when idle, -1 on timeout. */
int pimg_pool_wait_idle(pimg_pool *p, int timeout_ms);

/* Closes, runs what is queued, joins the workers and frees the pool. NULL-safe. */
void pimg_pool_free(pimg_pool *p);

#endif
