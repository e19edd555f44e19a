"""A client for a textgen model served by TensorFlow Serving's REST predict API."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence

from textgen.core.config import MAX_BATCH
from textgen.core.errors import ConfigError, ServerError


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
    repetition_penalty: float | None = None,
    repetition_window: int | None = None,
    no_repeat_ngram: int | None = None,
    max_copy: int = 0,
    label: str | None = None,
) -> list[str]:
    """Completions from the `generate` signature (`generate_controlled` when a repetition
    control is given, `generate_labelled` with a label: an item run's export); unset
    settings use the export's defaults.

    Rows with the same prompt get seeds seed, seed+1, ... so that several samples differ.
    The copy guard is part of an export (`textgen export --max-copy`), not a request.
    """
    if max_copy:
        raise ConfigError(
            "--max-copy is built into an export, not asked of a server: "
            "export the run with --max-copy N"
        )
    unset = lambda value, default=-1: default if value is None else value  # noqa: E731
    controls = (repetition_penalty, repetition_window, no_repeat_ngram)
    instances = [
        {
            "prompt": prompt,
            "max_new_tokens": unset(max_new_tokens),
            "temperature": unset(temperature, -1.0),
            "top_k": unset(top_k),
            "top_p": unset(top_p, -1.0),
            "seed": seed + row,
        }
        for row, prompt in enumerate(prompts)
    ]
    signature = "generate"
    if label or any(value is not None for value in controls):
        signature = "generate_labelled" if label else "generate_controlled"
        for instance in instances:
            instance["repetition_penalty"] = unset(repetition_penalty, -1.0)
            instance["repetition_window"] = unset(repetition_window)
            instance["no_repeat_ngram"] = unset(no_repeat_ngram)
            if label:
                instance["label"] = label
    completions = []
    for start in range(0, len(instances), MAX_BATCH):  # the export's cap per request
        body = {"signature_name": signature, "instances": instances[start : start + MAX_BATCH]}
        answer = predict(url, body)
        try:
            completions += [row["completion"] for row in answer["predictions"]]
        except (KeyError, TypeError):
            raise ServerError(f"unexpected answer from {url}: {str(answer)[:200]}") from None
    return completions
