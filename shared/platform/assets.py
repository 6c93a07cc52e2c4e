"""Static files with a content hash in their URL, cached by browsers for a year.

A static folder's files are addressed as `<base>/<folder name>/<hash of the whole folder>/<file>`: any change
to any file gives every file of the folder a new URL, and the stylesheet's relative URLs (fonts, icons) carry
the same hash without rewriting them. Locally Flask serves that path (`/assets/...`); in AWS `STATIC_URL`
(the stage's static bucket, filled by shared/tools/provision.py) serves the same keys from S3, so no
Lambda is woken for a stylesheet.
"""

from __future__ import annotations

import hashlib
import mimetypes
from functools import lru_cache
from pathlib import Path

from flask import Flask, abort, current_app, g, send_from_directory

IMMUTABLE = "public, max-age=31536000, immutable"
mimetypes.add_type("font/woff2", ".woff2")
mimetypes.add_type("image/svg+xml", ".svg")


@lru_cache(maxsize=32)
def _folder_hash(folder: str, stamp: float) -> str:
    digest = hashlib.sha256()
    root = Path(folder)
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def folder_hash(folder: Path) -> str:
    """The content hash of a folder (recomputed when a file in it changes, for local editing)."""
    stamp = max((p.stat().st_mtime for p in folder.rglob("*") if p.is_file()), default=0.0)
    return _folder_hash(str(folder), stamp)


def folder_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".") and p.name != "README.md")


def static_folders(app: Flask) -> dict[str, Path]:
    """Name -> folder of every static folder the app serves: the shell's (`ui`) and the app's own."""
    return dict(app.extensions.get("asset_folders", {}))


def register(app: Flask, folders: dict[str, Path]) -> None:
    app.extensions["asset_folders"] = {name: Path(folder) for name, folder in folders.items() if Path(folder).is_dir()}

    @app.get("/assets/<name>/<version>/<path:filename>")
    def asset(name: str, version: str, filename: str):
        folder = app.extensions["asset_folders"].get(name)
        if folder is None:
            abort(404)
        response = send_from_directory(folder, filename)
        # an old page asking for an old version still gets the file, but not cached for a year
        response.headers["Cache-Control"] = IMMUTABLE if version == folder_hash(folder) else "no-cache"
        return response

    app.jinja_env.globals["static_url"] = static_url


def static_url(filename: str, folder: str = "ui") -> str:
    """The fingerprinted URL of `filename` in the static folder named `folder` ("ui" or the app's name)."""
    folders = current_app.extensions.get("asset_folders", {})
    if folder not in folders:
        raise KeyError(f"no static folder named {folder!r}")
    versions = g.setdefault("asset_versions", {})  # a page links several files: one look at the folder
    if folder not in versions:
        versions[folder] = folder_hash(folders[folder])
    version = versions[folder]
    base = current_app.config.get("STATIC_URL") or "/assets"
    return f"{base.rstrip('/')}/{folder}/{version}/{filename}"
