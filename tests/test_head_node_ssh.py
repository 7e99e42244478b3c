"""SSH to the head node: ParallelCluster's own head-node security group opens port 22 to nobody.

ParallelCluster 3.16.1 creates a head-node security group with one SSH rule from
`HeadNode.Ssh.AllowedIps`, and its config class defaults that to `0.0.0.0/0`
(`HeadNodeSsh.allowed_ips`, `templates/cluster_stack.py` `_add_head_security_group`). The policy
pack cannot see that group, so the rendered config must close it; SSH from
`network.ssh_ingress_cidrs` comes in through our own head-node group. These tests load each
stack's rendered config with ParallelCluster's schema and read the CIDR its template would open.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import yaml

from hpc_platform.app.offline import plan_stack_file
from hpc_platform.app.offline.engine import Plan
from hpc_platform.domain.config.loader import read_stack_file
from hpc_platform.pcluster import KIND_PROPERTY, KIND_VALUE
from tests.support.pcluster_venv import run_pcluster_python
from tests.support.stacks import STACKS, planned, stack_file

SUBNET = "aws:ec2/subnet:Subnet"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
# AWS reserves the first four addresses and the last one of every subnet.
RESERVED_AT_START = 4

SSH_CIDR_PARALLELCLUSTER_OPENS = r"""
import json, sys
from pcluster.schemas.cluster_schema import ClusterSchema

cases = json.load(open(sys.argv[1]))
print(json.dumps({
    key: ClusterSchema(cluster_name=case["cluster_name"]).load(case["config"]).head_node.ssh.allowed_ips
    for key, case in cases.items()
}))
"""


def cluster_inputs(plan: Plan) -> dict[str, Any]:
    (cluster,) = [r for r in plan.resources if r.inputs.get(KIND_PROPERTY) == KIND_VALUE]
    return cluster.inputs


def opened_by_parallelcluster(plans: dict[str, Plan], tmp_path: Path) -> dict[str, str]:
    cases = {
        key: {
            "cluster_name": cluster_inputs(plan)["cluster_name"],
            "config": cluster_inputs(plan)["cluster_config"],
        }
        for key, plan in plans.items()
    }
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases))
    result = run_pcluster_python(SSH_CIDR_PARALLELCLUSTER_OPENS, str(path))
    assert result.returncode == 0, result.stderr[-4000:]
    opened: dict[str, str] = json.loads(result.stdout.strip().splitlines()[-1])
    return opened


def assignable(subnet: ipaddress.IPv4Network) -> list[ipaddress.IPv4Network]:
    """The addresses EC2 can give an interface in `subnet`, as ranges."""
    first = subnet.network_address + RESERVED_AT_START
    last = subnet.broadcast_address - 1
    return list(ipaddress.summarize_address_range(first, last))


def assert_opens_nothing(plan: Plan, cidr: str) -> None:
    opened = ipaddress.IPv4Network(cidr)
    assert opened.prefixlen == 32, f"{cidr} is a range"
    for subnet in plan.of_type(SUBNET):
        for usable in assignable(ipaddress.IPv4Network(subnet.inputs["cidrBlock"])):
            assert not opened.overlaps(usable), f"{cidr} can be an address in {subnet.name}"


def test_parallelcluster_head_node_group_opens_ssh_to_no_address_in_any_stack(tmp_path: Path) -> None:
    plans = {stack: planned(stack).plan for stack in STACKS}
    opened = opened_by_parallelcluster(plans, tmp_path)
    for stack, plan in plans.items():
        assert opened[stack] != "0.0.0.0/0", f"{stack}: the head node's SSH port is open to the internet"
        vpc = ipaddress.IPv4Network(planned(stack).loaded.config.network.vpc_cidr)
        # Inside the VPC, so never an internet address either.
        assert ipaddress.IPv4Network(opened[stack]).subnet_of(vpc)
        assert_opens_nothing(plan, opened[stack])


def test_configured_ssh_cidrs_reach_the_head_node_through_our_group_only(tmp_path: Path) -> None:
    config = read_stack_file(stack_file("staging"))
    wanted = ["203.0.113.0/24", "198.51.100.7/32"]
    config["hpc:network"]["ssh_ingress_cidrs"] = wanted
    config["hpc:cluster"]["head_node"] = {**config["hpc:cluster"].get("head_node", {}), "ssh_key_name": "ops"}
    path = tmp_path / "Pulumi.staging.yaml"
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    plan = plan_stack_file(path).plan

    head_sg = next(sg for sg in plan.of_type(SECURITY_GROUP) if sg.name.endswith("-head-node-sg"))
    ssh_sources = sorted(
        r.inputs["cidrIpv4"]
        for r in plan.of_type(INGRESS)
        if r.inputs["securityGroupId"] == head_sg.id and r.inputs.get("fromPort") == 22
    )
    assert ssh_sources == sorted(wanted)
    rendered = cluster_inputs(plan)["cluster_config"]
    assert head_sg.id in rendered["HeadNode"]["Networking"]["AdditionalSecurityGroups"]
    assert rendered["HeadNode"]["Ssh"]["KeyName"] == "ops"
    opened = opened_by_parallelcluster({"staging": plan}, tmp_path)["staging"]
    assert_opens_nothing(plan, opened)
