"""Patches that fill gaps of moto (and one real-life actor) for ParallelCluster's API app.

Loaded only in the harness process and in the IAM tier's synthesis (`tests/support/pcluster_synth.py`,
which needs the FSx one). Each patch names the gap it fills; README.md lists them.
"""

from __future__ import annotations

import sys
import threading


def apply_moto_patches() -> None:
    """Patches of moto's backends (they run in this process: the moto server is threaded)."""
    _run_instances_accepts_instance_store_mappings()
    _policy_statements_with_unmet_conditions_do_not_apply()
    _cloudformation_placeholders_for_unsupported_types()
    _nested_stack_outputs_as_attributes()
    _instances_from_launch_templates()
    _asynchronous_stack_delete()
    _ec2_placement_groups()
    _fsx_file_systems_as_parallelcluster_reads_them()
    _efs_access_point_ids_as_real_efs()


def _run_instances_accepts_instance_store_mappings() -> None:
    """RunInstances (ParallelCluster's launch-template validators call it with DryRun=True): real
    EC2 accepts block-device mappings naming an instance-store volume (`VirtualName: ephemeralN`)
    without `Ebs`, and an `Ebs` mapping of the AMI's root device without a size (the snapshot's
    size applies); moto rejects both ("must contain the parameter ebs / size or snapshotId")."""
    from moto.ec2.responses.instances import InstanceResponse

    original = InstanceResponse._validate_block_device_mapping

    def validate(device_mapping: dict) -> None:  # type: ignore[type-arg]
        if "VirtualName" in device_mapping and "Ebs" not in device_mapping:
            return
        if "Ebs" in device_mapping:
            return
        original(device_mapping)

    InstanceResponse._validate_block_device_mapping = staticmethod(validate)


def apply_pcluster_patches() -> None:
    """Patches of ParallelCluster's code paths that only the real AWS can serve."""


def _policy_statements_with_unmet_conditions_do_not_apply() -> None:
    """S3 bucket policies. ParallelCluster's bucket policy denies requests with
    `aws:SecureTransport: false` and denies the CloudWatch Logs service writes under
    `parallelcluster/`. moto evaluates a missing `aws:SecureTransport` as false and ignores service
    principals (and evaluates no `Bool` operator: an unknown operator counts as met), so it refused
    every object write to the cluster bucket (403 Forbidden). Here `Bool` is evaluated, the
    harness's plain-HTTP calls stand for the HTTPS calls made in real life, and a statement naming
    only an AWS service principal does not apply to the harness's IAM caller."""
    from moto.iam import policy_conditions
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult

    def bool_operation(expected: object, actual: str) -> bool:
        options = expected if isinstance(expected, list) else [expected]
        return str(actual).lower() in [str(o).lower() for o in options]

    policy_conditions.CONDITION_OPERATIONS["Bool"] = bool_operation

    original = IAMPolicyStatement.is_action_permitted

    def is_action_permitted(self, action, resource="*", principal=None, incoming_condition_values=None):  # type: ignore[no-untyped-def]
        named = self._statement.get("Principal")
        if isinstance(named, dict) and "Service" in named and "AWS" not in named:
            return PermissionResult.NEUTRAL
        values = {"aws:SecureTransport": "true", **(incoming_condition_values or {})}
        if self._statement.get("Condition") and not self._check_conditions(values):
            return PermissionResult.NEUTRAL
        return original(self, action, resource, principal, values)

    IAMPolicyStatement.is_action_permitted = is_action_permitted


# Types of ParallelCluster's templates moto's CloudFormation cannot create. In real life they are
# Lambda-backed custom resources (cleanup, DNS, update waiters), the head node's wait condition
# (signalled by the head node), CloudWatch alarms/metric filters, placement groups and egress rules.
PLACEHOLDER_TYPES = frozenset(
    {
        "AWS::CloudFormation::CustomResource",
        "AWS::CloudFormation::WaitCondition",
        "AWS::CloudFormation::WaitConditionHandle",
        "AWS::CloudWatch::Alarm",
        "AWS::CloudWatch::CompositeAlarm",
        "AWS::CloudWatch::Dashboard",
        "AWS::EC2::PlacementGroup",
        "AWS::EC2::SecurityGroupEgress",
        "AWS::Logs::MetricFilter",
    }
)


def _cloudformation_placeholders_for_unsupported_types() -> None:
    """moto's CloudFormation skips resource types it does not model, and then fails the stack on
    any `Ref`/`Fn::GetAtt` to them ("Fn::GetAtt references undefined resource"). The types above
    (and `Custom::*`, which moto would run as a Lambda in Docker) become inert placeholders: a
    physical id, any attribute answers a stable fake value, update/delete succeed."""
    from moto.cloudformation import parsing
    from moto.core.common_models import CloudFormationModel

    class Placeholder(CloudFormationModel):  # type: ignore[misc]
        __module__ = "moto.cloudformation"  # moto's model metaclass derives the service from it

        def __init__(self, name: str, resource_type: str, properties: dict) -> None:  # type: ignore[type-arg]
            self.name = name
            self.resource_type = resource_type
            self.properties = properties

        @property
        def physical_resource_id(self) -> str:
            return self.name

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @staticmethod
        def cloudformation_type() -> str:
            return "Harness::Placeholder"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return True

        def get_cfn_attribute(self, attribute_name: str) -> str:
            if attribute_name == "Data":  # a wait condition's signals
                return "{}"
            return f"{self.name}-{attribute_name}"

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[no-untyped-def]
            cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
        ):
            return cls(
                resource_name, kwargs.get("ResourceType", ""), cloudformation_json.get("Properties", {})
            )

        @classmethod
        def update_from_cloudformation_json(  # type: ignore[no-untyped-def]
            cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
        ):
            original_resource.properties = cloudformation_json.get("Properties", {})
            return original_resource

        @classmethod
        def delete_from_cloudformation_json(  # type: ignore[no-untyped-def]
            cls, resource_name, cloudformation_json, account_id, region_name
        ) -> None:
            return None

    original = parsing.resource_class_from_type

    def resource_class_from_type(resource_type: str):  # type: ignore[no-untyped-def]
        if resource_type in PLACEHOLDER_TYPES or resource_type.startswith("Custom::"):
            return Placeholder
        return original(resource_type)

    parsing.resource_class_from_type = resource_class_from_type


def _nested_stack_outputs_as_attributes() -> None:
    """`Fn::GetAtt [NestedStack, Outputs.Name]` (ParallelCluster's CDK templates pass values out of
    nested stacks this way): moto's Stack model has no `get_cfn_attribute`."""
    from moto.cloudformation.models import Stack

    def get_cfn_attribute(self, attribute_name: str) -> str:  # type: ignore[no-untyped-def]
        if attribute_name.startswith("Outputs."):
            key = attribute_name.split(".", 1)[1]
            for output in self.outputs or []:
                if output["OutputKey"] == key:
                    return str(output["OutputValue"])
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        raise UnformattedGetAttTemplateException()

    Stack.get_cfn_attribute = get_cfn_attribute


def _instances_from_launch_templates() -> None:
    """`AWS::EC2::Instance` defined only by a `LaunchTemplate` (ParallelCluster's head node): moto
    reads `ImageId`, subnet, groups, key and tags only from the resource's own properties
    (KeyError 'ImageId'). The launch template's data is merged in first, as EC2 does."""
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.instances import Instance

    original = Instance.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create_from_cloudformation_json(
        cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
    ):  # type: ignore[no-untyped-def]
        properties = cloudformation_json["Properties"]
        spec = properties.get("LaunchTemplate")
        if spec and "ImageId" not in properties:
            backend = ec2_backends[account_id][region_name]
            if spec.get("LaunchTemplateId"):
                template = backend.get_launch_template(spec["LaunchTemplateId"])
            else:
                template = backend.get_launch_template_by_name(spec["LaunchTemplateName"])
            version = str(spec.get("Version") or "")
            data = (
                template.get_version(int(version)) if version.isdigit() else template.latest_version()
            ).data
            merged = dict(properties)
            merged.setdefault("ImageId", data.get("ImageId"))
            merged.setdefault("InstanceType", data.get("InstanceType"))
            merged.setdefault("KeyName", data.get("KeyName"))
            interfaces = data.get("NetworkInterfaces") or [{}]
            if interfaces[0].get("SubnetId"):
                merged.setdefault("SubnetId", interfaces[0]["SubnetId"])
            tags = list(properties.get("Tags") or [])
            for spec_tags in data.get("TagSpecifications") or []:
                if spec_tags.get("ResourceType") == "instance":
                    tags += spec_tags.get("Tags") or []
            merged["Tags"] = tags
            cloudformation_json = {**cloudformation_json, "Properties": merged}
        return original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)

    Instance.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


STACK_DELETE_SECONDS = 1.5


def _asynchronous_stack_delete() -> None:
    """moto deletes a stack synchronously inside DeleteStack; CloudFormation answers at once and
    deletes in the background (DELETE_IN_PROGRESS). With moto's behaviour ParallelCluster's
    DeleteCluster could not even build its answer (it re-reads the stack: 404). Here a DeleteStack
    *API call* marks the stack DELETE_IN_PROGRESS and deletes it STACK_DELETE_SECONDS later;
    moto's internal deletes (nested stacks replaced during an update) stay synchronous."""
    from moto.cloudformation.responses import CloudFormationResponse
    from moto.core.responses import EmptyResult

    def delete_stack(self):  # type: ignore[no-untyped-def]
        backend = self.cloudformation_backend
        name_or_stack_id = self._get_param("StackName")
        for stack in list(backend.stacks.values()):
            if name_or_stack_id in (stack.name, stack.stack_id) and stack.status != "DELETE_IN_PROGRESS":
                stack.status = "DELETE_IN_PROGRESS"
                timer = threading.Timer(STACK_DELETE_SECONDS, backend.delete_stack, (stack.stack_id,))
                timer.daemon = True
                timer.start()
        return EmptyResult()

    CloudFormationResponse.delete_stack = delete_stack


def _ec2_placement_groups() -> None:
    """moto implements no EC2 placement-group API. ParallelCluster validates the placement group
    an EFA queue names (DescribePlacementGroups); the harness keeps them in memory (Create,
    Describe, Delete), per region, as `cluster` groups in state `available`."""
    import itertools

    from moto.core.responses import ActionResult, EmptyResult
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.responses import EC2Response

    groups: dict[tuple[str, str], dict[str, object]] = {}
    ids = itertools.count(1)

    def create_placement_group(self):  # type: ignore[no-untyped-def]
        name = self._get_param("GroupName")
        group = {
            "GroupName": name,
            "GroupId": f"pg-{next(ids):017x}",
            "State": "available",
            "Strategy": self._get_param("Strategy") or "cluster",
            "GroupArn": f"arn:aws:ec2:{self.region}:{self.current_account}:placement-group/{name}",
        }
        groups[(self.region, name)] = group
        return ActionResult({"PlacementGroup": group})

    def describe_placement_groups(self):  # type: ignore[no-untyped-def]
        names = self._get_param("GroupNames", []) or []
        found = [
            g
            for (region, name), g in groups.items()
            if region == self.region and (not names or name in names)
        ]
        missing = [n for n in names if (self.region, n) not in groups]
        if missing:
            raise EC2ClientError(
                "InvalidPlacementGroup.Unknown", f"The Placement Group '{missing[0]}' is unknown."
            )
        return ActionResult({"PlacementGroups": found})

    def delete_placement_group(self):  # type: ignore[no-untyped-def]
        groups.pop((self.region, self._get_param("GroupName")), None)
        return EmptyResult()

    EC2Response.create_placement_group = create_placement_group
    EC2Response.describe_placement_groups = describe_placement_groups
    EC2Response.delete_placement_group = delete_placement_group


def _fsx_file_systems_as_parallelcluster_reads_them() -> None:
    """moto's FSx file systems have 8-hex-digit ids and lack fields real FSx returns. ParallelCluster
    requires `fs-` + 17 hex digits (schema pattern) and reads `Lifecycle`, `VpcId`,
    `NetworkInterfaceIds` (its networking validator checks the security groups of those
    interfaces) and `LustreConfiguration.MountName`. Here a file system gets a real-shaped id, an
    elastic network interface in its first subnet with its security groups, and those fields."""
    import secrets

    from moto.ec2.models import ec2_backends
    from moto.fsx.models import FileSystem

    original_init = FileSystem.__init__
    original_to_dict = FileSystem.to_dict

    def __init__(self, account_id, region_name, *args, **kwargs):  # type: ignore[no-untyped-def]
        original_init(self, account_id, region_name, *args, **kwargs)
        old_arn = self.resource_arn
        self.file_system_id = f"fs-{secrets.token_hex(9)[:17]}"
        self.dns_name = f"{self.file_system_id}.fsx.{region_name}.amazonaws.com"
        self.resource_arn = old_arn.rsplit("/", 1)[0] + f"/{self.file_system_id}"
        tags = self.backend.list_tags_for_resource(old_arn)
        if tags:
            self.backend.tagger.tag_resource(self.resource_arn, tags)
        ec2 = ec2_backends[account_id][region_name]
        subnet = ec2.get_subnet(self.subnet_ids[0])
        self.vpc_id = subnet.vpc_id
        eni = ec2.create_network_interface(
            subnet,
            private_ip_address=None,
            group_ids=list(self.security_group_ids or []),
            description=f"ENI for {self.file_system_id}",
        )
        self.network_interface_ids = [eni.id]
        if self.lustre_configuration is not None:
            self.lustre_configuration = {"MountName": secrets.token_hex(4), **self.lustre_configuration}

    def to_dict(self):  # type: ignore[no-untyped-def]
        return {
            **original_to_dict(self),
            "Lifecycle": "AVAILABLE",
            "VpcId": self.vpc_id,
            "NetworkInterfaceIds": self.network_interface_ids,
        }

    FileSystem.__init__ = __init__
    FileSystem.to_dict = to_dict


def _efs_access_point_ids_as_real_efs() -> None:
    """moto's EFS access point ids are `fsap-` + 8 hex digits; real ones (and ParallelCluster's
    schema, `^fsap-[0-9a-z]{17}$`) have 17. Ids are given the real shape before the access point is
    stored (its ARN ends with the id)."""
    import secrets

    from moto.efs.models import AccessPoint

    original_init = AccessPoint.__init__

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original_init(self, *args, **kwargs)
        short = self.access_point_id
        self.access_point_id = f"fsap-{secrets.token_hex(9)[:17]}"
        self.access_point_arn = self.access_point_arn.removesuffix(short) + self.access_point_id

    AccessPoint.__init__ = __init__


class HeadNodeEmulator:
    """What the head node's daemons do with the compute-fleet status item in DynamoDB (table
    `parallelcluster-<cluster>`, item `COMPUTE_FLEET`): write RUNNING once the cluster is up, then
    move STOP_REQUESTED → STOPPING → STOPPED and START_REQUESTED → STARTING → RUNNING, one step
    per interval. moto has no head node, so nothing else would ever answer a fleet stop."""

    TRANSITIONS = {
        "STOP_REQUESTED": "STOPPING",
        "STOPPING": "STOPPED",
        "START_REQUESTED": "STARTING",
        "STARTING": "RUNNING",
    }

    def __init__(self, region: str, interval: float = 0.5) -> None:
        self.region = region
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import boto3

        ddb = boto3.client("dynamodb", region_name=self.region)
        cfn = boto3.client("cloudformation", region_name=self.region)
        while not self._stop.wait(self.interval):
            try:
                for table in ddb.list_tables().get("TableNames", []):
                    if table.startswith("parallelcluster-"):
                        self._tick(ddb, cfn, table)
            except Exception as err:  # keep emulating; the API reports what it sees
                print(f"head-node emulator: {err}", file=sys.stderr, flush=True)

    def _tick(self, ddb, cfn, table: str) -> None:  # type: ignore[no-untyped-def]
        from datetime import UTC, datetime

        item = ddb.get_item(TableName=table, Key={"Id": {"S": "COMPUTE_FLEET"}}).get("Item")
        now = str(datetime.now(tz=UTC))
        if item is None:
            try:  # only the cluster's own table (there are others, e.g. `parallelcluster-slurm-…`)
                stacks = cfn.describe_stacks(StackName=table.removeprefix("parallelcluster-"))["Stacks"]
            except cfn.exceptions.ClientError:
                return
            if not stacks or stacks[0]["StackStatus"] not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
                return
            status = "RUNNING"
        else:
            current = item["Data"]["M"]["status"]["S"]
            if current not in self.TRANSITIONS:
                return
            status = self.TRANSITIONS[current]
        data = {"status": {"S": status}, "lastStatusUpdatedTime": {"S": now}}
        ddb.put_item(TableName=table, Item={"Id": {"S": "COMPUTE_FLEET"}, "Data": {"M": data}})
