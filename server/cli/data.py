"""`latent-studio data usage`: what uses the disk in the server's data directory.

Reads the folders directly (no server needed), so it works while the server is stopped,
and says which command frees each kind of space.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

# (folder under the data dir, what it holds, how to free it)
CATEGORIES = (
    ("datasets", "uploaded and prepared datasets", "latent-studio delete dataset ID"),
    ("jobs", "training runs: snapshots, grids, progress", "latent-studio delete job ID (or train --keep-snapshots N)"),
    ("walks", "rendered latent walks", "latent-studio delete walk ID"),
    ("models", "imported and added base models", "latent-studio delete model ID"),
)


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="the server's data directory")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True
    u = sub.add_parser("usage", help="show what uses the disk in the data directory",
                       description="Sizes of the datasets, training runs, walks and models in the server's data "
                                   "directory, largest items first.")
    u.add_argument("--data-dir", default=None,
                   help="the server's data folder (default: $LATENT_STUDIO_DATA, else ~/.latent-studio)")
    u.add_argument("--top", type=int, default=5, help="largest items listed per category")
    u.add_argument("--json", action="store_true", help="print JSON instead of a table")
    u.set_defaults(func=run_usage)


def tree_bytes(path: Path) -> int:
    """Bytes of the files under `path` (links not followed; files that vanish are skipped)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def entry_bytes(path: Path) -> int:
    return tree_bytes(path) if path.is_dir() and not path.is_symlink() else path.lstat().st_size


def usage(data_dir: Path, top: int = 5) -> dict:
    """Each file is measured once: a category's total is the sum of its entries."""
    categories = []
    for folder, what, free_with in CATEGORIES:
        base = data_dir / folder
        sizes = {child.name: entry_bytes(child) for child in base.iterdir()} if base.is_dir() else {}
        # unfinished uploads and caches (dot names) are counted, not listed
        items = sorted(({"name": n, "bytes": b} for n, b in sizes.items() if not n.startswith(".")),
                       key=lambda item: -item["bytes"])
        categories.append({"folder": folder, "what": what, "free_with": free_with, "bytes": sum(sizes.values()),
                           "count": len(items), "largest": items[:top]})
    named = {folder for folder, _, _ in CATEGORIES}
    rest = sum(entry_bytes(child) for child in data_dir.iterdir() if child.name not in named)  # db, token...
    return {"data_dir": str(data_dir), "bytes": rest + sum(c["bytes"] for c in categories), "categories": categories}


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def run_usage(args) -> int:
    from server.config import default_data_dir

    data_dir = Path(args.data_dir).expanduser() if args.data_dir else default_data_dir()
    if not data_dir.is_dir():
        raise FileNotFoundError(f"no data directory at {data_dir} (start the server once, or pass --data-dir)")
    report = usage(data_dir, max(0, args.top))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{human(report['bytes'])} in {data_dir}")
    for cat in report["categories"]:
        print(f"  {cat['folder']:<9} {human(cat['bytes']):>9}  {cat['count']} {cat['what']}; free with: {cat['free_with']}")
        for item in cat["largest"]:
            print(f"      {human(item['bytes']):>9}  {item['name']}")
    return 0
