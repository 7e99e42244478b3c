"""Scratch storage from the component library, without the platform's stack files.

A data bucket (DataRepository, without EFS) and a SCRATCH_2 Lustre file system (LustreFs, without
the persistent one) that lazy-loads the bucket's `datasets/` prefix at `/datasets`, in a VPC this
program makes itself with plain pulumi-aws resources. Everything the components need comes in as
args: subnet and security-group ids, the bucket's name, the region.
"""

import pulumi
import pulumi_aws as aws

from components.data_repository import DataRepository, DataRepositoryArgs
from components.lustre_fs import DataRepositoryAssociationArgs, LustreFs, LustreFsArgs

# The ports Lustre clients and servers talk on (TCP 988, and 1018-1023 for LNet).
LUSTRE_PORTS = ((988, 988), (1018, 1023))


def program() -> None:
    region = pulumi.Config("aws").require("region")
    config = pulumi.Config()
    availability_zone = config.get("availabilityZone") or f"{region}a"
    tags = {"Project": pulumi.get_project()}

    # --- a network of our own: one VPC, one subnet, one security group for Lustre ---------------
    vpc = aws.ec2.Vpc("scratch-vpc", cidr_block="10.42.0.0/16", enable_dns_hostnames=True, tags=tags)
    subnet = aws.ec2.Subnet(
        "scratch-storage",
        vpc_id=vpc.id,
        cidr_block="10.42.0.0/24",
        availability_zone=availability_zone,
        tags=tags,
    )
    lustre_group = aws.ec2.SecurityGroup(
        "scratch-lustre-sg", vpc_id=vpc.id, description="Lustre servers and their clients", tags=tags
    )
    # Members of the group (the file system, and any client you put in it) reach each other on
    # the Lustre ports, both ways.
    for low, high in LUSTRE_PORTS:
        for direction, rule in (
            ("in", aws.vpc.SecurityGroupIngressRule),
            ("out", aws.vpc.SecurityGroupEgressRule),
        ):
            rule(
                f"scratch-lustre-sg-{low}-{high}-{direction}",
                security_group_id=lustre_group.id,
                referenced_security_group_id=lustre_group.id,
                ip_protocol="tcp",
                from_port=low,
                to_port=high,
                tags=tags,
            )

    # --- the components ---------------------------------------------------------------------------
    data = DataRepository(
        "scratch-data",
        DataRepositoryArgs(
            region=region,
            efs_home=False,
            # A demo: `pulumi destroy` may delete the bucket with its objects.
            force_destroy=True,
            kms_key_deletion_window_days=7,
            tags=tags,
        ),
    )
    lustre = LustreFs(
        "scratch-lustre",
        LustreFsArgs(
            region=region,
            subnet_id=subnet.id,
            security_group_ids=[lustre_group.id],
            data_bucket=data.bucket_name,
            scratch_associations=[
                # Read-only: S3 changes show up in Lustre; nothing is written back.
                DataRepositoryAssociationArgs(
                    file_system_path="/datasets", bucket_prefix="datasets/", export_events=[]
                )
            ],
            persistent=False,
            kms_key_deletion_window_days=7,
            tags=tags,
        ),
    )

    pulumi.export("data_bucket_name", data.bucket_name)
    pulumi.export("scratch_file_system_id", lustre.scratch_file_system_id)
    pulumi.export("scratch_dns_name", lustre.scratch_dns_name)
    pulumi.export("scratch_mount_name", lustre.scratch_mount_name)
    pulumi.export("lustre_security_group_id", lustre_group.id)


if __name__ == "__main__":
    program()
