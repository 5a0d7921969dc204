"""The rooms of the code and the one way their arrows point (docs/design.md, "The path of the data").

Every module of the package is parsed with ``ast``; every import in it, at
the top or inside a function (a lazy import is still an arrow), is mapped to
the room it points to. An import may only point to a room listed as allowed
for the importer's room; and the rooms' import graph has no cycle.
"""

import ast
import pathlib

import saleor_flows

PACKAGE = pathlib.Path(saleor_flows.__file__).parent

# room -> the module paths in it (relative to the package, dotted; "" is the package itself).
ROOMS = {
    # What every room may use: settings, the clock, the data model, shared vocabularies.
    "base": ["", "conf", "clock", "db", "signals", "phone", "models", "fields", "catalog", "journeys", "migrations"],
    "channels": ["channels"],
    # events.py is the engine's one door; stored settings and flows-as-code belong to the engine too.
    "engine": ["engine", "events", "flow_settings", "flows_as_code"],
    "tasks": ["tasks"],
    "web": ["web", "tracking"],
    "api": ["api"],
    "dashboard": ["dashboard"],
    "urls": ["urls"],
    "saleor_plugin": ["saleor_plugin"],
    # The Saleor App edge (signed webhooks) and the project that runs it as a service of its own.
    "saleor_app": ["saleor_app"],
    "app_service": ["app_service"],
    # Where the rooms are wired together: the app's ready(), management commands, the pytest helper.
    "wiring": ["apps", "management", "testing"],
}
ALLOWED = {
    "base": set(),
    "channels": {"base"},
    "engine": {"base", "channels"},
    "tasks": {"base", "channels", "engine"},
    "web": {"base", "channels", "engine"},
    "api": {"base", "channels", "engine", "web"},
    "dashboard": {"base", "channels", "engine", "web", "api"},
    "urls": {"base", "web", "api", "dashboard"},
    "saleor_plugin": {"base", "channels", "engine", "tasks", "web", "urls"},
    # The App edge shares the plugin edge's payload translation and the API's key-set cache (one of each).
    "saleor_app": {"base", "channels", "engine", "tasks", "web", "api", "urls", "dashboard", "saleor_plugin"},
    "app_service": {"base", "channels", "engine", "tasks", "web", "api", "dashboard", "urls", "saleor_app"},
    "wiring": {"base", "channels", "engine", "tasks", "web", "api", "dashboard", "urls", "saleor_plugin",
               "saleor_app"},
}


def modules() -> dict[str, pathlib.Path]:
    """Dotted name inside the package ("engine.dispatch", "" for the package) -> its file."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def room_of(module: str) -> str:
    best = None
    for room, prefixes in ROOMS.items():
        for prefix in prefixes:
            if module == prefix or (prefix and module.startswith(prefix + ".")):
                if best is None or len(prefix) > len(best[1]):
                    best = (room, prefix)
    assert best is not None, f"saleor_flows.{module} belongs to no room: add it to ROOMS"
    return best[0]


def imports_of(module: str, path: pathlib.Path, known: dict) -> set[tuple[str, int]]:
    """(imported module inside the package, line) for every import statement anywhere in the file."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    package = [part for part in package if part]
    found = set()

    def inside(name: str) -> str | None:
        """The longest known module that ``name`` (dotted, relative to the package) names or lives in."""
        while name not in known:
            if not name:
                return None
            name = name.rpartition(".")[0]
        return name

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "saleor_flows" or alias.name.startswith("saleor_flows."):
                    found.add((inside(alias.name.removeprefix("saleor_flows").lstrip(".")), node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1] if node.level > 1 else package
                assert len(package) - node.level + 1 >= 0, f"{path}:{node.lineno} imports above the package"
                base = ".".join(base + ([node.module] if node.module else []))
            elif node.module == "saleor_flows" or (node.module or "").startswith("saleor_flows."):
                base = node.module.removeprefix("saleor_flows").lstrip(".")
            else:
                continue
            for alias in node.names:
                target = f"{base}.{alias.name}".lstrip(".")
                found.add((inside(target) if target in known else inside(base), node.lineno))
    return {(target, line) for target, line in found if target is not None and target != module}


def arrows() -> list[tuple[str, str, str, str, int]]:
    """(from room, to room, from module, to module, line) for every import between two rooms."""
    known = modules()
    result = []
    for module, path in known.items():
        for target, line in imports_of(module, path, known):
            if room_of(module) != room_of(target):
                result.append((room_of(module), room_of(target), module, target, line))
    return result


def test_every_module_belongs_to_a_room():
    for module in modules():
        room_of(module)


def test_the_allowed_arrows_have_no_cycle():
    """The table itself points one way (else two rooms could import each other and still pass)."""
    done = set()

    def visit(room, trail):
        assert room not in trail, f"the rooms import each other: {' -> '.join([*trail, room])}"
        if room in done:
            return
        for target in ALLOWED[room]:
            visit(target, [*trail, room])
        done.add(room)

    for room in ALLOWED:
        visit(room, [])
    assert set(ALLOWED) == set(ROOMS)


def test_imports_point_only_the_allowed_way():
    wrong = sorted(f"saleor_flows/{module.replace('.', '/') or '__init__'}.py:{line}: {source} imports "
                   f"{target_room} (saleor_flows.{target})"
                   for source, target_room, module, target, line in arrows() if target_room not in ALLOWED[source])
    assert not wrong, "imports against the arrows (docs/design.md):\n" + "\n".join(wrong)


def test_the_engine_never_imports_the_task_layer_or_a_door():
    """The issue's own case: engine/dispatch.py imported tasks.py, and channels imported web/."""
    engine_targets = {target for source, target, *_ in arrows() if source in ("engine", "channels")}
    assert not engine_targets & {"tasks", "web", "api", "dashboard", "urls", "saleor_plugin"}


def test_the_check_sees_lazy_and_relative_imports(tmp_path, monkeypatch):
    """A lazy ``from .. import tasks`` inside a function of the engine is caught (so the check can fail)."""
    fake = tmp_path / "saleor_flows"
    for module, path in modules().items():
        target = fake / path.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    (fake / "engine" / "sneaky.py").write_text("def later():\n    from .. import tasks\n    return tasks\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["PACKAGE"]), "PACKAGE", fake)
    wrong = [(source, target, module) for source, target, module, *_ in arrows() if target not in ALLOWED[source]]
    assert wrong == [("engine", "tasks", "engine.sneaky")]
