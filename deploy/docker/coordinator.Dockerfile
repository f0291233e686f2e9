# syntax=docker/dockerfile:1
# mxport-coordinator image: the coordinator and the mxport CLI on Debian 12, run as uid 10001.
# Build from the repository root:
#
#   docker build -f deploy/docker/coordinator.Dockerfile -t mxport-coordinator:0.1.0 .
#
# The build stage installs exactly what CI installs (tools/install-deps.sh) and configures CMake
# as tools/test.sh does; tests/deploy/check-images.js checks both, and that the runtime stage
# installs the Debian package of every shared library the binaries load.

FROM debian:12 AS build
WORKDIR /src
COPY tools/install-deps.sh tools/install-deps.sh
RUN bash tools/install-deps.sh
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMXPORT_CUDA=OFF \
 && cmake --build build --target mxport-coordinator mxport \
 && strip build/bin/mxport-coordinator build/bin/mxport

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libabsl20220623 libbrotli1 libc-ares2 libcpp-httplib0.11 libfmt9 libgrpc++1.51 libgrpc29 \
      libprotobuf32 libre2-9 libspdlog1.10 libsqlite3-0 libssl3 libstdc++6 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 mxport \
 && useradd --system --uid 10001 --gid mxport --home-dir /var/lib/mxport --no-create-home mxport \
 && mkdir -p /var/lib/mxport \
 && chown mxport:mxport /var/lib/mxport
COPY --from=build /src/build/bin/mxport-coordinator /src/build/bin/mxport /usr/local/bin/
USER 10001:10001
WORKDIR /var/lib/mxport
EXPOSE 50051 8080
ENTRYPOINT ["mxport-coordinator"]
CMD ["--grpc-address=0.0.0.0:50051", "--rest-port=8080", "--db=/var/lib/mxport/coordinator.db"]
