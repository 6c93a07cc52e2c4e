"""The CI definitions (GitHub Actions workflow, CodeBuild buildspec) are valid and call only what exists.

Each check is a function returning the problems it finds, run on the real files and, to show it can fail,
on mutated copies (a renamed make target, broken YAML, a deploy job that would run on a pull request).
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from shared.platform.settings import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
BUILDSPEC = ROOT / ".ci" / "buildspec.yml"
MAKEFILE = ROOT / "Makefile"

CHAIN = ["test", "package", "deploy-dev", "smoke-dev", "deploy-prod", "smoke-prod"]
AWS_JOBS = CHAIN[2:]
_RULE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)\s*:(?!=)", re.M)
_MAKE = re.compile(r"(?<![\w./-])make((?:[ \t]+[^\s;&|()]+)+)")
_EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.S)


# --- the checks -----------------------------------------------------------------------------------


def make_targets(makefile: Path = MAKEFILE) -> set[str]:
    """The rules a Makefile defines (file rules with variables, like $(STAMP), are not callable)."""
    return set(_RULE.findall(makefile.read_text()))


def make_calls(script: str) -> list[tuple[str, list[str]]]:
    """Every `make` in a shell script: (the call as written, the targets it names)."""
    calls = []
    for match in _MAKE.finditer(script):
        words = match.group(1).split()
        calls.append((f"make{match.group(1)}", [w for w in words if "=" not in w and not w.startswith("-")]))
    return calls


def load(path: Path) -> dict:
    document = yaml.safe_load(path.read_text())
    if not isinstance(document, dict):
        raise ValueError(f"{path.name} is not a YAML mapping")
    return document


def workflow_scripts(workflow: dict) -> list[tuple[str, str]]:
    return [(name, step["run"]) for name, job in workflow["jobs"].items() for step in job.get("steps", [])
            if "run" in step]


def buildspec_scripts(buildspec: dict) -> list[tuple[str, str]]:
    return [(phase, command) for phase, body in buildspec["phases"].items() for command in body.get("commands", [])]


def target_problems(scripts: list[tuple[str, str]], targets: set[str]) -> list[str]:
    problems = []
    for where, script in scripts:
        for call, named in make_calls(script):
            if not named:
                problems.append(f"{where}: `{call}` names no target")
            problems += [f"{where}: `{call}`: the Makefile has no target {t!r}" for t in named if t not in targets]
    return problems


def shell_problems(scripts: list[tuple[str, str]]) -> list[str]:
    """`bash -n` on every script (GitHub's ${{ }} expressions replaced by a word first)."""
    problems = []
    for where, script in scripts:
        checked = subprocess.run(["bash", "-n"], input=_EXPRESSION.sub("X", script), capture_output=True, text=True)
        if checked.returncode:
            problems.append(f"{where}: {checked.stderr.strip()}")
    return problems


def dry_run_problem(call: str, target: str, makefile: Path = MAKEFILE) -> str | None:
    """`make -n -B` of one call: the Makefile must have a rule with commands for it (a name left in .PHONY
    without its rule only says "Nothing to be done", with status 0; -B so an up-to-date stamp does not)."""
    variables = [word.replace("$STAGE", "dev") for word in call.split()[1:] if "=" in word]
    done = subprocess.run(["make", "-n", "-B", "-f", str(makefile), target, *variables], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    if done.returncode or "Nothing to be done" in done.stdout or not done.stdout.strip():
        return f"`{call}`: make -n {target}: {(done.stderr or done.stdout).strip()}"
    return None


def evaluate_if(expression: str | None, event: str, ref: str) -> bool:
    """A job's `if:` for an event on a ref. Only `a == 'b'` terms joined by && are understood, which is
    all the workflow needs; anything else fails the test rather than being guessed."""
    if expression is None:
        return True
    context = {"github.event_name": event, "github.ref": ref}
    result = True
    for term in _EXPRESSION.sub(lambda m: m.group(0)[3:-2], expression).split("&&"):
        match = re.fullmatch(r"\s*([\w.]+)\s*==\s*'([^']*)'\s*", term)
        if not match or match.group(1) not in context:
            raise ValueError(f"cannot evaluate {term.strip()!r} of `if: {expression}`")
        result = result and context[match.group(1)] == match.group(2)
    return result


def workflow_problems(workflow: dict, targets: set[str]) -> list[str]:
    jobs = workflow["jobs"]
    problems = target_problems(workflow_scripts(workflow), targets)
    if list(jobs) != CHAIN:
        problems.append(f"jobs {list(jobs)}, expected {CHAIN}")
    for before, job in zip(CHAIN, CHAIN[1:], strict=False):
        needs = jobs.get(job, {}).get("needs")
        if (needs if isinstance(needs, list) else [needs]) != [before]:
            problems.append(f"{job} needs {needs!r}, expected {before!r}")
    for name in AWS_JOBS:
        job = jobs.get(name, {})
        for event, ref in (("pull_request", "refs/pull/7/merge"), ("push", "refs/heads/feature"),
                           ("workflow_dispatch", "refs/heads/main")):
            if evaluate_if(job.get("if"), event, ref):
                problems.append(f"{name} would run on {event} of {ref}")
        if not evaluate_if(job.get("if"), "push", "refs/heads/main"):
            problems.append(f"{name} would not run on a push to main")
    environments = {name: (job.get("environment") or {}) for name, job in jobs.items()}
    environments = {name: env.get("name") if isinstance(env, dict) else env for name, env in environments.items()}
    if environments.get("deploy-prod") != "prod":
        problems.append("deploy-prod does not use the protected environment `prod` (the manual approval)")
    if environments.get("deploy-dev") != "dev":
        problems.append("deploy-dev does not use the environment `dev`")
    if [name for name, env in environments.items() if env == "prod"] != ["deploy-prod"]:
        problems.append("only deploy-prod may name `prod`: every job naming it waits for its own approval")
    return problems


_ZAPPA = re.compile(r"(?<![\w.-])zappa\s+(deploy|update|rollback)\b")


def release_problems(scripts: list[tuple[str, str]]) -> list[str]:
    """A release reaches users only through `make deploy` (Zappa uploads; CodeDeploy's canary moves the alias):
    no CI script may run Zappa's deploy, update or rollback itself, which would serve new code to everyone."""
    return [f"{where}: `zappa {match.group(1)}` serves new code to every user at once; use `make deploy`"
            for where, script in scripts for match in _ZAPPA.finditer(script)]


# --- the real files -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def targets():
    return make_targets()


def test_the_makefile_has_the_shipping_targets(targets):
    assert {"install", "lint", "test", "package", "check-package", "deploy", "smoke"} <= targets
    assert not any(t.startswith((".", "$")) for t in targets)


def test_workflow_is_yaml_and_calls_only_existing_make_targets(targets):
    workflow = load(WORKFLOW)
    assert workflow_problems(workflow, targets) == []
    assert shell_problems(workflow_scripts(workflow)) == []
    called = {t for _, script in workflow_scripts(workflow) for _, named in make_calls(script) for t in named}
    assert called == {"lint", "test", "package", "check-package", "deploy", "smoke"}


def test_workflow_order_and_stages():
    jobs = load(WORKFLOW)["jobs"]
    runs = {name: " ".join(step.get("run", "") for step in job["steps"]) for name, job in jobs.items()}
    assert "make package STAGE=dev" in runs["package"] and "make check-package STAGE=dev" in runs["package"]
    assert "make deploy STAGE=dev" in runs["deploy-dev"] and "make smoke STAGE=dev" in runs["smoke-dev"]
    assert "make deploy STAGE=prod" in runs["deploy-prod"] and "make smoke STAGE=prod" in runs["smoke-prod"]
    services = jobs["test"]["services"]
    assert services["mariadb"]["image"] == "mariadb:10.11"
    test_env = next(step["env"] for step in jobs["test"]["steps"] if step.get("run") == "make test")
    assert test_env["TEST_MYSQL_URL"].startswith("mysql+pymysql://root@127.0.0.1:3306/")
    upload = next(step for step in jobs["package"]["steps"] if step.get("uses", "").startswith("actions/upload"))
    assert upload["with"]["path"] == "dist/"


def test_aws_jobs_assume_a_role_through_oidc_and_nothing_else_may():
    workflow = load(WORKFLOW)
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        uses = [step.get("uses", "") for step in job["steps"]]
        credentials = [step for step in job["steps"] if step.get("uses", "").startswith(
            "aws-actions/configure-aws-credentials@")]
        if name in AWS_JOBS:
            assert job["permissions"] == {"contents": "read", "id-token": "write"}, name
            assert len(credentials) == 1, name
            role = credentials[0]["with"]["role-to-assume"]
            assert re.fullmatch(r"\$\{\{ secrets\.\w+ \}\}", role), name
            assert "aws-access-key-id" not in credentials[0]["with"], name
            # the credentials come before the first make that needs them
            make_step = next(i for i, step in enumerate(job["steps"]) if "make " in step.get("run", ""))
            assert job["steps"].index(credentials[0]) < make_step, name
        else:
            assert "permissions" not in job and not credentials, name
            assert all("aws" not in use for use in uses), name


def test_deploys_never_overlap_and_are_never_cancelled_half_way():
    jobs = load(WORKFLOW)["jobs"]
    groups = {}
    for name in ("deploy-dev", "deploy-prod"):
        concurrency = jobs[name]["concurrency"]
        assert "${{ github.ref }}" in concurrency["group"]
        assert concurrency["cancel-in-progress"] is False
        groups[name] = concurrency["group"]
    assert groups["deploy-dev"] != groups["deploy-prod"]  # a prod approval never holds up dev


def test_database_urls_reach_a_deploy_only_while_ssm_lacks_them():
    jobs = load(WORKFLOW)["jobs"]
    for stage in ("dev", "prod"):
        steps = jobs[f"deploy-{stage}"]["steps"]
        probe = next(step for step in steps if step.get("id") == "ssm")
        assert f"/daycare/{stage}/$app/DATABASE_URL" in probe["run"]
        deploy = next(step for step in steps if step.get("run") == f"make deploy STAGE={stage}")
        for app in ("REQSYS", "CHILDSYS"):
            assert deploy["env"][f"DATABASE_URL_{app}"] == (
                f"${{{{ contains(steps.ssm.outputs.missing, '{app.lower()}') && secrets.DATABASE_URL_{app} || '' }}}}")
        # and no other step or job-level env carries a secret
        assert "secrets." not in yaml.safe_dump(jobs[f"deploy-{stage}"].get("env", {}))


def test_buildspec_is_yaml_and_calls_only_existing_make_targets(targets):
    buildspec = load(BUILDSPEC)
    assert str(buildspec["version"]) == "0.2"
    assert list(buildspec["phases"]) == ["install", "pre_build", "build", "post_build"]
    assert str(buildspec["phases"]["install"]["runtime-versions"]["python"]) == "3.11"
    assert target_problems(buildspec_scripts(buildspec), targets) == []
    assert shell_problems(buildspec_scripts(buildspec)) == []
    # a failure before post_build stops the build: nothing deploys untested code
    assert all(buildspec["phases"][p].get("on-failure") == "ABORT" for p in ("install", "pre_build", "build"))
    report = buildspec["reports"]["pytest"]
    assert report["file-format"] == "JUNITXML"
    junit = f"{report['base-directory']}/{report['files'][0]}"
    assert any(f"--junitxml={junit}" in command for _, command in buildspec_scripts(buildspec))


def _shim(directory: Path, name: str, body: str = "exit 0") -> None:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.mark.parametrize(("step", "expected"), [
    ("build", ["install", "lint", "test", "package STAGE=prod", "check-package STAGE=prod"]),
    ("deploy", ["install", "deploy STAGE=prod"]),
    ("all", ["install", "lint", "test", "package STAGE=prod", "check-package STAGE=prod", "deploy STAGE=prod"]),
])
def test_buildspec_steps_run_the_right_targets(tmp_path, step, expected):
    """Each phase's commands in bash, in order, as CodeBuild runs them, with `make` and the installers
    replaced by recorders (nothing is installed or deployed); what each PIPELINE_STEP makes."""
    bin_dir, log = tmp_path / "bin", tmp_path / "make.log"
    _shim(bin_dir, "make", f'echo "$*" >> {shlex.quote(str(log))}')
    for tool in ("apt-get", "service", "mysql", "ln"):
        _shim(bin_dir, tool)
    for tool in ("playwright", "python"):
        _shim(tmp_path / ".venv" / "bin", tool)
    buildspec = load(BUILDSPEC)
    env = {**os.environ, **{k: str(v) for k, v in buildspec["env"]["variables"].items()},
           "PATH": f"{bin_dir}:{os.environ['PATH']}", "PIPELINE_STEP": step, "STAGE": "prod"}
    for phase, command in buildspec_scripts(buildspec):
        if "/usr/bin/chromium --version" in command:
            continue  # the real browser, which this machine may not have
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, (phase, command, done.stderr)
    made = log.read_text().splitlines()
    assert made == expected
    test_call = next(c for _, c in buildspec_scripts(buildspec) if c.rstrip().endswith("make test"))
    assert "-u AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" in test_call  # tests never hold the project's role


# --- the checks fail when they should --------------------------------------------------------------


def test_a_renamed_make_target_is_reported(tmp_path):
    mutated = tmp_path / "Makefile"
    mutated.write_text(MAKEFILE.read_text().replace("\nsmoke: install", "\nsmoke-test: install"))
    targets = make_targets(mutated)
    assert "smoke" not in targets and "smoke-test" in targets
    problems = workflow_problems(load(WORKFLOW), targets)
    assert problems == ["smoke-dev: `make smoke STAGE=dev`: the Makefile has no target 'smoke'",
                        "smoke-prod: `make smoke STAGE=prod`: the Makefile has no target 'smoke'"]
    mutated.write_text(MAKEFILE.read_text().replace("\npackage: install", "\npackage-all: install"))
    assert any("'package'" in p for p in target_problems(buildspec_scripts(load(BUILDSPEC)), make_targets(mutated)))
    assert dry_run_problem("make package STAGE=dev", "package") is None
    assert "Nothing to be done" in dry_run_problem("make package STAGE=dev", "package", mutated)
    mutated.write_text(MAKEFILE.read_text().replace("package", "pkg"))
    assert "No rule to make target" in dry_run_problem("make package STAGE=dev", "package", mutated)


def test_broken_yaml_and_broken_wiring_are_reported(tmp_path):
    broken = tmp_path / "ci.yml"
    broken.write_text(WORKFLOW.read_text().replace("  package:\n    needs: test", "  package:\n   needs: test"))
    with pytest.raises(yaml.YAMLError):
        load(broken)
    workflow = load(WORKFLOW)
    workflow["jobs"]["deploy-prod"]["needs"] = "package"  # prod without dev's smoke test
    workflow["jobs"]["deploy-dev"]["if"] = "github.ref == 'refs/heads/main'"  # also a workflow_dispatch
    del workflow["jobs"]["deploy-prod"]["environment"]  # no approval
    workflow["jobs"]["smoke-prod"]["environment"] = "prod"  # a second approval
    assert workflow_problems(workflow, make_targets()) == [
        "deploy-prod needs 'package', expected 'smoke-dev'",
        "deploy-dev would run on workflow_dispatch of refs/heads/main",
        "deploy-prod does not use the protected environment `prod` (the manual approval)",
        "only deploy-prod may name `prod`: every job naming it waits for its own approval",
    ]
    assert shell_problems([("job", "if [ -x x ]; then make lint")]) != []


def test_make_dry_runs_every_called_target():
    """`make -n` of each call CI makes: the Makefile resolves it (commands printed, none run)."""
    calls = {(call, t) for _, script in workflow_scripts(load(WORKFLOW)) + buildspec_scripts(load(BUILDSPEC))
             for call, named in make_calls(script) for t in named}
    assert len(calls) >= 8
    assert [problem for call, target in sorted(calls) if (problem := dry_run_problem(call, target))] == []


def test_releases_go_through_the_canary_and_never_straight_to_users(targets):
    workflow, buildspec = load(WORKFLOW), load(BUILDSPEC)
    scripts = workflow_scripts(workflow) + buildspec_scripts(buildspec)
    assert release_problems(scripts) == []
    deploying = [where for where, script in scripts if any("deploy" in named for _, named in make_calls(script))]
    assert sorted(set(deploying)) == ["deploy-dev", "deploy-prod", "post_build"]
    # `make deploy` is the release tool's deploy, which uploads with Zappa and releases through CodeDeploy
    done = subprocess.run(["make", "-n", "-B", "deploy", "STAGE=dev"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert "-m shared.tools.deploy deploy --stage dev" in done.stdout
    assert "rollback" in targets and "db-bootstrap" in targets
    from shared.tools.deploy import __main__ as commands

    assert commands.COMMANDS["deploy"] == ("shared.tools.deploy.release", "deploy_main")
    assert commands.COMMANDS["rollback"] == ("shared.tools.deploy.canary", "rollback_main")
    # the deploy jobs pass on the operator's address for the alarms
    for stage in ("dev", "prod"):
        assert workflow["jobs"][f"deploy-{stage}"]["env"]["OPERATOR_EMAIL"] == "${{ vars.OPERATOR_EMAIL }}"


def test_a_step_that_runs_zappa_update_itself_is_reported():
    workflow = load(WORKFLOW)
    steps = workflow["jobs"]["deploy-prod"]["steps"]
    steps.insert(-1, {"run": ".venv/bin/zappa update reqsys_prod -s .local/deploy/zappa_settings.prod.json"})
    assert release_problems(workflow_scripts(workflow)) == [
        "deploy-prod: `zappa update` serves new code to every user at once; use `make deploy`"]
    assert release_problems([("post_build", "make deploy STAGE=$STAGE && zappa rollback x -n 1")]) != []
    assert release_problems([("post_build", "make deploy STAGE=$STAGE  # not zappa_update")]) == []
