"""The build context of a project's requirements layer (sandbox/host/project_requirements.py): which
constraints each flavour installs under, constraint URLs replaced by the checkout's copies or refused,
included files copied, and an unchanged context left untouched."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from sandbox.core.airflow_versions import KNOWN, AirflowVersion
from sandbox.host.project import ProjectError
from sandbox.host.project_requirements import (ProjectRequirementsError, context_files, held_airflow_constraints,
                                               logical_lines, prepare)
from sandbox.host.settings import ROOT

pytestmark = pytest.mark.unit

APACHE = AirflowVersion()
MWAA = AirflowVersion("2.10.3", "mwaa")
MWAA_DIR = ROOT / "airflow" / "versions" / "mwaa-2.10.3"
URL_2_10_3 = "https://raw.githubusercontent.com/apache/airflow/constraints-2.10.3/constraints-3.11.txt"
ESSENTIAL = "versions/mwaa-2.10.3/mwaa_essential_constraints.txt"
BUNDLED = "versions/mwaa-2.10.3/airflow_constraints.txt"


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    return root


def files_for(root, text, version=MWAA, extra=None):
    """The context for `text` as the project's requirements.txt, with `extra` files beside it."""
    (root / "requirements.txt").write_text(text)
    for name, content in (extra or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return {name: content.decode() for name, content in context_files(root / "requirements.txt", version).items()}


def constraint_lines(text):
    return [line for line in text.splitlines() if line.startswith(("-c", "-r"))]


# which constraints each flavour installs under

def test_apache_installs_under_the_images_own_pins(project):
    files = files_for(project, "requests==2.32.3\n", APACHE)
    assert set(files) == {"requirements.txt", "project/requirements.txt"}
    assert constraint_lines(files["requirements.txt"]) == ["-c /opt/sandbox/airflow-requirements.txt",
                                                          "-r project/requirements.txt"]
    assert files["project/requirements.txt"] == "requests==2.32.3\n"


def test_apache_honours_a_constraint_of_the_project_as_well(project):
    files = files_for(project, f"--constraint {URL_2_10_3}\nrequests\n", AirflowVersion("2.10.3", "apache"))
    assert constraint_lines(files["requirements.txt"]) == ["-c /opt/sandbox/airflow-requirements.txt",
                                                          "-r project/requirements.txt"]
    assert constraint_lines(files["project/requirements.txt"]) == [f"-c ../{BUNDLED}"]


def test_mwaa_without_constraints_of_its_own_gets_both_of_mwaas_files(project):
    files = files_for(project, "requests\n")
    assert constraint_lines(files["requirements.txt"]) == [f"-c {ESSENTIAL}", f"-c {BUNDLED}",
                                                          "-r project/requirements.txt"]
    assert files[ESSENTIAL] == (MWAA_DIR / "mwaa_essential_constraints.txt").read_text()
    assert files[BUNDLED] == (MWAA_DIR / "airflow_constraints.txt").read_text()


def test_mwaa_with_airflows_url_of_its_version_reads_the_checkouts_copy_once(project, capsys):
    files = files_for(project, f'--constraint "{URL_2_10_3}"\nrequests\n')
    # MWAA adds no Airflow constraints of its own: the project's line names them.
    assert constraint_lines(files["requirements.txt"]) == [f"-c {ESSENTIAL}", "-r project/requirements.txt"]
    assert files["project/requirements.txt"] == f"-c ../{BUNDLED}\nrequests\n"
    assert files[BUNDLED] == (MWAA_DIR / "airflow_constraints.txt").read_text()
    assert sorted(name for name in files if name.startswith("versions/")) == [BUNDLED, ESSENTIAL]
    said = capsys.readouterr().out
    assert said.count(URL_2_10_3) == 1 and "airflow/versions/mwaa-2.10.3/airflow_constraints.txt" in said


def test_a_commented_out_constraint_opts_out_of_airflows_constraints_as_on_mwaa(project):
    # Mirrors MWAA (user_requirements.py _requirements_has_constraints): any line holding "-c " or
    # "--constraint ", a comment included, means "the file names its own constraints", so Airflow's
    # are not added; MWAA documents this as the way to opt out. Only the essential ones apply then.
    files = files_for(project, "# no --constraint here: we pin ourselves\nrequests==2.0.0\n")
    assert constraint_lines(files["requirements.txt"]) == [f"-c {ESSENTIAL}", "-r project/requirements.txt"]
    assert BUNDLED not in files
    assert "# no --constraint here" in files["requirements.txt"]  # says why


def test_constraint_with_an_equals_sign_is_not_seen_by_mwaa_so_airflows_are_added_too(project):
    # MWAA's test wants the space after the option: `--constraint=URL` keeps its Airflow constraints.
    files = files_for(project, f"--constraint={URL_2_10_3}\nrequests\n")
    assert constraint_lines(files["requirements.txt"]) == [f"-c {ESSENTIAL}", f"-c {BUNDLED}",
                                                          "-r project/requirements.txt"]
    assert files["project/requirements.txt"] == f"-c ../{BUNDLED}\nrequests\n"  # the same file, once


# constraint URLs

def test_the_checkout_holds_airflows_constraints_of_every_mwaa_version_it_runs():
    held = held_airflow_constraints()
    for version in KNOWN["mwaa"]:
        assert any(v == version for v, _ in held), version
    assert held[("2.10.3", "3.11")] == MWAA_DIR / "airflow_constraints.txt"


def test_a_url_of_a_version_the_checkout_does_not_hold_is_refused_with_file_and_line(project):
    url = "https://raw.githubusercontent.com/apache/airflow/constraints-9.9.9/constraints-3.11.txt"
    with pytest.raises(ProjectRequirementsError) as err:
        files_for(project, f"requests\n-c {url}\n")
    message = str(err.value)
    assert f"{project / 'requirements.txt'}:2:" in message and url in message
    assert "constraints-2.10.3/constraints-3.11.txt" in message  # what it does hold
    assert "save the file into the project" in message and "curl" in message


def test_a_python_version_the_checkout_does_not_hold_is_refused(project):
    url = URL_2_10_3.replace("3.11.txt", "3.12.txt")
    with pytest.raises(ProjectRequirementsError, match="constraints-2.10.3/constraints-3.11.txt"):
        files_for(project, f"-c {url}\n")


def test_a_no_providers_variant_is_refused(project):
    url = URL_2_10_3.replace("constraints-3.11", "constraints-no-providers-3.11")
    with pytest.raises(ProjectRequirementsError, match="no copy of that file"):
        files_for(project, f"-c {url}\n")


@pytest.mark.parametrize("url", ["https://example.com/constraints.txt",
                                 URL_2_10_3.replace("/apache/", "/someone/"),
                                 "file:///etc/constraints.txt"])
def test_a_url_of_another_host_is_refused(project, url):
    with pytest.raises(ProjectRequirementsError) as err:
        files_for(project, f"requests\n\n--constraint {url}\n")
    assert isinstance(err.value, ProjectError)  # reported like every project problem
    assert f"{project / 'requirements.txt'}:3: --constraint {url}:" in str(err.value)
    assert "relative to the file that names it" in str(err.value)


@pytest.mark.parametrize("spelling", [f"-c{URL_2_10_3}", f"--constr {URL_2_10_3}", f"-c '{URL_2_10_3}'",
                                      f"--constraint \\\n  {URL_2_10_3}", f"-c {URL_2_10_3}  # pinned"])
def test_pips_spellings_of_a_constraint_are_all_replaced(project, spelling):
    files = files_for(project, f"{spelling}\nrequests\n", APACHE)
    lines = files["project/requirements.txt"].splitlines()
    assert lines[0] == f"-c ../{BUNDLED}"
    assert lines[-1] == "requests"
    assert len(lines) == spelling.count("\n") + 2  # a continuation line left blank: pip's line numbers hold


def test_other_lines_are_left_as_written(project):
    text = ("--index-url https://pypi.example/simple\n"
            "pkg @ https://files.example/pkg-1.0-py3-none-any.whl#sha256=abc  # comment\n"
            "pandas>=2 ; python_version >= \"3.11\"\n"
            "foo==1.0 \\\n    --hash=sha256:00\n")
    assert files_for(project, text, APACHE)["project/requirements.txt"] == text


def test_a_constraint_after_a_requirement_is_left_as_pip_ignores_it(project):
    files = files_for(project, "requests -c https://example.com/c.txt\n", APACHE)
    assert files["project/requirements.txt"] == "requests -c https://example.com/c.txt\n"


# files of the project

def test_a_relative_constraint_is_copied_with_what_it_includes(project):
    files = files_for(project, "-c constraints/prod.txt\n-r extra.txt\nrequests\n", extra={
        "constraints/prod.txt": "-r ../base.txt\nboto3==1.35.36\n", "constraints/base.txt": f"-c {URL_2_10_3}\n",
        "base.txt": "urllib3<3\n", "extra.txt": "pandas\n"})
    assert files["project/requirements.txt"] == "-c constraints/prod.txt\n-r extra.txt\nrequests\n"
    assert files["project/constraints/prod.txt"] == "-r ../base.txt\nboto3==1.35.36\n"
    assert files["project/base.txt"] == "urllib3<3\n"
    assert files["project/extra.txt"] == "pandas\n"
    assert "project/constraints/base.txt" not in files  # only what is named


def test_a_nested_url_is_replaced_relative_to_the_file_naming_it(project):
    files = files_for(project, "-c constraints/prod.txt\n", extra={"constraints/prod.txt": f"-c {URL_2_10_3}\n"})
    assert files["project/constraints/prod.txt"] == f"-c ../../{BUNDLED}\n"


@pytest.mark.parametrize("value", ["../shared/constraints.txt", "/etc/hostname"])
def test_a_path_outside_the_project_is_refused(project, value):
    (project.parent / "shared").mkdir()
    (project.parent / "shared" / "constraints.txt").write_text("boto3==1.0\n")
    with pytest.raises(ProjectRequirementsError) as err:
        files_for(project, f"requests\n-c {value}\n")
    assert f"{project / 'requirements.txt'}:2: -c {value}:" in str(err.value)
    assert "outside the project" in str(err.value)


def test_a_symlink_out_of_the_project_is_refused(project):
    (project.parent / "elsewhere.txt").write_text("boto3==1.0\n")
    (project / "c.txt").symlink_to(project.parent / "elsewhere.txt")
    with pytest.raises(ProjectRequirementsError, match="outside the project"):
        files_for(project, "-c c.txt\n")


def test_a_missing_file_is_refused_with_file_and_line(project):
    with pytest.raises(ProjectRequirementsError, match=r"requirements.txt:1: -r more.txt: no such file"):
        files_for(project, "-r more.txt\n")


def test_a_file_including_itself_is_refused(project):
    with pytest.raises(ProjectRequirementsError, match="pip would never finish"):
        files_for(project, "-r a.txt\n", extra={"a.txt": "-r requirements.txt\n"})


def test_a_nested_error_names_the_nested_file(project):
    with pytest.raises(ProjectRequirementsError, match=r"sub[/\\]c.txt:2: -c https://example.com/x.txt"):
        files_for(project, "-c sub/c.txt\n", extra={"sub/c.txt": "boto3\n-c https://example.com/x.txt\n"})


# writing the context

def test_an_unchanged_context_is_not_rewritten_and_stale_files_go(project, tmp_path):
    context = tmp_path / "context"
    (project / "requirements.txt").write_text("-c constraints/prod.txt\nrequests\n")
    (project / "constraints").mkdir()
    (project / "constraints" / "prod.txt").write_text("boto3==1.35.36\n")
    prepare(project / "requirements.txt", MWAA, context)
    old = 1_000_000_000
    for path in context.rglob("*"):
        os.utime(path, (old, old))
    (context / "stale").mkdir()
    (context / "stale" / "left.txt").write_text("x")
    (context / "versions" / "gone.txt").write_text("x")

    prepare(project / "requirements.txt", MWAA, context)

    written = {p.relative_to(context).as_posix(): p for p in context.rglob("*") if p.is_file()}
    assert set(written) == {"requirements.txt", "project/requirements.txt", "project/constraints/prod.txt",
                            ESSENTIAL}
    assert all(p.stat().st_mtime == old for p in written.values())

    (project / "constraints" / "prod.txt").write_text("boto3==1.35.37\n")
    prepare(project / "requirements.txt", MWAA, context)
    changed = [name for name, p in written.items() if p.stat().st_mtime != old]
    assert changed == ["project/constraints/prod.txt"]


def test_switching_flavour_removes_the_other_flavours_files(project, tmp_path):
    context = tmp_path / "context"
    (project / "requirements.txt").write_text("requests\n")
    prepare(project / "requirements.txt", MWAA, context)
    prepare(project / "requirements.txt", APACHE, context)
    assert sorted(p.relative_to(context).as_posix() for p in context.rglob("*")) == [
        "project", "project/requirements.txt", "requirements.txt"]


# pip's reading of a requirements file

def test_logical_lines_follow_pip():
    text = "a \\\n  b\n# c \\\nd # e\n  # f\ng @ https://x/g.whl#sha256=1\n-c \\\n"
    assert logical_lines(text) == [(1, 2, "a   b"), (4, 4, "d"), (6, 6, "g @ https://x/g.whl#sha256=1"),
                                   (7, 7, "-c")]


# the install itself, with the host's pip, offline

def _wheel(folder, name, version):
    dist = f"{name}-{version}"
    meta = {f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
            f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    with zipfile.ZipFile(folder / f"{dist}-py3-none-any.whl", "w") as whl:
        for name_, text in meta.items():
            whl.writestr(name_, text)
        whl.writestr(f"{dist}.dist-info/RECORD", "".join(f"{n},,\n" for n in [*meta, f"{dist}.dist-info/RECORD"]))


@pytest.fixture
def pip_install(tmp_path):
    """`pip install --dry-run` of a prepared context with the host's pip: no index, only tiny wheels of
    boto3 and watchtower at the versions MWAA 2.10.3 pins and at others."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name, version in [("boto3", "1.0.0"), ("boto3", "1.35.36"), ("watchtower", "3.0.0"), ("watchtower", "3.3.1")]:
        _wheel(wheels, name, version)

    def run(text):
        root = tmp_path / "project"
        root.mkdir(exist_ok=True)
        (root / "requirements.txt").write_text(text)
        context = tmp_path / "context"
        prepare(root / "requirements.txt", MWAA, context)
        env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}  # no host find-links
        env |= {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        res = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-index",
                              "--find-links", str(wheels), "-r", str(context / "requirements.txt")],
                             capture_output=True, text=True, env=env, timeout=120)
        return res.returncode, res.stdout + res.stderr

    return run


def test_pip_refuses_a_pin_against_mwaas_constraints_naming_both_versions(pip_install):
    code, said = pip_install("boto3==1.0.0\n")  # Airflow's constraints pin boto3==1.35.36
    assert code != 0 and "ResolutionImpossible" in said, said
    assert "boto3==1.0.0" in said and "boto3==1.35.36" in said, said
    # The control: the same wheel installs once the project opts out of Airflow's constraints (MWAA's
    # commented-out --constraint), so the refusal above came from them and not from a missing wheel ...
    code, said = pip_install("# --constraint none: we pin ourselves\nboto3==1.0.0\n")
    assert code == 0 and "Would install boto3-1.0.0" in said, said
    # ... while MWAA's essential constraints (watchtower==3.3.1) still hold.
    code, said = pip_install("# --constraint none: we pin ourselves\nwatchtower==3.0.0\n")
    assert code != 0 and "watchtower==3.0.0" in said and "watchtower==3.3.1" in said, said
