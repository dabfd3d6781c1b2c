"""airflow/entrypoint.sh: the project's startup.sh runs before the command, as on MWAA."""
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ENTRYPOINT = Path(__file__).resolve().parents[2] / "airflow" / "entrypoint.sh"


def run(tmp_path, script: str | None, env: dict[str, str]) -> subprocess.CompletedProcess:
    startup = tmp_path / "startup.sh"
    startup.write_text(script or "")
    return subprocess.run(["bash", str(ENTRYPOINT), "bash", "-c", 'echo "stage=$STAGE home=$AIRFLOW_HOME"'],
                          env={"PATH": "/usr/bin:/bin", "SANDBOX_STARTUP": str(startup), **env},
                          capture_output=True, text=True, timeout=30)


def test_what_startup_sh_exports_reaches_the_command_and_the_sandboxs_own_settings_win(tmp_path):
    res = run(tmp_path, "export STAGE=dev\nexport AIRFLOW_HOME=/elsewhere\n", {"AIRFLOW_HOME": "/opt/airflow"})
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "stage=dev home=/opt/airflow"
    assert "Running the project's startup.sh" in res.stderr


def test_exit_in_startup_sh_ends_the_script_not_the_service(tmp_path):
    res = run(tmp_path, "export STAGE=early\nexit 3\nexport STAGE=never\n", {"AIRFLOW_HOME": "/opt/airflow"})
    assert res.returncode == 0 and res.stdout.strip() == "stage=early home=/opt/airflow"
    assert "startup.sh ended with status 3" in res.stderr


def test_an_empty_startup_sh_is_not_run(tmp_path):
    res = run(tmp_path, None, {"AIRFLOW_HOME": "/opt/airflow", "STAGE": "given"})
    assert res.stdout.strip() == "stage=given home=/opt/airflow" and res.stderr == ""
