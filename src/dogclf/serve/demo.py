"""The quickstart's last step: start the local endpoint, send one image, print the top-k, stop it."""

from __future__ import annotations

from pathlib import Path

from dogclf.serve.client import EndpointClient
from dogclf.serve.local import LocalEndpoint


def query_local_endpoint(model_dir: str | Path, image_path: str | Path, topk: int = 3) -> list[tuple[str, float]]:
    """Serve `model_dir` in a subprocess on a free port, POST the image, SIGTERM the server; top-k breeds."""
    image = Path(image_path).read_bytes()
    with LocalEndpoint(model_dir) as endpoint, EndpointClient(endpoint.url) as client:
        prediction = client.predict_bytes(image, topk=topk)[0]
    return list(zip(prediction.labels, prediction.probabilities, strict=True))
