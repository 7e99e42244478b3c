"""The dynamic provider against ParallelCluster 3.16.1's own REST API app (backed by moto).

Everything goes over HTTP to 127.0.0.1: the provider signs with SigV4 (credentials from the
standard AWS chain, here environment variables), ParallelCluster validates the config with its
own validators, synthesises its CDK templates and drives (moto's) CloudFormation, EC2, S3 and
DynamoDB. The harness patches are listed in README.md beside this file.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest

from hpc_platform.domain.limits import PCLUSTER_DEFAULT_VERSION
from hpc_platform.pcluster import KIND_PROPERTY, KIND_VALUE, STACK_MARKER_TAG
from hpc_platform.pcluster.client import Backoff, UnauthorizedError
from hpc_platform.pcluster.provider import ParallelClusterProvider, ProviderSettings
from tests.integration.provider_io import RecordingTransport, provider_props

pytestmark = pytest.mark.integration

MARKER = "hpc-platform/integration"


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
def provider(transport: RecordingTransport) -> ParallelClusterProvider:
    return ParallelClusterProvider(
        ProviderSettings(
            transport=transport,
            request_backoff=Backoff(base_seconds=0.2, max_seconds=1, max_attempts=3),
            poll_backoff=Backoff(base_seconds=0.25, max_seconds=1),
            fleet_timeout_minutes=1,
            request_timeout_seconds=120,
        )
    )


def cluster_config(
    world: dict[str, Any], instance_type: str = "c5.xlarge", max_count: int = 4
) -> dict[str, Any]:
    return {
        "Region": world["region"],
        "Image": {"Os": "alinux2023"},
        "HeadNode": {
            "InstanceType": "t3.medium",
            "Networking": {"SubnetId": world["head_subnet_id"]},
            "Ssh": {"KeyName": world["key_name"]},
        },
        "Scheduling": {
            "Scheduler": "slurm",
            "SlurmSettings": {"QueueUpdateStrategy": "DRAIN"},
            "SlurmQueues": [
                {
                    "Name": "compute",
                    "Networking": {"SubnetIds": [world["compute_subnet_id"]]},
                    "ComputeResources": [
                        {"Name": "cr1", "InstanceType": instance_type, "MinCount": 0, "MaxCount": max_count}
                    ],
                }
            ],
        },
        "Tags": [{"Key": STACK_MARKER_TAG, "Value": MARKER}],
    }


def props(world: dict[str, Any], name: str, **overrides: Any) -> dict[str, Any]:
    overrides.setdefault("cluster_config", cluster_config(world))
    overrides.setdefault("allow_fleet_stop", False)
    overrides.setdefault("stack_marker", MARKER)
    return provider_props(world, cluster_name=name, **overrides)


def moto(world: dict[str, Any], service: str) -> Any:
    return boto3.client(service, endpoint_url=world["moto"], region_name=world["region"])


def live_stacks(world: dict[str, Any], name: str) -> list[str]:
    summaries = moto(world, "cloudformation").list_stacks()["StackSummaries"]
    return [
        s["StackStatus"]
        for s in summaries
        if s["StackName"] == name and s["StackStatus"] != "DELETE_COMPLETE"
    ]


def fleet_status(world: dict[str, Any], name: str) -> str:
    item = moto(world, "dynamodb").get_item(
        TableName=f"parallelcluster-{name}", Key={"Id": {"S": "COMPUTE_FLEET"}}
    )
    return str(item["Item"]["Data"]["M"]["status"]["S"])


def instance_type_of(state: dict[str, Any]) -> str:
    resource = state["cluster_config"]["Scheduling"]["SlurmQueues"][0]["ComputeResources"][0]
    return str(resource["InstanceType"])


def test_the_api_admits_only_its_user_role(
    pcluster_api: dict[str, Any], provider: ParallelClusterProvider, transport: RecordingTransport
) -> None:
    """The harness puts the API template's resource policy (CreateApiUserRole=true, the default) in
    front of the app: only the template's PCAPIUserRole-<stack id> role may invoke it."""
    world = pcluster_api
    name = "it-access"
    # As the API's user role (assumed through moto's STS), the dry run reaches ParallelCluster,
    # whose validators answer (check only warns when it cannot reach a verdict).
    bad_config = cluster_config(world)
    bad_config["HeadNode"]["Networking"]["SubnetId"] = "subnet-00000000000000000"
    failures = provider.check({}, props(world, name, cluster_config=bad_config)).failures
    assert any("subnet-00000000000000000" in f.reason for f in failures)
    assert transport.calls == [("POST", "/v3/clusters?dryrun")]
    # Signed with the plain credentials: the resource policy denies it, and the provider says why.
    with pytest.raises(UnauthorizedError) as plain:
        provider.create(props(world, name, api_role_arn=None))
    assert plain.value.status == 403
    assert "with an explicit deny" in str(plain.value)
    assert "lets only its own PCAPIUserRole-… role invoke it" in str(plain.value)
    # Any other role of the account is denied too: the policy names the API's own role.
    iam = moto(world, "iam")
    trust = {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": "*"}}]}
    other = iam.create_role(RoleName="it-deployer", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    with pytest.raises(UnauthorizedError) as wrong_role:
        provider.create(props(world, name, api_role_arn=other))
    assert f"signed as role {other}, which the API refused" in str(wrong_role.value)
    assert transport.writes() == [("POST", "/v3/clusters")] * 2  # both refused at the gateway
    assert live_stacks(world, name) == []


def test_check_validates_with_a_dry_run(
    pcluster_api: dict[str, Any], provider: ParallelClusterProvider, transport: RecordingTransport
) -> None:
    good = provider.check({}, props(pcluster_api, "it-check"))
    assert good.failures == []
    bad_config = cluster_config(pcluster_api)
    bad_config["HeadNode"]["Networking"]["SubnetId"] = "subnet-00000000000000000"
    bad = provider.check({}, props(pcluster_api, "it-check", cluster_config=bad_config))
    assert [f.property for f in bad.failures] and all(f.property == "cluster_config" for f in bad.failures)
    assert any("subnet-00000000000000000" in f.reason for f in bad.failures)
    assert transport.calls == [("POST", "/v3/clusters?dryrun")] * 2
    assert transport.writes() == []
    assert live_stacks(pcluster_api, "it-check") == []


def test_lifecycle_create_update_with_fleet_stop_delete(
    pcluster_api: dict[str, Any], provider: ParallelClusterProvider, transport: RecordingTransport
) -> None:
    world = pcluster_api
    name = "it-lifecycle"
    base = f"/v3/clusters/{name}"

    # --- create ------------------------------------------------------------------------------
    created = provider.create(props(world, name))
    assert created.id == name
    state = created.outs or {}
    assert state["cluster_status"] == "CREATE_COMPLETE"
    assert state["cloudformation_stack_status"] == "CREATE_COMPLETE"
    assert state["head_node_instance_id"].startswith("i-")
    assert state["head_node_ip"]
    assert state["version"] == PCLUSTER_DEFAULT_VERSION
    assert state[KIND_PROPERTY] == KIND_VALUE
    assert "testing-secret" not in json.dumps(state)
    assert transport.writes() == [("POST", "/v3/clusters")]
    assert live_stacks(world, name) == ["CREATE_COMPLETE"]
    # Signed with the API user role's temporary credentials (moto's STS issues ASIA… keys).
    auth = transport.requests[0].headers["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=ASIA") and "/execute-api/aws4_request" in auth
    assert transport.requests[0].headers["X-Amz-Security-Token"]

    # --- read: the config ParallelCluster stored comes back through its presigned URL -------
    read = provider.read(name, state)
    assert read.id == name
    assert read.outs is not None
    assert read.outs["cluster_config"] == state["cluster_config"]
    assert read.outs["cluster_status"] == "CREATE_COMPLETE"
    state = read.outs

    # --- a live update: more nodes -------------------------------------------------------------
    transport.calls.clear()
    bigger = props(world, name, cluster_config=cluster_config(world, max_count=8))
    diff = provider.diff(name, state, bigger)
    assert diff.changes is True and diff.replaces == []
    state = provider.update(name, state, bigger).outs or {}
    assert state["cluster_status"] == "UPDATE_COMPLETE"
    assert transport.writes() == [("PUT", base)]

    # --- a change that needs the fleet stopped: refused while allow_fleet_stop is off ----------
    transport.calls.clear()
    retyped = props(
        world, name, cluster_config=cluster_config(world, instance_type="c5.2xlarge", max_count=8)
    )
    with pytest.raises(Exception, match="allow_fleet_stop is off"):
        provider.update(name, state, retyped)
    assert transport.writes() == []
    assert fleet_status(world, name) == "RUNNING"

    # --- ... and applied with stop → update → start when allowed -------------------------------
    transport.calls.clear()
    allowed = {**retyped, "allow_fleet_stop": True}
    state = provider.update(name, state, allowed).outs or {}
    assert state["cluster_status"] == "UPDATE_COMPLETE"
    fleet = f"{base}/computefleet"
    assert transport.writes() == [("PATCH", fleet), ("PUT", base), ("PATCH", fleet)]
    put = transport.calls.index(("PUT", base))
    assert transport.calls[put - 1] == ("GET", fleet)  # the PUT followed a STOPPED fleet
    patches = [json.loads(r.body or b"{}") for r in transport.requests if r.method == "PATCH"]
    assert patches == [{"status": "STOP_REQUESTED"}, {"status": "START_REQUESTED"}]
    assert instance_type_of(provider.read(name, state).outs or {}) == "c5.2xlarge"

    # --- an update ParallelCluster finds nothing in ("No changes found") is a success ---------
    # (state from an interrupted run: the live cluster already has the new config)
    transport.calls.clear()
    stale = copy.deepcopy(state)
    stale["cluster_config"] = cluster_config(world, instance_type="c5.2xlarge", max_count=6)
    state = provider.update(name, stale, allowed).outs or {}
    assert transport.writes() == [("PUT", base)]  # a live change: straight PUT, answered 400
    assert instance_type_of(state) == "c5.2xlarge"
    # ... and when the stale change looks like it needs a stop, the dry run avoids a needless one.
    transport.calls.clear()
    stale["cluster_config"] = cluster_config(world, max_count=8)
    state = provider.update(name, stale, allowed).outs or {}
    assert transport.writes() == []
    assert ("PUT", f"{base}?dryrun") in transport.calls

    # --- delete, then delete again (NotFound is success) ---------------------------------------
    transport.calls.clear()
    provider.delete(name, state)
    assert transport.writes() == [("DELETE", base)]
    assert transport.calls[-1] == ("GET", base)  # waited until describe said 404
    assert live_stacks(world, name) == []
    assert provider.read(name, state).id == ""
    provider.delete(name, state)


def test_create_adopts_its_own_cluster_and_refuses_a_foreign_one(
    pcluster_api: dict[str, Any], provider: ParallelClusterProvider, transport: RecordingTransport
) -> None:
    world = pcluster_api
    name = "it-adopt"
    first = provider.create(props(world, name)).outs or {}
    # A second create (e.g. `up` re-run after a create that timed out) adopts the same cluster.
    again = provider.create(props(world, name)).outs or {}
    assert again["head_node_instance_id"] == first["head_node_instance_id"]
    assert [w for w in transport.writes() if w[0] == "POST"] == [("POST", "/v3/clusters")] * 2
    assert live_stacks(world, name) == ["CREATE_COMPLETE"]
    assert transport.writes() == [("POST", "/v3/clusters")] * 2  # same config: nothing to apply
    # Adopting with a different config applies it through the update path.
    transport.calls.clear()
    changed = (
        provider.create(props(world, name, cluster_config=cluster_config(world, max_count=8))).outs or {}
    )
    assert changed["cluster_status"] == "UPDATE_COMPLETE"
    assert transport.writes() == [("POST", "/v3/clusters"), ("PUT", f"/v3/clusters/{name}")]
    assert live_stacks(world, name) == ["UPDATE_COMPLETE"]
    # Another stack's resource with the same cluster name is refused, and nothing is changed.
    with pytest.raises(Exception, match="does not belong to this stack"):
        provider.create(props(world, name, stack_marker="hpc-platform/someone-else"))
    failures = provider.check({}, props(world, name, stack_marker="hpc-platform/someone-else")).failures
    assert failures and "does not belong to this stack" in failures[0].reason
    provider.delete(name, changed)
    assert live_stacks(world, name) == []


def test_retain_on_delete_leaves_the_cluster(
    pcluster_api: dict[str, Any], provider: ParallelClusterProvider, transport: RecordingTransport
) -> None:
    world = pcluster_api
    name = "it-retain"
    state = provider.create(props(world, name, retain_on_delete=True)).outs or {}
    transport.calls.clear()
    provider.delete(name, state)
    assert transport.calls == []
    assert live_stacks(world, name) == ["CREATE_COMPLETE"]
    provider.delete(name, {**state, "retain_on_delete": False})
    assert live_stacks(world, name) == []
