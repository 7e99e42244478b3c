"""Storage rules: Lustre sizes, throughput, encryption and data repository links; the data
bucket's lifecycle tiers."""

from collections.abc import Iterator

from hpc_platform.domain.catalog import InstanceCatalog
from hpc_platform.domain.config.errors import Finding, Loc
from hpc_platform.domain.config.models import StackConfig
from hpc_platform.domain.config.validators.base import Validator
from hpc_platform.domain.environments import profile
from hpc_platform.domain.limits import (
    IT_ARCHIVE_ACCESS_DAYS,
    IT_DEEP_ARCHIVE_ACCESS_DAYS,
    LUSTRE_PERSISTENT_2,
    LUSTRE_SCRATCH_2,
)
from hpc_platform.domain.lustre import lustre_capacity_problem, persistent_throughput_problem
from hpc_platform.domain.performance import throughput_model


class LustreCapacityValidator(Validator):
    name = "lustre-capacity"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        storage = config.storage
        for key, fs, kind in (
            ("scratch", storage.scratch, LUSTRE_SCRATCH_2),
            ("persistent", storage.persistent, LUSTRE_PERSISTENT_2),
        ):
            problem = lustre_capacity_problem(fs.capacity_gib, kind) if fs.enabled else None
            if problem is not None:
                yield Finding(("storage", key, "capacity_gib"), problem)


class LustreThroughputValidator(Validator):
    name = "lustre-throughput"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        problem = persistent_throughput_problem(config.storage.persistent.throughput_mbps_per_tib)
        if problem is not None:
            yield Finding(("storage", "persistent", "throughput_mbps_per_tib"), problem)


class LustreEncryptionValidator(Validator):
    name = "lustre-encryption"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        persistent = config.storage.persistent
        required = profile(config.environment).requires_persistent_customer_key
        if persistent.enabled and not persistent.enable_customer_kms_key and required:
            yield Finding(
                ("storage", "persistent", "enable_customer_kms_key"),
                "persistent Lustre without a customer KMS key fails the encryption policy "
                f"(fsx-lustre-customer-kms-key, mandatory in {config.environment}); turn it back on",
                "WARNING",
            )
        if config.storage.scratch.enable_customer_kms_key:
            yield Finding(
                ("storage", "scratch", "enable_customer_kms_key"),
                f"{LUSTRE_SCRATCH_2} file systems are always encrypted with an AWS-owned key and take "
                "no customer KMS key; remove the key or keep the data on the persistent file system",
            )


class LustreDataRepositoryValidator(Validator):
    name = "lustre-data-repository"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        scratch = config.storage.scratch
        if scratch.export_path is not None and scratch.import_path is None:
            yield Finding(
                ("storage", "scratch", "export_path"),
                "an export path needs an import_path on the same bucket; set import_path too",
            )
        if scratch.data_repository_associations and (
            scratch.import_path is not None or scratch.export_path is not None
        ):
            yield Finding(
                ("storage", "scratch", "data_repository_associations"),
                "cannot be combined with import_path/export_path (FSx refuses the legacy paths on a "
                "file system with associations); link the bucket one way: remove the paths or the "
                "associations",
            )
        for key, fs in (("scratch", scratch), ("persistent", config.storage.persistent)):
            paths = [a.file_system_path.rstrip("/") or "/" for a in fs.data_repository_associations]
            for index, path in enumerate(paths):
                for other_index, other in enumerate(paths[:index]):
                    nested = (
                        path == other
                        or path.startswith(other.rstrip("/") + "/")
                        or other.startswith(path.rstrip("/") + "/")
                    )
                    if nested:
                        yield Finding(
                            ("storage", key, "data_repository_associations", index, "file_system_path"),
                            f"{path} overlaps data_repository_associations[{other_index}] ({other}); "
                            "associations need disjoint, non-nested paths",
                        )


class S3LifecycleValidator(Validator):
    name = "s3-lifecycle"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        lifecycle = config.storage.data_bucket.lifecycle
        loc = ("storage", "data_bucket", "lifecycle")
        if lifecycle.enable_intelligent_tiering:
            if lifecycle.warm_after_days is not None:
                yield Finding(
                    (*loc, "warm_after_days"),
                    "is ignored with intelligent tiering (it moves objects to its infrequent tier "
                    "after 30 days by itself); remove it",
                    "WARNING",
                )
            for key, days, (low, high) in (
                ("cold_after_days", lifecycle.cold_after_days, IT_ARCHIVE_ACCESS_DAYS),
                ("archive_after_days", lifecycle.archive_after_days, IT_DEEP_ARCHIVE_ACCESS_DAYS),
            ):
                if days is not None and not low <= days <= high:
                    yield Finding(
                        (*loc, key),
                        f"{days} days is outside what S3 Intelligent-Tiering accepts for this tier "
                        f"({low}-{high})",
                    )
        tiers = [
            ("warm_after_days", lifecycle.warm_after_days),
            ("cold_after_days", lifecycle.cold_after_days),
            ("archive_after_days", lifecycle.archive_after_days),
        ]
        if lifecycle.enable_intelligent_tiering:
            tiers = tiers[1:]
        previous: tuple[str, int] | None = None
        for key, days in tiers:
            if days is None:
                continue
            if previous is not None and days <= previous[1]:
                yield Finding(
                    (*loc, key),
                    f"{days} days must come after {previous[0]} ({previous[1]} days): "
                    "tiers go hot → warm → cold → archive",
                )
            previous = (key, days)


class ArchiveTierReadabilityValidator(Validator):
    """FSx for Lustre cannot read objects in the archive tiers without a restore: the prefixes it
    imports from must stay outside `archive_prefix`."""

    name = "archive-tier-readability"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        storage = config.storage
        lifecycle = storage.data_bucket.lifecycle
        archives = (
            lifecycle.cold_after_days is not None or lifecycle.archive_after_days is not None
            if lifecycle.enable_intelligent_tiering
            else lifecycle.archive_after_days is not None
        )
        if not archives:
            return
        linked: list[tuple[Loc, str]] = []
        if storage.scratch.enabled and storage.scratch.import_path is not None:
            linked.append((("storage", "scratch", "import_path"), storage.scratch.import_path))
        for key, fs in (("scratch", storage.scratch), ("persistent", storage.persistent)):
            if not fs.enabled:
                continue
            for index, association in enumerate(fs.data_repository_associations):
                linked.append(
                    (
                        ("storage", key, "data_repository_associations", index, "bucket_prefix"),
                        association.bucket_prefix,
                    )
                )
        archive = lifecycle.archive_prefix.lstrip("/")
        for loc, prefix in linked:
            if prefix.lstrip("/").startswith(archive):
                where = (
                    f"under the archive prefix {archive!r}" if archive else "in a bucket archived as a whole"
                )
                yield Finding(
                    loc,
                    f"{prefix!r} is {where}: Lustre cannot read archived objects until they are "
                    "restored; link another prefix or set storage.data_bucket.lifecycle.archive_prefix",
                )


class LustreThroughputTargetValidator(Validator):
    """The design promises an aggregate throughput; say so when the sizes do not deliver it."""

    name = "lustre-throughput-target"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        storage = config.storage
        target = storage.target_aggregate_throughput_gbps
        if target is None:
            return
        baseline = throughput_model(config).aggregate_gbps
        if baseline < target:
            yield Finding(
                ("storage", "target_aggregate_throughput_gbps"),
                f"the Lustre sizes give {baseline:.1f} GB/s baseline, below the {target:g} GB/s target; "
                "add capacity or raise persistent.throughput_mbps_per_tib",
                "WARNING",
            )


VALIDATORS: tuple[Validator, ...] = (
    LustreCapacityValidator(),
    LustreThroughputValidator(),
    LustreEncryptionValidator(),
    LustreDataRepositoryValidator(),
    S3LifecycleValidator(),
    ArchiveTierReadabilityValidator(),
    LustreThroughputTargetValidator(),
)
