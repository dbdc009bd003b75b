"""The curated store on object storage: the same Delta tables in an S3 bucket, through the ordinary S3
clients (moto's server plays S3 here; a real bucket works unchanged)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from seqops.core.settings import Settings
from seqops.core.store import CuratedStore
from seqops.flows.ingest import ingest_file
from seqops.platform.waits import poll

BUCKET = "seqops-curated"
HEADER = "series_id,timestamp,value\n"


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    """moto's S3 server on a free port, with the AWS_* variables every S3 client reads."""
    import boto3
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "seqops-test",
        "AWS_SECRET_ACCESS_KEY": "seqops-test-secret",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }

    def up() -> bool | None:
        try:
            return httpx.get(endpoint).status_code < 500 or None
        except httpx.HTTPError:
            return None

    try:
        poll(up, timeout=60, every=0.3, timed_out=lambda: "moto's S3 server did not start")
        boto3.client("s3", endpoint_url=endpoint, **_creds(env)).create_bucket(Bucket=BUCKET)
        yield env
    finally:
        server.terminate()
        server.wait(timeout=30)


def _creds(env: dict) -> dict:
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "region_name": env["AWS_REGION"],
    }


@pytest.fixture()
def on_s3(s3_server, tmp_path, monkeypatch):
    for key, value in s3_server.items():
        monkeypatch.setenv(key, value)
    prefix = f"s3://{BUCKET}/{tmp_path.name}"
    return Settings(home=tmp_path / "home", object_store_root=prefix)


def _batch(tmp_path: Path, name: str, rows: list[tuple]) -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(f"{s},{t},{v}\n" for s, t, v in rows))
    return path


def _keys(env: dict, prefix: str) -> list[str]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], **_creds(env))
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_batches_publish_to_a_delta_table_in_the_bucket_one_commit_each(on_s3, s3_server, tmp_path):
    first = _batch(tmp_path, "a.csv", [("A", f"2020-01-01T{h:02d}:00:00Z", 10 + h) for h in range(6)])
    fix = _batch(tmp_path, "b.csv", [("A", "2020-01-01T05:00:00Z", 99.0), ("B", "2020-01-01T00:00:00Z", 1.0)])
    assert ingest_file(on_s3, first, "default").accepted
    assert ingest_file(on_s3, fix, "default").accepted  # the batch landed last wins on its keys
    store = CuratedStore(on_s3)
    assert store.table_uri("default") == f"s3://{BUCKET}/{tmp_path.name}/curated/default"
    frame = store.read("default")
    assert len(frame) == 7 and frame.loc[frame["series_id"] == "A", "value"].iloc[-1] == 99.0
    assert store.version("default") == 1 and len(store.published("default")) == 2
    assert len(store.read("default", version=0)) == 6  # time travel: the table as the first commit left it
    assert {s: (r.min, r.max) for s, r in store.value_ranges("default").items()} == {
        "A": (10.0, 99.0),
        "B": (1.0, 1.0),
    }
    keys = _keys(s3_server, f"{tmp_path.name}/curated/default/")
    assert sum(k.endswith(".json") and "/_delta_log/" in k for k in keys) == 2  # one commit per batch
    assert any(k.endswith(".parquet") for k in keys)
    assert not (on_s3.home / "data" / "curated" / "default").exists()  # nothing of it under home
    assert ingest_file(on_s3, first, "default").accepted and store.version("default") == 1  # once


def test_concurrent_ingests_into_the_bucket_each_commit_once_and_the_cli_exits_cleanly(on_s3, tmp_path):
    """Two processes commit to one table at once: S3's conditional put makes one of them retry."""
    env = {**os.environ, "SEQOPS_HOME": str(on_s3.home), "SEQOPS_OBJECT_STORE_ROOT": on_s3.object_store_root}
    seqops = str(Path(sys.executable).with_name("seqops"))
    batches = [
        _batch(tmp_path, f"{sid}.csv", [(sid, f"2020-01-01T{h:02d}:00:00Z", 1.0 + h) for h in range(24)])
        for sid in ("A", "B", "C")
    ]
    procs = [
        subprocess.Popen(
            [seqops, "ingest", str(b), "--dataset", "default", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for b in batches
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-1500:] for _, err in outs]
    assert all(json.loads(out.strip().splitlines()[-1])["accepted"] for out, _ in outs)
    store = CuratedStore(on_s3)
    assert len(store.read("default")) == 72 and store.version("default") == 2
    assert len(store.published("default")) == 3


def test_raw_copies_and_the_quarantine_live_in_the_bucket_for_every_worker(on_s3, s3_server, tmp_path):
    """A batch's raw copy and a rejected batch with its reports go to the bucket; another machine (a
    second home on the same bucket) lists, reads and releases them without the first one's disk."""
    from seqops.core.store import Quarantine, RawStore, raw_file

    good = _batch(tmp_path, "good.csv", [("A", f"2020-01-01T{h:02d}:00:00Z", 10 + h) for h in range(6)])
    bad = _batch(
        tmp_path, "bad.csv", [("A", "2020-01-02T00:00:00Z", 1.0), ("A", "2020-01-02T00:00:00Z", 2.0)]
    )
    accepted = ingest_file(on_s3, good, "default")
    rejected = ingest_file(on_s3, bad, "default")
    assert accepted.accepted and not rejected.accepted
    prefix = f"s3://{BUCKET}/{tmp_path.name}"
    assert accepted.raw_path.startswith(f"{prefix}/raw/default/") and accepted.raw_path.endswith(".csv")
    where = f"{prefix}/quarantine/default/{rejected.batch_id}/"
    assert rejected.quarantine_path == where and where in rejected.message
    keys = _keys(s3_server, f"{tmp_path.name}/quarantine/default/{rejected.batch_id}/")
    names = {k.rsplit("/", 1)[1] for k in keys}
    assert {"batch.csv", "batch.json", "validation.json"} <= names and any("data_docs" in k for k in keys)
    assert not (on_s3.home / "data" / "raw").exists()  # the raw zone is the bucket's

    other = Settings(home=tmp_path / "other-home", object_store_root=on_s3.object_store_root)
    refs = {r.batch_id: r for r in RawStore(other).refs("default")}
    assert set(refs) == {accepted.batch_id, rejected.batch_id}
    assert raw_file(other, refs[rejected.batch_id].raw_path).read_bytes() == bad.read_bytes()
    quarantine = Quarantine(other)
    assert quarantine.batches("default") == [rejected.batch_id]
    assert quarantine.holds("default", rejected.batch_id)
    moved = quarantine.release("default", rejected.batch_id)
    assert moved is not None and moved.startswith(
        f"{prefix}/quarantine/default/_released/{rejected.batch_id}-"
    )
    assert quarantine.batches("default") == [] and not Quarantine(on_s3).holds("default", rejected.batch_id)
    assert RawStore(other).put(bad, "default").batch_id == rejected.batch_id  # landing again: the same
