"""The deployment strategies of CONTRACT §1 as typed config, with their own validation.

Each strategy names versions by role (`stable`, `canary`, ...). `versions_named` lists them with
the key that names each, so one function can check that they exist; `validate` checks what only
that strategy knows (weights that sum to 100, a default that is a variant, ...).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from turnout.errors import ConfigError, describe
from turnout.schema import parse_object, setting
from turnout.units import (
    check_cookie_name,
    check_dns_label,
    check_header_name,
    parse_duration,
    parse_int_or_percent,
    parse_percent,
)


def _percent(low: int, high: int):
    return lambda value, path: parse_percent(value, path, low, high)


def require_distinct(path: str, key: str, value: str, other_key: str, other_value: str) -> None:
    """Two roles of one strategy (stable and canary, live and dark, ...) need two versions."""
    if value == other_value:
        raise ConfigError(f"{path}.{key}", describe(value), f"a version other than `{other_key}` ({other_value})")


def _version_key(key: str, path: str) -> str:
    return check_dns_label(key, path, "version name")


PREVIEW_HEADER = "x-turnout-preview"
DARK_HEADER = "x-turnout-dark"
# Knative's tag header (knative.dev/networking's RouteTagKey, as check_header_name spells headers): with
# config-features tag-header-based-routing, a request carrying a Route tag's name reaches that tag's target.
KNATIVE_TAG_HEADER = "knative-serving-tag"


@dataclass(frozen=True, kw_only=True)
class Recreate:
    TYPE: ClassVar[str] = "recreate"
    version: str | None = setting(
        "The only version that runs; it replaces the previous one all at once.",
        None,
        default_doc="the endpoint's only version",
    )

    def versions_named(self) -> dict[str, str]:
        return {"version": self.version} if self.version else {}


@dataclass(frozen=True, kw_only=True)
class Rolling:
    TYPE: ClassVar[str] = "rolling"
    version: str | None = setting(
        "The only version that runs; pods are replaced a few at a time.",
        None,
        default_doc="the endpoint's only version",
    )
    max_surge: int | str = setting(
        "Extra pods allowed during a rollout.", "25%", parse=parse_int_or_percent, allowed='an integer or "N%"'
    )
    max_unavailable: int | str = setting(
        "Pods allowed to be unavailable during a rollout.", 0, parse=parse_int_or_percent, allowed='an integer or "N%"'
    )

    def versions_named(self) -> dict[str, str]:
        return {"version": self.version} if self.version else {}

    def validate(self, path: str) -> None:
        if self.max_surge in (0, "0%") and self.max_unavailable in (0, "0%"):
            raise ConfigError(
                f"{path}.maxSurge",
                "0 together with maxUnavailable 0",
                "a non-zero maxSurge or maxUnavailable, or a rollout could never progress",
            )


@dataclass(frozen=True, kw_only=True)
class BlueGreen:
    TYPE: ClassVar[str] = "blue-green"
    active: str = setting("The version that serves all traffic.")
    preview: str = setting(
        "The version reachable only with the preview header (knative: at 0% of the Route, under its tag)."
    )
    preview_header: str | None = setting(
        "Requests with this header set to `true` reach `preview`. On knative, leave it out: Knative fixes the "
        "header, and requests with `Knative-Serving-Tag: <preview>`, or to `<preview>-<endpoint>.<domain>`, "
        "reach `preview`.",
        None,
        parse=check_header_name,
        allowed="an HTTP header name",
        default_doc='"x-turnout-preview" (knative: `Knative-Serving-Tag: <preview>`)',
    )
    progressive: Promotion | None = setting(
        "Let Flagger analyse `preview` on the header's requests and switch everyone to it when healthy (istio).", None
    )

    def versions_named(self) -> dict[str, str]:
        return {"active": self.active, "preview": self.preview}

    def opt_in_header(self) -> str:
        """The header that, set to `true`, reaches `preview` through turnout's VirtualService (backend istio)."""
        return self.preview_header or PREVIEW_HEADER

    def validate(self, path: str) -> None:
        require_distinct(path, "preview", self.preview, "active", self.active)


@dataclass(frozen=True, kw_only=True)
class Sticky:
    cookie: str = setting(
        "The cookie that pins a user to the version first assigned.", parse=check_cookie_name, allowed="a cookie name"
    )


@dataclass(frozen=True, kw_only=True)
class Progressive:
    interval: int = setting(
        "Time between analysis steps.", 60, parse=parse_duration, default_doc='"1m"', allowed="a duration"
    )
    threshold: int = setting("Failed checks before Flagger rolls back.", 5, bounds=(1, 50))
    step_weight: int = setting(
        "Weight added at each healthy step.", 10, parse=_percent(1, 50), allowed="an integer from 1 to 50"
    )
    max_weight: int = setting(
        "Highest canary weight before promotion.", 50, parse=_percent(1, 100), allowed="an integer from 1 to 100"
    )
    success_rate: int = setting(
        "Lowest request success rate (%) counted as healthy.",
        99,
        parse=_percent(1, 100),
        allowed="an integer from 1 to 100",
    )
    max_latency_ms: int = setting(
        "Highest p99 latency in milliseconds counted as healthy; with judge sequential, requests slower than it are "
        "judged as errors are (one of Istio's buckets).",
        500,
        bounds=(1, 600000),
    )
    judge: Literal["threshold", "sequential"] = setting(
        "threshold: Flagger's own checks each interval (successRate, maxLatencyMs on the canary alone); sequential: "
        "the experiment agent's sequential test of the canary's error rate against the primary's decides rollback "
        "and promotion (Flagger webhooks; see Experiments).",
        "threshold",
    )
    alpha: float | None = setting(
        "With judge sequential: the most probability of ever rolling back a canary no worse than the primary "
        "(half to the error judge, half to the latency judge).",
        None,
        parse=lambda value, path: _alpha(value, path),
        allowed="a number above 0 and below 0.5, such as 0.01",
        default_doc="0.01",
    )
    min_requests: int | None = setting(
        "With judge sequential: canary requests before promotion may be confirmed.",
        None,
        bounds=(1, 100000000),
        default_doc="500",
    )

    def validate(self, path: str) -> None:
        if self.judge == "sequential" and self.max_latency_ms not in ISTIO_LATENCY_BUCKETS_MS:
            raise ConfigError(
                f"{path}.maxLatencyMs",
                f"{self.max_latency_ms} with judge 'sequential'",
                "with judge sequential, one of Istio's latency buckets (ms; the judge compares the canary's share "
                "of requests slower than it with the primary's): " + latency_buckets_text(),
            )
        if self.judge != "sequential":
            for key, value in (("alpha", self.alpha), ("minRequests", self.min_requests)):
                if value is not None:
                    raise ConfigError(
                        f"{path}.{key}", f"{value!r} with judge {self.judge!r}", f"{key} with judge 'sequential' only"
                    )

    @property
    def sequential(self) -> bool:
        return self.judge == "sequential"

    def judge_alpha(self) -> float:
        return DEFAULT_JUDGE_ALPHA if self.alpha is None else self.alpha

    def judge_min_requests(self) -> int:
        return DEFAULT_JUDGE_MIN_REQUESTS if self.min_requests is None else self.min_requests


DEFAULT_JUDGE_ALPHA = 0.01
DEFAULT_JUDGE_MIN_REQUESTS = 500


def _alpha(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 0.5:
        raise ConfigError(path, describe(value), "a number above 0 and below 0.5, such as 0.01")
    return float(value)


@dataclass(frozen=True, kw_only=True)
class Promotion:
    """Flagger's analysis for a version that is switched to, not stepped: blue-green (the preview header
    is Flagger's A/B match) and shadow (Flagger's blue/green mirroring)."""

    interval: int = setting(
        "Time between analysis checks.", 60, parse=parse_duration, default_doc='"1m"', allowed="a duration"
    )
    iterations: int = setting("Healthy checks before Flagger switches users to the new version.", 10, bounds=(1, 100))
    threshold: int = setting("Failed checks before Flagger rolls back.", 5, bounds=(1, 50))
    success_rate: int = setting(
        "Lowest request success rate (%) counted as healthy.",
        99,
        parse=_percent(1, 100),
        allowed="an integer from 1 to 100",
    )
    max_latency_ms: int = setting("Highest p99 latency in milliseconds counted as healthy.", 500, bounds=(1, 600000))


@dataclass(frozen=True, kw_only=True)
class Canary:
    TYPE: ClassVar[str] = "canary"
    stable: str = setting("The version that serves the rest of the traffic.")
    canary: str = setting("The version that receives `weight`% of the traffic.")
    weight: int = setting(
        "Percentage of requests sent to `canary`.", parse=_percent(1, 100), allowed="an integer from 1 to 100"
    )
    sticky: Sticky | None = setting("Keep each user on the version first assigned, by cookie.", None)
    progressive: Progressive | None = setting(
        "Let Flagger step the weight up on healthy metrics and roll back on unhealthy ones.", None
    )

    def versions_named(self) -> dict[str, str]:
        return {"stable": self.stable, "canary": self.canary}

    def validate(self, path: str) -> None:
        require_distinct(path, "canary", self.canary, "stable", self.stable)
        if self.progressive is not None:
            self.progressive.validate(f"{path}.progressive")
        if self.progressive is not None and self.weight > self.progressive.max_weight:
            raise ConfigError(
                f"{path}.weight",
                f"{self.weight}, above progressive.maxWeight {self.progressive.max_weight}",
                "with progressive, weight is Flagger's first step: at most maxWeight",
            )

    def step_weights(self) -> list[int]:
        """Flagger's steps: `weight` first, then `stepWeight` more each healthy interval, up to `maxWeight`."""
        assert self.progressive is not None
        steps = list(range(self.weight, self.progressive.max_weight, self.progressive.step_weight))
        return [*steps, self.progressive.max_weight] if steps[-1:] != [self.progressive.max_weight] else steps


@dataclass(frozen=True, kw_only=True)
class Segment:
    header: str = setting(
        "The request header that selects the segment.", parse=check_header_name, allowed="an HTTP header name"
    )
    value: str = setting("The header value that puts a request in the segment.")


@dataclass(frozen=True, kw_only=True)
class AbTest:
    TYPE: ClassVar[str] = "ab-test"
    variants: dict[str, int] = setting(
        "Version to weight; two or more, summing to 100.",
        keys=_version_key,
        values=_percent(0, 100),
        min_items=2,
        allowed="a mapping of version to weight 0–100 (at least 2, sum 100)",
    )
    segment: Segment | None = setting("Only requests in this segment are split; others go to `default`.", None)
    default: str | None = setting("The version for requests outside the segment; required with `segment`.", None)
    reward: Reward | None = setting(
        "Collect each variant's rewards and compare them with always-valid confidence intervals (the experiment "
        "agent's report); the split itself does not change. See Experiments.",
        None,
    )

    def versions_named(self) -> dict[str, str]:
        named = {f"variants.{version}": version for version in self.variants}
        if self.default:
            named["default"] = self.default
        return named

    def validate(self, path: str) -> None:
        total = sum(self.variants.values())
        if total != 100:
            raise ConfigError(f"{path}.variants", f"weights summing to {total}", "weights summing to 100")
        if self.segment is not None and self.default is None:
            raise ConfigError(
                f"{path}.default",
                "nothing",
                "the version for requests outside the segment (required when `segment` is set)",
            )
        if self.segment is None and self.default is not None:
            raise ConfigError(
                f"{path}.default",
                describe(self.default),
                "no default without a `segment`: every request is split by weight",
            )
        if self.reward is not None:
            self.reward.validate(f"{path}.reward")
            if self.segment is not None and self.default in self.variants and self.reward.unreported != "unknown":
                raise ConfigError(
                    f"{path}.reward",
                    f"{'source slo' if self.reward.source == 'slo' else 'unreported zero'} with default "
                    f"{self.default!r} among the variants",
                    "reward {source: feedback, unreported: unknown}: the mesh cannot tell the default's requests "
                    "outside the segment from its requests in the experiment, so only reported outcomes count",
                )


JSON_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\[[0-9]+\])*(\.[A-Za-z_][A-Za-z0-9_-]*(\[[0-9]+\])*)*$")
JSON_PATH_ALLOWED = (
    'a path into a JSON answer: keys joined by ".", each optionally followed by [INDEX], such as "items", '
    '"data.results" or "hits[0].id"'
)


def parse_json_path(value: object, path: str) -> str:
    """A path into a JSON document (`data.results`, `hits[0].id`): what the agent reads items and fields at."""
    if not isinstance(value, str) or len(value) > 256 or not JSON_PATH.match(value):
        raise ConfigError(path, describe(value), JSON_PATH_ALLOWED)
    return value


def _tolerance(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise ConfigError(path, describe(value), "a number of 0 or more (the largest difference counted as equal)")
    return float(value)


@dataclass(frozen=True, kw_only=True)
class Compare:
    fields: tuple[str, ...] = setting(
        "Paths compared in the JSON answers (a number within tolerance, a label exactly, a list by its items).",
        (),
        values=parse_json_path,
        allowed="a list of paths such as label or scores[0]",
        default_doc="the whole body",
    )
    tolerance: float = setting(
        "Largest absolute difference between two numbers still counted as agreement.",
        0.0,
        parse=_tolerance,
        allowed="a number of 0 or more",
    )
    sample: int = setting(
        "Percentage of compared pairs written to the agent's standard output as JSON lines, secrets redacted.",
        0,
        parse=_percent(0, 100),
        allowed="an integer from 0 to 100",
    )
    redact: tuple[str, ...] = setting(
        'Paths in requests and answers replaced by "[redacted]" in sampled pairs (secret headers always are).',
        (),
        values=parse_json_path,
        allowed="a list of paths",
    )


@dataclass(frozen=True, kw_only=True)
class Shadow:
    TYPE: ClassVar[str] = "shadow"
    primary: str = setting("The version whose responses users get.")
    shadows: dict[str, int] = setting(
        "Version to the percentage of requests copied to it; responses discarded.",
        keys=_version_key,
        values=_percent(1, 100),
        min_items=1,
        allowed="a mapping of version to percent 1–100 (at least 1)",
    )

    progressive: Promotion | None = setting(
        "Let Flagger analyse the shadow on its mirrored requests and switch everyone to it when healthy.", None
    )
    compare: Compare | None = setting(
        "Compare each shadow's answers with the primary's (the experiment agent joins them) instead of discarding "
        "them; see Experiments.",
        None,
    )

    def versions_named(self) -> dict[str, str]:
        return {"primary": self.primary, **{f"shadows.{version}": version for version in self.shadows}}

    def validate(self, path: str) -> None:
        if self.compare is not None and self.progressive is not None:
            raise ConfigError(
                f"{path}.compare",
                "compare together with progressive",
                "one of them: with progressive, Flagger writes the VirtualService and mirrors to the shadow itself, "
                "so the experiment agent cannot receive the copies",
            )
        if self.progressive is not None and len(self.shadows) != 1:
            raise ConfigError(
                f"{path}.shadows",
                f"{len(self.shadows)} shadows with progressive",
                "exactly one shadow: Flagger analyses and promotes one version",
            )
        if self.primary in self.shadows:
            raise ConfigError(
                f"{path}.shadows.{self.primary}",
                "the primary version",
                "versions other than `primary`: a shadow never serves users",
            )


@dataclass(frozen=True, kw_only=True)
class DarkLaunch:
    TYPE: ClassVar[str] = "dark-launch"
    live: str = setting("The version that serves all traffic.")
    dark: str = setting("The version reachable only with the header (knative: at 0% of the Route, under its tag).")
    header: str | None = setting(
        "Requests with this header set to `true` reach `dark`. On knative, leave it out: Knative fixes the "
        "header, and requests with `Knative-Serving-Tag: <dark>`, or to `<dark>-<endpoint>.<domain>`, "
        "reach `dark`.",
        None,
        parse=check_header_name,
        allowed="an HTTP header name",
        default_doc='"x-turnout-dark" (knative: `Knative-Serving-Tag: <dark>`)',
    )

    def versions_named(self) -> dict[str, str]:
        return {"live": self.live, "dark": self.dark}

    def opt_in_header(self) -> str:
        """The header that, set to `true`, reaches `dark` through turnout's VirtualService (backend istio)."""
        return self.header or DARK_HEADER

    def validate(self, path: str) -> None:
        require_distinct(path, "dark", self.dark, "live", self.live)


VARIANT_HEADER = "x-turnout-variant"


def _variant_key(key: str, path: str) -> str:
    return check_dns_label(key, path, "variant name")


@dataclass(frozen=True, kw_only=True)
class FeatureFlag:
    TYPE: ClassVar[str] = "feature-flag"
    flag: str = setting(
        "The OpenFeature flag callers evaluate.",
        parse=lambda v, p: check_dns_label(v, p, "flag name"),
        allowed="a flag name (lowercase letters, digits, '-')",
    )
    variants: dict[str, str] = setting(
        "Flag variant to the version that serves it.",
        keys=_variant_key,
        min_items=1,
        allowed="a mapping of variant name to version (at least 1)",
    )
    default_variant: str = setting("The variant for requests without the x-turnout-variant header.")

    def versions_named(self) -> dict[str, str]:
        return {f"variants.{variant}": version for variant, version in self.variants.items()}

    def validate(self, path: str) -> None:
        if self.default_variant not in self.variants:
            raise ConfigError(
                f"{path}.defaultVariant",
                describe(self.default_variant),
                "one of the variants: " + ", ".join(self.variants),
            )


# Istio's default buckets of istio_request_duration_milliseconds (its stats filter): a `reward.latencyMs`
# is a bucket boundary, so "answered within latencyMs" is a count Prometheus holds exactly.
ISTIO_LATENCY_BUCKETS_MS = (
    0.5,
    1,
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10000,
    30000,
    60000,
    300000,
    600000,
    1800000,
    3600000,
)


def latency_buckets_text(buckets=ISTIO_LATENCY_BUCKETS_MS) -> str:
    """The buckets as a user writes them: 0.5, 1, ..., 3600000 (never 3.6e+06)."""
    return ", ".join(str(int(b)) if b == int(b) else str(b) for b in buckets)


BANDIT_POLICIES = ("thompson", "ucb1", "epsilon-greedy")
MAX_ARMS = 10
_PRINCIPAL = re.compile(r"^[a-z0-9.-]+/ns/[a-z0-9]([-a-z0-9]*[a-z0-9])?/sa/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def _fraction(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(path, describe(value), "a number from 0 to 1, such as 0.1")
    return float(value)


def _latency_bucket(value: object, path: str) -> float:
    allowed = "one of Istio's latency buckets (ms): " + latency_buckets_text()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value not in ISTIO_LATENCY_BUCKETS_MS:
        raise ConfigError(path, describe(value), allowed)
    return value


def _caller(value: object, path: str) -> str:
    if isinstance(value, str) and ("/" in value and _PRINCIPAL.match(value)):
        return value
    if isinstance(value, str) and "/" not in value:
        return check_dns_label(value, path, "namespace")
    raise ConfigError(
        path, describe(value), "a namespace name, or a workload principal such as cluster.local/ns/shop/sa/checkout"
    )


@dataclass(frozen=True, kw_only=True)
class Reward:
    source: Literal["feedback", "slo"] = setting(
        "feedback: callers report outcomes to the experiment agent; slo: a request without a 5xx answered within "
        "latencyMs is a success, counted by the mesh.",
        "feedback",
    )
    latency_ms: float | None = setting(
        "With source slo: the latency (ms) a success answers within; one of Istio's histogram buckets.",
        None,
        parse=_latency_bucket,
        allowed="one of Istio's latency buckets: 0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, ...",
    )
    unreported: Literal["zero", "unknown"] | None = setting(
        "With source feedback: zero (callers report rewards only; a request without feedback earned 0) or unknown "
        "(callers report every outcome, 0 included; unreported requests do not count).",
        None,
        default_doc='"zero"',
    )
    callers: tuple[str, ...] = setting(
        "With source feedback: who may post feedback, namespaces or principals (cluster.local/ns/NS/sa/SA).",
        (),
        values=_caller,
        allowed="a list of namespaces or principals",
        default_doc="any workload of the mesh",
    )

    def validate(self, path: str) -> None:
        if self.source == "slo" and self.latency_ms is None:
            raise ConfigError(f"{path}.latencyMs", "nothing, with source slo", "the latency a success answers within")
        if self.source == "feedback" and self.latency_ms is not None:
            raise ConfigError(f"{path}.latencyMs", f"{self.latency_ms:g} with source feedback", "latencyMs with slo")
        if self.source == "slo" and self.unreported is not None:
            raise ConfigError(
                f"{path}.unreported", repr(self.unreported) + " with source slo", "unreported with feedback"
            )
        if self.source == "slo" and self.callers:
            raise ConfigError(f"{path}.callers", "callers with source slo", "no callers: the mesh measures slo rewards")


@dataclass(frozen=True, kw_only=True)
class Bandit:
    TYPE: ClassVar[str] = "bandit"
    arms: tuple[str, ...] = setting(
        "The versions traffic is split across (2 to 10); the experiment agent moves traffic toward better ones.",
        values=_version_key,
        min_items=2,
        allowed="a list of 2 to 10 versions",
    )
    policy: Literal["thompson", "ucb1", "epsilon-greedy"] = setting(
        "How rewards become weights (turnout.experiments.bandit.allocate).", "thompson"
    )
    epsilon: float = setting(
        "epsilon-greedy: the share the arms other than the best split.", 0.1, parse=_fraction, allowed="0 to 1"
    )
    reward: Reward = setting("What counts as a reward; see Experiments.", Reward())
    interval: int = setting(
        "Time between weight updates.", 30, parse=parse_duration, default_doc='"30s"', allowed="a duration"
    )
    min_weight: int = setting(
        "Percent every arm keeps, so the agent never stops learning about it.",
        5,
        parse=_percent(0, 50),
        allowed="an integer from 0 to 50",
    )

    def versions_named(self) -> dict[str, str]:
        return {f"arms[{index}]": version for index, version in enumerate(self.arms)}

    def validate(self, path: str) -> None:
        if len(self.arms) > MAX_ARMS:
            raise ConfigError(f"{path}.arms", f"{len(self.arms)} arms", f"2 to {MAX_ARMS} versions")
        for index, arm in enumerate(self.arms):
            if arm in self.arms[:index]:
                raise ConfigError(f"{path}.arms[{index}]", f"{arm!r} listed twice", "distinct versions")
        if self.min_weight * len(self.arms) > 100:
            raise ConfigError(
                f"{path}.minWeight",
                f"{self.min_weight}, which {len(self.arms)} arms cannot all keep ({self.min_weight * len(self.arms)}%)",
                f"at most {100 // len(self.arms)} with {len(self.arms)} arms",
            )
        if self.interval < 5 or self.interval > 86400:
            raise ConfigError(f"{path}.interval", f"{self.interval} seconds", 'a duration from "5s" to "1d"')
        self.reward.validate(f"{path}.reward")

    def initial_weights(self) -> dict[str, int]:
        """An even split in whole percentages, the remainder to the first arms (what allocate gives without data)."""
        share, extra = divmod(100, len(self.arms))
        return {arm: share + (1 if index < extra else 0) for index, arm in enumerate(self.arms)}


INTERLEAVING_METHODS = ("team-draft", "balanced")


@dataclass(frozen=True, kw_only=True)
class Interleaved:
    TYPE: ClassVar[str] = "interleaved"
    control: str = setting(
        "The version users get outside the experiment; merged answers keep its response shape and headers."
    )
    treatment: str = setting("The version whose ranking is interleaved with control's.")
    percent: int = setting(
        "Percentage of requests answered with one list merged from both versions' answers (the rest get control's).",
        100,
        parse=_percent(1, 100),
        allowed="an integer from 1 to 100",
    )
    method: Literal["team-draft", "balanced"] = setting(
        "How the two rankings are merged (turnout.experiments.interleaving.interleave).", "team-draft"
    )
    items: str = setting(
        "Path of the ranked list in both versions' JSON answers.", "items", parse=parse_json_path, allowed="a path"
    )
    item_id: str = setting(
        "Path of an item's id within each item of the list.", "id", parse=parse_json_path, allowed="a path"
    )
    budget_ms: int = setting(
        "Milliseconds the agent waits for treatment's answer; later, the user gets control's answer unchanged.",
        250,
        bounds=(1, 60000),
    )
    click_window: int = setting(
        "How long an impression's attribution is kept for its clicks; unclicked ones are then counted as expired.",
        1800,
        parse=parse_duration,
        default_doc='"30m"',
        allowed="a duration",
    )
    callers: tuple[str, ...] = setting(
        "Who may post clicks, namespaces or principals (cluster.local/ns/NS/sa/SA).",
        (),
        values=_caller,
        allowed="a list of namespaces or principals",
        default_doc="any workload of the mesh",
    )

    def versions_named(self) -> dict[str, str]:
        return {"control": self.control, "treatment": self.treatment}

    def validate(self, path: str) -> None:
        require_distinct(path, "treatment", self.treatment, "control", self.control)
        if not 60 <= self.click_window <= 86400:
            raise ConfigError(f"{path}.clickWindow", f"{self.click_window} seconds", 'a duration from "1m" to "1d"')


Strategy = Recreate | Rolling | BlueGreen | Canary | AbTest | Shadow | DarkLaunch | FeatureFlag | Bandit | Interleaved

STRATEGY_TYPES: dict[str, type] = {
    cls.TYPE: cls
    for cls in (Recreate, Rolling, BlueGreen, Canary, AbTest, Shadow, DarkLaunch, FeatureFlag, Bandit, Interleaved)
}

# What each backend can express. Knative routes by weight and by its own tag header only, so
# header-, cookie- and mirror-based strategies need the Istio backend. A bandit needs Istio too: its
# answers carry x-turnout-version set per destination, which a Knative Route cannot set.
BACKEND_STRATEGIES: dict[str, frozenset[str]] = {
    "istio": frozenset(STRATEGY_TYPES),
    # blue-green and dark-launch through Knative's tags: the hidden version at 0%, reached by its tag.
    "knative": frozenset({"recreate", "rolling", "blue-green", "canary", "ab-test", "dark-launch"}),
}


def learns_from_traffic(strategy: Strategy | None) -> bool:
    """Whether the endpoint runs an experiment agent (and its cluster the Prometheus the agent reads)."""
    return (
        isinstance(strategy, (Bandit, Interleaved))
        or compares_shadows(strategy)
        or judged_canary(strategy)
        or rewarded_ab_test(strategy)
    )


def rewarded_ab_test(strategy: Strategy | None) -> bool:
    """An ab-test whose variants' rewards the experiment agent collects and compares (ab-test.reward)."""
    return isinstance(strategy, AbTest) and strategy.reward is not None


def judged_canary(strategy: Strategy | None) -> bool:
    """A progressive canary whose rollback and promotion the experiment agent's sequential judge decides."""
    return isinstance(strategy, Canary) and strategy.progressive is not None and strategy.progressive.sequential


def compares_shadows(strategy: Strategy | None) -> bool:
    """A shadow whose answers the experiment agent compares with the primary's (shadow.compare)."""
    return isinstance(strategy, Shadow) and strategy.compare is not None


def parse_strategy(value: Any, path: str) -> Strategy:
    known = ", ".join(STRATEGY_TYPES)
    if not isinstance(value, dict):
        raise ConfigError(path, describe(value), f"a mapping with `type` (one of {known}) and its fields")
    kind = value.get("type")
    if not isinstance(kind, str) or kind not in STRATEGY_TYPES:
        raise ConfigError(f"{path}.type", describe(kind), f"one of {known}")
    if "compare" in value and kind != Shadow.TYPE:
        raise ConfigError(
            f"{path}.compare",
            f"compare with type {kind!r}, which has no shadow",
            "compare under type shadow: it compares the answers of the versions listed under `shadows` with the "
            "primary's",
        )
    return parse_object(STRATEGY_TYPES[kind], value, path, ignore=("type",))


def with_default_version(strategy: Strategy, only_version: str | None, path: str) -> Strategy:
    """`recreate` and `rolling` may omit `version` when the endpoint has exactly one."""
    if isinstance(strategy, (Recreate, Rolling)) and strategy.version is None:
        if only_version is None:
            raise ConfigError(
                f"{path}.version",
                "nothing",
                "the version to run (required when the endpoint has more than one version)",
            )
        return dataclasses.replace(strategy, version=only_version)
    return strategy


def check_backend(strategy: Strategy, backend: str, path: str, backend_path: str) -> None:
    if backend == "knative" and isinstance(strategy, Bandit):
        raise ConfigError(
            f"{path}.type",
            f"'bandit' with backend 'knative' ({backend_path})",
            "bandit with backend istio only: the experiment agent patches a VirtualService whose destinations set "
            "x-turnout-version on each answer; a Knative Route sets no response header per revision",
        )
    if backend == "knative" and isinstance(strategy, Interleaved):
        raise ConfigError(
            f"{path}.type",
            f"'interleaved' with backend 'knative' ({backend_path})",
            "interleaved with backend istio only: the VirtualService sends the experiment's share to the experiment "
            "agent, which calls each version directly; a Knative Route sends traffic to its revisions only",
        )
    if strategy.TYPE not in BACKEND_STRATEGIES[backend]:
        supported = ", ".join(sorted(BACKEND_STRATEGIES[backend]))
        raise ConfigError(
            f"{path}.type",
            f"{strategy.TYPE!r} with backend {backend!r} ({backend_path})",
            f"with backend {backend}: {supported}; use backend istio for {strategy.TYPE}",
        )
    if backend == "knative" and isinstance(strategy, Canary) and strategy.sticky is not None:
        raise ConfigError(
            f"{path}.sticky",
            "a sticky canary with backend 'knative'",
            "sticky canaries with backend istio only (Knative has no cookie routing)",
        )
    if backend == "knative" and isinstance(strategy, Canary) and strategy.progressive is not None:
        raise ConfigError(
            f"{path}.progressive",
            "a progressive canary with backend 'knative'",
            "progressive canaries with backend istio only (Flagger's Istio provider)",
        )
    if backend == "knative" and isinstance(strategy, AbTest) and strategy.reward is not None:
        raise ConfigError(
            f"{path}.reward",
            f"a rewarded ab-test with backend 'knative' ({backend_path})",
            "ab-test rewards with backend istio only: answers carry x-turnout-version set per destination by the "
            "VirtualService; a Knative Route sets no response header per revision",
        )
    if backend == "knative" and isinstance(strategy, AbTest) and strategy.segment is not None:
        raise ConfigError(
            f"{path}.segment",
            "a header segment with backend 'knative'",
            "header segments with backend istio only (Knative routes by weight and tag)",
        )
    if backend == "knative" and isinstance(strategy, (BlueGreen, DarkLaunch)):
        check_knative_opt_in(strategy, path)


def check_knative_opt_in(strategy: BlueGreen | DarkLaunch, path: str) -> None:
    """A Knative Route reaches a version at 0% only by its tag: the header's name and value are Knative's."""
    key, written, hidden = (
        ("previewHeader", strategy.preview_header, strategy.preview)
        if isinstance(strategy, BlueGreen)
        else ("header", strategy.header, strategy.dark)
    )
    if written not in (None, KNATIVE_TAG_HEADER):
        raise ConfigError(
            f"{path}.{key}",
            f"{written!r} with backend 'knative'",
            f"no {key} with backend knative: Knative routes {hidden} by its own header, `Knative-Serving-Tag: "
            f"{hidden}` (its Route tag), or at the tag's host `{hidden}-<endpoint>.<domain>`; use backend istio "
            "for a header of your own",
        )
    if isinstance(strategy, BlueGreen) and strategy.progressive is not None:
        raise ConfigError(
            f"{path}.progressive",
            "a progressive blue-green with backend 'knative'",
            "progressive blue-green with backend istio only (Flagger's Istio provider)",
        )
