"""The shape of the house: the layer contract holds and can fail; the wheel runs outside the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _fresh_build_dir() -> None:
    """setuptools builds in REPO/build/lib and never removes files deleted from the source."""
    shutil.rmtree(REPO / "build" / "lib", ignore_errors=True)


def _view(target: Path) -> Path:
    """The package laid out as installed (the folders mapped into `seqops`), for import-linter."""
    _fresh_build_dir()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    return target


def _lint_imports(view: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(view)}
    return subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache", "--no-logo", "--config", str(REPO / "pyproject.toml")],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def view(tmp_path_factory) -> Path:
    return _view(tmp_path_factory.mktemp("importview") / "site")


def test_the_import_contracts_hold(view, tmp_path):
    out = _lint_imports(view, tmp_path)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "6 kept, 0 broken" in out.stdout


def test_the_checkout_lints_as_installed_through_its_links():
    """Each folder the wheel maps into `seqops` has its link in seqops/, so a bare lint-imports in
    the checkout (what `make lint` runs) reads the package as installed."""
    import tomllib

    mapped = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for package, folder in mapped.items():
        if package != "seqops":
            link = REPO / "seqops" / package.removeprefix("seqops.")
            assert link.is_symlink() and link.resolve() == (REPO / folder).resolve(), link
    out = subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache", "--no-logo"], cwd=REPO, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout[-3000:]
    assert "6 kept, 0 broken" in out.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "contract"),
    [
        ("core/store.py", "import seqops.flows.train", "seqops is a stack"),
        ("training/metrics.py", "import seqops.features.store", "seqops is a stack"),
        ("flows/features.py", "import mlflow", "only the registry package talks to MLflow"),
        ("features/tables.py", "import airflow", "only the entry points know Airflow"),
        ("training/model.py", "import feast", "only the feature packages talk to Feast"),
        (
            "features/store.py",
            "import great_expectations",
            "only the validation package talks to Great Expectations",
        ),
        ("features/store.py", "import evidently", "only the monitoring package talks to Evidently"),
    ],
)
def test_a_forbidden_import_breaks_the_contract(view, tmp_path, module, bad_import, contract):
    broken = tmp_path / "site"
    subprocess.run(["cp", "-r", str(view), str(broken)], check=True)
    path = broken / "seqops" / module
    path.write_text(path.read_text() + f"\n{bad_import}  # deliberately wrong\n")
    out = _lint_imports(broken, tmp_path)
    assert out.returncode != 0
    assert f"{contract}" in out.stdout and "BROKEN" in out.stdout, out.stdout[-3000:]


def test_site_packages_get_only_the_seqops_namespace(view):
    top = {p.name for p in view.iterdir() if not p.name.endswith(".dist-info") and p.name != "bin"}
    assert top == {"seqops"}
    for folder in ("training", "features", "validation", "registry", "dags", "feature_repo", "demo"):
        assert (view / "seqops" / folder).is_dir(), folder
    assert (view / "seqops" / "core" / "datasets.toml").is_file()
    assert (view / "seqops" / "feature_repo" / "feature_store.yaml").is_file()
    assert (view / "seqops" / "dags" / ".airflowignore").is_file()
    assert len(list((view / "seqops" / "demo" / "pjm_hourly").glob("*.csv.gz"))) == 7


@pytest.mark.slow
def test_the_wheel_runs_outside_the_checkout(tmp_path):
    """Build the wheel, install it in a fresh venv in an empty folder, ingest a canonical file.

    The locked dependencies are borrowed from the project's venv through a .pth file (installing the
    stack again takes minutes and the network); the seqops code comes from the wheel alone.
    """
    dist = tmp_path / "dist"
    _fresh_build_dir()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(dist),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("seqops-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    deps = sysconfig.get_paths()["purelib"]  # the project venv: its .pth files (the editable finder) stay out
    (site / "locked-deps.pth").write_text(deps + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQOPS_")}
    env |= {"SEQOPS_HOME": str(tmp_path / "home"), "PYTHONPATH": ""}
    run = lambda *args: subprocess.run(args, cwd=empty, env=env, capture_output=True, text=True)  # noqa: E731

    helped = run(str(env_dir / "bin" / "seqops"), "--help")
    assert helped.returncode == 0 and "ingest" in helped.stdout, helped.stderr[-2000:]
    where = run(
        str(py),
        "-c",
        "import seqops, seqops.core.resources as r; print(seqops.__file__); print(r.dags_folder())",
    )
    assert str(env_dir) in where.stdout and str(REPO) not in where.stdout, where.stdout + where.stderr
    assert run(str(py), "-c", "import training").returncode != 0
    assert run(str(py), "-c", "import features").returncode != 0

    batch = empty / "batch.csv"
    rows = [f"AEP,2024-01-01T{h:02d}:00:00Z,{10000 + h}" for h in range(24)]
    batch.write_text("series_id,timestamp,value\n" + "\n".join(rows) + "\n")
    ingested = run(str(env_dir / "bin" / "seqops"), "ingest", str(batch), "--dataset", "pjm", "--json")
    assert ingested.returncode == 0, ingested.stderr[-3000:]
    assert '"accepted": true' in ingested.stdout.splitlines()[-1]
    assert (tmp_path / "home" / "data" / "curated" / "pjm").is_dir()
