"""For tests, on the developer's machine or CI: the pytest plugin (`plugin.py`, loaded through the
package's `pytest11` entry point) and what its fixtures give: DAG runs as results (`dag_runs.py`),
a boto3 Session for the AWS emulator (`aws.py`), the cluster's kubernetes client (`kube.py`), and
`make <command>` run as a user runs it, for tests that change settings (`commands.py`)."""
