# A local stand-in for python:3.12-slim-bookworm where that cannot be pulled: Debian bookworm's
# Python 3.11 with venv. Built on the debootstrap base; the Dockerfiles only use `python3 -m venv`.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv ca-certificates procps \
 && rm -rf /var/lib/apt/lists/*
CMD ["python3"]
