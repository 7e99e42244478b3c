"""Where each top-level config field lives in a stack file: `hpc:<field>`, except the fields
another Pulumi package owns (`region` is `aws:region`, which the AWS provider reads too).

The loader, the key paths of messages, the generated reference and the Automation API all map
fields to stack-file keys through here.
"""

NAMESPACE = "hpc"
"""The Pulumi config namespace of the platform's keys."""
PROVIDER_KEYS: dict[str, str] = {"region": "aws:region"}
"""Top-level fields kept under another package's namespace → their stack-file key."""


def stack_key(field: str) -> str:
    """`network` → `hpc:network`; `region` → `aws:region`."""
    return PROVIDER_KEYS.get(field, f"{NAMESPACE}:{field}")


def field_of(key: str) -> str | None:
    """`hpc:network` → `network`; `aws:region` → `region`; a key the platform does not read → None."""
    for field, provider_key in PROVIDER_KEYS.items():
        if key == provider_key:
            return field
    namespace, _, name = key.partition(":")
    return name if namespace == NAMESPACE and name else None


def split_key(key: str) -> tuple[str, str]:
    """`aws:region` → (`aws`, `region`): the namespace and name `pulumi.Config` reads it by."""
    namespace, _, name = key.partition(":")
    return namespace, name
