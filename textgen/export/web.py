"""`textgen export --format web`: a static folder that generates text in the browser.

The LiteRT export (`textgen.export.litert`: model.tflite, vocab.json, textgen.json) plus
`index.html` and `textgen.js` (this package's `web/` assets: the sampling loop in
JavaScript) and the LiteRT.js runtime, vendored from its npm package, so the page works
offline from any static server (`textgen serve-web DIR`, `python -m http.server`, GitHub
Pages). No server-side code.
"""

from __future__ import annotations

import functools
import os
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from textgen.core.errors import ExportError
from textgen.export.litert import LiteRTExport, export_litert
from textgen.runs.folder import DEFAULT_ROOT, RunFolder

ASSETS = Path(__file__).parent / "web"
PAGE_FILES = ("index.html", "textgen.js", "sentencepiece.js", "inclusion.js", "healing.js")
RUNTIME_PACKAGE = "@litertjs/core"
# What the page loads from the npm packages: LiteRT.js (an ES module), its helper module,
# and the WebAssembly runtime in its two CPU builds (relaxed SIMD, and without it).
RUNTIME_FILES = {
    "litert/core/index.js": "@litertjs/core/dist/index.js",
    "litert/core/package.json": "@litertjs/core/package.json",
    "litert/wasm-utils/index.js": "@litertjs/wasm-utils/dist/index.js",
    **{
        f"litert/wasm/{name}{suffix}": f"@litertjs/core/wasm/{name}{suffix}"
        for name in ("litert_wasm_internal", "litert_wasm_compat_internal")
        for suffix in (".js", ".wasm")
    },
}


def find_runtime(node_modules: str | os.PathLike | None = None) -> Path:
    """The node_modules folder that holds LiteRT.js: `node_modules` if given, else
    $TEXTGEN_NODE_MODULES, this package's web/node_modules, or ./node_modules."""
    if node_modules:  # given: that folder or nothing
        candidates = [node_modules]
    else:
        candidates = [os.environ.get("TEXTGEN_NODE_MODULES")]
        candidates += [ASSETS / "node_modules", Path.cwd() / "node_modules"]
    for candidate in candidates:
        if candidate and all((Path(candidate) / f).is_file() for f in RUNTIME_FILES.values()):
            return Path(candidate)
    raise ExportError(
        f"the web export vendors LiteRT.js ({RUNTIME_PACKAGE} from npm), which is not "
        f"installed: run `npm ci --prefix {ASSETS}` (or give --node-modules DIR)"
    )


def export_web(
    run_dir: str | os.PathLike | None = None,
    root: str | os.PathLike = DEFAULT_ROOT,
    export_dir: str | os.PathLike | None = None,
    node_modules: str | os.PathLike | None = None,
    **options,
) -> LiteRTExport:
    """Write EXPORT_DIR (default RUN/export/web): the LiteRT export, the page, the runtime."""
    folder = RunFolder.find(run_dir, root)
    runtime = find_runtime(node_modules)
    target = Path(export_dir) if export_dir else folder.export_dir / "web"
    files = {name: ASSETS / name for name in PAGE_FILES}
    files.update({name: runtime / source for name, source in RUNTIME_FILES.items()})
    return export_litert(run_dir, root, target, extra_files=files, **options)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def web_server(folder: str | os.PathLike, port: int = 0, quiet: bool = True):
    """An HTTP server of `folder` on 127.0.0.1:`port` (0: a free one; `server_port` says
    which), ready for `serve_forever`. `quiet`: no line per request."""
    handler_class = _QuietHandler if quiet else SimpleHTTPRequestHandler
    handler = functools.partial(handler_class, directory=str(folder))
    try:
        return ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as err:
        raise ExportError(f"cannot listen on port {port}: {err.strerror}") from None


def serve(export_dir: str | os.PathLike, port: int = 8000, announce=print) -> None:
    """Serve a web export on http://localhost:PORT/ until Ctrl-C."""
    if not (Path(export_dir) / "index.html").is_file():
        raise ExportError(f"{export_dir} has no index.html; is it a web export?")
    server = web_server(export_dir, port, quiet=False)
    announce(f"Serving {export_dir} at http://localhost:{port}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
