"""Find a dataset's file: the local cache, then an offline mirror, then the public source.

Registered datasets (those with a ``url``) are looked up by file name, under the dataset's own folder
(``data.mirror_dir``, e.g. ``cap_laws/DK``) in the cache and in the mirror; the mirror setting names a root
holding those folders, or (as before there were folders) the folder holding the files themselves. Every
copy is checked against the configured sha256 before use. Downloads go to a temp file and are renamed into
the cache only once the checksum matches, so the cache never holds a partial or wrong file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from policy_topics.errors import DataSourceError
from policy_topics.paths import MIRROR_ENV

DOWNLOAD_TIMEOUT_S = 30


@dataclass(frozen=True)
class ResolvedFile:
    """A dataset file ready to read, with its checksum and where it came from."""

    path: Path
    sha256: str
    origin: str  # local | cache | mirror | download
    source: str  # what users should see as the data's source (public URL or file path)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checked(path: Path, expected: str | None, where: str, fix: str) -> str:
    actual = file_sha256(path)
    if expected and actual != expected.lower():
        raise DataSourceError(
            f"{path} ({where}) has sha256 {actual[:12]}..., expected {expected[:12]}...: {fix}"
        )
    return actual


def resolve_file(
    path: str, url: str | None, sha256: str | None, raw_dir: str | Path, mirror: str | None,
    folder: str | None = None, key: str = "data.path",
) -> ResolvedFile:
    """Locate a dataset file; registered datasets (with ``url``) go cache -> mirror -> download, each under
    the dataset's ``folder`` (relative; a copy straight in the cache or mirror root counts when its checksum
    matches: caches and mirrors from before datasets had folders). ``key`` names the setting in messages."""
    if url is None:
        local = Path(path).expanduser()
        if not local.is_file():
            raise DataSourceError(
                f"data file not found: {local.resolve()}; set {key} to an existing "
                "CSV/TSV/JSONL/Parquet file (relative paths start at the current directory)"
            )
        digest = _checked(local, sha256, "local file", "fix data.sha256 or use the intended file")
        return ResolvedFile(local.resolve(), digest, "local", str(local.resolve()))

    name = Path(path).name
    sub = Path(folder) if folder else Path()
    cached = Path(raw_dir) / sub / name
    found = _find(Path(raw_dir), sub, name, sha256, "local cache", "delete it so that it is fetched again")
    if found:
        return ResolvedFile(found[0], found[1], "cache", url)
    if mirror:
        found = _find(Path(mirror).expanduser(), sub, name, sha256, f"data mirror {MIRROR_ENV}",
                      "replace it with the file from " + url)
        if found:
            return ResolvedFile(found[0].resolve(), found[1], "mirror", url)
        mirror = str(Path(mirror).expanduser() / sub)
    wanted = (sub / name).as_posix()
    return ResolvedFile(_download(url, cached, sha256, mirror, wanted), sha256 or "", "download", url)


def _find(root: Path, sub: Path, name: str, sha256: str | None, where: str, fix: str) -> tuple[Path, str] | None:
    """The dataset's copy under ``root/sub`` (checked: a wrong one is refused), else a copy straight in
    ``root`` whose checksum matches (another dataset's file of the same name is passed over)."""
    own = root / sub / name
    if own.is_file():
        return own, _checked(own, sha256, where, fix)
    flat = root / name
    if sub != Path() and flat.is_file() and sha256:
        digest = file_sha256(flat)
        if digest == sha256.lower():
            return flat, digest
    return None


def _download(url: str, target: Path, sha256: str | None, mirror: str | None, wanted: str) -> Path:
    mirror_note = f"not in the data mirror {mirror}" if mirror else f"no data mirror ({MIRROR_ENV} is not set)"
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
            for block in iter(lambda: resp.read(1 << 20), b""):
                out.write(block)
        actual = file_sha256(tmp)
        if sha256 and actual != sha256.lower():
            raise DataSourceError(
                f"download of {target.name} from {url} has sha256 {actual[:12]}..., expected "
                f"{sha256[:12]}...: the source changed or the transfer broke; get the original file "
                f"into {target.parent} or a data mirror"
            )
        tmp.replace(target)
        return target
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataSourceError(
            f"{target.name} is not in the cache {target.parent}, {mirror_note}, and downloading it from "
            f"{url} failed ({reason}): set {MIRROR_ENV} (or paths.data_mirror=...) to a folder holding "
            f"{wanted}, or put the file in {target.parent}"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
