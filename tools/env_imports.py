"""Which third-party distributions each rule's script needs, found statically (AST).

``python tools/env_imports.py`` prints, for every rule with a ``script:``, its conda env,
the distributions its code reaches, and what the env lacks; ``tests/test_envs.py`` asserts
that nothing is lacking and that every env is the smallest one in ``envs/`` that covers
its rules.

How an import counts (sound for catclean's code, cheaper than "every import of every
module the script touches", which would give every rule TensorFlow):

- A rule's roots are its script's statements and every ``catclean`` name the script
  imports.
- Importing a module runs its body: its module-level imports count, and so do the parent
  packages' ``__init__`` bodies. Names its body refers to (registries, decorators, default
  values) are reached too.
- A reached function reaches every import inside it (lazy, function-level imports count)
  and every module-level name it refers to: functions and classes of its module, and
  ``catclean`` names imported into it (``from .x import f`` reaches ``x.f``;
  ``from . import x`` then ``x.f`` reaches ``x.f``; a bare module object reaches all of
  ``x``).
- A reached class reaches all its methods.
- One gate: ``catclean.runtime.setup_tensorflow`` (which imports TensorFlow) is reached
  only by a script that calls ``rule_setup(snakemake, tensorflow=True)``.
- Some distributions need another one that is not imported by name: Keras 3 needs its
  TensorFlow backend (``IMPLIED``).

Dynamic imports (``importlib.import_module``, ``__import__``) in reached code are reported
as errors, so the analysis cannot silently under-count.

Usage::

    python tools/env_imports.py                      # every rule: env, smallest envs, needs
    python tools/env_imports.py why RULE DIST        # the import chain that needs DIST
    # dynamic cross-check: run rules with an import trace, then compare
    CATCLEAN_IMPORT_TRACE=/tmp/trace PYTHONPATH=src:tools/import_trace snakemake ...
    python tools/env_imports.py trace /tmp/trace

The trace of the catalog side (hosts ... assemble, score_shreds) found two needs that no
import names: scipy for astropy.cosmology and for match_coordinates_sky
(``IMPLIED_BY_MODULE``); everything else it loaded comes with a declared distribution.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
STDLIB = set(sys.stdlib_module_names) | {"__future__"}

# import name -> distribution name (PyPI spelling, normalized); the env files use conda
# names, mapped with CONDA_TO_PYPI
IMPORT_TO_DIST = {
    "numpy": "numpy",
    "scipy": "scipy",
    "pandas": "pandas",
    "pyarrow": "pyarrow",
    "astropy": "astropy",
    "astropy_healpix": "astropy-healpix",
    "galsim": "galsim",
    "sep": "sep",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "matplotlib": "matplotlib",
    "PIL": "pillow",
    "yaml": "pyyaml",
    "jsonschema": "jsonschema",
    "referencing": "referencing",
    "tqdm": "tqdm",
    "requests": "requests",
    "pyvo": "pyvo",
    "tensorflow": "tensorflow-cpu",
    "keras": "keras",
    "threadpoolctl": "threadpoolctl",
    "dask": "dask",
    "minisom": "minisom",
    "duckdb": "duckdb",
    "astroquery": "astroquery",
    "urllib3": "urllib3",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime",
    "tf2onnx": "tf2onnx",
    "numba": "numba",
    "llvmlite": "llvmlite",
}
# distribution -> distributions it needs at run time without importing them by name
IMPLIED = {
    "keras": {"tensorflow-cpu"},  # Keras 3's backend (KERAS_BACKEND=tensorflow)
    "pandas": {"pyarrow"},  # pandas reads and writes the pipeline's Parquet with pyarrow
}
# module -> distributions it needs that its distribution does not declare (found by running
# the rules with an import trace: astropy.cosmology integrates with scipy, an optional
# dependency of astropy)
IMPLIED_BY_MODULE = {
    "astropy.cosmology": {"scipy"},
    "astropy.coordinates.match_coordinates_sky": {"scipy"},  # a scipy KD-tree
    "astropy.coordinates.search_around_sky": {"scipy"},
}
# distribution -> the env-file entry that installs it as a dependency
PROVIDED_BY = {"referencing": "jsonschema", "urllib3": "requests"}
CONDA_TO_PYPI = {"matplotlib-base": "matplotlib"}
GATES = {("catclean.runtime", "setup_tensorflow"): "tensorflow"}


def norm(name: str) -> str:
    """PEP 503 normalized distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def module_file(name: str) -> Path | None:
    """Source file of catclean module ``name`` (package ``__init__`` or ``.py``), or None."""
    path = SRC.joinpath(*name.split("."))
    if (path / "__init__.py").exists():
        return path / "__init__.py"
    if path.with_suffix(".py").exists():
        return path.with_suffix(".py")
    return None


def _resolve(module: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_type_checking(node: ast.stmt) -> bool:
    """``if TYPE_CHECKING:`` blocks never run."""
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


@dataclass
class Unit:
    """A reachable piece of code: a module body, a top-level function or class."""

    third: set[str] = field(default_factory=set)  # top-level third-party import names
    refs: set[tuple[str, str | None]] = field(default_factory=set)  # (module, name|None=all)
    dynamic: list[str] = field(default_factory=list)


class Module:
    """One catclean module split into its body and its top-level definitions."""

    def __init__(self, name: str, path: Path):
        self.name, self.path = name, path
        self.is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), filename=str(path))
        self.defs = {n.name: n for n in tree.body
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        # module-level bindings: name -> ("mod", module) | ("name", module, attr)
        self.bindings: dict[str, tuple] = {}
        self.units: dict[str | None, Unit] = {}
        body_nodes = []
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                body_nodes += node.decorator_list
                if not isinstance(node, ast.ClassDef):
                    body_nodes += [d for d in node.args.defaults + node.args.kw_defaults if d]
            elif _is_type_checking(node):
                continue
            else:
                body_nodes.append(node)
        self.units[None] = self._unit(body_nodes, self.bindings, top=True)
        for name, node in self.defs.items():
            self.units[name] = self._unit([node], dict(self.bindings), top=False)

    def _bind_import(self, node, table: dict, unit: Unit) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top == "catclean":
                    if alias.asname:
                        table[alias.asname] = ("mod", alias.name)
                    else:
                        table["catclean"] = ("mod", "catclean")
                    unit.refs.add((alias.name, "<body>"))
                elif top not in STDLIB:
                    unit.third.add(alias.name)
            return
        target = _resolve(self.name, self.is_pkg, node)
        top = target.split(".")[0]
        if top == "catclean":
            unit.refs.add((target, "<body>"))
            for alias in node.names:
                bound = alias.asname or alias.name
                sub = f"{target}.{alias.name}"
                if module_file(sub):
                    table[bound] = ("mod", sub)
                    unit.refs.add((sub, "<body>"))
                else:
                    table[bound] = ("name", target, alias.name)
        elif top and top not in STDLIB:
            unit.third.update([target] + [f"{target}.{alias.name}" for alias in node.names])

    def _unit(self, nodes, table: dict, top: bool) -> Unit:
        unit = Unit()
        for root in nodes:
            for node in ast.walk(root):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    self._bind_import(node, self.bindings if top else table, unit)
        used_attrs: dict[str, set[str]] = {}
        bare: set[str] = set()
        for root in nodes:
            for node in ast.walk(root):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                    used_attrs.setdefault(node.value.id, set()).add(node.attr)
                elif isinstance(node, ast.Name):
                    bare.add(node.id)
                    if node.id == "__import__":
                        unit.dynamic.append(f"{self.name}: __import__")
                if (isinstance(node, ast.Attribute) and node.attr == "import_module"):
                    unit.dynamic.append(f"{self.name}: importlib.import_module")
        self._pending = getattr(self, "_pending", [])
        self._pending.append((unit, table, used_attrs, bare))
        return unit

    def finish(self) -> None:
        """Resolve name references once all module-level bindings are known."""
        for unit, table, used_attrs, bare in self._pending:
            table = {**self.bindings, **table}
            for name in bare:
                if name in self.defs:
                    unit.refs.add((self.name, name))
                elif name in table:
                    kind, *rest = table[name]
                    if kind == "name":
                        unit.refs.add((rest[0], rest[1]))
                    else:
                        attrs = used_attrs.get(name)
                        # m.f reaches m.f (and the body of m.f when m.f is a module)
                        for attr in attrs or []:
                            unit.refs.add((rest[0], attr))
                        unit.refs.add((rest[0], "<body>"))
        self._pending = []


class Graph:
    """Lazy cache of parsed catclean modules and the reachability walk."""

    def __init__(self):
        self.modules: dict[str, Module | None] = {}

    def module(self, name: str) -> Module | None:
        if name not in self.modules:
            path = module_file(name)
            self.modules[name] = Module(name, path) if path else None
            if self.modules[name]:
                self.modules[name].finish()
        return self.modules[name]

    def chain(self, unit: tuple[str, str | None]) -> list[str]:
        """How the last :meth:`reach` got to ``unit``: root first."""
        out = []
        while unit is not None:
            out.append(unit[0] if unit[1] == "<body>" else f"{unit[0]}.{unit[1]}")
            unit = self.parent.get(unit)
        return out[::-1]

    def reach(self, roots: set[tuple[str, str | None]], gates: set[str]) -> tuple[dict, list]:
        """Third-party import names reached from ``roots`` -> the units that import them."""
        seen: set[tuple[str, str | None]] = set()
        self.parent = {root: None for root in roots}
        todo = list(roots)
        found: dict[str, set[str]] = {}
        dynamic: list[str] = []
        while todo:
            mod, name = todo.pop()
            if (mod, name) in seen:
                continue
            seen.add((mod, name))
            if name == "<body>":
                parts = mod.split(".")
                for i in range(1, len(parts)):  # parents' __init__ run first
                    self.parent.setdefault((".".join(parts[:i]), "<body>"), (mod, name))
                    todo.append((".".join(parts[:i]), "<body>"))
                module = self.module(mod)
                if module is None:
                    # `from pkg import name`: name lives in pkg/__init__ (or is a module)
                    continue
                unit = module.units[None]
            else:
                module = self.module(mod)
                if module is None:
                    continue
                todo.append((mod, "<body>"))
                self.parent.setdefault((mod, "<body>"), (mod, name))
                if name is not None and module_file(f"{mod}.{name}"):
                    self.parent.setdefault((f"{mod}.{name}", "<body>"), (mod, name))
                    todo.append((f"{mod}.{name}", "<body>"))
                    # `from .normalize import normalize` in a package's __init__: the name
                    # is the function, not (only) the submodule
                    if name not in module.defs and name not in module.bindings:
                        continue
                if name is not None and name not in module.defs:
                    # a re-exported or module-level name: follow its binding, else the body
                    binding = module.bindings.get(name)
                    if binding and binding[0] == "name":
                        self.parent.setdefault((binding[1], binding[2]), (mod, name))
                        todo.append((binding[1], binding[2]))
                    elif binding and binding[0] == "mod":
                        self.parent.setdefault((binding[1], None), (mod, name))
                        todo.append((binding[1], None))
                    continue
                if name is None:
                    for def_name in module.defs:
                        self.parent.setdefault((mod, def_name), (mod, name))
                        todo.append((mod, def_name))
                    continue
                gate = GATES.get((mod, name))
                if gate and gate not in gates:
                    continue
                unit = module.units[name]
            label = mod if name == "<body>" else f"{mod}.{name}"
            for top in unit.third:
                found.setdefault(top, set()).add(label)
            dynamic += unit.dynamic
            for ref in unit.refs:
                self.parent.setdefault(ref, (mod, name))
            todo.extend(unit.refs)
        return found, dynamic


def script_roots(path: Path) -> tuple[set, set[str], set[str], list[str]]:
    """Roots, gates, third-party imports and sys.path edits of a rule script."""
    tree = ast.parse(path.read_text(), filename=str(path))
    roots, third, gates, problems = set(), set(), set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top == "catclean":
                    roots.add((alias.name, None))
                elif top not in STDLIB:
                    third.add(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module:
            top = node.module.split(".")[0]
            if top == "catclean":
                roots.add((node.module, "<body>"))
                roots.update((node.module, alias.name) for alias in node.names)
            elif top not in STDLIB:
                third.add(node.module)
        elif isinstance(node, ast.Call):
            func = node.func
            fname = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            for kw in node.keywords:
                if (fname in ("rule_setup", "setup") and kw.arg == "tensorflow"
                        and isinstance(kw.value, ast.Constant) and kw.value.value):
                    gates.add("tensorflow")
        elif (isinstance(node, ast.Attribute) and node.attr == "path"
              and isinstance(node.value, ast.Name) and node.value.id == "sys"):
            problems.append(f"{path.name}:{node.lineno} uses sys.path")
    return roots, gates, third, problems


def needed_distributions(script: Path, graph: Graph | None = None) -> tuple[dict, list]:
    """Distributions a rule script needs -> where each comes from; and problems found."""
    graph = graph or Graph()
    roots, gates, third, problems = script_roots(script)
    found, dynamic = graph.reach(roots, gates)
    for top in third:
        found.setdefault(top, set()).add(f"scripts/{script.name}")
    problems += [f"dynamic import reached: {d}" for d in dynamic]
    dists: dict[str, set[str]] = {}
    for name, where in found.items():
        top = name.split(".")[0]
        if top not in IMPORT_TO_DIST:
            problems.append(f"import {top!r} ({sorted(where)}) has no entry in IMPORT_TO_DIST")
            continue
        dist = IMPORT_TO_DIST[top]
        dists.setdefault(dist, set()).update(where)
        for extra in IMPLIED.get(dist, ()):
            dists.setdefault(extra, set()).add(f"needed by {dist}")
        for module, extras in IMPLIED_BY_MODULE.items():
            if name == module or name.startswith(module + "."):
                for extra in extras:
                    dists.setdefault(extra, set()).add(f"needed by {module}")
    return dists, problems


def env_distributions(path: Path) -> dict[str, str]:
    """Distributions an env file installs -> pinned version (``pip:`` section included)."""
    env = yaml.safe_load(path.read_text())
    pins = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for item in dep.get("pip", []):
                name, _, ver = item.partition("==")
                pins[norm(name)] = ver
        else:
            name, _, ver = dep.partition("=")
            pins[norm(CONDA_TO_PYPI.get(name, name))] = ver
    return pins


def provides(env: dict[str, str], dist: str) -> bool:
    """Whether an env (:func:`env_distributions`) installs ``dist``."""
    return dist in env or PROVIDED_BY.get(dist) in env


def smallest_envs(needs, envs: dict[str, dict[str, str]]) -> list[str]:
    """The smallest envs that provide all of ``needs``: those covering envs whose package
    set has no covering env as a proper subset (so catalogs.yaml, not sky.yaml, where
    catalogs.yaml is enough)."""
    fits = {name: set(pins) for name, pins in envs.items()
            if all(provides(pins, d) for d in needs)}
    return sorted(name for name, pkgs in fits.items()
                  if not any(other < pkgs for other in fits.values()))


RULE_RE = re.compile(r"^\s*(?:rule|checkpoint)\s+(\w+)\s*:", re.M)
KEY_RE = re.compile(r"^\s*(conda|script)\s*:\s*\n\s*\"([^\"]+)\"", re.M)


def rules_from_smk(repo: Path = REPO) -> dict[str, dict[str, Path]]:
    """Every rule of workflow/rules/*.smk -> its ``conda`` and ``script`` files (absolute)."""
    rules: dict[str, dict[str, Path]] = {}
    for smk in sorted((repo / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        starts = [(m.start(), m.group(1)) for m in RULE_RE.finditer(text)] + [(len(text), "")]
        for (start, name), (end, _) in zip(starts, starts[1:]):
            block = text[start:end]
            rules[name] = {key: (smk.parent / value).resolve()
                           for key, value in KEY_RE.findall(block)}
    return rules


def why(rule: str, dist: str) -> int:
    """Print how ``rule``'s script reaches the imports of ``dist``."""
    graph = Graph()
    script = rules_from_smk()[rule]["script"]
    roots, gates, _, _ = script_roots(script)
    found, _ = graph.reach(roots, gates)
    for name, where in found.items():
        top = name.split(".")[0]
        if IMPORT_TO_DIST.get(top) == dist:
            for label in sorted(where):
                mod, _, name = label.rpartition(".")
                key = (label, "<body>") if (label, "<body>") in graph.parent else (mod, name)
                print(" -> ".join(graph.chain(key)), f"imports {top}")
    return 0


def trace(trace_dir: str) -> int:
    """Compare import traces of real jobs (tools/import_trace) with the static needs.

    Prints, per rule, distributions a job loaded that the analysis did not find and that
    the rule's env lacks. Distributions that come with another one are expected there
    (pyyaml with astropy, pillow with matplotlib, Keras's optional imports).
    """
    graph, rules = Graph(), rules_from_smk()
    envs = {p.name: env_distributions(p) for p in sorted((REPO / "envs").glob("*.yaml"))}
    loaded: dict[str, set[str]] = {}
    for path in sorted(Path(trace_dir).glob("*.txt")):
        first, *mods = path.read_text().split()
        rule = first.split(".")[-2]
        loaded.setdefault(rule, set()).update(
            IMPORT_TO_DIST[m] for m in mods if m in IMPORT_TO_DIST)
    for rule, dists in sorted(loaded.items()):
        needs, _ = needed_distributions(rules[rule]["script"], graph)
        env = envs[rules[rule]["conda"].name]
        print(f"{rule:28s} loaded, not found statically: {sorted(dists - set(needs))}; "
              f"loaded, not in {rules[rule]['conda'].name}: "
              f"{sorted(d for d in dists if not provides(env, d))}")
    return 0


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "why":
        return why(sys.argv[2], sys.argv[3])
    if len(sys.argv) == 3 and sys.argv[1] == "trace":
        return trace(sys.argv[2])
    graph = Graph()
    envs = {p.name: env_distributions(p) for p in sorted((REPO / "envs").glob("*.yaml"))}
    bad = 0
    for name, spec in sorted(rules_from_smk().items()):
        if "script" not in spec:
            continue
        dists, problems = needed_distributions(spec["script"], graph)
        env_name = spec.get("conda").name if spec.get("conda") else None
        env = envs.get(env_name, {})
        lacking = sorted(d for d in dists if not provides(env, d))
        best = smallest_envs(dists, envs)
        bad += bool(lacking or problems or env_name not in best)
        print(f"{name:28s} {env_name or '-':13s} smallest {','.join(best):22s} "
              f"needs {sorted(dists)}")
        if lacking:
            print(f"{'':30s} LACKS {lacking}")
        for problem in problems:
            print(f"{'':30s} {problem}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
