"""Alembic environment of childsys: the one every SQL app shares."""

from shared.platform.migration_env import run

run()
