"""``vidrestore weights``: list, download, verify and import model files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..errors import WeightsError
from ..weights import WeightStore


def _size(n: int | None) -> str:
    if n is None:
        return "unknown"
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


@click.group()
def weights() -> None:
    """Manage model files (cache: $VIDRESTORE_HOME; mirrors: $VIDRESTORE_MIRROR)."""


@weights.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(as_json: bool) -> None:
    """Show every model file: present or missing, size, licence, hash and path."""
    store = WeightStore.from_env()
    rows: list[dict[str, Any]] = []
    for name in store.manifest:
        st = store.status(name)
        size, sha = store.expected(name)
        rows.append({
            "name": name, "state": st.state, "file": st.spec.file, "size": size,
            "sha256": sha, "license": st.spec.license, "purpose": st.spec.purpose,
            "path": str(st.path), "urls": list(st.spec.urls), "detail": st.detail,
        })
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"cache: {store.home}")
    for r in rows:
        click.echo(
            f"{r['name']:<20} {r['state']:<10} {_size(r['size']):>10}  {r['license']}"
        )
        sha = r["sha256"] or "unpublished (recorded on first use)"
        click.echo(f"    {r['purpose']}; sha256 {sha}")
        click.echo(f"    {r['path']}" + (f"  ({r['detail']})" if r["detail"] else ""))


@weights.command()
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Download every file in the manifest.")
@click.option("--force", is_flag=True, help="Fetch again even when a good copy is present.")
def download(names: tuple[str, ...], all_: bool, force: bool) -> None:
    """Download NAMES (checked by size and SHA-256) into the cache."""
    store = WeightStore.from_env()
    todo = list(store.manifest) if all_ else list(names)
    if not todo:
        raise click.UsageError("name at least one model file, or --all")
    store.download_many(todo, force=force,
                        on_done=lambda name, path: click.echo(f"{name}: {path}"))


@weights.command()
@click.argument("names", nargs=-1)
def verify(names: tuple[str, ...]) -> None:
    """Re-hash cached files; exit non-zero if any present file is corrupt."""
    store = WeightStore.from_env()
    bad = []
    for name in names or tuple(store.manifest):
        st = store.status(name, rehash=True)
        click.echo(f"{name:<20} {st.state}" + (f"  ({st.detail})" if st.detail else ""))
        if st.state == "corrupt":
            bad.append(name)
    if bad:
        raise WeightsError(f"corrupt: {', '.join(bad)}; delete and download again")


@weights.command("import")
@click.argument("name")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def import_cmd(name: str, path: Path) -> None:
    """Copy a file downloaded by hand into the cache, after checking its hash (and, for an
    entry without a published hash, that it loads as that model)."""
    dest = WeightStore.from_env().import_file(name, path, check=lambda p: _loads_as(name, p))
    click.echo(f"{name}: {dest}")


def _loads_as(name: str, path: Path) -> None:
    """Refuse a file that is not the model of entry ``name`` (one-line error)."""
    import torch

    from ..upscale.model import NAMED

    if name == "codeformer":
        from ..models.loader import load_codeformer_checkpoint

        load_codeformer_checkpoint(path, device="cpu", dtype=torch.float32)
    elif name == "parsenet":
        from ..restore.masks import ParseMasker

        ParseMasker(str(path), torch.device("cpu"))
    elif name in NAMED:
        from ..upscale.model import load_named_file

        load_named_file(name, path)
    elif name in ("yunet", "retinaface_resnet50"):
        from ..faces import create_detector

        create_detector("yunet" if name == "yunet" else "retinaface", model_path=path)
