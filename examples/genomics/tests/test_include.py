"""Plain unit tests of the project's shared code: no sandbox needed."""
from include.fasta import merge_gc


def test_merge_gc_adds_up_samples():
    merged = merge_gc([{"sample": "b", "bases": 20, "gc": 8}, {"sample": "a", "bases": 26, "gc": 16}])
    assert merged == {"samples": ["a", "b"], "bases": 46, "gc": 24, "gc_fraction": 0.5217}
