"""The conda envs (envs/*.yaml) are pinned, agree with the package's own requirements, and hold
every third-party package that the scripts of the rules using them import (through expodiff)."""

import ast
import re
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
LIBRARY = REPO / "src" / "expodiff"
# conda-forge name -> import/distribution name where they differ
CONDA_TO_PYPI = {"pytorch": "torch", "matplotlib-base": "matplotlib", "scikit-image": "scikit-image"}
IMPORT_TO_DIST = {"yaml": "pyyaml", "skimage": "scikit-image", "pidng": "pidng", "exifread": "exifread"}
STDLIB = set(sys.stdlib_module_names) | {"snakemake", "expodiff"}
OPTIONAL = {"thop"}  # imported lazily with a clear error; only Table 5b needs it (torch env has it)


def env_packages(path: Path) -> dict[str, str]:
    deps = yaml.safe_load(path.read_text())["dependencies"]
    pins = {}
    for dep in deps:
        if isinstance(dep, dict):
            for line in dep["pip"]:
                name, version = line.split("==")
                pins[name.lower()] = version
        else:
            name, _, version = dep.partition(" =")
            pins[CONDA_TO_PYPI.get(name, name).lower()] = version
    return pins


ENVS = {p.stem: env_packages(p) for p in sorted((REPO / "envs").glob("*.yaml"))}


@pytest.mark.parametrize("env", sorted(ENVS))
def test_envs_pin_exact_versions(env):
    text = (REPO / "envs" / f"{env}.yaml").read_text()
    data = yaml.safe_load(text)
    assert data["channels"] == ["conda-forge", "nodefaults"]
    for dep in data["dependencies"]:
        if isinstance(dep, str):
            assert re.fullmatch(r"[a-z0-9_.-]+ =[0-9][0-9A-Za-z.]*", dep), f"{env}: {dep!r} is not pinned"


def test_envs_agree_with_pyproject():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    for env, pins in ENVS.items():
        for req in requirements:
            name = req.name.lower()
            if name in pins:
                assert req.specifier.contains(pins[name], prereleases=True), (
                    f"envs/{env}.yaml pins {name} {pins[name]}, pyproject asks {req}")


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(third-party top-level modules, expodiff modules) imported anywhere in a file."""
    third, own = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name == "expodiff" or name.startswith("expodiff."):
                own.add(name)
            else:
                third.add(name.split(".")[0])
    return third, own


def _module_file(name: str) -> Path | None:
    parts = name.split(".")[1:]
    path = LIBRARY.joinpath(*parts)
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def third_party_imports(script: Path) -> set[str]:
    todo, seen, found = [script], set(), set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        third, own = _imports(path)
        found |= third
        for name in own:
            parts = name.split(".")
            for depth in range(2, len(parts) + 1):  # the module and its packages
                f = _module_file(".".join(parts[:depth]))
                if f is not None:
                    todo.append(f)
    return {IMPORT_TO_DIST.get(m, m).lower() for m in found - STDLIB - OPTIONAL}


def rule_envs_and_scripts():
    """(rule file, env, script) of every rule with a conda env and a script."""
    pairs = []
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for block in re.split(r"\n\s*rule", smk.read_text()):
            env = re.search(r'conda:\s*\n\s*"\.\./envs/(\w+)\.yaml"', block)
            script = re.search(r'script:\s*\n\s*"\.\./(workflow/scripts/\w+\.py)"', block)
            if env and script:
                pairs.append((smk.name, env.group(1), script.group(1)))
    return pairs


@pytest.mark.parametrize("rule_file,env,script", rule_envs_and_scripts())
def test_each_rule_env_holds_what_its_script_imports(rule_file, env, script):
    missing = third_party_imports(REPO / script) - set(ENVS[env])
    assert not missing, f"{rule_file}: {script} runs in envs/{env}.yaml, which lacks {sorted(missing)}"
