"""Trims the image's virtual environment to what Parley uses. The Dockerfile's builder runs it with
the venv's own Python after the project is installed, from the project directory:

    python slim_venv.py data SITE_PACKAGES       remove package data Parley never loads
    python slim_venv.py bytecode SITE_PACKAGES   compile the modules a started Parley imports

Both keep-lists are derived from Parley's installed code when the image is built, never written
down here, so adding a lemmatizer language or a national identity number cannot silently break
the image:

``data``: lemmagen3 models and simplemma dictionaries of languages that
``archive.wordforms.LEMMATIZERS`` does not name (about 37 MB of the two packages' 51 MB), and
python-stdnum's number databases (``*.dat``) that no stdnum module Parley imports opens with
``numdb.get`` (the MAC vendor, IMSI, Chinese and Austrian locality tables, …).

``bytecode``: the code is read-only at run time (owned by root), so bytecode the image does not
hold is compiled again in memory by every process, at every start. Compiling all of the venv
costs 24 MB, 10 MB of it for modules nothing imports (hundreds of stdnum country modules,
opensearch-py's client namespaces, Litestar's contrib packages). So exactly the modules a started
Parley imports get bytecode: every module of Parley's packages, every module Parley's code names
in an import statement (lazy ones included), and what the app imports while it starts and stops
once on SQLite in a scratch directory. A module first imported later (a handler's rare path)
is compiled in memory on first use, once per process.

tests/test_deploy.py runs Parley on packages trimmed by ``data`` (lemmatizing every language,
redacting every national identity number); ``make image-test`` checks that the image compiles
nothing from source when Parley starts.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import importlib
import importlib.util
import os
import pkgutil
import py_compile
import re
import secrets
import sys
import tempfile
import tomllib
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import CodeType, ModuleType

# numdb.get('iban'), numdb.get("cn/loc"): the databases a stdnum module opens.
NUMDB_GET = re.compile(r"""numdb\.get\(\s*['"]([\w/]+)['"]\s*\)""")


def say(line: str) -> None:
    sys.stderr.write(f"slim_venv: {line}\n")


def project_packages() -> list[str]:
    """Parley's top-level packages, as the wheel build names them in pyproject.toml."""
    project = tomllib.loads(Path("pyproject.toml").read_text())
    packages: list[str] = project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    return packages


def import_parley() -> list[ModuleType]:
    """Every module of Parley's packages, imported."""
    modules = []
    for package in project_packages():
        modules.append(importlib.import_module(package))
        for info in pkgutil.walk_packages(modules[-1].__path__, package + "."):
            modules.append(importlib.import_module(info.name))
    return modules


def package_in(site: Path, name: str) -> Path:
    """Where ``name`` is imported from; it must be the site-packages being trimmed."""
    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if len(locations) != 1 or Path(locations[0]).resolve().parent != site:
        raise SystemExit(f"slim_venv: {name} is imported from {locations}, not from {site}; refusing to trim")
    return Path(locations[0])


def keep_only(directory: Path, pattern: str, keep: set[str], what: str) -> None:
    """Delete the files matching ``pattern`` under ``directory`` whose name (relative, without the
    suffix) is not in ``keep``; every name in ``keep`` must exist."""
    files = {str(p.relative_to(directory).with_suffix("")): p for p in directory.glob(pattern)}
    missing = sorted(keep - set(files))
    if missing:
        raise SystemExit(f"slim_venv: Parley needs {what} {missing}, which {directory} does not have")
    removed = [p for name, p in files.items() if name not in keep]
    freed = sum(p.stat().st_size for p in removed)
    for path in removed:
        path.unlink()
    say(f"kept {what} {sorted(keep)}; removed {len(removed)} others, {freed / 1e6:.1f} MB")


def lemmatizer_codes(library: str) -> set[str]:
    from archive.wordforms import LEMMATIZERS

    return {code for lib, code in LEMMATIZERS.values() if lib == library}


def stdnum_databases(parley: list[ModuleType]) -> set[str]:
    """The databases opened by name in Parley's code or in any stdnum module it imports."""
    sources = [m.__file__ for m in parley] + [
        m.__file__ for name, m in list(sys.modules.items()) if name == "stdnum" or name.startswith("stdnum.")
    ]
    return {db for source in sources if source and source.endswith(".py") for db in NUMDB_GET.findall(Path(source).read_text())}


def trim_data(site: Path) -> None:
    parley = import_parley()
    lemmagen3 = package_in(site, "lemmagen3")
    keep_only(lemmagen3 / "models", "*.bin", lemmatizer_codes("lemmagen3"), "lemmagen3 models")
    simplemma = package_in(site, "simplemma")
    keep_only(simplemma / "strategies" / "dictionaries" / "data", "*.plzma", lemmatizer_codes("simplemma"),
              "simplemma dictionaries")
    stdnum = package_in(site, "stdnum")
    keep_only(stdnum, "**/*.dat", stdnum_databases(parley), "stdnum databases")


def names_imported_by(modules: list[ModuleType]) -> set[str]:
    """Every absolute module name in an import statement of these modules, lazy imports included."""
    names: set[str] = set()
    for module in modules:
        if not (module.__file__ or "").endswith(".py"):
            continue
        for node in ast.walk(ast.parse(Path(module.__file__ or "").read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def start_parley_once() -> None:
    """Build the app as the server does and run its start-up and shutdown once, on SQLite in a
    scratch directory, so the modules it imports while starting are imported here too."""
    with tempfile.TemporaryDirectory() as scratch:
        # A throw-away master key: only 'parley serve' and 'parley migrate' create a keyring.
        os.environ.update(PARLEY_DATA_DIR=scratch, PARLEY_LOG_FORMAT="json",
                          PARLEY_MASTER_KEY=base64.b64encode(secrets.token_bytes(32)).decode())
        from litestar.testing import TestClient

        from api.asgi import create

        with TestClient(create()) as client:
            status = client.get("/healthz").status_code
            if status != 200:
                raise SystemExit(f"slim_venv: the app started for the build answered /healthz with {status}")


def compile_imported(site: Path) -> None:
    # Without bytecode every import compiles its module from source: that is the list. It also
    # holds modules whose import fails half-way (Litestar tries its pydantic and OpenTelemetry
    # plugins at every start), which sys.modules forgets.
    compiled = [getattr(m, "__file__", None) or "" for m in list(sys.modules.values())]  # before the hook: site's .pth
    source_to_code = SourceFileLoader.source_to_code

    def recording_source_to_code(self: SourceFileLoader, data: bytes, path: str, *args: object, **kwargs: object) -> CodeType:
        compiled.append(path)
        return source_to_code(self, data, path, *args, **kwargs)  # type: ignore[arg-type]

    SourceFileLoader.source_to_code = recording_source_to_code  # type: ignore[assignment,method-assign]
    parley = import_parley()
    for name in sorted(names_imported_by(parley)):
        # "from package import name" names an attribute as often as a module: only modules count.
        with contextlib.suppress(ModuleNotFoundError):
            importlib.import_module(name)
    start_parley_once()
    # Starting Parley sets its private umask (077, config/files.py); bytecode is code, read by the
    # image's non-root user: world-readable like the sources it comes from.
    os.umask(0o022)
    sources = sorted({Path(p) for p in compiled if p.endswith(".py") and Path(p).resolve().is_relative_to(site)})
    # Checked against a hash of the source, not its modification time: valid however a build tool
    # or registry rewrites the layers' timestamps (reproducible builds do), and still never stale.
    for source in sources:
        py_compile.compile(str(source), cfile=importlib.util.cache_from_source(str(source)), doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    say(f"bytecode for {len(sources)} modules a started Parley imports")


def main(argv: list[str]) -> int:
    commands = {"data": trim_data, "bytecode": compile_imported}
    if len(argv) != 3 or argv[1] not in commands:
        sys.stderr.write(__doc__ or "")
        return 2
    sys.dont_write_bytecode = True  # the only bytecode written is what ``bytecode`` compiles
    commands[argv[1]](Path(argv[2]).resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
