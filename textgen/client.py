"""A client for a textgen model served by TensorFlow Serving's REST predict API."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence

from textgen.errors import ServerError


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


def generate_remote(
    url: str,
    prompts: Sequence[str],
    max_new_tokens: int | None = None,
    temperature: float | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
) -> list[str]:
    """Completions from the `generate` signature; unset settings use the export's defaults.

    Rows with the same prompt get seeds seed, seed+1, ... so that several samples differ.
    """
    instances = [
        {
            "prompt": prompt,
            "max_new_tokens": -1 if max_new_tokens is None else max_new_tokens,
            "temperature": -1.0 if temperature is None else temperature,
            "top_k": -1 if top_k is None else top_k,
            "top_p": -1.0 if top_p is None else top_p,
            "seed": seed + row,
        }
        for row, prompt in enumerate(prompts)
    ]
    answer = predict(url, {"signature_name": "generate", "instances": instances})
    try:
        return [row["completion"] for row in answer["predictions"]]
    except (KeyError, TypeError):
        raise ServerError(f"unexpected answer from {url}: {str(answer)[:200]}") from None
