/* edgeticket event backend: event-driven execution of a spiking ticket with compressed weights.
 *
 * The network file (".etsp", written by edgeticket/formats/etsp.py) holds, per layer, a CSC matrix whose
 * columns are the layer's inputs (conv: input channel x kernel offset; linear: input feature) and whose rows
 * are output channels. et_load re-encodes each layer into its resident form and frees the file: nothing is
 * ever densified. A column is stored one of two ways, chosen per layer by density d (nonzeros / cout):
 *   - list (d < 1/5): row gaps of one byte (fillers of value 0 bridge gaps over 255) and the values;
 *   - mask (d >= 1/5): one bit per output channel, in bytes of 8 channels, and the values of the set bits;
 *     an 8-channel block is added with one vector operation. Measured on this project's Xeon (AVX-512): the
 *     mask is 1.7x faster than the list at d = 0.38, equal at d = 0.22 and 0.5x at d = 0.14 and 0.08 (the
 *     list pays a mispredicted loop exit per column, the mask a block per 8 channels). Both forms take about
 *     the same memory there (the mask is the smaller from d = 1/8).
 * Column starts take the smallest form that fits the layer: a u32 base per 8 columns plus a u8 count per column
 * (1.5 bytes a column: the sparse layers, where starts would otherwise outweigh the weights), a u32 base per 32
 * plus a u16 offset per column, or a u32 per column.
 *
 * Execution is layer-major: a layer runs all the call's timesteps before the next (the network is
 * feed-forward), so its weights stay in cache. A layer fed by spikes visits only the active inputs (the event
 * lists of the layer it reads, grouped by position) and, for each, only the nonzero weights of that input's
 * columns, adding them to the outputs they reach: no multiplications. A conv takes up to 8 steps in one pass:
 * an input's columns are decoded once and added to the currents of every step it fired in (a trained
 * network's active neurons fire in 2-3 of 5 steps). The first conv (the
 * real-valued image, direct encoding) runs once per call. The LIF then updates every neuron, emits the next
 * event list and resets the currents to the bias.
 *
 * Exactness: every current is a double accumulator that receives, in order, its bias and then its inputs in
 * ascending (position, channel) order, one kernel offset at a time. Vector lanes and threads only ever hold
 * different output neurons, so the order of additions per neuron is that of a scalar loop, whatever the
 * encoding, the instruction set or the threads (bit for bit, for finite inputs: a zero weight or pixel is
 * skipped, so 0 x inf is never formed). The LIF is the ONNX graph's arithmetic in float32:
 * h = v + (x - v) / tau; s = h >= v_th; v = h * (1 - s), without fused multiply-adds (-ffp-contract=off).
 *
 * Activations are channel-last (HWC), so the outputs one event reaches are contiguous. Plain C99 with
 * optional AVX-512 (x86, -march=native) and OpenMP over the samples of a batch; a scalar path of the same
 * arithmetic elsewhere (aarch64). Built for the host by the project's setup and cross-compiled for a target.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__AVX512F__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
#include <immintrin.h>
#define ET_AVX512 1
#endif

#define ET_MAGIC 0x50535445u /* "ETSP" little-endian */
#define GROUP 32u           /* columns per u32 base of OFF16 column starts */
#define MAX_SLOTS 64        /* per-thread scratch kept between calls */
#define NONE 0xFFFFFFFFu    /* no layer: the image as a source, no join */

enum { K_CONV_IMAGE = 0, K_CONV_SPIKES = 1, K_MAXPOOL = 2, K_LINEAR_SPIKES = 3, K_GLOBAL_AVGPOOL = 4,
       K_LINEAR_REAL = 5 };
enum { ENC_LIST = 0, ENC_MASK = 1 };
/* column starts, the smallest that fits: a u32 base per 8 columns + a u8 count per column; a u32 base per 32
 * columns + a u16 offset per column; a u32 per column */
enum { STARTS_COUNT8 = 0, STARTS_OFF16 = 1, STARTS_U32 = 2 };

typedef struct {
    uint32_t kind, cin, hin, win, cout, hout, wout, k, stride, pad, lif, ncols, nnz;
    uint32_t src, join;     /* the layer it reads (NONE: the image), the layer added before its LIF (or NONE) */
    uint32_t buf;           /* the buffer its output lives in during a call (shared with layers it outlives) */
    uint32_t enc, nblk;     /* nblk: bytes of mask per column (ceil(cout / 8)) */
    uint32_t starts;        /* how column starts are kept (STARTS_*) */
    const uint32_t *base;   /* COUNT8: per 8 columns, OFF16: per 32, the value index of the group's first */
    const uint8_t *cnt8;    /* COUNT8: values per column (a group of 8 sums below 256) */
    const uint16_t *off16;  /* OFF16: ncols + 1 starts relative to their group's base */
    const uint32_t *start;  /* U32: ncols + 1 absolute starts */
    const uint8_t *code;    /* list: gaps [nvals]; mask: masks [ncols * nblk] */
    const float *val;       /* nvals */
    const float *bias;      /* cout */
} et_layer;

typedef struct {
    void *mem;              /* every resident array of the net, one allocation */
    size_t mem_bytes;
    uint32_t nlayers, in_c, in_h, in_w, timesteps, num_classes, nlif, nsyn;
    float tau, v_th;
    et_layer *layers;
    size_t state_floats;    /* membrane floats per sample, all LIF layers */
    size_t maxmap;          /* the largest map (neurons) of the input and every layer */
    uint32_t maxcout, nbufs; /* the widest layer; the output buffers a call needs */
    struct cache *cache;    /* scratch kept between calls (not weights: not in et_resident_bytes) */
} et_net;

struct cache {
    void *slot[MAX_SLOTS];  /* scratch of the calls' threads */
    size_t slot_steps[MAX_SLOTS];
    char busy;              /* the slots are in use by a call */
};

const char *et_version(void) { return "etevent 2"; }

/* ---- loading: the file's CSC columns -> the resident encodings ------------------------------------------ */

typedef struct { const int32_t *colptr; const uint8_t *gaps; const float *val, *bias; } file_layer;

/* the value range [*j0, *j1) of column col */
static inline void col_range(const et_layer *L, uint32_t col, uint32_t *j0, uint32_t *j1) {
    if (L->starts == STARTS_COUNT8) { /* the counts before col in its group of 8, summed in one multiply */
        uint64_t w, below;
        memcpy(&w, L->cnt8 + (col & ~7u), 8);
        below = w & ((1ull << (8 * (col & 7u))) - 1);
        *j0 = L->base[col >> 3] + (uint32_t)((below * 0x0101010101010101ull) >> 56);
        *j1 = *j0 + L->cnt8[col];
    } else if (L->starts == STARTS_OFF16) {
        *j0 = L->base[col / GROUP] + L->off16[col];
        *j1 = L->base[(col + 1) / GROUP] + L->off16[col + 1];
    } else {
        *j0 = L->start[col]; *j1 = L->start[col + 1];
    }
}

static size_t align8(size_t n) { return (n + 7u) & ~(size_t)7u; }

/* the values column col keeps in the encoding chosen (the list keeps the fillers, the mask the nonzeros) */
static uint32_t col_count(const et_layer *L, const file_layer *F, uint32_t col) {
    if (L->enc == ENC_LIST) return (uint32_t)(F->colptr[col + 1] - F->colptr[col]);
    uint32_t k = 0;
    for (int32_t j = F->colptr[col]; j < F->colptr[col + 1]; j++) k += F->val[j] != 0.0f;
    return k;
}

static size_t starts_bytes(const et_layer *L) {
    size_t nc = L->ncols;
    if (L->starts == STARTS_COUNT8) return align8(4 * (nc / 8 + 1)) + align8(nc + 1);
    if (L->starts == STARTS_OFF16) return align8(4 * (nc / GROUP + 1)) + align8(2 * (nc + 1));
    return align8(4 * (nc + 1));
}

/* the resident bytes of layer L (encoding and column starts decided) given its file form; counts its values */
static size_t plan_layer(et_layer *L, const file_layer *F, size_t *nvals) {
    size_t real = 0;
    for (uint32_t j = 0; j < L->nnz; j++) real += F->val[j] != 0.0f;
    L->nblk = (L->cout + 7) / 8;
    L->enc = 5 * real >= (size_t)L->ncols * L->cout ? ENC_MASK : ENC_LIST;
#ifdef ET_FORCE_ENC /* benchmarks of the encodings only */
    L->enc = ET_FORCE_ENC;
#endif
    *nvals = L->enc == ENC_MASK ? real : L->nnz;
    uint32_t g8 = 0, g32 = 0, max8 = 0, max32 = 0;
    for (uint32_t col = 0; col < L->ncols; col++) {
        uint32_t k = col_count(L, F, col);
        if (col % 8 == 0) g8 = 0;
        if (col % GROUP == 0) g32 = 0;
        g8 += k; g32 += k;
        if (g8 > max8) max8 = g8;
        if (g32 > max32) max32 = g32;
    }
    L->starts = max8 < 256 ? STARTS_COUNT8 : max32 < 65536 ? STARTS_OFF16 : STARTS_U32;
    return starts_bytes(L) + align8(L->enc == ENC_MASK ? (size_t)L->ncols * L->nblk : *nvals)
           + align8(4 * *nvals) + align8(4 * (size_t)L->cout);
}

static void fill_layer(et_layer *L, const file_layer *F, size_t nvals, uint8_t **p) {
    const uint32_t nc = L->ncols;
    uint8_t *st = *p; *p += starts_bytes(L);
    uint8_t *code = *p; *p += align8(L->enc == ENC_MASK ? (size_t)nc * L->nblk : nvals);
    float *val = (float *)*p; *p += align8(4 * nvals);
    float *bias = (float *)*p; *p += align8(4 * (size_t)L->cout);
    memset(st, 0, starts_bytes(L));
    memcpy(bias, F->bias, 4 * (size_t)L->cout);
    uint32_t *base = (uint32_t *)st, *start = (uint32_t *)st;
    uint8_t *cnt8 = st + align8(4 * (nc / 8 + 1));
    uint16_t *off16 = (uint16_t *)(st + align8(4 * (nc / GROUP + 1)));
    uint32_t n = 0;
    for (uint32_t col = 0; col <= nc; col++) {
        if (L->starts == STARTS_COUNT8 && col % 8 == 0) base[col / 8] = n;
        if (L->starts == STARTS_OFF16) {
            if (col % GROUP == 0) base[col / GROUP] = n;
            off16[col] = (uint16_t)(n - base[col / GROUP]);
        }
        if (L->starts == STARTS_U32) start[col] = n;
        if (col == nc) break;
        uint32_t n0 = n;
        int row = -1;
        if (L->enc == ENC_MASK) memset(code + (size_t)col * L->nblk, 0, L->nblk);
        for (int32_t j = F->colptr[col]; j < F->colptr[col + 1]; j++) {
            row += F->gaps[j];
            if (L->enc == ENC_LIST) { code[n] = F->gaps[j]; val[n++] = F->val[j]; }
            else if (F->val[j] != 0.0f) {
                code[(size_t)col * L->nblk + row / 8] |= (uint8_t)(1u << (row % 8));
                val[n++] = F->val[j];
            }
        }
        if (L->starts == STARTS_COUNT8) cnt8[col] = (uint8_t)(n - n0);
    }
    L->base = base; L->cnt8 = L->starts == STARTS_COUNT8 ? cnt8 : NULL;
    L->off16 = L->starts == STARTS_OFF16 ? off16 : NULL; L->start = start;
    L->code = code; L->val = val; L->bias = bias;
}

static size_t align4(size_t n) { return (n + 3u) & ~(size_t)3u; }

static int is_pool(const et_layer *L) { return L->kind == K_MAXPOOL || L->kind == K_GLOBAL_AVGPOOL; }

void et_free(et_net *n);

/* Each layer's output goes to a buffer that no layer still to read an earlier output uses: a buffer is free
 * again after the last layer that reads (src) or joins its owner. A chain needs two; a residual block three. */
static int assign_buffers(et_net *n) {
    uint32_t *last = (uint32_t *)calloc(n->nlayers, sizeof(uint32_t)); /* last reader of each layer's output */
    uint32_t *until = (uint32_t *)calloc(n->nlayers, sizeof(uint32_t)); /* a buffer is busy up to this layer */
    if (!last || !until) { free(last); free(until); return -1; }
    for (uint32_t i = 0; i < n->nlayers; i++) {
        const et_layer *L = &n->layers[i];
        last[i] = i;
        /* a conv clears its input's marks from the input's lists after its last meeting, while the next layer
         * already runs: that layer must not write its output over them */
        uint32_t reads_until = L->kind == K_CONV_SPIKES ? i + 1 : i;
        if (L->src != NONE && L->src < i && last[L->src] < reads_until) last[L->src] = reads_until;
        if (L->join != NONE && L->join < i && last[L->join] < i) last[L->join] = i;
    }
    n->nbufs = 0;
    for (uint32_t i = 0; i < n->nlayers; i++) {
        uint32_t b = 0;
        while (b < n->nbufs && until[b] >= i) b++;
        if (b == n->nbufs) n->nbufs++;
        n->layers[i].buf = b;
        until[b] = last[i] > i + 1 ? last[i] : i + 1; /* never the next layer's: thread 0 counts it meanwhile */
    }
    free(last); free(until);
    return 0;
}

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
    if (h[0] != ET_MAGIC || (h[1] != 1 && h[1] != 2)) {
        free(blob); snprintf(err, errlen, "%s is not an .etsp v1 or v2 network file", path); return NULL;
    }
    const size_t rec_words = h[1] == 1 ? 13 : 16; /* v1: a chain, no src / join words */
    et_net *n = (et_net *)calloc(1, sizeof(et_net));
    file_layer *fl = NULL;
    size_t *nvals = NULL;
    if (!n) { free(blob); snprintf(err, errlen, "out of memory"); return NULL; }
    n->nlayers = h[2]; n->in_c = h[3]; n->in_h = h[4]; n->in_w = h[5]; n->timesteps = h[6];
    memcpy(&n->tau, &h[7], 4); memcpy(&n->v_th, &h[8], 4); n->num_classes = h[9];
    n->layers = (et_layer *)calloc(n->nlayers, sizeof(et_layer));
    fl = (file_layer *)calloc(n->nlayers, sizeof(file_layer));
    nvals = (size_t *)calloc(n->nlayers, sizeof(size_t));
    if (!n->layers || !fl || !nvals) { snprintf(err, errlen, "out of memory"); goto fail; }
    size_t off = 12 * 4, total = 0;
    n->maxmap = (size_t)n->in_c * n->in_h * n->in_w;
    for (uint32_t i = 0; i < n->nlayers; i++) {
        if (off + rec_words * 4 > (size_t)size) goto truncated;
        const uint32_t *r = (const uint32_t *)(blob + off);
        et_layer *L = &n->layers[i];
        L->kind = r[0]; L->cin = r[1]; L->hin = r[2]; L->win = r[3]; L->cout = r[4]; L->hout = r[5];
        L->wout = r[6]; L->k = r[7]; L->stride = r[8]; L->pad = r[9]; L->lif = r[10]; L->ncols = r[11];
        L->nnz = r[12];
        L->src = rec_words == 16 ? r[13] : (i ? i - 1 : NONE);
        L->join = rec_words == 16 ? r[14] : NONE;
        off += rec_words * 4;
        if (L->cout > n->maxcout) n->maxcout = L->cout;
        if (!is_pool(L)) {
            size_t need = 4 * ((size_t)L->ncols + 1) + align4(L->nnz) + 4 * (size_t)L->nnz + 4 * (size_t)L->cout;
            if (off + need > (size_t)size) goto truncated;
            fl[i].colptr = (const int32_t *)(blob + off); off += 4 * ((size_t)L->ncols + 1);
            fl[i].gaps = blob + off; off += align4(L->nnz);
            fl[i].val = (const float *)(blob + off); off += 4 * (size_t)L->nnz;
            fl[i].bias = (const float *)(blob + off); off += 4 * (size_t)L->cout;
            total += plan_layer(L, &fl[i], &nvals[i]);
            n->nsyn += (L->kind != K_CONV_IMAGE);
        }
        size_t outn = (size_t)L->cout * L->hout * L->wout;
        if (outn > n->maxmap) n->maxmap = outn;
        if (L->lif) { n->nlif++; n->state_floats += outn; }
    }
    if (off != (size_t)size) goto truncated;
    n->mem = malloc(total ? total : 1);
    if (!n->mem) { snprintf(err, errlen, "out of memory"); goto fail; }
    n->mem_bytes = total;
    uint8_t *p = (uint8_t *)n->mem;
    for (uint32_t i = 0; i < n->nlayers; i++)
        if (!is_pool(&n->layers[i])) fill_layer(&n->layers[i], &fl[i], nvals[i], &p);
    free(fl); free(nvals); free(blob);
    n->cache = (struct cache *)calloc(1, sizeof(struct cache));
    if (!n->cache || assign_buffers(n) != 0) { et_free(n); snprintf(err, errlen, "out of memory"); return NULL; }
    return n;
truncated:
    snprintf(err, errlen, "%s is truncated or corrupt", path);
fail:
    free(fl); free(nvals); free(n->layers); free(n); free(blob);
    return NULL;
}

void et_free(et_net *n) {
    if (!n) return;
    if (n->cache)
        for (int i = 0; i < MAX_SLOTS; i++) free(n->cache->slot[i]);
    free(n->cache); free(n->layers); free(n->mem); free(n);
}

size_t et_resident_bytes(const et_net *n) { return n->mem_bytes + n->nlayers * sizeof(et_layer) + sizeof(et_net); }
uint32_t et_num_lif(const et_net *n) { return n->nlif; }
uint32_t et_num_classes(const et_net *n) { return n->num_classes; }
uint32_t et_num_syn(const et_net *n) { return n->nsyn; }
size_t et_state_floats(const et_net *n) { return n->state_floats; }
size_t et_scratch_bytes(const et_net *n, int nsteps); /* per sample run at once (below) */
/* the encoding of layer i (0 list, 1 mask; -1 for a pool or an index out of range), for tests and benchmarks */
int et_layer_encoding(const et_net *n, uint32_t i) {
    return i < n->nlayers && !is_pool(&n->layers[i]) ? (int)n->layers[i].enc : -1;
}
/* the buffer layer i's output lives in during a call (-1 for an index out of range), for tests */
int et_layer_buffer(const et_net *n, uint32_t i) { return i < n->nlayers ? (int)n->layers[i].buf : -1; }
/* how layer i keeps its column starts (STARTS_*; -1 for a pool or an index out of range), for tests */
int et_layer_starts(const et_net *n, uint32_t i) {
    return i < n->nlayers && !is_pool(&n->layers[i]) ? (int)n->layers[i].starts : -1;
}

/* ---- adding one column ------------------------------------------------------------------------------------ */

#ifdef ET_AVX512
/* the 8 doubles at p += w in the lanes of k. Whole blocks (a layer's channels a multiple of 8) take plain loads
 * and stores (a masked store stalls the next load of it); otherwise a position's last block would reach into the
 * next one's, which another thread may own */
static inline void add_block(double *p, __mmask8 k, __m512d w, int whole) {
    if (whole) {
        __m512d a = _mm512_loadu_pd(p);
        _mm512_storeu_pd(p, _mm512_mask_add_pd(a, k, a, w));
    } else
        _mm512_mask_storeu_pd(p, k, _mm512_add_pd(_mm512_maskz_loadu_pd(k, p), w));
}
#endif

/* column col as stored: its values, its code (list: row gaps, one per value; mask: nblk bytes), its value count */
typedef struct { const float *v; const uint8_t *code; uint32_t n; } column;

static inline column col_view(const et_layer *L, uint32_t col) {
    uint32_t j, j1;
    col_range(L, col, &j, &j1);
    column c = {L->val + j, L->enc == ENC_LIST ? L->code + j : L->code + (size_t)col * L->nblk, j1 - j};
    return c;
}

/* o[row] += w (scale == NULL) or w * scale for every nonzero w of column col; the product of two floats is
 * exact in double, so the sum rounds as the scalar loop's does */
static inline void add_column(const et_layer *L, uint32_t col, double *o, const float *scale) {
    const column c = col_view(L, col);
    const float *v = c.v;
    const uint8_t *m = c.code;
    if (L->enc == ENC_LIST) {
        int row = -1;
        if (scale) {
            double s = *scale;
            for (uint32_t q = 0; q < c.n; q++) { row += m[q]; o[row] += (double)v[q] * s; }
        } else
            for (uint32_t q = 0; q < c.n; q++) { row += m[q]; o[row] += (double)v[q]; }
        return;
    }
#ifdef ET_AVX512
    const __m512d s = _mm512_set1_pd(scale ? (double)*scale : 1.0);
    const int whole = L->cout % 8 == 0;
    for (uint32_t b = 0; b < L->nblk; b++, o += 8) {
        __mmask8 k = m[b];
        __m512d w = _mm512_cvtps_pd(_mm256_maskz_expandloadu_ps(k, v));
        if (scale) w = _mm512_mul_pd(w, s);
        add_block(o, k, w, whole);
        v += __builtin_popcount(k);
    }
#else
    double s = scale ? (double)*scale : 1.0;
    for (uint32_t b = 0; b < L->nblk; b++, o += 8)
        for (unsigned k = m[b]; k; k &= k - 1) {
            double w = (double)*v++;
            o[__builtin_ctz(k)] += scale ? w * s : w;
        }
#endif
}

/* the same column added to the currents of every step whose bit is set in `steps` (step t's currents at
 * o + t * plane): the column is decoded once for all of them. Each step's accumulators receive what
 * add_column would give them, in the same order. */
static inline void add_column_steps(const et_layer *L, uint32_t col, double *o, size_t plane, unsigned steps) {
    if (!(steps & (steps - 1))) { add_column(L, col, o + (size_t)__builtin_ctz(steps) * plane, NULL); return; }
    const column c = col_view(L, col);
    const float *v = c.v;
    const uint8_t *m = c.code;
    if (L->enc == ENC_LIST) {
        int row = -1;
        for (uint32_t q = 0; q < c.n; q++) {
            row += m[q];
            double w = (double)v[q];
            for (unsigned b = steps; b; b &= b - 1) o[(size_t)__builtin_ctz(b) * plane + row] += w;
        }
        return;
    }
#ifdef ET_AVX512
    const int whole = L->cout % 8 == 0;
    for (uint32_t b = 0; b < L->nblk; b++, o += 8) {
        __mmask8 k = m[b];
        __m512d w = _mm512_cvtps_pd(_mm256_maskz_expandloadu_ps(k, v));
        for (unsigned bt = steps; bt; bt &= bt - 1) add_block(o + (size_t)__builtin_ctz(bt) * plane, k, w, whole);
        v += __builtin_popcount(k);
    }
#else
    for (uint32_t b = 0; b < L->nblk; b++, o += 8)
        for (unsigned k = m[b]; k; k &= k - 1) {
            double w = (double)*v++;
            for (unsigned bt = steps; bt; bt &= bt - 1) o[(size_t)__builtin_ctz(bt) * plane + __builtin_ctz(k)] += w;
        }
#endif
}

/* ---- event lists -------------------------------------------------------------------------------------------
 * One timestep's active inputs of a map, grouped by position in ascending order: for each position with a
 * spike, the word -(position + 1), then its spiking channels in ascending order. The threads of one sample
 * each write the part of the map in their band of rows, so a list is up to MAX_TEAM segments, in order. */
#define MAX_TEAM 8
typedef struct { int32_t *w; int nseg, beg[MAX_TEAM], end[MAX_TEAM], cnt[MAX_TEAM]; } events;

static int ev_count(const events *e) { int c = 0; for (int j = 0; j < e->nseg; j++) c += e->cnt[j]; return c; }

/* the rows [*r0, *r1) of an output map of h rows that thread tid of nt owns */
static void band(uint32_t h, int tid, int nt, int *r0, int *r1) {
    *r0 = (int)((uint64_t)h * tid / nt); *r1 = (int)((uint64_t)h * (tid + 1) / nt);
}

/* the outputs (kernel offset, output position) an input at (y, x) reaches within output rows [r0, r1) */
static int reach(const et_layer *L, int y, int x, int r0, int r1, int *koff, int *opos) {
    const int K = (int)L->k, S = (int)L->stride, P = (int)L->pad, Wo = (int)L->wout;
    int n = 0;
    for (int ky = 0; ky < K; ky++) {
        int oyn = y + P - ky;
        if (oyn < 0 || oyn % S || oyn / S < r0 || oyn / S >= r1) continue;
        for (int kx = 0; kx < K; kx++) {
            int oxn = x + P - kx;
            if (oxn < 0 || oxn % S || oxn / S >= Wo) continue;
            koff[n] = ky * K + kx; opos[n++] = (oyn / S) * Wo + oxn / S;
        }
    }
    return n;
}

/* cur [hout * wout * cout] += the weights reached by each event, in output rows [r0, r1) */
static void conv_events(const et_layer *L, const events *ev, int r0, int r1, double *cur) {
    const uint32_t KK = L->k * L->k, Co = L->cout;
    int koff[KK], opos[KK], nr = 0;
    for (int sgm = 0; sgm < ev->nseg; sgm++)
        for (int i = ev->beg[sgm]; i < ev->end[sgm]; i++) {
            int32_t w = ev->w[i];
            if (w < 0) {
                int pos = -w - 1;
                nr = reach(L, pos / (int)L->win, pos % (int)L->win, r0, r1, koff, opos);
                continue;
            }
            for (int r = 0; r < nr; r++) add_column(L, (uint32_t)w * KK + koff[r], cur + (size_t)opos[r] * Co, NULL);
        }
}

/* The steps [t0, t0 + tn) of a conv's input as one byte per input neuron (bit t - t0: it fired at t) and one
 * per input position (any spike): the part of the map in this thread's segment of each list. */
static void mark_steps(const events *in, int t0, int tn, int sg, uint32_t cin, uint8_t *words, uint8_t *anyp) {
    for (int t = t0; t < t0 + tn; t++) {
        const events *e = &in[t];
        uint8_t bit = (uint8_t)(1u << (t - t0));
        int pos = 0;
        for (int i = e->beg[sg]; i < e->end[sg]; i++) {
            int32_t w = e->w[i];
            if (w < 0) { pos = -w - 1; anyp[pos] = 1; }
            else words[(size_t)pos * cin + w] |= bit;
        }
    }
}

static void unmark_steps(const events *in, int t0, int tn, int sg, uint32_t cin, uint8_t *words, uint8_t *anyp) {
    for (int t = t0; t < t0 + tn; t++) {
        const events *e = &in[t];
        int pos = 0;
        for (int i = e->beg[sg]; i < e->end[sg]; i++) {
            int32_t w = e->w[i];
            if (w < 0) { pos = -w - 1; anyp[pos] = 0; }
            else words[(size_t)pos * cin + w] = 0;
        }
    }
}

/* the conv's inputs of several steps at once, in output rows [r0, r1): each active input's columns decoded once
 * for all the steps it fired in (a trained network's active neurons fire in 2-3 of 5 steps). Step t's currents
 * are cur + t * plane; each receives its inputs in ascending (position, channel) order, as conv_events gives. */
static void conv_steps(const et_layer *L, const uint8_t *words, const uint8_t *anyp, int r0, int r1, double *cur,
                       size_t plane) {
    const uint32_t KK = L->k * L->k, Co = L->cout, Cin = L->cin;
    int koff[KK], opos[KK];
    int y0 = r0 * (int)L->stride - (int)L->pad, y1 = (r1 - 1) * (int)L->stride - (int)L->pad + (int)L->k;
    if (y0 < 0) y0 = 0;
    if (y1 > (int)L->hin) y1 = (int)L->hin;
    for (int y = y0; y < y1; y++)
        for (int x = 0; x < (int)L->win; x++) {
            size_t pos = (size_t)y * L->win + x;
            if (!anyp[pos]) continue;
            int nr = reach(L, y, x, r0, r1, koff, opos);
            if (!nr) continue;
            const uint8_t *wp = words + pos * Cin;
            for (uint32_t c = 0; c < Cin; c++) {
                if (c % 8 == 0 && c + 8 <= Cin) { /* skip 8 silent channels at once */
                    uint64_t eight;
                    memcpy(&eight, wp + c, 8);
                    if (!eight) { c += 7; continue; }
                }
                if (!wp[c]) continue;
                for (int r = 0; r < nr; r++)
                    add_column_steps(L, c * KK + koff[r], cur + (size_t)opos[r] * Co, plane, wp[c]);
            }
        }
}

static void linear_events(const et_layer *L, const events *ev, uint32_t cin_map, double *cur) {
    uint32_t pos = 0;
    for (int sgm = 0; sgm < ev->nseg; sgm++)
        for (int i = ev->beg[sgm]; i < ev->end[sgm]; i++) {
            int32_t w = ev->w[i];
            if (w < 0) pos = (uint32_t)(-w - 1);
            else add_column(L, pos * cin_map + (uint32_t)w, cur, NULL);
        }
}

/* cur = the bias, for the positions [p0, p1) */
static void set_bias(const et_layer *L, double *cur, int p0, int p1) {
    for (int p = p0; p < p1; p++)
        for (uint32_t o = 0; o < L->cout; o++) cur[(size_t)p * L->cout + o] = L->bias[o];
}

/* the image layer in output rows [r0, r1): cur = bias + sum of w * x over the nonzero inputs (x: CHW) */
static void conv_image(const et_layer *L, const float *x, int r0, int r1, double *cur) {
    const uint32_t KK = L->k * L->k, Co = L->cout;
    int koff[KK], opos[KK];
    int y0 = r0 * (int)L->stride - (int)L->pad, y1 = (r1 - 1) * (int)L->stride - (int)L->pad + (int)L->k;
    if (y0 < 0) y0 = 0;
    if (y1 > (int)L->hin) y1 = (int)L->hin;
    set_bias(L, cur, r0 * (int)L->wout, r1 * (int)L->wout);
    for (uint32_t c = 0; c < L->cin; c++)
        for (int y = y0; y < y1; y++)
            for (uint32_t xx = 0; xx < L->win; xx++) {
                const float *xv = x + ((size_t)c * L->hin + y) * L->win + xx;
                if (*xv == 0.0f) continue;
                int nr = reach(L, y, (int)xx, r0, r1, koff, opos);
                for (int r = 0; r < nr; r++) add_column(L, c * KK + koff[r], cur + (size_t)opos[r] * Co, xv);
            }
}

/* A joined layer's output at one timestep, added to a layer's currents before its LIF: real values (a shortcut
 * conv's, already rounded to float), or spikes (an identity shortcut), which a cursor walks position by position. */
typedef struct { const float *real; const events *spk; int sg, at, from; float *row; } joined;

/* the values joined at position p (NULL: nothing joined); the spike row is undone by unjoin */
static const float *join_row(joined *j, int p, int cout) {
    if (j->real) return j->real + (size_t)p * cout;
    if (!j->spk) return NULL;
    const events *e = j->spk;
    j->from = j->at;
    if (j->at < e->end[j->sg] && e->w[j->at] == -(p + 1))
        for (j->from = ++j->at; j->at < e->end[j->sg] && e->w[j->at] >= 0; j->at++) j->row[e->w[j->at]] = 1.0f;
    return j->row;
}

static void unjoin(joined *j) {
    if (j->spk)
        for (int i = j->from; i < j->at; i++) j->row[j->spk->w[i]] = 0.0f;
}

/* LIF over the neurons of positions [p0, p1) fed by cur (+ the joined values, in float: the graph's Add of two
 * float tensors): segment sg of out; resets cur to the bias unless keep */
static void lif_layer(const et_layer *L, double *cur, float *v, float tau, float vth, int keep, int p0, int p1,
                      joined *jn, events *out, int sg) {
    const int Co = (int)L->cout;
    int len = out->beg[sg], count = 0;
    for (int p = p0; p < p1; p++) {
        double *c = cur + (size_t)p * Co;
        float *vp = v + (size_t)p * Co;
        const float *add = jn ? join_row(jn, p, Co) : NULL;
        int head = len++, o = 0;
        out->w[head] = -(p + 1);
#ifdef ET_AVX512
        const __m512 vtau = _mm512_set1_ps(tau), vvth = _mm512_set1_ps(vth), one = _mm512_set1_ps(1.0f);
        const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for (; o + 16 <= Co; o += 16) {
            __m512 x = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(_mm512_loadu_pd(c + o))),
                                          _mm512_cvtpd_ps(_mm512_loadu_pd(c + o + 8)), 1);
            if (add) x = _mm512_add_ps(x, _mm512_loadu_ps(add + o));
            __m512 vi = _mm512_loadu_ps(vp + o);
            __m512 h = _mm512_add_ps(vi, _mm512_div_ps(_mm512_sub_ps(x, vi), vtau));
            __mmask16 s = _mm512_cmp_ps_mask(h, vvth, _CMP_GE_OQ);
            __m512 sf = _mm512_maskz_mov_ps(s, one);
            _mm512_storeu_ps(vp + o, _mm512_mul_ps(h, _mm512_sub_ps(one, sf)));
            _mm512_mask_compressstoreu_epi32(out->w + len, s, _mm512_add_epi32(iota, _mm512_set1_epi32(o)));
            len += __builtin_popcount(s);
            if (!keep) {
                _mm512_storeu_pd(c + o, _mm512_cvtps_pd(_mm256_loadu_ps(L->bias + o)));
                _mm512_storeu_pd(c + o + 8, _mm512_cvtps_pd(_mm256_loadu_ps(L->bias + o + 8)));
            }
        }
#endif
        for (; o < Co; o++) {
            float vi = vp[o], x = (float)c[o];
            if (add) x = x + add[o];
            float h = vi + (x - vi) / tau;
            float s = (h >= vth) ? 1.0f : 0.0f;
            vp[o] = h * (1.0f - s);
            if (s != 0.0f) out->w[len++] = o;
            if (!keep) c[o] = L->bias[o];
        }
        if (jn) unjoin(jn);
        if (len == head + 1) len = head; /* no spike here */
        else count += len - head - 1;
    }
    out->end[sg] = len; out->cnt[sg] = count;
}

/* a layer without LIF (a shortcut joined later): its currents rounded to float for positions [p0, p1), reset to
 * the bias */
static void real_out(const et_layer *L, double *cur, int p0, int p1, float *out) {
    for (size_t i = (size_t)p0 * L->cout; i < (size_t)p1 * L->cout; i++) {
        out[i] = (float)cur[i];
        cur[i] = L->bias[i % L->cout];
    }
}

/* global average pooling of a spike map: per channel, its spikes / the map's area, in float (ONNX's
 * GlobalAveragePool: an exact count, one division) */
static void global_avgpool(const et_layer *L, const events *ev, float *out) {
    const float area = (float)(L->hin * L->win);
    for (uint32_t c = 0; c < L->cout; c++) out[c] = 0.0f;
    for (int sgm = 0; sgm < ev->nseg; sgm++)
        for (int i = ev->beg[sgm]; i < ev->end[sgm]; i++)
            if (ev->w[i] >= 0) out[ev->w[i]] += 1.0f;
    for (uint32_t c = 0; c < L->cout; c++) out[c] = out[c] / area;
}

/* a linear layer on real values (a global average pool's): cur += w * x over the nonzero inputs */
static void linear_real(const et_layer *L, const float *x, double *cur) {
    for (uint32_t c = 0; c < L->cin; c++)
        if (x[c] != 0.0f) add_column(L, c, cur, &x[c]);
}

static int nonzero(const float *x, uint32_t n) {
    int k = 0;
    for (uint32_t i = 0; i < n; i++) k += x[i] != 0.0f;
    return k;
}

/* max-pooling of a binary HWC map (as its event list) into output rows [r0, r1) -> segment sg of out;
 * mark: one byte per output neuron, then one per output position */
static void maxpool_events(const et_layer *L, const events *ev, int r0, int r1, uint8_t *mark, events *out,
                           int sg) {
    const int C = (int)L->cin, Win = (int)L->win, Wo = (int)L->wout;
    const int k = (int)L->k, s = (int)L->stride;
    const size_t npos = (size_t)L->hout * Wo, p0 = (size_t)r0 * Wo, p1 = (size_t)r1 * Wo;
    uint8_t *any = mark + npos * C;
    memset(mark + p0 * C, 0, (p1 - p0) * C);
    memset(any + p0, 0, p1 - p0);
    int oy0 = 0, oy1 = -1, ox0 = 0, ox1 = -1;
    for (int sgm = 0; sgm < ev->nseg; sgm++)
        for (int i = ev->beg[sgm]; i < ev->end[sgm]; i++) {
            int32_t w = ev->w[i];
            if (w < 0) { /* the outputs whose window holds (y, x): o * s <= y < o * s + k, within the band */
                int pos = -w - 1, y = pos / Win, x = pos % Win;
                oy1 = y / s < r1 - 1 ? y / s : r1 - 1; oy0 = y - k + 1 > 0 ? (y - k + s) / s : 0;
                ox1 = x / s < Wo - 1 ? x / s : Wo - 1; ox0 = x - k + 1 > 0 ? (x - k + s) / s : 0;
                if (oy0 < r0) oy0 = r0;
                continue;
            }
            for (int oy = oy0; oy <= oy1; oy++)
                for (int ox = ox0; ox <= ox1; ox++) {
                    size_t op = (size_t)oy * Wo + ox;
                    mark[op * C + w] = 1; any[op] = 1;
                }
        }
    int len = out->beg[sg], count = 0;
    for (size_t p = p0; p < p1; p++) {
        if (!any[p]) continue;
        out->w[len++] = -(int32_t)(p + 1);
        const uint8_t *m = mark + p * C;
        for (int c = 0; c < C; c++)
            if (m[c]) { out->w[len++] = c; count++; }
    }
    out->end[sg] = len; out->cnt[sg] = count;
}

/* ---- one sample ------------------------------------------------------------------------------------------
 * A sample is run by a team of nt threads (nt > 1 at a batch smaller than the threads); each owns a band of
 * output rows of every layer and reads the whole input. They meet once per layer. A layer's output (event lists,
 * or real values, of every step of the call) lives in one of the net's buffers (assign_buffers). */

#define STEPS_AT_ONCE 8 /* a conv's steps merged into one pass over its inputs (bits of a byte) */

typedef struct {
    double *cur;       /* the currents of the layer being run: one plane of `plane` doubles per merged step */
    size_t plane;
    uint8_t *steps[2], *anyp[2]; /* a conv's input steps per neuron / position (two: layers alternate) */
    uint8_t *mark;     /* max-pool's byte maps */
    float *rows;       /* per team thread, one joined spike row */
    events *ev;        /* [nbufs][nsteps] */
    int32_t *words;    /* [nbufs][nsteps][list_words]; real outputs are floats in the same room */
} scratch;

static size_t list_words(const et_net *n) { return 2 * n->maxmap + 1; } /* headers + channels, at most */

static size_t planes(int nsteps) { return nsteps < STEPS_AT_ONCE ? (size_t)nsteps : STEPS_AT_ONCE; }

static size_t scratch_bytes(const et_net *n, int nsteps) {
    size_t bufs = (size_t)n->nbufs * nsteps;
    return planes(nsteps) * (n->maxmap + 8) * sizeof(double) + 4 * align8(n->maxmap) + align8(2 * n->maxmap)
           + align8(4 * (size_t)MAX_TEAM * n->maxcout) + bufs * sizeof(events) + bufs * list_words(n) * 4 + 64;
}

size_t et_scratch_bytes(const et_net *n, int nsteps) { return scratch_bytes(n, nsteps); }

static scratch carve(const et_net *n, int nsteps, void *buf) {
    scratch s;
    uint8_t *p = (uint8_t *)buf;
    size_t bufs = (size_t)n->nbufs * nsteps;
    s.cur = (double *)p; s.plane = n->maxmap + 8; p += planes(nsteps) * s.plane * sizeof(double);
    for (int k = 0; k < 2; k++) {
        s.steps[k] = p; p += align8(n->maxmap);
        s.anyp[k] = p; p += align8(n->maxmap);
        memset(s.steps[k], 0, n->maxmap);
        memset(s.anyp[k], 0, n->maxmap);
    }
    s.mark = p; p += align8(2 * n->maxmap);
    s.rows = (float *)p; p += align8(4 * (size_t)MAX_TEAM * n->maxcout);
    memset(s.rows, 0, 4 * (size_t)MAX_TEAM * n->maxcout);
    s.ev = (events *)p; p += bufs * sizeof(events);
    s.words = (int32_t *)p;
    for (size_t i = 0; i < bufs; i++) s.ev[i].w = s.words + i * list_words(n);
    return s;
}

static events *lists(const scratch *s, uint32_t buf, int nsteps) { return s->ev + (size_t)buf * nsteps; }
static float *reals(const et_net *n, const scratch *s, uint32_t buf, int nsteps, int t) {
    return (float *)(s->words + ((size_t)buf * nsteps + t) * list_words(n));
}

static void team_barrier(int nt) {
#ifdef _OPENMP
    if (nt > 1) {
#pragma omp barrier
    }
#endif
    (void)nt;
}

static int is_synaptic(const et_layer *L) {
    return L->kind == K_CONV_SPIKES || L->kind == K_LINEAR_SPIKES || L->kind == K_LINEAR_REAL;
}

/* layer L's synaptic inputs of step t, in its band of output rows, added to the currents */
static void add_inputs(const et_net *n, const et_layer *L, const scratch *s, int nsteps, int t, int r0, int r1) {
    if (L->kind == K_CONV_SPIKES) conv_events(L, &lists(s, n->layers[L->src].buf, nsteps)[t], r0, r1, s->cur);
    else if (r0 < r1) { /* a linear layer: one output position, one thread */
        const et_layer *S = &n->layers[L->src];
        if (L->kind == K_LINEAR_SPIKES) linear_events(L, &lists(s, S->buf, nsteps)[t], S->cout, s->cur);
        else linear_real(L, reals(n, s, S->buf, nsteps, t), s->cur);
    }
}

/* step t of a layer whose currents (all its inputs added) are `cur`: its LIF, the joined values added first
 * (segment tid of out[t]), or its real output (a shortcut joined later); the currents go back to the bias */
static void fire(const et_net *n, const et_layer *L, const scratch *s, int nsteps, int t, double *cur, float *v,
                 int p0, int p1, events *out, int tid) {
    if (!L->lif) { real_out(L, cur, p0, p1, reals(n, s, L->buf, nsteps, t)); return; }
    joined j = {0}, *jn = NULL;
    if (L->join != NONE) {
        const et_layer *J = &n->layers[L->join];
        j.row = s->rows + (size_t)tid * n->maxcout; j.sg = tid;
        if (J->lif || J->kind == K_MAXPOOL) {
            j.spk = &lists(s, J->buf, nsteps)[t];
            j.at = j.spk->beg[tid];
        } else
            j.real = reals(n, s, J->buf, nsteps, t);
        jn = &j;
    }
    lif_layer(L, cur, v, n->tau, n->v_th, 0, p0, p1, jn, &out[t], tid);
}

/* nsteps timesteps from the states in `state` (updated in place), as thread tid of a team of nt. logits[K]
 * receives the sum over the steps; spikes[l * nsteps + t], events[s * nsteps + t] the counts (thread 0). */
static void run_one(const et_net *n, const float *x, int nsteps, float *state, float *logits, float *spikes,
                    float *counts, scratch *s, int tid, int nt) {
    float *v = state;
    int li = 0, si = 0;
    if (tid == 0)
        for (uint32_t k = 0; k < n->num_classes; k++) logits[k] = 0.0f;
    for (uint32_t i = 0; i < n->nlayers; i++) {
        const et_layer *L = &n->layers[i];
        const et_layer *S = L->src != NONE ? &n->layers[L->src] : NULL;
        const int last = i + 1 == n->nlayers;
        size_t outn = (size_t)L->cout * L->hout * L->wout;
        events *out = lists(s, L->buf, nsteps), *in = S ? lists(s, S->buf, nsteps) : NULL;
        int r0, r1;
        band(L->hout, tid, nt, &r0, &r1);
        int p0 = r0 * (int)L->wout, p1 = r1 * (int)L->wout;
        /* this thread's segment of each output list: its positions' words (a header and channels each) */
        for (int t = 0; t < nsteps; t++) {
            if (tid == 0) out[t].nseg = nt; /* read by later layers, after the meeting */
            out[t].beg[tid] = out[t].end[tid] = p0 * (int)(L->cout + 1);
            out[t].cnt[tid] = 0;
        }
        if (tid == 0 && is_synaptic(L)) /* the inputs are complete since the last meeting, and no thread writes them */
            for (int t = 0; t < nsteps; t++)
                counts[si * nsteps + t] = (float)(L->kind == K_LINEAR_REAL
                                                      ? nonzero(reals(n, s, S->buf, nsteps, t), L->cin)
                                                      : ev_count(&in[t]));
        if (L->kind == K_MAXPOOL) {
            for (int t = 0; t < nsteps; t++) maxpool_events(L, &in[t], r0, r1, s->mark, &out[t], tid);
        } else if (L->kind == K_GLOBAL_AVGPOOL) {
            if (r0 < r1)
                for (int t = 0; t < nsteps; t++) global_avgpool(L, &in[t], reals(n, s, L->buf, nsteps, t));
        } else if (L->kind == K_CONV_IMAGE) {
            conv_image(L, x, r0, r1, s->cur);
            for (int t = 0; t < nsteps; t++) lif_layer(L, s->cur, v, n->tau, n->v_th, 1, p0, p1, NULL, &out[t], tid);
        } else if (L->kind == K_CONV_SPIKES) { /* steps merged: each input's columns decoded once for them */
            uint8_t *words = s->steps[i & 1], *anyp = s->anyp[i & 1];
            const events *src = lists(s, S->buf, nsteps);
            for (int t0 = 0; t0 < nsteps; t0 += STEPS_AT_ONCE) {
                int tn = nsteps - t0 < STEPS_AT_ONCE ? nsteps - t0 : STEPS_AT_ONCE;
                for (int q = 0; q < tn; q++) set_bias(L, s->cur + q * s->plane, p0, p1);
                mark_steps(src, t0, tn, tid, S->cout, words, anyp);
                team_barrier(nt); /* the whole map is marked */
                conv_steps(L, words, anyp, r0, r1, s->cur, s->plane);
                for (int q = 0; q < tn; q++) fire(n, L, s, nsteps, t0 + q, s->cur + q * s->plane, v, p0, p1, out, tid);
                if (t0 + tn < nsteps) { /* another pass over the map: everyone has read it */
                    team_barrier(nt);
                    unmark_steps(src, t0, tn, tid, S->cout, words, anyp);
                }
            }
        } else {
            set_bias(L, s->cur, p0, p1);
            for (int t = 0; t < nsteps; t++) {
                add_inputs(n, L, s, nsteps, t, r0, r1);
                if (L->lif || !last) fire(n, L, s, nsteps, t, s->cur, v, p0, p1, out, tid);
                else if (r0 < r1) { /* the classifier: its output is each step's logits */
                    for (size_t k = 0; k < outn; k++) { logits[k] += (float)s->cur[k]; s->cur[k] = L->bias[k]; }
                }
            }
        }
        team_barrier(nt); /* later layers read every band of this one's output */
        if (L->kind == K_CONV_SPIKES) { /* its map's last pass is read: cleared before the layer after next uses it */
            int t0 = (nsteps - 1) / STEPS_AT_ONCE * STEPS_AT_ONCE;
            unmark_steps(lists(s, S->buf, nsteps), t0, nsteps - t0, tid, S->cout, s->steps[i & 1], s->anyp[i & 1]);
        }
        if (tid == 0 && L->lif) /* read-only until its buffer is reused, after another meeting */
            for (int t = 0; t < nsteps; t++) spikes[li * nsteps + t] = (float)ev_count(&out[t]);
        si += is_synaptic(L);
        if (L->lif) { v += outn; li++; }
    }
}

static void *take_slot(et_net *n, int slot, size_t bytes, int nsteps, int owned) {
    if (!owned) return malloc(bytes);
    struct cache *c = n->cache;
    if (!c->slot[slot] || c->slot_steps[slot] < (size_t)nsteps) {
        free(c->slot[slot]);
        c->slot[slot] = malloc(bytes);
        c->slot_steps[slot] = c->slot[slot] ? (size_t)nsteps : 0;
    }
    return c->slot[slot];
}

static void copy_counts(const et_net *n, int nsteps, int batch, int b, const float *sp, float *spikes,
                        float *events_out) {
    const float *ev_counts = sp + (size_t)n->nlif * nsteps;
    for (uint32_t l = 0; l < n->nlif; l++)
        for (int t = 0; t < nsteps; t++) spikes[((size_t)l * nsteps + t) * batch + b] = sp[l * nsteps + t];
    for (uint32_t q = 0; q < n->nsyn; q++)
        for (int t = 0; t < nsteps; t++) events_out[((size_t)q * nsteps + t) * batch + b] = ev_counts[q * nsteps + t];
}

/* x [B, C, H, W]; state [B, state_floats] (in/out); logits [B, K]; spikes [nlif, nsteps, B];
 * events [nsyn, nsteps, B]. threads: the samples run in parallel where the batch has as many, otherwise the
 * threads share each sample (a team per sample). Returns 0, or -1 when scratch memory cannot be had (before any
 * work: every buffer is had first). */
int et_run(et_net *n, int batch, const float *x, int nsteps, float *state, float *logits, float *spikes,
           float *events_out, int threads) {
    if (batch <= 0) return 0;
    size_t xin = (size_t)n->in_c * n->in_h * n->in_w;
    if (threads < 1) threads = 1;
    if (threads > MAX_SLOTS) threads = MAX_SLOTS;
    int team = batch >= threads ? 1 : threads / batch;
    if (team > MAX_TEAM) team = MAX_TEAM;
#ifndef _OPENMP
    team = 1;
    threads = 1;
#endif
    int workers = team > 1 ? 1 : (threads < batch ? threads : batch); /* scratch sets: one per sample at once */
    /* the net's scratch is reused by one call at a time; a concurrent call allocates its own */
    int owned = !__atomic_test_and_set(&n->cache->busy, __ATOMIC_ACQUIRE);
    size_t spn = ((size_t)n->nlif + n->nsyn) * nsteps + 1;
    void *buf[MAX_SLOTS] = {0};
    float *sp = (float *)malloc((size_t)workers * spn * sizeof(float));
    int failed = sp == NULL;
    for (int w = 0; w < workers && !failed; w++) {
        buf[w] = take_slot(n, w, scratch_bytes(n, nsteps), nsteps, owned);
        failed = buf[w] == NULL;
    }
    if (!failed && team > 1) { /* one sample at a time, the team in it */
        scratch s = carve(n, nsteps, buf[0]);
        for (int b = 0; b < batch; b++) {
#ifdef _OPENMP
#pragma omp parallel num_threads(team)
#endif
            {
                int tid = 0, nt = 1;
#ifdef _OPENMP
                tid = omp_get_thread_num(); nt = omp_get_num_threads();
#endif
                run_one(n, x + b * xin, nsteps, state + (size_t)b * n->state_floats,
                        logits + (size_t)b * n->num_classes, sp, sp + (size_t)n->nlif * nsteps, &s, tid, nt);
            }
            copy_counts(n, nsteps, batch, b, sp, spikes, events_out);
        }
    } else if (!failed) {
#ifdef _OPENMP
#pragma omp parallel num_threads(workers)
#endif
        {
            int w = 0;
#ifdef _OPENMP
            w = omp_get_thread_num();
#endif
            scratch s = carve(n, nsteps, buf[w]);
            float *mine = sp + (size_t)w * spn;
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
            for (int b = 0; b < batch; b++) {
                run_one(n, x + b * xin, nsteps, state + (size_t)b * n->state_floats,
                        logits + (size_t)b * n->num_classes, mine, mine + (size_t)n->nlif * nsteps, &s, 0, 1);
                copy_counts(n, nsteps, batch, b, mine, spikes, events_out);
            }
        }
    }
    if (!owned)
        for (int w = 0; w < workers; w++) free(buf[w]);
    free(sp);
    if (owned) __atomic_clear(&n->cache->busy, __ATOMIC_RELEASE);
    return failed ? -1 : 0;
}
