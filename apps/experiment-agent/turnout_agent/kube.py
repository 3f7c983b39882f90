"""The agent's Kubernetes calls, with the official client, and nothing else: its endpoint's
VirtualService (get, update), its Lease (get, create, update) and its state ConfigMap (get, create,
update). Each is allowed by its Role for that one object name only."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException

STATE_KEY = "state.json"


class ConflictError(Exception):
    """Someone else wrote the object since it was read (HTTP 409)."""


def api_client(host: str | None) -> client.ApiClient:
    if host is None:
        config.load_incluster_config()
        return client.ApiClient()
    configuration = client.Configuration()
    configuration.host = host
    return client.ApiClient(configuration)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _micro_time(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _kept(metadata) -> dict:
    """What an update must carry over of an object's metadata so that it changes nothing but its content."""
    kept = {}
    if metadata.labels:
        kept["labels"] = dict(metadata.labels)
    if metadata.annotations:
        kept["annotations"] = dict(metadata.annotations)
    return kept


@dataclass(frozen=True)
class StateVersion:
    resource_version: str
    metadata: dict


@dataclass
class LeaseView:
    holder: str | None
    renewed: datetime.datetime | None
    acquired: datetime.datetime | None
    duration_s: float
    transitions: int
    resource_version: str | None
    metadata: dict
    """Its labels and annotations (the stack's), kept by every update."""


class Kube:
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api)
        self.coordination = client.CoordinationV1Api(api)
        self.core = client.CoreV1Api(api)

    # the routing object ------------------------------------------------------------------------------

    def set_weights(self, routing: dict[str, Any], weights: dict[str, int], *, attempts: int = 5) -> dict:
        """Write `weights` into the split route (named routing['route']) of the VirtualService, rebuilt from the
        settings' destinations in arm order; retried on a conflict with another writer."""
        where = (routing["group"], routing["version"], self.namespace, routing["plural"], routing["name"])
        for attempt in range(attempts):
            current = self.custom.get_namespaced_custom_object(*where)
            routes = current.get("spec", {}).get("http") or []
            split = [r for r in routes if r.get("name") == routing["route"]]
            if not split:
                raise LookupError(f"VirtualService {routing['name']} has no route named {routing['route']!r}")
            split[0]["route"] = [{**routing["destinations"][arm], "weight": weight} for arm, weight in weights.items()]
            try:
                return self.custom.replace_namespaced_custom_object(*where, current)
            except ApiException as error:
                if error.status != 409 or attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    # leadership --------------------------------------------------------------------------------------

    def read_lease(self, name: str) -> LeaseView | None:
        try:
            lease = self.coordination.read_namespaced_lease(name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        spec = lease.spec
        return LeaseView(
            holder=spec.holder_identity,
            renewed=spec.renew_time,
            acquired=spec.acquire_time,
            duration_s=float(spec.lease_duration_seconds or 0),
            transitions=int(spec.lease_transitions or 0),
            resource_version=lease.metadata.resource_version,
            metadata=_kept(lease.metadata),
        )

    def claim_lease(self, name: str, identity: str, duration_s: float, seen: LeaseView | None) -> bool:
        """Create, renew or take over the Lease; False when another writer got there first."""
        now = _micro_time(_now())
        taking_over = seen is not None and seen.holder != identity
        spec = {
            "holderIdentity": identity,
            "leaseDurationSeconds": max(1, round(duration_s)),
            "renewTime": now,
            "acquireTime": now,
            "leaseTransitions": (seen.transitions + 1 if taking_over else seen.transitions) if seen else 0,
        }
        metadata = {**(seen.metadata if seen else {}), "name": name}
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}
        try:
            if seen is None:
                self.coordination.create_namespaced_lease(self.namespace, body)
            else:
                body["metadata"]["resourceVersion"] = seen.resource_version
                if not taking_over and seen.acquired is not None:
                    spec["acquireTime"] = _micro_time(seen.acquired)  # a renewal keeps the time it was acquired
                self.coordination.replace_namespaced_lease(name, self.namespace, body)
        except ApiException as error:
            if error.status in (409, 422):
                return False
            raise
        return True

    # the experiment state ------------------------------------------------------------------------------

    def read_state(self, name: str) -> tuple[dict | None, StateVersion | None]:
        try:
            found = self.core.read_namespaced_config_map(name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None, None
            raise
        text = (found.data or {}).get(STATE_KEY)
        return (json.loads(text) if text else None), StateVersion(
            found.metadata.resource_version, _kept(found.metadata)
        )

    def write_state(self, name: str, state: dict, seen: StateVersion | None, labels: dict[str, str]) -> str:
        """Create or replace the state ConfigMap (keeping the labels and annotations it has); ConflictError when it
        changed since it was read."""
        metadata = {"name": name, "labels": labels} if seen is None else {**seen.metadata, "name": name}
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata,
            "data": {STATE_KEY: json.dumps(state, sort_keys=True)},
        }
        resource_version = seen.resource_version if seen else None
        try:
            if resource_version is None:
                written = self.core.create_namespaced_config_map(self.namespace, body)
            else:
                body["metadata"]["resourceVersion"] = resource_version
                written = self.core.replace_namespaced_config_map(name, self.namespace, body)
        except ApiException as error:
            if error.status == 409:
                raise ConflictError(name) from error
            raise
        return written.metadata.resource_version
