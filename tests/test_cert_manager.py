"""The gateway's certificate on every cloud: cert-manager from its pinned chart (CRDs once, restricted pods),
a private CA or Let's Encrypt through DNS-01 with each cloud's workload identity, the user's own Secret, and the
`gateway.tls` keys refused with exit 2 where they could not issue."""

from __future__ import annotations

import copy
import functools
import json

import pytest
import yaml

from components.mesh import cert_manager
from components.mesh.cert_manager import (
    ACME_SERVERS,
    CHART_REPOSITORY,
    CHART_VERSION,
    CONTAINER_SECURITY,
    POD_SECURITY,
    chart_values,
)
from components.mesh.dns01 import SUBJECT
from components.mesh.dns01_azure import DNS_ZONE_CONTRIBUTOR_ROLE
from tests.conftest import CRDS, REPO, dependency_closure, load, sample_config, write_stack
from tests.crd_schema import load_crds, validate_custom_resource
from tests.test_mesh import plan_records
from turnout.cli import main
from turnout.errors import ConfigError
from turnout.offline.policy import evaluate
from turnout.offline.runtime import to_plain

POLICIES = REPO / "policies"
RELEASE = "kubernetes:helm.sh/v3:Release"
ZONES = {
    "aws": "Z0123456789ABCDEFGHIJ",
    "gcp": "projects/acme-dns/managedZones/models",
    "azure": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/dns/providers/"
    "Microsoft.Network/dnszones/example.com",
}
REGIONS = {"kind": "lab", "aws": "us-east-1", "gcp": "us-central1", "azure": "eastus"}


def cloud_config(config: dict, cloud: str, tier: str = "dev", **gateway) -> dict:
    config["tier"] = tier
    config["platform"] = {"cloud": cloud, "regions": [REGIONS[cloud]]}
    if gateway:
        config["platform"]["serving"] = {"gateway": gateway}
    return config


def acme(cloud: str, server: str = "letsencrypt-staging", **extra) -> dict:
    return {"issuer": "acme", "server": server, "email": "ops@example.com", "dnsZone": ZONES[cloud], **extra}


@functools.cache
def _planned(cloud: str, tier: str, gateway: str):
    config = cloud_config(sample_config(), cloud, tier, **json.loads(gateway))
    return plan_records(config, "certs")


def planned(cloud: str, tier: str = "dev", **gateway):
    """Records by name and the run of the real program for one cloud and gateway (planned once per module; read
    only)."""
    return _planned(cloud, tier, json.dumps(gateway, sort_keys=True))


def by_type(records: dict, type_: str) -> list:
    return [r for r in records.values() if r.type == type_]


def custom_resources(records: dict, kind: str) -> list[dict]:
    """cert-manager's objects as `kubectl apply` would get them."""
    return [
        {"apiVersion": r.inputs["apiVersion"], "kind": kind, "metadata": r.inputs["metadata"], "spec": r.inputs["spec"]}
        for r in by_type(records, f"kubernetes:cert-manager.io/v1:{kind}")
    ]


def outputs(record) -> dict:
    return to_plain(record.raw_outputs, redact=False)


def gateway_of(records: dict) -> dict:
    (gateway,) = by_type(records, "kubernetes:networking.istio.io/v1:Gateway")
    return gateway.inputs


# --- configuration: defaults and the combinations that cannot issue -------------------------------------


@pytest.mark.parametrize(
    ("cloud", "gateway", "issuer"),
    [
        ("kind", {}, "self-signed"),
        ("aws", {}, "private-ca"),
        ("gcp", {"domain": "models.example.com"}, "private-ca"),
        ("azure", {"certificate": "models-tls"}, "secret"),  # names its own Secret: keeps bringing it
        ("kind", {"certificate": "models-tls"}, "secret"),
        ("aws", {"tls": {"issuer": "secret"}}, "secret"),
        ("kind", {"tls": {"issuer": "private-ca"}}, "private-ca"),
    ],
)
def test_the_issuer_defaults_by_cloud_and_keeps_a_named_secret(config, cloud, gateway, issuer):
    assert load(cloud_config(config, cloud, **gateway)).platform.serving.gateway.tls.issuer == issuer


TLS = "turnout:platform.serving.gateway.tls"


@pytest.mark.parametrize(
    ("cloud", "gateway", "key", "says"),
    [
        ("aws", {"tls": acme("aws")}, "issuer", "the default domain models.internal"),
        ("gcp", {"domain": "models.corp.internal", "tls": acme("gcp")}, "issuer", "domain models.corp.internal"),
        ("aws", {"domain": "m.127.0.0.1.sslip.io", "tls": acme("aws")}, "issuer", "no public ACME CA"),
        ("kind", {"domain": "models.example.com", "tls": acme("aws")}, "issuer", "kind"),
        ("aws", {"tls": {"issuer": "self-signed"}}, "issuer", "self-signed"),
        ("aws", {"domain": "models.example.com", "tls": {**acme("aws"), "server": None}}, "server", "nothing"),
        ("aws", {"domain": "models.example.com", "tls": {**acme("aws"), "dnsZone": None}}, "dnsZone", "nothing"),
        ("aws", {"domain": "models.example.com", "tls": acme("gcp")}, "dnsZone", "projects/acme-dns"),
        ("gcp", {"domain": "models.example.com", "tls": acme("aws")}, "dnsZone", "Z0123456789"),
        ("azure", {"domain": "models.example.org", "tls": acme("azure")}, "dnsZone", "does not hold"),
        ("aws", {"tls": {"issuer": "private-ca", "dnsZone": ZONES["aws"]}}, "dnsZone", "issuer private-ca"),
        ("aws", {"tls": {"email": "ops@example.com"}}, "email", "issuer private-ca"),
        ("aws", {"domain": "models.example.com", "tls": {**acme("aws"), "server": "letsencrypt-prod"}}, "server", ""),
    ],
)
def test_combinations_that_cannot_issue_are_refused_by_key(config, cloud, gateway, key, says):
    with pytest.raises(ConfigError) as error:
        load(cloud_config(config, cloud, **gateway))
    assert error.value.path == f"{TLS}.{key}"
    assert says in str(error.value)


def test_acme_without_a_public_domain_is_exit_2_naming_the_key(project, config, capsys, tmp_path):
    write_stack(project, "certs", cloud_config(config, "aws", tls=acme("aws")))
    assert main(["plan", "certs", "--project", str(project), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{TLS}.issuer" in err and "models.internal" in err and "private-ca" in err
    assert "Traceback" not in err


# --- cert-manager: chart, namespace, pods -------------------------------------------------------------


def test_cert_manager_chart_is_pinned_and_installs_its_crds_once():
    records, _ = planned("aws")
    releases = [r.inputs for r in by_type(records, RELEASE) if r.inputs["chart"] == "cert-manager"]
    (release,) = releases
    assert (release["version"], release["repositoryOpts"]) == (CHART_VERSION, {"repo": CHART_REPOSITORY})
    assert release["namespace"] == "cert-manager"
    assert release["values"]["crds"] == {"enabled": True, "keep": True}
    # The chart's CRDs are its templates: nothing else in the stack may own a second copy.
    crds = by_type(records, "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition")
    assert not [r for r in crds if "cert-manager.io" in json.dumps(r.inputs)]
    assert not release["values"].get("installCRDs")


def restricted_problems(pod: dict, container: dict) -> list[str]:
    """The restricted Pod Security Standard's checks that a chart's security contexts decide."""
    problems = []
    if (container.get("runAsNonRoot", pod.get("runAsNonRoot"))) is not True:
        problems.append("runAsNonRoot")
    seccomp = container.get("seccompProfile") or pod.get("seccompProfile") or {}
    if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
        problems.append("seccompProfile")
    if container.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation")
    if "ALL" not in (container.get("capabilities") or {}).get("drop", []):
        problems.append("capabilities.drop")
    if container.get("privileged"):
        problems.append("privileged")
    return problems


@pytest.mark.parametrize("tier", ["dev", "prod"])
def test_cert_manager_pods_meet_the_restricted_level_their_namespace_enforces(tier):
    records, _ = planned("gcp", tier, domain="models.example.com", tls=acme("gcp"))
    (namespace,) = [r for r in by_type(records, "kubernetes:core/v1:Namespace") if "tls" in r.name]
    assert namespace.inputs["metadata"]["name"] == "cert-manager"
    labels = namespace.inputs["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["istio-injection"] == "disabled"  # the API server calls its webhook without a mesh certificate
    (release,) = [r.inputs for r in by_type(records, RELEASE) if r.inputs["chart"] == "cert-manager"]
    values = release["values"]
    # The chart copies each component's securityContext / containerSecurityContext into its pod template.
    for component in (values, values["webhook"], values["cainjector"], values["startupapicheck"]):
        assert restricted_problems(component["securityContext"], component["containerSecurityContext"]) == []
    replicas = 2 if tier == "prod" else 1
    for component in (values, values["webhook"], values["cainjector"]):
        assert component["replicaCount"] == replicas
        assert component["podDisruptionBudget"] == {"enabled": replicas > 1}


def test_the_restricted_check_can_fail():
    weakened = {**CONTAINER_SECURITY, "allowPrivilegeEscalation": True}
    assert restricted_problems(POD_SECURITY, weakened) == ["allowPrivilegeEscalation"]
    assert restricted_problems({}, CONTAINER_SECURITY) == ["runAsNonRoot", "seccompProfile"]


# --- the certificate the Gateway serves ------------------------------------------------------------------


def test_private_ca_issues_the_secret_the_gateway_serves_in_its_namespace():
    records, run = planned("aws")
    gateway = gateway_of(records)
    (https,) = [s for s in gateway["spec"]["servers"] if s["port"]["number"] == 443]
    (certificate,) = [c for c in custom_resources(records, "Certificate") if c["metadata"]["name"] == "turnout-gateway"]
    assert certificate["metadata"]["namespace"] == gateway["metadata"]["namespace"] == "istio-system"
    assert certificate["spec"]["secretName"] == https["tls"]["credentialName"] == "turnout-gateway-tls"
    assert certificate["spec"]["dnsNames"] == ["*.models.internal", "models.internal"]
    assert gateway["metadata"]["annotations"] == {"turnout.dev/tls-issuer": "private-ca"}
    # The chain: SelfSigned → root (a CA, in cert-manager's namespace) → CA ClusterIssuer → the gateway's.
    issuers = {i["metadata"]["name"]: i["spec"] for i in custom_resources(records, "ClusterIssuer")}
    assert issuers["turnout-self-signed"] == {"selfSigned": {}}
    (root,) = [c for c in custom_resources(records, "Certificate") if c["spec"].get("isCA")]
    assert root["metadata"]["namespace"] == "cert-manager"
    assert root["spec"]["issuerRef"]["name"] == "turnout-self-signed"
    assert root["spec"]["privateKey"]["rotationPolicy"] == "Never"  # renewing the root keeps clients' trust
    assert issuers["turnout-private-ca"] == {"ca": {"secretName": root["spec"]["secretName"]}}
    assert certificate["spec"]["issuerRef"] == {
        "name": "turnout-private-ca",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
    # Every cert-manager object waits for the release (its CRDs and its validating webhook).
    by_urn = {r.urn: r for r in run.records}
    (release,) = [r for r in by_type(records, RELEASE) if r.inputs["chart"] == "cert-manager"]
    for record in [
        *by_type(records, "kubernetes:cert-manager.io/v1:Certificate"),
        *by_type(records, "kubernetes:cert-manager.io/v1:ClusterIssuer"),
    ]:
        assert release.urn in dependency_closure(by_urn, record.urn), record.name


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_cert_manager_objects_match_cert_managers_crds(cloud):
    crds = load_crds(CRDS)
    for tls in ({}, {"tls": acme(cloud)}):
        records, _ = planned(cloud, domain="models.example.com", **tls)
        objects = custom_resources(records, "Certificate") + custom_resources(records, "ClusterIssuer")
        assert len(objects) == (2 if tls else 4)
        assert {o["metadata"]["name"]: validate_custom_resource(o, crds) for o in objects} == {
            o["metadata"]["name"]: [] for o in objects
        }


def test_the_crd_check_can_fail_on_a_certificate():
    records, _ = planned("aws")
    certificate = copy.deepcopy(custom_resources(records, "Certificate")[0])
    certificate["spec"]["dnsName"] = certificate["spec"].pop("dnsNames")
    assert "spec.dnsName: unknown field (would be pruned)" in validate_custom_resource(certificate, load_crds(CRDS))


@pytest.mark.parametrize("server", ["letsencrypt", "letsencrypt-staging"])
def test_the_acme_server_is_the_one_the_stack_names(server):
    gateway = {"domain": "models.example.com", "tls": acme("aws", server)}
    records, _ = planned("aws", **gateway)
    (issuer,) = custom_resources(records, "ClusterIssuer")
    assert issuer["metadata"]["name"] == f"turnout-{server}"
    assert issuer["spec"]["acme"]["server"] == ACME_SERVERS[server]
    assert issuer["spec"]["acme"]["privateKeySecretRef"] == {"name": f"turnout-{server}-account"}
    assert issuer["spec"]["acme"]["email"] == "ops@example.com"
    (solver,) = issuer["spec"]["acme"]["solvers"]
    assert solver["selector"] == {"dnsZones": ["models.example.com"]}
    (certificate,) = custom_resources(records, "Certificate")
    assert certificate["spec"]["issuerRef"]["name"] == f"turnout-{server}"
    assert "duration" not in certificate["spec"]  # Let's Encrypt sets its own lifetime


def acme_records(cloud: str):
    return planned(cloud, domain="models.example.com", tls=acme(cloud))[0]


def cert_manager_values(records: dict) -> dict:
    (release,) = [r.inputs for r in by_type(records, RELEASE) if r.inputs["chart"] == "cert-manager"]
    return release["values"]


def test_eks_irsa_role_trusts_only_cert_managers_service_account_and_writes_only_challenges():
    records = acme_records("aws")
    (role,) = [r for r in by_type(records, "aws:iam/role:Role") if "cert-manager" in r.inputs["name"]]
    (oidc,) = by_type(records, "aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"] == outputs(oidc)["arn"]
    conditions = statement["Condition"]["StringEquals"]
    assert sorted(conditions.values()) == sorted([SUBJECT, "sts.amazonaws.com"])
    (policy,) = [
        r for r in by_type(records, "aws:iam/rolePolicy:RolePolicy") if r.inputs["role"] == role.inputs["name"]
    ]
    statements = json.loads(policy.inputs["policy"])["Statement"]
    zone = f"arn:aws:route53:::hostedzone/{ZONES['aws']}"
    actions = {s["Action"]: s for s in statements}
    assert set(actions) == {"route53:GetChange", "route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets"}
    assert actions["route53:GetChange"]["Resource"] == "arn:aws:route53:::change/*"
    assert actions["route53:ChangeResourceRecordSets"]["Resource"] == zone
    assert actions["route53:ListResourceRecordSets"]["Resource"] == zone
    condition = actions["route53:ChangeResourceRecordSets"]["Condition"]
    assert condition["ForAllValues:StringEquals"] == {"route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]}
    values = cert_manager_values(records)
    assert values["serviceAccount"]["name"] == "cert-manager"
    assert values["serviceAccount"]["annotations"] == {"eks.amazonaws.com/role-arn": outputs(role)["arn"]}
    (issuer,) = custom_resources(records, "ClusterIssuer")
    assert issuer["spec"]["acme"]["solvers"][0]["dns01"] == {
        "route53": {"region": "us-east-1", "hostedZoneID": ZONES["aws"]}
    }


def test_gke_service_account_holds_dns_admin_on_the_zone_only_and_is_impersonated_by_cert_manager():
    records = acme_records("gcp")
    (account,) = [r for r in by_type(records, "gcp:serviceaccount/account:Account") if "dns01" in r.inputs["accountId"]]
    email = outputs(account)["email"]
    (zone_grant,) = by_type(records, "gcp:dns/dnsManagedZoneIamMember:DnsManagedZoneIamMember")
    assert (zone_grant.inputs["project"], zone_grant.inputs["managedZone"]) == ("acme-dns", "models")
    assert (zone_grant.inputs["role"], zone_grant.inputs["member"]) == ("roles/dns.admin", f"serviceAccount:{email}")
    # Nothing project-wide for it: the nodes' roles are the only project IAM members.
    project_members = [r.inputs["member"] for r in by_type(records, "gcp:projects/iAMMember:IAMMember")]
    assert f"serviceAccount:{email}" not in project_members
    (impersonation,) = by_type(records, "gcp:serviceaccount/iAMMember:IAMMember")
    assert impersonation.inputs["role"] == "roles/iam.workloadIdentityUser"
    assert impersonation.inputs["serviceAccountId"] == outputs(account)["name"]
    (cluster,) = by_type(records, "gcp:container/cluster:Cluster")
    pool = cluster.inputs["workloadIdentityConfig"]["workloadPool"]
    assert impersonation.inputs["member"] == f"serviceAccount:{pool}[cert-manager/cert-manager]"
    values = cert_manager_values(records)
    assert values["serviceAccount"]["annotations"] == {"iam.gke.io/gcp-service-account": email}
    (issuer,) = custom_resources(records, "ClusterIssuer")
    assert issuer["spec"]["acme"]["solvers"][0]["dns01"] == {
        "cloudDNS": {"project": "acme-dns", "hostedZoneName": "models"}
    }


def test_gke_zone_by_name_is_in_the_clusters_project():
    gateway = {"domain": "models.example.com", "tls": {**acme("gcp"), "dnsZone": "models"}}
    records, _ = planned("gcp", **gateway)
    (zone_grant,) = by_type(records, "gcp:dns/dnsManagedZoneIamMember:DnsManagedZoneIamMember")
    (cluster,) = by_type(records, "gcp:container/cluster:Cluster")
    project = cluster.inputs["workloadIdentityConfig"]["workloadPool"].removesuffix(".svc.id.goog")
    assert (zone_grant.inputs["project"], zone_grant.inputs["managedZone"]) == (project, "models")


def test_aks_managed_identity_is_federated_with_cert_manager_and_contributes_to_the_zone_only():
    records = acme_records("azure")
    identities = by_type(records, "azure-native:managedidentity:UserAssignedIdentity")
    (identity,) = [r for r in identities if r.inputs["resourceName"].endswith("cert-manager")]
    (cluster,) = by_type(records, "azure-native:containerservice:ManagedCluster")
    assert identity.inputs["resourceGroupName"] == cluster.inputs["resourceGroupName"]
    (federation,) = by_type(records, "azure-native:managedidentity:FederatedIdentityCredential")
    assert federation.inputs["subject"] == SUBJECT
    assert federation.inputs["audiences"] == ["api://AzureADTokenExchange"]
    assert federation.inputs["issuer"] == outputs(cluster)["oidcIssuerProfile"]["issuerURL"]
    assert federation.inputs["resourceName"] == identity.inputs["resourceName"]
    grants = [
        r for r in by_type(records, "azure-native:authorization:RoleAssignment") if r.inputs["scope"] == ZONES["azure"]
    ]
    (grant,) = grants
    assert grant.inputs["roleDefinitionId"].endswith(f"/roleDefinitions/{DNS_ZONE_CONTRIBUTOR_ROLE}")
    assert grant.inputs["principalId"] == outputs(identity)["principalId"]
    values = cert_manager_values(records)
    assert values["podLabels"] == {"azure.workload.identity/use": "true"}
    (issuer,) = custom_resources(records, "ClusterIssuer")
    assert issuer["spec"]["acme"]["solvers"][0]["dns01"] == {
        "azureDNS": {
            "subscriptionID": "00000000-0000-0000-0000-000000000000",
            "resourceGroupName": "dns",
            "hostedZoneName": "example.com",
            "environment": "AzurePublicCloud",
            "managedIdentity": {"clientID": outputs(identity)["clientId"]},
        }
    }


# --- the plan says which issuer each cluster uses; the policy pack agrees ------------------------------------


def plan_stack(project, tmp_path, name: str, config: dict) -> tuple[int, str]:
    write_stack(project, name, config)
    status = main(["plan", name, "--project", str(project), "--out", str(tmp_path)])
    return status, (tmp_path / name / "summary.md").read_text() if status != 2 else ""


def test_summary_names_the_issuer_of_every_cluster(project, config, tmp_path):
    config = cloud_config(config, "aws", domain="models.example.com", tls=acme("aws", "letsencrypt"))
    config["platform"]["regions"] = ["us-east-1", "us-west-2"]
    status, summary = plan_stack(project, tmp_path, "certs", config)
    assert status == 0
    for region in ("us-east-1", "us-west-2"):
        row = next(line for line in summary.splitlines() if line.startswith(f"| `certs-{region}` |"))
        assert f"| {CHART_VERSION} | acme turnout-letsencrypt, Route 53 {ZONES['aws']} |" in row


def test_own_secret_installs_nothing_and_the_gateway_says_so(project, config, tmp_path):
    status, summary = plan_stack(project, tmp_path, "certs", cloud_config(config, "azure", certificate="models-tls"))
    assert status == 0
    assert "| — | secret models-tls (yours) |" in summary
    inventory = json.loads((tmp_path / "certs" / "inventory.json").read_text())
    assert not [r for r in inventory["resources"] if r["type"] == RELEASE and r["inputs"]["chart"] == "cert-manager"]
    gateway = next(r for r in inventory["resources"] if r["type"].endswith(":Gateway"))
    assert gateway["inputs"]["metadata"]["annotations"] == {"turnout.dev/tls-issuer": "secret"}


@pytest.mark.parametrize("cloud", ["kind", "aws", "gcp", "azure"])
def test_every_default_gateway_serves_a_certificate_the_stack_makes(cloud):
    """The defect: clouds referenced a Secret nothing created. tls-on-public-gateways now checks it."""
    records, run = planned(cloud)
    found = [v for v in evaluate(run.records, POLICIES) if v.policy == "tls-on-public-gateways"]
    assert found == []
    assert "turnout.dev/tls-issuer" in gateway_of(records)["metadata"]["annotations"]


def test_a_gateway_secret_nothing_makes_is_a_mandatory_violation(config, monkeypatch):
    """What every cloud stack planned before cert-manager: the Gateway named a Secret and nothing made it."""
    monkeypatch.setattr(cert_manager, "uses_cert_manager", lambda issuer: False)
    monkeypatch.setattr("components.mesh.certificate.uses_cert_manager", lambda issuer: False)
    records, run = plan_records(cloud_config(config, "aws"), "certs")
    found = [v for v in evaluate(run.records, POLICIES) if v.policy == "tls-on-public-gateways"]
    assert [v.level for v in found] == ["mandatory"]
    assert (
        "serves the Secret turnout-gateway-tls, which nothing in the stack creates in istio-system" in found[0].message
    )


def test_chart_values_name_the_identity_the_cloud_trusts():
    values = chart_values("prod", None, {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/r"})
    assert values["serviceAccount"] == {
        "create": True,
        "name": "cert-manager",
        "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/r"},
    }
    assert yaml.safe_load(yaml.safe_dump(values)) == values  # plain data, as Helm receives it


def test_kind_can_run_the_clouds_private_ca_without_any_cloud_identity():
    records, run = planned("kind", tls={"issuer": "private-ca"})
    assert {i["metadata"]["name"] for i in custom_resources(records, "ClusterIssuer")} == {
        "turnout-self-signed",
        "turnout-private-ca",
    }
    assert not [r for r in records.values() if r.type.startswith(("aws:", "gcp:", "azure-native:"))]
    assert cert_manager_values(records)["serviceAccount"]["annotations"] == {}
    assert [v for v in evaluate(run.records, POLICIES) if v.level == "mandatory"] == []
