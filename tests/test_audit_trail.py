"""AuditTrail: the trail, the recorder and the Config rules in every stack's offline plan, their
policies, the existing mode, and the component used alone."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pulumi.provider.experimental.analyzer import Analyzer

from components.audit_trail import (
    CLOUDTRAIL_PREFIX,
    CONFIG_PREFIX,
    TYPE_TOKEN,
    AuditMode,
    AuditTrail,
    AuditTrailArgs,
)
from hpc_platform.app.offline import run_offline
from hpc_platform.app.offline.engine import Plan, PlannedResource
from hpc_platform.app.offline.mocks import MOCK_ACCOUNT_ID
from hpc_platform.app.tagging import is_taggable
from hpc_platform.domain.compliance import MANAGED_RULES, markdown_table
from hpc_platform.domain.environments import profile
from hpc_platform.domain.limits import REQUIRED_TAG_KEYS
from tests.support.component_queries import component_queries
from tests.support.stacks import REPO_ROOT, STACKS, planned

TRAIL = "aws:cloudtrail/trail:Trail"
RECORDER = "aws:cfg/recorder:Recorder"
RECORDER_STATUS = "aws:cfg/recorderStatus:RecorderStatus"
CHANNEL = "aws:cfg/deliveryChannel:DeliveryChannel"
RULE = "aws:cfg/rule:Rule"
BUCKET = "aws:s3/bucket:Bucket"
KEY = "aws:kms/key:Key"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"

component, subtree, of_type, named = component_queries(TYPE_TOKEN)


def one(plan: Plan, token: str) -> PlannedResource:
    (found,) = of_type(plan, token)
    return found


def policy_of(resource: PlannedResource, key: str = "policy") -> dict[str, Any]:
    value = resource.inputs[key]
    return json.loads(value) if isinstance(value, str) else value


def statements(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in document["Statement"] if "Sid" in s}


def creating(stack: str) -> bool:
    return planned(stack).loaded.config.audit.mode == "create"


# --- the committed stacks ---------------------------------------------------------------------
def test_staging_and_prod_create_the_trail_and_recorder_dev_declares_the_organizations() -> None:
    assert [s for s in STACKS if creating(s)] == ["staging", "prod"]
    dev = planned("dev")
    assert of_type(dev.plan, TRAIL) == [] and of_type(dev.plan, RECORDER) == []
    assert dev.plan.outputs["audit_mode"] == "existing"
    assert dev.plan.outputs["audit_trail_arn"] == dev.loaded.config.audit.existing_trail_arn
    assert dev.plan.outputs["audit_config_recorder_name"] == "default"


@pytest.mark.parametrize("stack", STACKS)
def test_every_managed_rule_is_deployed_in_every_stack(stack: str) -> None:
    plan = planned(stack).plan
    rules = {r.inputs["source"]["sourceIdentifier"]: r for r in of_type(plan, RULE)}
    assert set(rules) == {rule.identifier for rule in MANAGED_RULES}
    assert all(r.inputs["source"]["owner"] == "AWS" for r in rules.values())
    for rule in MANAGED_RULES:
        assert f"NIST SP 800-171 {', '.join(rule.controls)}" in rules[rule.identifier].inputs["description"]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_trail_is_multi_region_validated_encrypted_and_logs_to_cloudwatch(stack: str) -> None:
    plan = planned(stack).plan
    trail = one(plan, TRAIL).inputs
    key = one(plan, KEY)
    log_group = one(plan, LOG_GROUP)
    assert trail["isMultiRegionTrail"] is True
    assert trail["includeGlobalServiceEvents"] is True
    assert trail["enableLogFileValidation"] is True
    assert trail["kmsKeyId"] == key.outputs["arn"]
    assert trail["s3BucketName"] == one(plan, BUCKET).id
    assert trail["s3KeyPrefix"] == CLOUDTRAIL_PREFIX
    assert trail["cloudWatchLogsGroupArn"] == f"{log_group.outputs['arn']}:*"
    assert trail["cloudWatchLogsRoleArn"] == named(plan, "trail-logs-role").outputs["arn"]
    assert log_group.inputs["kmsKeyId"] == key.outputs["arn"]
    assert log_group.inputs["retentionInDays"] == planned(stack).loaded.config.audit.log_retention_days


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_bucket_is_versioned_private_kms_encrypted_tls_only_and_writable_by_this_trail_only(
    stack: str,
) -> None:
    plan = planned(stack).plan
    bucket = one(plan, BUCKET)
    trail_arn = f"arn:aws:cloudtrail:us-east-2:{MOCK_ACCOUNT_ID}:trail/{profile(stack).name_prefix}-trail"
    assert named(plan, "bucket-versioning").inputs["versioningConfiguration"]["status"] == "Enabled"
    block = named(plan, "bucket-public-access-block").inputs
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls"))
    assert block["restrictPublicBuckets"] is True
    (rule,) = named(plan, "bucket-encryption").inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": one(plan, KEY).outputs["arn"],
    }
    policy = statements(policy_of(named(plan, "bucket-policy")))
    assert policy["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    for sid in ("CloudTrailAclCheck", "CloudTrailWrite"):
        assert policy[sid]["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
        assert policy[sid]["Condition"]["StringEquals"]["aws:SourceArn"] == trail_arn
    assert policy["CloudTrailWrite"]["Resource"] == (
        f"{bucket.outputs['arn']}/{CLOUDTRAIL_PREFIX}/AWSLogs/{MOCK_ACCOUNT_ID}/*"
    )
    assert trail_arn == one(plan, TRAIL).outputs["arn"], "the policies name the trail's real ARN"


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_key_lets_cloudtrail_use_it_for_this_trail_and_logs_for_its_log_group(stack: str) -> None:
    plan = planned(stack).plan
    policy = statements(policy_of(one(plan, KEY)))
    trail_arn = one(plan, TRAIL).outputs["arn"]
    encrypt = policy["CloudTrailEncryptsThisTrailsLogs"]
    assert encrypt["Action"] == "kms:GenerateDataKey*"
    assert encrypt["Condition"]["StringEquals"] == {"aws:SourceArn": trail_arn}
    assert policy["CloudTrailDescribesTheKey"]["Condition"]["StringEquals"] == {"aws:SourceArn": trail_arn}
    logs = policy["CloudWatchLogsEncryptsTheTrailLogGroup"]
    assert (
        logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
        == one(plan, LOG_GROUP).outputs["arn"]
    )
    assert one(plan, KEY).inputs["enableKeyRotation"] is True


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_recorder_records_everything_and_delivers_under_config_with_the_key(stack: str) -> None:
    plan = planned(stack).plan
    recorder = one(plan, RECORDER)
    assert recorder.inputs["recordingGroup"] == {"allSupported": True, "includeGlobalResourceTypes": True}
    assert recorder.inputs["roleArn"] == named(plan, "config-role").outputs["arn"]
    channel = one(plan, CHANNEL)
    assert channel.inputs["s3BucketName"] == one(plan, BUCKET).id
    assert channel.inputs["s3KeyPrefix"] == CONFIG_PREFIX
    assert channel.inputs["s3KmsKeyArn"] == one(plan, KEY).outputs["arn"]
    status = one(plan, RECORDER_STATUS)
    assert status.inputs["isEnabled"] is True
    delivery = statements(policy_of(named(plan, "config-delivery-policy")))
    assert delivery["DeliverUnderConfigPrefix"]["Resource"].endswith(
        f"/{CONFIG_PREFIX}/AWSLogs/{MOCK_ACCOUNT_ID}/Config/*"
    )
    attachment = named(plan, "config-read").inputs
    assert attachment["policyArn"] == "arn:aws:iam::aws:policy/service-role/AWS_ConfigRole"


@pytest.mark.parametrize("stack", STACKS)
def test_every_taggable_resource_carries_the_compliance_tags(stack: str) -> None:
    for resource in subtree(planned(stack).plan):
        if resource.custom and is_taggable(resource.type):
            assert set(REQUIRED_TAG_KEYS) <= set(resource.inputs["tags"]), resource.name


def test_only_prod_protects_the_bucket_and_key() -> None:
    for stack in ("staging", "prod"):
        protected = {r.name for r in subtree(planned(stack).plan) if r.protect}
        expected = {f"{profile(stack).name_prefix}-audit-{role}" for role in ("bucket", "key")}
        assert protected == (expected if profile(stack).protect_data else set())


# --- the component alone --------------------------------------------------------------------
def _plan(**values: Any) -> Plan:
    args: dict[str, Any] = {"region": "us-east-2", "trail_name": "unit-trail", **values}

    def program() -> None:
        AuditTrail("unit-audit", AuditTrailArgs(**args))

    return run_offline(program, stack="unit", config={}, region="us-east-2")


def test_existing_mode_creates_only_the_rules_and_passes_the_names_through() -> None:
    plan = _plan(
        mode=AuditMode.EXISTING,
        existing_trail_arn="arn:aws:cloudtrail:us-east-1:111122223333:trail/org",
        existing_config_recorder_name="aws-controltower-BaselineConfigRecorder",
    )
    assert {r.type for r in plan.resources if r.custom} == {RULE}
    assert len(plan.of_type(RULE)) == len(MANAGED_RULES)


def test_rules_can_be_left_to_the_organization() -> None:
    plan = _plan(config_rules=())
    assert plan.of_type(RULE) == [] and len(plan.of_type(TRAIL)) == 1


def test_existing_mode_without_names_is_refused() -> None:
    with pytest.raises(ValueError, match="existing_trail_arn and existing_config_recorder_name"):
        AuditTrailArgs(region="us-east-2", trail_name="t", mode=AuditMode.EXISTING)


def test_library_use_tags_every_taggable_child_with_the_given_tags_only() -> None:
    plan = _plan(tags={"Project": "demo"})
    for resource in plan.resources:
        if resource.custom and is_taggable(resource.type):
            assert set(resource.inputs["tags"]) == {"Project", "Name"}, resource.name


def test_analyzer_builds_a_schema_for_the_component() -> None:
    result = Analyzer("hpc").analyze([AuditTrail])
    definition = result["component_definitions"]["AuditTrail"]
    assert {"region", "trailName", "mode", "logRetentionDays", "tags"} <= set(definition.inputs)
    assert {"trailArn", "configRecorderName", "configRuleNames"} <= set(definition.outputs)


# --- the rule list in the docs --------------------------------------------------------------
def test_docs_list_every_managed_rule_as_the_domain_module_renders_them() -> None:
    text = (REPO_ROOT / "docs" / "audit.md").read_text()
    found = re.search(r"<!-- managed-rules:begin -->\n(.*)\n<!-- managed-rules:end -->", text, re.DOTALL)
    assert found is not None
    assert found.group(1) == markdown_table(), (
        "docs/audit.md is stale: paste `python -m hpc_platform.domain.compliance` between the markers"
    )
