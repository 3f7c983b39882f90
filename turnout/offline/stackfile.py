"""The project and its stack files, read the way the Pulumi CLI reads them.

A stack file is read strictly: whatever YAML 1.1 (PyYAML) and the Pulumi CLI (go-yaml v3) would
read differently, or would silently change, is refused with the file, the line and what to write
instead. That covers duplicate keys, keys that YAML reads as booleans, nulls or numbers
(`no:`, `~:`, `1:30:`), numbers whose text YAML changes (`010`, `0x1F`, `1_000`, `yes`), tags
other than the plain ones, encodings other than UTF-8, and namespaces that look like `turnout:`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from turnout.config import NAMESPACE, TOP_LEVEL_KEYS, key_path
from turnout.errors import ConfigError

OFFLINE_SECRET = "offline-placeholder-secret"
STACK_NAME = re.compile(r"[A-Za-z0-9_.-]+")  # what `pulumi stack init` accepts
STACK_FILE_KEYS = ("config", "secretsprovider", "encryptedkey", "encryptionsalt", "environment")
MAX_DEPTH = 64  # a stack file is a dozen levels deep; this stops runaway nesting long before Python's stack
MAX_VALUES = 100_000  # aliases may not expand a small file into millions of values ("billion laughs")
SAVE_AS_UTF8 = "UTF-8 text: save the file as UTF-8 (in most editors: Save with Encoding, UTF-8)"

_TAG = "tag:yaml.org,2002:"
_PLAIN_TAGS = {f"{_TAG}{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq", "merge")}
_CANONICAL = {  # the forms YAML 1.1 and YAML 1.2 (go-yaml v3, the Pulumi CLI) read the same way
    f"{_TAG}bool": re.compile(r"true|True|TRUE|false|False|FALSE"),
    f"{_TAG}int": re.compile(r"[-+]?(0|[1-9][0-9]*)"),
    f"{_TAG}float": re.compile(
        r"[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"
    ),
}
_READ_AS = {f"{_TAG}null": "null (nothing)"}


class UsageError(Exception):
    """Bad command-line use: unknown stack, missing project, conflicting flags."""


@dataclass(frozen=True)
class Project:
    root: Path
    name: str
    stack_dir: Path
    main: str

    def stacks(self) -> list[str]:
        return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in self.stack_dir.glob("Pulumi.*.yaml"))

    def stack_file(self, stack: str) -> Path:
        return self.stack_dir / f"Pulumi.{stack}.yaml"


def find_project(start: Path) -> Project:
    """The nearest Pulumi.yaml at or above `start`."""
    for directory in (start, *start.parents):
        candidate = directory / "Pulumi.yaml"
        if candidate.is_file():
            try:
                data = yaml.safe_load(candidate.read_text(encoding="utf-8")) or {}
            except (yaml.YAMLError, UnicodeDecodeError) as err:
                raise UsageError(f"{candidate} is not a readable Pulumi project file: {err}") from None
            if not isinstance(data, dict):
                raise UsageError(f"{candidate} is not a Pulumi project file: expected a mapping with `name:`")
            stack_dir = directory / str(data.get("stackConfigDir") or ".")
            main = str(data.get("main") or ".").strip("/") or "."
            return Project(directory, str(data.get("name", NAMESPACE)), stack_dir, main)
    raise UsageError(f"no Pulumi.yaml in {start} or any folder above it; run turnout inside the project")


@dataclass(frozen=True)
class StackSettings:
    """Config exactly as the Pulumi CLI hands it to a program: namespaced key → string."""

    config: dict[str, str]
    secret_keys: list[str]


def read_stack(project: Project, stack: str) -> StackSettings:
    path = project.stack_file(stack)
    if not path.is_file():
        available = ", ".join(project.stacks()) or "none"
        raise UsageError(f"no stack {stack!r}: {path.relative_to(project.root)} does not exist; stacks: {available}")
    raw = read_config_mapping(path, project.name)
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for full_key, value in raw.items():
        namespace, _, name = full_key.partition(":")
        if namespace == NAMESPACE and name not in TOP_LEVEL_KEYS:
            raise ConfigError(full_key, "an unknown key", "one of " + ", ".join(key_path(k) for k in TOP_LEVEL_KEYS))
        if isinstance(value, dict) and set(value) == {"secure"}:
            # Encrypted with the stack's secrets provider, which an offline plan cannot reach.
            config[full_key] = OFFLINE_SECRET
            secret_keys.append(full_key)
            continue
        config[full_key] = _as_cli_string(value)
    return StackSettings(config, secret_keys)


def read_config_mapping(path: Path, project_name: str) -> dict[str, Any]:
    """The `config:` mapping of a stack file, keys namespaced (`tier` → `turnout:tier`), values plain
    Python (str, int, float, bool, None, list, dict), every check of the module docstring passed."""
    text = _decode(path)
    node = _compose(text, path.name)
    if node is None:
        raise ConfigError(
            path.name,
            "an empty file",
            "a stack file with a `config:` mapping holding at least turnout:platform and turnout:endpoints",
        )
    _check_document(node, path.name, project_name)
    document = _construct(node, path.name)
    if not isinstance(document, dict):
        raise ConfigError(path.name, "a document that is not a mapping", "a YAML mapping with a `config:` key")
    raw = document.get("config") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path.name}: config", "something that is not a mapping", "a mapping of namespaced keys")
    return {_namespaced(key, project_name): value for key, value in raw.items()}


def _namespaced(key: str, project_name: str) -> str:
    return key if ":" in key else f"{project_name}:{key}"


# --- bytes to text ------------------------------------------------------------------------------

_WIDE_BOMS = {
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\xfe\xff": "UTF-16",
    b"\xff\xfe": "UTF-16",
}


def _decode(path: Path) -> str:
    data = path.read_bytes()
    for bom, encoding in _WIDE_BOMS.items():
        if data.startswith(bom):
            raise ConfigError(path.name, f"{encoding} text (it starts with a {encoding} byte-order mark)", SAVE_AS_UTF8)
    data = data.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark, which the Pulumi CLI strips too
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise ConfigError(
            f"{path.name} at line {line}",
            "NUL bytes (UTF-16 without a byte-order mark, or not text at all)",
            SAVE_AS_UTF8,
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ConfigError(
            f"{path.name} at line {line}",
            f"the byte 0x{data[err.start]:02x}, which is not UTF-8 (Latin-1 or Windows-1252 text, or not text at all)",
            SAVE_AS_UTF8,
        ) from None


# --- text to a node tree ----------------------------------------------------------------------------


class _StackLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a depth limit and without YAML 1.1's timestamps, which the Pulumi
    CLI reads as strings (`expires: 2027-01-31` stays the text it is)."""

    yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag != f"{_TAG}timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"values nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _compose(text: str, filename: str) -> Node | None:
    try:
        loader = _StackLoader(text)  # the reader refuses control characters right away
        try:
            return loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        raise _yaml_error(err, filename, text) from None


def _construct(node: Node, filename: str) -> Any:
    loader = _StackLoader("")
    try:
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        raise _yaml_error(err, filename, "") from None
    finally:
        loader.dispose()


def _yaml_error(err: yaml.YAMLError, filename: str, text: str) -> ConfigError:
    allowed = "a YAML document with a `config:` mapping"
    if isinstance(err, yaml.reader.ReaderError):
        line = text[: err.position].count("\n") + 1
        return ConfigError(
            f"{filename} at line {line}",
            f"the control character U+{err.character:04X}, which YAML does not allow",
            "printable text: remove the character",
        )
    mark = getattr(err, "problem_mark", None)
    where = f"{filename} at line {mark.line + 1}, column {mark.column + 1}" if mark else filename
    problem = getattr(err, "problem", None) or "text that is not valid YAML"
    if "'\\t'" in problem:
        return ConfigError(where, "a tab character", "spaces for indentation: YAML does not allow tabs there")
    if "levels deep" in problem:
        return ConfigError(where, problem, f"at most {MAX_DEPTH} levels of nesting")
    return ConfigError(where, f"text that is not valid YAML ({problem})", allowed)


# --- checks on the node tree --------------------------------------------------------------------


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _close_to(word: str, target: str, most: int = 2) -> bool:
    """Levenshtein distance at most `most` (case-insensitive)."""
    word, target = word.lower(), target.lower()
    previous = list(range(len(target) + 1))
    for i, letter in enumerate(word, start=1):
        current = [i]
        for j, wanted in enumerate(target, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (letter != wanted)))
        previous = current
    return previous[-1] <= most


def looks_like_turnout(namespace: str) -> bool:
    """`Turnout`, `turnot`, `turnuot`...: a key there was surely meant for turnout."""
    return namespace != NAMESPACE and _close_to(namespace, NAMESPACE)


def _check_document(node: Node, filename: str, project_name: str) -> None:
    if not isinstance(node, MappingNode):
        return  # reported once constructed: "a document that is not a mapping"
    checker = _Checker(filename, project_name)
    checker.check_mapping_keys(node, lambda key: f"{filename}: {key}")
    keys = {k.value: (k, v) for k, v in node.value if isinstance(k, ScalarNode)}
    for key, (key_node, _) in keys.items():
        near = [known for known in STACK_FILE_KEYS if key != known and _close_to(key, known)]
        if key not in STACK_FILE_KEYS and near:
            raise ConfigError(
                f"{filename}: {key}",
                f"the top-level key {key!r} ({checker.at(key_node)})",
                f"`{near[0]}:` (did you mean it?); a stack file's keys are " + ", ".join(STACK_FILE_KEYS),
            )
    if "config" not in keys:
        found = ", ".join(sorted(keys)) or "none"
        raise ConfigError(filename, f"no `config:` key (top-level keys: {found})", "a `config:` mapping of stack keys")
    config = keys["config"][1]
    if isinstance(config, MappingNode):
        checker.check_mapping_keys(config, lambda key: _namespaced(key, project_name))
        for key_node, value in config.value:
            if key_node.tag == f"{_TAG}merge":
                raise ConfigError(
                    f"{filename}: config",
                    f"a merge key (<<) directly under config: ({checker.at(key_node)})",
                    "stack keys written out one by one (anchors and merges are fine inside a key's value)",
                )
            full_key = _namespaced(key_node.value, project_name)
            namespace, _, name = full_key.partition(":")
            if looks_like_turnout(namespace):
                raise ConfigError(
                    full_key,
                    f"a key in namespace {namespace!r} ({checker.at(key_node)}), which looks like a misspelt turnout",
                    f"{key_path(name)} (turnout's keys live in the lowercase `turnout:` namespace)",
                )
            checker.check_value(value, full_key, strict=namespace == NAMESPACE)
    checker.check_size(node)


class _Checker:
    def __init__(self, filename: str, project_name: str) -> None:
        self.filename = filename
        self.project_name = project_name
        self.seen: set[int] = set()

    def at(self, node: Node) -> str:
        return f"line {_line(node)} of {self.filename}"

    def check_mapping_keys(self, node: MappingNode, path_of: Callable[[str], str]) -> None:
        first_line: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == f"{_TAG}merge":
                continue
            if not isinstance(key_node, ScalarNode):
                raise ConfigError(path_of("?"), f"a list or mapping used as a key ({self.at(key_node)})", "a name")
            if key_node.tag != f"{_TAG}str":
                reading = (
                    _reading(key_node)
                    if key_node.tag in _CANONICAL
                    else _READ_AS.get(key_node.tag, "a " + key_node.tag.removeprefix(_TAG))
                )
                shown = key_node.value or "(empty)"
                raise ConfigError(
                    path_of(shown),
                    f"the key {shown} ({self.at(key_node)}), which YAML reads as {reading}, not as a name",
                    f'the name in quotes, e.g. "{key_node.value}":',
                )
            if key_node.value in first_line:
                raise ConfigError(
                    path_of(key_node.value),
                    f"the key {key_node.value!r} twice (lines {first_line[key_node.value]} and {_line(key_node)} "
                    f"of {self.filename})",
                    "each key once per mapping (YAML would silently keep only the last one): remove or rename one",
                )
            first_line[key_node.value] = _line(key_node)

    def check_value(self, node: Node, path: str, strict: bool) -> None:
        """`strict`: turnout's own keys, where a value YAML reads differently from its text is refused."""
        if id(node) in self.seen:
            return  # an alias of a node already checked
        self.seen.add(id(node))
        if node.tag not in _PLAIN_TAGS:
            raise ConfigError(
                path,
                f"the tag {_short_tag(node.tag)} ({self.at(node)})",
                "plain YAML values (strings, numbers, true/false, lists, mappings) without tags",
            )
        if isinstance(node, MappingNode):
            if node.tag != f"{_TAG}map":
                raise ConfigError(path, f"a mapping tagged {_short_tag(node.tag)} ({self.at(node)})", "no tag")
            self.check_mapping_keys(node, lambda key: f"{path}.{key}")
            for key_node, value in node.value:
                self.check_value(value, path if key_node.tag == f"{_TAG}merge" else f"{path}.{key_node.value}", strict)
        elif isinstance(node, SequenceNode):
            if node.tag != f"{_TAG}seq":
                raise ConfigError(path, f"a list tagged {_short_tag(node.tag)} ({self.at(node)})", "no tag")
            for index, item in enumerate(node.value):
                self.check_value(item, f"{path}[{index}]", strict)
        else:
            self.check_scalar(node, path, strict)

    def check_scalar(self, node: ScalarNode, path: str, strict: bool) -> None:
        if node.tag in (f"{_TAG}map", f"{_TAG}seq", f"{_TAG}merge"):
            raise ConfigError(path, f"a plain value tagged {_short_tag(node.tag)} ({self.at(node)})", "no tag")
        implicit = _RESOLVER.resolve(ScalarNode, node.value, (True, False))
        if node.tag in (*_CANONICAL, f"{_TAG}null") and implicit != node.tag:
            raise ConfigError(
                path,
                f"{node.value!r} tagged {_short_tag(node.tag)} ({self.at(node)})",
                f"a value that {_short_tag(node.tag)} represents, or no tag",
            )
        if not strict or node.tag not in _CANONICAL:
            return
        if not _CANONICAL[node.tag].fullmatch(node.value):
            raise ConfigError(
                path,
                f"{node.value} ({self.at(node)}), which YAML 1.1 reads as {_reading(node)} "
                "(and the Pulumi CLI may read differently)",
                f'"{node.value}" in quotes to keep the text, or {_plain_form(node)} for the value',
            )
        if node.tag == f"{_TAG}float" and not _float_is_exact(node.value):
            raise ConfigError(
                path,
                f"{node.value} ({self.at(node)}), with more digits than a number keeps: it would become "
                f"{float(node.value)!r}",
                f'"{node.value}" in quotes, or at most 15 significant digits',
            )

    def check_size(self, root: Node) -> None:
        """Values and depth once aliases are expanded (as JSON encoding expands them); no alias cycles."""
        measured: dict[int, tuple[int, int]] = {}
        open_nodes: set[int] = set()

        def measure(node: Node) -> tuple[int, int]:
            if id(node) in open_nodes:
                raise ConfigError(self.filename, f"an alias inside its own anchor ({self.at(node)})", "values that end")
            if id(node) not in measured:
                open_nodes.add(id(node))
                children = (
                    [n for pair in node.value for n in pair]
                    if isinstance(node, MappingNode)
                    else (node.value if isinstance(node, SequenceNode) else [])
                )
                count, depth = 1, 1
                for child_node in children:
                    child_count, child_depth = measure(child_node)
                    count, depth = min(count + child_count, MAX_VALUES + 1), max(depth, child_depth + 1)
                    if depth > MAX_DEPTH:
                        raise ConfigError(
                            self.filename,
                            f"values nested more than {MAX_DEPTH} levels deep once aliases are expanded "
                            f"({self.at(node)})",
                            "a flatter stack file",
                        )
                open_nodes.discard(id(node))
                measured[id(node)] = (count, depth)
            return measured[id(node)]

        if measure(root)[0] > MAX_VALUES:
            raise ConfigError(
                self.filename,
                f"aliases that expand to more than {MAX_VALUES} values",
                "a stack file whose anchors and aliases repeat only small parts",
            )


class _StackResolver(yaml.resolver.Resolver):
    yaml_implicit_resolvers = _StackLoader.yaml_implicit_resolvers


_RESOLVER = _StackResolver()


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag


def _reading(node: ScalarNode) -> str:
    value = yaml.constructor.SafeConstructor().construct_object(node)
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    return f"the number {value!r}"


def _plain_form(node: ScalarNode) -> str:
    value = yaml.constructor.SafeConstructor().construct_object(node)
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value)


def _float_is_exact(text: str) -> bool:
    try:
        written = Decimal(text)
    except InvalidOperation:
        return True  # .inf / .nan: refused by the key's own check
    return not written.is_finite() or written == Decimal(repr(float(text)))


# --- values as the CLI hands them over -----------------------------------------------------------


def _as_cli_string(value: Any) -> str:
    """Scalars as the CLI prints them; objects and lists JSON-encoded (what `pulumi.Config` decodes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if value is None:
        return ""
    return str(value)
