# syntax=docker/dockerfile:1
# mxport-worker image: the worker daemon and the mxport CLI with the CUDA 13 runtime and NCCL,
# run as uid 10001. Build from the repository root:
#
#   docker build -f deploy/docker/worker.Dockerfile -t mxport-worker:0.1.0 .
#   docker build -f deploy/docker/worker.Dockerfile --build-arg CUDA_ARCHITECTURES="90;100" ...
#
# The binaries are built and run on Debian 12, like the coordinator and CI: they link Debian 12's
# gRPC, protobuf, abseil and spdlog, which Ubuntu 24.04 ships under other sonames (spdlog 1.12,
# the t64 libraries), so an nvidia/cuda Ubuntu image cannot be the runtime base. CUDA and NCCL
# come from NVIDIA's nvidia/cuda devel image instead: the toolkit for the build, and libcudart
# and libnccl for the runtime. The Ubuntu 22.04 flavour is used because its glibc (2.35) is not
# newer than Debian 12's (2.36). The GPU driver (libcuda) is mounted by the NVIDIA container
# toolkit at run time, as with every CUDA image.
#
# The build stage installs exactly what CI installs (tools/install-deps.sh) and configures CMake
# as tools/test.sh does; tests/deploy/check-images.js checks both, and that the runtime stage
# carries every shared library the binaries load.

ARG CUDA_IMAGE=nvidia/cuda:13.0.1-devel-ubuntu22.04
ARG CUDA_HOME=/usr/local/cuda-13.0

FROM ${CUDA_IMAGE} AS cuda
# NCCL from the image's libnccl-dev, gathered under one prefix.
RUN mkdir -p /opt/nccl/include /opt/nccl/lib64 \
 && cp -a /usr/include/nccl* /opt/nccl/include/ \
 && cp -a /usr/lib/"$(uname -m)"-linux-gnu/libnccl.so* /opt/nccl/lib64/

FROM debian:12 AS build
ARG CUDA_HOME
ARG CUDA_ARCHITECTURES=90
WORKDIR /src
COPY tools/install-deps.sh tools/install-deps.sh
RUN bash tools/install-deps.sh
COPY --from=cuda ${CUDA_HOME} ${CUDA_HOME}
COPY --from=cuda /opt/nccl /opt/nccl
# The layout CI machines have: NCCL inside the CUDA root (MXPORT_CUDA_ROOT).
RUN cp -a /opt/nccl/include/. ${CUDA_HOME}/include/ \
 && cp -a /opt/nccl/lib64/. ${CUDA_HOME}/lib64/
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMXPORT_CUDA_ROOT=${CUDA_HOME} \
      -DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHITECTURES} \
 && cmake --build build --target mxport-worker mxport \
 && strip build/bin/mxport-worker build/bin/mxport

FROM debian:12-slim
ARG CUDA_HOME
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libabsl20220623 libc-ares2 libgrpc++1.51 libgrpc29 libprotobuf32 libre2-9 libssl3 \
      libstdc++6 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 mxport \
 && useradd --system --uid 10001 --gid mxport --no-create-home mxport
COPY --from=cuda ${CUDA_HOME}/lib64/libcudart.so.13* ${CUDA_HOME}/lib64/
COPY --from=cuda /opt/nccl/lib64/libnccl.so.2* ${CUDA_HOME}/lib64/
RUN echo "${CUDA_HOME}/lib64" > /etc/ld.so.conf.d/mxport-cuda.conf && ldconfig
COPY --from=build /src/build/bin/mxport-worker /src/build/bin/mxport /usr/local/bin/
# Read by the NVIDIA container toolkit: expose the pod's GPUs and the compute driver libraries.
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    NVIDIA_REQUIRE_CUDA="cuda>=13.0"
USER 10001:10001
EXPOSE 29500
ENTRYPOINT ["mxport-worker"]
