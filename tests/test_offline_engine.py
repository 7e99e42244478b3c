"""The offline engine: the real program and small programs under Pulumi's mock engine."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from hpc_platform.app.offline.engine import SECRET_PLACEHOLDER, UNKNOWN_PLACEHOLDER, Plan, plain, run_offline
from hpc_platform.app.offline.mocks import PlanMocks
from hpc_platform.app.tagging import compliance_tags_transform, is_taggable, register_compliance_tags


class Box(pulumi.ComponentResource):
    """A component with two children, one taggable and one not."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("hpc:test:Box", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.key = aws.kms.Key(f"{name}-key", enable_key_rotation=True, tags={"Name": name}, opts=child)
        self.route = aws.ec2.Route(
            f"{name}-route", route_table_id="rtb-1", destination_cidr_block="10.0.0.0/8", opts=child
        )
        self.register_outputs({"key_arn": self.key.arn})


class RemoteVpc(pulumi.ComponentResource):
    """Stands in for awsx.ec2.Vpc: a remote (multi-language) component the engine constructs."""

    def __init__(self, name: str, zones: Any = ("us-east-2a", "us-east-2b")) -> None:
        props: dict[str, Any] = {
            "availabilityZoneNames": list(zones),
            "subnetSpecs": [{"type": "Public"}, {"type": "Private"}],
            "vpcId": None,
            "privateSubnetIds": None,
            "publicSubnetIds": None,
        }
        super().__init__("awsx:ec2:Vpc", name, props, None, remote=True)


def _run(program: Any, preview: bool = True) -> Plan:
    return run_offline(program, stack="test", config={}, region="us-east-2", preview=preview)


def test_children_are_captured_with_their_parent_and_outputs_resolve() -> None:
    def program() -> None:
        box = Box("box")
        pulumi.export("key_arn", box.key.arn)

    plan = _run(program)
    component = plan.by_name("box")
    assert component.custom is False and component.type == "hpc:test:Box"
    children = {r.name: r for r in plan.children_of(component.urn)}
    assert set(children) == {"box-key", "box-route"}
    assert all(c.custom for c in children.values())
    key = children["box-key"]
    assert key.urn == "urn:pulumi:test::hpc-platform::hpc:test:Box$aws:kms/key:Key::box-key"
    assert key.id is not None and key.outputs["arn"] == f"arn:aws:kms:us-east-2:123456789012:key/{key.id}"
    assert plan.outputs["key_arn"] == key.outputs["arn"]


def test_stack_transforms_run_like_the_engine_and_tags_only_taggable_resources() -> None:
    def program() -> None:
        register_compliance_tags({"Owner": "team@example.org", "Name": "must-not-win"})
        Box("box")

    plan = _run(program)
    key, route = plan.by_name("box-key"), plan.by_name("box-route")
    # Required tags win over resource tags; resource-only tags stay.
    assert key.inputs["tags"] == {"Name": "must-not-win", "Owner": "team@example.org"}
    assert "tags" not in route.inputs
    assert key.outputs["tagsAll"]["Owner"] == "team@example.org"


def test_secrets_are_masked_in_plan_json() -> None:
    def program() -> None:
        pulumi.export("password", pulumi.Output.secret("hunter2"))
        aws.secretsmanager.SecretVersion("v", secret_id="s", secret_string=pulumi.Output.secret("hunter2"))

    document = _run(program).to_json()
    text = json.dumps(document)
    assert "hunter2" not in text
    assert document["outputs"]["password"] == SECRET_PLACEHOLDER
    assert document["resources"][0]["inputs"]["secretString"] == SECRET_PLACEHOLDER


def test_remote_component_gets_the_outputs_its_provider_would_return() -> None:
    def program() -> None:
        vpc = RemoteVpc("vpc")
        pulumi.export("vpc_id", vpc.vpcId)  # type: ignore[attr-defined]
        pulumi.export("private", vpc.privateSubnetIds)  # type: ignore[attr-defined]

    plan = _run(program)
    vpc = plan.by_name("vpc")
    assert (vpc.remote, vpc.custom) == (True, False)
    assert plan.outputs["vpc_id"].startswith("vpc-")
    assert len(plan.outputs["private"]) == 2
    assert all(s.startswith("subnet-") for s in plan.outputs["private"])


def test_runs_are_isolated() -> None:
    def first() -> None:
        Box("one")
        pulumi.export("n", 1)

    def second() -> None:
        Box("two")

    _run(first)
    plan = _run(second)
    assert {r.name for r in plan.resources} == {"two", "two-key", "two-route"}
    assert plan.outputs == {}


def test_fails_loudly_when_the_program_raises() -> None:
    def program() -> None:
        raise pulumi.RunError("Pulumi.test.yaml: hpc:cluster: is required")

    with pytest.raises(pulumi.RunError, match="hpc:cluster: is required"):
        _run(program)


def test_real_program_reports_bad_config_as_one_line_per_problem(stack_config: Any) -> None:
    """Under the engine (no pre-validation), the program itself stops with the same lines."""
    from hpc_platform.app.program import program

    config = stack_config("dev")
    config["hpc:storage"]["scratch"]["capacity_gib"] = 1000
    with pytest.raises(pulumi.RunError) as raised:
        run_offline(program, stack="dev", config=config, region="us-east-2")
    assert str(raised.value) == (
        "Pulumi.dev.yaml: hpc:storage.scratch.capacity_gib: 1000 is not a valid SCRATCH_2 size; "
        "use 1200, 2400 or a multiple of 2400"
    )


@pytest.mark.parametrize(
    ("token", "taggable"),
    [
        ("aws:ec2/subnet:Subnet", True),
        ("aws:kms/key:Key", True),
        ("aws:ec2/route:Route", False),
        ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", False),
        ("random:index/randomPassword:RandomPassword", False),
        ("aws:nosuchmodule/thing:Thing", False),
    ],
)
def test_is_taggable_reads_the_sdk(token: str, taggable: bool) -> None:
    assert is_taggable(token) is taggable


def test_transform_leaves_list_shaped_tags_alone() -> None:
    transform = compliance_tags_transform({"Owner": "x"})
    tags = [{"key": "Name", "value": "asg", "propagateAtLaunch": True}]
    args = pulumi.ResourceTransformArgs(
        custom=True,
        type_="aws:autoscaling/group:Group",
        name="g",
        props={"tags": tags},
        opts=pulumi.ResourceOptions(),
    )
    assert transform(args) is None


def test_transform_skips_components() -> None:
    transform = compliance_tags_transform({"Owner": "x"})
    args = pulumi.ResourceTransformArgs(
        custom=False, type_="aws:kms/key:Key", name="k", props={}, opts=pulumi.ResourceOptions()
    )
    assert transform(args) is None


def test_descendants_cover_nested_components() -> None:
    class Outer(pulumi.ComponentResource):
        def __init__(self, name: str) -> None:
            super().__init__("hpc:test:Outer", name, None, None)
            Box(f"{name}-box", pulumi.ResourceOptions(parent=self))
            self.register_outputs({})

    plan = _run(lambda: Outer("outer"))
    outer = plan.by_name("outer")
    assert {r.name for r in plan.descendants_of(outer.urn)} == {
        "outer-box",
        "outer-box-key",
        "outer-box-route",
    }
    assert [r.name for r in plan.children_of(outer.urn)] == ["outer-box"]


def test_auto_named_iam_resources_have_their_name_in_the_plan() -> None:
    """pulumi-aws names a role without `name` in its Check (autonaming), so a real preview already
    knows `role.name`; the plan must too, or every instance profile and policy attachment names an
    unknown role and the plan cannot say which role a profile carries."""

    def program() -> None:
        role = aws.iam.Role("nodes-role", assume_role_policy="{}")
        aws.iam.InstanceProfile("nodes-profile", role=role.name)
        aws.iam.RolePolicyAttachment("nodes-ssm", role=role.name, policy_arn="arn:aws:iam::aws:policy/X")

    plan = run_offline(program, stack="test", config={}, region="us-east-2")
    role = plan.by_name("nodes-role")
    assert role.id and role.outputs["name"] == role.id
    assert plan.by_name("nodes-profile").inputs["role"] == role.id
    assert plan.by_name("nodes-ssm").inputs["role"] == role.id


def test_another_programs_project_names_its_urns() -> None:
    """The portal's own deployment is a second project (`hpc-portal`); its plan says so."""
    plan = run_offline(
        lambda: Box("box"), stack="portal-prod", config={}, region="us-east-2", project="hpc-portal"
    )
    assert plan.project == "hpc-portal"
    assert (
        plan.by_name("box").urn == "urn:pulumi:portal-prod::hpc-portal::pulumi:pulumi:Stack$hpc:test:Box::box"
    )
    assert plan.stack_urn.endswith("::hpc-portal::pulumi:pulumi:Stack::hpc-portal-portal-prod")


SMALL_POSTGRES: dict[str, Any] = {
    "engine": "postgres",
    "instance_class": "db.t4g.small",
    "allocated_storage": 20,
    "username": "portal",
}


def test_rds_instance_has_its_endpoint_and_the_secret_rds_manages_for_its_password() -> None:
    def program() -> None:
        db = aws.rds.Instance(
            "db",
            **SMALL_POSTGRES,
            manage_master_user_password=True,
            master_user_secret_kms_key_id="arn:aws:kms:us-east-2:123456789012:key/k",
        )
        pulumi.export("secret", db.master_user_secrets.apply(lambda s: s[0].secret_arn))
        pulumi.export("endpoint", db.endpoint)

    plan = _run(program)
    db = plan.by_name("db")
    assert plan.outputs["secret"].startswith("arn:aws:secretsmanager:us-east-2:123456789012:secret:rds!db-")
    assert db.outputs["masterUserSecrets"][0]["kmsKeyId"] == "arn:aws:kms:us-east-2:123456789012:key/k"
    assert plan.outputs["endpoint"] == f"{db.outputs['address']}:5432"
    assert db.outputs["arn"] == f"arn:aws:rds:us-east-2:123456789012:db:{db.id}"


def test_an_offline_run_sends_no_source_positions_and_leaves_the_sdk_s_own_outside(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The SDK's stack walk per registration is skipped offline (the mock monitor ignores it);
    outside an offline run the SDK's own function answers."""
    from pulumi.runtime import resource as pulumi_resource

    from hpc_platform.app.offline.engine import CapturingMonitor

    traces: list[int] = []
    register = CapturingMonitor.RegisterResource

    def recording(self: CapturingMonitor, request: Any) -> Any:
        traces.append(len(request.stackTrace.frames))
        return register(self, request)

    monkeypatch.setattr(CapturingMonitor, "RegisterResource", recording)
    _run(lambda: Box("box"))
    assert len(traces) == 4 and traces == [0, 0, 0, 0]  # stack, component and its two children

    wrapper = pulumi_resource._get_stack_trace
    monkeypatch.setattr(wrapper, "original", lambda: "the SDK's own")
    assert wrapper() == "the SDK's own"


def test_planning_a_stack_file_reads_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import hpc_platform.app.offline as offline
    from hpc_platform.domain.config import loader
    from hpc_platform.domain.config.loader import load_stack_file
    from tests.support.stacks import stack_file

    reads: list[Any] = []
    read = offline.read_stack_file

    def counting(path: Any) -> dict[str, Any]:
        reads.append(path)
        return read(path)

    monkeypatch.setattr(offline, "read_stack_file", counting)
    monkeypatch.setattr(loader, "read_stack_file", counting)
    stack_plan = offline.plan_stack_file(stack_file("dev"))
    assert len(reads) == 1
    assert stack_plan.loaded.config == load_stack_file(stack_file("dev")).config


def test_monitor_calls_run_on_the_planning_thread_and_the_loop_gets_its_executor_back() -> None:
    """Offline, the SDK's calls to the mock monitor run inline rather than in a thread pool (they
    are plain Python: a pool only adds hand-offs); the loop's own executor is back afterwards."""
    import asyncio
    import threading

    from pulumi.runtime.sync_await import _ensure_event_loop

    from hpc_platform.app.offline.engine import PlanMocks

    threads: set[int] = set()
    new_resource = PlanMocks.new_resource

    def recording(self: PlanMocks, args: Any) -> Any:
        threads.add(threading.get_ident())
        assert asyncio.events._get_running_loop() is None  # the mock monitor may drive a loop of its own
        return new_resource(self, args)

    loop = _ensure_event_loop()
    before = loop._default_executor  # type: ignore[attr-defined]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PlanMocks, "new_resource", recording)
        plan = _run(lambda: Box("box"))
    assert threads == {threading.get_ident()} and len(plan.resources) == 3
    assert loop._default_executor is before  # type: ignore[attr-defined]


def test_a_failing_monitor_call_reaches_the_program_as_it_does_from_a_pool() -> None:
    from hpc_platform.app.offline.engine import PlanMocks

    def failing(self: PlanMocks, args: Any) -> Any:
        raise RuntimeError(f"no mock for {args.typ}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PlanMocks, "new_resource", failing)
        with pytest.raises(Exception, match="no mock for hpc:test:Box"):
            _run(lambda: Box("box"))
    assert len(_run(lambda: Box("again")).resources) == 3  # and the next run is unaffected


@pytest.mark.parametrize("enabled_before", [True, False])
def test_cyclic_collection_waits_for_the_end_of_a_run(enabled_before: bool) -> None:
    """The collector is off while the program runs (its passes over the process's long-lived objects
    were 45% of a plan) and as the caller had it afterwards, even when the program fails."""
    import gc

    during: list[bool] = []

    def program() -> None:
        during.append(gc.isenabled())
        Box("box")

    def failing() -> None:
        raise pulumi.RunError("Pulumi.test.yaml: hpc:cluster: is required")

    was = gc.isenabled()
    try:
        if not enabled_before:
            gc.disable()
        _run(program)
        assert gc.isenabled() is enabled_before
        with pytest.raises(pulumi.RunError):
            _run(failing)
        assert gc.isenabled() is enabled_before
    finally:
        if was:
            gc.enable()
    assert during == [False]


def test_awsx_subnets_of_zones_unknown_in_a_preview_are_unknown() -> None:
    """Not ids hashed from the unknown value's text (with its memory address)."""

    def program() -> None:
        vpc = RemoteVpc("vpc", zones=["us-east-2a", pulumi.output.Unknown()])
        pulumi.export("vpc_id", vpc.vpcId)  # type: ignore[attr-defined]
        pulumi.export("private", vpc.privateSubnetIds)  # type: ignore[attr-defined]

    plan = _run(program)
    assert plain(plan.outputs["private"]) == UNKNOWN_PLACEHOLDER
    assert plan.outputs["vpc_id"].startswith("vpc-")


def test_rds_endpoint_of_an_unknown_port_is_unknown_in_a_preview() -> None:
    """Not the unknown sentinel's text (with its memory address) inside the endpoint string."""

    def program() -> None:
        db = aws.rds.Instance("db", **SMALL_POSTGRES, port=pulumi.output.Unknown())  # type: ignore[arg-type]
        pulumi.export("endpoint", db.endpoint)
        pulumi.export("address", db.address)

    plan = _run(program)
    assert plain(plan.outputs["endpoint"]) == UNKNOWN_PLACEHOLDER
    assert plan.outputs["address"].endswith(".us-east-2.rds.amazonaws.com")
    assert "endpoint" not in plan.by_name("db").outputs


# --- preview=False: what a deployment's program run sees -----------------------------------------
def test_outside_a_preview_an_output_the_mocks_leave_out_is_none_and_applies_run() -> None:
    """The mocks return no `version` for an SSM parameter. In a preview it is unknown: inputs built
    from it are unknown and `apply` callbacks on it do not run. Outside a preview it is a known
    None, as after a deployment whose provider returned none."""

    def program() -> None:
        param = aws.ssm.Parameter("param", type="String", value="x")
        described = param.version.apply(lambda version: f"version {version}")
        aws.ssm.Parameter("copy", type="String", value="y", description=described)
        pulumi.export("version", param.version)
        pulumi.export("described", described)

    preview, deploy = _run(program), _run(program, preview=False)
    assert plain(preview.by_name("copy").inputs["description"]) == UNKNOWN_PLACEHOLDER
    assert plain(preview.outputs) == {"version": UNKNOWN_PLACEHOLDER, "described": UNKNOWN_PLACEHOLDER}
    assert deploy.by_name("copy").inputs["description"] == "version None"
    assert deploy.by_name("copy").outputs["description"] == "version None"
    # A None stack output is not registered at all.
    assert deploy.outputs == {"described": "version None"}


def test_outside_a_preview_the_mocks_get_none_for_unknown_inputs_at_any_depth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An input the program leaves unknown reaches the mocks as the unknown sentinel in a preview
    and as None outside one (what the SDK's own mock monitor hands them), inside maps and lists
    too; the plan's inputs record what the program sent either way."""
    seen: dict[bool, dict[str, Any]] = {}
    new_resource = PlanMocks.new_resource

    def recording(self: PlanMocks, args: Any) -> Any:
        if args.name == "db":
            seen[pulumi.runtime.is_dry_run()] = args.inputs
        return new_resource(self, args)

    monkeypatch.setattr(PlanMocks, "new_resource", recording)

    def program() -> None:
        unknown: Any = pulumi.output.Unknown()
        db = aws.rds.Instance(
            "db",
            **SMALL_POSTGRES,
            port=unknown,
            tags={"Owner": unknown},
            vpc_security_group_ids=["sg-1", unknown],
        )
        pulumi.export("endpoint", db.endpoint)

    sent = {"port": UNKNOWN_PLACEHOLDER, "tags": {"Owner": UNKNOWN_PLACEHOLDER}}
    sent["vpcSecurityGroupIds"] = ["sg-1", UNKNOWN_PLACEHOLDER]

    preview = _run(program).by_name("db")
    assert isinstance(seen[True]["port"], pulumi.output.Unknown)
    assert isinstance(seen[True]["tags"]["Owner"], pulumi.output.Unknown)
    assert isinstance(seen[True]["vpcSecurityGroupIds"][1], pulumi.output.Unknown)
    assert {key: plain(preview.inputs[key]) for key in sent} == sent

    plan = _run(program, preview=False)
    db = plan.by_name("db")
    assert (seen[False]["port"], seen[False]["tags"], seen[False]["vpcSecurityGroupIds"]) == (
        None,
        {"Owner": None},
        ["sg-1", None],
    )
    assert {key: plain(db.inputs[key]) for key in sent} == sent
    # With no port the mocks answer the engine's default, as RDS does.
    assert db.outputs["port"] == 5432
    assert plan.outputs["endpoint"] == f"{db.outputs['address']}:5432"
