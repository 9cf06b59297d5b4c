/* surface.h — a smooth colour surface (quadratic in position, per channel) fitted to the
 * backdrop pixels of a photo, and the small linear solve behind it.
 *
 * A studio sweep, a paper roll or a painted wall lights unevenly but smoothly: a quadratic in
 * (u, v) = position over the frame size minus one half predicts it to within the noise, so what
 * departs from the surface is product, shadow or clutter. */
#ifndef PIMG_SURFACE_H
#define PIMG_SURFACE_H

#include "tensor.h"

/* The six basis values 1, u, v, u², uv, v² at (u, v). */
void pimg_surface_basis(double u, double v, double phi[6]);

/* Adds pixel (x, y) of the RGB tensor t to the least-squares normal equations A, b of the
 * three channels' surfaces. */
void pimg_surface_add_sample(const pimg_tensor *t, int x, int y, double A[3][6][6], double b[3][6]);

/* Solves the 6x6 system A x = b (Gaussian elimination with partial pivoting; A and b are
 * overwritten). Returns -1 when the system is singular, else 0. */
int pimg_surface_solve(double A[6][6], double b[6], double x[6]);

/* Fits coef[c] (c < 3) of the RGB tensor t over the pixels whose use[y * w + x] is non-zero,
 * sampled every step pixels: from the median colour, three least-squares fits, each on the
 * inliers of the previous surface (residual within 3 robust sigmas, from the median residual,
 * so an object covering a fair part of the samples is left out). *sigma receives the RMS residual (0..1 RGB units) of the
 * final inliers. Returns -1 when fewer than 50 samples are usable or the fit is singular.
 * No allocation beyond a temporary buffer freed before return (-1 on no memory). */
int pimg_surface_fit(const pimg_tensor *t, const unsigned char *use, int step, double coef[3][6], double *sigma);

/* The surface's colour at pixel (x, y) of a w x h frame. */
void pimg_surface_at(const double coef[3][6], int w, int h, int x, int y, double rgb[3]);

/* Colour distance (RGB, 0..1 units) of pixel (x, y) of the RGB tensor t from the surface. */
double pimg_surface_residual(const pimg_tensor *t, const double coef[3][6], int x, int y);

#endif
