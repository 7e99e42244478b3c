"""AWS and ParallelCluster limits and the platform's defaults: one place.

The config models, the validators and their messages, the renderer, the provider and the policy
pack read these; nothing restates them. Plain values, and the few rules that are nothing but those
values (the cluster-name rule), so that every caller words them the same way: this module imports
only the standard library.
"""

import re
from typing import Final

PCLUSTER_MAX_QUEUES = 50
PCLUSTER_MAX_COMPUTE_RESOURCES = 50
PCLUSTER_SLURM_NAME_PATTERN = r"^[a-z][a-z0-9\-]*$"
PCLUSTER_SLURM_NAME_MAX = 25
PCLUSTER_SLURM_NAME_RULE = "start with a lowercase letter, then lowercase letters, digits and '-' only"
PCLUSTER_DEFAULT_VERSION = "3.16.1"

# The cluster name, as ParallelCluster 3.16.1's `ClusterNameValidator` checks it
# (`^([a-zA-Z][a-zA-Z0-9-]{0,N-1})$`): one character is enough; 60 at most, 40 with Slurm
# accounting (slurmdbd names its database after the cluster).
PCLUSTER_CLUSTER_NAME_PATTERN = r"^[a-zA-Z][a-zA-Z0-9-]*$"
PCLUSTER_CLUSTER_NAME_MAX = 60
PCLUSTER_CLUSTER_NAME_MAX_WITH_ACCOUNTING = 40
PCLUSTER_CLUSTER_NAME_RULE = "start with a letter and use only letters, digits and hyphens"


def cluster_name_max(accounting: bool) -> int:
    """Longest cluster name ParallelCluster accepts, with or without Slurm accounting."""
    return PCLUSTER_CLUSTER_NAME_MAX_WITH_ACCOUNTING if accounting else PCLUSTER_CLUSTER_NAME_MAX


def cluster_name_problem(name: str, *, accounting: bool) -> str | None:
    """What is wrong with a cluster name (None: nothing). The config validator, the schema's
    pattern message and the ParallelCluster provider all word it this way."""
    if not re.fullmatch(PCLUSTER_CLUSTER_NAME_PATTERN, name):
        return f"{name!r} is not a valid cluster name; {PCLUSTER_CLUSTER_NAME_RULE}"
    limit = cluster_name_max(accounting)
    if len(name) > limit:
        why = " with Slurm accounting" if accounting else ""
        return (
            f"{name!r} has {len(name)} characters; ParallelCluster allows at most {limit}{why}; "
            "choose a shorter name"
        )
    return None


IAM_ROLE_ARN_PATTERN = r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$"
# EC2 capacity reservation ids (On-Demand Capacity Reservations and Capacity Blocks alike) and
# the ARN of a capacity reservation resource group.
CAPACITY_RESERVATION_ID_PATTERN = r"^cr-([0-9a-f]{8}|[0-9a-f]{17})$"
CAPACITY_RESERVATION_GROUP_ARN_PATTERN = r"^arn:aws[a-z-]*:resource-groups:[a-z0-9-]+:\d{12}:group/[\w.-]+$"
# ParallelCluster reserves tag keys with this prefix for its own tags.
PCLUSTER_RESERVED_TAG_PREFIX = "parallelcluster:"

# A VPC's (and a subnet's) IPv4 block: /16 to /28. AWS reserves the first four and the last
# address of every subnet.
VPC_PREFIX_LENGTHS = (16, 28)
SUBNET_RESERVED_ADDRESSES = 5

LUSTRE_SCRATCH_2 = "SCRATCH_2"
LUSTRE_PERSISTENT_2 = "PERSISTENT_2"
# SCRATCH_2 and PERSISTENT_2 (SSD): 1200 GiB, 2400 GiB, then any multiple of 2400 GiB.
LUSTRE_CAPACITY_FIRST_STEPS_GIB = (1200, 2400)
LUSTRE_CAPACITY_INCREMENT_GIB = 2400
LUSTRE_SCRATCH_2_THROUGHPUT_MBPS_PER_TIB = 200
LUSTRE_PERSISTENT_2_THROUGHPUT_MBPS_PER_TIB = (125, 250, 500, 1000)
LUSTRE_MAX_BACKUP_RETENTION_DAYS = 90

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy).
CLOUDWATCH_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
# Observability defaults: the config models and the Observability component's args read these.
ALARM_FSX_FREE_CAPACITY_PERCENT_DEFAULT = 10
ALARM_QUEUE_PENDING_JOBS_DEFAULT = 500
ALARM_HEAD_NODE_CPU_PERCENT_DEFAULT = 90
ALARM_SPOT_INTERRUPTIONS_PER_HOUR_DEFAULT = 20
BUDGET_ALERT_THRESHOLDS_PERCENT_DEFAULT = (50.0, 80.0, 100.0)
OBSERVABILITY_LOG_RETENTION_DAYS_DEFAULT = 90
# S3 objects take at most 10 tags (every taggable resource, the bootstrap-script objects included,
# carries the compliance tags plus a Name).
S3_OBJECT_MAX_TAGS = 10
# S3 refuses transitions to STANDARD_IA / ONEZONE_IA before 30 days.
S3_MIN_DAYS_BEFORE_IA = 30
# S3 Intelligent-Tiering archive tiers accept these day ranges (PutBucketIntelligentTieringConfiguration).
IT_ARCHIVE_ACCESS_DAYS = (90, 730)
IT_DEEP_ARCHIVE_ACCESS_DAYS = (180, 730)

# KMS keys and Secrets Manager secrets wait this many days after deletion (both APIs: 7 to 30).
KMS_DELETION_WINDOW_RANGE_DAYS = (7, 30)
SECRET_RECOVERY_WINDOW_RANGE_DAYS = (7, 30)

# AWS Budgets: at most 10 notifications per budget; the platform spends one on the forecast alert.
BUDGET_MAX_NOTIFICATIONS = 10
BUDGET_FORECAST_NOTIFICATIONS = 1
BUDGET_MAX_ALERT_THRESHOLDS = BUDGET_MAX_NOTIFICATIONS - BUDGET_FORECAST_NOTIFICATIONS
# A budget notification threshold is a percentage of the limit, above 0 and at most this.
BUDGET_THRESHOLD_PERCENT_MAX = 1000

# Target share of Spot-eligible max vCPUs on Spot when a stack sets none.
SPOT_MIN_SHARE_DEFAULT = 0.70

# Network defaults: the stack schema's `hpc:network` keys and EfaNetwork's args.
DEFAULT_VPC_CIDR = "10.0.0.0/16"
DEFAULT_NAT_GATEWAYS: Final = "single"
DEFAULT_FLOW_LOG_TRAFFIC_TYPE: Final = "ALL"
DEFAULT_FLOW_LOG_RETENTION_DAYS = 365
DEFAULT_ENABLE_FLOW_LOGS = True
DEFAULT_ENABLE_S3_GATEWAY_ENDPOINT = True
# A deleted customer KMS key is gone after this many days (AWS's default; it allows 7-30).
KMS_DEFAULT_DELETION_WINDOW_DAYS = 30
DEFAULT_INTERFACE_ENDPOINTS = (
    "ec2",
    "ssm",
    "ssmmessages",
    "ec2messages",
    "logs",
    "monitoring",
    "sts",
)
# Audit trail (`hpc:audit`): CloudTrail and AWS Config, created by the stack or run by the
# organization. An account has one AWS Config configuration recorder per region.
AUDIT_MODES = ("create", "existing")
DEFAULT_AUDIT_MODE: Final = "create"
AUDIT_LOG_RETENTION_DAYS_DEFAULT = 365
CLOUDTRAIL_TRAIL_ARN_PATTERN = r"^arn:aws[a-z-]*:cloudtrail:[a-z0-9-]+:\d{12}:trail/[A-Za-z0-9._-]{3,128}$"
CONFIG_RECORDER_NAME_PATTERN = r"^[A-Za-z0-9._-]{1,256}$"
# NIST SP 800-171 asks that CUI be identified; these are the labels this platform accepts.
DATA_CLASSIFICATIONS = ("public", "internal", "confidential", "cui", "restricted")
COMPLIANCE_FRAMEWORKS = ("NIST-800-171", "HIPAA", "ITAR", "FedRAMP-Moderate", "none")
# The cost-allocation tag group budgets filter on.
RESEARCH_GROUP_TAG = "ResearchGroup"
# Tag keys every taggable resource carries (values come from `ComplianceConfig`).
REQUIRED_TAG_KEYS = (
    "Environment",
    "Owner",
    "CostCenter",
    RESEARCH_GROUP_TAG,
    "DataClassification",
    "ComplianceFrameworks",
    "ManagedBy",
)

# How long the provider waits for a ParallelCluster operation, and the range a stack may set.
API_TIMEOUT_DEFAULT_MINUTES = {"create": 60, "update": 60, "delete": 45}
API_TIMEOUT_RANGE_MINUTES = (5, 360)

# The Slurm accounting password is written unquoted into slurmdbd's config as
# `StoragePass=<password>` (ParallelCluster's cookbook appends that line) and is the RDS master
# password. Characters that break one of them:
# - Slurm's config parser: whitespace ends the value, `#` starts a comment, `"` quotes, `\` escapes;
# - the cookbook's update script expands the value unquoted in a shell test, so `*`, `?`, `[`, `]`
#   are glob patterns there (and `$`, `'` and backticks are kept out of any shell line);
# - RDS refuses `/`, `@`, `"` and spaces in master passwords.
SLURMDBD_PASSWORD_FORBIDDEN = frozenset(" \t\"#'\\/@*?[]$`")
# Special characters a generated password draws from: none of the above.
SLURMDBD_PASSWORD_SPECIALS = "!%^&()-_=+<>:."

# The metrics collector's binaries (hpc_platform/pcluster/prometheus.py pins them) are Debian's
# x86_64 builds, linked against glibc >= 2.34. glibc of each OS ParallelCluster 3.16 offers:
# Amazon Linux 2023 2.34, Ubuntu 22.04 2.35, Ubuntu 24.04 2.39, RHEL/Rocky 8 2.28, RHEL/Rocky 9 2.34.
METRICS_COLLECTOR_ARCHITECTURE = "x86_64"
METRICS_COLLECTOR_MIN_GLIBC = (2, 34)
OS_GLIBC: dict[str, tuple[int, int]] = {
    "alinux2023": (2, 34),
    "ubuntu2204": (2, 35),
    "ubuntu2404": (2, 39),
    "rhel8": (2, 28),
    "rocky8": (2, 28),
    "rhel9": (2, 34),
    "rocky9": (2, 34),
}

# Fargate (Linux) task sizes: CPU units → every memory size (MiB) AWS accepts with them.
FARGATE_TASK_MEMORY_MIB: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}

# Acceptance targets `hpcctl verify` measures on a deployed cluster (`hpc:performance`), from the
# design this platform comes from: MPI latency under 15 µs with EFA, 100 Gbps per node, more than
# 10 GB/s aggregate storage, job start under 30 s, scale-up under 5 min.
PERFORMANCE_MAX_MPI_LATENCY_US_DEFAULT = 15.0
PERFORMANCE_MIN_NODE_BANDWIDTH_GBPS_DEFAULT = 100.0
PERFORMANCE_MIN_STORAGE_GBPS_DEFAULT = 10.0
"""Used when `storage.target_aggregate_throughput_gbps` (the one storage target) is not set."""
PERFORMANCE_MAX_JOB_START_SECONDS_DEFAULT = 30.0
PERFORMANCE_MAX_SCALE_UP_SECONDS_DEFAULT = 300.0
PERFORMANCE_STORAGE_TEST_NODES_DEFAULT = 2

# The default user of each OS's official ParallelCluster AMI (ParallelCluster 3.16.1's
# `constants.OS_MAPPING`): Slurm jobs `hpcctl verify` submits run as this user.
PCLUSTER_OS_DEFAULT_USER: Final = {
    "alinux2023": "ec2-user",
    "ubuntu2204": "ubuntu",
    "ubuntu2404": "ubuntu",
    "rhel8": "ec2-user",
    "rhel9": "ec2-user",
    "rocky8": "rocky",
    "rocky9": "rocky",
}
