"""Stack configuration schema.

Field-level rules (types, ranges, literals, patterns) live here, on the fields. Rules that need
several fields or the instance catalog are named validators in `validators/`, run after this
schema has parsed: the same split as ParallelCluster's schema → config → validators.

Every default below is the value used when the key is omitted from the stack file; each field's
description says what that means for the deployed environment. The stack files set only what
differs from these defaults.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from hpc_platform.domain.catalog import or_join
from hpc_platform.domain.environments import Environment
from hpc_platform.domain.limits import (
    ALARM_FSX_FREE_CAPACITY_PERCENT_DEFAULT,
    ALARM_HEAD_NODE_CPU_PERCENT_DEFAULT,
    ALARM_QUEUE_PENDING_JOBS_DEFAULT,
    ALARM_SPOT_INTERRUPTIONS_PER_HOUR_DEFAULT,
    API_TIMEOUT_DEFAULT_MINUTES,
    API_TIMEOUT_RANGE_MINUTES,
    AUDIT_LOG_RETENTION_DAYS_DEFAULT,
    AUDIT_MODES,
    BUDGET_ALERT_THRESHOLDS_PERCENT_DEFAULT,
    CAPACITY_RESERVATION_GROUP_ARN_PATTERN,
    CAPACITY_RESERVATION_ID_PATTERN,
    CLOUDTRAIL_TRAIL_ARN_PATTERN,
    CLOUDWATCH_RETENTION_DAYS,
    COMPLIANCE_FRAMEWORKS,
    CONFIG_RECORDER_NAME_PATTERN,
    DATA_CLASSIFICATIONS,
    DEFAULT_AUDIT_MODE,
    DEFAULT_ENABLE_FLOW_LOGS,
    DEFAULT_ENABLE_S3_GATEWAY_ENDPOINT,
    DEFAULT_FLOW_LOG_RETENTION_DAYS,
    DEFAULT_FLOW_LOG_TRAFFIC_TYPE,
    DEFAULT_INTERFACE_ENDPOINTS,
    DEFAULT_NAT_GATEWAYS,
    DEFAULT_VPC_CIDR,
    IAM_ROLE_ARN_PATTERN,
    IT_ARCHIVE_ACCESS_DAYS,
    IT_DEEP_ARCHIVE_ACCESS_DAYS,
    LUSTRE_CAPACITY_FIRST_STEPS_GIB,
    LUSTRE_CAPACITY_INCREMENT_GIB,
    LUSTRE_MAX_BACKUP_RETENTION_DAYS,
    LUSTRE_PERSISTENT_2,
    LUSTRE_PERSISTENT_2_THROUGHPUT_MBPS_PER_TIB,
    LUSTRE_SCRATCH_2,
    LUSTRE_SCRATCH_2_THROUGHPUT_MBPS_PER_TIB,
    OBSERVABILITY_LOG_RETENTION_DAYS_DEFAULT,
    PCLUSTER_CLUSTER_NAME_MAX,
    PCLUSTER_CLUSTER_NAME_MAX_WITH_ACCOUNTING,
    PCLUSTER_CLUSTER_NAME_PATTERN,
    PCLUSTER_DEFAULT_VERSION,
    PCLUSTER_MAX_COMPUTE_RESOURCES,
    PCLUSTER_MAX_QUEUES,
    PCLUSTER_SLURM_NAME_MAX,
    PCLUSTER_SLURM_NAME_PATTERN,
    PERFORMANCE_MAX_JOB_START_SECONDS_DEFAULT,
    PERFORMANCE_MAX_MPI_LATENCY_US_DEFAULT,
    PERFORMANCE_MAX_SCALE_UP_SECONDS_DEFAULT,
    PERFORMANCE_MIN_NODE_BANDWIDTH_GBPS_DEFAULT,
    PERFORMANCE_MIN_STORAGE_GBPS_DEFAULT,
    PERFORMANCE_STORAGE_TEST_NODES_DEFAULT,
    RESEARCH_GROUP_TAG,
    S3_MIN_DAYS_BEFORE_IA,
    SLURMDBD_PASSWORD_FORBIDDEN,
    SPOT_MIN_SHARE_DEFAULT,
    VPC_PREFIX_LENGTHS,
)

# Re-exported: the tiers live with the network rules on plain values.
from hpc_platform.domain.network import SUBNET_TIERS as SUBNET_TIERS

SlurmName = Annotated[
    str,
    StringConstraints(pattern=PCLUSTER_SLURM_NAME_PATTERN, max_length=PCLUSTER_SLURM_NAME_MAX),
]
AzName = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$")]
InstanceTypeName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+\.[a-z0-9-]+$")]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
S3Prefix = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9!_.*'()/-]*$", max_length=900)]
TagValue = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[\w\s.:/=+\-@]*$")]


class Model(BaseModel):
    """Base for every config model: unknown keys are errors (they are usually typos)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def _network(value: object) -> object:
    # Pydantic's IPv4Network parses strictly (host bits set → error); keep strings in the model.
    if isinstance(value, str):
        try:
            ipaddress.IPv4Network(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IPv4 CIDR block ({exc})") from None
    return value


Cidr = Annotated[str, Field(min_length=9, max_length=18)]

# Descriptions that quote a limit are built from `hpc_platform.domain.limits`, never restated.
_LUSTRE_SIZES = (
    f"{', '.join(str(v) for v in LUSTRE_CAPACITY_FIRST_STEPS_GIB)}, then multiples of "
    f"{LUSTRE_CAPACITY_INCREMENT_GIB} GiB"
)
_SLURM_NAME = f"lowercase letters, digits and '-', ≤ {PCLUSTER_SLURM_NAME_MAX} characters"


# ---------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------
class SubnetTiers(Model):
    """One CIDR block per availability zone for each tier, in `availability_zones` order."""

    public: list[Cidr] = Field(min_length=1)
    """Public subnets: NAT gateways and nothing else."""
    private: list[Cidr] = Field(min_length=1)
    """Private subnets: head node, login nodes, EFS mount targets, VPC interface endpoints."""
    compute: list[Cidr] = Field(min_length=1)
    """Compute subnets: Slurm compute nodes. Size them for max nodes × network interfaces."""
    storage: list[Cidr] = Field(min_length=1)
    """Storage subnets: FSx for Lustre (the first one is used; Lustre lives in one AZ)."""

    @field_validator("public", "private", "compute", "storage")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        for value in values:
            _network(value)
        return values

    def tier(self, name: str) -> list[str]:
        return list(getattr(self, name))


class FlowLogsConfig(Model):
    enabled: bool = DEFAULT_ENABLE_FLOW_LOGS
    """VPC flow logs to a KMS-encrypted CloudWatch log group. NIST 800-171 3.3.1 wants them on."""
    traffic_type: Literal["ALL", "ACCEPT", "REJECT"] = DEFAULT_FLOW_LOG_TRAFFIC_TYPE
    """Which packets to log."""
    retention_days: int = DEFAULT_FLOW_LOG_RETENTION_DAYS
    """Log group retention; must be a value CloudWatch accepts."""

    @field_validator("retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return _cloudwatch_retention(value)


def _cloudwatch_retention(value: int) -> int:
    if value not in CLOUDWATCH_RETENTION_DAYS:
        allowed = ", ".join(str(v) for v in CLOUDWATCH_RETENTION_DAYS)
        raise ValueError(f"{value} is not a CloudWatch Logs retention period; use one of {allowed}")
    return value


class NetworkConfig(Model):
    vpc_cidr: Cidr = DEFAULT_VPC_CIDR
    """The VPC's primary IPv4 block; every subnet must sit inside it."""
    availability_zones: list[AzName] = Field(min_length=1, max_length=6)
    """AZs the VPC spans, in order; each must be an AZ of the region as the instance catalog lists
    it. EFA queues are placed in the first AZ that offers their types."""
    subnets: SubnetTiers
    """Subnet CIDR blocks per tier, one per AZ."""
    nat_gateways: Literal["none", "single", "one_per_az"] = DEFAULT_NAT_GATEWAYS
    """`single` is cheap (dev); `one_per_az` survives an AZ outage (prod)."""
    interface_endpoints: list[str] = Field(default_factory=lambda: list(DEFAULT_INTERFACE_ENDPOINTS))
    """Interface endpoints (private DNS on) so nodes reach AWS APIs without the NAT."""
    enable_s3_gateway_endpoint: bool = DEFAULT_ENABLE_S3_GATEWAY_ENDPOINT
    """Free S3 gateway endpoint: FSx data repository and bootstrap traffic stay off the NAT."""
    flow_logs: FlowLogsConfig = FlowLogsConfig()
    """VPC flow logs; on by default."""
    ssh_ingress_cidrs: list[Cidr] = Field(default_factory=list)
    """CIDRs allowed to SSH to the head node, one rule each on the platform's head-node security
    group. ParallelCluster's own head-node group opens SSH to no address whatever this says.
    Empty (default): no SSH from outside the cluster, use SSM Session Manager."""

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_cidr(cls, value: str) -> str:
        _network(value)
        prefix = ipaddress.IPv4Network(value).prefixlen
        low, high = VPC_PREFIX_LENGTHS
        if not low <= prefix <= high:
            raise ValueError(f"a VPC CIDR block must be between /{low} and /{high}, not /{prefix}")
        return value

    @field_validator("ssh_ingress_cidrs")
    @classmethod
    def _ssh(cls, values: list[str]) -> list[str]:
        for value in values:
            _network(value)
        return values

    @field_validator("interface_endpoints")
    @classmethod
    def _endpoints(cls, values: list[str]) -> list[str]:
        for value in values:
            if not value or not all(c.isalnum() or c in "-." for c in value):
                raise ValueError(f"{value!r} is not an AWS service name (e.g. 'ssm', 'ecr.api')")
        if len(set(values)) != len(values):
            raise ValueError("interface endpoints are listed more than once")
        return values


# ---------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------
class ScratchLustreConfig(Model):
    enabled: bool = True
    """Create the scratch file system."""
    enable_customer_kms_key: bool = False
    """Must stay false: SCRATCH_2 is always encrypted with an AWS-owned key."""
    capacity_gib: int = Field(
        default=1200,
        gt=0,
        description=f"{LUSTRE_SCRATCH_2} size: {_LUSTRE_SIZES}. Baseline "
        f"{LUSTRE_SCRATCH_2_THROUGHPUT_MBPS_PER_TIB} MB/s per TiB.",
    )
    data_compression: Literal["LZ4", "NONE"] = "LZ4"
    """LZ4 usually raises effective throughput and capacity for HPC data."""
    import_path: S3Prefix | None = None
    """Prefix of the data bucket to lazy-load from: the legacy link FSx makes when it creates the
    file system (no automatic export; changes reach S3 through data repository tasks). The
    committed stacks use it: scratch is disposable and rebuilt from a staging prefix, so one link
    made at creation is enough. Cannot be combined with `data_repository_associations`."""
    export_path: S3Prefix | None = None
    """Prefix of the data bucket to export to (legacy link); requires `import_path`."""
    data_repository_associations: list[DataRepositoryAssociationConfig] = Field(default_factory=list)
    """Bucket prefixes linked into scratch with automatic import/export, as on persistent: SCRATCH_2
    on Lustre 2.15 supports associations (only Lustre 2.10 and SCRATCH_1 do not). Use them instead
    of `import_path`/`export_path`, not with them: FSx refuses the legacy paths on a file system
    with associations."""


RepositoryEvent = Literal["NEW", "CHANGED", "DELETED"]
REPOSITORY_EVENTS: tuple[RepositoryEvent, ...] = ("NEW", "CHANGED", "DELETED")


class DataRepositoryAssociationConfig(Model):
    file_system_path: Annotated[str, StringConstraints(pattern=r"^/[^\s]*$", max_length=4096)]
    """Lustre path the bucket prefix appears at, e.g. `/projects`."""
    bucket_prefix: S3Prefix = ""
    """Prefix in the data bucket (empty: the whole bucket)."""
    import_events: list[RepositoryEvent] = Field(default_factory=lambda: list(REPOSITORY_EVENTS))
    """S3 changes Lustre picks up automatically; empty: none (import by hand)."""
    export_events: list[RepositoryEvent] = Field(default_factory=lambda: list(REPOSITORY_EVENTS))
    """Lustre changes written back to S3 automatically; empty: read-only association."""
    batch_import_metadata_on_create: bool = True
    """Import the prefix's object metadata when the association is created."""


class PersistentLustreConfig(Model):
    enabled: bool = True
    """Create the persistent file system."""
    capacity_gib: int = Field(default=1200, gt=0, description=f"{LUSTRE_PERSISTENT_2} size: {_LUSTRE_SIZES}.")
    throughput_mbps_per_tib: int = Field(
        default=250,
        description="Baseline throughput per TiB of storage: "
        f"{or_join([str(v) for v in LUSTRE_PERSISTENT_2_THROUGHPUT_MBPS_PER_TIB])} MB/s/TiB.",
    )
    data_compression: Literal["LZ4", "NONE"] = "LZ4"
    """LZ4 usually raises effective throughput and capacity for HPC data."""
    enable_customer_kms_key: bool = True
    """Encrypt with a customer-managed KMS key (rotation on) instead of the AWS-owned key."""
    automatic_backup_retention_days: int = Field(default=7, ge=0, le=LUSTRE_MAX_BACKUP_RETENTION_DAYS)
    """Daily backups kept this many days; 0 turns backups off."""
    root_squash: Annotated[str, StringConstraints(pattern=r"^\d+:\d+$")] | None = None
    """`UID:GID` root is squashed to (e.g. `65534:65534`); omitted: root is not squashed."""
    data_repository_associations: list[DataRepositoryAssociationConfig] = Field(default_factory=list)
    """Bucket prefixes linked into the file system, with automatic import/export per association."""


class LifecycleConfig(Model):
    """S3 tiers: hot (STANDARD) → warm (STANDARD_IA) → cold (GLACIER_IR) → archive (DEEP_ARCHIVE)."""

    enable_intelligent_tiering: bool = True
    """Objects move into INTELLIGENT_TIERING on day 0 and its archive tiers, instead of fixed days."""
    warm_after_days: int | None = Field(
        default=None,
        ge=S3_MIN_DAYS_BEFORE_IA,
        description=f"Days to STANDARD_IA (≥ {S3_MIN_DAYS_BEFORE_IA}). "
        "Only used without intelligent tiering.",
    )
    cold_after_days: int | None = Field(
        default=90,
        ge=1,
        description="Days to GLACIER_IR (with intelligent tiering: to its Archive Access tier, "
        f"≥ {IT_ARCHIVE_ACCESS_DAYS[0]}).",
    )
    archive_after_days: int | None = Field(
        default=365,
        ge=1,
        description="Days to DEEP_ARCHIVE (with intelligent tiering: Deep Archive Access tier, "
        f"≥ {IT_DEEP_ARCHIVE_ACCESS_DAYS[0]}).",
    )
    archive_prefix: S3Prefix = "archive/"
    """Only objects under this prefix go to the archive tiers (Intelligent-Tiering Archive / Deep
    Archive Access, or DEEP_ARCHIVE): FSx for Lustre cannot read archived objects until they are
    restored, so prefixes linked into Lustre must stay outside it. Empty: the whole bucket."""
    noncurrent_version_expiration_days: int = Field(default=90, ge=1)
    """Old object versions are deleted after this many days."""
    abort_incomplete_multipart_days: int = Field(default=7, ge=1)
    """Incomplete multipart uploads are aborted after this many days."""


class DataBucketConfig(Model):
    lifecycle: LifecycleConfig = LifecycleConfig()
    """Storage-class tiers and version expiry."""
    enable_access_logging: bool = True
    """Server access logs to a separate, encrypted log bucket."""
    force_destroy: bool = False
    """Allow `pulumi destroy` to delete a non-empty bucket. Never in prod."""


class EfsHomeConfig(Model):
    enabled: bool = True
    """Create the EFS home file system."""
    throughput_mode: Literal["elastic", "bursting"] = "elastic"
    """`elastic` scales with load and bills per use; `bursting` earns credits with size."""
    performance_mode: Literal["generalPurpose", "maxIO"] = "generalPurpose"
    """`generalPurpose` has the lowest latency; `maxIO` only for very many clients."""
    transition_to_ia: Literal[
        "AFTER_1_DAY",
        "AFTER_7_DAYS",
        "AFTER_14_DAYS",
        "AFTER_30_DAYS",
        "AFTER_60_DAYS",
        "AFTER_90_DAYS",
        "AFTER_180_DAYS",
        "AFTER_270_DAYS",
        "AFTER_365_DAYS",
    ] = "AFTER_30_DAYS"
    """Files not read for this long move to EFS Infrequent Access (and back on access)."""
    enable_backup: bool = True
    """AWS Backup policy on the file system (daily, 35 days)."""


class StorageConfig(Model):
    scratch: ScratchLustreConfig = ScratchLustreConfig()
    """SCRATCH_2 Lustre for job working data (no replication, no backups)."""
    persistent: PersistentLustreConfig = PersistentLustreConfig()
    """PERSISTENT_2 Lustre for project data, linked to the data bucket."""
    data_bucket: DataBucketConfig = DataBucketConfig()
    """The S3 data repository."""
    efs_home: EfsHomeConfig = EfsHomeConfig()
    """EFS home directories mounted at /home on every node."""
    target_aggregate_throughput_gbps: float | None = Field(
        default=None,
        gt=0,
        description="What the design promises across both Lustre file systems; the plan shows it "
        "beside the baseline the capacity and throughput settings actually give, and `hpcctl verify` "
        "holds IOR's measured aggregate to it. Omitted: the plan shows no target and `hpcctl verify` "
        f"uses the design's {PERFORMANCE_MIN_STORAGE_GBPS_DEFAULT:g} GB/s.",
    )


# ---------------------------------------------------------------------------------------------
# Cluster
# ---------------------------------------------------------------------------------------------
CapacityReservationId = Annotated[str, StringConstraints(pattern=CAPACITY_RESERVATION_ID_PATTERN)]
CapacityReservationGroupArn = Annotated[
    str, StringConstraints(pattern=CAPACITY_RESERVATION_GROUP_ARN_PATTERN, max_length=1600)
]


class CapacityReservationConfig(Model):
    """Reserved capacity a compute resource launches into (ParallelCluster's
    `CapacityReservationTarget`): name `id` or `resource_group_arn`, not both."""

    id: CapacityReservationId | None = None
    """An On-Demand Capacity Reservation or a Capacity Block (`cr-` and 8 or 17 hex digits). A
    Capacity Block's queue must have `capacity_type: CAPACITY_BLOCK`."""
    resource_group_arn: CapacityReservationGroupArn | None = None
    """A capacity reservation resource group (a service-linked group of On-Demand Capacity
    Reservations): nodes launch into whichever reservation of the group matches. Not for Capacity
    Blocks."""
    instance_count: int | None = Field(default=None, ge=1)
    """Instances the reservation holds. They are paid whether nodes run or not, so the cost
    estimate counts them all month; the queue's max_count may not exceed them. Omitted: the
    compute resource's max_count."""
    availability_zone: AzName | None = None
    """The reservation's AZ as EC2 lists it, so the plan can check offline that it is one of the
    queue's AZs. Omitted: only ParallelCluster's dry run (which asks EC2) checks it."""
    instance_type: InstanceTypeName | None = None
    """The reservation's instance type, checked offline against the compute resource's. Omitted:
    only ParallelCluster's dry run checks it."""
    hourly_usd_per_instance: float | None = Field(default=None, gt=0)
    """Price of one reserved instance per hour: a Capacity Block's rate as quoted when it was bought.
    Omitted: the On-Demand price (what an On-Demand Capacity Reservation bills)."""


class ComputeResourceConfig(Model):
    name: SlurmName = Field(description=f"Compute resource name: {_SLURM_NAME}, unique in the queue.")
    instance_type: InstanceTypeName
    """EC2 instance type; checked against the instance catalog (existence, EFA, Spot, AZ offering)."""
    min_count: int = Field(default=0, ge=0)
    """Nodes kept running (0: scale to zero when idle)."""
    max_count: int = Field(default=10, ge=1)
    """Most nodes of this resource at once."""
    disable_hyperthreading: bool = True
    """One thread per core: the usual choice for MPI and floating-point codes."""
    enable_efa: bool | None = None
    """Defaults to the queue's `enable_efa`."""
    capacity_reservation: CapacityReservationConfig | None = None
    """Launch the nodes into reserved capacity (an On-Demand Capacity Reservation, a reservation
    resource group, or a Capacity Block). The queue must be ONDEMAND, or CAPACITY_BLOCK for a
    Capacity Block. Omitted: open On-Demand or Spot capacity."""

    @field_validator("name")
    @classmethod
    def _not_default(cls, value: str) -> str:
        return _not_reserved(value)


def _not_reserved(value: str) -> str:
    if value == "default":
        raise ValueError("'default' is reserved by ParallelCluster; choose another name")
    return value


QueuePurpose = Literal["compute", "memory", "gpu", "debug"]


class QueueConfig(Model):
    name: SlurmName = Field(description=f"Slurm partition name: {_SLURM_NAME}, not `default`.")
    purpose: QueuePurpose = "compute"
    """What the queue is for; `gpu` queues must use GPU instance types."""
    capacity_type: Literal["ONDEMAND", "SPOT", "CAPACITY_BLOCK"] = "ONDEMAND"
    """ParallelCluster chooses Spot or On-Demand per queue: split a workload across a SPOT and
    an ONDEMAND queue to reach a Spot share. `CAPACITY_BLOCK`: every compute resource runs in a
    Capacity Block named by its `capacity_reservation.id`, with min_count = max_count."""
    allocation_strategy: Literal["lowest-price", "capacity-optimized", "price-capacity-optimized"] | None = (
        None
    )
    """Spot/On-Demand allocation strategy; omitted: lowest-price (On-Demand), price-capacity-optimized
    (Spot), none (Capacity Block, which takes none)."""
    enable_efa: bool = False
    """EFA on every node; the queue then runs in one subnet in one AZ with a cluster placement group."""
    availability_zone: AzName | None = None
    """Pin the queue to one AZ. Omitted: EFA queues take the first configured AZ offering all their
    instance types; other queues span every configured AZ that offers them."""
    compute_resources: list[ComputeResourceConfig] = Field(min_length=1)
    """Instance types of the queue, each with its node counts."""
    job_exclusive_allocation: bool | None = None
    """Whole nodes per job; defaults to true on EFA queues."""
    research_group: TagValue | None = None
    """Research group that pays for this queue's nodes: its compute instances and their volumes
    carry `ResearchGroup: <group>` (ParallelCluster's queue `Tags`, which win over the cluster's),
    so a `per_research_group` budget of that group counts them. Omitted: the stack's
    `compliance.research_group`, like every other resource."""

    @field_validator("name")
    @classmethod
    def _not_default(cls, value: str) -> str:
        return _not_reserved(value)


class HeadNodeConfig(Model):
    instance_type: InstanceTypeName = "c6i.2xlarge"
    """Changing it replaces the cluster (ParallelCluster cannot update it)."""
    root_volume_gib: int = Field(default=100, ge=40, le=16384)
    """Encrypted gp3 root volume size."""
    ssh_key_name: str | None = None
    """EC2 key pair for SSH; omitted: access through SSM Session Manager only."""


class FairShareConfig(Model):
    enabled: bool = True
    """Slurm multifactor priority with fair-share (needs accounting)."""
    priority_weight_fairshare: int = Field(default=10000, ge=0)
    """Slurm PriorityWeightFairshare."""
    priority_weight_age: int = Field(default=1000, ge=0)
    """Slurm PriorityWeightAge."""
    priority_weight_job_size: int = Field(default=500, ge=0)
    """Slurm PriorityWeightJobSize."""
    priority_decay_half_life_days: int = Field(default=7, ge=1, le=365)
    """Slurm PriorityDecayHalfLife: how fast past usage is forgotten."""


def _forbidden_characters() -> str:
    """`SLURMDBD_PASSWORD_FORBIDDEN` apart from whitespace, as Markdown code."""
    shown = sorted(c for c in SLURMDBD_PASSWORD_FORBIDDEN if not c.isspace())
    return or_join(["`` ` ``" if c == "`" else f"`{c}`" for c in shown])


class AccountingConfig(Model):
    enabled: bool = True
    """Slurm accounting (slurmdbd) on an encrypted Aurora MySQL Serverless v2 database."""
    min_capacity_acu: float = Field(default=0.5, ge=0.5, le=256)
    """Aurora Serverless v2 minimum capacity (ACUs)."""
    max_capacity_acu: float = Field(default=2, ge=1, le=256)
    """Aurora Serverless v2 maximum capacity (ACUs)."""
    existing_password_secret_arn: str | None = Field(
        default=None,
        pattern=r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$",
        description="Use an existing Secrets Manager secret (its plain string value) for the password; "
        "omitted: one is generated. The value is written unquoted into slurmdbd's config and is the RDS "
        f"master password, so it must not contain whitespace or {_forbidden_characters()} (the plan "
        "cannot read it to check).",
    )


class SlurmConfig(Model):
    scaledown_idletime_minutes: int = Field(default=10, ge=1, le=1440)
    """Idle dynamic nodes are terminated after this many minutes. Changing it needs a compute-fleet stop."""
    queue_update_strategy: Literal["COMPUTE_FLEET_STOP", "DRAIN", "TERMINATE"] = "DRAIN"
    """How queue changes roll out; DRAIN lets running jobs finish."""
    enable_memory_based_scheduling: bool = True
    """Schedule on memory as well as cores (`--mem` is enforced)."""
    enable_job_requeue: bool = True
    """Slurm `JobRequeue=1`: a batch job whose node fails or is reclaimed (a Spot interruption) goes
    back to the queue and starts again, unless it was submitted with `--no-requeue`. Slurm has no
    per-partition requeue option, so this is the default on every queue, Spot queues included (see
    docs/spot-interruptions.md for checkpointing). Off: `JobRequeue=0`; only jobs submitted with
    `--requeue` come back, and a Spot interruption fails the others."""
    accounting: AccountingConfig = AccountingConfig()
    """slurmdbd accounting database."""
    fair_share: FairShareConfig = FairShareConfig()
    """Multifactor priority with fair-share."""


class SpotConfig(Model):
    min_share: float = Field(default=SPOT_MIN_SHARE_DEFAULT, ge=0, le=1)
    """Target share of Spot-eligible max vCPUs that runs on Spot. Instance types AWS does not
    sell as Spot (hpc6a, hpc7a) are left out of the ratio."""


class ParallelClusterApiConfig(Model):
    mode: Literal["deploy", "existing"] = "deploy"
    """`deploy`: the official ParallelCluster API CloudFormation stack of the pinned version, called
    as the role it creates (its `ParallelClusterApiUserRole` output; the deployer needs
    `sts:AssumeRole` on it); `existing`: call `endpoint` (as `role_arn` when set)."""
    endpoint: Annotated[str, StringConstraints(pattern=r"^https://")] | None = None
    """Invoke URL of an existing ParallelCluster API (mode `existing`)."""
    role_arn: Annotated[str, StringConstraints(pattern=IAM_ROLE_ARN_PATTERN)] | None = None
    """Role the provider assumes to call an existing API (mode `existing`): that API stack's
    `ParallelClusterApiUserRole` output. An API deployed with the official template's defaults
    denies every other caller. Omitted: the provider signs with the deployer's own credentials,
    which suits only an API deployed with `CreateApiUserRole=false`. In mode `deploy` the role
    comes from the deployed stack's output, so this key must be left out."""
    dryrun_on_preview: bool = True
    """Ask the API to validate the cluster config (dry run) during `pulumi preview`."""
    allow_fleet_stop: bool = False
    """Let `pulumi up` stop the compute fleet when an update needs it. Off: such updates fail
    with instructions instead of killing running jobs."""
    create_timeout_minutes: int = Field(
        default=API_TIMEOUT_DEFAULT_MINUTES["create"],
        ge=API_TIMEOUT_RANGE_MINUTES[0],
        le=API_TIMEOUT_RANGE_MINUTES[1],
    )
    """How long `pulumi up` waits for CREATE_COMPLETE."""
    update_timeout_minutes: int = Field(
        default=API_TIMEOUT_DEFAULT_MINUTES["update"],
        ge=API_TIMEOUT_RANGE_MINUTES[0],
        le=API_TIMEOUT_RANGE_MINUTES[1],
    )
    """How long `pulumi up` waits for UPDATE_COMPLETE (and a fleet stop)."""
    delete_timeout_minutes: int = Field(
        default=API_TIMEOUT_DEFAULT_MINUTES["delete"],
        ge=API_TIMEOUT_RANGE_MINUTES[0],
        le=API_TIMEOUT_RANGE_MINUTES[1],
    )
    """How long `pulumi destroy` waits for the cluster to disappear."""
    retain_on_delete: bool = False
    """Leave the cluster running when the Pulumi resource is deleted."""


class ClusterConfig(Model):
    name: Annotated[
        str, StringConstraints(pattern=PCLUSTER_CLUSTER_NAME_PATTERN, max_length=PCLUSTER_CLUSTER_NAME_MAX)
    ] = Field(
        description=f"ParallelCluster cluster name (≤ {PCLUSTER_CLUSTER_NAME_MAX} characters, "
        f"≤ {PCLUSTER_CLUSTER_NAME_MAX_WITH_ACCOUNTING} with Slurm accounting). "
        "Changing it replaces the cluster."
    )
    parallelcluster_version: Annotated[str, StringConstraints(pattern=r"^3\.\d+\.\d+$")] = (
        PCLUSTER_DEFAULT_VERSION
    )
    """Changing it replaces the cluster: ParallelCluster refuses updates across versions."""
    os: Literal["alinux2023", "ubuntu2204", "ubuntu2404", "rhel8", "rhel9", "rocky8", "rocky9"] = "alinux2023"
    """Operating system of the official ParallelCluster AMI (those ParallelCluster 3.16 supports)."""
    head_node: HeadNodeConfig = HeadNodeConfig()
    """The Slurm controller node."""
    slurm: SlurmConfig = SlurmConfig()
    """Scheduler settings."""
    spot: SpotConfig = SpotConfig()
    """The Spot share target."""
    max_total_nodes: int = Field(default=1000, ge=1)
    """Upper bound on the sum of every compute resource's max_count (a cost and quota guard)."""
    queues: list[QueueConfig] = Field(
        min_length=1,
        description=f"Slurm queues (≤ {PCLUSTER_MAX_QUEUES}; ≤ {PCLUSTER_MAX_COMPUTE_RESOURCES} compute "
        "resources in all).",
    )
    api: ParallelClusterApiConfig = ParallelClusterApiConfig()
    """How the ParallelCluster API is reached and how the provider drives it."""


# ---------------------------------------------------------------------------------------------
# Observability and compliance
# ---------------------------------------------------------------------------------------------
class AlarmThresholds(Model):
    fsx_free_capacity_percent: float = Field(default=ALARM_FSX_FREE_CAPACITY_PERCENT_DEFAULT, gt=0, lt=100)
    """Alarm when a Lustre file system has less than this share free."""
    queue_pending_jobs: int = Field(default=ALARM_QUEUE_PENDING_JOBS_DEFAULT, ge=1)
    """Alarm when a queue has more pending jobs than this."""
    head_node_cpu_percent: float = Field(default=ALARM_HEAD_NODE_CPU_PERCENT_DEFAULT, gt=0, le=100)
    """Alarm when the head node's CPU stays above this."""
    spot_interruptions_per_hour: int = Field(default=ALARM_SPOT_INTERRUPTIONS_PER_HOUR_DEFAULT, ge=1)
    """Alarm when more Spot nodes than this are reclaimed in an hour."""


class BudgetConfig(Model):
    monthly_limit_usd: float = Field(gt=0)
    """Monthly cost budget for the whole environment."""
    alert_thresholds_percent: list[float] = Field(
        default_factory=lambda: list(BUDGET_ALERT_THRESHOLDS_PERCENT_DEFAULT)
    )
    """Notify at these percentages of the budget (actual spend)."""
    per_research_group: dict[str, float] = Field(default_factory=dict)
    """Extra budgets filtered on the ResearchGroup cost-allocation tag (value: USD/month). Each
    group must own something: queues with that `research_group`, or be the stack's own
    `compliance.research_group`."""


class ObservabilityConfig(Model):
    notification_emails: list[Email] = Field(default_factory=list)
    """Alarm and budget notifications go to these addresses (each must confirm the SNS subscription)."""
    alarm_thresholds: AlarmThresholds = AlarmThresholds()
    """Alarm thresholds."""
    budget: BudgetConfig | None = None
    """AWS Budgets; omitted: no budget."""
    enable_managed_prometheus: bool = False
    """Amazon Managed Service for Prometheus workspace."""
    enable_managed_grafana: bool = False
    """Amazon Managed Grafana workspace."""
    log_retention_days: int = OBSERVABILITY_LOG_RETENTION_DAYS_DEFAULT
    """Retention of the platform's log groups; must be a value CloudWatch accepts."""

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return _cloudwatch_retention(value)


class AuditConfig(Model):
    """The audit trail (NIST SP 800-171 3.3.1, 3.3.2): CloudTrail and AWS Config with the managed
    rules listed in `docs/audit.md`, created by the stack or run by the organization."""

    mode: Literal[AUDIT_MODES] = DEFAULT_AUDIT_MODE  # type: ignore[valid-type]
    """`create`: a multi-region CloudTrail trail (log file validation on) to its own versioned,
    KMS-encrypted bucket and to a CloudWatch log group, plus an AWS Config recorder (every
    supported resource type, global ones included) and delivery channel to the same bucket.
    `existing`: the organization already runs a trail and Config in this account and region (an
    account has one Config recorder per region); name them in `existing_trail_arn` and
    `existing_config_recorder_name`, and the stack creates neither."""
    existing_trail_arn: Annotated[str, StringConstraints(pattern=CLOUDTRAIL_TRAIL_ARN_PATTERN)] | None = None
    """The organization's trail that records this account (mode `existing`, required there):
    `arn:aws:cloudtrail:<region>:<account>:trail/<name>`. Must be left out in mode `create`."""
    existing_config_recorder_name: (
        Annotated[str, StringConstraints(pattern=CONFIG_RECORDER_NAME_PATTERN)] | None
    ) = None
    """Name of the AWS Config recorder the organization runs in this account and region (mode
    `existing`, required there; e.g. `default`, or Control Tower's
    `aws-controltower-BaselineConfigRecorder`). Must be left out in mode `create`."""
    log_retention_days: int = AUDIT_LOG_RETENTION_DAYS_DEFAULT
    """Retention of the trail's CloudWatch log group (mode `create`); must be a value CloudWatch
    accepts. The bucket keeps every log file, versioned, without expiry."""
    enable_managed_rules: bool = True
    """Deploy the AWS Config managed rules of `docs/audit.md` (in mode `existing` they evaluate
    with the organization's recorder). Off: no rules (e.g. when an organization conformance pack
    already deploys them)."""

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return _cloudwatch_retention(value)


class ComplianceConfig(Model):
    frameworks: list[Literal[COMPLIANCE_FRAMEWORKS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["NIST-800-171"], min_length=1
    )
    """Frameworks the environment is operated under (ComplianceFrameworks tag)."""
    data_classification: Literal[DATA_CLASSIFICATIONS]  # type: ignore[valid-type]
    """Most sensitive data the environment holds (DataClassification tag)."""
    owner: Email
    """Accountable owner's e-mail (Owner tag)."""
    cost_center: TagValue
    """CostCenter tag (cost allocation)."""
    research_group: TagValue
    """ResearchGroup tag (cost allocation, budgets per group)."""
    extra_tags: dict[str, TagValue] = Field(default_factory=dict)
    """More tags; they cannot override the required ones."""

    def tags(self, environment: str) -> dict[str, str]:
        """The tags every taggable resource carries."""
        tags = {
            "Environment": environment,
            "Owner": self.owner,
            "CostCenter": self.cost_center,
            RESEARCH_GROUP_TAG: self.research_group,
            "DataClassification": self.data_classification,
            "ComplianceFrameworks": "+".join(self.frameworks),
            "ManagedBy": "pulumi:hpc-platform",
        }
        return {**self.extra_tags, **tags}


# ---------------------------------------------------------------------------------------------
# Performance acceptance targets
# ---------------------------------------------------------------------------------------------
class PerformanceConfig(Model):
    """What `hpcctl verify` holds measurements on the deployed cluster to; a missed target makes it
    exit non-zero. The storage target is `storage.target_aggregate_throughput_gbps`."""

    max_mpi_latency_us: float = Field(default=PERFORMANCE_MAX_MPI_LATENCY_US_DEFAULT, gt=0)
    """Most `osu_latency` may report for its smallest message between two nodes of an EFA queue,
    in microseconds."""
    min_node_bandwidth_gbps: float = Field(default=PERFORMANCE_MIN_NODE_BANDWIDTH_GBPS_DEFAULT, gt=0)
    """Least peak `osu_bw` bandwidth between two nodes of an EFA queue, in gigabits per second
    (OSU reports MB/s, 10^6 bytes: Gbps = MB/s × 8 / 1000)."""
    max_job_start_seconds: float = Field(default=PERFORMANCE_MAX_JOB_START_SECONDS_DEFAULT, gt=0)
    """Most seconds from submit to start of a job on a node that is already up."""
    max_scale_up_seconds: float = Field(default=PERFORMANCE_MAX_SCALE_UP_SECONDS_DEFAULT, gt=0)
    """Most seconds from submit to start of a job on a queue scaled to zero (a node boots)."""
    storage_test_nodes: int = Field(default=PERFORMANCE_STORAGE_TEST_NODES_DEFAULT, ge=1)
    """Nodes IOR runs on for the aggregate storage throughput; more clients reach more of a large
    file system's throughput. At most the max nodes of the queue IOR runs on."""


# ---------------------------------------------------------------------------------------------
# The stack
# ---------------------------------------------------------------------------------------------
class StackConfig(Model):
    """Everything one stack file configures. Keys live under the `hpc` namespace; `region` is
    `aws:region`."""

    region: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")]
    """AWS region of every resource (`aws:region`, also read by the AWS provider)."""
    environment: Environment
    """`dev`, `staging` or `prod`: names resources, sets the Environment tag and the policy enforcement
    level."""
    network: NetworkConfig
    """VPC, subnet tiers, endpoints and flow logs (EfaNetwork)."""
    storage: StorageConfig = StorageConfig()
    """FSx for Lustre, the S3 data repository and EFS home (LustreFs, DataRepository)."""
    cluster: ClusterConfig
    """The ParallelCluster/Slurm cluster."""
    observability: ObservabilityConfig = ObservabilityConfig()
    """Alarms, dashboard, budgets, managed Prometheus/Grafana."""
    performance: PerformanceConfig = PerformanceConfig()
    """Acceptance targets `hpcctl verify` measures on the deployed cluster."""
    audit: AuditConfig = AuditConfig()
    """CloudTrail, AWS Config and its managed rules (AuditTrail), or the organization's."""
    compliance: ComplianceConfig
    """Labels every taggable resource carries (NIST 800-171 3.1.3/3.8: identify CUI and owners)."""

    @property
    def tags(self) -> dict[str, str]:
        return self.compliance.tags(self.environment)


__all__ = [name for name in dir() if not name.startswith("_")]
