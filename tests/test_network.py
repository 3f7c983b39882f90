"""Per-region address space (turnout.network) and the platform's API access keys (turnout.config)."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import load, write_stack
from turnout.cli import main
from turnout.errors import ConfigError
from turnout.network import overlapping, region_cidrs


def aws(config: dict, **platform) -> dict:
    config["platform"] = {"cloud": "aws", "regions": ["us-east-1", "us-west-2"], **platform}
    return config


def test_each_region_gets_its_own_slash16_in_region_order(config):
    platform = load(aws(config)).platform
    assert platform.networks == {"us-east-1": "10.0.0.0/16", "us-west-2": "10.1.0.0/16"}
    assert platform.address_space == "10.0.0.0/12"


def test_written_networks_win_and_the_rest_skip_them():
    cidrs = region_cidrs(
        ("a", "b", "c"), "10.0.0.0/12", {"b": "10.0.0.0/16"}, space_path="space", networks_path="networks"
    )
    assert cidrs == {"a": "10.1.0.0/16", "b": "10.0.0.0/16", "c": "10.2.0.0/16"}


@pytest.mark.parametrize(
    ("platform", "path", "fragment"),
    [
        ({"addressSpace": "8.8.0.0/16"}, "turnout:platform.addressSpace", "not a private range"),
        ({"addressSpace": "10.0.0.0/17"}, "turnout:platform.addressSpace", "smaller than one region's /16"),
        ({"addressSpace": "10.1.0.0/12"}, "turnout:platform.addressSpace", "host bits"),
        ({"addressSpace": "10.0.0.0/16"}, "turnout:platform.addressSpace", "too small for 2 region(s)"),
        ({"networks": {"us-east-1": "10.0.0.0/20"}}, "turnout:platform.networks.us-east-1", "a /20"),
        ({"networks": {"eu-west-1": "10.9.0.0/16"}}, "turnout:platform.networks.eu-west-1", "does not list"),
        (
            {"networks": {"us-east-1": "10.9.0.0/16", "us-west-2": "10.9.0.0/16"}},
            "turnout:platform.networks.us-west-2",
            "overlaps us-east-1",
        ),
    ],
)
def test_bad_address_space_names_the_key(config, platform, path, fragment):
    with pytest.raises(ConfigError) as caught:
        load(aws(config, **platform))
    assert caught.value.path == path
    assert fragment in caught.value.found


def test_overlapping_pairs():
    assert overlapping({"a": "10.0.0.0/16", "b": "10.0.0.0/12", "c": "10.16.0.0/16"}) == [("a", "b")]


@pytest.mark.parametrize(
    ("cloud", "platform", "access"),
    [
        ("aws", {}, "in-network"),
        ("azure", {}, "in-network"),
        ("gcp", {}, "dns"),
        ("aws", {"apiAccessCidrs": ["203.0.113.0/24"]}, "allowlist"),
        ("gcp", {"apiAccessCidrs": ["203.0.113.0/24"]}, "allowlist"),
        ("gcp", {"apiAccess": "in-network"}, "in-network"),
    ],
)
def test_api_access_defaults_are_secure_and_stated(config, cloud, platform, access):
    regions = {"aws": ["us-east-1"], "gcp": ["europe-west4"], "azure": ["westeurope"]}[cloud]
    config["platform"] = {"cloud": cloud, "regions": regions, **platform}
    assert load(config).platform.api_access == access


@pytest.mark.parametrize(
    ("cloud", "platform", "path"),
    [
        ("aws", {"apiAccess": "dns"}, "turnout:platform.apiAccess"),
        ("aws", {"apiAccess": "allowlist"}, "turnout:platform.apiAccessCidrs"),
        ("azure", {"apiAccess": "in-network", "apiAccessCidrs": ["203.0.113.0/24"]}, "turnout:platform.apiAccessCidrs"),
        ("aws", {"admins": ["platform-admins"]}, "turnout:platform.admins[0]"),
        ("gcp", {"admins": ["arn:aws:iam::123456789012:role/x"]}, "turnout:platform.admins[0]"),
        ("azure", {"admins": ["group:not-a-guid"]}, "turnout:platform.admins[0]"),
        ("kind", {"apiAccess": "allowlist"}, "turnout:platform.apiAccess"),
        ("kind", {"addressSpace": "10.0.0.0/12"}, "turnout:platform.addressSpace"),
    ],
)
def test_bad_access_settings_name_the_key(config, cloud, platform, path):
    regions = {"aws": ["us-east-1"], "gcp": ["europe-west4"], "azure": ["westeurope"], "kind": ["local"]}[cloud]
    config["platform"] = {"cloud": cloud, "regions": regions, **platform}
    with pytest.raises(ConfigError) as caught:
        load(config)
    assert caught.value.path == path


@pytest.mark.parametrize(
    ("cloud", "principal"),
    [
        ("aws", "arn:aws:iam::123456789012:role/platform-admins"),
        ("aws", "arn:aws:iam::123456789012:user/ops/alice"),
        ("gcp", "group:platform@acme.example"),
        ("gcp", "serviceAccount:deployer@acme-prod.iam.gserviceaccount.com"),
        ("azure", "servicePrincipal:6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"),
    ],
)
def test_admins_as_each_cloud_names_them(config, cloud, principal):
    regions = {"aws": ["us-east-1"], "gcp": ["europe-west4"], "azure": ["westeurope"]}[cloud]
    config["platform"] = {"cloud": cloud, "regions": regions, "admins": [principal]}
    assert load(config).platform.admins == (principal,)


def test_blue_green_cells_on_overlapping_networks_are_refused(project, tmp_path, capsys):
    """A global stack's cells must be peerable: the bundled cells each take their own address space."""
    green = project / "environments" / "Pulumi.prod-aws-green.yaml"
    document = yaml.safe_load(green.read_text())
    document["config"]["turnout:platform"]["addressSpace"] = "10.0.0.0/12"  # blue's
    green.write_text(yaml.safe_dump(document))
    status = main(["plan", "prod-aws-global", "--project", str(project), "--out", str(tmp_path / "out")])
    assert status == 2
    message = capsys.readouterr().err
    assert "turnout:platform.addressSpace" in message and "overlapping networks" in message


def test_cells_write_their_network_into_the_plan(project, tmp_path, config):
    write_stack(project, "cell", aws(config, apiAccessCidrs=["203.0.113.0/24"]))
    assert main(["plan", "cell", "--project", str(project), "--out", str(tmp_path / "out")]) == 0
    import json

    outputs = json.loads((tmp_path / "out" / "cell" / "inventory.json").read_text())["outputs"]
    assert [i["network"] for i in outputs["ingresses"]] == ["10.0.0.0/16", "10.1.0.0/16"]
    assert [c["network"] for c in outputs["clusters"]] == ["10.0.0.0/16", "10.1.0.0/16"]
