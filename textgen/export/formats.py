"""`textgen export --format F`: one entry point for the three formats, and how to use
what it wrote (the lines the command prints)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textgen.core.errors import ConfigError, ExportError

FORMATS = ("saved-model", "litert", "web")
# Options only the SavedModel export has, and only the device exports.
_SAVED_MODEL_ONLY = ("xla", "max_copy", "version")
_DEVICES_ONLY = ("quantize", "node_modules")


@dataclass
class Exported:
    """What an export wrote, and the commands that use it."""

    path: Path
    size_bytes: int
    seconds: float
    usage: list[str]

    def summary(self) -> str:
        head = f"Exported {self.path} ({self.size_bytes / 1e6:.1f} MB, {self.seconds:.1f}s)"
        return "\n".join([head, *self.usage])


def export_as(export_format: str = "saved-model", **options) -> Exported:
    """Export a run in `export_format` (see `FORMATS`); `options` are the format's own
    (`saved_model.export_run`, `litert.export_litert`, `web.export_web`). An option of
    another format, given, is a ConfigError."""
    if export_format not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}; got {export_format!r}")
    devices = export_format != "saved-model"
    foreign = _SAVED_MODEL_ONLY if devices else _DEVICES_ONLY
    given = [name for name in foreign if options.get(name) not in (None, False, 0, "none")]
    if given:
        names = ", ".join(f"--{name.replace('_', '-')}" for name in given)
        where = (
            "the SavedModel export (--format saved-model)" if devices else "--format litert or web"
        )
        raise ExportError(f"{names}: only for {where}")
    drop = (*foreign, "model_name") if devices else foreign
    options = {k: v for k, v in options.items() if k not in drop}
    if export_format == "saved-model":
        return _saved_model(**options)
    return _for_devices(export_format, **options)


def _saved_model(**options) -> Exported:
    from textgen.export.saved_model import export_run

    result = export_run(**options)
    docker, curl = serving_commands(result)
    usage = ["Serve it:", f"  {docker}", "Try it:", f"  {curl}"]
    return Exported(result.path, result.size_bytes, result.seconds, usage)


def _for_devices(export_format: str, node_modules=None, **options) -> Exported:
    from textgen.export.litert import export_litert
    from textgen.export.litert_format import read_metadata
    from textgen.export.web import export_web

    if export_format == "litert":
        result = export_litert(**options)
        items = read_metadata(result.path)["item_start"]  # an item run: whole items out
        try_it = "--num-samples 5" if items else "--prompt 'ROMEO:'"
        usage = ["Try it:", f"  textgen sample --litert {result.path} {try_it}"]
    else:
        result = export_web(node_modules=node_modules, **options)
        usage = [
            "Serve it:", f"  textgen serve-web {result.path}",
            f"  (or any static server: python -m http.server -d {result.path})",
        ]  # fmt: skip
    return Exported(result.path, result.size_bytes, result.seconds, usage)


def serving_commands(result, port: int = 8501) -> tuple[str, str]:
    """The docker command that serves this export and a curl request to try it."""
    docker = (
        f"docker run --rm -p {port}:8501 "
        f"-v {result.model_base_path}/{result.model_name}:/models/{result.model_name} "
        f"-e MODEL_NAME={result.model_name} tensorflow/serving"
    )
    curl = (
        f"curl -s http://localhost:{port}/v1/models/{result.model_name}:predict "
        '-d \'{"signature_name": "generate", "instances": [{"prompt": "ROMEO:", '
        '"max_new_tokens": 200, "temperature": 0.8, "top_k": 0, "top_p": 0.95, '
        '"seed": 1}]}\''
    )
    return docker, curl
