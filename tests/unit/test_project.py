"""Which project SANDBOX_PROJECT selects, what load_project rejects, and what compose gets from it."""
from __future__ import annotations

import os
import re

import pytest

from sandbox.host import project as project_mod
from sandbox.host.project import Project, ProjectError, load_project, selected_project
from sandbox.host.settings import ROOT, Settings

pytestmark = pytest.mark.unit


def make_project(root, requirements=None):
    """A minimal valid project: dags/ and sandbox.yaml (and requirements.txt if given)."""
    (root / "dags").mkdir(parents=True)
    (root / "sandbox.yaml").write_text("images: []\n")
    if requirements is not None:
        (root / "requirements.txt").write_text(requirements)
    return Project(root, is_default=False)


def settings_for(path) -> Settings:
    return Settings({"SANDBOX_PROJECT": str(path)})


# selected_project

def test_unset_selects_the_checkout_itself():
    assert selected_project(Settings({})) == Project(ROOT, is_default=True)


def test_blank_counts_as_unset():
    assert selected_project(Settings({"SANDBOX_PROJECT": "  "})) == Project(ROOT, is_default=True)


def test_a_relative_path_resolves_against_the_checkout():
    chosen = selected_project(Settings({"SANDBOX_PROJECT": "examples/genomics"}))
    assert chosen == Project(ROOT / "examples" / "genomics", is_default=False)


def test_an_absolute_path_is_taken_as_is(tmp_path):
    assert selected_project(settings_for(tmp_path)) == Project(tmp_path.resolve(), is_default=False)


@pytest.mark.parametrize("value", [str(ROOT), ".", "examples/.."])
def test_a_path_equal_to_the_checkout_is_the_default(value):
    assert selected_project(Settings({"SANDBOX_PROJECT": value})) == Project(ROOT, is_default=True)


# load_project

def test_a_path_that_is_not_a_directory_says_what_to_point_at(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ProjectError) as err:
        load_project(settings_for(missing))
    message = str(err.value)
    assert f"{missing} is not a directory" in message
    assert "SANDBOX_PROJECT" in message and "examples/genomics" in message


def test_missing_dags_and_sandbox_yaml_are_reported_together(tmp_path):
    with pytest.raises(ProjectError) as err:
        load_project(settings_for(tmp_path))
    message = str(err.value)
    assert "2 problem(s)" in message
    assert f"{tmp_path / 'dags'}: missing" in message
    assert f"{tmp_path / 'sandbox.yaml'}: missing" in message
    assert "examples/genomics/sandbox.yaml" in message


def test_a_requirements_txt_that_is_a_directory_is_rejected(tmp_path):
    make_project(tmp_path)
    (tmp_path / "requirements.txt").mkdir()
    with pytest.raises(ProjectError, match="1 problem") as err:
        load_project(settings_for(tmp_path))
    assert f"{tmp_path / 'requirements.txt'}: expected a file" in str(err.value)


@pytest.mark.skipif(os.getuid() == project_mod.AIRFLOW_UID, reason="files owned by Airflow's uid are readable to it")
def test_a_dag_file_airflow_cannot_read_says_chmod(tmp_path):
    # Checked on mode bits, not os.access, so it applies as root too.
    make_project(tmp_path)
    dag = tmp_path / "dags" / "secret.py"
    dag.write_text("# airflow dag\n")
    dag.chmod(0o600)
    with pytest.raises(ProjectError) as err:
        load_project(settings_for(tmp_path))
    assert f"`chmod o+r {dag}`" in str(err.value)


def test_a_minimal_project_loads(tmp_path):
    make_project(tmp_path)
    loaded = load_project(settings_for(tmp_path))
    assert loaded == Project(tmp_path.resolve(), is_default=False)
    assert loaded.tests is None


# compose_env

def test_compose_env_mounts_empty_dir_for_absent_plugins_and_include(tmp_path):
    env = make_project(tmp_path).compose_env()
    assert env == {
        "COMPOSE_FILE": "compose.yaml",
        "SANDBOX_PROJECT_DIR": str(tmp_path),
        "SANDBOX_DAGS_DIR": str(tmp_path / "dags"),
        "SANDBOX_PLUGINS_DIR": str(project_mod.EMPTY_DIR),
        "SANDBOX_INCLUDE_DIR": str(project_mod.EMPTY_DIR),
        "SANDBOX_STARTUP_SCRIPT": str(project_mod.NO_STARTUP),
        "SANDBOX_AIRFLOW_IMAGE": "sandbox/airflow:apache-3.3.2",
        "SANDBOX_AIRFLOW_VERSION": "apache-3.3.2",
        "SANDBOX_AIRFLOW_DB": f"airflow_{project_mod.Project(tmp_path, False).world}",
        "SANDBOX_EMULATOR_STATE": f"/var/lib/ministack/projects/{project_mod.Project(tmp_path, False).world}",
        "SANDBOX_AIRFLOW_ROLE_ARN": "",  # the project's sandbox.yaml sets no aws.airflow_role
    }


def test_each_project_has_a_world_of_its_own_and_the_checkouts_keeps_the_old_names(tmp_path):
    one, two = make_project(tmp_path / "sales-rollup"), make_project(tmp_path / "other" / "sales-rollup")
    assert re.fullmatch(r"sales_rollup_[0-9a-f]{8}", one.world)
    assert one.world != two.world  # same folder name, other path
    assert one.world == Project(tmp_path / "sales-rollup", is_default=False).world
    own = project_mod.Project(project_mod.ROOT, is_default=True).compose_env()
    assert (own["SANDBOX_AIRFLOW_DB"], own["SANDBOX_EMULATOR_STATE"]) == ("airflow", "/var/lib/ministack")


def test_airflow_containers_act_as_the_projects_airflow_role(tmp_path):
    own = project_mod.Project(project_mod.ROOT, is_default=True).compose_env()
    assert own["SANDBOX_AIRFLOW_ROLE_ARN"] == "arn:aws:iam::000000000000:role/airflow-runner"
    project = make_project(tmp_path)
    project.config.write_text("aws:\n  account_id: '123456789012'\n  airflow_role: etl\n")
    assert project.compose_env()["SANDBOX_AIRFLOW_ROLE_ARN"] == "arn:aws:iam::123456789012:role/etl"
    project.config.write_text("aws: [not, a, mapping]\n")
    assert project.compose_env()["SANDBOX_AIRFLOW_ROLE_ARN"] == ""


def test_compose_env_mounts_the_projects_plugins_include_and_startup_script(tmp_path):
    project = make_project(tmp_path)
    (tmp_path / "plugins").mkdir()
    (tmp_path / "include").mkdir()
    (tmp_path / "startup.sh").write_text("export STAGE=dev\n")
    env = project.compose_env()
    assert env["SANDBOX_PLUGINS_DIR"] == str(tmp_path / "plugins")
    assert env["SANDBOX_INCLUDE_DIR"] == str(tmp_path / "include")
    assert env["SANDBOX_STARTUP_SCRIPT"] == str(tmp_path / "startup.sh")


def test_requirements_with_only_comments_keep_the_base_airflow_image(tmp_path):
    project = make_project(tmp_path, requirements="# nothing yet\n\n   \n  # pandas\n")
    assert project.compose_env()["SANDBOX_AIRFLOW_IMAGE"] == "sandbox/airflow:apache-3.3.2"


def test_requirements_with_packages_give_a_project_image(tmp_path):
    project = make_project(tmp_path, requirements="pandas==2.2.2\n")
    assert re.fullmatch(r"sandbox/airflow-project:[0-9a-f]{12}", project.compose_env()["SANDBOX_AIRFLOW_IMAGE"])


def test_projects_at_different_paths_get_different_tags_and_one_project_the_same(tmp_path):
    one = make_project(tmp_path / "one", requirements="pandas==2.2.2\n")
    two = make_project(tmp_path / "two", requirements="pandas==2.2.2\n")
    assert one.airflow_image() != two.airflow_image()
    assert Project(tmp_path / "one", is_default=False).airflow_image() == one.airflow_image()


def test_a_project_on_airflow_2_runs_its_version_in_a_database_of_its_own_with_airflow_2s_services(tmp_path):
    project = make_project(tmp_path, requirements="pandas==2.2.2\n")
    on_three = project.compose_env()
    project.config.write_text("aws: {region: us-east-1}\nairflow: {version: '2.10.3', flavour: mwaa}\n")
    on_two = project.compose_env()
    assert on_two["COMPOSE_FILE"] == os.pathsep.join(["compose.yaml", "airflow/compose.airflow2.yaml"])
    assert on_two["SANDBOX_AIRFLOW_VERSION"] == "mwaa-2.10.3"
    assert on_two["SANDBOX_AIRFLOW_DB"] == on_three["SANDBOX_AIRFLOW_DB"] + "_v2_10_3"
    # The project's requirements go on top of each version's image: one image per version.
    assert on_two["SANDBOX_AIRFLOW_IMAGE"] != on_three["SANDBOX_AIRFLOW_IMAGE"]
    assert on_two["SANDBOX_EMULATOR_STATE"] == on_three["SANDBOX_EMULATOR_STATE"]  # the same AWS objects


def test_airflow_version_in_the_environment_wins_and_an_unknown_one_is_refused_naming_the_known(tmp_path):
    project = make_project(tmp_path)
    tried = Project(project.root, is_default=False, version_override="apache-3.0.6")
    assert tried.compose_env()["SANDBOX_AIRFLOW_VERSION"] == "apache-3.0.6"
    settings = Settings({"SANDBOX_PROJECT": str(tmp_path), "AIRFLOW_VERSION": "mwaa-9.9.9"})
    with pytest.raises(ProjectError, match=r"AIRFLOW_VERSION='mwaa-9.9.9'.*known: 2.10.3, 2.11.2, 3.0.6"):
        load_project(settings)


# requirements_digest

def test_requirements_digest_ignores_comments_blank_lines_and_order(tmp_path):
    a = make_project(tmp_path / "a", requirements="pandas==2.2.2\nrequests==2.32.3\n")
    b = make_project(tmp_path / "b", requirements="# data\n\nrequests==2.32.3  # http\n\n  pandas==2.2.2\n")
    assert a.requirements_digest() == b.requirements_digest()
    assert re.fullmatch(r"[0-9a-f]{12}", a.requirements_digest())


def test_requirements_digest_changes_with_a_version(tmp_path):
    project = make_project(tmp_path, requirements="pandas==2.2.2\n")
    before = project.requirements_digest()
    (tmp_path / "requirements.txt").write_text("pandas==2.2.3\n")
    assert project.requirements_digest() != before


def test_requirements_digest_is_none_without_requirements(tmp_path):
    assert make_project(tmp_path).requirements_digest() is None


# notices

@pytest.mark.parametrize("name", ["Dockerfile", "packages.txt"])
def test_an_astro_file_gives_one_notice_naming_it(tmp_path, name):
    project = make_project(tmp_path)
    (tmp_path / name).write_text("x\n")
    notices = project.notices()
    assert len(notices) == 1
    assert notices[0].startswith(f"{tmp_path / name}: ")


def test_no_astro_files_no_notices(tmp_path):
    assert make_project(tmp_path).notices() == []
