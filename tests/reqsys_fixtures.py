"""Fixtures of the reqsys tests (no tests here): a migrated reqsys with the demo daycares, its test client,
and a parent. conftest.py registers them (`pytest_plugins`); a module that defines its own fixture of a name
keeps its own."""

from __future__ import annotations

import pytest

from tests.waitlist_helpers import add_nurseries


@pytest.fixture
def app(make_app):
    app = make_app("reqsys")
    add_nurseries(app)
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def parent(account):
    return account("parents")
