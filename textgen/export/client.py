"""A client for a textgen model served by TensorFlow Serving's REST predict API (no
TensorFlow needed)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from textgen.core.errors import ServerError
from textgen.generate.sampler import Beam, Sampler, beams_of
from textgen.generate.settings import SamplingSettings


def predict(url: str, body: dict, timeout: float = 120.0) -> dict:
    """POST `body` to `URL:predict` (URL as in http://host:8501/v1/models/NAME)."""
    endpoint = url.rstrip("/") + ":predict"
    request = urllib.request.Request(
        endpoint,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as err:
        answer = _error_body(err)
        if answer is None:
            raise ServerError(f"{endpoint} answered HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise ServerError(f"cannot reach TF Serving at {endpoint}: {reason}") from None
    except ValueError:
        raise ServerError(f"{endpoint} did not answer with JSON") from None
    if "error" in answer:
        raise ServerError(f"TF Serving at {endpoint} answered: {answer['error']}")
    return answer


def _error_body(err: urllib.error.HTTPError) -> dict | None:
    try:
        body = json.loads(err.read().decode("utf-8"))
    except (ValueError, OSError):
        return None
    return body if isinstance(body, dict) and "error" in body else None


class RemoteSampler(Sampler):
    """Generates text through a textgen export served by TF Serving at `url` (as in
    http://host:8501/v1/models/NAME), by its `sample` signature: unset settings are the
    export's defaults, and row i draws with (seed, stream i), as in process."""

    unsupported = {
        "max_copy": "--max-copy is built into an export, not asked of a server: "
        "export the run with --max-copy N",
        "stop": "stop strings are built into an export, not asked of a server: "
        "export the run with --stop",
    }

    def __init__(self, url: str):
        self.url = url

    def _draw(self, prompts, streams, settings: SamplingSettings) -> list[str]:
        fields = settings.request_fields()
        instances = [
            {"prompt": prompt, **fields, "seed": settings.seed, "stream": stream,
             "label": settings.label or ""}
            for prompt, stream in zip(prompts, streams)
        ]  # fmt: skip
        answer = predict(self.url, {"signature_name": "sample", "instances": instances})
        try:
            return [row["completion"] for row in answer["predictions"]]
        except (KeyError, TypeError):
            raise ServerError(f"unexpected answer from {self.url}: {str(answer)[:200]}") from None

    def _search(self, prompts, settings: SamplingSettings) -> list[list[Beam]]:
        fields = settings.request_fields()
        controls = ("max_new_tokens", "repetition_penalty", "repetition_window", "no_repeat_ngram")
        instances = [
            {"prompt": prompt, **{name: fields[name] for name in controls},
             "beams": settings.beams, "label": settings.label or ""}
            for prompt in prompts
        ]  # fmt: skip
        answer = predict(self.url, {"signature_name": "beam_search", "instances": instances})
        try:
            rows = answer["predictions"]
            return beams_of(*([row[name] for row in rows] for name in Beam._fields))
        except (KeyError, TypeError):
            raise ServerError(f"unexpected answer from {self.url}: {str(answer)[:200]}") from None
