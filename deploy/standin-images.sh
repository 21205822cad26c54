#!/bin/sh
# Local stand-ins for the Dockerfile's two base images, for a machine that reaches Debian's
# apt mirror and PyPI but no container registry (neither ghcr.io nor Docker Hub). They are
# NOT the real images: build and check the image on the real ones before relying on it.
#
#   python:3.11-slim-bookworm   <- a debootstrap'ed Debian bookworm (minbase) with Debian's
#                                  python3 (3.11), python3-venv and ca-certificates; `python`
#                                  and `python3` in /usr/local/bin and PATH as in the real image
#   ghcr.io/astral-sh/uv:0.13.9 <- FROM scratch with /uv and /uvx copied from a local uv of
#                                  that version (the one that wrote uv.lock)
#
# Usage (as root, with a running Docker daemon and debootstrap installed):
#   sh deploy/standin-images.sh
#   docker build --network=host -t promopilot .
# Environment: ROOTFS (default /tmp/pp-standin-rootfs, removed once imported), MIRROR
# (debootstrap's mirror; unset: debootstrap's default), EXTRA_CA_DIR (below), UV_BIN_DIR
# (where uv and uvx are; default the directory of `command -v uv`).
# An image already present under a tag is left alone (docker rmi it to rebuild); the
# imported rootfs is kept as pp-standin/bookworm-rootfs, so rebuilding the python stand-in
# does not debootstrap again. Apt inside it uses debootstrap's sources.list (bookworm main
# only; the real image adds bookworm-updates and bookworm-security).
set -eu

UV_VERSION=0.13.9
PYTHON_TAG=python:3.11-slim-bookworm
UV_TAG=ghcr.io/astral-sh/uv:$UV_VERSION
ROOTFS_TAG=pp-standin/bookworm-rootfs:latest
ROOTFS=${ROOTFS:-/tmp/pp-standin-rootfs}
MIRROR=${MIRROR:-}
EXTRA_CA_DIR=${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

have() { docker image inspect "$1" >/dev/null 2>&1; }

if have "$PYTHON_TAG"; then
    echo "$PYTHON_TAG: present, left alone"
else
    if ! have "$ROOTFS_TAG"; then
        if [ ! -x "$ROOTFS/usr/bin/python3" ]; then
            # shellcheck disable=SC2086  # MIRROR: one word or none
            debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
                bookworm "$ROOTFS" $MIRROR
        fi
        rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
        tar -C "$ROOTFS" --numeric-owner -c . | docker import - "$ROOTFS_TAG"
        rm -rf "$ROOTFS"
    fi
    # On a machine whose outbound HTTPS is re-signed by a local CA, uv inside the build must
    # trust that CA too: the stand-in carries the CAs this machine added, and SSL_CERT_FILE
    # (which uv reads). The real image has neither and needs neither.
    mkdir "$WORK/ca"
    if ls "$EXTRA_CA_DIR"/*.crt >/dev/null 2>&1; then
        cp "$EXTRA_CA_DIR"/*.crt "$WORK/ca/"
    fi
    # As Debian's official images: apt keeps no .debs nor package caches in a layer.
    cat >"$WORK/docker-clean" <<'APTCONF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APTCONF
    cat >"$WORK/Dockerfile" <<DOCKERFILE
FROM $ROOTFS_TAG
COPY docker-clean /etc/apt/apt.conf.d/docker-clean
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates \\
 && ln -sf /usr/bin/python3 /usr/local/bin/python3 \\
 && ln -sf /usr/bin/python3 /usr/local/bin/python
ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \\
    LANG=C.UTF-8 \\
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
DOCKERFILE
    docker build -t "$PYTHON_TAG" "$WORK"
fi

if have "$UV_TAG"; then
    echo "$UV_TAG: present, left alone"
else
    UV_BIN_DIR=${UV_BIN_DIR:-$(dirname "$(command -v uv)")}
    found=$("$UV_BIN_DIR/uv" --version | cut -d' ' -f2)
    if [ "$found" != "$UV_VERSION" ]; then
        echo "need uv $UV_VERSION in $UV_BIN_DIR, found $found" >&2
        exit 1
    fi
    mkdir "$WORK/uv"
    cp "$UV_BIN_DIR/uv" "$UV_BIN_DIR/uvx" "$WORK/uv/"
    printf 'FROM scratch\nCOPY uv uvx /\nENTRYPOINT ["/uv"]\n' >"$WORK/uv/Dockerfile"
    docker build -t "$UV_TAG" "$WORK/uv"
fi

docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' \
    | grep -E "^($PYTHON_TAG|$UV_TAG) "
