"""The house keeps its layers: imports between the packages of ``service`` only point down.

Every ``import`` statement under ``service/`` is read with `ast` (those inside
functions and ``TYPE_CHECKING`` blocks too) and reduced to an edge between
two *parts*: a subpackage (``service.blog``) or a top-level module
(``service.features``). The parts sit in layers, lowest first::

    storage -> core -> theme -> channels -> outbox -> features -> site -> the feature list, the app factory,
    the WSGI app, the Lambda entry points

A part may import its own layer's lower neighbours only; features import
each other only along `SIDEWAYS` (one-way, named in docs/architecture.md), and no
circle of imports between parts exists.
Run as a script (``python tests/test_layers.py``) it prints the edges.
"""

from __future__ import annotations

import ast
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "service"

#: Layer of each part, lowest first; a part missing here fails `test_every_part_has_a_layer`.
LAYERS: dict[str, int] = {
    "storage": 0,
    "core": 1,
    "theme": 2,
    "channels": 3,  # the channel clients (Telegram, e-mail, webhooks)
    "outbox": 4,  # the shared queue, its delivery and the periodic tick
    **dict.fromkeys(("health", "visitors", "spotify", "github", "blog", "contact", "stats"), 5),
    "site": 6,
    "features": 7,
    "__init__": 8,  # the app factory
    "wsgi": 9,  # the app gunicorn and Zappa serve
    **dict.fromkeys(("aws_lambda", "tasks"), 10),  # the Lambda entry point (which makes the app early), schedules
}
FEATURE_LAYER = 5
#: The imports allowed between features (importer, imported), each one-way.
SIDEWAYS = {
    ("blog", "github"),  # the blog's posts are GitHub issues, read through the GitHub client
    ("visitors", "stats"),  # a counted view records its hit for the owner's statistics
}


def _module_name(path: str) -> str:
    relative = os.path.relpath(path, ROOT)[: -len(".py")].split(os.sep)
    if relative[-1] == "__init__":
        relative = relative[:-1]
    return ".".join(relative)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """Absolute names a ``from ... import ...`` statement in ``module`` loads (modules or names in them)."""
    if node.level == 0:
        base = node.module or ""
    else:
        parts = module.split(".")
        parts = parts if is_package else parts[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join([*parts, *([node.module] if node.module else [])])
    return [f"{base}.{alias.name}" if base else alias.name for alias in node.names]


def sources():
    """(path, module name, is a package's ``__init__``, syntax tree) of every module under ``service/``."""
    for folder, _, files in os.walk(os.path.join(ROOT, PACKAGE)):
        for name in sorted(n for n in files if n.endswith(".py")):
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as handle:
                yield path, _module_name(path), name == "__init__.py", ast.parse(handle.read(), path)


def imports() -> list[tuple[str, str, str]]:
    """(importing module, imported name, file:line) for every import of ``service`` inside ``service``."""
    found = []
    for path, module, is_package, tree in sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                targets = _resolve(module, is_package, node)
            else:
                continue
            where = f"{os.path.relpath(path, ROOT)}:{node.lineno}"
            found += [(module, target, where) for target in targets
                      if target == PACKAGE or target.startswith(PACKAGE + ".")]
    return found


def part_of(module: str) -> str:
    """``service.blog.pages`` -> ``blog``; ``service.features`` -> ``features``; ``service`` (and a name
    defined in ``service/__init__.py``, such as ``create_app``) -> ``__init__``."""
    parts = module.split(".")
    if len(parts) < 2:
        return "__init__"
    here = os.path.join(ROOT, PACKAGE, parts[1])
    return parts[1] if os.path.isdir(here) or os.path.isfile(here + ".py") else "__init__"


def edges() -> dict[tuple[str, str], list[str]]:
    """{(importing part, imported part): [file:line, ...]} between different parts."""
    found: dict[tuple[str, str], list[str]] = {}
    for module, target, where in imports():
        source, dest = part_of(module), part_of(target)
        if source != dest:
            found.setdefault((source, dest), []).append(where)
    return found


def cycles(graph: dict[tuple[str, str], list[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one part (Tarjan's algorithm), each sorted."""
    neighbours: dict[str, set[str]] = {}
    for source, dest in graph:
        neighbours.setdefault(source, set()).add(dest)
        neighbours.setdefault(dest, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(neighbours[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(neighbours):
        if node not in index:
            visit(node)
    return groups


def wrong_way(graph: dict[tuple[str, str], list[str]]) -> list[str]:
    """The edges that point up a layer, or sideways between features outside `SIDEWAYS`."""
    problems = []
    for (source, dest), where in sorted(graph.items()):
        high, low = LAYERS.get(source), LAYERS.get(dest)
        if high is None or low is None:
            continue
        sideways_ok = high == low == FEATURE_LAYER and (source, dest) in SIDEWAYS
        if low > high or (low == high and not sideways_ok):
            problems.append(f"{source} -> {dest} ({', '.join(where)})")
    return problems


def test_every_part_has_a_layer():
    parts = {part for edge in edges() for part in edge}
    parts |= {part_of(_module_name(os.path.join(ROOT, PACKAGE, name)))
              for name in os.listdir(os.path.join(ROOT, PACKAGE))
              if name.endswith(".py") or os.path.isfile(os.path.join(ROOT, PACKAGE, name, "__init__.py"))}
    assert sorted(parts - set(LAYERS)) == []


def test_no_import_circle_between_parts():
    assert cycles(edges()) == []


def test_imports_only_point_down():
    assert wrong_way(edges()) == []


def test_only_the_feature_list_imports_the_feature_packages():
    features = {part for part, layer in LAYERS.items() if layer == FEATURE_LAYER} | {"site"}
    importers = {source for source, dest in edges() if dest in features and LAYERS[source] > FEATURE_LAYER}
    # and the Lambda schedule's functions (`service/tasks.py`), which Zappa's events name: the fold of recorded views
    assert importers <= {"features", "tasks"}


def test_sideways_imports_are_few_and_one_way():
    assert len(SIDEWAYS) <= 3
    assert not {(dest, source) for source, dest in SIDEWAYS} & SIDEWAYS
    used = {edge for edge in edges() if LAYERS.get(edge[0]) == LAYERS.get(edge[1]) == FEATURE_LAYER}
    assert used <= SIDEWAYS


def _is_module(name: str) -> bool:
    path = os.path.join(ROOT, *name.split("."))
    return os.path.isdir(path) or os.path.isfile(path + ".py")


def test_no_module_is_imported_under_another_name():
    """``from . import posts as blog`` hides the module from a search for its name."""
    aliased = []
    for path, module, is_package, tree in sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                targets = _resolve(module, is_package, node)
                aliased += [f"{os.path.relpath(path, ROOT)}:{node.lineno} {target} as {alias.asname}"
                            for target, alias in zip(targets, node.names, strict=True)
                            if alias.asname and alias.asname != alias.name and _is_module(target)]
    assert aliased == []


def test_every_page_renders_with_the_sites_one_template_environment():
    """No Flask template loader beside `service.theme.render`'s environment (``render_template``, a
    blueprint's ``template_folder``)."""
    found = []
    for path, _, _, tree in sources():
        for node in ast.walk(tree):
            names = {n.id for n in [node] if isinstance(n, ast.Name)} | {
                n.attr for n in [node] if isinstance(n, ast.Attribute)} | {
                k.arg for k in getattr(node, "keywords", ())}
            hits = names & {"render_template", "render_template_string", "template_folder"}
            found += [f"{os.path.relpath(path, ROOT)}:{node.lineno} {hit}" for hit in sorted(hits)]
    assert found == []


def test_the_checker_sees_a_circle_and_an_upward_import():
    graph = {("core", "blog"): ["a.py:1"], ("blog", "core"): ["b.py:1"]}
    assert cycles(graph) == [["blog", "core"]]
    assert wrong_way(graph) == ["core -> blog (a.py:1)"]


if __name__ == "__main__":
    graph = edges()
    for (source, dest), where in sorted(graph.items()):
        print(f"{source:>10} -> {dest:<10} {len(where):3} import(s), first at {where[0]}")
    for group in cycles(graph):
        print("circle:", " <-> ".join(group))
    for problem in wrong_way(graph):
        print("wrong way:", problem, file=sys.stderr)
