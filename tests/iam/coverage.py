"""IAM coverage: every recorded call and every state-machine task, judged by the synthesized policies.

For a function's call, the principal's role is found through the function whose
``POWERTOOLS_SERVICE_NAME`` is the principal's package, in the stack of the call's region. The
function's environment in the template (``CIRCUIT_TABLE = Ref(CircuitTable)``) is bound to the
values the test ran with, so resources become ARNs on both sides. A state machine's tasks are
read from its ASL (with CDK's substitutions) and judged the same way, with the permissions that
Step Functions' documentation lists for each service integration.

A call recorded under a configuration the template does not deploy (``EXECUTION_MODE=poll``
in the local platform, where the template says ``sync``) is still judged; a denial there is
reported as a warning, since that code path never runs on AWS with this template.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tests.iam.actions import CallSite, Need, known_action, needs_of
from tests.iam.policy import Statement, evaluate, matches
from tests.iam.recorder import Recorded
from tests.iam.resolver import ACCOUNT, ARN_FROM_REF, PARTITION, Resolver, role_statements
from tests.infrastructure.cfn import asl_text

# Environment variables that select a code path rather than name a resource, and the functions
# (qualified names) on that path: a call from one of them, recorded with another value than the
# template's, was made in a configuration that is not deployed. The health route's probe calls
# run in every mode, so they are judged even when the local platform polls executions.
MODE_VARIABLES: dict[str, tuple[str, ...]] = {
    "EXECUTION_MODE": ("PollingExecutor.", "SyncExecutor."),
    "STRATEGY_SOURCE": ("Strategy", "strategy_source"),
    "PUBLISH": ("publish",),
}


@dataclass(frozen=True)
class StackTemplate:
    name: str
    region: str
    template: dict[str, Any]
    outdir: Path


@dataclass
class Finding:
    principal: str
    stack: str
    need: Need
    origin: str  # the test, or the ASL state
    deployed_configuration: bool = True

    def describe(self) -> str:
        where = f"{self.principal} in {self.stack}"
        extra = f" with {dict(self.need.context)}" if self.need.context else ""
        note = "" if self.deployed_configuration else " (in a configuration not deployed, or on tags not recorded)"
        return f"{where}: {self.need.action} on {self.need.resource}{extra} is denied{note}; from {self.origin}"


@dataclass
class Report:
    denied: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    unknown_principals: Counter[str] = field(default_factory=Counter)
    allowed: int = 0
    used: dict[tuple[str, str], set[tuple[str, str]]] = field(default_factory=dict)  # (stack, role) -> (src, action)
    unused: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "denied": [f.describe() for f in self.denied],
            "warnings": [f.describe() for f in self.warnings],
            "unknown_principals": dict(self.unknown_principals),
            "unused_grants": self.unused,
        }


def _functions(template: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """POWERTOOLS_SERVICE_NAME -> (logical id, properties) for every function that names one."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        props = resource["Properties"]
        service = props.get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME")
        if isinstance(service, str):
            found[service] = (logical_id, props)
    return found


def _role_of(props: dict[str, Any]) -> str:
    role = props["Role"] if "Role" in props else props["RoleArn"]
    return str(role["Fn::GetAtt"][0])


def _statements(stack: StackTemplate, role_id: str, resolver: Resolver) -> list[Statement]:
    return [
        Statement.parse({k: v for k, v in s.items() if k != "_source"}, source=str(s["_source"]))
        for s in role_statements(stack.template, role_id, resolver)
    ]


class Judge:
    def __init__(self, stacks: list[StackTemplate]) -> None:
        self.stacks = stacks
        self.report = Report()
        self._cache: dict[tuple[Any, ...], tuple[list[Statement], bool]] = {}
        # Read once: every recorded call (thousands per session) looks its function up here.
        self._functions = {stack.name: _functions(stack.template) for stack in stacks}

    # Functions ---------------------------------------------------------------------------------
    def _function_stack(self, principal: str, region: str) -> tuple[StackTemplate, str, dict[str, Any]] | None:
        for stack in self.stacks:
            if stack.region != region:
                continue
            found = self._functions[stack.name].get(principal)
            if found:
                return stack, found[0], found[1]
        return None

    def judge_call(self, call: Recorded) -> None:
        # A function is found in its own region's stack, whichever region it calls (the budget
        # sweeper reads the other region's table).
        home = call.env.get("AWS_REGION") or call.region
        located = self._function_stack(call.principal, home)
        if located is None:
            self.report.unknown_principals[f"{call.principal}@{call.region}"] += 1
            return
        stack, _, props = located
        variables: dict[str, Any] = props.get("Environment", {}).get("Variables", {})
        deployed = all(
            not isinstance(variables.get(k), str)
            or call.env.get(k, variables[k]) == variables[k]
            or not call.site.startswith(sites)  # a call off that path runs the same in every mode
            for k, sites in MODE_VARIABLES.items()
        )
        bindings = tuple(sorted((k, call.env.get(k, "")) for k, v in variables.items() if not isinstance(v, str)))
        key = (stack.name, call.principal, bindings)
        if key not in self._cache:
            resolver = Resolver(stack.template, stack.region)
            shaped = [resolver.bind(template_value, call.env.get(name)) for name, template_value in variables.items()]
            self._cache[key] = (_statements(stack, _role_of(props), resolver), all(shaped))
        statements, as_deployed = self._cache[key]
        # A value of another shape than the template's (a test's own LAMBDA_PROVIDERS) is a
        # configuration not deployed: what it names cannot be judged against the deployment.
        deployed = deployed and as_deployed
        site = CallSite(call.service, call.operation, call.region, ACCOUNT, call.params)
        for need in needs_of(site, {}):
            self._judge(statements, need, call.principal, stack, call.test, deployed, _role_of(props))

    def _judge(
        self,
        statements: list[Statement],
        need: Need,
        principal: str,
        stack: StackTemplate,
        origin: str,
        deployed: bool,
        role_id: str,
    ) -> None:
        decision = evaluate(statements, need.action, need.resource, need.context_dict)
        if decision.allowed:
            self.report.allowed += 1
            assert decision.statement is not None
            used = self.report.used.setdefault((stack.name, role_id), set())
            used |= {
                (decision.statement.source, a)
                for a in decision.statement.actions
                if matches(a, need.action, ignore_case=True)
            }
            return
        # A grant conditioned on the resource's tags (the cleanup may delete only resources tagged
        # finai:platform) depends on tags the recording does not see: if it would allow the call
        # with those conditions met, the call is reported as a warning, not judged.
        untagged = [_without_resource_tag_conditions(s) for s in statements]
        tag_dependent = evaluate(untagged, need.action, need.resource, need.context_dict).allowed
        finding = Finding(principal, stack.name, need, origin, deployed and not tag_dependent)
        (self.report.denied if finding.deployed_configuration else self.report.warnings).append(finding)

    # State machines ----------------------------------------------------------------------------
    def judge_state_machines(self) -> None:
        for stack in self.stacks:
            resolver = _named_after_logical_ids(stack)
            for logical_id, resource in stack.template["Resources"].items():
                if resource["Type"] != "AWS::StepFunctions::StateMachine":
                    continue
                props = resource["Properties"]
                role_id = _role_of(props)
                statements = _statements(stack, role_id, resolver)
                definition = _definition(stack, props, resolver)
                for state, task in _tasks(definition["States"]):
                    for need in task_needs(task, stack.region):
                        self._judge(statements, need, logical_id, stack, f"ASL state {state}", True, role_id)

    # Unused grants -----------------------------------------------------------------------------
    def collect_unused(self, principals: set[str]) -> None:
        """Grants of the roles we judged that no recorded call or task used (a report, not a failure)."""
        for stack in self.stacks:
            resolver = _named_after_logical_ids(stack)
            roles = {_role_of(p): name for name, (_, p) in self._functions[stack.name].items() if name in principals}
            roles |= {
                _role_of(r["Properties"]): lid
                for lid, r in stack.template["Resources"].items()
                if r["Type"] == "AWS::StepFunctions::StateMachine"
            }
            for role_id, owner in roles.items():
                used = self.report.used.get((stack.name, role_id), set())
                for statement in _statements(stack, role_id, resolver):
                    if statement.effect != "Allow":
                        continue
                    for action in statement.actions:
                        if (statement.source, action) not in used and not _platform_action(action):
                            self.report.unused.append({"stack": stack.name, "principal": owner, "action": action})


def _without_resource_tag_conditions(statement: Statement) -> Statement:
    if statement.effect != "Allow":
        return statement  # a Deny keeps its conditions: dropping them would deny more, not less
    kept = {
        op: {k: v for k, v in pairs.items() if not k.startswith("aws:ResourceTag/")}
        for op, pairs in statement.conditions.items()
    }
    return replace(statement, conditions={op: pairs for op, pairs in kept.items() if pairs})


def _platform_action(action: str) -> bool:
    # Lambda's own logging, X-Ray and metrics: the runtime uses them, no handler call does. KMS
    # actions on a table's or bucket's key are used by the service on the caller's behalf.
    return action.split(":", maxsplit=1)[0] in ("logs", "xray", "cloudwatch", "kms") or action == "*"


def _named_after_logical_ids(stack: StackTemplate) -> Resolver:
    """A resolver in which every resource's physical name is its logical id, so references in a
    definition and in a policy render to the same ARN."""
    resolver = Resolver(stack.template, stack.region)
    for logical_id, resource in stack.template["Resources"].items():
        resolver.names[logical_id] = (
            ARN_FROM_REF[resource["Type"]](logical_id, stack.region, ACCOUNT)
            if resource["Type"] in ("AWS::StepFunctions::StateMachine", "AWS::SNS::Topic", "AWS::SQS::Queue")
            else logical_id
        )
    return resolver


def _definition(stack: StackTemplate, props: dict[str, Any], resolver: Resolver) -> dict[str, Any]:
    return dict(json.loads(asl_text(props, stack.outdir, resolver.render)))


def _tasks(states: dict[str, Any], prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for name, state in states.items():
        if state["Type"] == "Task":
            found.append((prefix + name, state))
        for branch in state.get("Branches", []):
            found += _tasks(branch["States"], f"{prefix}{name}/")
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                found += _tasks(state[key]["States"], f"{prefix}{name}/")
    return found


FORMAT = re.compile(r"States\.Format\('([^']*)'")


def _value(parameters: dict[str, Any], key: str) -> str | None:
    """A task parameter's value; a States.Format template stands in with 'x' for each argument,
    so a name pattern (finai-{}-{}) is judged as a name it can produce."""
    if key in parameters:
        return str(parameters[key])
    dynamic = parameters.get(f"{key}.$")
    if isinstance(dynamic, str):
        found = FORMAT.match(dynamic)
        if found:
            return found.group(1).replace("{}", "x")
    return None


def task_needs(task: dict[str, Any], region: str) -> list[Need]:
    """What Step Functions needs for one Task state, per the service-integration IAM pages."""
    resource = str(task["Resource"])
    params: dict[str, Any] = task.get("Parameters") or task.get("Arguments") or {}
    arn = lambda service, rest: f"arn:{PARTITION}:{service}:{region}:{ACCOUNT}:{rest}"  # noqa: E731
    if resource == "arn:aws:states:::lambda:invoke":
        return [Need("lambda:InvokeFunction", str(params["FunctionName"]))]
    dynamo = re.fullmatch(r"arn:aws:states:::dynamodb:(\w+)", resource)
    if dynamo:
        action = "dynamodb:" + dynamo.group(1)[0].upper() + dynamo.group(1)[1:]
        return [Need(action, arn("dynamodb", f"table/{params['TableName']}"))]
    if resource == "arn:aws:states:::sagemaker:createTrainingJob.sync":
        job = arn("sagemaker", f"training-job/{_value(params, 'TrainingJobName')}")
        return [
            Need("sagemaker:CreateTrainingJob", job),
            Need("sagemaker:DescribeTrainingJob", job),
            Need("sagemaker:StopTrainingJob", job),
            Need("iam:PassRole", str(params["RoleArn"]), (("iam:PassedToService", "sagemaker.amazonaws.com"),)),
            *(
                Need(f"events:{a}", arn("events", "rule/StepFunctionsGetEventsForSageMakerTrainingJobsRule"))
                for a in ("PutTargets", "PutRule", "DescribeRule")
            ),
        ]
    sdk = re.fullmatch(r"arn:aws:states:::aws-sdk:(\w+):(\w+)", resource)
    if sdk:
        service, operation = sdk.groups()
        action = f"{service}:{operation[0].upper()}{operation[1:]}"
        known_action(action)
        if operation == "createModelPackage":
            group = _value(params, "ModelPackageGroupName")
            return [Need(action, arn("sagemaker", f"model-package/{group}/1"))]
        return [Need(action, "*")]
    raise NotImplementedError(f"no IAM reading for the task resource {resource}; add it to task_needs")


def judge(calls: list[Recorded], stacks: list[StackTemplate]) -> Report:
    judge_ = Judge(stacks)
    for call in calls:
        judge_.judge_call(call)
    judge_.judge_state_machines()
    judge_.collect_unused({c.principal for c in calls})
    return judge_.report
