# A thin wrapper over the tested setup path: the image runs `./avatar setup`, the same command
# the README and CI use, so there is one install path. CI does not build this image.
#
#   docker build -t talking-avatar .
#   docker run --rm -it --network host talking-avatar        # then open http://127.0.0.1:8080/
#
# Host networking keeps every server on 127.0.0.1 as in the local stack (WebRTC needs the
# advertised loopback address to be the host's).

# --- stage 1: the browser client -------------------------------------------------------------
FROM node:20-bookworm-slim AS client
WORKDIR /src/client
COPY client/package.json client/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY client/ ./
RUN npm run build

# --- stage 2: Python environment, servers and models ------------------------------------------
FROM python:3.11-slim-bookworm
ARG GO_VERSION=1.26.8
ENV AVATAR_CACHE=/cache PATH=/usr/local/go/bin:/root/.local/bin:$PATH
RUN apt-get update && apt-get install -y --no-install-recommends \
        ca-certificates curl git build-essential nlohmann-json3-dev libstb-dev \
    && rm -rf /var/lib/apt/lists/* \
    && curl -fsSL "https://go.dev/dl/go${GO_VERSION}.linux-amd64.tar.gz" | tar -C /usr/local -xz \
    && python3 -m pip install --no-cache-dir uv
WORKDIR /app
COPY . .
COPY --from=client /src/client/dist client/dist
RUN ./avatar setup
EXPOSE 8080 7880
CMD ["./avatar", "up"]
