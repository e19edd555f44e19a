"""`textgen export`: a run's generator in a format that runs without textgen, one module
per format: `saved_model` (TensorFlow Serving; the default), `litert` (a LiteRT/TFLite
file for phones and devices) and `web` (a static page that generates in the browser).
Each takes the run's generator or its step, and the run's defaults.
"""

from textgen.export.saved_model import (
    ExportResult,
    ServingModule,
    export_run,
    next_version,
    serving_commands,
)

__all__ = ["ExportResult", "ServingModule", "export_run", "next_version", "serving_commands"]
