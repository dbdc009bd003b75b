"""The deployment, checked offline (no terraform providers, helm or docker daemon here): the Terraform
module parses and keeps its promises (typed, described variables; no hard-coded region or secret;
private, versioned, encrypted buckets; least-privilege IRSA; a tainted GPU node group), and the
Kubernetes manifests, Helm values and Dockerfile agree with it and with the package."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TF = REPO / "infra" / "terraform"
K8S = REPO / "infra" / "k8s"


def _clean(value):
    """python-hcl2 keeps HCL's quotes on keys and literal strings and marks blocks: drop both."""
    if isinstance(value, dict):
        return {_unquote(k): _clean(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return _unquote(value) if isinstance(value, str) else value


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


@pytest.fixture(scope="module")
def tf() -> dict:
    """Every block of the module by kind: {"resource": {(type, name): body}, "variable": {...}, ...}."""
    import hcl2

    out: dict = {"resource": {}, "data": {}, "module": {}, "variable": {}, "output": {}, "locals": {}}
    for path in sorted(TF.glob("*.tf")):
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


def _manifests(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def test_the_module_has_the_standard_layout_and_per_environment_tfvars():
    for name in ("versions.tf", "main.tf", "variables.tf", "outputs.tf"):
        assert (TF / name).is_file(), name
    assert sorted(p.name for p in (TF / "environments").glob("*.tfvars")) == ["dev.tfvars", "prod.tfvars"]


def test_every_variable_is_typed_and_described_and_every_tfvars_sets_only_declared_ones(tf):
    import hcl2

    for name, body in tf["variable"].items():
        assert body.get("type"), f"variable {name} has no type"
        assert len(body.get("description", "")) > 10, f"variable {name} is not described"
    required = {name for name, body in tf["variable"].items() if "default" not in body}
    assert required == {"environment", "region"}
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


def test_every_bucket_is_private_versioned_encrypted_and_tls_only(tf):
    res = tf["resource"]
    buckets = res[("aws_s3_bucket", "this")]
    assert buckets["for_each"] == "${local.buckets}"
    assert set(tf["locals"]["buckets"]) == {"artifacts", "data"}
    for rtype in (
        "aws_s3_bucket_public_access_block",
        "aws_s3_bucket_versioning",
        "aws_s3_bucket_server_side_encryption_configuration",
        "aws_s3_bucket_ownership_controls",
        "aws_s3_bucket_policy",
    ):
        assert res[(rtype, "this")]["for_each"] == "${aws_s3_bucket.this}", (
            f"{rtype} does not cover every bucket"
        )
    block = res[("aws_s3_bucket_public_access_block", "this")]
    assert all(
        block[k] is True
        for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
    )
    assert res[("aws_s3_bucket_versioning", "this")]["versioning_configuration"][0]["status"] == "Enabled"
    sse = res[("aws_s3_bucket_server_side_encryption_configuration", "this")]["rule"][0]
    assert sse["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "aws:kms"
    deny = tf["data"][("aws_iam_policy_document", "tls_only")]["statement"][0]
    assert deny["effect"] == "Deny" and deny["condition"][0]["variable"] == "aws:SecureTransport"


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
