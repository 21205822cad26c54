# PromoPilot: one image for every replica. docs/deploy.md explains the settings.
#   docker build -t promopilot .    # BuildKit (the default since Docker 23): RUN --mount
#   docker run --env-file .env -p 8000:8000 promopilot
# The lock was written by uv 0.13.9; build with the same uv so `uv sync --frozen` reads it.
ARG UV_VERSION=0.13.9
ARG PYTHON_VERSION=3.11
FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

FROM python:${PYTHON_VERSION}-slim-bookworm

# Chinese text in the review charts (matplotlib) needs a CJK font.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-noto-cjk \
 && rm -rf /var/lib/apt/lists/*

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    PYTHONUNBUFFERED=1
WORKDIR /app

# Dependencies first (their layer survives code changes), exactly as locked, no dev tools.
# uv is mounted for the build only, and its download cache is a build cache: neither ends
# up in the image (left in a layer, the cache was 700 MB of the image's 2 GB).
COPY pyproject.toml uv.lock README.md ./
RUN --mount=from=uv,source=/uv,target=/bin/uv \
    --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

# The code and what it reads at run time from the project directory (policies, rules,
# column maps, sources, templates, the message catalogs). The project is installed in
# place, so these are found beside the packages.
COPY bot ./bot
COPY adapters ./adapters
COPY commands ./commands
COPY cards ./cards
COPY storage ./storage
COPY locale ./locale
COPY policies ./policies
COPY rules ./rules
COPY columns ./columns
COPY config ./config
COPY templates ./templates
RUN --mount=from=uv,source=/uv,target=/bin/uv \
    --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev

# Not root. var/ holds the hand-off files and, without PROMOPILOT_SESSION_SECRET, the
# generated session secret: mount one volume there that every replica shares.
# matplotlib (the review charts) wants a writable config and cache directory: the user's
# home /app is not writable, so it gets its own, with the font cache (the CJK font
# included) built here rather than in every process, and no warning at each start.
ENV MPLCONFIGDIR=/app/.matplotlib
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin promopilot \
 && mkdir -p /app/var "$MPLCONFIGDIR" \
 && chown promopilot:promopilot /app/var "$MPLCONFIGDIR"
USER promopilot
RUN /app/.venv/bin/python -c "import matplotlib.font_manager"
VOLUME ["/app/var"]

ENV PATH="/app/.venv/bin:${PATH}" \
    PROMOPILOT_HOST=0.0.0.0 \
    PROMOPILOT_PORT=8000
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PROMOPILOT_PORT', '8000') + '/healthz', timeout=4)"]

# Migrations first (under PostgreSQL's advisory lock, so replicas starting together take
# turns), then the server; PROMOPILOT_WORKERS sets --workers (PostgreSQL only above 1).
CMD ["promopilot", "run", "--migrate"]
