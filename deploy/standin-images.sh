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
#   sh deploy/standin-images.sh            # the two base images (compose: see the end)
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

# `sh deploy/standin-images.sh compose`: also the compose file's other two images, so the
# whole stack can come up here. Debian bookworm has PostgreSQL 15, not 16: the postgres
# stand-in is 15 under the tag postgres:16-alpine (its entrypoint does the part of the real
# one the compose file uses: POSTGRES_USER / _PASSWORD / _DB on an empty data directory).
# caddy:2 is Debian's caddy (2.6) with the real image's /config and /data.
PG_TAG=postgres:16-alpine
CADDY_TAG=caddy:2
if [ "${1:-}" = compose ]; then
    if have "$PG_TAG"; then
        echo "$PG_TAG: present, left alone"
    else
        mkdir "$WORK/pg"
        cat >"$WORK/pg/entrypoint.sh" <<'ENTRYPOINT'
#!/bin/sh
set -eu
: "${POSTGRES_PASSWORD:?}" "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    printf '%s\n' "$POSTGRES_PASSWORD" >/tmp/pwfile
    chown postgres /tmp/pwfile
    as_pg initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile=/tmp/pwfile \
        --auth-local=trust --auth-host=scram-sha-256
    rm -f /tmp/pwfile
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    if [ "$POSTGRES_DB" != postgres ]; then
        as_pg pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
        as_pg createdb -U "$POSTGRES_USER" "$POSTGRES_DB"
        as_pg pg_ctl -D "$PGDATA" -m fast -w stop
    fi
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups \
    postgres -D "$PGDATA" -c listen_addresses='*'
ENTRYPOINT
        cat >"$WORK/pg/Dockerfile" <<DOCKERFILE
FROM $PYTHON_TAG
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/*
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
DOCKERFILE
        docker build --network=host -t "$PG_TAG" "$WORK/pg"
    fi
    if have "$CADDY_TAG"; then
        echo "$CADDY_TAG: present, left alone"
    else
        mkdir "$WORK/caddy"
        cat >"$WORK/caddy/Dockerfile" <<DOCKERFILE
FROM $PYTHON_TAG
RUN apt-get update \
 && apt-get install -y --no-install-recommends caddy \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /config/caddy /data/caddy /etc/caddy
ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data
EXPOSE 80 443
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
DOCKERFILE
        docker build --network=host -t "$CADDY_TAG" "$WORK/caddy"
    fi
fi

docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' \
    | grep -E "^($PYTHON_TAG|$UV_TAG|$PG_TAG|$CADDY_TAG) "
