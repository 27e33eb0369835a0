#!/bin/sh
# Install the Debian 12 packages skyprof needs to build, test, run and bench.
# Idempotent: asks apt only for what dpkg says is missing.
set -eu

PACKAGES="
gcc make pkg-config clang llvm libclang-rt-14-dev bpftool linux-perf
libbpf-dev libelf-dev libzmq3-dev libmsgpack-dev
libprotobuf-c-dev protobuf-c-compiler libgrpc-dev libcurl4-openssl-dev
libssl-dev libyaml-dev libmicrohttpd-dev libsqlite3-dev libiberty-dev zlib1g-dev
check libsubunit-dev
elfutils binutils procps curl python3 python3-grpcio hyperfine bpftrace dpkg-dev
chromium
podman podman-compose runc netavark aardvark-dns catatonit iptables python3-yaml
"
[ -n "${SKYPROF_EXTRA_PACKAGES:-}" ] && PACKAGES="$PACKAGES $SKYPROF_EXTRA_PACKAGES"

# One dpkg-query for all of them (one per package took seconds of every
# make test): the installed ones, by name.
# shellcheck disable=SC2086
installed=" $(dpkg-query -W -f='${Package} ${Status}\n' $PACKAGES 2>/dev/null |
             awk '/ install ok installed$/ { printf "%s ", $1 }')"
missing=""
for p in $PACKAGES; do
    case "$installed" in
        *" $p "*) ;;
        *) missing="$missing $p" ;;
    esac
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages:$missing" >&2
    echo "deps: run 'make deps' as root (or install them with apt-get)" >&2
    exit 1
fi

echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists once if they are absent or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -n 1)" ]; then
    apt-get update -qq
fi
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "deps: done"
