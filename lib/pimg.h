/* pimg.h — process-wide set-up of the core library.
 *
 * Call pimg_init once before any other lib/ function and pimg_shutdown at exit. It starts
 * libvips, blocks its untrusted loaders, turns its operation cache off (a server sees each
 * image once; the cache only holds memory) and sets how many threads each libvips pipeline
 * may use. */
#ifndef PIMG_PIMG_H
#define PIMG_PIMG_H

#include "status.h"

#define PIMG_VERSION "0.1.0"

/* argv0 may be NULL. vips_threads: threads per libvips pipeline, 0 = libvips default.
 * Returns INTERNAL if libvips cannot start. */
pimg_status pimg_init(const char *argv0, int vips_threads, pimg_error *err);

void pimg_shutdown(void);

#endif
