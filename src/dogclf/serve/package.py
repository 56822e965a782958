"""model.tar.gz in the SageMaker PyTorch layout: build it reproducibly, extract it safely, serve from it."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from dogclf.artifact import METADATA_FILE, WEIGHTS_FILE, read_metadata, resolve_artifact_dir
from dogclf.entrypoints import script_path
from dogclf.errors import ArtifactError
from dogclf.fsutil import atomic_write

CONTAINER_MODEL_DIR = "/opt/ml/model"  # where SageMaker extracts model.tar.gz
MAX_EXTRACTED_BYTES = 8 * 1024**3


def requirements_text(wheel: Path | None = None) -> str:
    """code/requirements.txt: the bundled wheel by its in-container path, else the exact dogclf release."""
    from dogclf import __version__

    if wheel is not None:
        return f"{CONTAINER_MODEL_DIR}/code/{wheel.name}\n"
    return f"dogclf=={__version__}\n"


def _source_date() -> int:
    """Entry mtimes: SOURCE_DATE_EPOCH when set (reproducible-builds convention), else 0."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "0")
    return int(value) if value.isdigit() else 0


def _add(tar: tarfile.TarFile, name: str, data: bytes | Path, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = mtime, 0o644, 0, 0, "", ""
    if isinstance(data, Path):
        info.size = data.stat().st_size
        with data.open("rb") as f:
            tar.addfile(info, f)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def package_model(source: str | Path, output: str | Path, wheel: str | Path | None = None) -> Path:
    """Write model.pth, metadata.json, code/inference.py and code/requirements.txt (+ wheel) to `output`."""
    model_dir = resolve_artifact_dir(source)
    read_metadata(model_dir)
    wheel_path = Path(wheel) if wheel else None
    if wheel_path is not None and (wheel_path.suffix != ".whl" or not wheel_path.is_file()):
        raise ArtifactError(f"--wheel must be an existing .whl file, got {wheel_path}")
    entries: dict[str, bytes | Path] = {
        WEIGHTS_FILE: model_dir / WEIGHTS_FILE,
        METADATA_FILE: model_dir / METADATA_FILE,
        "code/inference.py": script_path("inference.py"),  # the package's own file, also in wheel installs
        "code/requirements.txt": requirements_text(wheel_path).encode("utf-8"),
    }
    if wheel_path is not None:
        entries[f"code/{wheel_path.name}"] = wheel_path
    mtime = _source_date()

    def write(f) -> None:
        # filename="" and mtime keep the gzip header free of the build's name and time.
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=mtime) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for name in sorted(entries):
                    _add(tar, name, entries[name], mtime)

    return atomic_write(output, write)


def _check_member(member: tarfile.TarInfo, archive: Path) -> PurePosixPath:
    """Refuse absolute paths, '..', links and special files; return the safe relative path."""
    name = PurePosixPath(member.name)
    if name.is_absolute() or member.name.startswith(("/", "\\")) or ":" in (name.parts[0] if name.parts else ""):
        raise ArtifactError(f"{archive}: refusing absolute path {member.name!r}")
    if ".." in name.parts or "\\" in member.name:
        raise ArtifactError(f"{archive}: refusing path {member.name!r} that could escape the extraction folder")
    if member.issym() or member.islnk():
        raise ArtifactError(f"{archive}: refusing link {member.name!r} -> {member.linkname!r}")
    if not (member.isfile() or member.isdir()):
        raise ArtifactError(f"{archive}: refusing special file {member.name!r}")
    return name


def extract_model(archive: str | Path, dest: str | Path) -> Path:
    """Safely extract a model.tar.gz into `dest` (every entry is checked before anything is written)."""
    archive, dest = Path(archive), Path(dest)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            paths = [_check_member(m, archive) for m in members]
            total = sum(m.size for m in members if m.isfile())
            if total > MAX_EXTRACTED_BYTES:
                raise ArtifactError(f"{archive}: {total} bytes unpacked exceeds the limit of {MAX_EXTRACTED_BYTES}")
            for member, rel in zip(members, paths, strict=True):
                target = dest.joinpath(*rel.parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None  # regular files always have a payload
                with source, target.open("wb") as out:
                    shutil.copyfileobj(source, out)
    except FileNotFoundError:
        raise ArtifactError(f"model archive not found: {archive}") from None
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
        raise ArtifactError(f"{archive}: not a readable model.tar.gz ({exc})") from None
    return dest


@contextlib.contextmanager
def model_source(path: str | Path) -> Iterator[Path]:
    """A model folder, run folder or model.tar.gz as a model folder (tarballs extract to a temp dir)."""
    path = Path(path)
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar")):
        with tempfile.TemporaryDirectory(prefix="dogclf-model-") as tmp:
            yield resolve_artifact_dir(extract_model(path, tmp))
    else:
        yield resolve_artifact_dir(path)
