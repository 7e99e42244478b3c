"""AWS ParallelCluster 3: config renderer, REST API client and the Pulumi dynamic provider.

The constants below are contracts between the renderer, the dynamic provider and the policy pack.
"""

# Property on the dynamic resource that marks it as a ParallelCluster cluster (all Python dynamic
# resources share one type token, so the policy pack finds the cluster by this marker).
KIND_PROPERTY = "hpc:kind"
KIND_VALUE = "parallelcluster"

# Cluster tag naming the Pulumi project/stack that owns the cluster: a create that finds an
# existing cluster of the same name carrying this stack's marker adopts it instead of failing.
STACK_MARKER_TAG = "hpc-platform:stack"
