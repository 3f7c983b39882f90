"""traffic-weights-sum-to-100: every weighted route sends all of its traffic somewhere."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._kubernetes import ISTIO_VIRTUAL_SERVICE_TYPES, KNATIVE_TRAFFIC_TYPES, get_path, number, object_name


def _istio_violations(props) -> list[str]:
    problems = []
    for index, route in enumerate(get_path(props, "spec", "http") or []):
        destinations = get_path(route, "route") or []
        weights = [number(get_path(d, "weight")) for d in destinations]
        if len(destinations) < 2 and all(w is None for w in weights):
            continue  # a single unweighted destination takes 100% by Istio's rules
        total = sum(w or 0 for w in weights)
        if total != 100:
            name = get_path(route, "name") or f"http[{index}]"
            problems.append(f"route {name} weights sum to {total:g}, not 100")
    return problems


def _knative_violations(props) -> list[str]:
    percents = [number(get_path(t, "percent")) for t in get_path(props, "spec", "traffic") or []]
    if not percents or all(p is None for p in percents):
        return []  # no traffic block: Knative sends 100% to the latest revision
    total = sum(p or 0 for p in percents)
    return [] if total == 100 else [f"traffic percents sum to {total:g}, not 100"]


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type in ISTIO_VIRTUAL_SERVICE_TYPES:
        problems = _istio_violations(args.props)
    elif args.resource_type in KNATIVE_TRAFFIC_TYPES:
        problems = _knative_violations(args.props)
    else:
        return
    for problem in problems:
        report_violation(f"{object_name(args.props)}: {problem}.")


traffic_weights_sum_to_100 = ResourceValidationPolicy(
    name="traffic-weights-sum-to-100",
    description="Every weighted route (Istio VirtualService, Knative Service or Route) sums to 100.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Adjust the weights in the endpoint's strategy so that they add up to 100.",
)
