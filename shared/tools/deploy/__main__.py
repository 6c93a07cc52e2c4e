"""`python -m shared.tools.deploy <command> --stage STAGE`.

The Makefile's package, check-package, deploy, smoke, rollback and db-bootstrap.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "render": ("shared.tools.deploy.stages", "main"),
    "package": ("shared.tools.deploy.package", "package_main"),
    "check-package": ("shared.tools.deploy.package", "check_main"),
    "deploy": ("shared.tools.deploy.release", "deploy_main"),
    "smoke": ("shared.tools.deploy.release", "smoke_main"),
    "pipeline": ("shared.tools.deploy.pipeline", "main"),
    "rollback": ("shared.tools.deploy.canary", "rollback_main"),
    "db-bootstrap": ("shared.tools.deploy.database", "bootstrap_main"),
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m shared.tools.deploy {{{','.join(COMMANDS)}}} --stage STAGE", file=sys.stderr)
        return 2
    module, function = COMMANDS[argv[0]]
    return getattr(importlib.import_module(module), function)(argv[1:]) or 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
