"""The Alembic environment of every SQL app (each app's `migrations/env.py` runs `run()`).

Flask-Migrate's template, written once: the app's engine and metadata come from the running Flask app
(`flask db ...`, `upgrade_schema`), so both databases keep their own migrations and share this code.
"""

from __future__ import annotations

import logging
from logging.config import fileConfig

log = logging.getLogger("alembic.env")


def run() -> None:
    from alembic import context
    from flask import current_app

    config = context.config
    # Only when nothing has set up logging yet (the `flask db` command line): inside a running app
    # (/admin/init, Lambda) this would replace its handlers and silence its existing loggers.
    if not logging.getLogger().handlers and config.config_file_name:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    migrate = current_app.extensions["migrate"]
    engine = migrate.db.engine
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    metadata = migrate.db.metadata

    if context.is_offline_mode():
        context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata,
                          literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    def skip_empty_revisions(context, revision, directives):
        # `flask db migrate` with no schema change writes no empty revision
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            log.info("No changes in schema detected.")

    options = dict(migrate.configure_args)
    options.setdefault("process_revision_directives", skip_empty_revisions)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, **options)
        with context.begin_transaction():
            context.run_migrations()
