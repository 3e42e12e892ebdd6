"""The dependency direction: the core never imports the edges (api, web, jobs, commands, cli)."""

from __future__ import annotations

import ast
from pathlib import Path

SERVICE = Path(__file__).resolve().parent.parent / "service"
EDGES = ("service.api", "service.web", "service.jobs", "service.commands", "service.cli")
EDGE_DIRS = ("api", "web", "jobs", "commands")


def _core_modules() -> list[Path]:
    modules = []
    for path in SERVICE.rglob("*.py"):
        rel = path.relative_to(SERVICE)
        if rel.parts[0] in EDGE_DIRS or rel.name == "cli.py" and len(rel.parts) == 1:
            continue
        if rel == Path("__init__.py"):
            continue  # the factory wires the edges together; it is not core
        modules.append(path)
    return modules


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_core_never_imports_an_edge():
    offenders = {}
    for path in _core_modules():
        bad = [n for n in _imports(path) if any(n == e or n.startswith(e + ".") for e in EDGES)]
        if bad:
            offenders[str(path.relative_to(SERVICE))] = sorted(set(bad))
    assert offenders == {}


def test_the_check_sees_the_core():
    # Guards the guard: if the walk found nothing, the test above would pass vacuously.
    names = {p.relative_to(SERVICE).as_posix() for p in _core_modules()}
    assert {"db.py", "models/client.py", "outbox.py"} <= names
    assert not any(n.startswith(("api/", "jobs/", "web/", "commands/")) for n in names)


def test_wsgi_and_factory_never_start_a_scheduler():
    root = SERVICE.parent
    for path in (root / "wsgi.py", SERVICE / "__init__.py"):
        text = path.read_text()
        assert "BackgroundScheduler" not in text and "scheduler.start" not in text, path
