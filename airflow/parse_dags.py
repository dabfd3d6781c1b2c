"""`make parse`: imports every DAG file of the project the way the dag-processor does, and lists
the import errors with file and line (like `astro dev parse`). Runs in the project's Airflow image
with the project's dags/, plugins/ and include/ mounted; exit status 1 when a file fails.

Usage: parse_dags.py [DAGS_FOLDER]   (default /opt/airflow/dags, where the image mounts dags/)
"""
from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

try:  # Airflow 3.3 (where the old location below is deprecated)
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow 2 and 3.0
    from airflow.models.dagbag import DagBag

DAGS = "/opt/airflow/dags"


def where(filename: str, trace: str, dags: str) -> str:
    """file:line of the deepest frame in `filename` (the DAG file's own line, not Airflow's)."""
    lines = re.findall(rf'File "{re.escape(filename)}", line (\d+)', trace)
    if not lines:  # a SyntaxError names the line in its own message
        lines = re.findall(r"line (\d+)", trace)[-1:]
    rel = filename.removeprefix(dags.rstrip("/") + "/")
    return f"dags/{rel}:{lines[-1]}" if lines else f"dags/{rel}"


def dag_bag(dags: str) -> DagBag:
    # Airflow 3 parses DAGs as part of a bundle (3.0 takes bundle_path only, 3.3 also bundle_name);
    # Airflow 2 has no bundles.
    accepted = inspect.signature(DagBag.__init__).parameters
    bundle = {"bundle_path": Path(dags), "bundle_name": "dags-folder"}
    # Example DAGs stay out through the services' AIRFLOW__CORE__LOAD_EXAMPLES=false.
    return DagBag(dag_folder=dags, safe_mode=True, **{k: v for k, v in bundle.items() if k in accepted})


def main() -> int:
    dags = sys.argv[1] if len(sys.argv) > 1 else DAGS
    bag = dag_bag(dags)
    files = {d.fileloc for d in bag.dags.values()}
    print(f"{len(bag.dags)} DAG(s) from {len(files)} file(s): {', '.join(sorted(bag.dags)) or 'none'}")
    for filename, trace in sorted(bag.import_errors.items()):
        last = trace.strip().splitlines()[-1] if trace.strip() else "import failed"
        print(f"ERROR {where(filename, trace, dags)}: {last}")
    return 1 if bag.import_errors else 0


if __name__ == "__main__":
    sys.exit(main())
