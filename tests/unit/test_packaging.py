"""The Lambda zip is reproducible: same sources, same bytes."""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from pathlib import Path

from vpcpeer_orchestration.packaging import PACKAGE_DIR, build_lambda_zip, source_digest


def test_two_builds_are_byte_identical(tmp_path: Path) -> None:
    a = build_lambda_zip(tmp_path / "a.zip")
    b = build_lambda_zip(tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    assert a.sha256 == b.sha256 == hashlib.sha256((tmp_path / "a.zip").read_bytes()).hexdigest()


def test_file_times_and_modes_do_not_change_the_bytes(tmp_path: Path) -> None:
    copy = tmp_path / "src" / "lambda_pkg"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for path in copy.rglob("*.py"):
        os.utime(path, (1_900_000_000, 1_900_000_000))
        path.chmod(0o600)
    (copy / "__pycache__").mkdir()
    (copy / "__pycache__" / "junk.cpython-311.pyc").write_bytes(b"\0")
    original = build_lambda_zip(tmp_path / "original.zip")
    touched = build_lambda_zip(tmp_path / "touched.zip", package_dir=copy)
    assert original.sha256 == touched.sha256
    assert source_digest(copy) == source_digest()


def test_entries_are_sorted_with_fixed_metadata(tmp_path: Path) -> None:
    package = build_lambda_zip(tmp_path / "p.zip")
    with zipfile.ZipFile(package.path) as archive:
        infos = archive.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names) and "lambda_pkg/__init__.py" in names
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos)
    assert all((i.external_attr >> 16) == 0o100644 for i in infos)
    assert not any("__pycache__" in n or not n.endswith(".py") for n in names)


def test_a_source_change_changes_the_hash(tmp_path: Path) -> None:
    copy = tmp_path / "src" / "lambda_pkg"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "constants.py").write_text((copy / "constants.py").read_text() + "\n# changed\n")
    assert build_lambda_zip(tmp_path / "x.zip", package_dir=copy).sha256 != build_lambda_zip(tmp_path / "y.zip").sha256
