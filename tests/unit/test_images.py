"""Which base images the builds use, decided without touching Docker."""
from __future__ import annotations

import pytest

from sandbox.host import images
from sandbox.host.settings import Settings

pytestmark = pytest.mark.unit

UPSTREAM = {"DEBIAN_BASE_IMAGE": "debian:bookworm-slim", "PYTHON_BASE_IMAGE": "python:3.12-slim-bookworm"}


@pytest.fixture
def docker(monkeypatch):
    """Images present and pullable in a pretend engine; records pull attempts and local builds."""
    state = {"present": set(), "pullable": set(), "pulls": [], "built": [], "tagged": {}}
    state["revision"] = images.LOCAL_BASE_REVISION  # what a local base in `present` was built with
    monkeypatch.setattr(images, "image_exists", lambda tag: tag in state["present"])

    def label(tag, name):
        local = tag.startswith("sandbox-base/") or tag in state["tagged"]
        return state["revision"] if tag in state["present"] and local else ""

    def tag_image(*args, **kw):
        assert args[0] == "tag", args
        state["tagged"][args[2]] = args[1]
        state["present"].add(args[2])

    monkeypatch.setattr(images, "image_label", label)
    monkeypatch.setattr(images, "docker", tag_image)

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


def test_a_local_base_from_an_older_recipe_is_built_again(docker):
    docker["present"] |= {images.LOCAL_DEBIAN_BASE, images.LOCAL_PYTHON_BASE}
    docker["revision"] = "1"
    assert images.resolve_bases(Settings(dict(UPSTREAM)))["debian"] == images.LOCAL_DEBIAN_BASE
    assert docker["pulls"] == []
    assert docker["built"] == [images.LOCAL_DEBIAN_BASE, images.LOCAL_PYTHON_BASE]


def test_slim_rootfs_keeps_copyrights_and_drops_caches_docs_and_translations(tmp_path):
    files = ["var/cache/apt/archives/apt_2.6.1_amd64.deb", "var/cache/apt/pkgcache.bin",
             "var/lib/apt/lists/deb.debian.org_dists_bookworm_InRelease", "usr/share/doc/bash/copyright",
             "usr/share/doc/bash/README.gz", "usr/share/man/man1/bash.1.gz", "usr/share/locale/de/LC_MESSAGES/x.mo",
             "usr/share/locale/locale.alias", "usr/bin/bash"]
    for rel in files:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    (tmp_path / "usr/share/doc/libstdc++6").symlink_to("bash")  # a doc folder that links to another
    images.slim_rootfs(tmp_path)
    assert (tmp_path / "usr/share/doc/libstdc++6").is_symlink()
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == ["etc/apt/apt.conf.d/docker-clean", "etc/apt/apt.conf.d/docker-no-languages",
                    "etc/dpkg/dpkg.cfg.d/docker", "usr/bin/bash", "usr/share/doc/bash/copyright",
                    "usr/share/locale/locale.alias"]
    assert 'Dir::Cache::pkgcache "";' in (tmp_path / "etc/apt/apt.conf.d/docker-clean").read_text()


def test_local_bases_answer_to_the_upstream_names_and_are_still_rebuilt_from_cache(docker):
    images.resolve_bases(Settings(dict(UPSTREAM)))
    # A team's unmodified `FROM python:3.12-slim-bookworm` resolves to the local base.
    assert docker["tagged"] == {"debian:bookworm-slim": images.LOCAL_DEBIAN_BASE,
                                "python:3.12-slim-bookworm": images.LOCAL_PYTHON_BASE}
    docker["present"].add(images.LOCAL_PYTHON_BASE)
    docker["built"].clear()
    # The upstream names now exist, but they are the local bases: not taken for pulled images.
    assert images.resolve_bases(Settings(dict(UPSTREAM))) == {
        "debian": images.LOCAL_DEBIAN_BASE, "python": images.LOCAL_PYTHON_BASE}
    assert docker["built"] == [images.LOCAL_PYTHON_BASE]
