"""IAM tier: our roles grant everything ParallelCluster grants the roles it creates itself.

ParallelCluster adds nothing to roles it is given, so what its own roles would get is the floor for
ours. It is derived here, at test time, from ParallelCluster's CDK code in its pinned version (its
venv): each stack's rendered cluster config, taken from the offline plan with our roles left out,
is synthesized with `ClusterCdkStack` in moto (`tests/support/pcluster_synth.py`), and the policies
of the head-node, compute and Lambda roles in the templates are resolved to concrete ARNs for the
plan's account, region and cluster. Every (action, resource, condition) they grant must be covered
by the policy documents the plan declares for our roles (`tests/support/iam_grants.py` holds the
matcher), except:

- NARROWINGS: ours is narrower, and each entry says why it names the same resources;
- EXCLUDED: features this platform does not enable; each entry checks that it stays disabled.

Both lists are printed (`pytest -s`). The same synthesis of the dev config as rendered, with our
roles, must hold no IAM resource at all: restricted IAM mode would reject it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from components.cluster_iam import MANAGED_POLICIES
from components.parallel_cluster import TYPE_TOKEN
from hpc_platform.app.offline import StackPlan
from hpc_platform.app.offline.engine import Plan, PlannedResource
from hpc_platform.app.offline.mocks import MOCK_ACCOUNT_ID
from hpc_platform.pcluster import KIND_PROPERTY, KIND_VALUE
from tests.support.component_queries import component_queries
from tests.support.iam_grants import (
    Condition,
    Grant,
    TemplateGrants,
    action_covers,
    arn_covers,
    covers,
    document_grants,
    iter_uncovered,
    pattern_covers,
    template_grants,
)
from tests.support.pcluster_venv import run_pcluster_python
from tests.support.stacks import STACKS, planned

SYNTH_SCRIPT = Path(__file__).resolve().parent / "support" / "pcluster_synth.py"
ROLE_KINDS = ("head", "compute", "lambda")
AS_RENDERED = "dev-as-rendered"
queries = component_queries(TYPE_TOKEN)


# ---------------------------------------------------------------------------------------------
# What the plan declares
# ---------------------------------------------------------------------------------------------
def cluster_resource(plan: Plan) -> PlannedResource:
    (found,) = [r for r in plan.resources if r.inputs.get(KIND_PROPERTY) == KIND_VALUE]
    return found


@dataclass
class OurRole:
    role: PlannedResource
    grants: list[Grant]
    managed_policies: set[str]


def our_roles(plan: Plan) -> dict[str, OurRole]:
    """Our head-node, compute and Lambda roles with the grants of every policy the plan attaches."""
    roles = {}
    for kind in ROLE_KINDS:
        role = queries.named(plan, f"{kind}-role")
        name = role.outputs["name"]
        grants = [
            grant
            for policy in queries.of_type(plan, "aws:iam/rolePolicy:RolePolicy")
            if policy.inputs["role"] == name
            for grant in document_grants(policy.inputs["policy"], f"{kind}/{policy.inputs['name']}")
        ]
        managed = {
            attachment.inputs["policyArn"]
            for attachment in queries.of_type(plan, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
            if attachment.inputs["role"] == name
        }
        roles[kind] = OurRole(role, grants, managed)
    return roles


# ---------------------------------------------------------------------------------------------
# What ParallelCluster grants (one synthesis per config, in ParallelCluster's venv)
# ---------------------------------------------------------------------------------------------
def synth_case(stack: StackPlan, *, keep_our_roles: bool) -> dict[str, Any]:
    """The plan's cluster config (with or without our roles) and the ids it references."""
    plan = stack.plan
    cluster = cluster_resource(plan).inputs
    config = copy.deepcopy(cluster["cluster_config"])
    if not keep_our_roles:
        # The config ParallelCluster would get if we left the roles to it.
        config["HeadNode"].pop("Iam")
        for queue in config["Scheduling"]["SlurmQueues"]:
            queue.pop("Iam")
        config.pop("Iam")
    roles = our_roles(plan) if keep_our_roles else {}
    profiles = queries.of_type(plan, "aws:iam/instanceProfile:InstanceProfile")
    return {
        "cluster_name": cluster["cluster_name"],
        "config": config,
        "subnets": {s.id: s.inputs["availabilityZone"] for s in plan.of_type("aws:ec2/subnet:Subnet")},
        "security_groups": sorted(g.id for g in plan.of_type("aws:ec2/securityGroup:SecurityGroup")),
        "fsx": sorted(f.id for f in plan.of_type("aws:fsx/lustreFileSystem:LustreFileSystem")),
        "efs": sorted(f.id for f in plan.of_type("aws:efs/fileSystem:FileSystem")),
        # ParallelCluster reads the roles of the instance profiles it is given.
        "roles": {r.role.outputs["name"]: r.role.inputs["assumeRolePolicy"] for r in roles.values()},
        "instance_profiles": {p.id: p.inputs["role"] for p in profiles} if keep_our_roles else {},
    }


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cases = {stack: synth_case(planned(stack), keep_our_roles=False) for stack in STACKS}
    cases[AS_RENDERED] = synth_case(planned("dev"), keep_our_roles=True)
    directory = tmp_path_factory.mktemp("pcluster-synth")
    # In a stable order (the plan registers resources concurrently): the fast loop's result cache
    # (tests/support/result_cache.py) keys the run by this file's contents.
    (directory / "cases.json").write_text(json.dumps(cases, sort_keys=True))
    # Run as a script: it finds the integration harness (AMIs, moto patches) beside itself.
    run_script = f"import runpy; runpy.run_path({str(SYNTH_SCRIPT)!r}, run_name='__main__')"
    result = run_pcluster_python(
        run_script, str(directory / "cases.json"), str(directory / "out.json"), timeout=900
    )
    assert result.returncode == 0, result.stderr[-4000:]
    out: dict[str, Any] = json.loads((directory / "out.json").read_text())
    return out


def parallelcluster_grants(synthesized: dict[str, Any], stack: str) -> TemplateGrants:
    loaded = planned(stack).loaded.config
    return template_grants(
        synthesized[stack], cluster_name=loaded.cluster.name, region=loaded.region, account_id=MOCK_ACCOUNT_ID
    )


# ---------------------------------------------------------------------------------------------
# Allowed differences
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Context:
    stack: str
    region: str
    cluster_name: str
    plan: Plan
    config: dict[str, Any]
    """The rendered cluster config (with our roles)."""
    parallelcluster: TemplateGrants
    roles: dict[str, OurRole]


@dataclass(frozen=True)
class Narrowing:
    """Where ParallelCluster's grant is wider than needed, the narrower grant we must have instead."""

    name: str
    reason: str
    kinds: tuple[str, ...]
    action: str
    resource: str
    """ParallelCluster's resource (IAM wildcards), with `{region}`, `{account}`, `{cluster}`."""
    narrower: Callable[[Grant, Context], Grant]


@dataclass(frozen=True)
class Exclusion:
    """A grant ParallelCluster makes for a feature this platform does not enable."""

    name: str
    reason: str
    kinds: tuple[str, ...]
    action: str
    resource: str
    still_unused: Callable[[Context], bool]
    """Checked on every stack's rendered config: the feature is still off."""


def _instance_arns(grant: Grant, ctx: Context) -> Grant:
    return Grant(grant.action, f"arn:aws:ec2:{ctx.region}:{MOCK_ACCOUNT_ID}:instance/*", grant.conditions)


def _compute_role(grant: Grant, ctx: Context) -> Grant:
    profile = queries.named(ctx.plan, "compute-profile").outputs["arn"]
    queue_profiles = {q["Iam"]["InstanceProfile"] for q in ctx.config["Scheduling"]["SlurmQueues"]}
    # The claim this narrowing rests on: every queue runs with our compute profile, whose role is
    # the compute role, so that role is the only one compute nodes are launched with.
    assert queue_profiles == {profile}, f"{ctx.stack}: queues use {queue_profiles}, not only {profile}"
    compute = ctx.roles["compute"].role
    assert queries.named(ctx.plan, "compute-profile").inputs["role"] == compute.outputs["name"]
    passed_to: Condition = ("StringEquals", "iam:passedtoservice", frozenset({"ec2.amazonaws.com"}))
    return Grant(grant.action, compute.outputs["arn"], grant.conditions | {passed_to})


def _records_below_cluster_domain(grant: Grant, ctx: Context) -> Grant:
    # The zone ParallelCluster creates is named by its own ClusterDNSDomain parameter.
    domain = str(ctx.parallelcluster.parameters["ClusterDNSDomain"]).rstrip(".")
    below: Condition = (
        "ForAllValues:StringLike",
        "route53:changeresourcerecordsetsnormalizedrecordnames",
        frozenset({f"*.{domain}"}),
    )
    return Grant(grant.action, grant.resource, grant.conditions | {below})


NARROWINGS = (
    Narrowing(
        name="terminate-instances-arn",
        reason=(
            "ec2:TerminateInstances acts on one resource type, instance (Service Authorization "
            "Reference), and the cluster-name tag condition (kept) selects this cluster's instances, "
            "which are all in the stack's region and account: `*` and "
            "arn:aws:ec2:<region>:<account>:instance/* name the same instances"
        ),
        kinds=("head", "lambda"),
        action="ec2:TerminateInstances",
        resource="*",
        narrower=_instance_arns,
    ),
    Narrowing(
        name="pass-the-compute-role",
        reason=(
            "ParallelCluster lets its head node pass the roles it creates for compute nodes "
            "(role/parallelcluster/<cluster>/*); it creates none here, and given queue instance "
            "profiles its own rule (`_generate_head_node_pass_role_resources`) is the profiles' roles. "
            "Every queue runs with our compute profile (checked), so the compute role, passed to EC2 "
            "only (RunInstances/CreateFleet), is the one role to pass"
        ),
        kinds=("head",),
        action="iam:PassRole",
        resource="arn:aws:iam::{account}:role/parallelcluster/{cluster}/*",
        narrower=_compute_role,
    ),
    Narrowing(
        name="dns-records-by-name",
        reason=(
            "the cluster's hosted zone is created by the cluster stack, so its id is unknown when our "
            "roles are; we grant hostedzone/* but only for record names below the zone's domain "
            "(ParallelCluster's ClusterDNSDomain), which is every record the head node writes and the "
            "cleanup function deletes (node A records)"
        ),
        kinds=("head", "lambda"),
        action="route53:ChangeResourceRecordSets",
        resource="arn:aws:route53:::hostedzone/<Route53HostedZone>",
        narrower=_records_below_cluster_domain,
    ),
)


def _head_node(ctx: Context) -> dict[str, Any]:
    head: dict[str, Any] = ctx.config["HeadNode"]
    return head


EXCLUDED = (
    Exclusion(
        name="dcv-license",
        reason="the DCV license bucket is read only by a head node with DCV enabled; DCV is never rendered",
        kinds=("head",),
        action="s3:GetObject",
        resource="arn:aws:s3:::dcv-license.{region}/*",
        still_unused=lambda ctx: not _head_node(ctx).get("Dcv", {}).get("Enabled", False),
    ),
    Exclusion(
        name="no-key-pair",
        reason=(
            "without HeadNode.Ssh.KeyName ParallelCluster still names key-pair/None in RunInstances; "
            "no stack sets a key (access is through SSM), so no key pair is launched with"
        ),
        kinds=("head",),
        action="ec2:*",
        resource="arn:aws:ec2:{region}:{account}:key-pair/None",
        still_unused=lambda ctx: "KeyName" not in _head_node(ctx).get("Ssh", {}),
    ),
)


def _pattern(template: str, ctx: Context) -> str:
    return template.format(region=ctx.region, account=MOCK_ACCOUNT_ID, cluster=ctx.cluster_name)


def _applies(
    kinds: tuple[str, ...], action: str, resource: str, kind: str, grant: Grant, ctx: Context
) -> bool:
    return (
        kind in kinds
        and action_covers(action, grant.action)
        and pattern_covers(_pattern(resource, ctx), grant.resource)
    )


def context(synthesized: dict[str, Any], stack: str) -> Context:
    loaded = planned(stack).loaded.config
    plan = planned(stack).plan
    return Context(
        stack=stack,
        region=loaded.region,
        cluster_name=loaded.cluster.name,
        plan=plan,
        config=cluster_resource(plan).inputs["cluster_config"],
        parallelcluster=parallelcluster_grants(synthesized, stack),
        roles=our_roles(plan),
    )


@dataclass(frozen=True)
class Verdict:
    missing: list[Grant]
    narrowed: list[tuple[Grant, Narrowing]]
    excluded: list[tuple[Grant, Exclusion]]


def compare(kind: str, ctx: Context) -> Verdict:
    ours = ctx.roles[kind].grants
    missing, narrowed, excluded = [], [], []
    for grant in ctx.parallelcluster.grants[kind]:
        if any(covers(mine, grant) for mine in ours):
            continue
        exclusion = next(
            (e for e in EXCLUDED if _applies(e.kinds, e.action, e.resource, kind, grant, ctx)), None
        )
        if exclusion is not None:
            excluded.append((grant, exclusion))
            continue
        narrowing = next(
            (n for n in NARROWINGS if _applies(n.kinds, n.action, n.resource, kind, grant, ctx)), None
        )
        if narrowing is not None and not list(iter_uncovered([narrowing.narrower(grant, ctx)], ours)):
            narrowed.append((grant, narrowing))
            continue
        missing.append(grant)
    return Verdict(missing, narrowed, excluded)


# ---------------------------------------------------------------------------------------------
# The matcher
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [
        ("arn:aws:s3:::b/*", "arn:aws:s3:::b/k", True),
        ("arn:aws:s3:::b/*", "arn:aws:s3:::b/p/*", True),  # a wildcard of theirs under our `*`
        ("arn:aws:s3:::b/p/*", "arn:aws:s3:::b/*", False),  # ours is narrower
        ("arn:aws:s3:::parallelcluster-*-v1", "arn:aws:s3:::parallelcluster-0a1b-v1", True),
        ("arn:aws:ec2:us-east-2:1:instance/*", "*", False),
        ("*", "arn:aws:ec2:us-east-2:1:instance/i-1", True),
        ("arn:aws:ec2:*:1:instance/*", "arn:aws:ec2:us-east-2:1:instance/i-1", True),
        ("arn:aws:ec2:*", "arn:aws:ec2:us-east-2:1:instance/i-1", False),  # `*` stays in its segment
        ("arn:aws:route53:::hostedzone/*", "arn:aws:route53:::hostedzone/<Zone>", True),
        ("arn:aws:route53:::hostedzone/Z1", "arn:aws:route53:::hostedzone/<Zone>", False),
        ("arn:aws:ec2:us-east-2:1:subnet/subnet-?", "arn:aws:ec2:us-east-2:1:subnet/subnet-1", True),
        ("arn:aws:ec2:us-east-2:1:subnet/subnet-?", "arn:aws:ec2:us-east-2:1:subnet/subnet-*", False),
        ("arn:aws:iam::1:role/parallelcluster/c", "arn:aws:iam::1:role/parallelcluster/c/*", False),
    ],
)
def test_arn_covers(ours: str, theirs: str, expected: bool) -> None:
    assert arn_covers(ours, theirs) is expected


@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [
        ("ec2:RunInstances", "ec2:runinstances", True),
        ("ec2:Describe*", "ec2:DescribeInstances", True),
        ("ec2:DescribeInstances", "ec2:Describe*", False),
        ("dynamodb:GetItem", "dynamodb:BatchGetItem", False),
    ],
)
def test_action_covers(ours: str, theirs: str, expected: bool) -> None:
    assert action_covers(ours, theirs) is expected


def test_our_conditions_must_hold_whenever_theirs_do() -> None:
    tag = ("StringEquals", "aws:resourcetag/parallelcluster:cluster-name", frozenset({"c"}))
    queue = ("StringEquals", "aws:resourcetag/parallelcluster:queue-name", frozenset({"q1", "q2"}))
    wide = Grant("ec2:GetConsoleOutput", "arn:aws:ec2:r:1:instance/*")
    assert covers(wide, Grant(wide.action, wide.resource, frozenset({tag, queue})))
    assert covers(
        Grant(wide.action, wide.resource, frozenset({tag})),
        Grant(wide.action, wide.resource, frozenset({tag, queue})),
    )
    assert not covers(Grant(wide.action, wide.resource, frozenset({tag})), wide)
    one_queue = ("StringEquals", "aws:resourcetag/parallelcluster:queue-name", frozenset({"q1"}))
    assert not covers(
        Grant(wide.action, wide.resource, frozenset({one_queue})),
        Grant(wide.action, wide.resource, frozenset({queue})),
    )


# ---------------------------------------------------------------------------------------------
# Our roles against ParallelCluster's
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ROLE_KINDS)
@pytest.mark.parametrize("stack", STACKS)
def test_our_role_grants_everything_parallelcluster_grants_its_own(
    synthesized: dict[str, Any], stack: str, kind: str
) -> None:
    ctx = context(synthesized, stack)
    assert ctx.parallelcluster.grants[kind], f"{stack}: ParallelCluster's templates hold no {kind} grants"
    verdict = compare(kind, ctx)
    for grant, narrowing in verdict.narrowed:
        print(f"{stack} {kind}: narrowed [{narrowing.name}] {grant} ({grant.origin}): {narrowing.reason}")
    for grant, exclusion in verdict.excluded:
        print(f"{stack} {kind}: excluded [{exclusion.name}] {grant} ({exclusion.reason})")
    assert not verdict.missing, (
        f"{stack}: our {kind} role lacks what ParallelCluster grants its own:\n"
        + "\n".join(f"  {grant}   ({grant.origin})" for grant in verdict.missing)
    )


@pytest.mark.parametrize("stack", STACKS)
def test_every_allowed_difference_is_used_and_its_feature_stays_off(
    synthesized: dict[str, Any], stack: str
) -> None:
    """An entry that no longer matches anything, or whose feature got enabled, must go."""
    ctx = context(synthesized, stack)
    used = {
        entry.name
        for kind in ROLE_KINDS
        for _, entry in [*compare(kind, ctx).narrowed, *compare(kind, ctx).excluded]
    }
    print(f"{stack}: allowed narrowings and exclusions used: {sorted(used)}")
    for exclusion in EXCLUDED:
        assert exclusion.still_unused(ctx), f"{stack}: [{exclusion.name}] is in use now: {exclusion.reason}"
    assert used == {entry.name for entry in (*NARROWINGS, *EXCLUDED)}


@pytest.mark.parametrize("stack", STACKS)
def test_our_roles_carry_parallelclusters_managed_policies(synthesized: dict[str, Any], stack: str) -> None:
    ctx = context(synthesized, stack)
    for kind in ROLE_KINDS:
        theirs = ctx.parallelcluster.managed_policies[kind]
        assert theirs <= ctx.roles[kind].managed_policies, (stack, kind, theirs)
    # Beyond ParallelCluster's (CloudWatch agent): SSM Session Manager, the only way onto nodes.
    assert {a.rsplit("/", 1)[-1] for a in ctx.roles["head"].managed_policies} == set(MANAGED_POLICIES)


def test_the_rendered_config_leaves_parallelcluster_no_iam_resource_to_create(
    synthesized: dict[str, Any],
) -> None:
    """Restricted IAM mode (the API's default policies): a cluster stack with an IAM role, policy or
    instance profile fails to create. ParallelCluster's own synthesis of the dev config as
    rendered, with our instance profiles and Lambda role, must contain none."""
    as_rendered = synthesized[AS_RENDERED]
    iam_resources = [
        f"{name}/{logical_id} ({resource['Type']})"
        for name, template in as_rendered["templates"].items()
        for logical_id, resource in template.get("Resources", {}).items()
        if resource["Type"].startswith("AWS::IAM::")
    ]
    assert iam_resources == []
