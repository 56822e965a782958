"""model.tar.gz in the SageMaker PyTorch layout: build it reproducibly, extract it safely, serve from it."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from dogclf.artifact import METADATA_FILE, WEIGHTS_FILE, read_metadata, resolve_artifact_dir
from dogclf.backends.base import EXTRAS
from dogclf.backends.exports import EXPORT_FILE, EXPORTS_DIR, MODEL_FILES, verify_export
from dogclf.backends.select import EXPORT_CHOICES, choose_backend
from dogclf.cache import CACHE_ENV, cache_root  # noqa: F401 (re-exported: where archives are extracted)
from dogclf.entrypoints import script_path
from dogclf.errors import ArtifactError, ConfigError
from dogclf.fsutil import atomic_write, stream_sha256

CONTAINER_MODEL_DIR = "/opt/ml/model"  # where SageMaker extracts model.tar.gz
MAX_EXTRACTED_BYTES = 8 * 1024**3


def requirements_text(wheel: Path | None = None, extra: str | None = None) -> str:
    """code/requirements.txt: the bundled wheel by its in-container path, else the exact dogclf release.

    `extra` (e.g. openvino, for a shipped export) is installed with it: `dogclf[openvino]==VERSION`.
    """
    from dogclf import __version__

    extras = f"[{extra}]" if extra else ""
    if wheel is not None:
        return f"{CONTAINER_MODEL_DIR}/code/{wheel.name}{extras}\n"
    return f"dogclf{extras}=={__version__}\n"


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


def _export_entries(model_dir: Path, name: str) -> tuple[dict[str, Path], str]:
    """The archive entries of a current, trusted export (exports/NAME/...) and the extra its engine needs."""
    if name not in EXPORT_CHOICES:
        raise ConfigError(f"--export {name!r} is not an export name; choose one of {', '.join(EXPORT_CHOICES)}")
    choice = choose_backend(model_dir, name, installed=lambda engine: True)  # refuses missing or stale exports
    assert choice.folder is not None and choice.export is not None  # an export name always resolves to one
    if not choice.export.trusted:
        raise ArtifactError(
            f"{choice.folder} failed its accuracy gate (kept with --force), so a server would not use it; "
            "export it again without --force, or package another export"
        )
    verify_export(choice.folder, choice.export)
    files = (*choice.export.files, EXPORT_FILE)
    return {f"{EXPORTS_DIR}/{name}/{f}": choice.folder / f for f in files}, EXTRAS[choice.export.format]


def package_model(
    source: str | Path, output: str | Path, wheel: str | Path | None = None, export: str | None = None
) -> Path:
    """Write model.pth, metadata.json, code/inference.py and code/requirements.txt (+ wheel) to `output`.

    `export` (e.g. openvino-int8) ships MODEL/exports/NAME/ too, and requirements.txt installs its engine.
    """
    model_dir = resolve_artifact_dir(source)
    read_metadata(model_dir)
    wheel_path = Path(wheel) if wheel else None
    if wheel_path is not None and (wheel_path.suffix != ".whl" or not wheel_path.is_file()):
        raise ArtifactError(f"--wheel must be an existing .whl file, got {wheel_path}")
    shipped, extra = _export_entries(model_dir, export) if export else ({}, None)
    entries: dict[str, bytes | Path] = {
        WEIGHTS_FILE: model_dir / WEIGHTS_FILE,
        METADATA_FILE: model_dir / METADATA_FILE,
        "code/inference.py": script_path("inference.py"),  # the package's own file, also in wheel installs
        "code/requirements.txt": requirements_text(wheel_path, extra).encode("utf-8"),
        **shipped,
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


# The members of the SageMaker PyTorch layout (plus a wheel in code/ and exports, see _in_layout); anything
# else in an archive is never written.
LAYOUT_FILES = (WEIGHTS_FILE, METADATA_FILE, "code/inference.py", "code/requirements.txt")


def _check_member(member: tarfile.TarInfo, archive: Path) -> PurePosixPath:
    """Refuse absolute paths, '..', links, sparse and special files; return the safe relative path."""
    name = PurePosixPath(member.name)
    if name.is_absolute() or member.name.startswith(("/", "\\")) or ":" in (name.parts[0] if name.parts else ""):
        raise ArtifactError(f"{archive}: refusing absolute path {member.name!r}")
    if ".." in name.parts or "\\" in member.name:
        raise ArtifactError(f"{archive}: refusing path {member.name!r} that could escape the extraction folder")
    if member.issym() or member.islnk():
        raise ArtifactError(f"{archive}: refusing link {member.name!r} -> {member.linkname!r}")
    if member.issparse():
        raise ArtifactError(f"{archive}: refusing sparse file {member.name!r} (declares {member.size} bytes)")
    if not (member.isfile() or member.isdir()):
        raise ArtifactError(f"{archive}: refusing special file {member.name!r}")
    return name


def _in_layout(name: PurePosixPath) -> bool:
    """Whether a file belongs to the model.tar.gz layout (model, metadata, inference code, bundled wheel, exports).

    Exports are exports/NAME/FILE with NAME a known export (e.g. openvino-int8) and FILE one of its known files.
    """
    path, parts = name.as_posix(), name.parts
    if path in LAYOUT_FILES or (len(parts) == 2 and parts[0] == "code" and path.endswith(".whl")):
        return True
    return (
        len(parts) == 3
        and parts[0] == EXPORTS_DIR
        and parts[1] in EXPORT_CHOICES
        and parts[2] in (*MODEL_FILES, EXPORT_FILE)
    )


def _check_space(archive: Path, dest: Path, total: int) -> None:
    """Refuse before writing when the files exceed the cap or the free space where they would go."""
    if total > MAX_EXTRACTED_BYTES:
        raise ArtifactError(f"{archive}: {total} bytes unpacked exceeds the limit of {MAX_EXTRACTED_BYTES}")
    existing = next(p for p in (dest, *dest.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if total > free:
        raise ArtifactError(f"{archive}: {total} bytes unpacked but only {free} bytes free under {existing}")


def extract_model(archive: str | Path, dest: str | Path, fileobj: IO[bytes] | None = None) -> Path:
    """Safely extract a model.tar.gz into `dest`: only the layout's files, every entry checked before writing.

    `fileobj`: the archive already open (read from its start), so what was hashed is what is extracted.
    """
    extract_files(archive, dest, _in_layout, fileobj=fileobj)
    return Path(dest)


def extract_files(
    archive: str | Path,
    dest: str | Path,
    wanted: Callable[[PurePosixPath], bool],
    what: str = "model.tar.gz",
    fileobj: IO[bytes] | None = None,
) -> list[Path]:
    """Safely extract the regular files of `archive` (or of `fileobj`, its open file) whose path `wanted` accepts.

    Every entry is checked before anything is written.
    """
    archive, dest = Path(archive), Path(dest)
    written = []
    try:
        with tarfile.open(archive, "r:*", fileobj=fileobj) as tar:
            members = tar.getmembers()
            paths = [_check_member(m, archive) for m in members]
            chosen = [(m, p) for m, p in zip(members, paths, strict=True) if m.isfile() and wanted(p)]
            _check_space(archive, dest, sum(m.size for m, _ in chosen))
            dest.mkdir(parents=True, exist_ok=True)
            for member, rel in chosen:
                target = dest.joinpath(*rel.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None  # regular files always have a payload
                with source, target.open("wb") as out:
                    shutil.copyfileobj(source, out)
                written.append(target)
    except FileNotFoundError:
        raise ArtifactError(f"{what} not found: {archive}") from None
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
        raise ArtifactError(f"{archive}: not a readable {what} ({exc})") from None
    return written


def _remove_stale_partials(root: Path) -> None:
    """Remove half-written extractions whose process (the pid in the name) is gone."""
    for partial in root.glob(".partial-*"):
        pid = partial.name.split("-")[1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(partial, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def extract_cached(archive: str | Path, root: Path | None = None) -> Path:
    """Extract `archive` once into ROOT/<sha256>, written atomically (temp folder + rename) and reused later."""
    archive = Path(archive)
    root = root or cache_root()
    try:
        f = archive.open("rb")
    except FileNotFoundError:
        raise ArtifactError(f"model archive not found: {archive}") from None
    with f:  # one open file: the bytes hashed for the key are the bytes extracted under it
        final = root / stream_sha256(f)[:32]
        if (final / METADATA_FILE).is_file():
            return final
        f.seek(0)
        _extract_into(archive, f, root, final)
    return final


def _extract_into(archive: Path, f: IO[bytes], root: Path, final: Path) -> None:
    """Extract the open archive `f` into ROOT/.partial-PID-*, then rename that to `final`."""
    _remove_stale_partials(root)
    partial = Path(tempfile.mkdtemp(prefix=f".partial-{os.getpid()}-", dir=root))
    try:
        extract_model(archive, partial, fileobj=f)
        os.replace(partial, final)
    except OSError as exc:
        if not (final / METADATA_FILE).is_file():  # not another process winning the same rename
            raise ArtifactError(f"cannot extract {archive} into {final}: {exc}; remove {final}") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)


@contextlib.contextmanager
def model_source(path: str | Path) -> Iterator[Path]:
    """A model folder, run folder or model.tar.gz as a model folder (tarballs via the extraction cache)."""
    path = Path(path)
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar")):
        yield resolve_artifact_dir(extract_cached(path))
    else:
        yield resolve_artifact_dir(path)
