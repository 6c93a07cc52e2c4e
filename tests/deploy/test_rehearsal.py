"""The deploy rehearsal: what CI does, on a fresh emulator. `make deploy`'s own code (release.deploy) runs with
the real `zappa deploy` / `zappa update`, twice (a first deploy, then an update in which one function changed),
then `make rollback`'s code, end to end. Where the emulator lacks an API, a documented stand-in plays it:
Lambda's ListFunctionUrlConfigs (tests/emulator_helpers.py) and CodeDeploy's deployment execution
(tests/codedeploy_helpers.py). The zips are small ones of the right shape (packaging is `make package`'s own
test and takes minutes); the timings are printed (`pytest -s`) for the README."""

from __future__ import annotations

import json
import os
import subprocess
import time
import zipfile

from shared.platform import aws
from shared.platform.aws import client
from shared.tools.deploy import canary, release, stages
from tests.codedeploy_helpers import CodeDeployStandIn
from tests.emulator_helpers import FunctionUrlStandIn

STAGE = "rehearsal"


def _zip(path, version: str) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("handler.py", f"VERSION = {version!r}\n\ndef lambda_handler(event, context):\n"
                                       f"    return {{'statusCode': 200, 'body': VERSION}}\n")


def test_deploy_twice_then_roll_back(own_emulator, tmp_path, monkeypatch):
    with FunctionUrlStandIn(os.environ["AWS_ENDPOINT_URL"]) as standin:
        monkeypatch.setenv("AWS_ENDPOINT_URL", standin.url)
        monkeypatch.setenv("AWS_OUTPUTS_DIR", str(tmp_path))
        monkeypatch.setattr(stages, "LOCAL_DIR", tmp_path)
        aws.clear_cache()
        ec2 = client("ec2")
        vpc_id = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.40.{i}.0/24")["Subnet"]["SubnetId"]
                   for i in (1, 2)]
        group = ec2.create_security_group(GroupName="apps", Description="apps", VpcId=vpc_id)["GroupId"]
        client("s3").create_bucket(Bucket="daycare-rehearsal-zappa",
                                   CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"})
        env = {**os.environ, "VPC_SUBNET_IDS": ",".join(subnets), "VPC_SECURITY_GROUP_IDS": group,
               "ZAPPA_BUCKET": "daycare-rehearsal-zappa", "SES_SENDER": "no-reply@agency.example",
               "OPERATOR_EMAIL": "ops@agency.example"}
        commands: list[list[str]] = []

        def run(command: list[str]) -> None:
            commands.append(command)
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, (command, done.stdout[-3000:], done.stderr[-3000:])

        first_zips = {app: tmp_path / f"{app}-1.zip" for app in canary.FUNCTIONS}
        for path in first_zips.values():
            _zip(path, "1")
        checked = []

        def hook(function: str, version: str) -> list[str]:
            """The pre-traffic step: the target version is there and active (the small zips answer no HTTP)."""
            state = client("lambda").get_function(FunctionName=function, Qualifier=version)["Configuration"]
            checked.append((function, version))
            return [] if state.get("State", "Active") == "Active" else [f"{function}:{version} {state['State']}"]

        codedeploy = CodeDeployStandIn(STAGE, {}, hook=hook)
        figures = {}

        started = time.monotonic()
        first = release.deploy(STAGE, env, run, execute=codedeploy, zips=first_zips)
        figures["first deploy"] = time.monotonic() - started
        outputs = json.loads((tmp_path / f"aws-{STAGE}.json").read_text())
        codedeploy.outputs = outputs
        assert [c[1] for c in commands] == ["deploy"] * 5
        # Zappa got settings without events or keep-warm; the alias carries them all
        deploy_settings = json.loads((tmp_path / "deploy" / f"zappa_deploy.{STAGE}.json").read_text())
        assert all(s["events"] == [] and s["keep_warm"] is False for s in deploy_settings.values())
        lam = client("lambda")
        for app in canary.FUNCTIONS:
            alias = lam.get_alias(FunctionName=stages.lambda_name(app, STAGE), Name="live")
            assert alias["FunctionVersion"] == first[app]
        assert release.mapping_failures(STAGE) == []
        api = release.api_id("reqsys", STAGE)
        apigateway = client("apigateway")
        uris = {apigateway.get_integration(restApiId=api, resourceId=r["id"], httpMethod=m)["uri"]
                for r in apigateway.get_resources(restApiId=api)["items"] for m in r.get("resourceMethods", {})}
        assert uris and all(uri.endswith(f"daycare-reqsys-{STAGE}:live/invocations") for uri in uris)
        assert release._parameter(f"/daycare/{STAGE}/reqsys/DATABASE_URL").startswith("mysql+pymysql://reqsys:")
        assert codedeploy.outcomes == {}  # a first deploy creates the alias on the first version: no shift

        # the second deploy: `zappa update`, and only the pipeline function changed
        second_zips = {**first_zips, "pipeline": tmp_path / "pipeline-2.zip"}
        _zip(second_zips["pipeline"], "2")
        commands.clear()
        started = time.monotonic()
        second = release.deploy(STAGE, env, run, execute=codedeploy, zips=second_zips)
        figures["second deploy (update, canary of the changed function)"] = time.monotonic() - started
        assert [c[1] for c in commands] == ["update"] * 5
        function = stages.lambda_name("pipeline", STAGE)
        assert second["pipeline"] != first["pipeline"]
        assert lam.get_alias(FunctionName=function, Name="live")["FunctionVersion"] == second["pipeline"]
        assert list(codedeploy.outcomes.values()).count("Succeeded") >= 1
        assert (function, second["pipeline"]) in checked  # before any traffic moved
        assert any(f"{function}:live 10% -> {second['pipeline']}" in step for step in codedeploy.steps)
        assert release.mapping_failures(STAGE) == []

        # make rollback, for the pipeline function
        started = time.monotonic()
        said = canary.rollback(STAGE, ("pipeline",), execute=codedeploy, running=codedeploy.running)
        figures["rollback"] = time.monotonic() - started
        assert lam.get_alias(FunctionName=function, Name="live")["FunctionVersion"] < second["pipeline"]
        assert "Succeeded" in said[0]
        for step, seconds in figures.items():
            print(f"rehearsal: {step}: {seconds:.1f} s")
