"""`make parse`: imports every DAG file of the project the way the dag-processor does, and lists
the import errors with file and line (like `astro dev parse`). Runs in the project's Airflow image
with the project's dags/, plugins/ and include/ mounted; exit status 1 when a file fails."""
from __future__ import annotations

import re
import sys
from pathlib import Path

from airflow.dag_processing.dagbag import DagBag

DAGS = "/opt/airflow/dags"


def where(filename: str, trace: str) -> str:
    """file:line of the deepest frame in `filename` (the DAG file's own line, not Airflow's)."""
    lines = re.findall(rf'File "{re.escape(filename)}", line (\d+)', trace)
    if not lines:  # a SyntaxError names the line in its own message
        lines = re.findall(r"line (\d+)", trace)[-1:]
    rel = filename.removeprefix(DAGS + "/")
    return f"dags/{rel}:{lines[-1]}" if lines else f"dags/{rel}"


def main() -> int:
    # Example DAGs stay out through the services' AIRFLOW__CORE__LOAD_EXAMPLES=false.
    bag = DagBag(dag_folder=DAGS, safe_mode=True, bundle_path=Path(DAGS), bundle_name="dags-folder")
    files = sorted({d.relative_fileloc or d.fileloc for d in bag.dags.values()})
    print(f"{len(bag.dags)} DAG(s) from {len(files)} file(s): {', '.join(sorted(bag.dags)) or 'none'}")
    for filename, trace in sorted(bag.import_errors.items()):
        last = trace.strip().splitlines()[-1] if trace.strip() else "import failed"
        print(f"ERROR {where(filename, trace)}: {last}")
    return 1 if bag.import_errors else 0


if __name__ == "__main__":
    sys.exit(main())
