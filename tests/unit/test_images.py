"""Which base images the builds use, decided without touching Docker."""
from __future__ import annotations

import pytest

from sandbox import images
from sandbox.settings import Settings

pytestmark = pytest.mark.unit

UPSTREAM = {"DEBIAN_BASE_IMAGE": "debian:bookworm-slim", "PYTHON_BASE_IMAGE": "python:3.12-slim-bookworm"}


@pytest.fixture
def docker(monkeypatch):
    """Images present and pullable in a pretend engine; records pull attempts and local builds."""
    state = {"present": set(), "pullable": set(), "pulls": [], "built": []}
    monkeypatch.setattr(images, "image_exists", lambda tag: tag in state["present"])

    def pull(tag):
        state["pulls"].append(tag)
        if tag in state["pullable"]:
            state["present"].add(tag)
            return True
        return False

    def build_debian():
        state["built"].append(images.LOCAL_DEBIAN_BASE)
        state["present"].add(images.LOCAL_DEBIAN_BASE)

    monkeypatch.setattr(images, "_try_pull", pull)
    monkeypatch.setattr(images, "_build_local_debian_base", build_debian)
    monkeypatch.setattr(images, "build", lambda image, bases: state["built"].append(image.tag))
    return state


def test_upstream_bases_are_used_when_pullable(docker):
    docker["pullable"] |= set(UPSTREAM.values())
    assert images.resolve_bases(Settings(dict(UPSTREAM))) == {
        "debian": "debian:bookworm-slim", "python": "python:3.12-slim-bookworm"}
    assert docker["built"] == []


def test_local_bases_are_built_once_and_then_reused_without_pulling(docker):
    first = images.resolve_bases(Settings(dict(UPSTREAM)))
    assert first == {"debian": images.LOCAL_DEBIAN_BASE, "python": images.LOCAL_PYTHON_BASE}
    assert docker["pulls"] == list(UPSTREAM.values())
    assert docker["built"] == [images.LOCAL_DEBIAN_BASE, images.LOCAL_PYTHON_BASE]
    docker["present"].add(images.LOCAL_PYTHON_BASE)
    docker["pulls"].clear()
    docker["built"].clear()
    assert images.resolve_bases(Settings(dict(UPSTREAM))) == first
    assert docker["pulls"] == []
    # No second debootstrap; the python base goes through the (cached) build so Dockerfile edits apply.
    assert docker["built"] == [images.LOCAL_PYTHON_BASE]


def test_a_present_upstream_base_wins_over_a_local_one(docker):
    docker["present"] |= {"debian:bookworm-slim", images.LOCAL_DEBIAN_BASE, images.LOCAL_PYTHON_BASE}
    assert images.resolve_bases(Settings(dict(UPSTREAM))) == {
        "debian": "debian:bookworm-slim", "python": images.LOCAL_PYTHON_BASE}
    assert docker["pulls"] == []
