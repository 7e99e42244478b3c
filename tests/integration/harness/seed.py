"""What exists in the fake AWS account before a cluster is created: the official ParallelCluster
AMI, a VPC with DNS support, a public head-node subnet and a private compute subnet, a key pair."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3

PCLUSTER_VERSION = "3.16.1"
KEY_NAME = "hpc-harness"


def write_official_amis(path: Path) -> None:
    """moto loads its AMIs from MOTO_AMIS_PATH and marks them as owned by `amazon`, which is how
    ParallelCluster finds its official image (`describe_images(Owners=["amazon"], name=…)`)."""
    images = [
        {
            "ami_id": f"ami-0{index}a1b2c3d4e5f6a7b8",
            "name": f"aws-parallelcluster-{PCLUSTER_VERSION}-{os_part}-hvm-x86_64-202601010000 "
            "2026-01-01T00-00-00.000Z",
            "description": f"AWS ParallelCluster AMI for {os_part}",
            "owner_id": "247102896272",
            "public": True,
            "virtualization_type": "hvm",
            "architecture": "x86_64",
            "state": "available",
            "root_device_type": "ebs",
            "root_device_name": "/dev/xvda",
            "creation_date": "2026-01-01T00:00:00.000Z",
            "hypervisor": "xen",
            "sriov": "simple",
            "platform": None,
        }
        for index, os_part in enumerate(("amzn2023", "amzn2", "ubuntu-2204-lts"), start=1)
    ]
    path.write_text(json.dumps(images))


def seed_world(region: str) -> dict[str, Any]:
    ec2 = boto3.client("ec2", region_name=region)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.0.0/24", AvailabilityZone=f"{region}a")["Subnet"][
        "SubnetId"
    ]
    private = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.16.0/20", AvailabilityZone=f"{region}a")[
        "Subnet"
    ]["SubnetId"]
    ec2.modify_subnet_attribute(SubnetId=public, MapPublicIpOnLaunch={"Value": True})
    public_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ec2.associate_route_table(RouteTableId=public_rt, SubnetId=public)
    nat = ec2.create_nat_gateway(
        SubnetId=public, AllocationId=ec2.allocate_address(Domain="vpc")["AllocationId"]
    )
    private_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(
        RouteTableId=private_rt,
        DestinationCidrBlock="0.0.0.0/0",
        NatGatewayId=nat["NatGateway"]["NatGatewayId"],
    )
    ec2.associate_route_table(RouteTableId=private_rt, SubnetId=private)
    ec2.create_key_pair(KeyName=KEY_NAME, KeyType="ed25519")
    return {"vpc_id": vpc, "head_subnet_id": public, "compute_subnet_id": private, "key_name": KEY_NAME}
