"""What an endpoint or a transform job serves: a model.tar.gz in S3, packaged here from a local model if need be."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from dogclf.sagemaker.s3 import parse_s3_uri
from dogclf.sagemaker.session import Connection, aws_errors, make_client

log = logging.getLogger("dogclf")


def serving_env(export: str | None) -> dict[str, str]:
    """The model's environment: DOGCLF_BACKEND names the export to serve, when one is chosen."""
    return {"DOGCLF_BACKEND": export} if export else {}


def ship_model(conn: Connection, model: str, export: str | None = None, wheel: Path | None = None) -> str | None:
    """The S3 model data packaged and uploaded from a local run or model folder; None for an s3:// URI.

    The package is `dogclf package --export`'s (code, requirements and the export inside it, so it is served
    as is); it goes under the prefix's models/ by content, so shipping the same model twice reuses one key.
    """
    if model.startswith("s3://"):
        parse_s3_uri(model)
        return None
    from dogclf.fsutil import file_sha256
    from dogclf.serve.package import package_model

    with tempfile.TemporaryDirectory(prefix="dogclf-ship-") as tmp:
        archive = package_model(model, Path(tmp) / "model.tar.gz", wheel=wheel, export=export)
        digest = file_sha256(archive)[:16]
        uri = conn.s3_uri("models", f"{Path(model).resolve().name}-{digest}", "model.tar.gz")
        bucket, key = parse_s3_uri(uri)
        with aws_errors(f"uploading {archive.name} to {uri}"):
            make_client(conn.endpoint_url, conn.region, conn.session.boto_session).upload_file(
                str(archive), bucket, key
            )
    log.info("packaged %s -> %s%s", model, uri, f" (export {export})" if export else "")
    return uri
