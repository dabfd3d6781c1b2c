"""Sample cases for `import_vcf`: small, deterministic, valid VCF 4.2 files, bgzip-compressed and
tabix-indexed with htslib's own tools (Debian's `tabix` package in the bootstrap image).

The same index always yields the same bytes, so seeding them is idempotent.
"""
from __future__ import annotations

import random
import subprocess
import tempfile
from pathlib import Path

CHROMOSOMES = [("chr1", 248_956_422), ("chr2", 242_193_529), ("chr3", 198_295_559), ("chrX", 156_040_895)]
GENOTYPES = ["0/0", "0/1", "1/1", "./."]
GENOTYPE_WEIGHTS = [50, 30, 15, 5]
BASES = "ACGT"


def case_id(index: int) -> str:
    return f"case-{index:03d}"


def generate_vcf(index: int, samples: int = 3, variants: int = 300) -> str:
    """One case: `samples` samples, about `variants` variant records spread over the chromosomes."""
    rng = random.Random(f"sandbox-vcf-{index}")
    names = [f"{case_id(index)}-S{s + 1}" for s in range(samples)]
    lines = ["##fileformat=VCFv4.2", "##source=airflow-operator-sandbox"]
    lines += [f"##contig=<ID={name},length={length}>" for name, length in CHROMOSOMES]
    lines += ['##INFO=<ID=DP,Number=1,Type=Integer,Description="Total depth">',
              '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
              "#" + "\t".join(["CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *names])]
    # Cases differ in size so per-case statistics differ too.
    count = variants + rng.randint(0, variants // 2)
    per_chrom = {name: 0 for name, _ in CHROMOSOMES}
    for _ in range(count):
        per_chrom[rng.choices([c for c, _ in CHROMOSOMES], weights=[4, 3, 2, 1])[0]] += 1
    for name, length in CHROMOSOMES:
        for pos in sorted(rng.sample(range(1, min(length, 5_000_000)), per_chrom[name])):
            ref = rng.choice(BASES)
            alt = rng.choice([b for b in BASES if b != ref])
            gts = rng.choices(GENOTYPES, weights=GENOTYPE_WEIGHTS, k=samples)
            lines.append("\t".join([name, str(pos), ".", ref, alt, str(rng.randint(20, 99)), "PASS",
                                    f"DP={rng.randint(10, 60)}", "GT", *gts]))
    return "\n".join(lines) + "\n"


def bgzip_and_index(vcf_text: str) -> tuple[bytes, bytes]:
    """Returns (.vcf.gz bytes, .tbi bytes) made by htslib's bgzip and tabix."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "case.vcf"
        path.write_text(vcf_text)
        for cmd in (["bgzip", "--force", str(path)], ["tabix", "--force", "--preset", "vcf", f"{path}.gz"]):
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} failed: {res.stderr.strip()}")
        return Path(f"{path}.gz").read_bytes(), Path(f"{path}.gz.tbi").read_bytes()


def vcf_case_objects(prefix: str, count: int, samples: int, variants: int) -> list[tuple[str, bytes]]:
    """(key, body) for every seed file: <prefix><case>.vcf.gz and its .tbi."""
    objects = []
    for index in range(1, count + 1):
        gz, tbi = bgzip_and_index(generate_vcf(index, samples, variants))
        key = f"{prefix}{case_id(index)}.vcf.gz"
        objects += [(key, gz), (f"{key}.tbi", tbi)]
    return objects
