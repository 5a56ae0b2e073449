"""What Slicer's generic module test and the Extensions Index check, for every module present.

* module metadata (title, categories, contributors, help and acknowledgement text) is
  non-empty, as Slicer's ``WITH_GENERIC_TESTS`` asserts;
* each module's CMakeLists lists every ``.py`` and resource file of its folder (a file not
  listed is not installed) and nothing that does not exist;
* the top-level CMakeLists adds every module and carries the extension metadata;
* ``LuPRRTExtension.json`` is a valid catalog entry (schema v1.0.2) for this extension;
* every ``luprrt`` module that a Slicer module imports loads without the packages Slicer
  does not ship (pandas, statsmodels, matplotlib, pynrrd, numba, scikit-learn: imported only where used);
* each ``<Module>Test.runTest`` ("Reload and Test") runs every ``test_*`` method.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
EXTENSION = "LuPRRTExtension"
# Catalog entry schema v1.0.2 (Slicer/Schemas/slicer-extension-catalog-entry-schema-v1.0.2.json).
CATALOG_KEYS = {"$schema": str, "category": str, "scm_url": str, "scm_revision": str, "scm_type": str,
                "build_dependencies": list, "dicom_support_rule": str, "build_subdirectory": str,
                "enabled": bool, "tier": int}
CATALOG_REQUIRED = {"$schema", "category", "scm_url"}
EXTENSION_FIELDS = ("EXTENSION_HOMEPAGE", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION",
                    "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS", "EXTENSION_DEPENDS")
# Not installed by the module's CMakeLists: its own build file, build-time tests, caches.
NOT_INSTALLED = re.compile(r"(^|/)(CMakeLists\.txt|Testing/.*|__pycache__/.*|.*\.pyc|[^/]*\.egg-info/.*)$")


def _module_files() -> list[Path]:
    from slicer_host import module_files

    return module_files(REPO_ROOT)


MODULES = _module_files()


def _cmake(path: Path) -> str:
    """CMake source without comments."""
    return re.sub(r"#[^\n]*", "", path.read_text(encoding="utf-8"))


def _cmake_set(text: str, variable: str) -> list[str]:
    match = re.search(rf"set\(\s*{variable}\b(.*?)\)", text, flags=re.S)
    return match.group(1).split() if match else []


def _quoted_set(text: str, variable: str) -> str:
    match = re.search(rf'set\(\s*{variable}\s+"([^"]*)"\s*\)', text)
    return match.group(1) if match else ""


def _folder_files(folder: Path) -> set[str]:
    """Files of a module folder that must be installed (git's view: tracked or new, not ignored)."""
    git = shutil.which("git")
    if git and (REPO_ROOT / ".git").exists():
        listed = subprocess.run([git, "ls-files", "--cached", "--others", "--exclude-standard", "--", "."],
                                cwd=folder, capture_output=True, text=True, check=True).stdout.split("\n")
        names = {name for name in listed if name and (folder / name).is_file()}
    else:
        names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    return {name for name in names if not NOT_INSTALLED.search(name)}


# -- module metadata ---------------------------------------------------------------------------------
@pytest.mark.parametrize("module_file", MODULES, ids=lambda p: p.stem)
def test_module_metadata_is_complete(host, module_file):
    from slicer_host import load_scripted_module

    loaded = load_scripted_module(module_file)
    parent = loaded.parent
    for field in ("title", "helpText", "acknowledgementText"):
        assert str(getattr(parent, field)).strip(), f"{loaded.name}: parent.{field} is empty"
    assert parent.categories and all(c.strip() for c in parent.categories), f"{loaded.name}: no categories"
    assert parent.categories[0].split(".")[0] == "Nuclear Medicine"
    assert parent.contributors, f"{loaded.name}: no contributors"
    for contributor in parent.contributors:
        assert re.fullmatch(r"[^()]+ \([^()]+\)", contributor), f"{contributor!r} is not 'First Last (Org)'"
    if not parent.hidden:
        for suffix in ("ParameterNode", "Widget", "Logic", "Test"):
            assert loaded.member(suffix) is not None, f"{module_file.name} defines no {loaded.name}{suffix}"
    assert loaded.member("Test") is not None, f"{module_file.name} defines no {loaded.name}Test"


def test_library_module_is_hidden(host):
    from slicer_host import load_scripted_module

    assert load_scripted_module(REPO_ROOT / EXTENSION / f"{EXTENSION}.py").parent.hidden is True


@pytest.mark.parametrize("module_file", MODULES, ids=lambda p: p.stem)
def test_module_icon_is_a_128_pixel_png(module_file):
    from PIL import Image

    icon = module_file.parent / "Resources" / "Icons" / f"{module_file.stem}.png"
    assert icon.is_file(), f"{icon} missing"
    with Image.open(icon) as image:
        assert (image.format, image.size) == ("PNG", (128, 128))


# -- module CMakeLists -------------------------------------------------------------------------------
@pytest.mark.parametrize("module_file", MODULES, ids=lambda p: p.stem)
def test_module_cmakelists_lists_every_file(module_file):
    folder = module_file.parent
    cmake_file = folder / "CMakeLists.txt"
    assert cmake_file.is_file(), f"{cmake_file} missing"
    text = _cmake(cmake_file)
    assert re.search(rf"set\(\s*MODULE_NAME\s+{folder.name}\s*\)", text), f"no set(MODULE_NAME {folder.name})"
    build = re.search(r"slicerMacroBuildScriptedModule\((.*?)\)", text, flags=re.S)
    assert build, "slicerMacroBuildScriptedModule(...) missing"
    assert "WITH_GENERIC_TESTS" in build.group(1).split()
    assert re.search(r"slicer_add_python_unittest\(\s*SCRIPT\s+\$\{MODULE_NAME\}\.py\s*\)", text)

    def listed(variable: str) -> set[str]:
        return {entry.replace("${MODULE_NAME}", folder.name) for entry in _cmake_set(text, variable)}

    scripts, resources = listed("MODULE_PYTHON_SCRIPTS"), listed("MODULE_PYTHON_RESOURCES")
    files = _folder_files(folder)
    missing_scripts = sorted(f for f in files if f.endswith(".py") and f not in scripts)
    missing_resources = sorted(f for f in files if not f.endswith(".py") and f not in resources)
    for variable, missing in (("MODULE_PYTHON_SCRIPTS", missing_scripts),
                              ("MODULE_PYTHON_RESOURCES", missing_resources)):
        assert not missing, f"add to {variable} of {cmake_file}:\n  " + "\n  ".join(missing)
    stale = sorted(f for f in scripts | resources if not (folder / f).is_file())
    assert not stale, f"{cmake_file} lists files that do not exist: {stale}"
    assert not {f for f in resources if f.endswith(".py")}, "Python files belong in MODULE_PYTHON_SCRIPTS"


# -- top-level CMakeLists and catalog entry ----------------------------------------------------------
def _top_cmake() -> str:
    return _cmake(REPO_ROOT / "CMakeLists.txt")


def test_top_cmakelists_declares_the_extension():
    text = _top_cmake()
    assert re.search(rf"project\(\s*{EXTENSION}\s*\)", text)
    assert not EXTENSION.startswith("Slicer")
    for field in EXTENSION_FIELDS:
        assert _quoted_set(text, field).strip(), f"{field} is not set"
    for contributor in _quoted_set(text, "EXTENSION_CONTRIBUTORS").split(","):
        assert re.fullmatch(r"[^()]+ \([^()]+\)", contributor.strip()), contributor
    order = [text.find(s) for s in ("find_package(Slicer REQUIRED)", "include(${Slicer_USE_FILE})",
                                    "add_subdirectory(", "include(${Slicer_EXTENSION_GENERATE_CONFIG})",
                                    "include(${Slicer_EXTENSION_CPACK})")]
    assert -1 not in order and order == sorted(order), "Slicer's extension CMake steps missing or misordered"


def test_top_cmakelists_adds_every_module():
    added = re.findall(r"add_subdirectory\(\s*([\w.-]+)\s*\)", _top_cmake())
    assert sorted(added) == sorted(set(added)), f"a module is added twice: {added}"
    missing = [m.parent.name for m in MODULES if m.parent.name not in added]
    assert not missing, f"add_subdirectory missing in CMakeLists.txt for {missing}"


@pytest.mark.parametrize("folder", re.findall(r"add_subdirectory\(\s*([\w.-]+)\s*\)",
                                             _cmake(REPO_ROOT / "CMakeLists.txt")))
def test_every_added_module_folder_can_be_configured(folder):
    for needed in ("CMakeLists.txt", f"{folder}.py"):
        assert (REPO_ROOT / folder / needed).is_file(), f"add_subdirectory({folder}): no {folder}/{needed}"


def test_catalog_entry_is_a_valid_v1_0_2_entry_for_this_extension():
    path = REPO_ROOT / f"{EXTENSION}.json"
    raw = path.read_bytes()
    assert b"\r" not in raw, "catalog entry must use LF line endings"
    entry = json.loads(raw)
    assert not set(entry) - set(CATALOG_KEYS), f"unknown keys {sorted(set(entry) - set(CATALOG_KEYS))}"
    assert CATALOG_REQUIRED <= set(entry), f"missing keys {sorted(CATALOG_REQUIRED - set(entry))}"
    for key, value in entry.items():
        assert isinstance(value, CATALOG_KEYS[key]), f"{key} must be {CATALOG_KEYS[key].__name__}"
    assert entry["$schema"].endswith("/Schemas/slicer-extension-catalog-entry-schema-v1.0.2.json#")
    assert entry["category"] == "Nuclear Medicine"
    assert entry["scm_url"].startswith("https://") and entry["scm_revision"]
    assert 1 <= entry.get("tier", 1) <= 5
    depends = _quoted_set(_top_cmake(), "EXTENSION_DEPENDS")
    assert entry.get("build_dependencies", []) == ([] if depends == "NA" else depends.split())


# -- what runs inside Slicer ---------------------------------------------------------------------------
# Packages of the venv that Slicer's Python does not ship (numpy, scipy, SimpleITK, pydicom, highdicom,
# Pillow are shipped); the core imports them only inside the functions that need them.
NOT_SHIPPED_WITH_SLICER = ("nrrd", "pandas", "matplotlib", "statsmodels", "numba", "sklearn", "icrp107_database")
_IMPORT_WITHOUT = """
import importlib, importlib.abc, sys

class NotShipped(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (not shipped with Slicer)")
        return None

sys.meta_path.insert(0, NotShipped())
failed = []
for name in NAMES:
    try:
        importlib.import_module(name)
    except ImportError as error:
        failed.append(f"{name}: {error}")
print("\\n".join(failed))
"""


def _luprrt_imports(files: list[Path]) -> set[str]:
    """The ``luprrt`` modules that ``files`` import (at any level)."""
    names = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "luprrt":
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names if alias.name.split(".")[0] == "luprrt"}
    return names


def test_slicer_modules_import_luprrt_without_packages_slicer_lacks():
    files = [f for m in MODULES for f in m.parent.rglob("*.py")
             if "luprrt" not in f.relative_to(m.parent).parts and "Testing" not in f.relative_to(m.parent).parts]
    names = sorted(_luprrt_imports(files) | {"luprrt.mrml"})
    assert len(names) > 5, names  # the scan found the modules' imports
    script = _IMPORT_WITHOUT.replace("BLOCKED", repr(set(NOT_SHIPPED_WITH_SLICER))).replace("NAMES", repr(names))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"imports that fail in Slicer:\n{result.stdout}"


def test_blocked_import_is_detected():
    """The check above would see a module that needs a package Slicer lacks."""
    script = _IMPORT_WITHOUT.replace("BLOCKED", repr({"json"})).replace("NAMES", repr(["json", "math"]))
    # Unmeasured under `make coverage`: coverage, started in the child, would have imported json already.
    environment = {name: value for name, value in os.environ.items()
                   if name not in ("COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            env=environment)
    assert result.stdout.strip() == "json: No module named 'json' (not shipped with Slicer)"


@pytest.mark.parametrize("module_file", MODULES, ids=lambda p: p.stem)
def test_run_test_runs_every_self_test(module_file):
    """"Reload and Test" calls ``<Module>Test().runTest()``: it must reach every ``test_*`` method."""
    from slicer_host import self_check_names

    tree = ast.parse(module_file.read_text(encoding="utf-8"))
    test_class = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == f"{module_file.stem}Test")
    run_test = next(n for n in test_class.body if isinstance(n, ast.FunctionDef) and n.name == "runTest")
    source = ast.unparse(run_test)
    if 'startswith("test_")' in source.replace("'", '"'):
        return  # runs whatever test_* methods the class has
    missing = [name for name, _line in self_check_names(module_file) if name not in source]
    assert not missing, f"{module_file.stem}Test.runTest does not run {missing}"
