"""A client for a textgen model served by TensorFlow Serving's REST predict API (no
TensorFlow needed)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import NamedTuple

from textgen.core.errors import ServerError
from textgen.generate.sampler import Beam, Sampler, beams_of
from textgen.generate.settings import CONSTRAINTS, CONTROLS, SamplingSettings


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


# Tokens a streamed answer asks the server for per request.
CHUNK_TOKENS = 32


class Chunk(NamedTuple):
    """One answer of the export's `continue` signature."""

    completion: str  # text to show now
    pending: str  # text held back (it may start a stop string): show it if you stop here
    state: bytes  # hand it back to continue
    num_tokens: int
    done: bool  # the text has its tokens, or a stop string or the checks ended it


class RemoteSampler(Sampler):
    """Generates text through a textgen export served by TF Serving at `url` (as in
    http://host:8501/v1/models/NAME), by its `sample` signature: unset settings are the
    export's defaults, and row i draws with (seed, stream i), as in process. `stream`
    asks for `CHUNK_TOKENS` at a time through the `continue` signature, handing the
    generation's state back with each request: the same text, as it is drawn."""

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
        signature = "sample"  # (exports from before label guidance have no sample_guided)
        if settings.label_strength is not None:
            signature = "sample_guided"
            for instance in instances:
                instance["label_strength"] = settings.label_strength
        answer = predict(self.url, {"signature_name": signature, "instances": instances})
        try:
            return [row["completion"] for row in answer["predictions"]]
        except (KeyError, TypeError):
            raise ServerError(f"unexpected answer from {self.url}: {str(answer)[:200]}") from None

    def _search(self, prompts, settings: SamplingSettings) -> list[list[Beam]]:
        fields = settings.request_fields()
        controls = ("max_new_tokens", *CONTROLS, *CONSTRAINTS)
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

    def continue_text(
        self, text: str, state: bytes, settings: SamplingSettings, stream: int = 0,
        chunk_tokens: int = CHUNK_TOKENS,
    ) -> Chunk:  # fmt: skip
        """One chunk: `text` read into `state` (b"": `text` starts a new one), then up to
        `chunk_tokens` of the settings' max_new_tokens drawn (see the export's `continue`,
        which takes no included texts: `settings.include` is not sent)."""
        fields = settings.request_fields()
        del fields["include"]
        instance = {
            "text": text, "state_bytes": {"b64": base64.b64encode(state).decode("ascii")},
            **fields, "chunk_tokens": chunk_tokens, "seed": settings.seed, "stream": stream,
            "label": settings.label or "",
        }  # fmt: skip
        signature = "continue"  # (exports from before label guidance have no continue_guided)
        if settings.label_strength is not None:
            signature = "continue_guided"
            instance["label_strength"] = settings.label_strength
        answer = predict(self.url, {"signature_name": signature, "instances": [instance]})
        try:
            row = answer["predictions"][0]
            state = base64.b64decode(row["state_bytes"]["b64"])
            return Chunk(row["completion"], row["pending"], state, row["num_tokens"], row["done"])
        except (KeyError, TypeError, IndexError, ValueError):
            raise ServerError(f"unexpected answer from {self.url}: {str(answer)[:200]}") from None

    def session(self):
        """A co-writing session through the server (`remote_session.RemoteSession`)."""
        from textgen.export.remote_session import RemoteSession

        return RemoteSession(self)

    def _stream(self, prompt: str, settings: SamplingSettings) -> Iterator[str]:
        if settings.include:  # the `continue` signature takes none: the text at once
            yield from self._draw([prompt], [0], settings)
            return
        try:
            chunk = self.continue_text(prompt, b"", settings)
        except ServerError as err:  # an export from before the `continue` signature
            if "continue" not in str(err):
                raise
            yield from self._draw([prompt], [0], settings)
            return
        while True:
            if chunk.completion:
                yield chunk.completion
            if chunk.done:
                break
            chunk = self.continue_text("", chunk.state, settings)
        if chunk.pending:
            yield chunk.pending
