"""Prediction's one JSON form: what the server writes, the HTTP client and the CLI read back; others refused."""

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import run_cli
from dogclf.prediction_format import (
    Prediction,
    PredictionFormatError,
    predictions_from_response,
    response_document,
)

PREDICTIONS = [
    Prediction(["beagle", "pug"], [0.75, 0.25], [3, 7]),
    Prediction(["pug", "beagle"], [0.5, 0.5], [7, 3], unknown=True),
]


def test_an_answer_reads_back_as_the_predictions_it_was_made_of():
    doc = json.loads(json.dumps(response_document(PREDICTIONS, "run-1", 1.5)))
    assert predictions_from_response(doc) == PREDICTIONS
    assert doc["labels"] == ["beagle", "unknown"] and doc["unknown"] == [False, True]
    assert doc["model_version"] == "run-1" and doc["temperature"] == 1.5


def test_one_image_dict_holds_the_answer_and_the_ranked_classes():
    assert PREDICTIONS[1].to_dict() == {
        "label": "unknown",
        "unknown": True,
        "predictions": [
            {"label": "pug", "probability": 0.5, "index": 7},
            {"label": "beagle", "probability": 0.5, "index": 3},
        ],
    }


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"hello": 1}, "no 'predictions' list"),
        ([1, 2], "no 'predictions' list"),
        ({"predictions": [[{"label": "pug"}]]}, "not ranked label lists"),
        ({"predictions": [[{"label": "pug", "probability": 1, "index": 0}]], "unknown": [True, False]}, "not ranked"),
    ],
)
def test_anything_else_is_refused_in_one_line(doc, message):
    with pytest.raises(PredictionFormatError, match=message):
        predictions_from_response(doc)


def test_the_http_client_loads_no_torch():
    code = "import sys, dogclf.serve.client; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False", out.stderr


class _NotDogclf(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"hello": "world"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_predict_against_a_server_that_is_not_dogclf_is_one_line(tmp_path):
    image = tmp_path / "x.jpg"
    image.write_bytes(b"x")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotDogclf)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        out = run_cli("predict", "--endpoint", f"http://127.0.0.1:{server.server_port}", str(image))
    finally:
        server.shutdown()
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("dogclf: error: ") and "answered something else than dogclf's JSON" in out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
