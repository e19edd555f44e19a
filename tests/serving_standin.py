"""A loopback stand-in for TensorFlow Serving's REST predict API, for tests only.

The real `tensorflow_model_server` cannot be installed on our machines, so this small
HTTP server answers the documented protocol (POST /v1/models/NAME:predict with a
"signature_name" and either row-format "instances" or columnar "inputs") by running the
exported SavedModel's signatures with TensorFlow, the way the model server does. As the
model server does, a value of an input or output whose name ends in `_bytes` travels as
{"b64": base64 text}.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import tensorflow as tf


def _from_json(value):
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def _b64(value):
    if isinstance(value, list):
        return [_b64(v) for v in value]
    return {"b64": base64.b64encode(value).decode("ascii")}


def _jsonable(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


class ServingStandIn:
    """Serves one SavedModel under /v1/models/NAME on a free loopback port."""

    def __init__(self, export_path: str, model_name: str = "textgen"):
        self.model = tf.saved_model.load(export_path)
        self.model_name = model_name
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/models/{model_name}"
        self.lock = threading.Lock()

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def predict(self, body: dict) -> dict:
        signature = self.model.signatures[body.get("signature_name", "serving_default")]
        specs = signature.structured_input_signature[1]
        if "instances" in body:
            rows = body["instances"]
            if not isinstance(rows[0], dict):  # a signature with one input may omit names
                (only,) = specs
                rows = [{only: row} for row in rows]
            columns = {name: [row[name] for row in rows] for name in specs}
        else:
            columns = body["inputs"]
        missing = set(specs) - set(columns)
        if missing:
            raise ValueError(f"Missing input(s) for signature: {sorted(missing)}")
        tensors = {
            name: tf.constant(_from_json(columns[name]), spec.dtype) for name, spec in specs.items()
        }
        with self.lock:
            answer = signature(**tensors)
        outputs = {
            k: _b64(v.numpy().tolist()) if k.endswith("_bytes") else _jsonable(v.numpy())
            for k, v in answer.items()
        }
        if "instances" in body:
            count = len(next(iter(outputs.values())))
            return {"predictions": [{k: v[i] for k, v in outputs.items()} for i in range(count)]}
        return {"outputs": outputs}

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                expected = f"/v1/models/{standin.model_name}:predict"
                if self.path != expected:
                    return self._send(404, {"error": f"Servable not found for {self.path}"})
                try:
                    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                    answer = standin.predict(body)
                except Exception as err:  # the model server answers errors as JSON too
                    return self._send(400, {"error": str(err)})
                self._send(200, answer)

            def _send(self, status, payload):
                data = json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler
