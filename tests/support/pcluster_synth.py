"""Synthesize ParallelCluster's own CloudFormation templates for cluster configs, in moto.

Runs with the ParallelCluster venv's interpreter (see `pcluster_venv.run_pcluster_python`):

    python pcluster_synth.py cases.json out.json

`cases.json`: `{key: {"cluster_name", "config", "subnets": {id: az}, "security_groups": [id],
"fsx": [id], "efs": [id], "roles": {name: trust policy}, "instance_profiles": {name: role name}}}`
— a cluster config and what it references (roles and profiles keep their names, and moto's
account is the plan's, so their ARNs are the plan's).
Every referenced resource is created in moto first (ParallelCluster's CDK code describes subnets,
images, instance types and file systems while it builds), the config's ids are replaced by moto's,
and the cluster stack is built with ParallelCluster's own `ClusterCdkStack`, as
`CDKTemplateBuilder.build_cluster_template` does, but keeping every template of the cloud assembly
(the queues are a nested stack). `out.json`: `{key: {"templates": {file name: template},
"main": file name, "nested": {logical id of a nested stack in main: its file name},
"id_map": {our id: moto id}, "bucket": name, "artifact_directory": dir}}`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HARNESS = HERE.parent / "integration" / "harness"
REGION = "us-east-2"


def _environment(state_dir: Path) -> None:
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "MOTO_AMIS_PATH": str(state_dir / "amis.json"),
        }
    )
    for key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(key, None)


def _create_world(case: dict[str, Any]) -> dict[str, str]:
    """Create what the config references; return our id → moto id."""
    import boto3

    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    ids: dict[str, str] = {}
    for index, (subnet, az) in enumerate(sorted(case["subnets"].items())):
        ids[subnet] = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{index}.0/24", AvailabilityZone=az)[
            "Subnet"
        ]["SubnetId"]
    for group in case["security_groups"]:
        ids[group] = ec2.create_security_group(GroupName=group, Description="synth", VpcId=vpc)["GroupId"]
    first_subnet = next(iter(ids[s] for s in sorted(case["subnets"])))
    fsx = boto3.client("fsx", region_name=REGION)
    for file_system in case["fsx"]:
        created = fsx.create_file_system(
            FileSystemType="LUSTRE",
            StorageCapacity=1200,
            SubnetIds=[first_subnet],
            LustreConfiguration={"DeploymentType": "SCRATCH_2"},
        )
        ids[file_system] = created["FileSystem"]["FileSystemId"]
    efs = boto3.client("efs", region_name=REGION)
    for file_system in case["efs"]:
        ids[file_system] = efs.create_file_system(CreationToken=file_system, Encrypted=True)["FileSystemId"]
        efs.create_mount_target(FileSystemId=ids[file_system], SubnetId=first_subnet)
    iam = boto3.client("iam", region_name=REGION)
    for role, trust in case["roles"].items():
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)
    for profile, role in case["instance_profiles"].items():
        iam.create_instance_profile(InstanceProfileName=profile)
        iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=role)
    return ids


def _replace_ids(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {key: _replace_ids(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_ids(item, ids) for item in value]
    if isinstance(value, str):
        return ids.get(value, value)
    return value


def synthesize(case: dict[str, Any]) -> dict[str, Any]:
    from aws_cdk.core import App, NestedStack
    from pcluster.aws.aws_api import AWSApi
    from pcluster.constants import PCLUSTER_S3_ARTIFACTS_DICT
    from pcluster.models.s3_bucket import S3Bucket
    from pcluster.schemas.cluster_schema import ClusterSchema
    from pcluster.templates.cluster_stack import ClusterCdkStack
    from pcluster.utils import generate_random_name_with_prefix, get_installed_version

    AWSApi.reset()
    ids = _create_world(case)
    name = case["cluster_name"]
    config = ClusterSchema(cluster_name=name).load(_replace_ids(case["config"], ids))
    # The artifact directory as ParallelCluster's Cluster model generates it before a create.
    artifact_directory = "/".join(
        [
            PCLUSTER_S3_ARTIFACTS_DICT["root_directory"],
            get_installed_version(),
            PCLUSTER_S3_ARTIFACTS_DICT["root_cluster_directory"],
            generate_random_name_with_prefix(name),
        ]
    )
    bucket = S3Bucket(service_name=name, stack_name=name, artifact_directory=artifact_directory)
    with tempfile.TemporaryDirectory() as outdir:
        app = App(outdir=outdir)
        cluster_stack = ClusterCdkStack(app, name, name, config, bucket, None)
        # Which template each nested-stack resource of the main template deploys.
        nested = {
            cluster_stack.stack.resolve(construct.nested_stack_resource.logical_id): construct.template_file
            for construct in cluster_stack.stack.node.find_all()
            if isinstance(construct, NestedStack)
        }
        app.synth()
        templates = {path.name: json.loads(path.read_text()) for path in Path(outdir).glob("*.template.json")}
    return {
        "templates": templates,
        "main": f"{name}.template.json",
        "nested": nested,
        "id_map": ids,
        "bucket": bucket.name,
        "artifact_directory": artifact_directory,
    }


def main() -> int:
    cases = json.loads(Path(sys.argv[1]).read_text())
    state_dir = Path(tempfile.mkdtemp(prefix="pcluster-synth-"))
    _environment(state_dir)
    sys.path.insert(0, str(HARNESS))
    import patches
    import seed

    seed.write_official_amis(state_dir / "amis.json")
    patches.apply_moto_patches()
    from moto import mock_aws

    results = {}
    for key, case in cases.items():
        # A fresh account per case: nothing one config creates leaks into the next.
        with mock_aws():
            results[key] = synthesize(case)
    Path(sys.argv[2]).write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
