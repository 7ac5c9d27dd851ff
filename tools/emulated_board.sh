#!/usr/bin/env bash
# An "emulated Raspberry Pi 4": an arm64 Debian bookworm Python 3.11 userland run under qemu-user, with the
# aarch64 wheels of edgeticket's base install (+ the TVM runtime), so that an rpi4 bundle can be profiled by
# the aarch64 `edgeticket profile` on this x86_64 machine. `make emulated-rpi4` runs it.
#
#   tools/emulated_board.sh DIR        (make passes $(EMULATED_RPI4), default .cache/emulated-rpi4)
#
# DIR/rootfs   arm64 Debian packages (python3.11 + the shared libraries the wheels need), unpacked with
#              dpkg-deb -x from .debs that `apt-get download` fetched through a private apt state in DIR/apt
#              (the system's apt/dpkg configuration is untouched; works without root)
# DIR/site     the aarch64 wheels, installed by the host's pip (--target --platform ... --no-deps)
# DIR/python3  the wrapper: qemu-aarch64 -L DIR/rootfs DIR/rootfs/usr/bin/python3.11 "$@", with DIR/site put
#              in front of the caller's PYTHONPATH (add the folder holding the edgeticket wheel's files there)
# DIR/packages.txt, DIR/wheels.txt   what went in (name version), DIR/logs/  each stage's output
#
# qemu 7.2 (Debian bookworm's qemu-user) passes the host's /proc/cpuinfo through to an aarch64 guest; the
# cpuinfo library inside onnxruntime >= 1.28 then finds no "CPU implementer/part" lines (MIDR 0, no L2 cache
# counted) but does find the host's L2 in sysfs, and writes its descriptor into an unallocated array: SIGSEGV
# while the onnxruntime extension loads. So the rootfs carries an ARM /proc/cpuinfo (qemu-user looks guest
# paths up under -L first), the one a Cortex-A72 shows (qemu >= 8.2 emulates the same file itself), the wrapper
# sets QEMU_CPU=cortex-a72 (the Pi 4's core). edgeticket still sees the emulation: the kernel's CPU shows in
# /sys/devices/system/cpu/modalias, which qemu-user does not emulate.
#
# Rerunning is a no-op once DIR/.complete matches this recipe. Overrides (environment):
#   EMULATED_BOARD_PYTHON   the host Python whose pip installs the wheels (default: the repo's .venv, python3)
#   EMULATED_BOARD_MIRROR, EMULATED_BOARD_SECURITY_MIRROR   Debian mirrors (default: the ones in
#                           /etc/apt/sources.list*, else deb.debian.org)
#   EMULATED_BOARD_WHEELS   pip requirement specs of DIR/site (default: the pinned list below)
set -euo pipefail

BOARD=emulated-rpi4
SUITE=bookworm
DEB_ARCH=arm64
QEMU_NAME=qemu-aarch64
QEMU_CPU_MODEL=cortex-a72
PY_VER=3.11
# the roots of the arm64 package closure: the interpreter + its stdlib, and the C/C++ runtime, zlib, libffi,
# OpenSSL and expat that python, numpy, onnxruntime and TVM load, and GCC's OpenMP runtime (libgomp.so.1), which
# a bundle's event kernel library links (apt resolves the rest)
ROOT_PACKAGES="python3.11-minimal libpython3.11-stdlib libc6 libgcc-s1 libstdc++6 zlib1g libffi8 libssl3 libexpat1
libgomp1"
# edgeticket's base install (numpy, onnxruntime, safetensors, click, tqdm, psutil; tomli only below 3.11) + the TVM runtime
# ([tvm] extra) + what `import tvm` needs (apache-tvm: ml_dtypes, typing_extensions; apache-tvm-ffi:
# typing-extensions). onnxruntime's declared flatbuffers/packaging/protobuf are not imported by
# `import onnxruntime`. Pinned: the versions checked under emulation (the same as the dev venv's).
DEFAULT_WHEELS="numpy==2.4.6 onnxruntime==1.32.0 safetensors==0.8.0 click==8.5.1 tqdm==4.70.1 psutil==7.2.2
apache-tvm==0.27.0.post1 apache-tvm-ffi==0.1.14.post1 ml_dtypes==0.6.0 typing-extensions==4.16.0"
WHEELS=${EMULATED_BOARD_WHEELS:-$DEFAULT_WHEELS}
# a tiny ONNX model (x[1,4] @ W[4,3] -> Relu, W = (arange(12) - 5) / 4) for the smoke test
SMOKE_ONNX=CAgSAXg6jwEKEQoBeAoBVxIBbSIGTWF0TXVsCgwKAW0SAXkiBFJlbHUSBXNtb2tlKjsIBAgDEAFCAVdKMAAAoL8AAIC/AABAvwAAAL8AAIC+AAAAAAAAgD4AAAA/AABAPwAAgD8AAKA/AADAP1oTCgF4Eg4KDAgBEggKAggBCgIIBGITCgF5Eg4KDAgBEggKAggBCgIIA0IECgAQDQ==

say() { echo "[$BOARD] $*"; }
die() { echo "[$BOARD] error: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: tools/emulated_board.sh DIR"

# -- the host tools -------------------------------------------------------------------------------------------
QEMU=$(command -v "$QEMU_NAME" || true)
[ -n "$QEMU" ] || die "$QEMU_NAME not found: install Debian's qemu-user with \`make cross-tools\` (root)"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(dirname "$HERE")
for tool in apt-get dpkg-deb sha256sum realpath; do
    command -v "$tool" >/dev/null || die "$tool not found: this needs a Debian/Ubuntu host (apt, dpkg)"
done
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$KEYRING" ] || die "$KEYRING missing: install the debian-archive-keyring package"
HOST_PY=${EMULATED_BOARD_PYTHON:-}
if [ -z "$HOST_PY" ]; then
    for cand in "$REPO/.venv/bin/python" python3; do
        if "$cand" -m pip --version >/dev/null 2>&1; then HOST_PY=$cand; break; fi
    done
fi
[ -n "$HOST_PY" ] && "$HOST_PY" -m pip --version >/dev/null 2>&1 \
    || die "no host Python with pip (make install, or EMULATED_BOARD_PYTHON=/path/to/python)"

mkdir -p "$1"
DIR=$(cd "$1" && pwd -P)
ROOTFS=$DIR/rootfs
SITE=$DIR/site
WRAPPER=$DIR/python3
STAMP=$DIR/.complete
LOGS=$DIR/logs

mirror() {  # the first Debian archive URI of the host's apt sources ending in /$1, else deb.debian.org's
    local uri
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | grep -v '^[[:space:]]*#' | grep -oE "(https?|file)://[^][:space:]]+/$1/?([[:space:]]|$)" | head -n 1 \
        | tr -d '[:space:]' || true)
    echo "${uri:-http://deb.debian.org/$1}" | sed 's:/*$::'
}
MIRROR=${EMULATED_BOARD_MIRROR:-$(mirror debian)}
SECURITY=${EMULATED_BOARD_SECURITY_MIRROR:-$(mirror debian-security)}

FINGERPRINT=$( { cat "${BASH_SOURCE[0]}"; echo "$WHEELS|$QEMU|$MIRROR|$SECURITY"; } | sha256sum | cut -d' ' -f1)
up_to_date() {
    [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$FINGERPRINT" ] && [ -x "$WRAPPER" ] \
        && [ -x "$ROOTFS/usr/bin/python$PY_VER" ] && [ -d "$SITE" ] && say "up to date: $WRAPPER"
}
up_to_date && exit 0
if command -v flock >/dev/null; then  # one build at a time per folder
    exec 9>"$DIR/.lock"
    flock -n 9 || { say "waiting for another build of $DIR"; flock 9; up_to_date && exit 0; }
fi
rm -f "$STAMP"
mkdir -p "$LOGS"
STAGE=
LOG=
stage() {  # stage N "name: details": one line, and its own log
    STAGE="$1/8 (${2%%:*})"
    LOG=$LOGS/$1.log
    : >"$LOG"
    say "$1/8 $2"
}
run() {  # run a command into the stage's log; on failure one line + the log's tail
    local rc=0
    "$@" >>"$LOG" 2>&1 || rc=$?
    if [ $rc -ne 0 ]; then
        echo "[$BOARD] error: stage $STAGE failed: \`${*:1:3} ...\` exited $rc; see $LOG" >&2
        tail -n 12 "$LOG" | sed 's/^/    /' >&2
        exit 1
    fi
}

# -- 1. a private apt state for arm64 bookworm (own lists, cache, status, sources; the system's untouched) ---
stage 1 "apt indexes: Debian $SUITE $DEB_ARCH from $MIRROR"
APTD=$DIR/apt
mkdir -p "$APTD/lists/partial" "$APTD/cache/archives/partial" "$APTD/etc/sources.list.d" "$APTD/etc/preferences.d"
: >"$APTD/status"
cat >"$APTD/etc/sources.list" <<EOF
deb [arch=$DEB_ARCH signed-by=$KEYRING] $MIRROR $SUITE main
deb [arch=$DEB_ARCH signed-by=$KEYRING] $MIRROR $SUITE-updates main
deb [arch=$DEB_ARCH signed-by=$KEYRING] $SECURITY $SUITE-security main
EOF
# APT_CONFIG is read after /etc/apt/apt.conf.d (proxies etc. stay): keep the main file, drop the host's hooks
{
    [ -r /etc/apt/apt.conf ] && echo '#include "/etc/apt/apt.conf";'
    echo '#clear APT::Update::Pre-Invoke;'
    echo '#clear APT::Update::Post-Invoke;'
    echo '#clear APT::Update::Post-Invoke-Success;'
    echo '#clear DPkg::Pre-Invoke;'
    echo '#clear DPkg::Post-Invoke;'
    echo '#clear DPkg::Pre-Install-Pkgs;'
} >"$APTD/apt.conf"
export APT_CONFIG=$APTD/apt.conf
APT_OPTS=(-q -oAPT::Architecture=$DEB_ARCH -oAPT::Architectures=$DEB_ARCH
    -oDir::State="$APTD" -oDir::State::Lists="$APTD/lists" -oDir::State::Status="$APTD/status"
    -oDir::State::extended_states="$APTD/extended_states"
    -oDir::Cache="$APTD/cache" -oDir::Cache::Archives="$APTD/cache/archives"
    -oDir::Cache::pkgcache="$APTD/cache/pkgcache.bin" -oDir::Cache::srcpkgcache="$APTD/cache/srcpkgcache.bin"
    -oDir::Etc::SourceList="$APTD/etc/sources.list" -oDir::Etc::SourceParts="$APTD/etc/sources.list.d"
    -oDir::Etc::Preferences="$APTD/etc/preferences" -oDir::Etc::PreferencesParts="$APTD/etc/preferences.d"
    -oAcquire::Languages=none -oAcquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false
    -oAcquire::IndexTargets::deb::DEP-11::DefaultEnabled=false)
# as root apt drops to _apt for downloads, which cannot write into our folders: stay root (no sandbox)
[ "$(id -u)" = 0 ] && APT_OPTS+=(-oAPT::Sandbox::User=root)
run apt-get "${APT_OPTS[@]}" update

# -- 2. the package closure, resolved by apt against an empty system, and its .debs -------------------------
stage 2 "packages: the closure of $(echo $ROOT_PACKAGES)"
# shellcheck disable=SC2086
run apt-get "${APT_OPTS[@]}" -s install --no-install-recommends $ROOT_PACKAGES
mapfile -t PKGS < <(sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) .*/\1 \2/p' "$LOG")
[ ${#PKGS[@]} -gt 0 ] || die "apt resolved no packages: see $LOG"
printf '%s\n' "${PKGS[@]}" >"$DIR/packages.txt"
rm -rf "$DIR/debs" && mkdir -p "$DIR/debs"
(cd "$DIR/debs" && run apt-get "${APT_OPTS[@]}" download "${PKGS[@]%% *}")

# -- 3. unpack them into the rootfs -----------------------------------------------------------------------
stage 3 "rootfs: unpacking ${#PKGS[@]} packages into $ROOTFS"
rm -rf "$ROOTFS.tmp" && mkdir -p "$ROOTFS.tmp"
for deb in "$DIR"/debs/*.deb; do run dpkg-deb -x "$deb" "$ROOTFS.tmp"; done
# absolute symlinks would point into the host under qemu: make them relative within the rootfs
while IFS= read -r -d '' link; do
    target=$(readlink "$link")
    ln -sfn "$(realpath -s -m --relative-to="$(dirname "$link")" "$ROOTFS.tmp$target")" "$link"
done < <(find "$ROOTFS.tmp" -type l -lname '/*' -print0)
# the ARM /proc/cpuinfo of a 4-core Cortex-A72 (r0p3) as a Pi 4's arm64 kernel shows it (no "model name"),
# the Features of qemu's cortex-a72, and a Hardware line that says what this is (see the top of this file)
mkdir -p "$ROOTFS.tmp/proc"
for i in 0 1 2 3; do
    printf 'processor\t: %s\nBogoMIPS\t: 108.00\n' "$i"
    printf 'Features\t: fp asimd aes pmull sha1 sha2 crc32 cpuid\nCPU implementer\t: 0x41\n'
    printf 'CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n'
done >"$ROOTFS.tmp/proc/cpuinfo"
printf 'Hardware\t: %s\nModel\t\t: %s\n' "qemu-user $QEMU_CPU_MODEL (emulated Raspberry Pi 4)" \
    "emulated Raspberry Pi 4 ($BOARD, not real hardware)" >>"$ROOTFS.tmp/proc/cpuinfo"
[ -x "$ROOTFS.tmp/usr/bin/python$PY_VER" ] || die "the packages brought no usr/bin/python$PY_VER: see $LOGS/2.log"
rm -rf "$ROOTFS" && mv "$ROOTFS.tmp" "$ROOTFS"

# -- 4. the aarch64 wheels, installed by the host's pip --------------------------------------------------
GLIBC_MINOR=$(sed -n 's/^libc6 2\.\([0-9]*\).*/\1/p' "$DIR/packages.txt")
[ -n "$GLIBC_MINOR" ] || die "no libc6 in $DIR/packages.txt"
PLATFORMS=(--platform manylinux2014_aarch64)
for ((m = 17; m <= GLIBC_MINOR; m++)); do PLATFORMS+=(--platform "manylinux_2_${m}_aarch64"); done
stage 4 "site: aarch64 wheels for cp${PY_VER/./} (glibc 2.$GLIBC_MINOR) with $HOST_PY's pip: $(echo $WHEELS)"
rm -rf "$SITE.tmp"
# shellcheck disable=SC2086
run "$HOST_PY" -m pip install --disable-pip-version-check --no-input --target "$SITE.tmp" --no-deps \
    --only-binary=:all: "${PLATFORMS[@]}" --python-version "$PY_VER" --implementation cp $WHEELS
rm -rf "$SITE.tmp/bin"  # console scripts with the host's shebang
ls -d "$SITE.tmp"/*.dist-info | sed 's:.*/::; s:\.dist-info$::; s:-\([^-]*\)$: \1:' >"$DIR/wheels.txt"
rm -rf "$SITE" && mv "$SITE.tmp" "$SITE"

# -- 5. bytecode for the stdlib (Debian compiles it at install time; a read-only rootfs would stay slow) ---
stage 5 "bytecode: compiling the rootfs's stdlib"
if [ "$("$HOST_PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = "$PY_VER" ]; then
    "$HOST_PY" -m compileall -q -j 0 "$ROOTFS/usr/lib/python$PY_VER" >>"$LOG" 2>&1 || true
else
    echo "host Python is not $PY_VER: the emulated one compiles on first use" >>"$LOG"
fi

# -- 6. the wrapper ---------------------------------------------------------------------------------------
stage 6 "wrapper: $WRAPPER"
cat >"$WRAPPER.tmp" <<EOF
#!/bin/sh
# The emulated Raspberry Pi 4's python3 (written by tools/emulated_board.sh; rebuild with make emulated-rpi4):
# Debian $SUITE's arm64 python$PY_VER under $QEMU_NAME -cpu $QEMU_CPU_MODEL. $SITE comes before the caller's
# PYTHONPATH. sys.executable is this script, so the guest can start more of itself (subprocess, multiprocessing).
ROOTFS='$ROOTFS'
SITE='$SITE'
QEMU='$QEMU'
if [ ! -x "\$QEMU" ]; then
    QEMU=\$(command -v $QEMU_NAME) || { echo "$WRAPPER: $QEMU_NAME not found: install Debian's qemu-user with \\\`make cross-tools\\\` (root)" >&2; exit 127; }
fi
case ":\${PYTHONPATH:-}:" in
    *":\$SITE:"*) ;;
    *) PYTHONPATH="\$SITE\${PYTHONPATH:+:\$PYTHONPATH}" ;;
esac
# the rootfs's stdlib whatever argv[0] says; no host user site (x86 extension modules of the same Python)
PYTHONHOME="\$ROOTFS/usr"
PYTHONNOUSERSITE=1
QEMU_CPU=$QEMU_CPU_MODEL
# (edgeticket tells emulation from the kernel's CPU in sysfs, which the rootfs's ARM /proc/cpuinfo does not hide)
export PYTHONPATH PYTHONHOME PYTHONNOUSERSITE QEMU_CPU
unset QEMU_LD_PREFIX
exec "\$QEMU" -L "\$ROOTFS" -0 '$WRAPPER' "\$ROOTFS/usr/bin/python$PY_VER" "\$@"
EOF
chmod 755 "$WRAPPER.tmp"
mv "$WRAPPER.tmp" "$WRAPPER"

# -- 7. smoke test: from / with a clean environment (as over ssh): imports + one onnxruntime inference ------
stage 7 "smoke test: numpy, onnxruntime (one inference), safetensors, click, tvm under emulation"
run env -i PATH=/usr/bin:/bin sh -c "cd / && '$WRAPPER' - '$SMOKE_ONNX'" <<'EOF'
import base64, platform, sys
import numpy as np, onnxruntime as ort, safetensors.numpy, click
assert platform.machine() == "aarch64", platform.machine()
s = ort.InferenceSession(base64.b64decode(sys.argv[1]), providers=["CPUExecutionProvider"])
x = np.array([[1.0, -2.0, 0.5, 3.0]], np.float32)
W = (np.arange(12, dtype=np.float32).reshape(4, 3) - 5) / 4
y = s.run(None, {"x": x})[0]
assert np.allclose(y, np.maximum(x @ W, 0), atol=1e-6), (y, np.maximum(x @ W, 0))
import tvm
from tvm import relax
print("python", platform.python_version(), platform.machine(), "numpy", np.__version__, "onnxruntime",
      ort.__version__, "tvm", tvm.__version__, "executable", sys.executable)
EOF
tail -n 1 "$LOG" | sed "s/^/[$BOARD]     /"

# -- 8. drop the apt state and the .debs (packages.txt lists them), stamp ----------------------------------
rm -rf "$APTD" "$DIR/debs"
echo "$FINGERPRINT" >"$STAMP"
stage 8 "done: $(du -sh "$DIR" | cut -f1) in $DIR; run $WRAPPER"
