"""The layering the tree promises, checked: the component library stands on its own.

- `Analyzer` (Pulumi's component-provider schema inference) accepts all five components, so the
  library can be published as a multi-language component package;
- no component, and not the ParallelCluster renderer, compares environment names: those choices
  live in the environment table (`hpc_platform/domain/environments.py`);
- the import-linter contracts (`.importlinter`) hold; `scripts/test` runs them too, this test says
  which module broke them when they don't.
"""

import ast
import subprocess
import sys
from pathlib import Path

from pulumi.provider.experimental.analyzer import Analyzer

from components import DataRepository, EfaNetwork, LustreFs, Observability, ParallelCluster
from hpc_platform.domain.environments import ENVIRONMENTS
from tests.support.stacks import REPO_ROOT

COMPONENTS = (EfaNetwork, DataRepository, LustreFs, ParallelCluster, Observability)
NO_ENVIRONMENT_NAMES = [
    *sorted((REPO_ROOT / "components").glob("*.py")),
    REPO_ROOT / "hpc_platform" / "app" / "cluster_config.py",
]


def test_pulumis_component_analyzer_makes_a_schema_of_all_five_components() -> None:
    result = Analyzer("hpc").analyze(list(COMPONENTS))
    definitions = result["component_definitions"]
    assert sorted(definitions) == sorted(c.__name__ for c in COMPONENTS)
    for name, definition in definitions.items():
        assert definition.inputs, f"{name} has no inputs in the schema"
        assert definition.outputs, f"{name} has no outputs in the schema"
        undocumented = [key for key, prop in definition.inputs.items() if not prop.description]
        assert undocumented == [], f"{name}: inputs without a description: {undocumented}"


def environment_name_comparisons(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                if isinstance(operand, ast.Constant) and operand.value in ENVIRONMENTS:
                    found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    return found


def test_no_component_or_renderer_compares_environment_names() -> None:
    assert all(path.exists() for path in NO_ENVIRONMENT_NAMES)
    found = [hit for path in NO_ENVIRONMENT_NAMES for hit in environment_name_comparisons(path)]
    assert found == [], f"environment-name comparisons (use the environment table): {found}"


def test_import_contracts_hold() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports"))],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-4000:]
