"""Where the shipped, non-Python assets are: package data read through ``importlib.resources``.

The wheel carries the dataset policy, the DAG files, the Feast repo and the PJM demo, so an
installed ``seqops`` finds them without a source checkout. Each function returns a real folder or
file on disk (the package is installed unzipped), which Airflow and Feast need.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _path(package: str) -> Path:
    return Path(str(files(package)))


def datasets_file() -> Path:
    """The shipped dataset policy (``datasets.toml``)."""
    return _path("seqops.core") / "datasets.toml"


def dags_folder() -> Path:
    """The folder Airflow's dag-processor parses (the ``dags/`` folder of the design card)."""
    return _path("seqops.dags")


def feature_repo_dir() -> Path:
    """The Feast repo: ``feature_store*.yaml`` and the declaration modules."""
    return _path("seqops.feature_repo")


def demo_dir() -> Path:
    """The shipped PJM demo files (compressed raw CSVs with their SOURCE.md)."""
    return _path("seqops.demo") / "pjm_hourly"


def source_checkout() -> Path | None:
    """The source checkout an editable install runs from, for the git commit of a run; else None.

    Read from the distribution's PEP 610 ``direct_url.json`` (written by pip), not from file paths.
    """
    import json
    from importlib.metadata import distributions
    from urllib.parse import unquote, urlsplit

    # the installed distribution (a stray seqops.egg-info on sys.path has no direct_url.json)
    for dist in distributions(name="seqops"):
        text = dist.read_text("direct_url.json")
        if text:
            info = json.loads(text)
            url = urlsplit(info.get("url", ""))
            if info.get("dir_info", {}).get("editable") and url.scheme == "file":
                return Path(unquote(url.path))
            return None
    return None
