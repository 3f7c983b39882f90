"""image-pinned: every container image names a version tag or a digest, never `latest` or nothing."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._kubernetes import get_path, object_name, pod_spec_of


def unpinned_reason(image: str) -> str | None:
    """Why `image` is not pinned, or None when it is."""
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "has no tag (it means latest)"
    if last.rsplit(":", 1)[1] == "latest":
        return "is tagged latest"
    return None


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    pod = pod_spec_of(args.resource_type, args.props)
    if pod is None:
        return
    for field in ("initContainers", "containers"):
        for container in get_path(pod, field) or []:
            image = get_path(container, "image")
            reason = unpinned_reason(image) if isinstance(image, str) else "has no image"
            if reason:
                name = get_path(container, "name") or "(unnamed)"
                report_violation(f"{object_name(args.props)}: container {name} image {image!r} {reason}.")


image_pinned = ResourceValidationPolicy(
    name="image-pinned",
    description="Container images carry a version tag or a digest, never `latest` or none.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Set the version's image to an immutable tag (model:1.4.2) or a digest (model@sha256:...).",
)
