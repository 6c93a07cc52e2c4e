"""A stand-in for what moto's CodeDeploy lacks, for the tests and the rehearsal only (never the product's path).

moto 5.2.5 records a deployment (`create_deployment`, `get_deployment` with its AppSpec) but never runs it:
its status stays "Created", and it has no `stop_deployment`, `update_deployment_group` or hook status call;
`get_deployment_group` answers an empty alarmConfiguration. So this plays CodeDeploy's part of a Lambda
deployment, through the emulator's own Lambda and CloudWatch APIs, as AWS documents it:
  1. BeforeAllowTraffic: the hook's checks (`hook(function, version)` -> failures; in the rehearsal the
     real prehook checks driven through the new version's zip), a failure ends it before any traffic moves;
  2. the canary: the alias sends 10 % to the target version (RoutingConfig), the deployment group's alarms
     are read (the ones canary.py gave the group); one in ALARM rolls the alias back (status Stopped);
  3. all traffic to the target version (status Succeeded).
It records each deployment's outcome, so `running` answers what CodeDeploy would list as in progress (none).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from shared.platform.aws import client
from shared.tools.deploy import canary


class CodeDeployStandIn:
    def __init__(self, stage: str, outputs: dict[str, str],
                 hook: Callable[[str, str], list[str]] | None = None) -> None:
        self.stage, self.outputs, self.hook = stage, outputs, hook
        self.outcomes: dict[str, str] = {}
        self.steps: list[str] = []

    def alarms_of(self, group: str) -> list[str]:
        return [a["AlarmName"] for a in canary.alarm_specs(self.stage, self.outputs)[group]]

    def __call__(self, deployment_id: str) -> str:
        info = client("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        spec = json.loads(info["revision"]["appSpecContent"]["content"])
        properties = spec["Resources"][0]["function"]["Properties"]
        function, alias = properties["Name"], properties["Alias"]
        current, target = str(properties["CurrentVersion"]), str(properties["TargetVersion"])
        lam, cloudwatch = client("lambda"), client("cloudwatch")
        hooks = [h["BeforeAllowTraffic"] for h in spec.get("Hooks", []) if "BeforeAllowTraffic" in h]
        if hooks and self.hook:
            failures = self.hook(function, target)
            self.steps.append(f"{deployment_id} BeforeAllowTraffic: {len(failures)} failure(s)")
            if failures:
                return self._end(deployment_id, "Failed")
        canary_step = info["deploymentConfigName"] != canary.ALL_AT_ONCE
        if canary_step:
            lam.update_alias(FunctionName=function, Name=alias, FunctionVersion=current,
                             RoutingConfig={"AdditionalVersionWeights": {target: 0.1}})
            self.steps.append(f"{deployment_id} {function}:{alias} 10% -> {target}")
        firing = [a for a in cloudwatch.describe_alarms(AlarmNames=self.alarms_of(info["deploymentGroupName"]))[
            "MetricAlarms"] if a["StateValue"] == "ALARM"]
        if firing:
            lam.update_alias(FunctionName=function, Name=alias, FunctionVersion=current,
                             RoutingConfig={"AdditionalVersionWeights": {}})
            self.steps.append(f"{deployment_id} rolled back: {firing[0]['AlarmName']} in ALARM")
            return self._end(deployment_id, "Stopped")
        lam.update_alias(FunctionName=function, Name=alias, FunctionVersion=target,
                         RoutingConfig={"AdditionalVersionWeights": {}})
        self.steps.append(f"{deployment_id} {function}:{alias} 100% -> {target}")
        return self._end(deployment_id, "Succeeded")

    def _end(self, deployment_id: str, status: str) -> str:
        self.outcomes[deployment_id] = status
        return status

    def running(self, stage: str, app: str) -> list[str]:
        return []  # each deployment ran to its end inside __call__
