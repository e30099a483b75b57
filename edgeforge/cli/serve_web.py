"""`edgeforge serve-web`: the browser demo page and artifact directories, over HTTP on this machine only.

URL layout (what the page in web/ expects):
    /                     the built page (web/dist: index.html + assets, ONNX Runtime's .wasm included)
    /models/index.json    the models served: name, task, labels, transformers.js-loadable variants
    /models/NAME/...      the artifact directory NAME (config.json, preprocessor_config.json, onnx/...)

Standard library only (http.server): a handful of static files for one local user needs no framework.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import socket
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from edgeforge.contract import PIPELINE_TAG, REFERENCE_VARIANT, VARIANTS
from edgeforge.errors import EdgeforgeError

#: Where web/setup.sh (vite build) writes the page in a source checkout.
DEFAULT_PAGE_DIR = Path(__file__).resolve().parents[2] / "web" / "dist"


CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".svg": "image/svg+xml",
}

# Cross-origin isolation lets onnxruntime-web use its multi-threaded WebAssembly build; everything is
# same-origin here, so the policies block nothing the page needs.
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve-web", help="serve the browser demo page and artifact directories on localhost",
        description="Serve the transformers.js demo page (built in web/dist by web/setup.sh) together with one "
        "or more artifact directories, on this machine only. Open the printed address in a browser: "
        "the model runs in the page (WebAssembly); images never leave the browser.")
    parser.add_argument("artifacts", nargs="+", metavar="ARTIFACT_DIR", help="artifact directory (from edgeforge build)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--page", type=Path, default=None, help=f"built page directory (default {DEFAULT_PAGE_DIR})")
    parser.add_argument("--no-verify", action="store_true", help="skip the sha256 check against manifest.json")
    parser.add_argument("--log-requests", action="store_true", help="print one line per request")
    parser.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    server = make_server(args.artifacts, page_dir=args.page, host=args.host, port=args.port,
                         verify=not args.no_verify, log_requests=args.log_requests)
    names = ", ".join(server.models)
    print(f"serving {names} at {server_url(server)} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def make_server(artifacts, page_dir=None, host: str = "127.0.0.1", port: int = 8000, verify: bool = True,
                log_requests: bool = False) -> ThreadingHTTPServer:
    """A ready (bound, not yet serving) server; call ``serve_forever`` on it, e.g. in a thread."""
    page_dir = check_page_dir(Path(page_dir) if page_dir else DEFAULT_PAGE_DIR)
    family = check_loopback(host)
    models = {name: Path(root).resolve() for name, root in model_names(artifacts).items()}
    index = model_index(models, verify=verify)
    handler = type("EdgeforgeWebHandler", (WebHandler,), {
        "page_dir": page_dir.resolve(), "models": models, "log_requests": log_requests,
        "index_json": json.dumps(index).encode(),
    })
    server_class = type("EdgeforgeWebServer", (ThreadingHTTPServer,), {"address_family": family, "daemon_threads": True})
    try:
        server = server_class((host, port), handler)
    except OSError as exc:
        raise EdgeforgeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    server.models = models
    return server


def server_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def check_page_dir(page_dir: Path) -> Path:
    if not (page_dir / "index.html").is_file():
        raise EdgeforgeError(f"the demo page is not built ({page_dir / 'index.html'} is missing): "
                             "run `bash web/setup.sh` (or `npm run build` in web/)")
    return page_dir


def check_loopback(host: str) -> socket.AddressFamily:
    """Only loopback addresses: the page and the models are for the person at this machine."""
    if host == "localhost":
        return socket.AF_INET
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise EdgeforgeError(f"--host {host} is not a loopback address; serve-web serves this machine only "
                             "(use 127.0.0.1, ::1 or localhost)")
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET


def model_names(artifacts) -> dict[str, Path]:
    """URL-safe, unique names from the directory names (transformers.js treats NAME as a model id)."""
    names: dict[str, Path] = {}
    for root in map(Path, artifacts):
        base = re.sub(r"-{2,}", "-", re.sub(r"[^\w.-]+", "-", root.resolve().name)).strip("-.") or "model"
        name, n = base[:90], 1
        while name in names:
            n += 1
            name = f"{base[:90]}-{n}"
        names[name] = root
    return names


def model_index(models: dict[str, Path], verify: bool = True) -> dict:
    """What /models/index.json lists: per model, its task, labels and the variants transformers.js can load."""
    from edgeforge.runtime.artifact import Artifact

    entries = []
    for name, root in models.items():
        artifact = Artifact.open(root, verify=verify)
        recorded = (artifact.manifest or {}).get("variants", {})
        variants = []
        for variant, rel in sorted(artifact.variants().items(), key=lambda item: _variant_order(item[0])):
            # transformers.js finds a dtype's file by name only: onnx/model{suffix}.onnx
            declared = VARIANTS.get(variant)
            if declared is None or declared.dtype is None or rel != declared.file or not (root / rel).is_file():
                continue
            path = artifact.variant_path(variant, verify=verify)  # refuses a modified or corrupt file
            variants.append({"variant": variant, "dtype": declared.dtype, "file": rel,
                             "bytes": path.stat().st_size,
                             "precision": recorded.get(variant, {}).get("precision", variant)})
        if not variants:
            raise EdgeforgeError(f"{root} has no ONNX variant transformers.js can load (expected {VARIANTS[REFERENCE_VARIANT].file})")
        entries.append({"name": name, "task": artifact.task, "pipeline": PIPELINE_TAG[artifact.task],
                        "id2label": {str(k): v for k, v in artifact.id2label.items()}, "variants": variants})
    return {"models": entries}


def _variant_order(variant: str) -> int:
    order = [name for name, declared in VARIANTS.items() if declared.dtype]  # the contract's order, as in the page
    return order.index(variant) if variant in order else len(order)


class WebHandler(BaseHTTPRequestHandler):
    """GET/HEAD of the page, the model index and the artifact files; nothing else, no directory listings."""

    page_dir: Path
    models: dict[str, Path]
    index_json: bytes
    log_requests: bool
    server_version = "edgeforge-serve-web"

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def _respond(self, send_body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        if path == "/models/index.json":
            self._send(HTTPStatus.OK, "application/json", self.index_json, send_body)
            return
        file = self._resolve(path)
        if file is None:
            self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n", send_body)
            return
        content_type = CONTENT_TYPES.get(file.suffix.lower(), "application/octet-stream")
        self._send(HTTPStatus.OK, content_type, file, send_body)

    def _resolve(self, path: str) -> Path | None:
        """The file a URL path names, only inside the page or a served artifact; None otherwise."""
        if path.startswith("/models/"):
            name, _, rel = path[len("/models/"):].partition("/")
            root = self.models.get(name)
        else:
            root, rel = self.page_dir, path.lstrip("/") or "index.html"
        # NUL bytes (%00) and other names the file system refuses are simply not found, whatever decodes them.
        if root is None or not rel or "\x00" in rel or any(part.startswith(".") for part in rel.split("/")):
            return None
        try:
            file = (root / rel).resolve()
            return file if file.is_file() and file.is_relative_to(root) else None
        except (OSError, ValueError, RuntimeError):
            return None

    def _send(self, status: HTTPStatus, content_type: str, body: bytes | Path, send_body: bool) -> None:
        size = body.stat().st_size if isinstance(body, Path) else len(body)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(size))
        for header, value in ISOLATION_HEADERS.items():
            self.send_header(header, value)
        self.end_headers()
        if not send_body:
            return
        try:
            if isinstance(body, Path):
                with open(body, "rb") as handle:
                    while chunk := handle.read(1 << 20):
                        self.wfile.write(chunk)
            else:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away mid-download (a reload): nothing to report

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's signature)
        if self.log_requests:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")
