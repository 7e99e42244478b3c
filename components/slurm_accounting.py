"""SlurmAccountingDatabase: where slurmdbd keeps a cluster's accounting data.

Aurora MySQL Serverless v2, encrypted with its own customer KMS key, in private subnets, reachable
on 3306 only from one security group (the cluster nodes'). The master password is generated
(`RandomPassword`) into a Secrets Manager secret encrypted with that key, or taken from an
existing secret; outside this component it is only ever a secret ARN (ParallelCluster reads the
secret itself). `ParallelCluster` creates one as its child when accounting is on.

Reading order: args → resources → outputs → `register_outputs`.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_random as random

from hpc_platform.domain.limits import (
    KMS_DEFAULT_DELETION_WINDOW_DAYS,
    SECRET_RECOVERY_WINDOW_RANGE_DAYS,
    SLURMDBD_PASSWORD_SPECIALS,
)

if TYPE_CHECKING:
    import pulumi_aws as aws
else:
    # Only the pulumi-aws modules the component uses (see components/_aws.py).
    from components._aws import aws

TYPE_TOKEN = "hpc:cluster:SlurmAccountingDatabase"

SLURMDBD_PORT = 3306
DB_MASTER_USERNAME = "slurmdbd"
DB_ENGINE = aws.rds.EngineType.AURORA_MYSQL
# Safe in slurmdbd's config, the cookbook's scripts and RDS (see `hpc_platform.domain.limits`).
DB_PASSWORD_SPECIALS = SLURMDBD_PASSWORD_SPECIALS
DB_PASSWORD_LENGTH = 32
PREFERRED_BACKUP_WINDOW = "04:00-05:00"


@dataclass(kw_only=True)
class SlurmAccountingDatabaseArgs:
    cluster_name: str
    """The ParallelCluster cluster the database serves: names the database (`<name, lower
    case>-slurmdb`), its key, secret and subnet group."""
    vpc_id: pulumi.Input[str]
    """VPC of the database's security group."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Private subnets of the database (at least two Availability Zones: an RDS subnet group
    needs them)."""
    client_security_group_id: pulumi.Input[str]
    """The only security group allowed to reach MySQL (the cluster nodes'; slurmdbd runs on the
    head node)."""
    min_capacity_acu: float = 0.5
    """Aurora Serverless v2 minimum capacity (ACUs)."""
    max_capacity_acu: float = 2
    """Aurora Serverless v2 maximum capacity (ACUs)."""
    existing_password_secret_arn: str | None = None
    """An existing Secrets Manager secret holding the password as its plain string value; None:
    a password is generated into a new secret."""
    secret_recovery_window_days: int = SECRET_RECOVERY_WINDOW_RANGE_DAYS[0]
    """Waiting period before a deleted generated secret is gone (AWS allows 7–30)."""
    backup_retention_days: int = 7
    """Automated backups of the database."""
    deletion_protection: bool = False
    """RDS deletion protection."""
    final_snapshot: bool = False
    """Take a final snapshot (`<identifier>-final`) when the database is deleted."""
    kms_deletion_window_days: int = KMS_DEFAULT_DELETION_WINDOW_DAYS
    """Waiting period before the deleted KMS key is gone (AWS allows 7–30)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every taggable child (each also gets a `Name`)."""


class SlurmAccountingDatabase(pulumi.ComponentResource):
    """An encrypted Aurora MySQL Serverless v2 database for slurmdbd, with its password in Secrets
    Manager (`secret_arn`; the password itself is never an output)."""

    endpoint: pulumi.Output[str]
    """Writer endpoint (host name) of the database cluster."""
    port: pulumi.Output[int]
    user_name: pulumi.Output[str]
    """Master user name slurmdbd connects as."""
    secret_arn: pulumi.Output[str]
    """ARN of the Secrets Manager secret holding the password."""
    secret_kms_key_arn: pulumi.Output[str | None]
    """The KMS key that encrypts a generated secret; None for an existing secret (its own key)."""
    kms_key_arn: pulumi.Output[str]
    """The key that encrypts the database storage (and a generated secret)."""

    def __init__(
        self,
        name: str,
        args: SlurmAccountingDatabaseArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        self._tags = dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)
        cluster_name = args.cluster_name
        identifier = f"{cluster_name.lower()}-slurmdb"

        key = aws.kms.Key(
            f"{name}-key",
            description=f"Slurm accounting database and its password ({cluster_name})",
            enable_key_rotation=True,
            deletion_window_in_days=args.kms_deletion_window_days,
            tags=self._tag(f"{identifier}-key"),
            opts=child,
        )
        aws.kms.Alias(f"{name}-key-alias", name=f"alias/{identifier}", target_key_id=key.key_id, opts=child)

        # Password: generated into a KMS-encrypted secret, or an existing secret.
        # What must exist before a client starts: the secret's value, the database instance.
        self.ready: list[pulumi.Resource] = []
        self.secret: aws.secretsmanager.Secret | None = None
        if args.existing_password_secret_arn:
            secret_arn: pulumi.Output[str] = pulumi.Output.from_input(args.existing_password_secret_arn)
            secret_kms_key_arn: pulumi.Output[str | None] = pulumi.Output.from_input(None)
            master_password: pulumi.Output[str] = pulumi.Output.secret(
                aws.secretsmanager.get_secret_version_output(
                    secret_id=args.existing_password_secret_arn,
                    opts=pulumi.InvokeOutputOptions(parent=self),
                ).secret_string
            )
        else:
            password = random.RandomPassword(
                f"{name}-password",
                length=DB_PASSWORD_LENGTH,
                special=True,
                override_special=DB_PASSWORD_SPECIALS,
                min_lower=2,
                min_upper=2,
                min_numeric=2,
                opts=child,
            )
            master_password = pulumi.Output.secret(password.result)
            self.secret = aws.secretsmanager.Secret(
                f"{name}-secret",
                name=f"{identifier}-password",
                description=f"Slurm accounting database password for {cluster_name} (slurmdbd)",
                kms_key_id=key.arn,
                recovery_window_in_days=args.secret_recovery_window_days,
                tags=self._tag(f"{identifier}-password"),
                opts=child,
            )
            version = aws.secretsmanager.SecretVersion(
                f"{name}-secret-value",
                secret_id=self.secret.id,
                # ParallelCluster reads the secret as the plain password (not JSON).
                secret_string=master_password,
                opts=child,
            )
            self.ready.append(version)
            secret_arn = self.secret.arn
            secret_kms_key_arn = key.arn

        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description=f"Slurm accounting database ({cluster_name}): MySQL from cluster nodes only",
            tags=self._tag(f"{identifier}-sg"),
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-mysql-in-nodes",
            security_group_id=security_group.id,
            ip_protocol="tcp",
            from_port=SLURMDBD_PORT,
            to_port=SLURMDBD_PORT,
            referenced_security_group_id=args.client_security_group_id,
            description="MySQL from cluster nodes (slurmdbd runs on the head node)",
            tags=self._tag(f"{identifier}-mysql-in"),
            opts=child,
        )
        subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets",
            name=f"{identifier}-subnets",
            description=f"Private subnets of the Slurm accounting database ({cluster_name})",
            subnet_ids=args.subnet_ids,
            tags=self._tag(f"{identifier}-subnets"),
            opts=child,
        )
        self.cluster = aws.rds.Cluster(
            name,
            cluster_identifier=identifier,
            engine=DB_ENGINE,
            engine_mode="provisioned",
            master_username=DB_MASTER_USERNAME,
            master_password=master_password,
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[security_group.id],
            storage_encrypted=True,
            kms_key_id=key.arn,
            serverlessv2_scaling_configuration=aws.rds.ClusterServerlessv2ScalingConfigurationArgs(
                min_capacity=args.min_capacity_acu,
                max_capacity=args.max_capacity_acu,
            ),
            backup_retention_period=args.backup_retention_days,
            preferred_backup_window=PREFERRED_BACKUP_WINDOW,
            copy_tags_to_snapshot=True,
            deletion_protection=args.deletion_protection,
            skip_final_snapshot=not args.final_snapshot,
            final_snapshot_identifier=f"{identifier}-final" if args.final_snapshot else None,
            tags=self._tag(identifier),
            opts=child,
        )
        instance = aws.rds.ClusterInstance(
            f"{name}-1",
            identifier=f"{identifier}-1",
            cluster_identifier=self.cluster.id,
            instance_class="db.serverless",
            engine=DB_ENGINE,
            db_subnet_group_name=subnet_group.name,
            publicly_accessible=False,
            tags=self._tag(f"{identifier}-1"),
            opts=child,
        )
        self.ready.append(instance)

        # --- outputs -----------------------------------------------------------------------------
        self.endpoint = self.cluster.endpoint
        self.port = pulumi.Output.from_input(SLURMDBD_PORT)
        self.user_name = pulumi.Output.from_input(DB_MASTER_USERNAME)
        self.secret_arn = secret_arn
        self.secret_kms_key_arn = secret_kms_key_arn
        self.kms_key_arn = key.arn
        self.register_outputs(self.outputs())

    def outputs(self) -> dict[str, Any]:
        """What the component registers. No secrets: the password is only a secret ARN here."""
        return {
            "endpoint": self.endpoint,
            "port": self.port,
            "user_name": self.user_name,
            "secret_arn": self.secret_arn,
            "kms_key_arn": self.kms_key_arn,
        }

    def _tag(self, name: str) -> dict[str, str]:
        return {**self._tags, "Name": name}
