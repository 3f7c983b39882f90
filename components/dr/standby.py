"""Marking a standby region's model workloads, so policies can tell a pilot light or a warm standby
from a prod version that serves users."""

from __future__ import annotations

import pulumi

from components.endpoint.knative_revisions import named_revision
from turnout.dr import STANDBY_LABEL, Settings, Standby

# Objects whose pods serve a model: the label goes on the object and on its pod template.
_KNATIVE_CONFIGURATION = "kubernetes:serving.knative.dev/v1:Configuration"
_MARKED_TYPES = (
    "kubernetes:apps/v1:Deployment",
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
    _KNATIVE_CONFIGURATION,
)


def _with_label(metadata: object, standby: str) -> object:
    if not isinstance(metadata, dict):
        return metadata
    return {**metadata, "labels": {**(metadata.get("labels") or {}), STANDBY_LABEL: standby}}


def mark_standby(standby: Standby) -> pulumi.ResourceTransformation:
    """A transformation for a standby region's ModelEndpoint: label its workloads `zero` or `reduced`."""

    def transform(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ not in _MARKED_TYPES:
            return None
        props = dict(args.props)
        props["metadata"] = _with_label(props.get("metadata"), standby)
        spec = props.get("spec")
        if isinstance(spec, dict) and isinstance(spec.get("template"), dict):
            template = spec["template"]
            template = {**template, "metadata": _with_label(template.get("metadata") or {}, standby)}
            if args.type_ == _KNATIVE_CONFIGURATION:  # a changed revision template needs a new revision name
                template = named_revision(template)
            props["spec"] = {**spec, "template": template}
        return pulumi.ResourceTransformationResult(props, args.opts)

    return transform


def endpoint_options(settings: Settings, region: str, provider: pulumi.ProviderResource) -> pulumi.ResourceOptions:
    """Options for a model endpoint in `region`: its cluster's provider, and the standby marking there."""
    capacity = settings.scaled_down(region)
    return pulumi.ResourceOptions(provider=provider, transformations=[mark_standby(capacity)] if capacity else None)
