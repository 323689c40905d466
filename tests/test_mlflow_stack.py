"""The MLflow stack as declared: command lines, hardening, routing, identities, policies, monitors."""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from components.cluster.mlflow.monitoring import METRICS_PASSWORD_SECRET
from components.cluster.mlflow.network import WEBHOOK_SENDERS
from components.cluster.mlflow_projects import job_template
from harness.mock_engine import Evaluation, RecordedResource
from harness.schema_validation import schema_problems
from layers.mlflow_servers import cluster_database, server_settings
from layout import cluster_layout, mlflow_routing
from layout.images import image_by_name
from layout.mlflow_server import (
    ROLES,
    DatabaseServer,
    ServerSettings,
    auth_config,
    cluster_allowed_hosts,
    ip_wildcard,
    migration_commands,
    server_command,
    service_name,
)
from tests.services.stack import committed_settings
from tests.test_policies import run_policy

REPO = Path(__file__).resolve().parents[1]
K8S = "kubernetes:"


def _settings(**changes: Any) -> ServerSettings:
    base = ServerSettings(
        database=DatabaseServer(host="db.example.com", user="mlflowadmin"),
        artifacts_destination="wasbs://mlflow-artifacts@acct.blob.core.windows.net/",
        allowed_hosts=("mlflow.example.com", "10.244.*"),
        admin_username="mlflow-admin",
        default_permission="NO_PERMISSIONS",
        workers=3,
        pool_size=7,
        max_overflow=2,
    )
    return ServerSettings(**{**base.__dict__, **changes})


def _flag(args: tuple[str, ...], flag: str) -> str:
    return args[args.index(flag) + 1]


# --- the pure command builder ----------------------------------------------------------------


def test_tracking_and_registry_serve_stores_without_artifacts() -> None:
    for role in ("tracking", "registry"):
        command = server_command(role, _settings())
        args = command.args
        assert command.program[:2] == ("mlflow", "server") and args[4:] == command.program
        assert _flag(args, "--backend-store-uri") == (
            "postgresql+psycopg2://mlflowadmin@db.example.com:5432/mlflow?sslmode=require"
        )
        assert _flag(args, "--registry-store-uri").endswith("/mlflow_registry?sslmode=require")
        assert "--no-serve-artifacts" in args
        assert _flag(args, "--default-artifact-root") == "mlflow-artifacts:/"
        assert "--artifacts-only" not in args


def test_artifacts_role_proxies_the_blob_container_only() -> None:
    args = server_command("artifacts", _settings()).args
    assert "--artifacts-only" in args
    assert _flag(args, "--artifacts-destination") == "wasbs://mlflow-artifacts@acct.blob.core.windows.net/"
    # MLflow refuses store URIs in artifacts-only mode.
    assert "--backend-store-uri" not in args and "--no-serve-artifacts" not in args


@pytest.mark.parametrize("role", ROLES)
def test_every_role_has_auth_metrics_hosts_and_sizes(role: str) -> None:
    command = server_command(role, _settings())  # type: ignore[arg-type]
    args = command.args
    assert _flag(args, "--app-name") == "basic-auth"
    assert _flag(args, "--expose-prometheus").startswith("/tmp/")
    assert _flag(args, "--allowed-hosts") == "mlflow.example.com,10.244.*"
    assert _flag(args, "--workers") == "3"
    assert command.env["MLFLOW_SQLALCHEMYSTORE_POOL_SIZE"] == "7"
    assert command.env["MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW"] == "2"
    assert command.env["MLFLOW_AUTH_CONFIG_PATH"] == "/etc/mlflow/basic_auth.ini"
    assert command.secret_files == {
        "MLFLOW_AUTH_ADMIN_PASSWORD": cluster_layout.MLFLOW_ADMIN_PASSWORD,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": cluster_layout.MLFLOW_FLASK_SECRET_KEY,
        # Roles with the registry store share one Fernet key for stored webhook secrets.
        **(
            {"MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": cluster_layout.MLFLOW_WEBHOOK_ENCRYPTION_KEY}
            if role != "artifacts"
            else {}
        ),
    }
    assert not any(":" in a and "@" in a and "//" in a and a.count(":") > 2 for a in args), "password in a URI"
    # The launcher writes the password file from the mounted secret, exports the other secrets
    # from their files, then execs the server; the environment names only the password file.
    assert args[:2] == ("/bin/sh", "-c") and args[3] == "mlflow-launcher"
    script = args[2]
    assert f"/mnt/secrets-store/{cluster_layout.POSTGRES_ADMIN_PASSWORD}" in script
    for name, secret in command.secret_files.items():
        assert f'{name}="$(cat /mnt/secrets-store/{secret})"; export {name}' in script
    assert script.endswith('exec "$@"')
    assert command.env["PGPASSFILE"] == "/tmp/pgpass" and "PGPASSWORD" not in command.env
    assert not set(command.secret_files) & set(command.env)


def test_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown MLflow role"):
        server_command("ui", _settings())  # type: ignore[arg-type]


def test_migrations_and_auth_config() -> None:
    commands = migration_commands(DatabaseServer(host="h", user="u"))
    # Each under the launcher (password file only, nothing exported).
    assert all(c[:2] == ("/bin/sh", "-c") and c[3] == "mlflow-launcher" and "export" not in c[2] for c in commands)
    assert [c[4:7] for c in commands] == [
        ("mlflow", "db", "upgrade"),
        ("mlflow", "db", "upgrade"),
        ("python", "-m", "mlflow.server.auth"),
    ]
    assert [c[-1].split("/")[-1] for c in commands] == [
        "mlflow?sslmode=require",
        "mlflow_registry?sslmode=require",
        "mlflow_auth?sslmode=require",
    ]
    parser = configparser.ConfigParser()
    parser.read_string(auth_config(_settings()))
    assert parser["mlflow"]["default_permission"] == "NO_PERMISSIONS"
    assert parser["mlflow"][
        "database_uri"
    ] == "postgresql+psycopg2://mlflowadmin@h:5432/mlflow_auth?sslmode=require".replace("@h", "@db.example.com")
    assert "admin_password" not in parser["mlflow"]


def test_allowed_hosts_cover_gateway_services_and_pod_ips() -> None:
    hosts = cluster_allowed_hosts("mlflow.example.com", "mlflow", "10.244.0.0/16")
    assert hosts[0] == "mlflow.example.com"
    assert "mlflow-registry.mlflow.svc.cluster.local" in hosts
    assert hosts[-1] == "10.244.*"
    assert ip_wildcard("172.16.0.0/12") == "172.*"


def test_default_permission_is_none_in_prod() -> None:
    assert committed_settings("prod").mlflow_default_permission == "NO_PERMISSIONS"
    assert committed_settings("dev").mlflow_default_permission == "READ"


def test_image_requirements_are_the_tested_pins() -> None:
    def pins(path: Path) -> set[str]:
        return {line.strip() for line in path.read_text().splitlines() if "==" in line and not line.startswith("#")}

    image = pins(REPO / "images" / "mlflow" / "requirements.txt")
    assert image and image <= pins(REPO / "requirements-dev.txt")
    assert any(p.startswith("mlflow[auth]==3.") for p in image)


# --- routing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("/api/2.0/mlflow/registered-models/create", "registry"),
        ("/api/2.0/mlflow/registered-models", "registry"),
        ("/ajax-api/2.0/mlflow/model-versions/search", "registry"),
        ("/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model.pkl", "artifacts"),
        ("/api/2.0/mlflow/runs/log-batch", "tracking"),
        ("/api/2.0/mlflow/registered-models-like", "tracking"),
        ("/static-files/index.html", "tracking"),
        ("/", "tracking"),
    ],
)
def test_routing_table(path: str, role: str) -> None:
    assert mlflow_routing.role_for(path) == role


def test_nginx_rendering_covers_every_route() -> None:
    text = mlflow_routing.nginx_locations({r: f"u_{r}" for r in ROLES})
    for route in mlflow_routing.ROUTES:
        assert f"location = {route.prefix} {{ proxy_pass http://u_{route.role};" in text
        assert f"location ^~ {route.prefix}/ {{ proxy_pass http://u_{route.role};" in text
    assert "location / { proxy_pass http://u_tracking;" in text


# --- the declared objects --------------------------------------------------------------------


def _k8s(evaluation: Evaluation, kind: str) -> list[RecordedResource]:
    return [r for r in evaluation.resources if r.type.startswith(K8S) and r.type.endswith(f":{kind}")]


def _named(evaluation: Evaluation, kind: str, name: str) -> dict[str, Any]:
    matches = [r for r in _k8s(evaluation, kind) if r.inputs.get("metadata", {}).get("name") == name]
    assert len(matches) == 1, (kind, name, len(matches))
    return matches[0].inputs


def test_every_kubernetes_object_validates(stack: Evaluation) -> None:
    version = committed_settings(stack.stack).aks_kubernetes_version
    assert schema_problems(stack, version) == []
    assert len([r for r in stack.resources if r.type.startswith(K8S) and "providers" not in r.type]) >= 30


def test_job_template_is_a_valid_job() -> None:
    template = job_template("ml-jobs", "mlflow-job-runner")
    kubernetes_validate.validate(template, "1.34.2", strict=True)
    spec = template["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "mlflow-job-runner"
    # The Jobs MLflow submits from it pass the pack's container checks like the program's own.
    for policy in ("k8s-requests-and-limits", "k8s-no-secret-env"):
        assert run_policy(policy, "kubernetes:batch/v1:Job", template) == [], policy


def test_deployments_run_the_builders_command_line(stack: Evaluation) -> None:
    settings = committed_settings(stack.stack)
    fqdn = stack.outputs["postgresFqdn"].value
    expected = server_settings(
        settings,
        cluster_database(settings, fqdn),
        stack.outputs["artifactsDestination"].value,
    )
    expected = ServerSettings(**{**expected.__dict__, "auth_config_path": "/etc/mlflow/basic_auth.ini"})
    registry = stack.outputs["containerRegistryLoginServer"].value
    for role in ROLES:
        deployment = _named(stack, "Deployment", service_name(role))
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        command = server_command(role, expected)
        assert container["command"] == list(command.args)
        assert container["image"].startswith(f"{registry}/{image_by_name('mlflow').repository}@sha256:")
        assert container["imagePullPolicy"] == "IfNotPresent"
        env = {e["name"]: e for e in container["env"]}
        assert {k: env[k]["value"] for k in command.env} == command.env
        # No secret in the environment (checkov CKV_K8S_35): the launcher reads the files the
        # pod's CSI volume mounts where the command line says.
        assert not any("valueFrom" in e for e in container["env"])
        assert not set(command.secret_files) & set(env) and "PGPASSWORD" not in env
        assert env["PGPASSFILE"]["value"] == "/tmp/pgpass"
        assert {"name": "secrets-store", "mountPath": "/mnt/secrets-store", "readOnly": True} in container[
            "volumeMounts"
        ]
        volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "secrets-store")
        account = "mlflow-artifacts" if role == "artifacts" else "mlflow-server"
        assert volume["csi"]["volumeAttributes"] == {"secretProviderClass": f"{account}-key-vault"}
        assert f"public host {cluster_layout.public_host('mlflow', settings.domain)}" and _flag(
            command.args, "--allowed-hosts"
        ).startswith(f"mlflow.{settings.domain},")


def test_pods_are_hardened(stack: Evaluation) -> None:
    for role in ROLES:
        pod = _named(stack, "Deployment", service_name(role))["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            assert container[probe]["httpGet"]["path"] == "/health"
        assert set(container["resources"]) == {"requests", "limits"}
        expected_account = "mlflow-artifacts" if role == "artifacts" else "mlflow-server"
        assert pod["serviceAccountName"] == expected_account


def test_zone_spread_in_prod_only(dev: Evaluation, prod: Evaluation) -> None:
    for role in ROLES:
        prod_pod = _named(prod, "Deployment", service_name(role))["spec"]["template"]["spec"]
        keys = {c["topologyKey"] for c in prod_pod["topologySpreadConstraints"]}
        assert "topology.kubernetes.io/zone" in keys
        dev_pod = _named(dev, "Deployment", service_name(role))["spec"]["template"]["spec"]
        assert "topologySpreadConstraints" not in dev_pod


def test_deployments_wait_for_the_migration_job(stack: Evaluation) -> None:
    job = next(r for r in _k8s(stack, "Job"))
    pod = job.inputs["spec"]["template"]["spec"]
    containers = (*pod["initContainers"], *pod["containers"])
    commands = [c["command"] for c in containers]
    assert all(c[:2] == ["/bin/sh", "-c"] and c[3] == "mlflow-launcher" for c in commands)
    for container in containers:
        assert {e["name"]: e.get("value") for e in container["env"]}["PGPASSFILE"] == "/tmp/pgpass"
        assert not any("valueFrom" in e for e in container["env"])
        assert container["resources"]["limits"]["cpu"] == "1"
    assert [c[4:7] for c in commands] == [
        ["mlflow", "db", "upgrade"],
        ["mlflow", "db", "upgrade"],
        ["python", "-m", "mlflow.server.auth"],
    ]
    mlflow_deployments = [d for d in _k8s(stack, "Deployment") if d.inputs["metadata"]["namespace"] == "mlflow"]
    assert len(mlflow_deployments) == 3
    for deployment in mlflow_deployments:
        assert job.urn in deployment.dependencies, deployment.name


def test_autoscaling_and_disruption_budgets(prod: Evaluation) -> None:
    hpas = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in _k8s(prod, "HorizontalPodAutoscaler")}
    assert set(hpas) == {"mlflow-tracking", "mlflow-registry"}
    assert (hpas["mlflow-tracking"]["minReplicas"], hpas["mlflow-tracking"]["maxReplicas"]) == (3, 9)
    pdbs = {
        r.inputs["metadata"]["name"]
        for r in _k8s(prod, "PodDisruptionBudget")
        if r.inputs["metadata"]["namespace"] == "mlflow"
    }
    assert pdbs == {service_name(role) for role in ROLES}


def test_virtual_service_is_the_routing_table(stack: Evaluation) -> None:
    settings = committed_settings(stack.stack)
    spec = _named(stack, "VirtualService", "mlflow")["spec"]
    assert spec["gateways"] == [cluster_layout.PLATFORM_GATEWAY]
    assert spec["hosts"] == [cluster_layout.public_host("mlflow", settings.domain)]
    rules = spec["http"]
    # With teams (MLflow workspaces) the artifacts paths go to the tracking role (docs/teams.md).
    routes = mlflow_routing.routes(bool(settings.teams))
    assert len(rules) == len(routes) + 1
    for rule, route in zip(rules, routes, strict=False):
        assert {"prefix": route.prefix + "/"} in [m["uri"] for m in rule["match"]]
        assert rule["route"][0]["destination"]["host"].startswith(service_name(route.role) + ".")
    assert "match" not in rules[-1]
    assert rules[-1]["route"][0]["destination"]["host"].startswith("mlflow-tracking.")


def test_secrets_come_from_key_vault_by_workload_identity(stack: Evaluation) -> None:
    client_ids = stack.outputs["workloadIdentityClientIds"].value
    for key in ("mlflow-server", "mlflow-artifacts"):
        provider = _named(stack, "SecretProviderClass", f"{key}-key-vault")["spec"]
        assert provider["parameters"]["clientID"] == client_ids[key]
        assert provider["parameters"]["usePodIdentity"] == "false"
        objects = yaml.safe_load(provider["parameters"]["objects"])["array"]
        expected = (
            cluster_layout.MLFLOW_REGISTRY_SECRETS if key == "mlflow-server" else cluster_layout.MLFLOW_SERVER_SECRETS
        )
        assert {yaml.safe_load(o)["objectName"] for o in objects} == set(expected)
        # Only the metrics password is synced into a Kubernetes Secret (PodMonitor basic-auth);
        # the database password, CSRF key and webhook key stay files in the pods.
        synced = provider.get("secretObjects", [])
        assert synced == (
            [
                {
                    "secretName": METRICS_PASSWORD_SECRET,
                    "type": "Opaque",
                    "data": [
                        {
                            "objectName": cluster_layout.MLFLOW_ADMIN_PASSWORD,
                            "key": cluster_layout.MLFLOW_ADMIN_PASSWORD,
                        }
                    ],
                }
            ]
            if key == "mlflow-server"
            else []
        )
        account = _named(stack, "ServiceAccount", key)
        assert account["metadata"]["annotations"]["azure.workload.identity/client-id"] == client_ids[key]
    [jobs] = [
        r.inputs
        for r in _k8s(stack, "ServiceAccount")
        if r.inputs["metadata"] == {**r.inputs["metadata"], "name": "mlflow-job-runner", "namespace": "ml-jobs"}
    ]
    assert jobs["metadata"]["annotations"]["azure.workload.identity/client-id"] == client_ids["ml-jobs"]
    rendered = repr([r.inputs for r in stack.resources if r.type.startswith(K8S)])
    for secret in stack.of_type("azure-native:keyvault:Secret"):
        if secret.inputs["secretName"] == cluster_layout.GRAFANA_ADMIN_USER:
            continue  # a login name, kept beside its password for the chart; not a credential
        assert secret.inputs["properties"]["value"] not in rendered
    assert "AccountKey" not in rendered and "AZURE_STORAGE" not in rendered


def test_auth_config_map(dev: Evaluation, prod: Evaluation) -> None:
    for evaluation, permission in ((dev, "READ"), (prod, "NO_PERMISSIONS")):
        config_map = next(r for r in _k8s(evaluation, "ConfigMap") if "basic_auth.ini" in r.inputs.get("data", {}))
        parser = configparser.ConfigParser()
        parser.read_string(config_map.inputs["data"]["basic_auth.ini"])
        assert parser["mlflow"]["default_permission"] == permission
        assert (
            "@" in parser["mlflow"]["database_uri"] and ":" not in parser["mlflow"]["database_uri"].split("@")[0][20:]
        )


def test_network_policies(stack: Evaluation) -> None:
    policies = {
        r.inputs["metadata"]["name"]: r.inputs["spec"]
        for r in _k8s(stack, "NetworkPolicy")
        if r.inputs["metadata"]["namespace"] == "mlflow"
    }
    assert policies["default-deny"] == {"podSelector": {"matchLabels": {}}, "policyTypes": ["Ingress", "Egress"]}
    sources = {
        name: spec["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for name, spec in policies.items()
        if spec.get("ingress") and "namespaceSelector" in spec["ingress"][0]["from"][0]
    }
    assert sources == {
        "allow-gateway": "istio-system",
        "allow-metrics": "monitoring",
        "allow-automation": "mlops-system",  # rollout analysis, and the operator's models workspace
        "allow-model-artifact-reads": "models",
        # the webhook registration Job (declared with the receiver, as in both committed stacks)
        **({"allow-webhook-registrar": "mlops-system"} if committed_settings(stack.stack).webhook_receiver else {}),
    }
    # `mlflow gc` reaches the artifacts role, and only it, from its own pods
    gc_in, gc_out = policies["allow-gc-to-artifacts"], policies["allow-gc-egress"]
    component = "app.kubernetes.io/component"
    assert gc_in["podSelector"]["matchLabels"][component] == "artifacts"
    assert gc_in["ingress"][0]["from"][0]["podSelector"]["matchLabels"][component] == "gc"
    assert gc_out["podSelector"]["matchLabels"][component] == "gc"
    assert gc_out["egress"][0]["to"][0]["podSelector"]["matchLabels"][component] == "artifacts"
    assert policies["allow-model-artifact-reads"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == (
        "artifacts"
    )


def test_pod_monitors_label_the_role(stack: Evaluation) -> None:
    monitors = [m for m in _k8s(stack, "PodMonitor") if m.inputs["metadata"]["namespace"] == "mlflow"]
    assert len(monitors) == len(ROLES)
    for monitor in monitors:
        endpoint = monitor.inputs["spec"]["podMetricsEndpoints"][0]
        relabel = endpoint["relabelings"][0]
        assert relabel["sourceLabels"] == ["__meta_kubernetes_pod_label_app_kubernetes_io_component"]
        assert relabel["targetLabel"] == cluster_layout.MLFLOW_ROLE_METRIC_LABEL
        # basic-auth protects /metrics: the admin password from the one CSI-synced Secret.
        password = endpoint["basicAuth"]["password"]
        assert password == {"name": METRICS_PASSWORD_SECRET, "key": cluster_layout.MLFLOW_ADMIN_PASSWORD}
    username = _named(stack, "Secret", endpoint["basicAuth"]["username"]["name"])
    assert username["stringData"] == {"username": committed_settings(stack.stack).mlflow_admin_username}


def test_kubernetes_objects_use_the_cluster_provider(stack: Evaluation) -> None:
    provider = stack.one("pulumi:providers:kubernetes")
    for resource in stack.resources:
        if resource.type.startswith(K8S) and resource.custom:
            assert resource.provider.startswith(provider.urn), resource.name
            assert resource.deleted_with, resource.name


def test_mlflow_projects_objects_answer_to_their_urns_under_the_mlflow_component(stack: Evaluation) -> None:
    """The jobs namespace, its service account and Job template moved out of `MlflowStack` into
    `MlflowProjects` (issue 19): each names, as an alias, the engine URN it had before, so a running
    stack moves them in state instead of replacing them."""
    head = f"urn:pulumi:{stack.stack}::mlops-platform::mlops:mlflow:MlflowStack$kubernetes:core/v1:Namespace"
    before = {
        "mlflow-jobs-namespace": f"{head}::mlflow-jobs-namespace",
        "mlflow-sa-ml-jobs": f"{head}$kubernetes:core/v1:ServiceAccount::mlflow-sa-ml-jobs",
        "mlflow-job-template": f"{head}$kubernetes:core/v1:ConfigMap::mlflow-job-template",
    }
    for name, old_urn in before.items():
        (resource,) = [r for r in stack.resources if r.name == name]
        assert "mlops:mlflow:MlflowProjects$" in resource.engine_urn, resource.engine_urn
        assert old_urn in resource.aliases, (name, resource.aliases)
    assert not any(r.engine_urn in before.values() for r in stack.resources)


def test_webhook_senders_are_the_roles_mlflow_gives_webhook_settings() -> None:
    settings = _settings()
    for role in ROLES:
        command = server_command(role, settings)
        assert ("MLFLOW_WEBHOOK_CACHE_TTL" in command.env) == (role in WEBHOOK_SENDERS), role


def test_webhook_policies_in_mlflow_namespace_select_mlflow_pods_with_mlflow_selectors(stack: Evaluation) -> None:
    delivery = stack.one("kubernetes:networking.k8s.io/v1:NetworkPolicy", "webhooks-netpol-allow-webhook-delivery")
    registrar = stack.one("kubernetes:networking.k8s.io/v1:NetworkPolicy", "webhooks-netpol-allow-webhook-registrar")
    registry_service = stack.one("kubernetes:core/v1:Service", "mlflow-registry-service")
    assert registrar.inputs["spec"]["podSelector"]["matchLabels"] == registry_service.inputs["spec"]["selector"]
    senders = delivery.inputs["spec"]["podSelector"]
    assert senders["matchExpressions"][0]["values"] == list(WEBHOOK_SENDERS)
