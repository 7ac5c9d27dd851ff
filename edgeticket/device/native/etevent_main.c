/* A command-line driver around etevent.c, for checking a cross-compiled build under user-mode emulation
 * (qemu-aarch64) without an aarch64 Python:
 *   etevent-check NET.etsp INPUT.f32 BATCH NSTEPS OUT.f32
 * INPUT.f32: float32 [BATCH, C, H, W]; OUT.f32: logits [BATCH, K], then spikes [nlif, NSTEPS, BATCH], then
 * events [nsyn, NSTEPS, BATCH], all float32, from zero membrane states. Built with -static. */
#include "etevent.c"

int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: %s NET.etsp INPUT.f32 BATCH NSTEPS OUT.f32\n", argv[0]); return 2; }
    char err[512];
    et_net *n = et_load(argv[1], err, sizeof err);
    if (!n) { fprintf(stderr, "%s\n", err); return 1; }
    int B = atoi(argv[3]), T = atoi(argv[4]);
    size_t xin = (size_t)B * n->in_c * n->in_h * n->in_w;
    float *x = malloc(xin * sizeof(float));
    FILE *f = fopen(argv[2], "rb");
    if (!f || fread(x, sizeof(float), xin, f) != xin) { fprintf(stderr, "cannot read %s\n", argv[2]); return 1; }
    fclose(f);
    size_t nl = (size_t)B * n->num_classes, ns = (size_t)n->nlif * T * B, ne = (size_t)n->nsyn * T * B;
    float *out = calloc(nl + ns + ne, sizeof(float));
    float *state = calloc((size_t)B * n->state_floats + 1, sizeof(float));
    if (et_run(n, B, x, T, state, out, out + nl, out + nl + ns, 1) != 0) { fprintf(stderr, "et_run failed\n"); return 1; }
    f = fopen(argv[5], "wb");
    if (!f || fwrite(out, sizeof(float), nl + ns + ne, f) != nl + ns + ne) { fprintf(stderr, "cannot write\n"); return 1; }
    fclose(f);
    et_free(n);
    return 0;
}
