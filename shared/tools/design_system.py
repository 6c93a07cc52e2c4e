"""Bring the KRDS design system into shared/platform/static/krds/ from the pinned npm package.

`make design-system` runs this. It installs `krds-uiux@KRDS_VERSION` with npm into a scratch folder
(.local/krds-npm, never committed), then writes:

- `krds.css`: the @font-face rules, the light-mode design tokens, the reset's few rules we rely on, and only
  the rules of the components the pages use (COMPONENTS below), with their icons' URLs pointed at `img/`;
- `img/*.svg`: the icons those rules name;
- `fonts/PretendardGOV-{Regular,Bold}.woff2`: the font subset to ASCII plus every Hangul syllable and other
  non-ASCII character the templates, catalogues and sources use (fontTools; `font-display: swap`);
- `LICENSES.md`: the package's licence (ISC) and copyright note, and the font's own licence from its name table.

So `make run` and `make test` need no Node.js: the output is committed. Run this again after changing
KRDS_VERSION, COMPONENTS or the UI's text (new Korean words need their glyphs).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

KRDS_VERSION = "1.1.0"
ROOT = Path(__file__).resolve().parents[2]
SCRATCH = ROOT / ".local" / "krds-npm"
OUT = ROOT / "shared" / "platform" / "static" / "krds"

# Selectors (by how they start) of the KRDS components the pages use.
COMPONENTS = (
    ".krds-btn", ".krds-input", ".krds-form-select", ".krds-form-check", ".krds-check-area", ".form-group",
    ".fieldset", ".krds-badge", ".krds-table-wrap", ".tbl", ".krds-pagination", ".krds-step-wrap",
    ".krds-file-upload", ".krds-spinner", ".krds-identifier", "#krds-masthead", "#krds-skip-link",
)
# From the common stylesheet: the screen-reader-only helper.
COMMON = (".sr-only",)
# Weights the pages use (400 text, 700 headings and labels).
WEIGHTS = {"Regular": 400, "Bold": 700}
TEXT_SOURCES = ("reqsys", "childsys", "taskapp", "shared")
TEXT_SUFFIXES = {".html", ".po", ".py", ".json", ".yaml", ".yml", ".js", ".txt"}


def npm_install() -> Path:
    SCRATCH.mkdir(parents=True, exist_ok=True)
    (SCRATCH / "package.json").write_text('{"name": "krds-scratch", "private": true}\n')
    subprocess.run(  # noqa: S603
        ["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", "--save-exact",  # noqa: S607
         f"krds-uiux@{KRDS_VERSION}"],
        cwd=SCRATCH, check=True,
    )
    package = SCRATCH / "node_modules" / "krds-uiux"
    found = json.loads((package / "package.json").read_text())["version"]
    if found != KRDS_VERSION:
        sys.exit(f"npm installed krds-uiux {found}, not the pinned {KRDS_VERSION}")
    return package


# --- a small CSS block splitter (the package's CSS is machine-written: no braces inside strings) ---

def blocks(css: str) -> list[tuple[str, str | None]]:
    """Top-level (prelude, body) pairs; body None for statements such as @import/@charset."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    out, i, n = [], 0, len(css)
    while i < n:
        brace, semi = css.find("{", i), css.find(";", i)
        if brace == -1 and semi == -1:
            break
        if semi != -1 and (brace == -1 or semi < brace) and css[i:semi].strip().startswith("@"):
            out.append((css[i:semi].strip(), None))
            i = semi + 1
            continue
        depth, j = 1, brace + 1
        while depth and j < n:
            depth += {"{": 1, "}": -1}.get(css[j], 0)
            j += 1
        out.append((css[i:brace].strip(), css[brace + 1:j - 1]))
        i = j
    return out


def keep_selector(selector: str, prefixes: tuple[str, ...]) -> bool:
    selector = selector.strip()
    if "data-krds-mode" in selector or "high-contrast" in selector:
        return False
    return selector.startswith(prefixes)


def pick(css: str, prefixes: tuple[str, ...]) -> str:
    kept = []
    for prelude, body in blocks(css):
        if body is None:
            continue
        if prelude.startswith("@media"):
            if "prefers-color-scheme" in prelude or "print" in prelude:
                continue
            inner = pick(body, prefixes)
            if inner:
                kept.append(f"{prelude}{{{inner}}}")
        elif prelude.startswith("@"):
            continue
        else:
            selectors = [s.strip() for s in prelude.split(",") if keep_selector(s, prefixes)]
            if selectors:
                kept.append(f"{','.join(selectors)}{{{minify(body)}}}")
    return "\n".join(kept)


def minify(body: str) -> str:
    body = re.sub(r"\s+", " ", body).strip()
    return re.sub(r"\s*([;:{}])\s*", r"\1", body).replace(": ", ":")


def light_tokens(css: str) -> str:
    """The :root token declarations without the high-contrast set (the apps have no contrast switch)."""
    out = []
    for prelude, body in blocks(css):
        if body is None or prelude != ":root":
            continue
        decls = [d.strip() for d in body.split(";") if d.strip() and "high-contrast" not in d]
        out.append(":root{" + ";".join(decls) + "}")
    return "\n".join(out)


def copy_icons(css: str, icons: Path) -> str:
    (OUT / "img").mkdir(parents=True, exist_ok=True)

    def swap(match: re.Match) -> str:
        name = Path(match.group(1).strip("'\"")).name
        source = icons / name
        if not source.exists():
            return "url()"  # an icon the package names but does not ship
        shutil.copyfile(source, OUT / "img" / name)
        return f"url(img/{name})"

    return re.sub(r"url\(([^)]+\.svg)['\"]?\)", swap, css)


# --- the font ---

def ui_text() -> str:
    chars = {chr(c) for c in range(0x20, 0x7F)}
    chars |= set("·…–—‘’“”→←↑↓×✓©")
    for folder in TEXT_SOURCES:
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in TEXT_SUFFIXES and path.is_file() and "node_modules" not in path.parts:
                text = path.read_text(encoding="utf-8", errors="ignore")
                chars |= {ch for ch in text if ord(ch) > 0x7F and ch.isprintable() and not ch.isspace()}
    return "".join(sorted(chars))


def subset_fonts(package: Path) -> list[str]:
    from fontTools import subset
    from fontTools.ttLib import TTFont

    text = ui_text()
    (OUT / "fonts").mkdir(parents=True, exist_ok=True)
    notices = []
    for weight in WEIGHTS:
        source = package / "resources" / "fonts" / f"PretendardGOV-{weight}.subset.woff2"
        target = OUT / "fonts" / f"PretendardGOV-{weight}.woff2"
        options = subset.Options()
        options.flavor = "woff2"
        options.layout_features = ["kern", "liga", "calt", "ccmp", "locl", "tnum"]
        options.name_IDs = [0, 1, 2, 3, 4, 5, 6, 13, 14]  # keep copyright and licence
        font = TTFont(source)
        subsetter = subset.Subsetter(options)
        subsetter.populate(text=text)
        subsetter.subset(font)
        font.flavor = "woff2"
        font.save(target)
        names = font["name"]
        notices.append("\n".join(
            f"- {label}: {names.getDebugName(i)}" for i, label in ((4, "Font"), (0, "Copyright"), (13, "Licence"),
                                                                 (14, "Licence URL")) if names.getDebugName(i)))
    syllables = sum(1 for ch in text if 0xAC00 <= ord(ch) <= 0xD7A3)
    print(f"font subset: {len(text)} characters, {syllables} Hangul syllables")
    return notices


def font_faces() -> str:
    return "\n".join(
        f"@font-face{{font-family:'Pretendard GOV';font-style:normal;font-weight:{w};font-display:swap;"
        f"src:url(fonts/PretendardGOV-{name}.woff2) format('woff2')}}" for name, w in WEIGHTS.items())


def write_licenses(package: Path, font_notices: list[str]) -> None:
    meta = json.loads((package / "package.json").read_text())
    readme = (package / "README.md").read_text(encoding="utf-8")
    copyright_note = readme.split("## 저작권 및 라이선스", 1)[-1].strip() if "## 저작권" in readme else ""
    (OUT / "LICENSES.md").write_text(
        f"# Third-party material in this folder\n\n"
        f"Copied by `make design-system` (shared/tools/design_system.py) from the npm package "
        f"`{meta['name']}` {meta['version']} by {meta.get('author', '')}, licence: {meta['license']} "
        f"(package.json). The package's note on copyright and licence (README):\n\n{copyright_note}\n\n"
        f"ISC licence: Permission to use, copy, modify, and/or distribute this software for any purpose with or "
        f"without fee is hereby granted, provided that the above copyright notice and this permission notice "
        f"appear in all copies.\n\n"
        f"## Fonts (subset; the font's own copyright and licence from its name table)\n\n"
        + "\n\n".join(font_notices) + "\n",
        encoding="utf-8",
    )


def main() -> None:
    package = npm_install()
    resources = package / "resources"
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    tokens = light_tokens((resources / "css" / "token" / "krds_tokens.css").read_text(encoding="utf-8"))
    common = pick((resources / "css" / "common" / "common.css").read_text(encoding="utf-8"), COMMON)
    components = pick((resources / "css" / "component" / "component.css").read_text(encoding="utf-8"), COMPONENTS)
    css = "\n".join([
        f"/* KRDS (krds-uiux {KRDS_VERSION}, ISC; see LICENSES.md): fonts, tokens and the components the pages "
        f"use. Written by `make design-system`; do not edit. */",
        font_faces(), tokens, common, components,
    ])
    css = copy_icons(css, resources / "img" / "component" / "icon")
    (OUT / "krds.css").write_text(css + "\n", encoding="utf-8")
    notices = subset_fonts(package)
    write_licenses(package, notices)
    for path in sorted(OUT.rglob("*")):
        if path.is_file():
            print(f"{path.relative_to(ROOT)}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
