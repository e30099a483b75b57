"""The demo page in a real browser, and `edgeforge serve-web` that serves it.

Headless Chromium (Debian's /usr/bin/chromium; Playwright downloads no browser) driven by web/browser/run.mjs
opens the page built from web/ and served by serve-web on a free localhost port, picks a synthetic face,
reads the mask, the legend and the timings for every precision the artifact has, and takes a screenshot.
Any request leaving the page's origin is refused and reported: the page needs no CDN.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from statistics import median

import numpy as np
import pytest
from test_web_node import (
    NODE,
    WEB,
    WEB_MODELS,
    decode_label_map,
    minimum_agreement,
    model_input_size,
    require_web_install,
    web_artifacts_for,
    write_samples,
)

from edgeforge.errors import EdgeforgeError

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
REPORTS = Path(__file__).resolve().parents[1] / "reports" / "browser"
#: transformers.js probes for a tokenizer when it builds a processor; vision artifacts have none.
OPTIONAL_FILES = ("tokenizer_config.json",)
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed: the browser test needs Node.js >= 20.19 "
                                "and `bash web/setup.sh`")


@pytest.fixture(scope="module")
def artifacts(request):
    return web_artifacts_for(request)


@pytest.fixture(scope="module")
def built_page(tmp_path_factory):
    """The page built from the current web/ sources (not a possibly stale web/dist)."""
    require_web_install()
    out = tmp_path_factory.mktemp("page") / "dist"
    vite = WEB / "node_modules" / "vite" / "bin" / "vite.js"
    result = subprocess.run([NODE, str(vite), "build", "--outDir", str(out), "--emptyOutDir", "--logLevel", "warn"],
                            capture_output=True, text=True, timeout=300, cwd=WEB)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def serving(server):
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def page_url(artifacts, built_page):
    from edgeforge.cli.serve_web import make_server, server_url

    server = make_server([artifacts[name] for name in WEB_MODELS], page_dir=built_page, port=0)
    thread = serving(server)
    yield server_url(server)
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def drive_page(url: str, model: str, image: Path, out: Path, dtypes=None, repeats: int = 3, screenshot=None) -> dict:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: run `bash web/setup.sh` (Debian's chromium) or set CHROMIUM=/path")
    command = [NODE, str(WEB / "browser" / "run.mjs"), "--url", url, "--model", model, "--image", str(image),
               "--repeats", str(repeats), "--out", str(out), "--chromium", CHROMIUM]
    if dtypes:
        command += ["--dtypes", ",".join(dtypes)]
    if screenshot:
        command += ["--screenshot", str(screenshot)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=WEB)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["blocked"] == [], f"the page tried to leave localhost: {report['blocked']}"
    unexpected = [u for u in report["not_found"] if not u.endswith(OPTIONAL_FILES)]
    assert unexpected == [], f"the page asked for files the server does not have: {unexpected}"
    errors = [e for e in report["console_errors"] if "404" not in e]  # the optional probes above
    assert errors == [], errors
    return report


def timed_median(result: dict, key: str = "inferTimes") -> float:
    """Median time without the first run (it includes one-time WebAssembly warm-up)."""
    times = result[key]
    return median(times[1:] if len(times) > 1 else times)


# --- the page in Chromium ----------------------------------------------------------------------------------
@needs_node
def test_face_page_matches_python_runtime_for_every_precision(page_url, artifacts, tmp_path, capsys):
    from PIL import Image

    from edgeforge.cli.serve_web import model_index
    from edgeforge.runtime import load

    artifact = artifacts["face-parsing"]
    width, height = model_input_size(artifact)
    (face,) = write_samples("faces", (4,), width, tmp_path)
    shot = tmp_path / "screenshot.png"
    report = drive_page(page_url, "face-parsing", face, tmp_path / "face.json", screenshot=shot)

    (entry,) = model_index({"face-parsing": artifact})["models"]
    assert report["offered"] == [v["dtype"] for v in entry["variants"]]
    assert [r["dtype"] for r in report["results"]] == report["offered"]
    rows = []
    for result in report["results"]:
        model = load(artifact, variant=result["variant"])
        expected = model.predict(face)
        got = decode_label_map(result)
        assert result["kind"] == "segmentation" and got.shape == (height, width)
        agreement = float((got == expected.label_map).mean())
        rows.append(f"{result['variant']:9s} {agreement:9.4%} {timed_median(result):9.0f} ms "
                    f"{timed_median(result, 'sessionTimes'):9.0f} ms {result['loadMs']:9.0f} ms")
        assert agreement >= minimum_agreement(result["variant"]), rows[-1]
        # The legend a person reads: every class present, with its share of the pixels.
        shown = {row["label"]: float(row["value"].rstrip(" %")) for row in result["legend"]}
        shares = {label: 100 * share for label, share in expected.pixel_shares().items()}
        assert set(shown) == set(shares) or agreement < 1.0, (shown, shares)
        for label in set(shown) & set(shares):
            assert shown[label] == pytest.approx(shares[label], abs=0.1 + 100 * (1 - agreement))
        # The picture a person sees: the face with the mask blended over it, as `edgeforge run` draws it.
        shown_rgb = np.frombuffer(base64.b64decode(result["canvas_rgba"]), np.uint8).reshape(height, width, 4)[..., :3]
        python_rgb = np.asarray(expected.overlay(Image.open(face).convert("RGB")))
        same_label = got == expected.label_map
        assert np.abs(shown_rgb.astype(int) - python_rgb)[same_label].max() <= 1  # rounding only
        colours = {row["label"]: row["colour"] for row in result["legend"]}
        assert colours == {label: "rgb({}, {}, {})".format(*rgb)  # the colours of `edgeforge run` overlays
                           for label, rgb in expected.legend().items() if label in colours}

    with Image.open(shot) as image:
        assert image.width == 1280 and image.height >= 700
    REPORTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, REPORTS / "screenshot.png")
    (REPORTS / "timings.json").write_text(json.dumps({
        "chromium": report["chromium"], "runtime": report["results"][0]["runtime"], "image": f"{width}x{height}",
        "median_pipeline_ms": {r["variant"]: round(timed_median(r), 1) for r in report["results"]},
        "median_model_ms": {r["variant"]: round(timed_median(r, "sessionTimes"), 1) for r in report["results"]},
        "model_load_ms": {r["variant"]: round(r["loadMs"], 1) for r in report["results"]},
    }, indent=2) + "\n")
    with capsys.disabled():
        print(f"\nface-parsing in Chromium {report['chromium']} ({report['results'][0]['runtime']}), "
              f"{width}x{height} face, page ready in {report['page_ready_ms']:.0f} ms:")
        print(f"  {'variant':9s} {'agreement':>9s} {'pipeline':>12s} {'model':>12s} {'load':>12s}   (medians)")
        print("\n".join(f"  {row}" for row in rows))
        print(f"  screenshot: {shot} (copied to {REPORTS / 'screenshot.png'})")


@needs_node
def test_emotion_page_shows_scores_with_the_python_top1(page_url, artifacts, tmp_path):
    from edgeforge.runtime import load

    artifact = artifacts["facial-emotions"]
    (image,) = write_samples("expressions", (5,), model_input_size(artifact)[0], tmp_path)
    report = drive_page(page_url, "facial-emotions", image, tmp_path / "cls.json", dtypes=["fp32"], repeats=1)
    (result,) = report["results"]
    expected = load(artifact).predict(image)
    assert result["kind"] == "classification"
    scores = {s["label"]: s["score"] for s in result["scores"]}
    assert max(scores, key=scores.get) == expected.label
    assert max(abs(scores[k] - v) for k, v in expected.scores().items()) < 1e-4
    assert [row["label"] for row in result["legend"]] == list(expected.scores())  # bars, highest first


# --- serve-web ---------------------------------------------------------------------------------------------
@pytest.fixture()
def tiny_page(tmp_path):
    page = tmp_path / "page"
    (page / "assets").mkdir(parents=True)
    (page / "index.html").write_text("<!doctype html><title>t</title>")
    (page / "assets" / "app.mjs").write_text("export {};")
    return page


def get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), b""


def test_serve_web_serves_page_index_and_artifact_files_only(artifacts, tiny_page):
    from edgeforge.cli.serve_web import make_server, server_url

    server = make_server([artifacts["face-parsing"]], page_dir=tiny_page, port=0)
    thread = serving(server)
    try:
        url = server_url(server)
        assert url.startswith("http://127.0.0.1:")
        status, headers, body = get(url)
        assert status == 200 and body.startswith(b"<!doctype html>")
        assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"  # threads for onnxruntime-web
        assert get(url + "assets/app.mjs")[1]["Content-Type"].startswith("text/javascript")
        status, _, body = get(url + "models/index.json")
        (model,) = json.loads(body)["models"]
        assert model["name"] == "face-parsing" and model["pipeline"] == "image-segmentation"
        fp32 = model["variants"][0]
        assert (fp32["variant"], fp32["dtype"], fp32["file"]) == ("fp32", "fp32", "onnx/model.onnx")
        status, _, body = get(url + "models/face-parsing/onnx/model.onnx")
        assert status == 200 and body == (artifacts["face-parsing"] / "onnx" / "model.onnx").read_bytes()
        for path in ("models/face-parsing/../../etc/passwd", "models/face-parsing/%2e%2e/%2e%2e/etc/passwd",
                     "%2e%2e/%2e%2e/etc/passwd", "models/face-parsing/", "models/face-parsing/onnx",
                     "models/other/config.json", "assets/", "models/face-parsing//etc/passwd"):
            assert get(url + path)[0] == 404, path
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.org"])
def test_serve_web_refuses_non_loopback_hosts(artifacts, tiny_page, host):
    from edgeforge.cli.serve_web import make_server

    with pytest.raises(EdgeforgeError, match="not a loopback address"):
        make_server([artifacts["face-parsing"]], page_dir=tiny_page, host=host, port=0)


def test_serve_web_explains_a_missing_page_and_a_corrupt_artifact(artifacts, tiny_page, tmp_path):
    from edgeforge.cli.serve_web import make_server

    with pytest.raises(EdgeforgeError, match="web/setup.sh"):
        make_server([artifacts["face-parsing"]], page_dir=tmp_path / "nowhere", port=0)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(artifacts["facial-emotions"], corrupt)
    with open(corrupt / "onnx" / "model.onnx", "r+b") as handle:
        handle.seek(200)
        handle.write(b"\x00" * 8)
    with pytest.raises(EdgeforgeError, match="sha256"):
        make_server([corrupt], page_dir=tiny_page, port=0)


def test_serve_web_command_prints_its_address_and_serves(artifacts, tiny_page):
    """The command as a user runs it (through its own parser until the lead lists it in edgeforge.cli)."""
    program = ("import argparse, sys\nfrom edgeforge.cli import serve_web\n"
               "parser = argparse.ArgumentParser(prog='edgeforge')\nserve_web.register(parser.add_subparsers())\n"
               "args = parser.parse_args(sys.argv[1:])\nsys.exit(args.func(args))\n")
    process = subprocess.Popen([sys.executable, "-c", program, "serve-web", str(artifacts["face-parsing"]),
                                str(artifacts["facial-emotions"]), "--port", "0", "--page", str(tiny_page)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("serving face-parsing, facial-emotions at http://127.0.0.1:"), process.stderr.read()
        url = line.split(" at ")[1].split()[0]
        names = [m["name"] for m in json.loads(get(url + "models/index.json")[2])["models"]]
        assert names == ["face-parsing", "facial-emotions"]
    finally:
        process.terminate()
        process.wait(timeout=30)
