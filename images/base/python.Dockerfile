# A local stand-in for python:3.12-slim-bookworm where that cannot be pulled, built on the
# debootstrap base: Debian bookworm's Python 3.11 (bookworm has no 3.12 package).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
ENV LANG=C.UTF-8
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv ca-certificates procps \
 && rm -rf /var/lib/apt/lists/*
# What the upstream image gives a Dockerfile built on it: `python`, `pip` and `pip3` on PATH,
# installing as root into the image's own Python. Debian's Python refuses `pip install` outside a
# venv (PEP 668), so a venv at /usr/local plays upstream's /usr/local build.
RUN python3 -m venv /usr/local && python -m pip --version
# pip trusts the host's CA bundle plus EXTRA_CA_CERT (TLS-intercepting proxies) in every image built
# on this base, so a team's unmodified `RUN pip install -r requirements.txt` works here too.
COPY .build/ca-bundle.crt /usr/local/share/sandbox/ca-bundle.crt
ENV PIP_CERT=/usr/local/share/sandbox/ca-bundle.crt
CMD ["python3"]
