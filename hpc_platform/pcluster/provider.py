"""Pulumi dynamic provider for ParallelCluster clusters, driving the ParallelCluster REST API.

Pulumi pickles the provider object (with dill) into the state and unpickles it in its own provider
process, so the provider holds nothing but an optional, picklable `ProviderSettings`: API clients
and credentials are built inside each method. Credentials come from the standard AWS chain at
run time and never enter inputs, outputs or messages.

Safety rules, each covered by a test:
- never two clusters for one resource: a create that meets an existing cluster of the same name
  adopts it only when its `hpc-platform:stack` tag carries this stack's marker, and a timeout
  while waiting never re-creates — the error says the cluster exists and that re-running adopts it;
- never an unannounced fleet stop: an update that needs the compute fleet stopped fails before
  touching anything unless `allow_fleet_stop` is set (or the fleet is already stopped or
  stopping); the provider starts again only a fleet it stopped itself (`fleet_restart_pending`
  carries that fact to the next run when the start fails);
- never a hidden replacement: a value unknown during preview is judged by its path's update
  policy, so a possible replacement shows as one;
- every failure message says what to do next.
"""

from __future__ import annotations

import copy
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi.dynamic
import yaml
from pulumi.output import Unknown as _PulumiUnknown
from pulumi.runtime.rpc import UNKNOWN as _UNKNOWN

from hpc_platform.domain.limits import (
    API_TIMEOUT_DEFAULT_MINUTES,
    IAM_ROLE_ARN_PATTERN,
    PCLUSTER_CLUSTER_NAME_RULE,
    cluster_name_problem,
)
from hpc_platform.pcluster import KIND_PROPERTY, KIND_VALUE, STACK_MARKER_TAG
from hpc_platform.pcluster.api_access import role_session_name
from hpc_platform.pcluster.client import (
    ApiError,
    Backoff,
    BadRequestError,
    Clock,
    ConflictError,
    CredentialsResolver,
    DryrunSucceeded,
    HttpRequest,
    NoCredentialsError,
    NotFoundError,
    ParallelClusterClient,
    ParallelClusterError,
    RoleAssumer,
    Transport,
    TransportError,
    format_validation_message,
    urllib_transport,
)
from hpc_platform.pcluster.update_policy import NOT_KNOWN_YET, ChangeClass, classify_change

OUTPUT_KEYS: tuple[str, ...] = (
    "cluster_status",
    "cloudformation_stack_status",
    "head_node_ip",
    "head_node_instance_id",
    "version",
    "cluster_config",
    "fleet_restart_pending",
)
"""Properties the provider reports (`cluster_config` is also an input: the applied config).
`fleet_restart_pending` is true when the provider stopped the compute fleet for an update and
could not start it again: the next `pulumi up` starts it (the state is the only place that can
say the stop was the provider's and not an operator's)."""

INPUT_KEYS: tuple[str, ...] = (
    "cluster_name",
    "region",
    "api_url",
    "api_role_arn",
    "cluster_config",
    "parallelcluster_version",
    "stack_marker",
    "allow_fleet_stop",
    "dryrun_on_preview",
    "retain_on_delete",
    "create_timeout_minutes",
    "update_timeout_minutes",
    "delete_timeout_minutes",
    KIND_PROPERTY,
)

REPLACE_ON: tuple[str, ...] = ("cluster_name", "region", "parallelcluster_version")
"""Inputs whose change means a new cluster (ParallelCluster cannot rename, move or upgrade one)."""

# The platform's defaults (the stack config's too) when a resource's inputs leave a timeout out.
_DEFAULT_MINUTES = {
    f"{operation}_timeout_minutes": float(minutes)
    for operation, minutes in API_TIMEOUT_DEFAULT_MINUTES.items()
}
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
ROLE_ARN_RE = re.compile(IAM_ROLE_ARN_PATTERN)
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

_FLEET_STOPPED = "STOPPED"
_FLEET_STOPPING = frozenset({"STOP_REQUESTED", "STOPPING"})
_FLEET_STARTING_OR_RUNNING = frozenset({"START_REQUESTED", "STARTING", "RUNNING", "PROTECTED"})

# Inputs the dry run sends or compares; it runs only when all of them are known.
_DRYRUN_KEYS = (
    "cluster_name",
    "region",
    "api_url",
    "api_role_arn",
    "cluster_config",
    "stack_marker",
    "parallelcluster_version",
)


@dataclass(frozen=True)
class ProviderSettings:
    """How the provider talks to the API and how long it waits. Defaults suit production; tests
    inject a fake transport, fake credentials and a fake clock so nothing really sleeps."""

    transport: Transport | None = None
    credentials: CredentialsResolver | None = None
    assume_role: RoleAssumer | None = None
    """How the API role (`api_role_arn`) is assumed; default: botocore's STS client."""
    clock: Clock = field(default_factory=Clock)
    request_backoff: Backoff = field(default_factory=Backoff)
    """Retries of one request on 429/5xx/no answer."""
    poll_backoff: Backoff = field(default_factory=lambda: Backoff(base_seconds=10, max_seconds=60))
    """Delays between status polls (the operation's timeout bounds the number of polls)."""
    fleet_timeout_minutes: float = 30
    """How long to wait for the compute fleet to stop."""
    conflict_retries: int = 5
    """How often an update/delete that meets another operation in progress waits and retries."""
    not_found_grace_polls: int = 3
    """404 answers tolerated right after a create was accepted, before the cluster shows up."""
    request_timeout_seconds: float = 60.0


class ParallelClusterProvider(pulumi.dynamic.ResourceProvider):
    """CRUD of one ParallelCluster cluster through the ParallelCluster API."""

    def __init__(self, settings: ProviderSettings | None = None) -> None:
        super().__init__()
        self._settings = settings

    # -- check --------------------------------------------------------------------------------
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.CheckResult:
        failures = [pulumi.dynamic.CheckFailure(p, r) for p, r in validate_inputs(news)]
        if failures or not news.get("dryrun_on_preview", True):
            return pulumi.dynamic.CheckResult(news, failures)
        if _has_unknowns({k: news.get(k) for k in _DRYRUN_KEYS}):
            # Values known only once other resources exist: `pulumi up` validates them (its own
            # check runs with the known values before the create/update).
            return pulumi.dynamic.CheckResult(news, failures)
        # The provider process cannot tell a preview from an update (is_dry_run() is only known to
        # the program), so the dry run runs whenever the config changes: in `preview` it validates
        # the plan, in `up` it is the validation just before the create/update.
        old_config = effective_config(_olds) if _olds else None
        new_config = effective_config(news)
        same_cluster = bool(_olds) and all(_olds.get(k) == news.get(k) for k in REPLACE_ON)
        if same_cluster and old_config == new_config:
            return pulumi.dynamic.CheckResult(news, failures)
        for reason in self._dryrun(news, new_config, update=same_cluster):
            failures.append(pulumi.dynamic.CheckFailure("cluster_config", reason))
        return pulumi.dynamic.CheckResult(news, failures)

    def _dryrun(self, props: Mapping[str, Any], config: dict[str, Any], *, update: bool) -> list[str]:
        """Validation failures reported by a dry-run create/update; [] when valid or unverifiable."""
        name = str(props["cluster_name"])
        client = self._client(props)
        try:
            if update:
                client.update_cluster(name, config, dryrun=True)
            else:
                client.create_cluster(name, config, dryrun=True)
        except DryrunSucceeded as ok:
            for message in ok.validation_messages:
                pulumi.log.info(
                    f"ParallelCluster validation of {name!r}: {format_validation_message(message)}"
                )
            return []
        except (BadRequestError, ConflictError) as err:
            if not update and is_name_taken(err):
                return self._dryrun_on_existing(client, props)
            if isinstance(err, ConflictError):
                # 409: another operation on the cluster is in progress. Nothing was validated, so
                # this is neither a pass nor a failure; `pulumi up` validates again when it applies.
                pulumi.log.warn(
                    f"cluster {name!r}: the configuration was NOT validated: ParallelCluster answered 409 "
                    f"({err.message or 'another operation is in progress'}); `pulumi up` waits for the "
                    "operation to finish and ParallelCluster validates the configuration when it is applied"
                )
                return []
            if err.is_no_changes:
                return []
            config_errors = [
                format_validation_message(e) for e in err.payload.get("configurationValidationErrors") or []
            ]
            update_errors = [
                format_validation_message(e) for e in err.payload.get("updateValidationErrors") or []
            ]
            # Update-policy findings (e.g. "stop the compute fleet") are the provider's business:
            # the update stops the fleet when allowed, or fails with instructions.
            for finding in update_errors:
                pulumi.log.warn(f"ParallelCluster update check for {name!r}: {finding}")
            if config_errors:
                return [
                    f"ParallelCluster rejects the configuration of cluster {name!r}: {e}; fix it in the "
                    "stack config and run again"
                    for e in config_errors
                ]
            if update_errors:
                return []
            return [f"ParallelCluster rejects cluster {name!r}: {err.message or err}; fix it and run again"]
        except NotFoundError:
            if update:  # the cluster is gone: the update will fail or a refresh will notice
                pulumi.log.warn(
                    f"cluster {name!r} was not found by the dry run; run `pulumi refresh` if it was deleted"
                )
            return []
        except (NoCredentialsError, TransportError, ParallelClusterError) as err:
            pulumi.log.warn(
                f"could not validate cluster {name!r} with a ParallelCluster dry run ({_first_line(err)}); "
                "the configuration will be validated when it is applied"
            )
            return []
        pulumi.log.warn(f"the ParallelCluster dry run for {name!r} answered without a verdict")
        return []

    def _dryrun_on_existing(self, client: ParallelClusterClient, props: Mapping[str, Any]) -> list[str]:
        """The name is taken: fine when the cluster is this stack's (the create adopts it)."""
        name = str(props["cluster_name"])
        info = self._describe_or_none(client, name)
        if info is None:
            return []
        try:
            self._ensure_owned(info, props)
        except ParallelClusterError as err:
            return [str(err)]
        blocker = _adoption_blocker(name, info)
        if blocker:
            return [blocker]
        if str(info.get("clusterStatus")) == "DELETE_IN_PROGRESS":
            pulumi.log.warn(
                f"cluster {name!r} (this stack's) is being deleted; `pulumi up` waits for the delete to "
                "finish and then creates it anew"
            )
            return []
        pulumi.log.info(
            f"cluster {name!r} exists with this stack's marker ({info.get('clusterStatus')}); "
            "`pulumi up` will adopt it"
        )
        return []

    # -- diff ---------------------------------------------------------------------------------
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        # An unknown input (preview) is unequal to anything: an unknown identity input replaces.
        changed = [k for k in INPUT_KEYS if k != "cluster_config" and olds.get(k) != news.get(k)]
        replaces = [k for k in REPLACE_ON if olds.get(k) != news.get(k)]
        new_config = news.get("cluster_config")
        old_config = olds.get("cluster_config")
        raw_name = news.get("cluster_name")
        name = str(olds.get("cluster_name") if _has_unknowns(raw_name) or not raw_name else raw_name)
        if is_unknown(new_config):
            # The whole config is computed from resources that do not exist yet: any path may
            # change, including those that force a new cluster. Say "replace" now rather than show
            # an update in preview and replace in `up` (which diffs again with the known values).
            changed.append("cluster_config")
            replaces.append("cluster_config")
            pulumi.log.warn(
                f"cluster {name!r} may be REPLACED (deleted, then created anew): its whole configuration is "
                "known only after apply (it is computed from resources this update creates or replaces); "
                "`pulumi up` decides with the known values and updates in place if it can"
            )
        elif isinstance(new_config, dict):
            eff_new = with_placeholders(effective_config(news))
            if old_config != eff_new:
                changed.append("cluster_config")
                change = classify_change(
                    old_config if isinstance(old_config, dict) else {},
                    eff_new,
                    old_version=olds.get("parallelcluster_version"),
                    new_version=news.get("parallelcluster_version"),
                )
                if change.replace:
                    replaces.append("cluster_config")
                _log_plan(name, change, bool(news.get("allow_fleet_stop")), replacing=bool(replaces))
        if olds.get("fleet_restart_pending"):
            changed.append("fleet_restart_pending")
            pulumi.log.warn(
                f"the compute fleet of {name!r} was stopped by an earlier update and could not be started "
                "again; `pulumi up` starts it"
            )
        stables = [k for k in REPLACE_ON if k not in replaces]
        return pulumi.dynamic.DiffResult(
            changes=bool(changed),
            replaces=replaces,
            stables=stables,
            # ParallelCluster names are unique per region: the old cluster must go first.
            delete_before_replace=True,
        )

    # -- create -------------------------------------------------------------------------------
    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        name = str(props["cluster_name"])
        config = effective_config(props)
        _require_known(config)
        client = self._client(props)
        deadline = self._deadline(
            props.get("create_timeout_minutes"), _DEFAULT_MINUTES["create_timeout_minutes"]
        )
        adopted = False
        # A second POST only after this stack's own cluster finished deleting.
        for attempt in range(2):
            try:
                accepted = client.create_cluster(name, config)
            except (ConflictError, BadRequestError) as err:
                if isinstance(err, BadRequestError) and not is_name_taken(err):
                    raise ParallelClusterError(
                        f"ParallelCluster refused to create cluster {name!r}: {_details(err)}\n"
                        "Fix the stack configuration and run `pulumi up` again."
                    ) from None
                info = self._describe_or_none(client, name)
                if info is None:
                    if attempt == 0:
                        continue  # it finished deleting between the two calls: create it now
                    raise ParallelClusterError(
                        f"cluster {name!r} was reported as existing but cannot be found now (it may be "
                        "finishing a delete); wait a few minutes and run `pulumi up` again"
                    ) from None
                self._ensure_owned(info, props)
                status = str(info.get("clusterStatus"))
                if status == "DELETE_IN_PROGRESS" and attempt == 0:
                    pulumi.log.warn(
                        f"cluster {name!r} (this stack's) is being deleted; waiting for the delete to finish "
                        "before creating it anew"
                    )
                    self._wait_until_gone(client, name, deadline, "create", props)
                    continue
                blocker = _adoption_blocker(name, info)
                if blocker:
                    raise ParallelClusterError(blocker) from None
                adopted = True
                pulumi.log.info(
                    f"cluster {name!r} already exists ({status}) and carries this stack's marker "
                    f"({_tag(info, STACK_MARKER_TAG)}); adopting it instead of creating a second one"
                )
                break
            for message in accepted.get("validationMessages") or []:
                pulumi.log.info(
                    f"ParallelCluster validation of {name!r}: {format_validation_message(message)}"
                )
            pulumi.log.info(f"creating ParallelCluster cluster {name!r} in {props['region']}")
            break
        info = self._wait_for_create(client, name, deadline, props, adopted=adopted)
        if adopted:
            # Bring the adopted cluster to the stack's config through the normal update path
            # (update-policy table, fleet-stop rules), starting from the config it really has.
            # After UPDATE_FAILED that is the configuration ParallelCluster rolled back to.
            live = self._fetch_config(info)
            if live is None:
                info = self._converge_adopted(client, name, config, props)
            elif live != config:
                converged = self.update(name, {**props, "cluster_config": live}, props)
                return pulumi.dynamic.CreateResult(name, converged.outs)
        return pulumi.dynamic.CreateResult(name, outputs_of(props, info, config))

    def _ensure_owned(self, info: Mapping[str, Any], props: Mapping[str, Any]) -> None:
        name = props["cluster_name"]
        marker = str(props.get("stack_marker") or "")
        found = _tag(info, STACK_MARKER_TAG)
        if not marker or found != marker:
            owner = f"tag {STACK_MARKER_TAG}={found!r}" if found else f"no {STACK_MARKER_TAG} tag"
            raise ParallelClusterError(
                f"a ParallelCluster cluster named {name!r} already exists in {props['region']} and does not "
                f"belong to this stack ({owner}, expected {marker!r}). Either choose another cluster name "
                f"(hpc:cluster.name), or, to import the existing cluster into this stack, add the tag "
                f"{STACK_MARKER_TAG}={marker!r} to its configuration's Tags (`pcluster update-cluster`) "
                "and run `pulumi up` again: the create then adopts it."
            )

    def _wait_for_create(
        self,
        client: ParallelClusterClient,
        name: str,
        deadline: float,
        props: Mapping[str, Any],
        *,
        adopted: bool,
    ) -> dict[str, Any]:
        """Wait until the cluster is usable. CREATE/UPDATE_COMPLETE and UPDATE_FAILED (rolled back to a
        working configuration) return; CREATE_IN_PROGRESS/UPDATE_IN_PROGRESS wait; a failed create,
        a stuck rollback or a delete fail with the advice that fits."""
        settings = self._settings_or_default()
        seen = adopted
        misses = 0
        attempt = 0
        while True:
            try:
                info = client.describe_cluster(name)
            except NotFoundError:
                misses += 1
                if seen or misses > settings.not_found_grace_polls:
                    raise ParallelClusterError(
                        f"cluster {name!r} disappeared while it was being created (its CloudFormation stack "
                        "was rolled back and deleted, or someone deleted it). Check the stack events of "
                        f"{name!r} in CloudFormation for the cause, then run `pulumi up` again to create it."
                    ) from None
                info = {}
            except ParallelClusterError as err:
                raise ParallelClusterError(
                    f"lost track of cluster {name!r} while it was being created ({_first_line(err)}). The "
                    "cluster exists in AWS and keeps being created; run `pulumi refresh` and then "
                    "`pulumi up` again: the create adopts the existing cluster (it carries this stack's "
                    "marker) instead of creating a second one."
                ) from None
            if info:
                seen = True
                status = str(info.get("clusterStatus"))
                blocker = _adoption_blocker(name, info)
                if blocker:
                    raise ParallelClusterError(blocker)
                if status in ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_FAILED"):
                    return info
                if status.startswith("DELETE"):
                    raise ParallelClusterError(
                        f"cluster {name!r} is being deleted ({status}) while it should be created; wait for "
                        "the delete to finish and run `pulumi up` again"
                    )
            delay = settings.poll_backoff.delay(attempt, settings.clock.rand)
            if settings.clock.now() + delay > deadline:
                minutes = props.get("create_timeout_minutes") or _DEFAULT_MINUTES["create_timeout_minutes"]
                raise ParallelClusterError(
                    f"cluster {name!r} was not ready within create_timeout_minutes={minutes} (status "
                    f"{info.get('clusterStatus', 'unknown')}). It exists and keeps being created in AWS; do "
                    "not delete it. Run `pulumi up` again later (or raise "
                    "hpc:cluster.api.create_timeout_minutes): the create adopts the existing cluster, "
                    "which carries this stack's marker, instead of creating a second one."
                )
            settings.clock.sleep(delay)
            attempt += 1

    def _wait_until_gone(
        self,
        client: ParallelClusterClient,
        name: str,
        deadline: float,
        operation: str,
        props: Mapping[str, Any],
    ) -> None:
        """Poll until describe answers 404; DELETE_FAILED and the deadline fail with advice."""
        settings = self._settings_or_default()
        attempt = 0
        while True:
            try:
                info = client.describe_cluster(name)
            except NotFoundError:
                return
            if info.get("clusterStatus") == "DELETE_FAILED":
                raise ParallelClusterError(
                    _failure_message(name, info, "delete")
                    + "\nRemove what blocks the delete (see the CloudFormation stack events) and run again."
                )
            delay = settings.poll_backoff.delay(attempt, settings.clock.rand)
            if settings.clock.now() + delay > deadline:
                key = f"{operation}_timeout_minutes"
                minutes = props.get(key) or _DEFAULT_MINUTES[key]
                raise ParallelClusterError(
                    f"cluster {name!r} is still being deleted after {key}={minutes} (status "
                    f"{info.get('clusterStatus')}); run `pulumi destroy`/`pulumi up` again later — deleting "
                    "is safe to repeat"
                )
            settings.clock.sleep(delay)
            attempt += 1

    def _converge_adopted(
        self, client: ParallelClusterClient, name: str, config: dict[str, Any], props: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Bring an adopted cluster whose stored config cannot be read to the desired config by a
        plain PUT ("No changes found" when it already matches)."""
        deadline = self._deadline(
            props.get("update_timeout_minutes"), _DEFAULT_MINUTES["update_timeout_minutes"]
        )
        try:
            client.update_cluster(name, config)
        except BadRequestError as err:
            if err.is_no_changes:
                return client.describe_cluster(name)
            raise ParallelClusterError(
                f"adopted cluster {name!r}, but its configuration differs from the stack's and "
                f"ParallelCluster refuses to update it in place: {_details(err)}\n"
                "Stop the compute fleet (or set hpc:cluster.api.allow_fleet_stop) and run `pulumi up` "
                "again, or delete the cluster if it should be re-created."
            ) from None
        return self._wait_for_update(client, name, deadline, props)

    # -- update -------------------------------------------------------------------------------
    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.UpdateResult:
        name = str(olds.get("cluster_name") or _id)
        raw_old = olds.get("cluster_config")
        old_config: dict[str, Any] = raw_old if isinstance(raw_old, dict) else {}
        new_config = effective_config(news)
        _require_known(new_config)
        client = self._client(news)
        # The fleet is stopped because of this provider only when it sent STOP_REQUESTED itself:
        # in this run, or in an earlier one that could not start it again (recorded in the state).
        pending = bool(olds.get("fleet_restart_pending"))
        ours = pending
        if old_config == new_config:
            # Only provider settings (timeouts, flags, API URL) changed: nothing to do in AWS.
            try:
                info = client.describe_cluster(name)
            except ParallelClusterError:
                info = {}
            return self._finish(
                client, name, news, info or _status_of(olds), new_config, ours=ours, already_pending=pending
            )

        change = classify_change(old_config, new_config)
        deadline = self._deadline(
            news.get("update_timeout_minutes"), _DEFAULT_MINUTES["update_timeout_minutes"]
        )
        self._wait_until_settled(client, name, deadline, "update")

        needs_stop = bool(change.needs_fleet_stop)
        fleet = str(client.describe_compute_fleet(name).get("status", "")) if needs_stop else ""
        if needs_stop and fleet != _FLEET_STOPPED:
            # Ask ParallelCluster before stopping anything: the live cluster may already have
            # this config (an interrupted earlier run), or its own policy may not need the stop.
            verdict = self._update_dryrun(client, name, new_config, deadline)
            if verdict == "no_changes":
                pulumi.log.info(f"cluster {name!r} already has this configuration (no changes found)")
                return self._finish(
                    client,
                    name,
                    news,
                    client.describe_cluster(name),
                    new_config,
                    ours=ours,
                    already_pending=pending,
                )
            needs_stop = verdict == "needs_stop"
        if needs_stop:
            if fleet == _FLEET_STOPPED:
                pulumi.log.info(
                    f"compute fleet of {name!r} is already stopped; "
                    + (
                        "it was stopped by an earlier update and is started after this one"
                        if ours
                        else "it is left stopped"
                    )
                )
            elif fleet in _FLEET_STOPPING:
                # Someone (an operator, or an earlier run of ours) already asked for the stop:
                # wait for it; the fleet is started afterwards only if the stop was ours.
                pulumi.log.info(f"compute fleet of {name!r} is already stopping ({fleet}); waiting for it")
                self._wait_for_fleet(client, name, self._fleet_deadline(deadline))
            elif not news.get("allow_fleet_stop"):
                raise ParallelClusterError(fleet_stop_refusal(name, change, new_config))
            else:
                pulumi.log.warn(
                    f"stopping the compute fleet of {name!r} for: {', '.join(change.needs_fleet_stop)}"
                )
                client.update_compute_fleet(name, "STOP_REQUESTED")
                ours = True
                self._wait_for_fleet(client, name, self._fleet_deadline(deadline))

        try:
            applied = self._put_update(client, name, new_config, deadline)
            info = self._wait_for_update(client, name, deadline, news) if applied else {}
        except _UpdateStillRunning:
            if ours:
                pulumi.log.warn(
                    f"the compute fleet of {name!r} stays stopped until the update finishes; start it with "
                    f"`pcluster update-compute-fleet -n {name} --status START_REQUESTED`"
                )
            raise
        except ParallelClusterError as err:
            if ours:
                problem = self._start_fleet(client, name)
                if problem:
                    raise ParallelClusterError(f"{err}\n{problem}") from None
            raise
        if not info:
            info = client.describe_cluster(name)
        return self._finish(client, name, news, info, new_config, ours=ours, already_pending=pending)

    def _fleet_deadline(self, deadline: float) -> float:
        settings = self._settings_or_default()
        return min(deadline, settings.clock.now() + settings.fleet_timeout_minutes * 60)

    def _finish(
        self,
        client: ParallelClusterClient,
        name: str,
        news: Mapping[str, Any],
        info: Mapping[str, Any],
        config: dict[str, Any],
        *,
        ours: bool,
        already_pending: bool = False,
    ) -> pulumi.dynamic.UpdateResult:
        """Outputs of a successful update; starts the fleet the provider stopped. When that start
        fails, the update still succeeded: the outputs say `fleet_restart_pending` so the next run
        starts the fleet (an operator's stop looks the same in AWS, only the state can tell). When
        the state already said so, the run fails: the state keeps the flag for the next one."""
        pending = False
        if ours:
            problem = self._start_fleet(client, name)
            if problem and already_pending:
                raise ParallelClusterError(
                    f"{problem}. The provider stopped it for an earlier update; the next `pulumi up` tries "
                    "again."
                )
            if problem:
                pulumi.log.error(f"{problem}; the next `pulumi up` tries again")
                pending = True
        return pulumi.dynamic.UpdateResult(outputs_of(news, info, config, fleet_restart_pending=pending))

    def _update_dryrun(
        self, client: ParallelClusterClient, name: str, config: dict[str, Any], deadline: float
    ) -> str:
        """`no_changes`, `needs_stop` or `ok` (accepted while the fleet runs), by a dry-run update.
        Configuration errors fail here, before anything is touched."""
        settings = self._settings_or_default()
        for attempt in range(settings.conflict_retries + 1):
            try:
                client.update_cluster(name, config, dryrun=True)
            except DryrunSucceeded:
                return "ok"
            except BadRequestError as err:
                if err.is_no_changes:
                    return "no_changes"
                if err.payload.get("updateValidationErrors") and not err.payload.get(
                    "configurationValidationErrors"
                ):
                    return "needs_stop"
                raise ParallelClusterError(
                    f"ParallelCluster refused to update cluster {name!r}: {_details(err)}\n"
                    "Fix the stack configuration and run `pulumi up` again; nothing was changed."
                ) from None
            except ConflictError:
                # Another operation started meanwhile: its verdict would be no verdict. Wait it out.
                if attempt >= settings.conflict_retries:
                    break
                self._wait_until_settled(client, name, deadline, "update", poll_first=True)
                continue
            return "ok"
        raise ParallelClusterError(
            f"cluster {name!r} stayed busy with another operation; wait for it to finish and run "
            "`pulumi up` again (nothing was changed)"
        )

    def _put_update(
        self, client: ParallelClusterClient, name: str, config: dict[str, Any], deadline: float
    ) -> bool:
        """PUT the new config; False when ParallelCluster finds nothing to change."""
        settings = self._settings_or_default()
        for attempt in range(settings.conflict_retries + 1):
            try:
                client.update_cluster(name, config)
                pulumi.log.info(f"updating ParallelCluster cluster {name!r}")
                return True
            except BadRequestError as err:
                if err.is_no_changes:
                    pulumi.log.info(f"cluster {name!r} already has this configuration (no changes found)")
                    return False
                raise ParallelClusterError(
                    f"ParallelCluster refused to update cluster {name!r}: {_details(err)}\n"
                    "Fix the stack configuration (or stop the compute fleet when the messages ask for it) "
                    "and run `pulumi up` again."
                ) from None
            except NotFoundError:
                raise ParallelClusterError(
                    f"cluster {name!r} no longer exists; run `pulumi refresh` to drop it from the state, "
                    "then `pulumi up` to create it again"
                ) from None
            except ConflictError as err:
                if attempt >= settings.conflict_retries:
                    raise ParallelClusterError(
                        f"cluster {name!r} stayed busy with another operation ({err.message}); "
                        "wait for it to finish and run `pulumi up` again"
                    ) from None
                pulumi.log.info(f"cluster {name!r} is busy ({err.message}); waiting before updating")
                self._wait_until_settled(client, name, deadline, "update", poll_first=True)
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_for_update(
        self, client: ParallelClusterClient, name: str, deadline: float, props: Mapping[str, Any]
    ) -> dict[str, Any]:
        settings = self._settings_or_default()
        attempt = 0
        while True:
            try:
                info = client.describe_cluster(name)
            except NotFoundError:
                raise ParallelClusterError(
                    f"cluster {name!r} disappeared during the update; run `pulumi refresh` and `pulumi up`"
                ) from None
            status = info.get("clusterStatus")
            if status in ("UPDATE_COMPLETE", "CREATE_COMPLETE"):
                return info
            if status == "UPDATE_FAILED":
                raise ParallelClusterError(_failure_message(name, info, "update"))
            delay = settings.poll_backoff.delay(attempt, settings.clock.rand)
            if settings.clock.now() + delay > deadline:
                minutes = props.get("update_timeout_minutes") or _DEFAULT_MINUTES["update_timeout_minutes"]
                raise _UpdateStillRunning(
                    f"cluster {name!r} did not finish updating within update_timeout_minutes={minutes} "
                    f"(status {status}). The update keeps running in AWS; run `pulumi refresh` once it is "
                    "done and `pulumi up` again (or raise hpc:cluster.api.update_timeout_minutes)."
                )
            settings.clock.sleep(delay)
            attempt += 1

    def _wait_until_settled(
        self,
        client: ParallelClusterClient,
        name: str,
        deadline: float,
        operation: str,
        *,
        poll_first: bool = False,
    ) -> dict[str, Any] | None:
        """Wait while another create/update is in progress; None when the cluster does not exist."""
        settings = self._settings_or_default()
        attempt = 0
        while True:
            if poll_first:
                delay = settings.poll_backoff.delay(attempt, settings.clock.rand)
                if settings.clock.now() + delay > deadline:
                    raise ParallelClusterError(
                        f"cluster {name!r} stayed busy with another operation; wait for it to finish and "
                        f"run `pulumi up` again (the {operation} was not started)"
                    )
                settings.clock.sleep(delay)
                attempt += 1
            poll_first = True
            try:
                info = client.describe_cluster(name)
            except NotFoundError:
                return None
            if not str(info.get("clusterStatus", "")).endswith("IN_PROGRESS") or str(
                info.get("clusterStatus")
            ).startswith("DELETE"):
                return info

    def _wait_for_fleet(self, client: ParallelClusterClient, name: str, deadline: float) -> None:
        settings = self._settings_or_default()
        attempt = 0
        while True:
            status = str(client.describe_compute_fleet(name).get("status", ""))
            if status == _FLEET_STOPPED:
                return
            delay = settings.poll_backoff.delay(attempt, settings.clock.rand)
            if settings.clock.now() + delay > deadline:
                raise ParallelClusterError(
                    f"the compute fleet of {name!r} did not stop in time (status {status}); "
                    "the update was not started. Check the head node's clustermgtd log, then run "
                    "`pulumi up` again; start the fleet with "
                    f"`pcluster update-compute-fleet -n {name} --status START_REQUESTED` if you "
                    "abandon the update."
                )
            settings.clock.sleep(delay)
            attempt += 1

    def _start_fleet(self, client: ParallelClusterClient, name: str) -> str | None:
        """START_REQUESTED for a fleet this provider stopped; None when done (or already starting/
        running), else what went wrong and how to start it by hand."""
        try:
            status = str(client.describe_compute_fleet(name).get("status", ""))
            if status in _FLEET_STARTING_OR_RUNNING:
                return None
            client.update_compute_fleet(name, "START_REQUESTED")
            pulumi.log.info(f"restarting the compute fleet of {name!r}")
            return None
        except ParallelClusterError as err:
            return (
                f"could not restart the compute fleet of {name!r} ({_first_line(err)}); start it with "
                f"`pcluster update-compute-fleet -n {name} --status START_REQUESTED`"
            )

    # -- read ---------------------------------------------------------------------------------
    def read(self, id_: str, props: dict[str, Any]) -> pulumi.dynamic.ReadResult:
        name = str(props.get("cluster_name") or id_)
        client = self._client({**props, "cluster_name": name})
        try:
            info = client.describe_cluster(name)
        except NotFoundError:
            return pulumi.dynamic.ReadResult("", {})
        live_config = self._fetch_config(info)
        config = live_config if live_config is not None else props.get("cluster_config")
        state = {**props, "cluster_name": name}
        if not state.get("parallelcluster_version") and info.get("version"):
            state["parallelcluster_version"] = info["version"]
        pending = bool(props.get("fleet_restart_pending"))
        return pulumi.dynamic.ReadResult(id_, outputs_of(state, info, config, fleet_restart_pending=pending))

    def _fetch_config(self, info: Mapping[str, Any]) -> dict[str, Any] | None:
        """The config ParallelCluster stored for the cluster (through its presigned S3 URL)."""
        url = (info.get("clusterConfiguration") or {}).get("url")
        if not url or not str(url).startswith(("https://", "http://")):
            return None
        settings = self._settings_or_default()
        transport = settings.transport or urllib_transport
        try:
            response = transport(HttpRequest("GET", str(url), {}, None, settings.request_timeout_seconds))
            if response.status != 200:
                return None
            loaded = yaml.safe_load(response.body)
        except (TransportError, yaml.YAMLError, OSError):
            return None
        return loaded if isinstance(loaded, dict) else None

    # -- delete -------------------------------------------------------------------------------
    def delete(self, _id: str, props: dict[str, Any]) -> None:
        name = str(props.get("cluster_name") or _id)
        if props.get("retain_on_delete"):
            pulumi.log.warn(
                f"retain_on_delete is set: cluster {name!r} is left running and only removed from the "
                "Pulumi state; delete it with "
                f"`pcluster delete-cluster -n {name}` when it is no longer needed"
            )
            return
        client = self._client({**props, "cluster_name": name})
        settings = self._settings_or_default()
        deadline = self._deadline(
            props.get("delete_timeout_minutes"), _DEFAULT_MINUTES["delete_timeout_minutes"]
        )
        for attempt in range(settings.conflict_retries + 1):
            try:
                client.delete_cluster(name)
                pulumi.log.info(f"deleting ParallelCluster cluster {name!r}")
                break
            except NotFoundError:
                return
            except (ConflictError, BadRequestError) as err:
                busy = isinstance(err, ConflictError) or "IN_PROGRESS" in err.message
                if not busy or attempt >= settings.conflict_retries:
                    raise ParallelClusterError(
                        f"ParallelCluster refused to delete cluster {name!r}: {_details(err)}\n"
                        "Resolve the cause and run `pulumi destroy` (or `pulumi up`) again."
                    ) from None
                if self._wait_until_settled(client, name, deadline, "delete", poll_first=True) is None:
                    return
        self._wait_until_gone(client, name, deadline, "delete", props)

    # -- helpers ------------------------------------------------------------------------------
    def _settings_or_default(self) -> ProviderSettings:
        return self._settings or ProviderSettings()

    def _client(self, props: Mapping[str, Any]) -> ParallelClusterClient:
        settings = self._settings_or_default()
        missing = [key for key in ("api_url", "region") if not props.get(key)]
        if missing:
            raise ParallelClusterError(
                f"the resource's state lacks {' and '.join(missing)}, so the ParallelCluster API cannot be "
                "called; run `pulumi up` with the program that declares the cluster (it supplies them)"
            )
        return ParallelClusterClient(
            str(props["api_url"]),
            str(props["region"]),
            transport=settings.transport,
            credentials=settings.credentials,
            backoff=settings.request_backoff,
            clock=settings.clock,
            request_timeout_seconds=settings.request_timeout_seconds,
            # The API template's resource policy admits only its user role (api_access.py).
            role_arn=str(props.get("api_role_arn") or "") or None,
            role_session_name=role_session_name(
                props.get("stack_marker"), str(props.get("cluster_name") or "")
            ),
            assume_role=settings.assume_role,
        )

    def _deadline(self, minutes: Any, default: float) -> float:
        settings = self._settings_or_default()
        return settings.clock.now() + float(minutes or default) * 60

    @staticmethod
    def _describe_or_none(client: ParallelClusterClient, name: str) -> dict[str, Any] | None:
        try:
            return client.describe_cluster(name)
        except NotFoundError:
            return None


class _UpdateStillRunning(ParallelClusterError):
    """The update was accepted but did not finish in time (it keeps running in AWS)."""


# ---------------------------------------------------------------------------------------------
# Pure helpers (unit-tested directly)
# ---------------------------------------------------------------------------------------------
_NAME_TAKEN = re.compile(r"cluster \S+ already exists", re.IGNORECASE)


def is_name_taken(err: ApiError) -> bool:
    """ParallelCluster answers a create for an existing name with 400 "Cluster <name> already
    exists." (a 409 saying so is accepted too; any other 409 means an operation in progress)."""
    return bool(_NAME_TAKEN.search(err.message))


def validate_inputs(props: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(property, reason) for every invalid input; unknown (preview) values are skipped."""
    out: list[tuple[str, str]] = []
    name = props.get("cluster_name")
    config = props.get("cluster_config")
    if not _has_unknowns(name):
        accounting = isinstance(config, dict) and not _has_unknowns(config) and _has_accounting(config)
        problem = (
            cluster_name_problem(name, accounting=accounting)
            if isinstance(name, str)
            else f"{name!r} is not a valid cluster name; {PCLUSTER_CLUSTER_NAME_RULE}"
        )
        if problem is not None:
            out.append(("cluster_name", problem))
    region = props.get("region")
    if not _has_unknowns(region) and (not isinstance(region, str) or not REGION_RE.match(region)):
        out.append(("region", f"region {region!r} is not an AWS region name (like us-east-2)"))
    url = props.get("api_url")
    if not _has_unknowns(url):
        reason = _url_problem(url)
        if reason:
            out.append(("api_url", reason))
    role = props.get("api_role_arn")
    if (
        role is not None
        and not _has_unknowns(role)
        and not (isinstance(role, str) and ROLE_ARN_RE.match(role))
    ):
        out.append(
            (
                "api_role_arn",
                f"api_role_arn {role!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>); use the "
                "API stack's ParallelClusterApiUserRole output",
            )
        )
    if not _has_unknowns(config) and not isinstance(config, dict):
        out.append(
            ("cluster_config", "cluster_config must be a mapping (the rendered cluster configuration)")
        )
    for key in ("create_timeout_minutes", "update_timeout_minutes", "delete_timeout_minutes"):
        value = props.get(key)
        if (
            value is not None
            and not _has_unknowns(value)
            and (not isinstance(value, int | float) or isinstance(value, bool) or value <= 0)
        ):
            out.append((key, f"{key} must be a positive number of minutes, got {value!r}"))
    return out


def _url_problem(url: Any) -> str | None:
    if not isinstance(url, str) or not url:
        return "api_url must be the invoke URL of the ParallelCluster API (https://…)"
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS:
        return None  # a local API (tests, tunnels); requests never leave the machine
    return f"api_url {url!r} must be an https:// URL (plain http is accepted only for a loopback address)"


def _has_accounting(config: Mapping[str, Any]) -> bool:
    settings = (config.get("Scheduling") or {}).get("SlurmSettings") or {}
    return bool(settings.get("Database"))


def is_unknown(value: Any) -> bool:
    """A value Pulumi does not know yet. The dynamic provider host deserializes Check/Diff inputs
    with `keep_unknowns=True`, so unknowns arrive as `pulumi.output.Unknown` objects; the raw
    `rpc.UNKNOWN` string and the update-policy placeholder mean the same."""
    return (
        isinstance(value, _PulumiUnknown)
        or value is NOT_KNOWN_YET
        or (isinstance(value, str) and value == _UNKNOWN)
    )


def _has_unknowns(value: Any) -> bool:
    if is_unknown(value):
        return True
    if isinstance(value, Mapping):
        return any(_has_unknowns(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_unknowns(v) for v in value)
    return False


def with_placeholders(value: Any) -> Any:
    """A copy with every unknown replaced by `NOT_KNOWN_YET`, which `classify_change` judges as
    "may change" by the policy of the path that holds it."""
    if is_unknown(value):
        return NOT_KNOWN_YET
    if isinstance(value, Mapping):
        return {k: with_placeholders(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [with_placeholders(v) for v in value]
    return value


def _unknown_paths(value: Any, path: str = "cluster_config") -> list[str]:
    if is_unknown(value):
        return [path]
    if isinstance(value, Mapping):
        return [p for k, v in value.items() for p in _unknown_paths(v, f"{path}.{k}")]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in _unknown_paths(v, f"{path}[{i}]")]
    return []


def _require_known(config: Any) -> None:
    """Create/update only ever send known values (the engine resolves them before applying)."""
    missing = _unknown_paths(config)
    if missing:
        raise ParallelClusterError(
            f"{', '.join(missing)} not known yet, so the configuration cannot be sent to ParallelCluster; "
            "run `pulumi up` again once the resources it depends on exist"
        )


def _adoption_blocker(name: str, info: Mapping[str, Any]) -> str | None:
    """Why an existing cluster of this stack cannot be adopted as it is, with the way out; None
    when it can (it is being created/updated, complete, or rolled back to a working config)."""
    status = str(info.get("clusterStatus"))
    stack = str(info.get("cloudFormationStackStatus") or info.get("cloudformationStackStatus"))
    if status == "CREATE_FAILED":
        return _failure_message(name, info, "create")
    if status == "DELETE_FAILED":
        return (
            _failure_message(name, info, "delete")
            + "\nFinish deleting it (remove what blocks the delete, see "
            f"`pcluster get-cluster-stack-events -n {name}`, then `pcluster delete-cluster -n {name}`) "
            "and run `pulumi up` again to create it anew."
        )
    if status == "UPDATE_FAILED" and stack == "UPDATE_ROLLBACK_FAILED":
        return (
            f"cluster {name!r} exists, but its last update failed and CloudFormation could not roll it back "
            f"(UPDATE_ROLLBACK_FAILED); do not delete it. Finish the rollback (`aws cloudformation "
            f"continue-update-rollback --stack-name {name}`, see the stack events for what blocks it), "
            "then run `pulumi up` again: it adopts the cluster and applies the stack's configuration."
        )
    return None


def effective_config(props: Mapping[str, Any]) -> dict[str, Any]:
    """The config sent to ParallelCluster: the rendered one plus this stack's marker tag (added
    when the renderer did not), so a later create can recognise the cluster as ours."""
    config = copy.deepcopy(dict(props.get("cluster_config") or {}))
    marker = props.get("stack_marker")
    if marker:
        tags = [t for t in config.get("Tags") or [] if isinstance(t, dict)]
        if not any(t.get("Key") == STACK_MARKER_TAG for t in tags):
            tags.append({"Key": STACK_MARKER_TAG, "Value": marker if is_unknown(marker) else str(marker)})
            config["Tags"] = tags
    return config


def outputs_of(
    props: Mapping[str, Any],
    info: Mapping[str, Any],
    config: Any,
    *,
    fleet_restart_pending: bool = False,
) -> dict[str, Any]:
    """State after an operation: the inputs plus what the API reports. Nothing else (no
    credentials, no request details) is ever written to the state."""
    head = info.get("headNode") or {}
    outs = {k: props.get(k) for k in INPUT_KEYS if k in props}
    outs.update(
        {
            KIND_PROPERTY: KIND_VALUE,
            "cluster_config": config,
            "cluster_status": info.get("clusterStatus"),
            "cloudformation_stack_status": info.get("cloudFormationStackStatus")
            or info.get("cloudformationStackStatus"),
            "head_node_ip": head.get("privateIpAddress"),
            "head_node_instance_id": head.get("instanceId"),
            "version": info.get("version") or props.get("parallelcluster_version"),
            "fleet_restart_pending": fleet_restart_pending,
        }
    )
    return outs


def _status_of(olds: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "clusterStatus": olds.get("cluster_status"),
        "cloudFormationStackStatus": olds.get("cloudformation_stack_status"),
        "version": olds.get("version"),
        "headNode": {
            "privateIpAddress": olds.get("head_node_ip"),
            "instanceId": olds.get("head_node_instance_id"),
        },
    }


def _tag(info: Mapping[str, Any], key: str) -> str | None:
    for tag in info.get("tags") or []:
        if isinstance(tag, dict) and tag.get("key") == key:
            return str(tag.get("value"))
    return None


def fleet_stop_refusal(name: str, change: ChangeClass, config: Mapping[str, Any]) -> str:
    strategy = ((config.get("Scheduling") or {}).get("SlurmSettings") or {}).get(
        "QueueUpdateStrategy", "COMPUTE_FLEET_STOP"
    )
    reasons = "\n".join(f"  - {r}" for r in change.reasons("needs_fleet_stop"))
    return (
        f"updating cluster {name!r} needs its compute fleet stopped (running jobs would be killed), and "
        f"allow_fleet_stop is off; nothing was changed. Changes that need the stop:\n{reasons}\n"
        "To apply them, either set hpc:cluster.api.allow_fleet_stop: true and run `pulumi up` again, or "
        f"stop the fleet yourself (`pcluster update-compute-fleet -n {name} --status STOP_REQUESTED`), "
        "run `pulumi up`, then start it again (`--status START_REQUESTED`)"
        + (
            ", or, for queue settings that allow it, set hpc:cluster.slurm.queue_update_strategy to DRAIN "
            "or TERMINATE so ParallelCluster replaces the nodes without a stop."
            if strategy == "COMPUTE_FLEET_STOP"
            else "."
        )
    )


def _log_plan(name: str, change: ChangeClass, allow_fleet_stop: bool, *, replacing: bool) -> None:
    """Say in the preview what the update takes. The replacement itself reaches the preview as
    `replaces` (the `+-` replace row); the reasons and any fleet stop can only be text: the dynamic
    provider has no engine connection, so `pulumi.log` writes to the provider's stderr, which the
    engine shows under the stack in the preview's Diagnostics (docs/parallelcluster-provider.md)."""
    if change.replace:
        maybe = any("known only after apply" in r for r in change.reasons("replace"))
        pulumi.log.warn(
            f"cluster {name!r} {'may be' if maybe else 'will be'} REPLACED (deleted, then created anew): "
            + "; ".join(change.reasons("replace"))
        )
        return
    if replacing:
        return
    if change.needs_fleet_stop:
        action = (
            "the provider will stop the fleet, update, and start it again (allow_fleet_stop is on)"
            if allow_fleet_stop
            else "allow_fleet_stop is off, so the update will fail unless the fleet is already stopped"
        )
        pulumi.log.warn(
            f"updating cluster {name!r} needs a compute-fleet stop ({action}): "
            + "; ".join(change.reasons("needs_fleet_stop"))
        )
    if change.rolling:
        pulumi.log.info(
            f"cluster {name!r}: QueueUpdateStrategy replaces nodes for: "
            + "; ".join(change.reasons("rolling"))
        )


def _details(err: ApiError) -> str:
    lines = [err.message or f"HTTP {err.status}"]
    lines += [format_validation_message(e) for e in err.validation_errors]
    return "\n  - ".join(lines)


def _failure_message(name: str, info: Mapping[str, Any], operation: str) -> str:
    status = info.get("clusterStatus")
    stack = info.get("cloudFormationStackStatus") or info.get("cloudformationStackStatus")
    reasons = [
        f"{f.get('failureCode')}: {f.get('failureReason')}"
        for f in info.get("failures") or []
        if isinstance(f, dict)
    ]
    text = f"cluster {name!r} {operation} failed ({status}, CloudFormation {stack})"
    if reasons:
        text += ":\n" + "\n".join(f"  - {r}" for r in reasons)
    if operation == "create":
        text += (
            f"\nSee `pcluster get-cluster-stack-events -n {name}` and the head node's cloud-init/chef "
            "logs; fix the cause, delete the failed cluster "
            f"(`pcluster delete-cluster -n {name}`) and run `pulumi up` again."
        )
    elif operation == "update":
        text += (
            f"\nParallelCluster rolled the cluster back to its previous configuration. See "
            f"`pcluster get-cluster-stack-events -n {name}`, fix the cause and run `pulumi up` again."
        )
    return text


def _first_line(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__
