# syntax=docker/dockerfile:1
# The kube-ecrlogin image. Build:  make image  (docker build --build-arg VERSION=<package.json version> ...)
# Runs as UID/GID 65532 and writes nothing at run time, so it works with readOnlyRootFilesystem.
# test/kustomize/dockerfile.test.ts replays the build and runtime stages without a container engine.

ARG NODE_IMAGE=node:24-slim

# Build: the full toolchain. `npm run build` type-checks and compiles src/ (tsc); `npm run bundle` makes the
# one file the image runs: src/ with its production dependencies, bundled and minified by esbuild (names
# kept, a source map beside it). One file instead of dist/ and node_modules/ starts in half the time and
# holds about 30 MiB less: Node keeps every loaded module's source text, and the bundle leaves out what
# the controller never loads.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm run bundle && chmod +x dist/kube-ecrlogin.mjs

FROM ${NODE_IMAGE}
# The release, from package.json: `make image` and the release workflow pass it; a bare build says dev.
ARG VERSION=dev
LABEL org.opencontainers.image.title="kube-ecrlogin" \
      org.opencontainers.image.description="Keeps AWS ECR pull Secrets fresh for annotated Namespaces and ServiceAccounts" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
# A named user for UID 65532 (as distroless's nonroot), and no package manager at run time.
RUN groupadd --gid 65532 nonroot \
 && useradd --uid 65532 --gid 65532 --home-dir /home/nonroot --create-home --shell /usr/sbin/nologin nonroot \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
 && ln -s /app/dist/kube-ecrlogin.mjs /usr/local/bin/kube-ecrlogin
WORKDIR /app
COPY --from=build /src/dist/kube-ecrlogin.mjs /src/dist/kube-ecrlogin.mjs.map ./dist/
# The bundle reads the version from ../package.json.
COPY package.json ./
# Nothing is written at run time: HOME is only read (the AWS SDK looks for ~/.aws), no temporary files.
# Memory: V8's young generation capped at 8 MiB per semi-space (its default grows to tens of MiB, most of
# the peak at cold start), and the old generation at half of the container's memory limit (Node reads
# the cgroup limit), so that the garbage collector works before the limit, not the OOM killer. `make
# bench` runs the bundle with these flags. No --enable-source-maps: it costs start time and memory; the
# bundle keeps function and class names, and its map is beside it for whoever sets the flag.
ENV NODE_ENV=production \
    HOME=/home/nonroot \
    NODE_OPTIONS="--max-semi-space-size=8 --max-old-space-size-percentage=50"
# V8's compile cache of the bundle, made here by the image's Node, flags and user (Node keeps a cache per
# UID) and only read at run time: Node then loads the compiled code instead of parsing 4 MB of
# JavaScript, whose parser leaves about 20 MiB in the process (test/bench/baseline.ts measures it). Run
# as another UID, or with a bundle or Node that does not match, the bundle is parsed as before.
ENV NODE_COMPILE_CACHE=/app/compile-cache
RUN mkdir /app/compile-cache && chown 65532:65532 /app/compile-cache
USER 65532:65532
RUN node /app/dist/kube-ecrlogin.mjs --version
EXPOSE 8080 8081
ENTRYPOINT ["node", "/app/dist/kube-ecrlogin.mjs"]
CMD ["run"]
