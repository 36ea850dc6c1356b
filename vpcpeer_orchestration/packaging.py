"""Reproducible Lambda zip of ``lambda_pkg``: same sources, same bytes, same sha256.

The hash is the Lambda's source hash and the Dagster code version of the package, so it
must not depend on file times, umask, file-system order or the build machine.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lambda_pkg

PACKAGE_DIR = Path(lambda_pkg.__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
DEFAULT_ZIP_PATH = REPO_ROOT / "build" / "lambda_pkg.zip"

_FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # earliest date the zip format can hold
_FILE_MODE = 0o100644 << 16  # regular file, rw-r--r--
_EXCLUDED_DIRS = {"__pycache__", "tests"}


@dataclass(frozen=True)
class LambdaPackage:
    """A built zip and what identifies it."""

    path: Path
    sha256: str
    size: int
    files: tuple[str, ...]


def package_files(package_dir: Path = PACKAGE_DIR) -> list[tuple[str, Path]]:
    """(archive name, source path) of every source file, sorted by archive name."""
    root = package_dir.parent
    entries = []
    for path in package_dir.rglob("*"):
        if path.is_file() and path.suffix == ".py" and not _EXCLUDED_DIRS.intersection(path.relative_to(package_dir).parts):
            entries.append((path.relative_to(root).as_posix(), path))
    return sorted(entries)


def zip_bytes(package_dir: Path = PACKAGE_DIR) -> tuple[bytes, tuple[str, ...]]:
    """Build the archive in memory and return its bytes and file list."""
    buffer = io.BytesIO()
    names = []
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, path in package_files(package_dir):
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.external_attr = _FILE_MODE
            info.create_system = 3  # Unix, so the mode bits are honoured
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
            names.append(name)
    return buffer.getvalue(), tuple(names)


def build_lambda_zip(destination: Path = DEFAULT_ZIP_PATH, package_dir: Path = PACKAGE_DIR) -> LambdaPackage:
    """Write the zip to ``destination`` atomically, rewriting only if the bytes changed."""
    data, names = zip_bytes(package_dir)
    destination.parent.mkdir(parents=True, exist_ok=True)
    if not destination.is_file() or destination.read_bytes() != data:
        tmp = destination.with_suffix(destination.suffix + f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(destination)
    return LambdaPackage(destination, hashlib.sha256(data).hexdigest(), len(data), names)


def source_digest(package_dir: Path = PACKAGE_DIR) -> str:
    """Short digest of the package sources (names and contents); cheap enough for load time."""
    digest = hashlib.sha256()
    for name, path in package_files(package_dir):
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def packaged_overrides(overrides: Mapping[str, Any] | None = None, destination: Path = DEFAULT_ZIP_PATH) -> dict[str, Any]:
    """Build the zip and point the stack's ``lambda_zip_path`` at it: the one "build, then run
    the program" step of every command that evaluates the Pulumi program."""
    package = build_lambda_zip(destination)
    return {**(overrides or {}), "lambda_zip_path": str(package.path)}
