"""Lambda zips per stage (`make package`) and their check in a clean Python (`make check-package`).

package: the stage's Zappa settings are rendered (shared/tools/deploy/stages.py) and each `<app>_<stage>` is
built with `zappa package` into `dist/<app>_<stage>.zip`. Zappa zips the *active virtualenv*, so the
zips are built from a runtime-only venv (`.local/deploy/venv`: the project's runtime dependencies and
zappa, rebuilt when pyproject.toml changes), never from the dev venv, and made by the runtime's own
Python (`zappa_settings.json` `runtime`, found or fetched by runtime_python.py), whose wheels and bytecode
are the runtime's. That venv's pip is told (PEP 600 `_manylinux`) which glibc the runtime's image has
(python3.12 and newer run on Amazon Linux 2023: 2.34), so it picks only wheels that run there and Zappa's
download of "precompiled" wheels from PyPI is not needed and turned off. Then each zip is
cut to its own function's import closure (`function_tops`: the imports of the function's entry modules
followed through our sources, the distributions they name with what those require, Zappa's handler), so
no zip carries boto3/botocore/s3transfer/jmespath (Lambda provides them), zappa's tooling dependencies,
pip/setuptools, `*.dist-info`, tests, `shared/tools`, Babel's locale data other than the apps' languages,
nor another function's packages (the pipeline no Flask, taskapp no SQLAlchemy). Every module is then
compiled to unchecked-hash bytecode by the runtime venv's Python (`compile_bytecode`): our sources stay
beside it, the dependencies ship bytecode only. A table prints each zip's size; any zip over 15 MiB fails
the command.

Without `--outputs`, the stage is rendered for the emulator (account 123456789012): moto is started,
the stage is provisioned there and its outputs are used. Those are the zips CI checks; `make deploy`
renders for the real account and packages again (release.py calls `build`).

check-package: each zip is unzipped into a read-only folder and Zappa's `handler.lambda_handler` is
driven in a `python -B` subprocess of a clean Python of the runtime's version (`.local/deploy/checkenv`:
only boto3/botocore at the pinned versions and SnapStart's `snapshot_restore_py`, as Lambda has; a web app
built at import and the SnapStart hooks run, as with SnapStart), with cwd the unzipped directory; any module of
the zip compiled at import (a .pyc missing) fails it, and so does a zip whose top-level names differ from
its function's closure; against a freshly provisioned emulator: API Gateway (REST v1 proxy)
requests for the web apps, an SQS batch on an ARN the stage maps (taskapp notifications, pipeline
ingest) whose effect is then read back, and the schedules of the apps without a queue. The analytics
function's pyarrow comes from the AWS SDK for pandas layer in AWS; here pyarrow (the dev pin) is
installed into `.local/deploy/layer/python` and put on that one subprocess's path, as Lambda does with
/opt/python.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from shared.platform.settings import ROOT
from shared.tools.deploy import stages
from shared.tools.deploy.runtime_python import DEPLOY_DIR, make_venv, python_version, runtime_python
from shared.tools.deploy.runtime_python import run as _run

RUNTIME_VENV = DEPLOY_DIR / "venv"
CHECK_VENV = DEPLOY_DIR / "checkenv"
LAYER_DIR = DEPLOY_DIR / "layer" / "python"
MAX_BYTES = 15 * 1024 * 1024  # ours: Lambda takes 50 MiB zipped; cold start, not size, is what users feel
LAMBDA_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath")
# cryptography (with cffi, pycparser) is 4.7 MiB of a 15 MiB zip and only python-jose's optional backend:
# without it python-jose verifies Cognito's RS256 tokens with its pure-Python `rsa` backend (a dependency).
# PyMySQL needs it only for caching_sha2_password over plain TCP: RDS URLs use TLS (README, "Deploying").
LEFT_OUT = ("cryptography", "cffi", "pycparser")
# The zip-root handler.py imports zappa.handler, which needs these (zappa's other dependencies are tooling)
HANDLER_NEEDS = ("durationpy", "werkzeug")
PROJECT_PACKAGES = ("reqsys", "childsys", "taskapp", "shared")
ZAPPA_FILES = ("handler.py", "zappa_settings.py", "package_info.json")
FUNCTION_FILE = "function.json"  # the entry modules a zip was cut for (ours, read by check-package)
LOCALES = ("root", "ko", "en")  # shared/platform/web.py LANGUAGES, and the parent of both
# pydantic's EmailStr checks email-validator's version with importlib.metadata when a model is built
KEEP_METADATA = ("email_validator",)
# the glibc of the image each Lambda Python runtime runs on: Amazon Linux 2, then 2023
LAMBDA_GLIBC = {"python3.11": (2, 26), "python3.12": (2, 34), "python3.13": (2, 34)}
_MANYLINUX = '''"""PEP 600: pip here picks only wheels Lambda's {runtime} runs (glibc {glibc[0]}.{glibc[1]})."""


def manylinux_compatible(major, minor, arch):
    return (major, minor) <= {glibc}
'''


def max_glibc() -> tuple[int, int]:
    return LAMBDA_GLIBC[stages.runtime()]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pin(name: str) -> str:
    """`name==version` as pinned in pyproject.toml (runtime or dev)."""
    project = _pyproject()
    for requirement in project["dependencies"] + project["optional-dependencies"]["dev"]:
        if requirement.split("==")[0].split("[")[0].strip().lower() == name:
            return requirement.split("#")[0].strip()
    raise KeyError(f"{name} is not pinned in pyproject.toml")


def _venv(path: Path, requirements: list[str], strip: bool = False) -> Path:
    """A venv of the runtime's Python at `path` with exactly `requirements`, rebuilt only when they (or
    pyproject.toml, or the runtime) change."""
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + "\n".join(
        requirements + [str(strip), stages.runtime(), str(max_glibc())]).encode())
    stamp = path / f".installed-{digest.hexdigest()[:12]}"
    if stamp.is_file():
        return path
    shutil.rmtree(path, ignore_errors=True)
    make_venv(path, runtime_python(stages.runtime()))
    site = next((path / "lib").glob("python3*/site-packages"))
    (site / "_manylinux.py").write_text(_MANYLINUX.format(runtime=stages.runtime(), glibc=max_glibc()))
    _run([str(path / "bin" / "pip"), "install", "-qq", "--disable-pip-version-check", "--prefer-binary",
          *requirements])
    _check_wheels(site)
    if strip and shutil.which("strip"):
        # symbol tables are for debuggers: -2.1 MiB compressed (SQLAlchemy's and greenlet's extensions)
        _run(["strip", "--strip-unneeded", *map(str, site.rglob("*.so"))])
    stamp.touch()
    return path


def _check_wheels(site: Path) -> None:
    """Every binary wheel installed must have a tag Lambda's glibc runs (never one built here)."""
    bad = []
    for wheel in site.glob("*.dist-info/WHEEL"):
        tags = [line.split(":", 1)[1].strip() for line in wheel.read_text().splitlines() if line.startswith("Tag:")]
        platforms = {tag.rsplit("-", 1)[-1] for tag in tags}
        if platforms == {"any"}:
            continue
        ok = any(p in ("manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64") or (
            p.startswith("manylinux_") and tuple(map(int, p.split("_")[1:3])) <= max_glibc()) for p in platforms)
        if not ok:
            bad.append(f"{wheel.parent.name} ({', '.join(sorted(platforms))})")
    if bad:
        raise SystemExit("wheels that would not run on Lambda: " + "; ".join(bad))


def runtime_venv() -> Path:
    """The project's runtime dependencies plus zappa (which must run in the venv it zips)."""
    return _venv(RUNTIME_VENV, _pyproject()["dependencies"] + [_pin("zappa")], strip=True)


def check_venv() -> Path:
    """A clean Python with only what Lambda's runtime has: boto3/botocore (and their dependencies), and
    SnapStart's hooks module."""
    return _venv(CHECK_VENV, [_pin("boto3"), _pin("snapshot-restore-py")])  # botocore as this boto3 pins


def layer_dir() -> Path:
    """pyarrow where the AWS SDK for pandas layer puts it (/opt/python), for the analytics check."""
    stamp = LAYER_DIR / f".installed-{_pin('pyarrow')}-{stages.runtime()}"
    if not stamp.is_file():
        shutil.rmtree(LAYER_DIR, ignore_errors=True)
        _run([str(check_venv() / "bin" / "python"), "-m", "pip", "install", "-qq", "--disable-pip-version-check",
              "--only-binary=:all:", "--target", str(LAYER_DIR), _pin("pyarrow")])
        stamp.touch()
    return LAYER_DIR


# --- what a zip may hold ----------------------------------------------------------------------------

_CLOSURE = r"""
import json, sys
from importlib import metadata
from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.utils import canonicalize_name

roots, skip, no_deps = (json.loads(arg) for arg in sys.argv[1:4])
skip = {canonicalize_name(n) for n in skip}
tops, todo, seen = {}, [Requirement(r) for r in roots], set()
while todo:
    req = todo.pop()
    key = canonicalize_name(req.name)
    if key in skip or key in seen:
        continue
    seen.add(key)
    dist = metadata.distribution(req.name)
    names = {str(f).split("/")[0] for f in dist.files or [] if not str(f).startswith("..")}
    tops[key] = sorted(n for n in names if not n.endswith(".dist-info") and n != "__pycache__")
    if key in no_deps:
        continue
    for sub in map(Requirement, dist.requires or []):
        extras = req.extras or {""}
        if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
            todo.append(sub)
print(json.dumps(tops))
"""


def _keep(name: str, allowed: set[str]) -> bool:
    parts = name.split("/")
    top = parts[0]
    if top.endswith(".dist-info"):
        kept = top.split("-")[0]
        return kept in KEEP_METADATA and kept in allowed and parts[-1] == "METADATA"
    if _module_top(top) not in allowed or "__pycache__" in parts or name.endswith(".pyc"):
        return False
    if name.startswith("babel/locale-data/"):
        return parts[-1].removesuffix(".dat") in LOCALES
    if top == "shared" and len(parts) > 2:  # `shared` ships by room: the function's own
        return "/".join(parts[:2]) in allowed and parts[1] != "tools"
    return True


def prune(zip_path: Path, allowed: set[str]) -> list[str]:
    """Rewrite the zip without what Lambda must not carry; returns the top-level names dropped."""
    dropped: set[str] = set()
    tmp = zip_path.with_suffix(".tmp")
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if _keep(info.filename, allowed):
                dst.writestr(info, src.read(info), zipfile.ZIP_DEFLATED)
            else:
                dropped.add(info.filename.split("/")[0])
    tmp.replace(zip_path)
    return sorted(dropped)


def compile_bytecode(zip_path: Path, python: Path, entries: list[str]) -> None:
    """Compile every module in the zip with `python` (the runtime's version), unchecked-hash .pyc.

    Lambda's `/var/task` is read-only: without bytecode in the zip every cold start compiles each
    module it imports again. An unchecked-hash .pyc is used without a look at the source's timestamp.
    The project's own modules keep their source beside `__pycache__/` (tracebacks show our lines); the
    dependencies ship bytecode only (`name.pyc` where `name.py` was), which keeps the largest zip
    under MAX_BYTES. FUNCTION_FILE records the entries the zip was cut for, for check-package.
    """
    with tempfile.TemporaryDirectory(prefix="bytecode-") as tmp:
        root = Path(tmp) / "task"
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(root)
        (root / FUNCTION_FILE).write_text(json.dumps({"entries": entries}, indent=1) + "\n")
        ours = [p for p in root.iterdir() if p.name in PROJECT_PACKAGES or p.name in ZAPPA_FILES]
        theirs = [p for p in root.iterdir() if p not in ours and (p.is_dir() or p.suffix == ".py")]
        # tracebacks name the files where Lambda unpacks them (/var/task), not this build's temporary folder
        compile_ = [str(python), "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
                    "-s", str(root), "-p", "/var/task"]
        _run([*compile_, *map(str, ours)], stdout=subprocess.DEVNULL)
        if theirs:
            _run([*compile_, "-b", *map(str, theirs)], stdout=subprocess.DEVNULL)
        for top in theirs:
            for source in [top] if top.is_file() else top.rglob("*.py"):
                if source.with_suffix(".pyc").is_file():
                    source.unlink()
        tmp_zip = zip_path.with_suffix(".tmp")
        with zipfile.ZipFile(tmp_zip, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    info = zipfile.ZipInfo(str(path.relative_to(root)), date_time=(2020, 1, 1, 0, 0, 0))
                    info.external_attr = 0o644 << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    dst.writestr(info, path.read_bytes())
        tmp_zip.replace(zip_path)


# --- one zip per function: its import closure ------------------------------------------------------

# What a function's code imports is read from the source (imports inside functions too, since a lazy
# import still runs in Lambda; `if TYPE_CHECKING:` blocks never do). Entries: the app_function's module
# and every event handler's module; an entry that is an app's package (`reqsys`, what Zappa imports for
# the web app) brings all of that app's modules, since an app loads some by name (taskapp's job kinds,
# Alembic's migrations). Project code ships by unit (an app's package, or one room of `shared/`), its
# data files (templates, translations, migrations) with it; the third-party packages are the
# distributions those imports name and what they require.
APP_PACKAGES = ("reqsys", "childsys", "taskapp")
# Distributions a function loads by name, not by an import statement in our code: SQLAlchemy opens
# `mysql+pymysql://` URLs with PyMySQL; pydantic's EmailStr imports email-validator; zoneinfo reads
# tzdata where the image has no time zones.
LOADED_BY_NAME = {"flask-sqlalchemy": ("pymysql",), "pydantic": ("email-validator",), "zoneinfo": ("tzdata",)}
# Imported by our code but never shipped: Lambda's own SDK and SnapStart hooks, the analytics function's
# layer (pyarrow),
# and the local report engine of `make run` (DuckDB, sqlglot; Athena runs the reports in AWS).
NOT_SHIPPED = (*LAMBDA_PROVIDED, "snapshot_restore_py", "pyarrow", "duckdb", "sqlglot")


def _module_file(root: Path, name: str) -> Path | None:
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, name: str) -> set[str]:
    """Absolute module names a module's source imports (and, for `from a import b`, `a.b` too)."""
    tree = ast.parse(path.read_bytes(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - child.level + 1])
                    module = f"{base}.{child.module}" if child.module else base
                else:
                    module = child.module or ""
                found.add(module)
                found.update(f"{module}.{alias.name}" for alias in child.names if alias.name != "*")
            visit(child)

    visit(tree)
    return found


def _unit(module: str) -> str:
    """The shipping unit of a project module: its app's package, or `shared/<room>`."""
    parts = module.split(".")
    return "/".join(parts[:2]) if parts[0] == "shared" and len(parts) > 1 else parts[0]


@dataclass
class Closure:
    """What one function's code reaches: project modules and units, third-party and stdlib names."""

    modules: set[str] = field(default_factory=set)
    units: set[str] = field(default_factory=set)
    third_party: set[str] = field(default_factory=set)
    stdlib: set[str] = field(default_factory=set)


def code_closure(root: Path, entries: list[str]) -> Closure:
    """Follow the imports of `entries` through the project's sources under `root`."""
    result = Closure()
    todo = list(entries)
    for entry in entries:
        top = entry.split(".")[0]
        if entry in APP_PACKAGES:  # the app's package: all of it (modules loaded by name, migrations)
            for path in sorted((root / top).rglob("*.py")):
                relative = path.relative_to(root).with_suffix("")
                parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
                if all(part.isidentifier() for part in parts):
                    todo.append(".".join(parts))
                else:  # migrations/versions files: read for their imports only
                    todo += [n for n in _imports(path, top) if n.split(".")[0] not in PROJECT_PACKAGES]
    while todo:
        name = todo.pop()
        if not name or name in result.modules:
            continue
        top = name.split(".")[0]
        if top not in PROJECT_PACKAGES:
            (result.stdlib if top in sys.stdlib_module_names else result.third_party).add(top)
            continue
        path = _module_file(root, name)
        if path is None:  # `from package import name` where name is not a module, or a unit not shipped
            if not (root / _unit(name)).exists() and not (root / f"{_unit(name)}.py").exists():
                result.units.add(_unit(name))
            continue
        result.modules.add(name)
        result.units.add(_unit(name))
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages run first
        todo += sorted(_imports(path, name))
    result.third_party -= {"__future__"}
    result.stdlib.discard("__future__")
    return result


def _distributions(venv: Path, tops: list[str]) -> dict[str, list[str]]:
    """import name -> the distributions in the runtime venv that provide it."""
    script = ("import json, sys\nfrom importlib import metadata\nm = metadata.packages_distributions()\n"
              "print(json.dumps({t: m.get(t, []) for t in json.loads(sys.argv[1])}))")
    out = _run([str(venv / "bin" / "python"), "-c", script, json.dumps(tops)], capture_output=True, text=True).stdout
    return json.loads(out)


def function_tops(venv: Path, root: Path, entries: list[str]) -> tuple[set[str], Closure]:
    """The top-level names one function's zip holds: its project units, the distributions its code
    imports with what they require, and what Zappa's handler needs."""
    closure = code_closure(root, entries)
    names = sorted(closure.third_party - set(NOT_SHIPPED))
    found = _distributions(venv, names)
    unknown = [name for name in names if not found.get(name)]
    if unknown:
        raise SystemExit(f"{', '.join(entries)} import {', '.join(unknown)}, in no runtime dependency "
                         "(pyproject.toml) nor in NOT_SHIPPED")
    roots = sorted({dist for name in names for dist in found[name]})
    for trigger, loaded in LOADED_BY_NAME.items():
        if trigger in {d.lower() for d in roots} or trigger in closure.stdlib:
            roots += loaded
    roots += ["zappa", *HANDLER_NEEDS]
    out = _run([str(venv / "bin" / "python"), "-c", _CLOSURE, json.dumps(roots),
                json.dumps(LAMBDA_PROVIDED + LEFT_OUT), json.dumps(["zappa"])], capture_output=True, text=True).stdout
    tops = {top for names_ in json.loads(out).values() for top in names_}
    tops |= closure.units | {*ZAPPA_FILES, FUNCTION_FILE}
    if any(unit.startswith("shared/") for unit in closure.units):
        tops.add("shared")
    return {_module_top(top) for top in tops}, closure


def _module_top(name: str) -> str:
    """`six.py` and `six.pyc` (a module at the top, shipped as bytecode) are both `six`."""
    return name if name in ZAPPA_FILES else name.removesuffix(".pyc").removesuffix(".py")


def _zip_tops(names: list[str]) -> set[str]:
    """A zip's top-level names, `shared` counted by room (`shared/platform`) as the closure ships it."""
    tops = set()
    for name in names:
        parts = name.split("/")
        if parts[0].endswith(".dist-info") or "__pycache__" in parts[:2]:
            continue
        if parts[0] == "shared" and len(parts) > 2:
            tops.add("/".join(parts[:2]))
        tops.add(_module_top(parts[0]))
    return tops


def closure_problems(zip_names: list[str], expected: set[str]) -> list[str]:
    """What a zip carries that its function never imports, and what it lacks."""
    tops = _zip_tops(zip_names)
    extra = sorted(tops - expected)
    missing = sorted(expected - tops)
    return ([f"carries {', '.join(extra)}, which its function never imports"] if extra else []) + (
        [f"lacks {', '.join(missing)}, which its function imports"] if missing else [])


# --- package -----------------------------------------------------------------------------------------

def _packaging_settings(settings_file: Path, directory: Path) -> Path:
    """The rendered settings as packaged: the venv's wheels are already Lambda's, so no PyPI downloads."""
    settings = json.loads(Path(settings_file).read_text())
    for stage in settings.values():
        stage["use_precompiled_packages"] = False
    path = directory / "zappa_settings.json"
    path.write_text(json.dumps(settings))
    return path


def _zappa_env(venv: Path, region: str) -> dict[str, str]:
    # `zappa package` makes boto3 clients without calling AWS: a region and inert credentials suffice
    return {"PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", "VIRTUAL_ENV": str(venv),
            "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8", "AWS_REGION": region,  # noqa: S108
            "AWS_DEFAULT_REGION": region, "AWS_ACCESS_KEY_ID": "packaging-only",
            "AWS_SECRET_ACCESS_KEY": "packaging-only", "AWS_EC2_METADATA_DISABLED": "true"}


def stage_entries(stage_settings: dict) -> list[str]:
    """The modules a rendered stage's function starts from: its app_function's and its events' handlers'."""
    entries = {stage_settings["app_function"].rpartition(".")[0]}
    for event in stage_settings.get("events") or []:
        entries.add(event["function"].rpartition(".")[0])
    return sorted(entries)


def build(stage: str, settings_file: Path, dist: Path = Path("dist")) -> dict[str, Path]:
    """`zappa package` every `<app>_<stage>` of the rendered settings into `dist`, each cut to its own
    function's import closure and compiled to bytecode; app -> zip."""
    settings = json.loads(Path(settings_file).read_text())
    names = [name for name in settings if name.endswith(f"_{stage}")]
    venv = runtime_venv()
    python = venv / "bin" / "python"
    for name in names:
        _check_runtime(settings[name], python)
    allowed = {name: function_tops(venv, ROOT, stage_entries(settings[name]))[0] for name in names}
    dist = Path(dist).resolve()
    dist.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="package-") as tmp:
        packaging = _packaging_settings(Path(settings_file), Path(tmp))
        env = _zappa_env(venv, settings[names[0]]["aws_region"])

        def one(name: str) -> Path:
            out = dist / f"{name}.zip"
            out.unlink(missing_ok=True)
            log = Path(tmp) / f"{name}.log"
            with log.open("w") as stream:
                result = subprocess.run(  # noqa: S603 - the runtime venv's zappa, fixed arguments
                    [str(venv / "bin" / "zappa"), "package", name, "-s", str(packaging), "-o", str(out)],
                    cwd=ROOT, env=env, stdout=stream, stderr=subprocess.STDOUT, check=False)
            if result.returncode or not out.is_file():
                raise SystemExit(f"zappa package {name} failed:\n{log.read_text()[-4000:]}")
            prune(out, allowed[name])
            compile_bytecode(out, python, stage_entries(settings[name]))
            return out

        with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
            zips = list(pool.map(one, names))
    return {name.removesuffix(f"_{stage}"): path for name, path in zip(names, zips, strict=True)}


def _check_runtime(stage_settings: dict, python: Path) -> None:
    """The bytecode is only used by the Python that wrote it: the runtime venv must be the stage's runtime."""
    version = python_version(python)
    if stage_settings.get("runtime", version) != version:
        raise SystemExit(f"the stage runs {stage_settings['runtime']} but the runtime venv is {version}: bytecode "
                         "from it would be ignored in Lambda")


def zip_stats(path: Path) -> tuple[int, int]:
    with zipfile.ZipFile(path) as archive:
        return path.stat().st_size, len([i for i in archive.infolist() if not i.is_dir()])


def size_table(zips: dict[str, Path]) -> tuple[str, list[str]]:
    """The printed table, and the zips over the limit."""
    lines = [f"{'zip':<28} {'MiB':>7} {'files':>6}"]
    over = []
    for path in zips.values():
        size, files = zip_stats(path)
        lines.append(f"{path.name:<28} {size / 2**20:>7.2f} {files:>6}")
        if size > MAX_BYTES:
            over.append(f"{path.name} is {size / 2**20:.2f} MiB, over {MAX_BYTES / 2**20:.0f} MiB")
    return "\n".join(lines), over


@contextlib.contextmanager
def emulator(outputs_dir: Path) -> Iterator[dict[str, str]]:
    """A moto server on a free port, this process's AWS environment pointing at it; yields that environment."""
    import socket

    from moto.server import ThreadedMotoServer

    from shared.platform import aws

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {**aws.emulator_environment(f"http://127.0.0.1:{port}"), "AWS_OUTPUTS_DIR": str(outputs_dir),
           # the same user pool and client ids in every emulator: the ones a zip was rendered with
           "MOTO_COGNITO_IDP_USER_POOL_ID_STRATEGY": "HASH", "MOTO_COGNITO_IDP_USER_POOL_CLIENT_ID_STRATEGY": "HASH"}
    saved = {key: os.environ.get(key) for key in [*env, "AWS_PROFILE", "AWS_SESSION_TOKEN"]}
    os.environ.update(env)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    aws.clear_cache()
    try:
        yield env
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        aws.clear_cache()


def _quiet_werkzeug() -> None:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)


def package_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.tools.deploy package", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--out", type=Path, default=Path("dist"))
    parser.add_argument("--outputs", type=Path, help="provisioning outputs of a real account (default: render "
                                                     "for the emulator, as check-package drives the zips)")
    parser.add_argument("--account-id", help="with --outputs (default: the caller's account, from sts)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.outputs:
        from shared.platform.aws import client

        outputs = json.loads(args.outputs.read_text())
        account_id = args.account_id or client("sts").get_caller_identity()["Account"]
        settings_file = stages.write(args.stage, account_id=account_id, outputs=outputs)
    else:
        _quiet_werkzeug()
        from shared.tools import provision

        with tempfile.TemporaryDirectory(prefix="package-aws-") as tmp, emulator(Path(tmp)):
            outputs = provision.apply(args.stage).outputs
            settings_file = stages.write(args.stage, account_id=stages.LOCAL_ACCOUNT, region="ap-northeast-2",
                                         outputs=outputs, env={})
        print(f"rendered {settings_file} for the emulator (account {stages.LOCAL_ACCOUNT})", flush=True)
    zips = build(args.stage, settings_file, args.out)
    table, over = size_table(zips)
    print(table)
    print(f"packaged {len(zips)} zips in {time.monotonic() - started:.1f} s")
    for line in over:
        print(f"FAIL {line}", file=sys.stderr)
    return 1 if over else 0


# --- check-package -----------------------------------------------------------------------------------

# Runs in the clean Python, cwd = the unzipped package (as /var/task): Lambda imports handler.lambda_handler.
_DRIVER = r"""
import importlib.machinery, json, os, sys, traceback

# Lambda cannot write under /var/task, so a module without bytecode there is compiled again at every
# cold start: run with -B from a read-only copy and record every compile of a file in the zip.
compiled = []
_source_to_code = importlib.machinery.SourceFileLoader.source_to_code


def _recording(self, data, path, *args, **kwargs):
    if str(path).startswith(os.getcwd() + os.sep):
        compiled.append(os.path.relpath(path))
    return _source_to_code(self, data, path, *args, **kwargs)


importlib.machinery.SourceFileLoader.source_to_code = _recording


class Context:
    function_name = "check-package"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:ap-northeast-2:123456789012:function:check-package"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/check-package"
    log_stream_name = "check"
    def get_remaining_time_in_millis(self):
        return 30000

spec = json.load(sys.stdin)
answers = []
try:
    for module in spec.get("migrate", []):  # what the admin's Database page does in AWS
        import importlib
        from shared.platform.db import upgrade_schema
        upgrade_schema(importlib.import_module(module).create_app())
    from handler import lambda_handler
    # SnapStart: the app was built at import (Lambda's init); then the snapshot and a restore, as the
    # runtime runs its hooks, before the first event
    import snapshot_restore_py
    for hook, args, kwargs in snapshot_restore_py.get_before_snapshot() + snapshot_restore_py.get_after_restore():
        hook(*args, **kwargs)
except Exception:
    answers.append({"error": traceback.format_exc(limit=8)})
else:
    for event in spec["events"]:
        try:
            answers.append({"answer": lambda_handler(event, Context())})
        except Exception:
            answers.append({"error": traceback.format_exc(limit=8)})
with open(sys.argv[1], "w") as out:
    json.dump({"answers": answers, "compiled": sorted(set(compiled))}, out, default=str)
"""


def api_event(path: str, api_stage: str) -> dict:
    """An API Gateway REST API (v1) proxy event for GET `path`."""
    headers = {"Host": "abc123.execute-api.ap-northeast-2.amazonaws.com", "Accept": "text/html,application/json",
               "User-Agent": "check-package", "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Port": "443",
               "X-Forwarded-Proto": "https"}
    return {
        "resource": "/{proxy+}", "path": path, "httpMethod": "GET", "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()}, "queryStringParameters": None,
        "multiValueQueryStringParameters": None, "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None, "body": None, "isBase64Encoded": False,
        "requestContext": {"resourcePath": "/{proxy+}", "httpMethod": "GET", "path": f"/{api_stage}{path}",
                           "stage": api_stage, "requestId": str(uuid.uuid4()), "apiId": "abc123",
                           "accountId": stages.LOCAL_ACCOUNT, "protocol": "HTTP/1.1",
                           "identity": {"sourceIp": "203.0.113.9", "userAgent": "check-package"}},
    }


def sqs_event(arn: str, bodies: list[str], fifo_group: str | None = None) -> dict:
    """An SQS batch as Lambda's event source mapping delivers it."""
    records = []
    for body in bodies:
        attributes = {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000)),
                      "SenderId": "AIDACHECK", "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000))}
        if fifo_group:
            attributes |= {"MessageGroupId": fifo_group, "MessageDeduplicationId": uuid.uuid4().hex,
                           "SequenceNumber": str(time.time_ns())}
        records.append({"messageId": str(uuid.uuid4()), "receiptHandle": uuid.uuid4().hex, "body": body,
                        "attributes": attributes, "messageAttributes": {}, "md5OfBody": hashlib.md5(  # noqa: S324
                            body.encode()).hexdigest(), "eventSource": "aws:sqs", "eventSourceARN": arn,
                        "awsRegion": arn.split(":")[3]})
    return {"Records": records}


def schedule_event(function: str, lambda_name: str) -> dict:
    """A Zappa `expression` event as EventBridge delivers it (Zappa reads the function from the rule name)."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": stages.LOCAL_ACCOUNT, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": "ap-northeast-2", "detail": {},
            "resources": [f"arn:aws:events:ap-northeast-2:{stages.LOCAL_ACCOUNT}:rule/{lambda_name}-{function}"]}


def zappa_settings(zip_path: Path) -> dict:
    """The zip's zappa_settings.py (Zappa writes plain literal assignments), read without running it."""
    with zipfile.ZipFile(zip_path) as archive:
        tree = ast.parse(archive.read("zappa_settings.py").decode())
    return {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)}


@dataclass
class Case:
    """One thing driven through the handler, and how to judge its answer (None when right)."""

    what: str
    event: dict
    judge: object  # Callable[[dict], str | None]: the answer -> a problem, or None
    after: object = None  # Callable[[], str | None]: the effect, read back from the emulator


@dataclass
class Plan:
    cases: list[Case] = field(default_factory=list)
    migrate: list[str] = field(default_factory=list)
    pythonpath: str = ""


def _http(status: int, needle: str):
    def judge(answer: dict) -> str | None:
        if not isinstance(answer, dict) or answer.get("statusCode") != status:
            code = answer.get("statusCode") if isinstance(answer, dict) else answer
            return f"statusCode {code}, expected {status}"
        body = answer.get("body") or ""
        if needle not in body:
            return f"body lacks {needle!r}: {body[:200]!r}"
        return None
    return judge


def _no_failures(answer) -> str | None:
    if answer != {"batchItemFailures": []}:
        return f"expected {{'batchItemFailures': []}}, got {answer!r}"
    return None


def _arn_for(settings: dict, function: str) -> str:
    arns = [arn for arn, functions in settings["AWS_EVENT_MAPPING"].items()
            if function in ([functions] if isinstance(functions, str) else functions)]
    if not arns:
        raise LookupError(f"the package maps no event source to {function}")
    return arns[0]


def plan(app: str, settings: dict, stage: str) -> Plan:
    """What to drive through `app`'s zip, with what answers and effects to expect."""
    from shared.platform.aws import client

    env = settings["ENVIRONMENT_VARIABLES"]
    api_stage = settings["API_STAGE"]
    lambda_name = stages.lambda_name(app, stage)
    result = Plan()
    if app in stages.WEB_APPS:
        result.cases += [
            Case("GET /healthz", api_event("/healthz", api_stage), _http(200, '"ok"')),
            Case("GET /auth/login", api_event("/auth/login", api_stage), _http(200, "<form")),
        ]
    if app in stages.VPC_APPS:
        result.migrate = [app]
        result.cases.append(Case(f"schedule {app}.relay.handler", schedule_event(f"{app}.relay.handler", lambda_name),
                                 lambda answer: None if answer == 0 else f"expected 0 events sent, got {answer!r}"))
    if app == "reqsys":
        result.cases.append(Case("GET /api/nurseries", api_event("/api/nurseries", api_stage),
                                 _http(200, '"nurseries"')))
    if app == "taskapp":
        user = f"check-{uuid.uuid4().hex[:12]}"
        note_id = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}000000Z-{uuid.uuid4().hex}"
        notice = {"note_id": note_id, "user": user, "kind": "ASSIGNED", "at": "2026-01-01T00:00:00+00:00",
                  "title": "check-package", "task_id": "t-1"}
        arn = _arn_for(settings, "taskapp.notifications.handler")

        def stored() -> str | None:
            item = client("dynamodb").get_item(TableName=env["TASKS_TABLE"],
                                               Key={"pk": {"S": f"USER#{user}"}, "sk": {"S": f"NOTE#{note_id}"}})
            return None if item.get("Item") else f"no notification {note_id} in {env['TASKS_TABLE']}"

        result.cases.append(Case(f"SQS {arn.rsplit(':', 1)[-1]} (1 notice)", sqs_event(arn, [json.dumps(notice)]),
                                 _no_failures, stored))
    if app == "pipeline":
        event_id = str(uuid.uuid4())
        child, nursery = "202301019999999", "A00017"
        envelope = {"event_id": event_id, "type": "REQUEST", "occurred_at": "2026-01-01T00:00:00+00:00",
                    "version": 1, "actor": "check@example.com",
                    "application": {"child_id": child, "nursery_id": nursery, "child_name": "check",
                                    "parent_email": "check@example.com"}}
        arn = _arn_for(settings, "shared.pipeline.ingest.handler")

        def ingested() -> str | None:
            items = client("dynamodb").query(
                TableName=env["EVENTS_TABLE"], KeyConditionExpression="request_id = :r AND event_id = :e",
                ExpressionAttributeValues={":r": {"S": child + nursery}, ":e": {"S": event_id}})["Items"]
            return None if items else f"event {event_id} not in {env['EVENTS_TABLE']}"

        result.cases.append(Case(f"SQS {arn.rsplit(':', 1)[-1]} (1 event)",
                                 sqs_event(arn, [json.dumps(envelope)], fifo_group=child + nursery),
                                 _no_failures, ingested))
    if app == "analytics":
        result.pythonpath = str(layer_dir())

        def summary(answer) -> str | None:
            return None if isinstance(answer, dict) and answer else f"expected an export summary, got {answer!r}"

        result.cases.append(Case("schedule taskapp.analytics.export.handler",
                                 schedule_event("taskapp.analytics.export.handler", lambda_name), summary))
    return result


def check_closure(zip_path: Path, task: Path) -> tuple[str, str, bool]:
    """The zip holds its function's import closure: no top-level package the function never imports,
    none it imports missing (read from the zip's own sources and FUNCTION_FILE)."""
    try:
        entries = json.loads((task / FUNCTION_FILE).read_text())["entries"]
    except (OSError, KeyError, ValueError) as err:
        return ("import closure", f"no {FUNCTION_FILE}: {err}", False)
    expected, _ = function_tops(runtime_venv(), task, entries)
    with zipfile.ZipFile(zip_path) as archive:
        problems = closure_problems(archive.namelist(), expected)
    return ("import closure", "; ".join(problems) or f"{len(expected)} top-level names, from {', '.join(entries)}",
            not problems)


def check_zip(zip_path: Path, python: Path, aws_env: dict[str, str], stage: str) -> list[tuple[str, str, bool]]:
    """Drive one zip; (what, answer in short, ok) per case."""
    app = zip_path.stem.removesuffix(f"_{stage}")
    try:
        settings = zappa_settings(zip_path)
        the_plan = plan(app, settings, stage)
    except (KeyError, LookupError, SyntaxError, ValueError) as err:
        return [("read zappa_settings.py", f"{type(err).__name__}: {err}", False)]
    with tempfile.TemporaryDirectory(prefix=f"check-{app}-") as tmp:
        task = Path(tmp) / "task"
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(task)
        closure = check_closure(zip_path, task)
        for path in [task, *task.rglob("*")]:  # read-only, as /var/task
            path.chmod(path.stat().st_mode & ~0o222)
        answers_file = Path(tmp) / "answers.json"
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "LANG": "C.UTF-8", "TZ": ":UTC", "PYTHONNOUSERSITE": "1",
               # as Lambda, but for AWS_LAMBDA_FUNCTION_NAME: with it the emulator (local mode) is refused
               "LAMBDA_TASK_ROOT": str(task),
               **{k: v for k, v in aws_env.items() if k != "AWS_OUTPUTS_DIR"},
               # in AWS a SSM parameter (DATABASE_URL); Lambda may write only under /tmp
               "DATABASE_URL": f"sqlite:///{Path(tmp) / f'{app}.db'}"}
        if the_plan.pythonpath:
            env["PYTHONPATH"] = the_plan.pythonpath
        if app in stages.WEB_APPS:  # as a SnapStart stage sets it (stages.render_stage)
            env["INSTANTIATE_LAMBDA_HANDLER_ON_IMPORT"] = "true"
        spec = {"migrate": the_plan.migrate, "events": [case.event for case in the_plan.cases]}
        try:
            run = subprocess.run([str(python / "bin" / "python"), "-B", "-c", _DRIVER, str(answers_file)],  # noqa: S603
                                 cwd=task, env=env, input=json.dumps(spec), capture_output=True, text=True,
                                 timeout=300, check=False)
        finally:
            for path in [task, *task.rglob("*")]:
                path.chmod(path.stat().st_mode | 0o200)
        if run.returncode or not answers_file.is_file():
            return [closure, ("import handler", f"exit {run.returncode}: {run.stderr[-2000:]}", False)]
        driven = json.loads(answers_file.read_text())
    answers, compiled = driven["answers"], driven["compiled"]
    bytecode = ("bytecode for every module imported", f"compiled at import: {', '.join(compiled[:8])}"
                f"{' ...' if len(compiled) > 8 else ''}" if compiled else "none compiled at import (-B, read-only)",
                not compiled)
    if len(answers) == 1 and "error" in answers[0] and len(the_plan.cases) != 1:
        return [closure, ("import handler", answers[0]["error"].strip().splitlines()[-1], False), bytecode]
    results = [closure]
    for case, answer in zip(the_plan.cases, answers, strict=True):
        if "error" in answer:
            results.append((case.what, answer["error"].strip().splitlines()[-1], False))
            continue
        problem = case.judge(answer["answer"]) or (case.after() if case.after else None)
        results.append((case.what, problem or _short(answer["answer"]), problem is None))
    return [*results, bytecode]


def _short(answer) -> str:
    if isinstance(answer, dict) and "statusCode" in answer:
        return f"{answer['statusCode']} {(answer.get('body') or '')[:60]!r}"
    text = json.dumps(answer, default=str)
    return text if len(text) <= 100 else text[:97] + "..."


def check(stage: str, dist: Path) -> bool:
    """Check every `<app>_<stage>.zip` in `dist`; prints what was driven and the answers."""
    zips = sorted(Path(dist).glob(f"*_{stage}.zip"))
    if not zips:
        print(f"no *_{stage}.zip in {dist}: run `make package STAGE={stage}` first", file=sys.stderr)
        return False
    python = check_venv()
    ok = True
    _quiet_werkzeug()
    from shared.tools import provision

    with tempfile.TemporaryDirectory(prefix="check-aws-") as tmp, emulator(Path(tmp)) as aws_env:
        provision.apply(stage)
        for zip_path in zips:
            started = time.monotonic()
            results = check_zip(zip_path, python, aws_env, stage)
            print(f"{zip_path.name} ({time.monotonic() - started:.1f} s)")
            for what, answer, good in results:
                print(f"  {'ok  ' if good else 'FAIL'} {what}: {answer}")
                ok = ok and good
    return ok


def check_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.tools.deploy check-package",
                                     description="Drive each zip's Zappa handler in a clean Python.")
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--out", type=Path, default=Path("dist"))
    args = parser.parse_args(argv)
    started = time.monotonic()
    good = check(args.stage, args.out)
    print(f"checked in {time.monotonic() - started:.1f} s: {'all answered correctly' if good else 'FAILED'}")
    return 0 if good else 1
