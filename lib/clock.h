/* clock.h — the monotonic clock every timing, budget and deadline in pimg is measured on.
 * Deadlines passed between modules (pimg_jpeg_opts.deadline_ms, the pipeline's) are values of
 * pimg_clock_ms(). */
#ifndef PIMG_CLOCK_H
#define PIMG_CLOCK_H

/* CLOCK_MONOTONIC in milliseconds (not wall time: immune to clock changes). */
double pimg_clock_ms(void);

/* The same clock in seconds, for training progress and reports. */
double pimg_clock_s(void);

#endif
