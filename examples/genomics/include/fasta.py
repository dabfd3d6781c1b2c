"""Shared code the DAGs import the astro way: `from include.fasta import ...`."""
from __future__ import annotations


def merge_gc(results: list[dict]) -> dict:
    """Adds per-sample QC results ({"sample", "bases", "gc"}) into totals and a GC fraction."""
    bases = sum(r["bases"] for r in results)
    gc = sum(r["gc"] for r in results)
    return {"samples": sorted(r["sample"] for r in results), "bases": bases, "gc": gc,
            "gc_fraction": round(gc / bases, 4) if bases else 0.0}
