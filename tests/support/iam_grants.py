"""IAM grants as (action, resource, condition) triples, and an explicit wildcard matcher.

- `template_grants` reads the policies ParallelCluster attaches to the roles it creates, from the
  CloudFormation templates its CDK code synthesized (`pcluster_synth.py`), with the intrinsics
  resolved to concrete ARNs for a fixed account, region and cluster;
- `document_grants` reads one of our policy documents;
- `covers` says whether one grant includes another.

The matcher is sound, not complete: when it says "covers", every request the second grant allows
is allowed by the first; it may say "does not cover" for exotic equivalent forms, which then show
up as test failures to look at, never as silent passes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# A condition as (operator, key in lower case: IAM condition keys are case-insensitive, values).
Condition = tuple[str, str, frozenset[str]]

# CloudFormation gives a nested stack the name `<parent>-<logical id>-<random suffix>`; these stand
# for the random parts.
NESTED_STACK_SUFFIX = "1ABCDEFGHIJK2"
STACK_UUID = "00000000-1111-2222-3333-444444444444"


@dataclass(frozen=True)
class Grant:
    action: str
    resource: str
    conditions: frozenset[Condition] = frozenset()
    origin: str = field(default="", compare=False)
    """Where it comes from (policy and statement id), for messages."""

    def __str__(self) -> str:
        text = f"{self.action} on {self.resource}"
        if self.conditions:
            text += " if " + ", ".join(
                f"{op} {key} in {sorted(values)}" for op, key, values in sorted(self.conditions)
            )
        return text


# ---------------------------------------------------------------------------------------------
# Policy documents → grants
# ---------------------------------------------------------------------------------------------
def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _conditions(block: Mapping[str, Mapping[str, Any]] | None) -> frozenset[Condition]:
    return frozenset(
        (operator, key.lower(), frozenset(str(v) for v in _as_list(values)))
        for operator, keys in (block or {}).items()
        for key, values in keys.items()
    )


def document_grants(document: Any, origin: str) -> list[Grant]:
    """Every (action, resource) an Allow statement of `document` names; a Deny, NotAction or
    NotResource is refused (neither side uses them, and the matcher does not model them)."""
    parsed = json.loads(document) if isinstance(document, str) else document
    grants = []
    for statement in _as_list(parsed["Statement"]):
        unsupported = {"NotAction", "NotResource", "NotPrincipal"} & set(statement)
        if statement.get("Effect") != "Allow" or unsupported:
            raise ValueError(f"{origin}: statement not modelled by the matcher: {statement}")
        conditions = _conditions(statement.get("Condition"))
        where = f"{origin}/{statement.get('Sid', '-')}"
        for action in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                grants.append(Grant(action, resource, conditions, where))
    return grants


# ---------------------------------------------------------------------------------------------
# The wildcard matcher
# ---------------------------------------------------------------------------------------------
def pattern_covers(ours: str, theirs: str) -> bool:
    """Every string `theirs` stands for is matched by `ours`. Both may carry IAM's wildcards: `*`
    (any run of characters, also none) and `?` (one character). A wildcard of `theirs` is covered
    only by a `*` of ours (or `?` by `?`), so this is language inclusion, checked conservatively."""
    memo: dict[tuple[int, int], bool] = {}

    def match(i: int, j: int) -> bool:
        if (i, j) in memo:
            return memo[(i, j)]
        if i == len(ours):
            result = j == len(theirs)
        elif ours[i] == "*":
            # `*` takes nothing, or one more character (literal or wildcard) of theirs.
            result = match(i + 1, j) or (j < len(theirs) and match(i, j + 1))
        elif j == len(theirs):
            result = False
        elif ours[i] == "?":
            result = theirs[j] != "*" and match(i + 1, j + 1)
        else:
            result = theirs[j] == ours[i] and match(i + 1, j + 1)
        memo[(i, j)] = result
        return result

    return match(0, 0)


def action_covers(ours: str, theirs: str) -> bool:
    """Action names are case-insensitive (`ec2:RunInstances` = `EC2:runinstances`)."""
    return pattern_covers(ours.lower(), theirs.lower())


def arn_covers(ours: str, theirs: str) -> bool:
    """ARNs are matched segment by segment (`arn:partition:service:region:account:resource`): IAM
    wildcards stay inside the segment they are in, the resource segment is everything after the
    fifth colon. `*` alone is every resource; `*` is covered only by `*`."""
    if ours == "*":
        return True
    if theirs == "*":
        return False
    our_parts, their_parts = ours.split(":", 5), theirs.split(":", 5)
    if len(our_parts) != 6 or len(their_parts) != 6:
        return False
    return all(pattern_covers(a, b) for a, b in zip(our_parts, their_parts, strict=True))


def conditions_implied(ours: frozenset[Condition], theirs: frozenset[Condition]) -> bool:
    """Our conditions hold whenever theirs do: each of ours is one of theirs (same operator and
    key) whose allowed values are a subset of ours. No conditions always hold."""
    return all(
        any(
            op == their_op and key == their_key and their_values <= values
            for their_op, their_key, their_values in theirs
        )
        for op, key, values in ours
    )


def covers(ours: Grant, theirs: Grant) -> bool:
    return (
        action_covers(ours.action, theirs.action)
        and arn_covers(ours.resource, theirs.resource)
        and conditions_implied(ours.conditions, theirs.conditions)
    )


# ---------------------------------------------------------------------------------------------
# CloudFormation templates → grants per role
# ---------------------------------------------------------------------------------------------
@dataclass
class _Stack:
    """One template with what its intrinsics resolve to."""

    template: dict[str, Any]
    name: str
    stack_id: str
    parameters: dict[str, Any]
    pseudo: dict[str, str]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Ref", "Fn::")):
            return {key: self.resolve(item) for key, item in value.items()}
        ((function, argument),) = value.items()
        if function == "Ref":
            if argument in self.pseudo:
                return self.pseudo[argument]
            if argument in self.parameters:
                return self.parameters[argument]
            # A resource this template creates: its id is only known once it exists. `<...>` never
            # occurs in an ARN, so only a wildcard of ours can cover it.
            return f"<{argument}>"
        if function == "Fn::GetAtt":
            logical, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return f"<{logical}.{attribute}>"
        if function == "Fn::Join":
            separator, items = argument
            return separator.join(str(item) for item in self.resolve(items))
        if function == "Fn::Select":
            index, items = self.resolve(argument)
            return items[int(index)]
        if function == "Fn::Split":
            separator, text = self.resolve(argument)
            return str(text).split(separator)
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            names = {**self.pseudo, **self.parameters, **self.resolve(variables)}
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(names.get(m.group(1), f"<{m.group(1)}>")), text)
        raise ValueError(f"intrinsic function not modelled: {function}")


@dataclass
class TemplateGrants:
    """ParallelCluster's grants per role kind (`head`, `compute`, `lambda`)."""

    grants: dict[str, list[Grant]]
    managed_policies: dict[str, set[str]]
    parameters: dict[str, Any]
    """The main template's parameters (defaults), e.g. `ClusterDNSDomain`."""
    iam_resources: list[str]
    """Every IAM resource in the templates as `<template>/<logical id> (<type>)`."""


def template_grants(
    synthesized: Mapping[str, Any], *, cluster_name: str, region: str, account_id: str, partition: str = "aws"
) -> TemplateGrants:
    """The grants of the roles in ParallelCluster's cluster templates (`pcluster_synth.py` output).

    Node roles of the main template are the head node's, node roles of the nested (queues) stack
    are the compute nodes'; roles Lambda assumes are the cluster-stack functions'. moto's ids are
    mapped back to the plan's, so resources read as they would with the planned ids."""
    pseudo = {
        "AWS::Partition": partition,
        "AWS::Region": region,
        "AWS::AccountId": account_id,
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::NoValue": "",
    }
    templates = synthesized["templates"]
    main_template = templates[synthesized["main"]]
    main = _Stack(
        main_template,
        cluster_name,
        f"arn:{partition}:cloudformation:{region}:{account_id}:stack/{cluster_name}/{STACK_UUID}",
        {k: p.get("Default") for k, p in main_template.get("Parameters", {}).items()},
        {},
    )
    main.pseudo = {**pseudo, "AWS::StackName": main.name, "AWS::StackId": main.stack_id}
    stacks = [("main", main)]
    for logical_id, file_name in synthesized["nested"].items():
        resource = main_template["Resources"][logical_id]
        name = f"{cluster_name}-{logical_id}-{NESTED_STACK_SUFFIX}"
        stack_id = f"arn:{partition}:cloudformation:{region}:{account_id}:stack/{name}/{STACK_UUID}"
        nested = _Stack(
            templates[file_name],
            name,
            stack_id,
            main.resolve(resource["Properties"].get("Parameters", {})),
            {**pseudo, "AWS::StackName": name, "AWS::StackId": stack_id},
        )
        stacks.append(("nested", nested))

    back_to_plan = {moto: ours for ours, moto in synthesized["id_map"].items()}

    def plan_ids(text: str) -> str:
        for moto_id, our_id in back_to_plan.items():
            text = text.replace(moto_id, our_id)
        return text

    grants: dict[str, list[Grant]] = {"head": [], "compute": [], "lambda": []}
    managed: dict[str, set[str]] = {"head": set(), "compute": set(), "lambda": set()}
    iam_resources = []
    for where, stack in stacks:
        resources = stack.template.get("Resources", {})
        kinds = {}
        for logical_id, resource in resources.items():
            if resource["Type"].startswith("AWS::IAM::"):
                iam_resources.append(f"{where}/{logical_id} ({resource['Type']})")
            if resource["Type"] != "AWS::IAM::Role":
                continue
            properties = stack.resolve(resource["Properties"])
            services = {
                service
                for statement in properties["AssumeRolePolicyDocument"]["Statement"]
                for service in _as_list(statement["Principal"].get("Service", []))
            }
            if services == {"lambda.amazonaws.com"}:
                kind = "lambda"
            elif services == {"ec2.amazonaws.com"}:
                kind = "head" if where == "main" else "compute"
            else:
                raise ValueError(f"{logical_id}: a role for {services} is not modelled")
            kinds[logical_id] = kind
            managed[kind].update(properties.get("ManagedPolicyArns", []))
            for policy in properties.get("Policies", []):
                document = json.loads(plan_ids(json.dumps(policy["PolicyDocument"])))
                grants[kind] += document_grants(document, f"{logical_id}/{policy['PolicyName']}")
        for logical_id, resource in resources.items():
            if resource["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                continue
            properties = resource["Properties"]
            document = json.loads(plan_ids(json.dumps(stack.resolve(properties["PolicyDocument"]))))
            for role in properties.get("Roles", []):
                grants[kinds[role["Ref"]]] += document_grants(document, logical_id)
    if not grants["head"] or not grants["compute"]:
        raise ValueError("the templates hold no head-node or compute role: were the custom roles left in?")
    return TemplateGrants(grants, managed, dict(main.parameters), iam_resources)


def iter_uncovered(theirs: list[Grant], ours: list[Grant]) -> Iterator[Grant]:
    for grant in theirs:
        if not any(covers(mine, grant) for mine in ours):
            yield grant
