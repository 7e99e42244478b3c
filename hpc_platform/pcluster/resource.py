"""`ParallelClusterCluster`: one ParallelCluster 3 cluster, managed through its REST API.

The resource is a Pulumi dynamic resource; its CRUD logic lives in
`hpc_platform.pcluster.provider.ParallelClusterProvider` (an importable module, so the provider
pickles by reference). Credentials are never inputs: the provider resolves them from the standard
AWS chain once per operation, and assumes `api_role_arn` with them when it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.dynamic

from hpc_platform.domain.limits import API_TIMEOUT_DEFAULT_MINUTES
from hpc_platform.pcluster import KIND_PROPERTY, KIND_VALUE
from hpc_platform.pcluster.provider import OUTPUT_KEYS, ParallelClusterProvider


@dataclass
class ClusterResourceArgs:
    cluster_name: pulumi.Input[str]
    """Cluster name (ParallelCluster: `^[a-zA-Z][a-zA-Z0-9-]+$`, at most 60 characters).
    Changing it replaces the cluster."""
    region: pulumi.Input[str]
    """AWS region the cluster lives in. Changing it replaces the cluster."""
    api_url: pulumi.Input[str]
    """Invoke URL of the ParallelCluster API (e.g. `https://abc.execute-api.us-east-2.amazonaws.com/prod`)."""
    cluster_config: pulumi.Input[dict[str, Any]]
    """The rendered ParallelCluster cluster configuration (the YAML document as a mapping)."""
    parallelcluster_version: str
    """Version of the ParallelCluster API; changing it replaces the cluster."""
    stack_marker: str
    """Value of the `hpc-platform:stack` tag identifying the owning Pulumi stack; a create that
    finds a cluster of the same name carrying this marker adopts it."""
    allow_fleet_stop: bool = False
    """Let an update stop (and restart) the compute fleet when ParallelCluster requires it.
    Off: such updates fail before touching anything, with instructions."""
    api_role_arn: pulumi.Input[str | None] = None
    """Role the provider assumes (STS) to call the API: the API stack's `ParallelClusterApiUserRole`
    output, the only principal an API deployed with the template's defaults admits. None: sign
    with the standard credential chain."""
    dryrun_on_preview: bool = True
    """Validate the configuration with a dry-run create/update during `pulumi preview`."""
    retain_on_delete: bool = False
    """Leave the cluster running when the resource is deleted."""
    # Defaults: the platform's (`hpc_platform.domain.limits`), which the stack config reads too.
    create_timeout_minutes: int = API_TIMEOUT_DEFAULT_MINUTES["create"]
    update_timeout_minutes: int = API_TIMEOUT_DEFAULT_MINUTES["update"]
    delete_timeout_minutes: int = API_TIMEOUT_DEFAULT_MINUTES["delete"]


class ParallelClusterCluster(pulumi.dynamic.Resource):
    """A ParallelCluster cluster created, updated and deleted through the ParallelCluster API."""

    cluster_name: pulumi.Output[str]
    region: pulumi.Output[str]
    cluster_status: pulumi.Output[str]
    """`clusterStatus` from the API (e.g. CREATE_COMPLETE, UPDATE_COMPLETE)."""
    cloudformation_stack_status: pulumi.Output[str]
    """Status of the cluster's CloudFormation stack."""
    head_node_ip: pulumi.Output[str | None]
    """Private IP address of the head node."""
    head_node_instance_id: pulumi.Output[str | None]
    version: pulumi.Output[str]
    """ParallelCluster version the cluster runs."""
    cluster_config: pulumi.Output[dict[str, Any]]
    """The configuration last applied by this resource."""
    fleet_restart_pending: pulumi.Output[bool]
    """True when the provider stopped the compute fleet for an update and could not start it
    again; the next `pulumi up` starts it."""

    def __init__(
        self, name: str, args: ClusterResourceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props: dict[str, Any] = {
            "cluster_name": args.cluster_name,
            "region": args.region,
            "api_url": args.api_url,
            "api_role_arn": args.api_role_arn,
            "cluster_config": args.cluster_config,
            "parallelcluster_version": args.parallelcluster_version,
            "stack_marker": args.stack_marker,
            "allow_fleet_stop": args.allow_fleet_stop,
            "dryrun_on_preview": args.dryrun_on_preview,
            "retain_on_delete": args.retain_on_delete,
            "create_timeout_minutes": args.create_timeout_minutes,
            "update_timeout_minutes": args.update_timeout_minutes,
            "delete_timeout_minutes": args.delete_timeout_minutes,
            KIND_PROPERTY: KIND_VALUE,
        }
        # Output-only properties must be present (as None) to be exposed as attributes.
        for key in OUTPUT_KEYS:
            props.setdefault(key, None)
        super().__init__(ParallelClusterProvider(), name, props, opts)
