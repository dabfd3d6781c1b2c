"""The emulator's image keeps the contract its patches hold MiniStack to (localstack/contract.py):
every private name, signature and copied function they rely on is still as they were written for.

Does not need the sandbox (`make up`), only the emulator's image, which `make up` builds. After a
MiniStack upgrade, a failure lists what to re-read, one line each (localstack/README.md).
"""
from __future__ import annotations

import pytest

from sandbox.host.docker import docker
from sandbox.host.images import SERVICE_IMAGES, image_exists
from sandbox.host.settings import ROOT
from sandbox.seeding.config import load_images

pytestmark = pytest.mark.e2e

# localstack/Dockerfile copies localstack/*.py there.
CONTRACT_IN_IMAGE = "/opt/localstack/contract.py"


@pytest.fixture(scope="module")
def emulator_image(settings) -> str:
    image = settings.get("LOCALSTACK_IMAGE")
    dockerfile = ROOT / "localstack" / "Dockerfile"
    built_here = {i["tag"] for i in load_images(SERVICE_IMAGES) if i["dockerfile"] == dockerfile}
    if image not in built_here:
        pytest.skip(f"LOCALSTACK_IMAGE is {image}, not the MiniStack image this checkout builds "
                    f"({', '.join(sorted(built_here))}): no patches to check")
    if not image_exists(image):
        pytest.skip(f"{image} is not built (make up builds it)")
    return image


def test_the_emulator_image_keeps_the_contract_of_its_patches(emulator_image):
    run = docker("run", "--rm", "--entrypoint", "python", emulator_image, CONTRACT_IN_IMAGE, timeout=120)
    assert "can't open file" not in run.stderr, (
        f"{emulator_image} has no {CONTRACT_IN_IMAGE}: it was built before the contract existed; "
        "rebuild it (make up)")
    assert run.returncode == 0, f"{emulator_image}: {run.stdout}{run.stderr}"
    assert "keeps all" in run.stdout, run.stdout
