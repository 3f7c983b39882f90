"""turnout/offline/provider_imports.py: the console script imports the provider packages with deferred annotations,
and nothing a plan produces changes.

The comparisons run the deferred side in a child process (the import hook changes how a whole process imports
those packages) and the eager side here, where the packages load as they do under `pulumi up`."""

from __future__ import annotations

import ast
import filecmp
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import types
import typing
from pathlib import Path

import pytest

from tests.conftest import REPO
from turnout.offline import provider_imports


def _child_env() -> dict[str, str]:
    """The child may write its bytecode cache (an environment that forbids it gets the packages as usual)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _child(script: str, *, hooked: bool) -> object:
    """Run `script` in a child, with the hook installed or importing the packages as usual; it prints one JSON
    document, returned here."""
    prelude = "import json, sys\n"
    if hooked:
        prelude += "from turnout.offline import provider_imports\nprovider_imports.install()\n"
    return _json_of(prelude + textwrap.dedent(script))


def _json_of(code: str, *args: str, env: dict[str, str] | None = None) -> object:
    """Run `code` in a child Python with `args`; the one JSON document it prints."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        env=env or _child_env(),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def _deferred(script: str) -> object:
    return _child(script, hooked=True)


def _where(value: object) -> str:
    if isinstance(value, types.ModuleType):
        return f"module {value.__name__}"
    return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', type(value).__qualname__)}"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # deprecated EC2 resources warn when imported
@pytest.mark.parametrize("package", ["pulumi_aws.ec2", "pulumi_aws.iam", "pulumi_aws.route53"])
def test_a_lazy_package_serves_every_name_its_star_imports_would(package):
    """Each public name of the package imported as usual (classes, functions and submodules) is the same
    object under the hook (same defining module and name), is listed by dir(), and a star import of the
    package binds the same names; only what was used is loaded."""
    eager = importlib.import_module(package)
    expected = {name: _where(getattr(eager, name)) for name in dir(eager) if not name.startswith("_")}
    star: dict[str, object] = {}
    exec(f"from {package} import *", star)  # noqa: S102 — what a user's star import binds
    lazy = _deferred(
        f"""
        import importlib, types
        package = importlib.import_module({package!r})
        assert hasattr(package, "_turnout_served"), "the package was imported as usual"
        loaded_first = sum(name.startswith({package!r} + ".") for name in sys.modules)
        def where(value):
            if isinstance(value, types.ModuleType):
                return "module " + value.__name__
            return getattr(value, "__module__", "?") + "." + getattr(value, "__qualname__", type(value).__qualname__)
        listed = [n for n in dir(package) if not n.startswith("_")]
        names = {{n: where(getattr(package, n)) for n in {sorted(expected)!r}}}
        star = {{}}
        exec("from {package} import *", star)
        print(json.dumps({{"loaded first": loaded_first, "listed": listed, "names": names,
                          "star": sorted(n for n in star if n != "__builtins__")}}))
        """
    )
    assert lazy["names"] == expected
    assert set(expected) <= set(lazy["listed"])
    assert lazy["star"] == sorted(name for name in star if name != "__builtins__")
    eager_modules = sum(name.startswith(f"{package}.") for name in sys.modules)
    assert lazy["loaded first"] < eager_modules


@pytest.mark.parametrize(
    "first",
    [
        "import pulumi_aws.ec2.get_vpc\nimport pulumi_aws.ec2.vpc\nimport pulumi_aws.ec2 as ec2",
        "import pulumi_aws.ec2 as ec2\nec2.Vpc\nimport pulumi_aws.ec2.get_vpc\nimport pulumi_aws.ec2.vpc",
    ],
    ids=["modules by path first", "package first"],
)
def test_modules_imported_by_path_give_the_package_the_attributes_they_give_it_as_usual(first):
    """Importing a function or resource module by its path, before or after the package is used, leaves the
    package's attributes what it leaves them without the hook (pulumi_aws's own lazy subpackages make the
    first order bind the module `get_vpc`, not the function; the hook keeps that too)."""
    script = first + textwrap.dedent(
        """
        def where(value):
            if isinstance(value, type(sys)):
                return "module " + value.__name__
            return f"{value.__module__}.{value.__name__}"
        print(json.dumps({name: where(getattr(ec2, name)) for name in ("get_vpc", "vpc", "Vpc", "VpcArgs")}))
        """
    )
    assert _deferred(script) == _child(script, hooked=False)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # importing every EC2 resource warns about deprecated ones
def test_deferred_annotations_resolve_to_the_types_the_sdk_reads_when_evaluated():
    """What the SDK derives from the annotations (each property's type, for every input, output and resource
    class of the modules a stack uses) is the same, and so is the ARC argument check that reads them."""
    modules = [
        "pulumi_aws.ec2._inputs",
        "pulumi_aws.ec2.outputs",
        "pulumi_aws.ec2.vpc",
        "pulumi_aws.eks.cluster",
        "pulumi_aws.arcregionswitch._inputs",
        "pulumi_kubernetes.core.v1._inputs",
        "pulumi_kubernetes.core.v1.outputs",
        "pulumi_kubernetes.apps.v1.Deployment",
    ]
    script = f"""
        import importlib, inspect, pulumi
        from pulumi import _types
        from components.dr import arc
        from pulumi_aws.arcregionswitch import _inputs as arc_inputs
        result = {{}}
        for name in {modules!r}:
            getattr(importlib.import_module(name.rpartition(".")[0]), "__all__", None)  # the package first
            module = importlib.import_module(name)
            assert "from __future__" not in inspect.getsource(module)[:2000]
            for attr, cls in sorted(vars(module).items()):
                if not inspect.isclass(cls) or cls.__module__ != name:
                    continue
                if _types.is_input_type(cls) or _types.is_output_type(cls) or issubclass(cls, pulumi.Resource):
                    types = _types._types_from_py_properties(cls)
                    result[name + "." + attr] = {{k: repr(v) for k, v in sorted(types.items())}}
        bad = {{"workflow_target_action": "activate", "stepz": []}}
        result["arc check"] = arc.plan_argument_problems(bad, arc_inputs.PlanWorkflowArgsDict, "workflows")
        result["deferred"] = isinstance(arc_inputs.PlanWorkflowArgsDict.__annotations__["steps"], str) or repr(
            arc_inputs.PlanWorkflowArgsDict.__annotations__["steps"]).startswith("ForwardRef")
        print(json.dumps(result))
    """
    deferred = _deferred(script)
    assert deferred.pop("deferred") is True, "the child imported the provider modules as usual"

    import inspect

    import pulumi
    from pulumi import _types
    from pulumi_aws.arcregionswitch import _inputs as arc_inputs

    from components.dr import arc

    eager: dict[str, object] = {}
    for name in modules:
        # The package first, as a program uses it (reading an attribute loads pulumi_aws's lazy subpackages; __dict__
        # does not): importing pulumi_aws.eks.cluster by its path while pulumi_aws.eks is not loaded yet leaves that
        # package without `Cluster` for the rest of the process (the module, half run, is star-imported by it).
        getattr(importlib.import_module(name.rpartition(".")[0]), "__all__", None)
        module = importlib.import_module(name)
        for attr, cls in sorted(vars(module).items()):
            if not inspect.isclass(cls) or cls.__module__ != name:
                continue
            if _types.is_input_type(cls) or _types.is_output_type(cls) or issubclass(cls, pulumi.Resource):
                eager[f"{name}.{attr}"] = {k: repr(v) for k, v in sorted(_types._types_from_py_properties(cls).items())}
    bad = {"workflow_target_action": "activate", "stepz": []}
    eager["arc check"] = arc.plan_argument_problems(bad, arc_inputs.PlanWorkflowArgsDict, "workflows")
    assert len(eager) > 1000
    assert "workflows.stepz: not an input of PlanWorkflowArgsDict" in eager["arc check"]
    assert deferred == eager


def test_every_bundled_stack_plans_byte_identically_with_and_without(tmp_path):
    """`turnout plan --all` as the console script runs it (hook installed) against the same plan with the
    packages imported as usual: every file of every stack is the same. That the hook was at work shows in its
    cache: a module every plan imports, its cache removed first, is compiled by it again."""
    hooked, plain = tmp_path / "hooked", tmp_path / "plain"
    runs = {
        hooked: [sys.executable, "-m", "turnout.cli", "plan", "--all", "--out", str(hooked)],
        plain: [
            sys.executable,
            "-c",
            "import sys; from turnout import cli; sys.exit(cli.main(sys.argv[1:]))",
            "plan",
            "--all",
            "--out",
            str(plain),
        ],
    }
    from pulumi_kubernetes.core.v1 import ConfigMap  # a module every plan imports

    cache = Path(provider_imports.bytecode_path(sys.modules[ConfigMap.__module__].__file__))
    cache.unlink(missing_ok=True)
    for command in runs.values():
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=900, env=_child_env())
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert cache.exists(), "the console script imported the provider packages as usual"

    def differences(comparison: filecmp.dircmp) -> list[str]:
        found = [*comparison.left_only, *comparison.right_only, *comparison.funny_files]
        _, mismatch, errors = filecmp.cmpfiles(comparison.left, comparison.right, comparison.common_files, False)
        found += mismatch + errors
        for sub in comparison.subdirs.values():
            found += differences(sub)
        return found

    comparison = filecmp.dircmp(hooked, plain)
    assert len(comparison.common_dirs) >= 11
    assert differences(comparison) == []


GENERATED = "# coding=utf-8\n# *** WARNING: this file was generated by pulumi-language-python. ***\n"


def _package(folder: Path, init: str, modules: dict[str, str]) -> Path:
    folder.mkdir()
    (folder / "__init__.py").write_text(init)
    for name, text in modules.items():
        (folder / f"{name}.py").write_text(text)
    return folder


PACKAGE_HEAD = GENERATED + "import builtins as _builtins\nfrom .. import _utilities\nimport typing\n"


def test_only_modules_whose_names_are_theirs_alone_are_left_for_first_use(tmp_path):
    """Shared modules, modules exporting a name another exports too (the last star import wins) and modules
    named like an export keep their line, in order; the others are served."""
    folder = _package(
        tmp_path / "pkg",
        PACKAGE_HEAD + "from ._enums import *\nfrom .a import *\nfrom .b import *\nfrom .c import *\n"
        "from .get_thing import *\nfrom ._inputs import *\nfrom . import outputs\n",
        {
            "_enums": "__all__ = ['Kind']\n",
            "a": "__all__ = ['X', 'OnlyA']\n",
            "b": "__all__ = [\n    'X',\n]\n",
            "c": "__all__ = ['C', 'CArgs']\n",
            "get_thing": "__all__ = ['get_thing', 'GetThingResult']\n",
            "_inputs": "__all__ = ['CInputArgs']\n",
        },
    )
    source = provider_imports.lazy_package_source((folder / "__init__.py").read_text(), str(folder))
    assert source is not None
    kept = [line for line in source.splitlines() if line.startswith(("from ", "import ")) and "turnout" not in line]
    assert kept == [
        "import builtins as _builtins",
        "from .. import _utilities",
        "import typing",
        "from ._enums import *",
        "from .a import *",
        "from .b import *",
        "from .get_thing import *",
        "from ._inputs import *",
        "from . import outputs",
    ]
    assert "_turnout_served = {'C': 'c', 'CArgs': 'c'}" in source
    assert "_turnout_modules = ['c']" in source
    (listed,) = [line for line in source.splitlines() if line.startswith("__all__ = ")]
    assert ast.literal_eval(listed.removeprefix("__all__ = ")) == [
        *("C", "CArgs", "CInputArgs", "GetThingResult", "Kind", "OnlyA", "X"),
        *("a", "b", "c", "get_thing", "outputs", "typing"),
    ]


@pytest.mark.parametrize(
    "init, modules",
    [
        ("from .a import *\nfoo = 1\n", {"a": "__all__ = ['X']\n"}),  # more than star imports
        ("from .a import *\n", {"a": "X = 1\n"}),  # no __all__: every public name, unknown here
        ("from .a import *\n", {"a": "__all__ = ['X']\n__all__ += ['Y']\n"}),  # __all__ built up
        ("from .a import *\n", {"a": "__all__ = ['X'] + OTHER\n"}),  # not a literal
        ("from .sub import *\n", {}),  # a subpackage or a compiled module
        ("from .a import *\nfrom .b import *\n", {"a": "__all__ = ['X']\n", "b": "__all__ = ['X']\n"}),  # shared
        ("from .get_x import *\n", {"get_x": "__all__ = ['get_x']\n"}),  # named like its export
        ("from . import outputs\n", {}),  # nothing to serve
    ],
)
def test_a_package_with_nothing_to_serve_safely_loads_as_usual(tmp_path, init, modules):
    folder = _package(tmp_path / "pkg", PACKAGE_HEAD + init, modules)
    assert provider_imports.lazy_package_source((folder / "__init__.py").read_text(), str(folder)) is None


def _load(name: str, path: Path) -> types.ModuleType:
    loader = provider_imports._Loader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_generated_modules_defer_annotations_and_a_changed_source_is_compiled_again(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    path = tmp_path / "generated_module.py"
    path.write_text(GENERATED + "def f(x: Undefined) -> int:\n    return 1\n")
    first = _load("generated_module", path)
    assert first.f.__annotations__ == {"x": "Undefined", "return": "int"}  # never evaluated: no NameError
    assert Path(provider_imports.bytecode_path(str(path))).exists()
    assert _load("generated_module", path).f.__annotations__["x"] == "Undefined"  # from the cache
    path.write_text(GENERATED + "def f(x: int) -> str:\n    return 'changed'\n")
    assert _load("generated_module", path).f(1) == "changed"  # another size: the stamp no longer matches


def test_code_cached_by_another_turnout_is_compiled_again(tmp_path, monkeypatch):
    """The cache records which turnout compiled it: an upgrade that compiles differently never reads the old."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    path = tmp_path / "generated_module.py"
    path.write_text(GENERATED + "VALUE = 1\n")
    assert _load("generated_module", path).VALUE == 1
    cache = Path(provider_imports.bytecode_path(str(path)))
    stale = cache.read_bytes()
    monkeypatch.setattr(provider_imports, "_COMPILER", b"another!")
    cache.write_bytes(stale.replace(b"VALUE", b"OTHER"))  # what an older turnout would have left
    assert _load("generated_module", path).VALUE == 1
    assert cache.read_bytes().startswith(provider_imports._stamp(str(path)))


def test_hand_written_modules_keep_their_annotations_evaluated(tmp_path):
    path = tmp_path / "hand_written.py"
    path.write_text("def f(x: int) -> str:\n    return ''\n")
    assert _load("hand_written", path).f.__annotations__ == {"x": int, "return": str}


def test_where_bytecode_may_not_be_written_and_none_is_cached_modules_load_as_usual(monkeypatch, tmp_path):
    """Compiling on every plan would cost more than it saves: without a usable cache that can be written, a
    generated module loads as it does without the hook (annotations evaluated), and no cache appears."""
    path = tmp_path / "generated_module.py"
    path.write_text(GENERATED + "def f(x: int) -> str:\n    return ''\n")
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    assert _load("generated_module", path).f.__annotations__ == {"x": int, "return": str}
    assert not Path(provider_imports.bytecode_path(str(path))).exists()
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    assert _load("generated_module", path).f.__annotations__ == {"x": "int", "return": "str"}
    assert Path(provider_imports.bytecode_path(str(path))).exists()
    assert type(provider_imports._Finder().find_spec("pulumi_random", None).loader) is provider_imports._Loader


def test_other_packages_are_not_touched():
    assert provider_imports._Finder().find_spec("yaml", None) is None
    assert provider_imports._Finder().find_spec("pulumi", None) is None


def test_requests_loads_when_first_used_not_when_the_kubernetes_yaml_module_imports_it():
    """pulumi_kubernetes.yaml imports requests for `requests.get` of a manifest URL, which a plan never makes:
    under the hook, requests and urllib3 load on first use, and then work as usual."""
    result = _deferred(
        """
        import pulumi_kubernetes.yaml.yaml as k8s_yaml
        loaded_at_import = sorted(name for name in ("urllib3", "requests.sessions") if name in sys.modules)
        get = k8s_yaml.requests.get  # first use
        print(json.dumps({
            "loaded at import": loaded_at_import,
            "get": f"{get.__module__}.{get.__name__}",
            "loaded after use": sorted(name for name in ("urllib3", "requests.sessions") if name in sys.modules),
        }))
        """
    )
    assert result == {
        "loaded at import": [],
        "get": "requests.api.get",
        "loaded after use": ["requests.sessions", "urllib3"],
    }


def test_typing_compiles_each_annotation_text_once_and_resolves_it_as_before():
    """Deferred annotations are wrapped in a new typing.ForwardRef each time they are resolved, and each one
    compiles its text: under the hook, the same text shares one (immutable) code object, resolves to the same
    type, and a text that is not an expression is still refused as typing refuses it."""
    result = _deferred(
        """
        import typing
        first, second = typing.ForwardRef("Optional[Sequence[int]]"), typing.ForwardRef("Optional[Sequence[int]]")
        namespace = {"Optional": typing.Optional, "Sequence": typing.Sequence}
        try:
            typing.ForwardRef("not an expression")
            refused = None
        except SyntaxError as err:
            refused = str(err)
        print(json.dumps({
            "shared": first.__forward_code__ is second.__forward_code__,
            "resolved": repr(first._evaluate(namespace, None, frozenset())),
            "refused": refused,
            "other calls": typing.compile("1 + 1", "<string>", "eval", 0, True, 2).co_consts == (2,),
        }))
        """
    )
    import typing

    assert typing.ForwardRef("x").__forward_code__ is not typing.ForwardRef("x").__forward_code__  # not here
    assert result == {
        "shared": True,
        "resolved": repr(typing.Optional[typing.Sequence[int]]),  # noqa: UP045 — the text the child resolved
        "refused": "Forward reference must be an expression -- got 'not an expression'",
        "other calls": True,
    }


_ANNOTATION_RUN = """
    import marshal, typing
    from turnout.offline import provider_imports
    provider_imports.kept_code_path = lambda: sys.argv[1]
    texts = ["Optional[Sequence[int]]", "Mapping[str, Optional[float]]"]
    namespace = {"Optional": typing.Optional, "Sequence": typing.Sequence, "Mapping": typing.Mapping}
    resolved = [repr(typing.ForwardRef(text)._evaluate(namespace, None, frozenset())) for text in texts]
    same = all(
        typing.ForwardRef(text).__forward_code__ == compile(text, "<string>", "eval", dont_inherit=True)
        for text in texts
    )
    compiled = provider_imports._compiled_texts
    provider_imports.keep_compiled_code()
    print(json.dumps({"resolved": resolved, "same code": same, "compiled": compiled}))
"""


def _annotation_run(path: Path, *, env: dict[str, str] | None = None) -> dict:
    prelude = "import json, sys\nfrom turnout.offline import provider_imports\nprovider_imports.install()\n"
    return _json_of(prelude + textwrap.dedent(_ANNOTATION_RUN), str(path), env=env)


def test_annotation_code_is_kept_for_the_next_plan_and_resolves_as_compiled(tmp_path):
    kept = tmp_path / "__pycache__" / "annotations.marshal"
    first = _annotation_run(kept)
    assert first["compiled"] >= 2 and first["same code"] is True
    assert kept.read_bytes().startswith(importlib.util.MAGIC_NUMBER)
    second = _annotation_run(kept)
    assert second == {**first, "compiled": 0}
    assert second["resolved"] == [
        repr(typing.Optional[typing.Sequence[int]]),  # noqa: UP045 — the texts the children resolved
        repr(typing.Mapping[str, typing.Optional[float]]),  # noqa: UP045, UP006
    ]


@pytest.mark.parametrize("found", [b"not marshal data", b"\x00\x00\x00\x00" + b"{}", "another interpreter"])
def test_unusable_kept_annotation_code_is_compiled_again_and_replaced(tmp_path, found):
    kept = tmp_path / "annotations.marshal"
    if found == "another interpreter":
        found = (int.from_bytes(importlib.util.MAGIC_NUMBER[:2], "little") + 1).to_bytes(2, "little") + b"\r\n{}"
    kept.write_bytes(found)
    assert _annotation_run(kept)["compiled"] >= 2
    assert _annotation_run(kept)["compiled"] == 0


def test_no_annotation_code_is_kept_where_bytecode_is_not_written(tmp_path):
    kept = tmp_path / "annotations.marshal"
    assert _annotation_run(kept, env={**_child_env(), "PYTHONDONTWRITEBYTECODE": "1"})["compiled"] >= 2
    assert not kept.exists()


_DATACLASS_RUN = """
    import dataclasses, json, sys
    from turnout.offline import provider_imports
    if sys.argv[2] == "hooked":
        provider_imports.kept_code_path = lambda: sys.argv[1]
        provider_imports.install()

    @dataclasses.dataclass(frozen=True, order=True)
    class Version:
        name: str
        weight: int = 0
        tags: list = dataclasses.field(default_factory=list, compare=False)

    @dataclasses.dataclass
    class Plain:
        a: int
        b: str = "x"

    def describe(code):
        return {
            "name": code.co_qualname, "file": code.co_filename, "flags": code.co_flags, "line": code.co_firstlineno,
            "code": code.co_code.hex(), "names": code.co_names, "variables": code.co_varnames,
            "lines": code.co_linetable.hex(), "arguments": [code.co_argcount, code.co_kwonlyargcount],
            "constants": [describe(c) if hasattr(c, "co_code") else repr(c) for c in code.co_consts],
        }

    methods = {
        f"{cls.__name__}.{name}": describe(method.__code__)
        for cls in (Version, Plain) for name, method in sorted(vars(cls).items()) if hasattr(method, "__code__")
    }
    first, second = Version("a", 2), Version("b", 1)
    try:
        first.weight = 3
        frozen = None
    except dataclasses.FrozenInstanceError as err:
        frozen = str(err)
    behaviour = [
        repr(first), first < second, first == Version("a", 2, ["other"]), hash(first) == hash(Version("a", 2)),
        frozen, Plain(1) == Plain(1, "x"), repr(Plain(2)), first.tags is not Version("c").tags,
    ]
    compiled = provider_imports._compiled_texts
    provider_imports.keep_compiled_code()
    print(json.dumps({"methods": methods, "behaviour": behaviour, "compiled": compiled}))
"""


def _dataclass_run(path: Path, how: str) -> dict:
    return _json_of(textwrap.dedent(_DATACLASS_RUN), str(path), how)


def test_dataclasses_compile_each_method_text_once_into_the_same_code(tmp_path):
    """Under the hook a dataclass's generated methods are the same code, and behave the same, as without it: the
    first run compiles their texts and keeps the code, the next one compiles none of them."""
    kept = tmp_path / "__pycache__" / "texts.marshal"
    usual = _dataclass_run(kept, "as usual")
    assert not kept.exists()
    first = _dataclass_run(kept, "hooked")
    assert first["methods"] == usual["methods"] and first["behaviour"] == usual["behaviour"]
    assert first["compiled"] >= len(usual["methods"]) == 13  # Version: 10 methods, Plain: 3
    second = _dataclass_run(kept, "hooked")
    assert second == {**first, "compiled": 0}
    assert usual["behaviour"] == [
        "Version(name='a', weight=2, tags=[])",
        True,
        True,
        True,
        "cannot assign to field 'weight'",
        True,
        "Plain(a=2, b='x')",
        True,
    ]


def test_library_callers_import_the_packages_as_usual():
    """Only the console script installs the hook (the identity test above runs it); importing turnout does not."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom turnout import cli\nfrom turnout.offline import planner\n"
            "print([type(f).__name__ for f in sys.meta_path])\n",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        env=_child_env(),
    )
    assert done.returncode == 0, done.stderr
    assert "_Finder" not in done.stdout
