"""The deployment, checked offline (no terraform providers, helm or docker daemon here): the Terraform
module parses, passes checkov with every suppression explained, and keeps its promises (typed,
described variables; no hard-coded region or secret; modules pinned to commits; private, versioned,
encrypted buckets; least-privilege IRSA; a tainted GPU node group; a shared home volume), and the
Kubernetes manifests, Helm values and Dockerfile agree with it and with the package."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TF = REPO / "infra" / "terraform"
K8S = REPO / "infra" / "k8s"


def _clean(value):
    """python-hcl2 keeps HCL's quotes on keys and literal strings, marks blocks and keeps comments
    (`__is_block__`, `__comments__`): drop all of that."""
    if isinstance(value, dict):
        return {_unquote(k): _clean(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return _unquote(value) if isinstance(value, str) else value


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _load(folder: Path) -> dict:
    """Every block of one module by kind: {"resource": {(type, name): body}, "variable": {...}, ...}."""
    import hcl2

    out: dict = {"resource": {}, "data": {}, "module": {}, "variable": {}, "output": {}, "locals": {}}
    for path in sorted(folder.glob("*.tf")):
        with path.open() as f:
            parsed = _clean(hcl2.load(f))
        for kind in ("resource", "data"):
            for block in parsed.get(kind, []):
                for rtype, named in block.items():
                    for name, body in named.items():
                        out[kind][(rtype, name)] = body
        for kind in ("module", "variable", "output"):
            for block in parsed.get(kind, []):
                out[kind].update(block)
        for block in parsed.get("locals", []):
            out["locals"].update(block)
    return out


@pytest.fixture(scope="module")
def tf() -> dict:
    return _load(TF)


@pytest.fixture(scope="module")
def bucket_module() -> dict:
    return _load(TF / "modules" / "private-bucket")


def _manifests(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def test_the_module_has_the_standard_layout_and_per_environment_tfvars():
    import hcl2

    for folder in (TF, TF / "modules" / "private-bucket"):
        for name in ("versions.tf", "main.tf", "variables.tf", "outputs.tf"):
            assert (folder / name).is_file(), folder / name
    assert sorted(p.name for p in (TF / "environments").glob("*.tfvars")) == ["dev.tfvars", "prod.tfvars"]
    parsed = []
    for path in sorted(TF.rglob("*.tf")):  # every file parses, local modules included
        with path.open() as f:
            hcl2.load(f)
        parsed.append(path.relative_to(TF).as_posix())
    assert "modules/private-bucket/main.tf" in parsed and "storage.tf" in parsed


def _checkov() -> Path:
    """checkov lives in its own venv (`make .venv-checkov/.installed`; `make test` makes it)."""
    path = Path(os.environ.get("SEQOPS_CHECKOV", REPO / ".venv-checkov" / "bin" / "checkov"))
    if not path.is_file():
        pytest.fail(
            f"checkov is not installed at {path}: run `make .venv-checkov/.installed` (make test does)"
        )
    return path


def test_checkov_reports_no_failed_check_and_every_suppression_says_why():
    proc = subprocess.run(
        [
            str(_checkov()),
            "--directory", str(TF),
            "--framework", "terraform",
            "--download-external-modules", "false",  # pinned registry modules are checked upstream
            "--skip-download",  # no Prisma Cloud guideline lookup: CI has no network for it
            "--output", "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    summary, results = report["summary"], report["results"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in results["failed_checks"]
    ]
    assert failed == [], "checkov failed:\n" + "\n".join(failed)
    assert summary["parsing_errors"] == 0
    # it really looked: the resources of the local bucket module are checked too
    checked = {c["resource"] for c in results["passed_checks"]}
    assert {
        "module.data_bucket.aws_s3_bucket.this",
        "aws_db_instance.postgres",
        "aws_efs_file_system.home",
    } <= checked
    assert summary["passed"] > 150
    for skip in results["skipped_checks"]:
        reason = skip["check_result"].get("suppress_comment") or ""
        assert len(reason) > 40, f"{skip['check_id']} on {skip['resource']} is suppressed without a reason"
    assert proc.returncode == 0


def test_every_module_source_is_local_or_pinned_to_a_commit(tf):
    for name, body in tf["module"].items():
        source = body["source"]
        assert source.startswith("./") or re.search(r"\?ref=[0-9a-f]{40}$", source), (name, source)
        assert "version" not in body or source.startswith("./"), name


def test_every_variable_is_typed_and_described_and_every_tfvars_sets_only_declared_ones(tf):
    import hcl2

    for name, body in tf["variable"].items():
        assert body.get("type"), f"variable {name} has no type"
        assert len(body.get("description", "")) > 10, f"variable {name} is not described"
    required = {name for name, body in tf["variable"].items() if "default" not in body}
    assert required == {"environment", "region", "availability_zone_ids"}
    for path in (TF / "environments").glob("*.tfvars"):
        with path.open() as f:
            values = _clean(hcl2.load(f))
        assert set(values) <= set(tf["variable"]), (
            f"{path.name} sets undeclared {set(values) - set(tf['variable'])}"
        )
        assert required <= set(values), f"{path.name} misses {required - set(values)}"
        assert values["environment"] == path.stem


def test_no_region_and_no_secret_is_written_into_the_code():
    region = re.compile(r"\b(us|eu|ap|sa|ca|me|af)-(north|south|east|west|central|northeast|southeast)-\d\b")
    secretish = re.compile(r"(password|token|secret|fernet)\w*\s*=\s*\"(?!\$\{)[^\"]+\"", re.IGNORECASE)
    for path in TF.glob("*.tf"):
        text = path.read_text()
        assert not region.search(text), f"{path.name} hard-codes a region"
        assert not secretish.search(text), f"{path.name} holds a literal secret: {secretish.search(text)}"
    for path in (TF / "environments").glob("*.tfvars"):
        assert not secretish.search(path.read_text()), f"{path.name} holds a secret"


def test_every_bucket_is_private_versioned_encrypted_logged_and_tls_only(tf, bucket_module):
    buckets = {name: body for name, body in tf["module"].items() if name.endswith("_bucket")}
    assert set(buckets) == {"artifacts_bucket", "data_bucket"}
    for body in buckets.values():
        assert body["source"] == "./modules/private-bucket"
        assert body["kms_key_arn"] == "${aws_kms_key.platform.arn}"
        assert body["access_log_bucket"] == "${aws_s3_bucket.logs.id}"
    res = bucket_module["resource"]
    block = res[("aws_s3_bucket_public_access_block", "this")]
    assert all(
        block[k] is True
        for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
    )
    assert res[("aws_s3_bucket_versioning", "this")]["versioning_configuration"][0]["status"] == "Enabled"
    sse = res[("aws_s3_bucket_server_side_encryption_configuration", "this")]["rule"][0]
    assert sse["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "aws:kms"
    assert (
        res[("aws_s3_bucket_ownership_controls", "this")]["rule"][0]["object_ownership"]
        == "BucketOwnerEnforced"
    )
    assert res[("aws_s3_bucket_logging", "this")]["target_bucket"] == "${var.access_log_bucket}"
    assert res[("aws_s3_bucket_notification", "this")]["eventbridge"] is True
    for policies in (
        bucket_module["data"][("aws_iam_policy_document", "tls_only")],
        tf["data"][("aws_iam_policy_document", "logs")],
    ):
        deny = next(s for s in policies["statement"] if s.get("effect") == "Deny")
        assert deny["condition"][0]["variable"] == "aws:SecureTransport" and deny["actions"] == ["s3:*"]
    logs = tf["resource"]
    assert logs[("aws_s3_bucket_public_access_block", "logs")]["restrict_public_buckets"] is True
    assert logs[("aws_s3_bucket_versioning", "logs")]["versioning_configuration"][0]["status"] == "Enabled"


def test_the_shared_home_is_an_encrypted_efs_volume_that_every_task_pod_mounts(tf):
    res = tf["resource"]
    efs = res[("aws_efs_file_system", "home")]
    assert efs["encrypted"] is True and efs["kms_key_id"] == "${aws_kms_key.platform.arn}"
    assert res[("aws_efs_mount_target", "home")]["count"] == "${length(local.azs)}"
    assert res[("aws_security_group", "efs")]["ingress"][0]["security_groups"] == [
        "${module.eks.node_security_group_id}"
    ]
    point = res[("aws_efs_access_point", "home")]
    assert point["posix_user"][0]["uid"] == 50000  # the image's user
    addons = tf["module"]["eks"]["cluster_addons"]
    assert addons["aws-efs-csi-driver"]["service_account_role_arn"] == "${module.efs_csi_irsa.iam_role_arn}"
    assert "shared_home_volume_handle" in tf["output"]

    home = re.search(r"SEQOPS_HOME=(\S+)", (REPO / "infra" / "docker" / "Dockerfile").read_text()).group(1)
    docs = {(d["kind"], d["metadata"]["name"]): d for d in _manifests("shared-home.yaml")}
    claim = docs[("PersistentVolumeClaim", "seqops-home")]
    volume = docs[("PersistentVolume", "seqops-home")]
    assert claim["spec"]["accessModes"] == volume["spec"]["accessModes"] == ["ReadWriteMany"]
    assert (
        claim["spec"]["volumeName"] == "seqops-home" and volume["spec"]["csi"]["driver"] == "efs.csi.aws.com"
    )
    assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"

    values = yaml.safe_load((REPO / "infra" / "helm" / "values-airflow.yaml").read_text())
    (volume_spec,) = values["workers"]["extraVolumes"]
    (mount,) = values["workers"]["extraVolumeMounts"]
    assert volume_spec["persistentVolumeClaim"]["claimName"] == "seqops-home"
    assert mount == {"name": volume_spec["name"], "mountPath": home}
    assert {"name": "SEQOPS_HOME", "value": home} in values["env"]
    (pod,) = _manifests("training-pod.yaml")
    (container,) = pod["spec"]["containers"]
    assert {"name": "seqops-home", "persistentVolumeClaim": {"claimName": "seqops-home"}} in pod["spec"][
        "volumes"
    ]
    assert {"name": "seqops-home", "mountPath": home} in container["volumeMounts"]


def test_databases_are_private_encrypted_and_keep_their_passwords_out_of_terraform(tf):
    res = tf["resource"]
    pg = res[("aws_db_instance", "postgres")]
    assert pg["engine"] == "postgres" and pg["storage_encrypted"] is True
    assert pg["publicly_accessible"] is False and pg["manage_master_user_password"] is True
    assert "password" not in pg  # RDS manages it in Secrets Manager
    redis = res[("aws_elasticache_replication_group", "redis")]
    assert redis["at_rest_encryption_enabled"] is True and redis["transit_encryption_enabled"] is True
    assert redis["auth_token"] == "${random_password.redis.result}"
    for sg in ("postgres", "redis"):
        ingress = res[("aws_security_group", sg)]["ingress"][0]
        assert ingress["security_groups"] == ["${module.eks.node_security_group_id}"]  # the nodes only
        assert "cidr_blocks" not in ingress


def test_iam_is_least_privilege_and_serving_can_only_read_artifacts(tf):
    docs = tf["data"]
    for name in ("platform", "serving"):
        for statement in docs[("aws_iam_policy_document", name)]["statement"]:
            assert not any(a == "*" or a.endswith(":*") for a in statement["actions"]), (name, statement)
            resources = statement["resources"]
            resources = resources if isinstance(resources, list) else [resources]
            assert "*" not in resources, (name, statement)
    serving_actions = {
        a for s in docs[("aws_iam_policy_document", "serving")]["statement"] for a in s["actions"]
    }
    assert "s3:PutObject" not in serving_actions and "s3:DeleteObject" not in serving_actions
    accounts = {
        name: tf["module"][f"{name}_irsa"]["oidc_providers"]["main"]["namespace_service_accounts"]
        for name in ("platform", "serving")
    }
    assert accounts == {
        "platform": ["${var.serving_namespace}:seqops-platform"],
        "serving": ["${var.serving_namespace}:seqops-serving"],
    }


def test_the_gpu_node_group_is_tainted_and_the_training_pod_tolerates_and_selects_it(tf):
    groups = tf["module"]["eks"]["eks_managed_node_groups"]
    gpu = groups["gpu"]
    assert "NVIDIA" in gpu["ami_type"]
    taint = gpu["taints"]["gpu"]
    assert (taint["key"], taint["effect"]) == ("nvidia.com/gpu", "NO_SCHEDULE")
    assert "taints" not in groups["system"]
    (pod,) = _manifests("training-pod.yaml")
    spec = pod["spec"]
    assert spec["nodeSelector"] == gpu["labels"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    (container,) = spec["containers"]
    assert container["name"] == "base"  # KubernetesPodOperator runs its command in "base"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert spec["serviceAccountName"] == "seqops-platform"


def test_outputs_feed_settings_that_exist(tf):
    from seqops.core.settings import Settings

    settings_out = tf["output"]["seqops_settings"]["value"]
    known = {f"SEQOPS_{name.upper()}" for name in Settings.model_fields}
    assert set(settings_out) <= known, set(settings_out) - known
    assert settings_out["SEQOPS_PROFILE"] == "production"
    for name, body in tf["output"].items():
        assert len(body.get("description", "")) > 10, f"output {name} is not described"


def test_the_serving_deployment_has_probes_resources_and_an_autoscaler():
    docs = {(d["kind"], d["metadata"]["name"]): d for d in _manifests("serving.yaml")}
    deployment = docs[("Deployment", "seqops-serving")]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert "seqops.serving.app:create_app" in container["command"]
    assert pod["serviceAccountName"] == "seqops-serving"
    hpa = docs[("HorizontalPodAutoscaler", "seqops-serving")]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "seqops-serving"
    assert hpa["spec"]["minReplicas"] >= 2
    assert ("PodDisruptionBudget", "seqops-serving") in docs


def test_the_airflow_values_use_the_image_s_dags_external_databases_and_the_irsa_account():
    values = yaml.safe_load((REPO / "infra" / "helm" / "values-airflow.yaml").read_text())
    assert values["executor"] == "KubernetesExecutor"
    assert values["postgresql"]["enabled"] is False and values["redis"]["enabled"] is False
    assert values["dags"]["gitSync"]["enabled"] is False
    assert values["config"]["core"]["dags_folder"].endswith("site-packages/seqops/dags")
    env = {e["name"]: e["value"] for e in values["env"]}
    assert env["SEQOPS_PROFILE"] == "production"
    for component in ("workers", "scheduler", "apiServer", "dagProcessor", "triggerer"):
        assert values[component]["serviceAccount"]["name"] == "seqops-platform", component


def test_the_image_is_built_from_the_wheel_with_every_package_folder():
    dockerfile = (REPO / "infra" / "docker" / "Dockerfile").read_text()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    folders = {path.split("/")[0] for path in pyproject["tool"]["setuptools"]["package-dir"].values()}
    copied = set(re.findall(r"^COPY (\S+) \1$", dockerfile, flags=re.MULTILINE))
    assert folders <= copied | {"seqops"}, f"not copied into the wheel stage: {folders - copied}"
    assert "pip wheel --no-deps" in dockerfile and "--no-deps /wheels/*.whl" in dockerfile
    final = dockerfile.split("\nFROM ")[-1]
    assert "COPY . " not in final  # the final stage holds the wheel and the lock, not the checkout
    assert re.search(r"^USER 50000$", final, flags=re.MULTILINE)
