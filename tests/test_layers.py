"""The library's folders are layers (docs/ARCHITECTURE.md): a module imports only from its own
folder or from a lower layer, never upwards, and never snakemake."""

from __future__ import annotations

import ast
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[1] / "src" / "expodiff"

# lowest first; a group may import itself and any group of a lower layer
LAYERS = [
    {"errors", "seeds", "__init__"},
    # protocols: standard library + errors; tiling: torch + errors (device's inference option)
    {"protocols", "tiling"},
    # gpu_slots, recipes: standard library + errors only; device: torch + errors + tiling
    {"io", "gpu_slots", "device", "recipes"},
    {"physics"},
    {"nets", "schedulers", "data"},
    {"methods"},
    {"checkpoint", "metrics"},
    {"inference"},
    {"train", "evaluate", "denoise"},
    {"report"},
    {"provenance", "config"},
    {"plan"},
    {"cli"},
]
LAYER = {group: i for i, groups in enumerate(LAYERS) for group in groups}


def library_imports():
    """(importing module's group, imported group, file, line) for every expodiff import."""
    for path in sorted(LIBRARY.rglob("*.py")):
        rel = path.relative_to(LIBRARY).with_suffix("")
        group = rel.parts[0] if len(rel.parts) > 1 else rel.name
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if name.split(".")[0] == "snakemake":
                    yield group, "snakemake", path, node.lineno
                if name == "expodiff" or name.startswith("expodiff."):
                    target = name.split(".")[1] if "." in name else "__init__"
                    yield group, target, path, node.lineno


def test_every_module_is_in_a_layer():
    groups = {g for g, _, _, _ in library_imports()} | {
        (p.relative_to(LIBRARY).parts[0] if p.parent != LIBRARY else p.stem) for p in LIBRARY.rglob("*.py")}
    assert groups <= set(LAYER), f"add {sorted(groups - set(LAYER))} to LAYERS and docs/ARCHITECTURE.md"


def test_no_upward_imports_and_no_snakemake():
    upward = [f"{path.relative_to(LIBRARY)}:{line} ({group} → {target})"
              for group, target, path, line in library_imports()
              if target == "snakemake" or (target != group and LAYER[target] >= LAYER[group])]
    assert not upward, "imports against the layers:\n" + "\n".join(upward)
