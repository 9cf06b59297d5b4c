/* shadow.h — takes the product's cast shadow out of its foreground mask.
 *
 * The colour-model mask (mask.c) keeps a soft shadow on the backdrop as product: the shadow
 * departs from the backdrop and sits next to the product. A marketplace white background must
 * be white there too (the optional synthetic shadow of background.c is drawn afterwards). */
#ifndef PIMG_SHADOW_H
#define PIMG_SHADOW_H

#include "status.h"
#include "tensor.h"

/* Clears the shadow from mask (1 channel, the size of the RGB tensor t, 0..1 foreground),
 * in place. A pixel is shadow when the backdrop, dimmed, explains it: its colour is k times
 * the fitted backdrop surface's (0.3 <= k <= 0.97) with little chromatic residual, it is
 * smooth (a penumbra, not a product edge), and it connects to the clear backdrop through
 * such pixels — a grey product with its own sharp outline is never reached. Only on a plain
 * backdrop (surface residual below 0.04); elsewhere the mask is left as it is.
 * *share (may be NULL) receives the fraction of the mask's foreground (>= 0.5) cleared.
 * Allocates only temporaries. */
pimg_status pimg_shadow_remove(const pimg_tensor *t, pimg_tensor *mask, double *share, pimg_error *err);

#endif
