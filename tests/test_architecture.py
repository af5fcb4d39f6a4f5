"""The import rules of DESIGN.md ("Imports that must never exist"), checked on the AST.

The checker reads every ``.py`` file under ``pipeline/`` and ``plugins/`` and ``run.py``
(nothing is imported or run) and names each import that breaks a rule as
``file:line: rule: what``. Each rule is shown to fire on a tiny synthetic tree in ``tmp_path``,
then the real tree must have no violation of it.

How the rules read where the issue left a choice:

- *Test double*: ``plugins/broker/ib/fake_gateway`` (a module or a package) is the IB
  gateway's test double, not a plugin. It belongs to no stage: it may read any plugin (the
  bundled data sources serve its history), but nothing in ``pipeline/`` or ``plugins/`` may
  import it (only tests do), and like any plugin code it sees ``pipeline.core`` only.
- *Private names*: a name with one leading underscore is private to what holds it. Importing it
  is allowed only from inside that holder: ``from plugins.strategy._common import x`` inside
  ``plugins/strategy/`` (the package-private module ``_common`` is held by its package), never
  from ``plugins/allocation/``; ``from pipeline.backtest.engine import _check`` is allowed
  nowhere but that module itself. Dunder names are not private. Only the first-party tree
  (``pipeline``, ``plugins``) is checked.
- *Function-level imports*: an import inside a function of ``pipeline.*`` or ``plugins.*`` is
  an error unless its (importer, module) pair is in ``LAZY_ALLOWED`` with the reason; a
  function-level import of anything else (a heavy third-party module such as scipy or
  statsmodels, an optional one such as ib_async or websockets, the standard library) is
  allowed: first-party code costs nothing to import at the top, so the only reason to
  defer it is a cycle, and a cycle is what the next rule forbids.
- *Cycles*: the graph has an edge for every first-party import (top or function level), to
  the most specific module it names (``from pipeline.core import errors`` -> ``pipeline.core.errors``);
  a package's ``__init__`` is a node like any module. Every strongly connected component of
  more than one module is reported with the imports that close it.
"""

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIRST_PARTY = ("pipeline", "plugins")
ENGINES = ("pipeline.backtest", "pipeline.live", "pipeline.decision", "pipeline.lob")
FAKE_GATEWAY = "plugins.broker.ib.fake_gateway"
# (importer module, imported module) -> why it is imported inside a function
LAZY_ALLOWED: dict[tuple[str, str], str] = {
    ("run", "pipeline.app.runner"): "run.py --help and Hydra's own options answer before "
                                    "pandas, scipy and every stage are loaded",
    ("pipeline.app.cli", "pipeline.app.runner"): "robo-trader is run.py: its --help answers as fast (issue 18.1)",
    ("pipeline.app.runner", "pipeline.live.runner"): "a backtest, the default task, never loads live "
                                                     "trading (its import takes about 0.16 s of every run.py)",
    ("pipeline.app.events", "pipeline.lob.engine"): "a bar backtest never loads the order-book engine and "
                                                    "numba (about 0.17 s of every run.py)",
    ("pipeline.research.overfitting", "pipeline.research.cscv_kernel"): "numba loads when a sweep is "
                                                                       "summarised, not in every run.py",
    ("plugins.allocation.hrp", "plugins.allocation._hrp_kernel"): "numba (about 0.17 s) loads only "
                                                                  "when HRP weighs, not with every run",
    ("pipeline.core.estimators", "pipeline.core.kernels"): "the compiled estimators load numba with the "
                                                           "first allocator that estimates, never in a "
                                                           "default (equal-weight) run",
    ("plugins.allocation._solvers", "pipeline.core.kernels"): "the compiled solvers load numba with the "
                                                              "first solve, as the estimators do",
}
RULES = ("pipeline->plugins", "core->pipeline", "backtest<->live", "lob<->engines", "report/dashboard->engine",
         "->app", "plugins->pipeline", "stage->stage", "->fake_gateway", "private", "function-level",
         "cycle")


@dataclass(frozen=True)
class Import:
    path: str       # relative to the root, e.g. pipeline/core/market.py
    line: int
    importer: str   # dotted module of the file
    target: str     # dotted name imported (a module, or module.name for ``from m import name``)
    module: str     # the most specific module ``target`` names
    lazy: bool      # inside a function


def _module_of(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_of(rel: Path, module: str) -> str:
    return module if rel.name == "__init__.py" else module.rpartition(".")[0]


def _sources(root: Path):
    files = [p for top in FIRST_PARTY if (root / top).is_dir() for p in sorted((root / top).rglob("*.py"))]
    if (root / "run.py").is_file():
        files.append(root / "run.py")
    return files


def _type_checking(node) -> bool:
    """``if TYPE_CHECKING:``: imports for annotations only, never run, so neither a cycle nor a dependency."""
    test = getattr(node, "test", None) if isinstance(node, ast.If) else None
    return isinstance(test, (ast.Name, ast.Attribute)) and getattr(test, "id", getattr(test, "attr", "")) == "TYPE_CHECKING"


def _walk(node, lazy=False):
    for child in ast.iter_child_nodes(node):
        if _type_checking(child):
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, lazy
        yield from _walk(child, lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))


def imports(root: Path) -> list[Import]:
    """Every first-party import in the tree below ``root``."""
    files = _sources(root)
    modules = {_module_of(p.relative_to(root)) for p in files}

    def resolve(target):
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target

    found = []
    for path in files:
        rel = path.relative_to(root)
        importer = _module_of(rel)
        package = _package_of(rel, importer)
        for node, lazy in _walk(ast.parse(path.read_text(), str(rel))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if a.name != "*" else base for a in node.names]
            for target in targets:
                if target.split(".")[0] in FIRST_PARTY:
                    found.append(Import(rel.as_posix(), node.lineno, importer, target, resolve(target), lazy))
    return found


def _in(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _private_owner(target: str) -> str | None:
    """What holds the first private part of ``target`` (None: nothing in it is private)."""
    parts = target.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def _cycles(found: list[Import]) -> list[str]:
    edges: dict[str, dict[str, Import]] = {}
    for imp in found:
        if imp.module and imp.module != imp.importer:
            edges.setdefault(imp.importer, {}).setdefault(imp.module, imp)
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def connect(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(edges):
        if v not in index:
            connect(v)
    out = []
    for component in components:
        closing = sorted((imp for v in component for w, imp in edges.get(v, {}).items() if w in component),
                         key=lambda imp: (imp.path, imp.line))
        out.append(f"{closing[0].path}:{closing[0].line}: cycle: " + ", ".join(sorted(component))
                   + " import each other (" + "; ".join(f"{i.path}:{i.line} -> {i.module}" for i in closing) + ")")
    return out


def violations(root: Path) -> dict[str, list[str]]:
    """Rule -> the imports under ``root`` that break it, as ``file:line: rule: what``."""
    found = imports(root)
    out: dict[str, list[str]] = {rule: [] for rule in RULES}

    def flag(rule, imp, what):
        out[rule].append(f"{imp.path}:{imp.line}: {rule}: {imp.importer} imports {imp.target} ({what})")

    for imp in found:
        src, dst = imp.importer, imp.target
        if _in(src, "pipeline") and _in(dst, "plugins"):
            flag("pipeline->plugins", imp, "the engine knows no concrete plugin: take it from the config")
        if _in(src, "pipeline.core") and _in(dst, "pipeline") and not _in(dst, "pipeline.core"):
            flag("core->pipeline", imp, "pipeline.core imports no other pipeline package")
        if (_in(src, "pipeline.backtest") and _in(dst, "pipeline.live")) or (
                _in(src, "pipeline.live") and _in(dst, "pipeline.backtest")):
            flag("backtest<->live", imp, "share it through pipeline.decision or pipeline.core")
        # the order-book engine (issue 19) is a second engine beside the daily one: it sees the
        # vocabulary only, and only the composition root sees it
        if (_in(src, "pipeline.lob") and _in(dst, "pipeline") and not _in(dst, "pipeline.core", "pipeline.lob")) or (
                _in(dst, "pipeline.lob") and not _in(src, "pipeline.lob", "pipeline.app")):
            flag("lob<->engines", imp, "pipeline.lob imports pipeline.core only, and only pipeline.app imports it")
        if _in(src, "pipeline.report", "pipeline.dashboard") and _in(dst, *ENGINES, "pipeline.app"):
            flag("report/dashboard->engine", imp, "a report reads results or a run folder only")
        if _in(dst, "pipeline.app") and src != "run" and not _in(src, "pipeline.app"):
            flag("->app", imp, "only run.py imports the composition root")
        if _in(src, "plugins") and _in(dst, "pipeline") and not _in(dst, "pipeline.core"):
            flag("plugins->pipeline", imp, "a plugin sees pipeline.core only")
        groups = src.split(".")[1:2], dst.split(".")[1:2]
        if (_in(src, "plugins") and _in(dst, "plugins") and not _in(src, FAKE_GATEWAY)
                and groups[0] and groups[1] and groups[0] != groups[1]):
            flag("stage->stage", imp, f"a {groups[0][0]} plugin does not import the {groups[1][0]} stage")
        if _in(dst, FAKE_GATEWAY) and not _in(src, FAKE_GATEWAY):
            flag("->fake_gateway", imp, "the fake gateway is a test double: only tests import it")
        owner = _private_owner(imp.target)
        if owner is not None and not _in(src, owner):
            flag("private", imp, f"a private name, visible inside {owner} only")
        if imp.lazy and not any(src == lazy_src and _in(dst, lazy_dst) for lazy_src, lazy_dst in LAZY_ALLOWED):
            flag("function-level", imp, "import it at the top of the module (a cycle is to be broken, "
                                        "not hidden) or add it to LAZY_ALLOWED with the reason")
    out["cycle"] = _cycles([imp for imp in found if _in(imp.importer, *FIRST_PARTY)])
    return out


# --- the checker on synthetic trees: each rule fires, and stays quiet on what it allows ---------

def _tree(tmp_path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        for parent in path.relative_to(tmp_path).parents:
            init = tmp_path / parent / "__init__.py"
            if parent.parts and not init.exists():
                init.write_text("")
    return tmp_path


SYNTHETIC = {
    "pipeline->plugins": ({"pipeline/results/x.py": "from plugins.data.csv import CSVData\n"},
                          {"pipeline/results/x.py": "from pipeline.core.errors import UserError\n"}),
    "core->pipeline": ({"pipeline/core/x.py": "import pipeline.results.metrics\n"},
                       {"pipeline/core/x.py": "from pipeline.core import errors\n", "pipeline/core/errors.py": ""}),
    "backtest<->live": ({"pipeline/live/x.py": "from pipeline.backtest.engine import Ledger\n",
                         "pipeline/backtest/engine.py": "from ..live import journal\n"},
                        {"pipeline/live/x.py": "from pipeline.decision.targets import targets\n"}),
    "lob<->engines": ({"pipeline/lob/engine.py": "from pipeline.backtest.engine import backtest\n",
                       "pipeline/backtest/x.py": "from pipeline.lob.kernel import arrive\n"},
                      {"pipeline/lob/engine.py": "from pipeline.core.lob import OrderBook\n",
                       "pipeline/app/events.py": "from pipeline.lob.engine import replay\n"}),
    "report/dashboard->engine": ({"pipeline/report/x.py": "from pipeline.decision import targets\n",
                                  "pipeline/dashboard/y.py": "import pipeline.app.cli\n"},
                                 {"pipeline/report/x.py": "from pipeline.results import metrics\n"}),
    "->app": ({"pipeline/live/x.py": "from pipeline.app.registry import CONF_DIR\n"},
              {"run.py": "from pipeline.app.cli import guarded\n",
               "pipeline/app/cli.py": "from pipeline.app import registry\n"}),
    "plugins->pipeline": ({"plugins/data/x.py": "from pipeline.live.pretrade import Window\n"},
                          {"plugins/data/x.py": "from pipeline.core.contracts import DataSource\n"}),
    "stage->stage": ({"plugins/strategy/x.py": "from plugins.data.lobster import read_lobster\n"},
                     {"plugins/strategy/x.py": "from plugins.strategy.momentum import Momentum\n",
                      "plugins/broker/ib/fake_gateway.py": "from plugins.data.sp500 import SP500\n"}),
    "->fake_gateway": ({"plugins/broker/ib/__init__.py": "from .fake_gateway import FakeGateway\n"},
                       {"plugins/broker/ib/fake_gateway/server.py": "from plugins.broker.ib.fake_gateway import bars\n"}),
    "private": ({"plugins/allocation/x.py": "from plugins.strategy._common import latest\n",
                 "pipeline/live/y.py": "from pipeline.backtest.engine import _check_children\n"},
                {"plugins/strategy/x.py": "from plugins.strategy._common import latest\n",
                 "plugins/strategy/y.py": "from ._common import _helper\n"}),
    "function-level": ({"pipeline/results/x.py": "def f():\n    from pipeline.report import tearsheet\n"},
                       {"pipeline/results/x.py": "def f():\n    from scipy.stats import norm\n",
                        "run.py": "def main():\n    from pipeline.app.runner import main\n"}),
    "cycle": ({"pipeline/results/a.py": "from pipeline.results import b\n",
               "pipeline/results/b.py": "def f():\n    from pipeline.results.a import g\n"},
              {"pipeline/results/a.py": "from pipeline.results import b\n", "pipeline/results/b.py": "X = 1\n"}),
}


def test_15_7_every_rule_has_a_synthetic_case():
    assert sorted(SYNTHETIC) == sorted(RULES)


@pytest.mark.parametrize("rule", RULES)
def test_15_7_the_checker_fires_on_each_rule_naming_file_line_and_rule(rule, tmp_path):
    bad, _ = SYNTHETIC[rule]
    found = violations(_tree(tmp_path, bad))[rule]
    assert found, f"{rule} did not fire on {bad}"
    for line in found:
        path, lineno, name = line.split(":")[:3]
        assert path in bad and int(lineno) >= 1 and name.strip() == rule, line


@pytest.mark.parametrize("rule", RULES)
def test_15_7_the_checker_allows_what_the_rule_allows(rule, tmp_path):
    _, good = SYNTHETIC[rule]
    assert violations(_tree(tmp_path, good)) == {r: [] for r in RULES}


def test_15_7_a_cycle_names_every_import_that_closes_it(tmp_path):
    root = _tree(tmp_path, {"pipeline/results/a.py": "from pipeline.results import b\n",
                            "pipeline/results/b.py": "import pipeline.results.c\n",
                            "pipeline/results/c.py": "\n\nfrom .a import x\n"})
    [cycle] = violations(root)["cycle"]
    assert "pipeline.results.a, pipeline.results.b, pipeline.results.c" in cycle
    assert "pipeline/results/c.py:3 -> pipeline.results.a" in cycle


# --- the real tree ----------------------------------------------------------------------------

@pytest.mark.parametrize("rule", RULES)
def test_15_7_the_tree_has_no_forbidden_import(rule):
    found = violations(ROOT)[rule]
    assert not found, f"{len(found)} import(s) break {rule}:\n" + "\n".join(found)
