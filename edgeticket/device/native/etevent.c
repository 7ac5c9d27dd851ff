/* edgeticket event backend: event-driven execution of a spiking ticket with compressed weights.
 *
 * The network file (".etsp", written by edgeticket/formats/etsp.py, read here) is the resident form of
 * the weights: per layer, a CSC matrix whose columns are the layer's inputs (conv: input channel x kernel
 * offset; linear: input feature) and whose rows are output channels, each row index delta-coded in one byte
 * (fillers of value 0 bridge gaps over 255). Nothing is ever densified.
 *
 * Per timestep, a layer fed by spikes visits only its active inputs (the event list of the previous layer)
 * and, for each, only the nonzero weights of that input's columns, adding them to the outputs they reach:
 * no multiplications. The first conv (real-valued image, direct encoding) is a sparse-weight x dense-input
 * kernel run once per call. The LIF update is fused with the pass that resets the layer's input currents to
 * the bias and that builds the next event list.
 *
 * Activations are channel-last (HWC) so the outputs one event reaches are contiguous. The arithmetic of the
 * LIF is that of the ONNX graph: h = v + (x - v) / tau; s = h >= v_th; v = h * (1 - s), in float32, without
 * fused multiply-adds (build with -ffp-contract=off).
 *
 * Plain C99 (+ optional OpenMP over the samples of a batch); no assembly. Built for the host by the
 * project's setup and cross-compiled for aarch64 with the target's compiler.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define ET_MAGIC 0x50535445u /* "ETSP" little-endian */
#define ET_VERSION 1u

#ifndef ET_ACC
#define ET_ACC double
#endif
typedef ET_ACC acc_t; /* accumulator of the synaptic currents (see et_run) */

enum { K_CONV_IMAGE = 0, K_CONV_SPIKES = 1, K_MAXPOOL = 2, K_LINEAR_SPIKES = 3 };

typedef struct {
    uint32_t kind, cin, hin, win, cout, hout, wout, k, stride, pad, lif, ncols, nnz;
    const int32_t *colptr; /* ncols + 1 */
    const uint8_t *gaps;   /* nnz: row = previous row + gap (the first from -1) */
    const float *val;      /* nnz */
    const float *bias;     /* cout */
} et_layer;

typedef struct {
    void *blob;
    size_t blob_bytes;
    uint32_t nlayers, in_c, in_h, in_w, timesteps, num_classes, nlif, nsyn;
    float tau, v_th;
    et_layer *layers;
    size_t state_floats; /* membrane floats per sample, all LIF layers */
    size_t scratch_floats, scratch_ints;
} et_net;

static size_t align4(size_t n) { return (n + 3u) & ~(size_t)3u; }

const char *et_version(void) { return "etevent 1"; }

/* Loads a network file. On error returns NULL and writes a message to err (size errlen). */
et_net *et_load(const char *path, char *err, int errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "cannot open %s", path); return NULL; }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (size < 48) { fclose(f); snprintf(err, errlen, "%s is too short for a network file", path); return NULL; }
    uint8_t *blob = (uint8_t *)malloc((size_t)size);
    if (!blob) { fclose(f); snprintf(err, errlen, "out of memory"); return NULL; }
    if (fread(blob, 1, (size_t)size, f) != (size_t)size) {
        fclose(f); free(blob); snprintf(err, errlen, "short read on %s", path); return NULL;
    }
    fclose(f);
    const uint32_t *h = (const uint32_t *)blob;
    if (h[0] != ET_MAGIC || h[1] != ET_VERSION) {
        free(blob); snprintf(err, errlen, "%s is not an .etsp v1 network file", path); return NULL;
    }
    et_net *n = (et_net *)calloc(1, sizeof(et_net));
    n->blob = blob; n->blob_bytes = (size_t)size;
    n->nlayers = h[2]; n->in_c = h[3]; n->in_h = h[4]; n->in_w = h[5]; n->timesteps = h[6];
    memcpy(&n->tau, &h[7], 4); memcpy(&n->v_th, &h[8], 4); n->num_classes = h[9];
    n->layers = (et_layer *)calloc(n->nlayers, sizeof(et_layer));
    size_t off = 12 * 4;
    size_t maxmap = (size_t)n->in_c * n->in_h * n->in_w;
    for (uint32_t i = 0; i < n->nlayers; i++) {
        if (off + 13 * 4 > (size_t)size) goto truncated;
        const uint32_t *r = (const uint32_t *)(blob + off);
        et_layer *L = &n->layers[i];
        L->kind = r[0]; L->cin = r[1]; L->hin = r[2]; L->win = r[3]; L->cout = r[4]; L->hout = r[5];
        L->wout = r[6]; L->k = r[7]; L->stride = r[8]; L->pad = r[9]; L->lif = r[10]; L->ncols = r[11];
        L->nnz = r[12];
        off += 13 * 4;
        if (L->kind != K_MAXPOOL) {
            size_t need = 4 * ((size_t)L->ncols + 1) + align4(L->nnz) + 4 * (size_t)L->nnz + 4 * (size_t)L->cout;
            if (off + need > (size_t)size) goto truncated;
            L->colptr = (const int32_t *)(blob + off); off += 4 * ((size_t)L->ncols + 1);
            L->gaps = blob + off; off += align4(L->nnz);
            L->val = (const float *)(blob + off); off += 4 * (size_t)L->nnz;
            L->bias = (const float *)(blob + off); off += 4 * (size_t)L->cout;
            n->nsyn += (L->kind != K_CONV_IMAGE);
        }
        size_t outn = (size_t)L->cout * L->hout * L->wout;
        if (outn > maxmap) maxmap = outn;
        if (L->lif) { n->nlif++; n->state_floats += outn; }
    }
    if (off != (size_t)size) goto truncated;
    n->scratch_floats = maxmap;
    n->scratch_ints = maxmap;
    return n;
truncated:
    snprintf(err, errlen, "%s is truncated or corrupt", path);
    free(n->layers); free(n); free(blob);
    return NULL;
}

void et_free(et_net *n) {
    if (!n) return;
    free(n->layers); free(n->blob); free(n);
}

size_t et_resident_bytes(const et_net *n) { return n->blob_bytes + n->nlayers * sizeof(et_layer) + sizeof(et_net); }
uint32_t et_num_lif(const et_net *n) { return n->nlif; }
uint32_t et_num_classes(const et_net *n) { return n->num_classes; }
uint32_t et_num_syn(const et_net *n) { return n->nsyn; }
size_t et_state_floats(const et_net *n) { return n->state_floats; }

/* cur[oy][ox][o] = bias + sum over nonzero w of w * x (x: one sample, CHW float) */
static void conv_image(const et_layer *L, const float *x, acc_t *cur) {
    const uint32_t K = L->k, Ho = L->hout, Wo = L->wout, Co = L->cout;
    for (uint32_t p = 0; p < Ho * Wo; p++)
        for (uint32_t o = 0; o < Co; o++) cur[(size_t)p * Co + o] = L->bias[o];
    for (uint32_t c = 0; c < L->cin; c++)
        for (uint32_t ky = 0; ky < K; ky++)
            for (uint32_t kx = 0; kx < K; kx++) {
                uint32_t col = (c * K + ky) * K + kx;
                int32_t j0 = L->colptr[col], j1 = L->colptr[col + 1];
                if (j0 == j1) continue;
                for (uint32_t oy = 0; oy < Ho; oy++) {
                    int iy = (int)(oy * L->stride + ky) - (int)L->pad;
                    if (iy < 0 || iy >= (int)L->hin) continue;
                    for (uint32_t ox = 0; ox < Wo; ox++) {
                        int ix = (int)(ox * L->stride + kx) - (int)L->pad;
                        if (ix < 0 || ix >= (int)L->win) continue;
                        float xv = x[((size_t)c * L->hin + iy) * L->win + ix];
                        if (xv == 0.0f) continue;
                        acc_t *o = cur + ((size_t)oy * Wo + ox) * Co;
                        int row = -1;
                        for (int32_t j = j0; j < j1; j++) { row += L->gaps[j]; o[row] += (acc_t)L->val[j] * xv; }
                    }
                }
            }
}

/* cur += the nonzero weights reached by each event (HWC index into the input map) */
static void conv_events(const et_layer *L, const int32_t *ev, int nev, acc_t *cur) {
    const int K = (int)L->k, S = (int)L->stride, P = (int)L->pad, Cin = (int)L->cin, Win = (int)L->win;
    const int Ho = (int)L->hout, Wo = (int)L->wout, Co = (int)L->cout;
    for (int e = 0; e < nev; e++) {
        int idx = ev[e], c = idx % Cin, pos = idx / Cin, x = pos % Win, y = pos / Win;
        for (int ky = 0; ky < K; ky++) {
            int oyn = y + P - ky;
            if (oyn < 0 || oyn % S) continue;
            int oy = oyn / S;
            if (oy >= Ho) continue;
            for (int kx = 0; kx < K; kx++) {
                int oxn = x + P - kx;
                if (oxn < 0 || oxn % S) continue;
                int ox = oxn / S;
                if (ox >= Wo) continue;
                int col = (c * K + ky) * K + kx;
                int32_t j0 = L->colptr[col], j1 = L->colptr[col + 1];
                acc_t *o = cur + ((size_t)oy * Wo + ox) * Co;
                int row = -1;
                for (int32_t j = j0; j < j1; j++) { row += L->gaps[j]; o[row] += L->val[j]; }
            }
        }
    }
}

static void linear_events(const et_layer *L, const int32_t *ev, int nev, acc_t *cur) {
    for (int e = 0; e < nev; e++) {
        int col = ev[e];
        int32_t j0 = L->colptr[col], j1 = L->colptr[col + 1];
        int row = -1;
        for (int32_t j = j0; j < j1; j++) { row += L->gaps[j]; cur[row] += L->val[j]; }
    }
}

/* LIF over n neurons fed by cur; writes the event list; resets cur to the bias (period cout) unless keep. */
static int lif_fused(acc_t *cur, float *v, int n, float tau, float vth, int32_t *ev, const float *bias, int cout,
                     int keep) {
    int nev = 0;
    for (int i = 0; i < n; i++) {
        float vi = v[i];
        float h = vi + ((float)cur[i] - vi) / tau;
        float s = (h >= vth) ? 1.0f : 0.0f;
        v[i] = h * (1.0f - s);
        if (s != 0.0f) ev[nev++] = i;
        if (!keep) cur[i] = bias[i % cout];
    }
    return nev;
}

/* 2x2 / stride 2 max-pool of a binary HWC map given as its sorted event list -> the pooled event list */
static int maxpool_events(const et_layer *L, const int32_t *ev, int nev, uint8_t *mark, int32_t *out) {
    const int C = (int)L->cin, Win = (int)L->win, Ho = (int)L->hout, Wo = (int)L->wout;
    const int k = (int)L->k, s = (int)L->stride;
    size_t outn = (size_t)Ho * Wo * C;
    memset(mark, 0, outn);
    for (int e = 0; e < nev; e++) {
        int idx = ev[e], c = idx % C, pos = idx / C, x = pos % Win, y = pos / Win;
        int oy = y / s, ox = x / s;
        if (y - oy * s >= k || x - ox * s >= k || oy >= Ho || ox >= Wo) continue;
        mark[((size_t)oy * Wo + ox) * C + c] = 1;
    }
    int n = 0;
    for (size_t i = 0; i < outn; i++)
        if (mark[i]) out[n++] = (int32_t)i;
    return n;
}

/* One sample: nsteps timesteps from the states in `state` (updated in place).
 * logits[K] receives the sum over the steps; spikes[l * nsteps + t], events[s * nsteps + t] the counts. */
static void run_one(const et_net *n, const float *x, int nsteps, float *state, float *logits, float *spikes,
                    float *events, acc_t *stem_cur, acc_t **cur, int32_t *ev_a, int32_t *ev_b, uint8_t *mark) {
    /* currents of each synaptic layer start at the bias; the image layer's current is computed once */
    for (uint32_t i = 0; i < n->nlayers; i++) {
        const et_layer *L = &n->layers[i];
        if (L->kind == K_CONV_IMAGE) conv_image(L, x, stem_cur);
        else if (L->kind != K_MAXPOOL) {
            size_t outn = (size_t)L->cout * L->hout * L->wout;
            for (size_t j = 0; j < outn; j++) cur[i][j] = L->bias[j % L->cout];
        }
    }
    for (uint32_t k = 0; k < n->num_classes; k++) logits[k] = 0.0f;
    for (int t = 0; t < nsteps; t++) {
        float *v = state;
        int32_t *ev = ev_a, *nxt = ev_b;
        int nev = 0, li = 0, si = 0;
        for (uint32_t i = 0; i < n->nlayers; i++) {
            const et_layer *L = &n->layers[i];
            acc_t *c;
            if (L->kind == K_MAXPOOL) {
                nev = maxpool_events(L, ev, nev, mark, nxt);
                int32_t *tmp = ev; ev = nxt; nxt = tmp;
                continue;
            }
            if (L->kind == K_CONV_IMAGE) c = stem_cur;
            else {
                events[si++ * nsteps + t] = (float)nev;
                c = cur[i];
                if (L->kind == K_CONV_SPIKES) conv_events(L, ev, nev, c);
                else linear_events(L, ev, nev, c);
            }
            int outn = (int)(L->cout * L->hout * L->wout);
            if (L->lif) {
                nev = lif_fused(c, v, outn, n->tau, n->v_th, nxt, L->bias, (int)L->cout, L->kind == K_CONV_IMAGE);
                spikes[li++ * nsteps + t] = (float)nev;
                v += outn;
                int32_t *tmp = ev; ev = nxt; nxt = tmp;
            } else { /* the classifier: its output is this step's logits */
                for (int k = 0; k < outn; k++) { logits[k] += (float)c[k]; c[k] = L->bias[k]; }
            }
        }
    }
}

/* x [B, C, H, W]; state [B, state_floats] (in/out); logits [B, K]; spikes [nlif, nsteps, B];
 * events [nsyn, nsteps, B]. Returns 0, or -1 when scratch memory cannot be had. */
int et_run(const et_net *n, int batch, const float *x, int nsteps, float *state, float *logits, float *spikes,
           float *events, int threads) {
    int failed = 0;
    size_t xin = (size_t)n->in_c * n->in_h * n->in_w;
#ifdef _OPENMP
    if (threads < 1) threads = 1;
    if (threads > batch) threads = batch;
#pragma omp parallel num_threads(threads)
#endif
    {
        size_t curf = 0;
        for (uint32_t i = 0; i < n->nlayers; i++)
            if (n->layers[i].kind != K_MAXPOOL)
                curf += (size_t)n->layers[i].cout * n->layers[i].hout * n->layers[i].wout;
        acc_t *buf = (acc_t *)malloc(curf * sizeof(acc_t) + 2 * n->scratch_ints * sizeof(int32_t) + n->scratch_ints);
        acc_t **cur = (acc_t **)calloc(n->nlayers, sizeof(acc_t *));
        float *sp = (float *)malloc(((size_t)n->nlif + n->nsyn) * nsteps * sizeof(float) + 1);
        if (!buf || !cur || !sp) {
#ifdef _OPENMP
#pragma omp atomic write
#endif
            failed = 1;
        } else {
            acc_t *stem_cur = NULL, *p = buf;
            for (uint32_t i = 0; i < n->nlayers; i++) {
                const et_layer *L = &n->layers[i];
                if (L->kind == K_MAXPOOL) continue;
                size_t outn = (size_t)L->cout * L->hout * L->wout;
                if (L->kind == K_CONV_IMAGE) stem_cur = p; else cur[i] = p;
                p += outn;
            }
            int32_t *ev_a = (int32_t *)p, *ev_b = ev_a + n->scratch_ints;
            uint8_t *mark = (uint8_t *)(ev_b + n->scratch_ints);
            float *ev_counts = sp + (size_t)n->nlif * nsteps;
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
            for (int b = 0; b < batch; b++) {
                run_one(n, x + b * xin, nsteps, state + (size_t)b * n->state_floats, logits + (size_t)b * n->num_classes,
                        sp, ev_counts, stem_cur, cur, ev_a, ev_b, mark);
                for (uint32_t l = 0; l < n->nlif; l++)
                    for (int t = 0; t < nsteps; t++) spikes[((size_t)l * nsteps + t) * batch + b] = sp[l * nsteps + t];
                for (uint32_t s = 0; s < n->nsyn; s++)
                    for (int t = 0; t < nsteps; t++)
                        events[((size_t)s * nsteps + t) * batch + b] = ev_counts[s * nsteps + t];
            }
        }
        free(buf); free(cur); free(sp);
    }
    (void)threads;
    return failed ? -1 : 0;
}
