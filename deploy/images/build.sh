#!/bin/sh
# Builds the skyprof container images with podman, FROM scratch: no base image
# is pulled (the build machine has no registry access), the image holds only
# our binaries, the shared libraries ldd names for them, the ELF interpreter,
# CA certificates for gRPC TLS, a passwd/group with an unprivileged user and
# the container configuration.
#
#   localhost/skyprof:TAG             every binary, no entrypoint (base)
#   localhost/skyprof-<stage>:TAG     thin layer on the base: entrypoint and
#                                     user of one stage (broker, collector,
#                                     symbolizer, aggregator, policy, uplink)
#
# All stage images share the base layer, so a node stores and pulls the
# binaries once. Every stage but the collector runs as uid 10001 (skyprof).
#
# Environment: BUILD (build tree, default build), PODMAN (default podman),
# SKYPROF_IMAGE_PREFIX (default localhost/skyprof), SKYPROF_IMAGE_TAG (default
# latest; the git commit is added as a second tag), CONTAINERS_CONF (default
# deploy/images/containers.conf), SKYPROF_IMAGE_SAVE=FILE to also write an
# OCI archive of every image (for `podman load` / `ctr import` on a node).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${BUILD:-build}
case "$build" in /*) ;; *) build="$top/$build" ;; esac
podman=${PODMAN:-podman}
prefix=${SKYPROF_IMAGE_PREFIX:-localhost/skyprof}
tag=${SKYPROF_IMAGE_TAG:-latest}
: "${CONTAINERS_CONF:=$here/containers.conf}"
export CONTAINERS_CONF

uid=10001
stages="broker collector symbolizer aggregator policy uplink"

die() { echo "images: $*" >&2; exit 1; }

command -v "$podman" >/dev/null 2>&1 ||
    die "$podman not found (make deps installs podman)"
for s in $stages; do
    [ -x "$build/bin/skyprof-$s" ] || die "missing $build/bin/skyprof-$s (run make first)"
done

ctx="$build/images/context"
root="$ctx/rootfs"
rm -rf "$ctx"
mkdir -p "$root/usr/bin" "$root/etc/skyprof" "$root/etc/ssl/certs" \
         "$ctx/writable/run/skyprof" "$ctx/writable/var/lib/skyprof" \
         "$ctx/tmp"

# Binaries, then every library they load, at the path the dynamic linker
# will look for it (ldd's resolved path; cp -L follows the soname symlink).
bins=""
for b in "$build"/bin/skyprof "$build"/bin/skyprof-*; do
    [ -x "$b" ] || continue
    cp "$b" "$root/usr/bin/"
    bins="$bins $b"
done
# shellcheck disable=SC2086
ldd $bins 2>/dev/null |
    awk '$2 == "=>" && $3 ~ /^\// { print $3 } NF >= 2 && $1 ~ /^\// { print $1 }' |
    sort -u > "$ctx/libs.txt"
[ -s "$ctx/libs.txt" ] || die "ldd found no libraries"
while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done < "$ctx/libs.txt"
# Debian's /lib64 is where PT_INTERP points; ldd lists it as such, but make
# sure the usrmerge layout (lib -> usr/lib) does not leave it dangling.
interp=$(readelf -l "$build/bin/skyprof-broker" | sed -n 's/.*interpreter: \(.*\)]/\1/p')
[ -n "$interp" ] && [ -f "$root$interp" ] || die "ELF interpreter $interp not copied"

# gRPC verifies the OAP certificate against the system bundle (TLS mode).
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
if [ -f /usr/share/grpc/roots.pem ]; then
    mkdir -p "$root/usr/share/grpc"
    cp -L /usr/share/grpc/roots.pem "$root/usr/share/grpc/"
fi

cat > "$root/etc/passwd" <<EOF
root:x:0:0:root:/root:/nonexistent
skyprof:x:$uid:$uid:skyprof:/var/lib/skyprof:/nonexistent
nobody:x:65534:65534:nobody:/nonexistent:/nonexistent
EOF
cat > "$root/etc/group" <<EOF
root:x:0:
skyprof:x:$uid:
nogroup:x:65534:
EOF
printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
cp "$here/skyprof.yaml" "$root/etc/skyprof/skyprof.yaml"
chmod 0700 "$ctx/writable/run/skyprof"
chmod 0750 "$ctx/writable/var/lib/skyprof"
chmod 1777 "$ctx/tmp"

rev=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
# The commit is a second tag only for release-style builds: a test build
# (SKYPROF_IMAGE_TAG=test, sanitizer binaries) must not claim it.
revtag() { [ "$tag" = latest ] && printf -- '-t %s:%s' "$1" "$rev"; }
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# A sanitizer build (make SAN=1, what test_deploy runs) needs ASan options in
# the image: ASan keeps up to 256 MiB of freed memory in its quarantine by
# default, and the collector, which allocates and frees tens of MiB of
# unwind tables at start, reached the compose file's 256M limit within
# seconds and was OOM-killed by its memory cgroup over and over (release
# build: ~26 MiB peak). 16 MiB of quarantine still catches use-after-free
# of recent frees and keeps the collector's container near 120 MiB.
san_env=""
if grep -q '/libasan\.so' "$ctx/libs.txt"; then
    san_env="ENV ASAN_OPTIONS=quarantine_size_mb=16"
fi

cat > "$ctx/Containerfile" <<EOF
FROM scratch
COPY rootfs/ /
COPY tmp/ /tmp/
COPY --chown=$uid:$uid writable/ /
LABEL org.opencontainers.image.title="skyprof" \\
      org.opencontainers.image.description="eBPF continuous profiler (SkyWalking-compatible): every stage binary" \\
      org.opencontainers.image.revision="$rev" \\
      org.opencontainers.image.created="$created"
ENV PATH=/usr/bin
$san_env
WORKDIR /var/lib/skyprof
EOF

# The images this build replaces: removed afterwards when nothing (tag or
# container) still uses them, so rebuilding does not pile up dangling images.
replaced=""
for name in "$prefix" $(for s in $stages; do echo "$prefix-$s"; done); do
    id=$("$podman" image inspect -f '{{.Id}}' "$name:$tag" 2>/dev/null || true)
    replaced="$replaced $id"
done

echo "images: $prefix:$tag (base, $(wc -l < "$ctx/libs.txt") libraries)"
"$podman" build --quiet --layers=false -f "$ctx/Containerfile" \
    -t "$prefix:$tag" $(revtag "$prefix") "$ctx" >/dev/null

# One thin image per stage. The collector stays root: loading BPF programs
# and reading every process's maps needs capabilities a non-root user only
# gets with file capabilities, which the runtimes drop under no_new_privs.
# The six builds run side by side (each is mostly podman starting up and
# committing, ~1.3 s apiece one after another on a 2-CPU machine) from an
# empty context: they copy nothing.
mkdir -p "$ctx/stage"
builds=""
for s in $stages; do
    user=$uid
    ports=""
    env=""
    case "$s" in
        broker)     ports="5550 5551 9100" ;;
        collector)  user=0; ports="9101"
                    # LeakSanitizer stops the threads with ptrace, which
                    # deploy/compose/collector-seccomp.json denies: every
                    # exit would end in "LeakSanitizer has encountered a
                    # fatal error" and status 1. The collector's leaks are
                    # checked where it runs on the host (tests).
                    if [ -n "$san_env" ]; then
                        env="$san_env:detect_leaks=0"
                    fi ;;
        symbolizer) ports="9102" ;;
        policy)     ports="9103" ;;
        uplink)     ports="9104" ;;
        aggregator) ports="8080" ;;
    esac
    cat > "$ctx/Containerfile.$s" <<EOF
FROM $prefix:$tag
USER $user:$user
EXPOSE $ports
$env
LABEL org.opencontainers.image.title="skyprof-$s" \\
      org.opencontainers.image.revision="$rev"
ENTRYPOINT ["/usr/bin/skyprof-$s", "--config", "/etc/skyprof/skyprof.yaml"]
EOF
    echo "images: $prefix-$s:$tag (user $user)"
    "$podman" build --quiet -f "$ctx/Containerfile.$s" \
        -t "$prefix-$s:$tag" $(revtag "$prefix-$s") "$ctx/stage" \
        >"$ctx/build.$s.log" 2>&1 &
    builds="$builds $s:$!"
done
failed=""
for b in $builds; do
    wait "${b#*:}" || failed="$failed ${b%%:*}"
done
for s in $failed; do
    cat "$ctx/build.$s.log" >&2
done
[ -z "$failed" ] || die "podman build failed for:$failed"

for id in $replaced; do
    "$podman" rmi "$id" >/dev/null 2>&1 || true  # still tagged or in use: kept
done

if [ -n "${SKYPROF_IMAGE_SAVE:-}" ]; then
    list="$prefix:$tag"
    for s in $stages; do list="$list $prefix-$s:$tag"; done
    # shellcheck disable=SC2086
    "$podman" save --multi-image-archive -o "$SKYPROF_IMAGE_SAVE" $list
    echo "images: saved to $SKYPROF_IMAGE_SAVE"
fi
"$podman" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' |
    grep -E "^$prefix(-[a-z]+)?:$tag " || true
