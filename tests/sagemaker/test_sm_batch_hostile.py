"""Batch Transform on hostile input: .out files that lie about numbers, sizes and widths, and model data that is
not a model.tar.gz. Real files on disk, real boto3 against moto, the CLI in a subprocess."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import tarfile

import pytest
from sm_moto import BUCKET, REGION, ROLE, aws_env, conn, moto_url  # noqa: F401

import dogclf.sagemaker as sm
from conftest import run_cli
from dogclf.errors import DogclfError
from dogclf.prediction_format import MAX_TOPK
from dogclf.sagemaker.batch_output import MAX_OUT_BYTES


def _out(*probabilities: str, labels: list[str] | None = None) -> bytes:
    labels = labels or [f"breed{i}" for i in range(len(probabilities))]
    pairs = zip(labels, probabilities, strict=True)
    items = ", ".join(f'{{"label": {json.dumps(lbl)}, "probability": {p}}}' for lbl, p in pairs)
    return f'{{"model_version": "1", "predictions": [[{items}]]}}'.encode()


@pytest.mark.parametrize(
    ("number", "why"),
    [
        ("9" * 5000, "a number with more digits than can be read"),
        ("1" + "0" * 400, r"predictions\[0\]\[1\]\.probability is 1000000000.*, not a number from 0 to 1"),
        ("1e400", r"predictions\[0\]\[1\]\.probability is inf, not a number from 0 to 1"),
        ("NaN", r"predictions\[0\]\[1\]\.probability is nan, not a number"),
        ("Infinity", r"predictions\[0\]\[1\]\.probability is inf, not a number"),
        ("-Infinity", r"predictions\[0\]\[1\]\.probability is -inf, not a number"),
        ("-0.5", r"predictions\[0\]\[1\]\.probability is -0\.5, not a number"),
        ("1.5", r"predictions\[0\]\[1\]\.probability is 1\.5, not a number"),
    ],
)
def test_probabilities_outside_0_1_are_refused_naming_file_and_field(number, why):
    with pytest.raises(sm.SageMakerError, match=f"^out/x.jpg.out: not a dogclf batch output \\({why}"):
        sm.parse_out(_out("0.5", number), "out/x.jpg.out", "x.jpg")


@pytest.mark.parametrize("number", ["0", "1", "0.5", "1e-30", "0E+0"])
def test_probabilities_from_0_to_1_are_read(number):
    assert sm.parse_out(_out("0.5", number), "x.out", "x.jpg").probabilities[1] == float(number)


def test_predictions_per_image_are_bounded_by_the_top_k_limit():
    row = sm.parse_out(_out(*["0.001"] * MAX_TOPK), "x.out", "x.jpg")
    assert len(row.labels) == MAX_TOPK
    with pytest.raises(sm.SageMakerError, match=f"^x.out: not a dogclf batch output \\({MAX_TOPK + 1} predictions"):
        sm.parse_out(_out(*["0.001"] * (MAX_TOPK + 1)), "x.out", "x.jpg")


def test_cli_hostile_out_files_are_one_line_errors_and_write_no_csv(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.jpg.out").write_bytes(_out("0.9", "0.1"))
    csv_path = tmp_path / "p.csv"
    r = run_cli("sagemaker", "batch-results", str(out), "-o", str(csv_path))
    assert r.returncode == 0 and csv_path.is_file(), r.stderr
    csv_path.unlink()
    cases = {
        "b.jpg.out": (_out("0.5", "9" * 5000), "not a dogclf batch output (a number with more digits"),
        "c.jpg.out": (_out(*["0.00005"] * 20_000), "not a dogclf batch output (20000 predictions, more than the top"),
    }
    for name, (body, message) in cases.items():
        (out / name).write_bytes(body)
        r = run_cli("sagemaker", "batch-results", str(out), "-o", str(csv_path))
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.startswith(f"dogclf: error: {out}/{name}: {message}") and r.stderr.count("\n") == 1
        assert not csv_path.exists()
        (out / name).unlink()


def test_cli_batch_results_csv_escapes_hostile_labels(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "=a.jpg.out").write_bytes(_out("0.75", "0.25", labels=["=cmd|' /C calc'!A0", "beagle"]))
    r = run_cli("sagemaker", "batch-results", str(out), "-o", str(tmp_path / "p.csv"))
    assert r.returncode == 0, r.stderr
    _, row = list(csv.reader(io.StringIO((tmp_path / "p.csv").read_text())))
    assert row == ["'=a.jpg", "'=cmd|' /C calc'!A0", "0.750000", "beagle", "0.250000", ""]


def test_local_out_files_are_bounded_and_not_read_through_links(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    body = _out("1")
    (out / "a.jpg.out").write_bytes(body + b" " * (MAX_OUT_BYTES - len(body)))  # at the limit: read
    assert [r.labels for r in sm.batch_results(str(out))] == [["breed0"]]
    with (out / "a.jpg.out").open("ab") as f:
        f.write(b" ")
    with pytest.raises(DogclfError, match=f"^batch output {out}/a.jpg.out is larger than 1 MiB"):
        sm.batch_results(str(out))
    (out / "a.jpg.out").write_bytes(body)
    (tmp_path / "secret").write_bytes(body)
    os.symlink(tmp_path / "secret", out / "b.jpg.out")
    with pytest.raises(DogclfError, match=f"^batch output {out}/b.jpg.out is a symbolic link"):
        sm.batch_results(str(out))


def test_s3_out_objects_are_bounded(conn):  # noqa: F811
    s3 = conn.session.boto_session.client("s3", endpoint_url=conn.endpoint_url)
    body = _out("1")
    s3.put_object(Bucket=BUCKET, Key="big/out/a.jpg.out", Body=body + b" " * (MAX_OUT_BYTES - len(body)))
    assert [r.path for r in sm.batch_results(f"s3://{BUCKET}/big/out/", client=s3)] == ["a.jpg"]
    s3.put_object(Bucket=BUCKET, Key="big/out/b.jpg.out", Body=body + b" " * (MAX_OUT_BYTES + 1 - len(body)))
    with pytest.raises(sm.SageMakerError, match=f"^batch output s3://{BUCKET}/big/out/b.jpg.out is larger than 1 MiB"):
        sm.batch_results(f"s3://{BUCKET}/big/out/", client=s3)


def _gzip_of(data: bytes) -> bytes:
    return gzip.compress(data)


def _tar_gz() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("metadata.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    return buf.getvalue()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b"PK\x03\x04 a zip file",
            "is not gzip-compressed (it starts b'PK\\x03\\x04 a z'); expected a gzip-compressed tar",
        ),
        (_gzip_of(b"just text, not a tar archive " * 40), "is gzip but not a tar archive ("),
        (b"\x1f\x8b\x08 truncated", "is gzip but not a tar archive ("),
    ],
    ids=["zip", "gzip-text", "broken-gzip"],
)
def test_model_data_that_is_not_a_tar_gz_is_refused_before_any_sagemaker_call(aws_env, conn, body, message):  # noqa: F811
    s3 = conn.session.boto_session.client("s3", endpoint_url=conn.endpoint_url)
    key = "bad/model.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    uri = f"s3://{BUCKET}/{key}"
    common = ["--role", ROLE, "--bucket", BUCKET, "--region", REGION, "--endpoint-url", aws_env]
    models_before = conn.session.sagemaker_client.list_models()["Models"]
    for args in (
        ("batch-predict", uri, "--input", f"s3://{BUCKET}/in/", "--output", f"s3://{BUCKET}/o/", "--job-name", "bad"),
        ("deploy", uri, "--endpoint-name", "bad"),
    ):
        r = run_cli("sagemaker", *args, *common)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.splitlines()[-1].startswith(f"dogclf: error: model data {uri} {message}"), r.stderr
    assert conn.session.sagemaker_client.list_models()["Models"] == models_before


def test_a_tar_gz_passes_the_archive_check(conn):  # noqa: F811
    from dogclf.sagemaker.endpoints import check_model_archive

    s3 = conn.session.boto_session.client("s3", endpoint_url=conn.endpoint_url)
    s3.put_object(Bucket=BUCKET, Key="good/model.tar.gz", Body=_tar_gz())
    check_model_archive(conn, f"s3://{BUCKET}/good/model.tar.gz")  # raises on anything else (cases above)
    with pytest.raises(sm.SageMakerError, match="^reading the model data s3://.*/none.tar.gz failed: NoSuchKey"):
        check_model_archive(conn, f"s3://{BUCKET}/good/none.tar.gz")
