"""Deploy tooling: render the stages' Zappa settings, package, deploy, wire, smoke-test.

Runs on a developer's machine or in CI, never in Lambda (the zips exclude it).
"""
