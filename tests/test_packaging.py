"""Installing the library and the ComfyUI pack the ways users do, in real processes, offline.

The project's own environment has vidrestore installed (editable), so "not installed" is made
honestly: a new virtual environment without pip or vidrestore whose site-packages holds one
``.pth`` line naming a folder of links to this environment's installed packages, minus vidrestore
(its dist-info, its editable finder and every ``.pth``). That Python finds the dependencies (and
pip) but no vidrestore; its own site-packages comes first on ``sys.path``, so a package installed
there (another torch) wins over the linked one.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest
from packaging.tags import sys_tags
from packaging.utils import parse_wheel_filename

REPO = Path(__file__).resolve().parents[1]
PINNED = ("torch", "torchvision", "facexlib")
NODES = {"VidrestoreLoadCodeFormer", "VidrestoreFaceSettings", "VidrestoreRestoreFaces",
         "VidrestoreTrackFaces"}


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        pytest.skip(f"{path.name} not found at {path}")
    return [s for s in (ln.split("#")[0].strip() for ln in path.read_text().splitlines()) if s]


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()


def test_requirements_txt_lists_exactly_the_runtime_dependencies() -> None:
    """ComfyUI-Manager installs each line of requirements.txt: the same ranges as the wheel's."""
    assert _lines(REPO / "requirements.txt") == _pyproject()["project"]["dependencies"]


def test_torch_stack_is_pinned_only_in_constraints() -> None:
    project = _pyproject()["project"]
    declared = [*project["dependencies"],
                *itertools.chain.from_iterable(project["optional-dependencies"].values())]
    for req in declared:
        assert not (_name(req) in PINNED and "==" in req), f"pyproject.toml pins {req}"
    assert "torch" in {_name(r) for r in project["dependencies"]}
    pins = dict(ln.split("==", 1) for ln in _lines(REPO / "constraints.txt"))
    assert set(PINNED) <= set(pins), pins
    assert all(re.fullmatch(r"\d+(\.\d+)+", v) for v in pins.values()), pins
    assert "-c constraints.txt" in (REPO / "Makefile").read_text()


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory: pytest.TempPathFactory):
    """Makes new virtual environments that see this environment's packages except vidrestore."""
    links = tmp_path_factory.mktemp("site-links")
    for site in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}:
        for entry in Path(site).iterdir():
            name = entry.name.lower()
            if name.startswith(("vidrestore", "__editable__")) or name.endswith(".pth"):
                continue
            if not (links / entry.name).exists():
                (links / entry.name).symlink_to(entry)

    def make(path: Path) -> Path:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
        python = path / "bin" / "python"
        where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        site = subprocess.run([python, "-c", where], check=True, capture_output=True,
                              text=True).stdout.strip()
        (Path(site) / "project-deps.pth").write_text(f"{links}\n")
        return python

    return make


COMFY_LOAD = textwrap.dedent("""
    import importlib.util, json, os, sys
    folder = sys.argv[1]
    before = importlib.util.find_spec("vidrestore")
    # what ComfyUI 0.33's load_custom_node does with a folder in custom_nodes
    name = folder.replace(".", "_x_")
    spec = importlib.util.spec_from_file_location(name, os.path.join(folder, "__init__.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    import vidrestore
    def where(n):
        s = importlib.util.find_spec(n)
        return s and [os.path.realpath(p) for p in s.submodule_search_locations or [s.origin]]
    print(json.dumps({
        "installed_before": before is not None,
        "nodes": sorted(module.NODE_CLASS_MAPPINGS),
        "names": sorted(module.NODE_DISPLAY_NAME_MAPPINGS),
        "vidrestore": vidrestore.__file__,
        "sys_path": sys.path,
        "others": {n: where(n) for n in ("tests", "benchmarks", "samples", "plugins")},
        "top_plugins": "plugins" in sys.modules,
    }))
""")


def test_comfyui_loads_the_checkout_as_a_node_pack(bare_venv, tmp_path: Path) -> None:
    """``git clone`` into custom_nodes (a folder named vidrestore), vidrestore not installed."""
    custom_nodes = tmp_path / "Comfy.UI" / "custom_nodes"  # a dot: the name ComfyUI mangles
    custom_nodes.mkdir(parents=True)
    clone = custom_nodes / "vidrestore"
    try:
        clone.symlink_to(REPO, target_is_directory=True)
    except OSError as exc:
        pytest.skip(f"cannot make a symlink here: {exc}")
    python = bare_venv(tmp_path / "env")
    run = subprocess.run([python, "-I", "-c", COMFY_LOAD, str(clone)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert not out["installed_before"]
    assert set(out["nodes"]) == NODES and set(out["names"]) == NODES
    assert Path(out["vidrestore"]) == clone / "vidrestore" / "__init__.py"
    for entry in out["sys_path"]:
        real = Path(entry or tmp_path).resolve()
        assert not real.is_relative_to(REPO) and real != custom_nodes.resolve(), entry
    for name, where in out["others"].items():  # the checkout's other folders stay hidden
        assert not any(Path(p).is_relative_to(REPO) for p in where or []), (name, where)
    assert not out["top_plugins"]

    # Another pack with custom_nodes on sys.path imports vidrestore by name: it gets the library.
    by_name = ("import sys; sys.path.insert(0, sys.argv[1]); import vidrestore, vidrestore.errors; "
               "print(vidrestore.__file__, vidrestore.__version__)")
    run = subprocess.run([python, "-I", "-c", by_name, str(custom_nodes)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[0] == str(clone / "vidrestore" / "__init__.py")


def _find_links() -> list[Path]:
    values = os.environ.get("PIP_FIND_LINKS", "").split()
    got = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.find-links"],
                         capture_output=True, text=True)
    if got.returncode == 0:
        values += got.stdout.split()
    return [Path(v.removeprefix("file://")) for v in values if "://" not in v.removeprefix("file://")]


def _other_torch_wheel() -> tuple[Path, str]:
    """A torch wheel for this Python, of another version than the running torch, in a local
    folder of pip's find-links (``PIP_FIND_LINKS`` or pip's config)."""
    running = importlib.metadata.version("torch")
    supported = set(sys_tags())
    for folder in _find_links():
        for wheel in sorted(folder.glob("torch-*.whl")) if folder.is_dir() else []:
            _, version, _, tags = parse_wheel_filename(wheel.name)
            if str(version) != running and tags & supported:
                return wheel, str(version)
    pytest.skip(f"no local torch wheel other than {running} for this Python in pip's find-links")


def test_wheel_installs_beside_an_existing_different_torch(bare_venv, tmp_path: Path) -> None:
    """``pip install vidrestore`` into an environment with its own torch (ComfyUI's, say): the
    ranges are met by it and nothing of it is replaced. The wheel is the library alone."""
    torch_wheel, torch_version = _other_torch_wheel()
    src, dist = tmp_path / "src", tmp_path / "dist"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "__init__.py", "requirements.txt"):
        shutil.copy2(REPO / name, src / name)
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist")
    for name in ("vidrestore", "plugins", "tests"):  # symlinks copied as the files they name
        shutil.copytree(REPO / name, src / name, ignore=skip)
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "-q",
                    "--no-index", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)],
                   check=True, timeout=300)
    (wheel,) = dist.glob("vidrestore-*.whl")
    name, version, _, _ = parse_wheel_filename(wheel.name)
    dist_info = f"{name}-{version}.dist-info"
    names = zipfile.ZipFile(wheel).namelist()
    assert "vidrestore/manifest.json" in names
    assert f"{dist_info}/licenses/LICENSE" in names, names
    assert {n.split("/")[0] for n in names} == {"vidrestore", dist_info}, names

    python = bare_venv(tmp_path / "env")
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "-q", "--no-index", "--no-deps", str(torch_wheel)],
                   check=True, timeout=600)
    # such an environment has the torchvision of its torch (spandrel needs one): torchvision
    # 0.N+15 goes with torch 2.N
    major, minor = (int(v) for v in torch_version.split(".")[:2])
    vision = f"torchvision=={major - 2}.{minor + 15}.*"
    got = subprocess.run([*pip, "install", "-q", "--no-deps", vision], capture_output=True,
                         text=True, timeout=600)
    if got.returncode:
        pytest.skip(f"no {vision} for torch {torch_version} in pip's local indexes")
    run = subprocess.run([*pip, "install", "--no-index", "--find-links", str(dist), "vidrestore"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"^Successfully installed vidrestore-[\d.]+$", run.stdout, re.M), run.stdout
    kept = rf"^Requirement already satisfied: torch>=[\d.]+ in .*\({re.escape(torch_version)}\)$"
    assert re.search(kept, run.stdout, re.M), run.stdout
    show = subprocess.run([*pip, "show", "torch"], capture_output=True, text=True, check=True)
    fields = dict(ln.split(": ", 1) for ln in show.stdout.splitlines() if ": " in ln)
    assert fields["Version"] == torch_version, show.stdout
    assert Path(fields["Location"]).is_relative_to(tmp_path / "env"), show.stdout

    check = "import torch, vidrestore; print(torch.__version__); print(vidrestore.__file__)"
    run = subprocess.run([python, "-I", "-c", check], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, check=True)
    got_torch, library = run.stdout.split()
    assert got_torch == torch_version
    assert Path(library).is_relative_to(tmp_path / "env"), library
