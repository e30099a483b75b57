"""The whole benchmark matrix, one combined report: ``reports/latest/report.md`` + ``report.json`` + plots.

    python experiments/run_matrix.py                 # everything (full-size models take a long while)
    python experiments/run_matrix.py --quick --only minis    # smoke test: minutes, not hours

Rows of the matrix (minis first: the full-size rows reuse their mixed-precision choices):
  minis       the trained minis shipped in ``edgeforge/zoo/trained/<name>-mini/`` -> build -> every ONNX
              precision within the default drift budget -> everything, drift included, on a labelled
              synthetic set matching each model's labels.
  full size   the three reference architectures (``make_checkpoint(name)``: exact architecture, random
              weights) -> ``build`` -> every ONNX precision -> latency, size, memory next to PyTorch /
              Optimum. No drift: random weights make it meaningless, so no budget search either; instead
              each precision keeps in float the nodes the trained mini needed to meet the budget (a
              mini's layer stands for the full model's layers at the same relative depth), so the speed
              is that of a variant shaped like one that met the budget, not of an all-int8 graph.
              The mini's search weighs its float choices by the fp32 time of the full-size nodes each
              mini node stands for (``target_node_costs``): among float sets that meet the budget on the
              mini, it keeps the one that is cheapest in the model that will ship.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every checkpoint here is local
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # PyTorch baseline: no spinning into the next variant's run

from edgeforge.errors import EdgeforgeError  # noqa: E402

NAMES = ("face-parsing", "clothes-parsing", "facial-emotions")
FULL, MINIS = "full", "minis"
FULL_SIZE_NOTE = ("drift not measured at full size (random weights), and no budget searched there; each "
                  "precision's float choices come from the trained mini of the family: the nodes it kept float "
                  "to meet the budget, a repeated layer i of the mini's n standing for the full model's layers j "
                  "with j*n//N == i (same relative depth) -- a heuristic, not a measurement: whether the trained "
                  "full-size model needs the same nodes in float is not known here")
NO_TRANSFER_NOTE = ("no trained-mini artifact to take mixed-precision choices from: full-size variants are "
                    "quantized everywhere their recipe allows (faster than a variant held to a budget)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=(FULL, MINIS, "all"), default="all", help="which rows to run (default all)")
    parser.add_argument("--models", default=",".join(NAMES), help="comma-separated subset of " + ", ".join(NAMES))
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 5 runs, 1 warm-up, one thread count, 4 synthetic images, small peak matmul")
    parser.add_argument("--report", default="reports/latest", help="report directory (default reports/latest)")
    parser.add_argument("--work", default=".bench-work", help="checkpoints and artifacts are built here")
    parser.add_argument("--reuse", action="store_true", help="reuse artifacts already built in --work")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per variant (default: minis 30, full 10)")
    parser.add_argument("--threads", type=int, default=None, help="main thread count (default: all cores)")
    parser.add_argument("--samples", type=int, default=None, help="synthetic images for drift (default 16)")
    parser.add_argument("--targets", default=None, help="build targets (default: onnx, ort, openvino and litert, "
                        "those installed; coreml adds minutes and cannot be timed off macOS)")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--judge-only", action="store_true",
                        help="time nothing: judge the baselines of the report already in --report by its trained "
                             "minis (see judge_baselines_by_minis) and write it again")
    return parser.parse_args(argv)


#: Timed runs per variant at full size: seconds per run for SegFormer; ViT-base's ~0.1 s runs afford more,
#: and its variants sit close enough to each other to need them.
FULL_SIZE_RUNS = {"facial-emotions": 30}


def options_for(row: str, args: argparse.Namespace, name: str | None = None):
    from edgeforge.benchmarks.run import BenchOptions

    overrides = {"baselines": not args.no_baselines, "memory": not args.no_memory, "progress": not args.no_progress,
                 "accuracy": row == MINIS}
    for key, value in (("runs", args.runs), ("threads", args.threads), ("synthetic_samples", args.samples)):
        if value is not None:
            overrides[key] = value
    if args.quick:
        return BenchOptions.quick(**overrides)
    if row == FULL:  # seconds per run at full size: fewer runs (still interleaved), a smaller throughput batch
        overrides = {"runs": FULL_SIZE_RUNS.get(name, 10), "warmup": 1, "throughput_batch": 4, "throughput_runs": 3,
                     **overrides}
    return BenchOptions(**overrides)


def matrix_rows(args: argparse.Namespace) -> list[tuple[str, str]]:
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise EdgeforgeError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    rows = [MINIS, FULL] if args.only == "all" else [args.only]
    return [(row, name) for row in rows for name in names]


def matrix_targets() -> tuple[str, ...]:
    """The default targets: every installed one but Core ML (whose models only macOS runs)."""
    from edgeforge.targets import default_targets

    return tuple(t for t in default_targets() if t != "coreml")


def prepare_checkpoint(row: str, name: str, work: Path) -> tuple[Path, str]:
    """(checkpoint directory, report name saying what the weights are)."""
    from edgeforge.zoo.checkpoints import make_checkpoint
    from edgeforge.zoo.shipped import trained_checkpoint

    if row == FULL:
        return make_checkpoint(name, work / "checkpoints" / name, mini=False, seed=0), row_label(row, name)
    return trained_checkpoint(name), row_label(row, name)


def row_label(row: str, name: str) -> str:
    return f"{name} (full size, random weights)" if row == FULL else f"{name}-mini (trained)"


def quantize_artifact(row: str, artifact: Path, mini_artifact: Path, log,
                      node_costs: dict[str, float] | None = None) -> str | None:
    """Every ONNX precision. Minis: each held to the default budget on trained weights. Full size: random
    weights make drift meaningless (near-tie logits), so no budget (``quantize(budget=None)``) and each
    precision keeps in float what the trained mini of the family needed (``transferred_float_nodes``)."""
    from edgeforge.contract import VARIANTS
    from edgeforge.quantize.drift import drift_text
    from edgeforge.stages import quantize
    from edgeforge.targets import TARGETS

    started = time.perf_counter()
    built = [t for t in TARGETS.values() if (artifact / VARIANTS[t.base_variant].file).exists() and not t.missing()]
    precisions = [name for target in built for name in target.precisions if not target.unavailable(name)]
    options, notes = {}, []
    if row == FULL:
        options["budget"] = None  # random weights: no accuracy to keep, so no budget (nothing measured)
        mini_manifest = mini_artifact / "manifest.json"
        if mini_manifest.is_file():
            mini = json.loads(mini_manifest.read_text())
            # A precision no budget-compliant variant of exists (rejected on the trained mini) is not made.
            skipped = [name for name in precisions if name in mini.get("rejected_variants", {})]
            precisions = [name for name in precisions if name not in skipped]
            options["keep_float"] = {}
            for graph, counterparts in (("onnx/model.onnx", graph_counterparts),
                                        ("openvino/model.xml", graph_counterparts),  # keeps the ONNX names
                                        ("litert/model.tflite", tflite_counterparts)):
                if (mini_artifact / graph).is_file() and (artifact / graph).is_file():
                    options["keep_float"].update(transferred_float_nodes(
                        mini, counterparts(mini_artifact / graph, artifact / graph), graph.split("/")[0]))
            notes += [f"{name} not made: rejected on the trained mini" for name in skipped] + [FULL_SIZE_NOTE]
        else:
            notes.append(NO_TRANSFER_NOTE)
    report = quantize(artifact, precisions=precisions, node_costs=node_costs, log=lambda line: log("  " + line),
                      **options)
    log(f"  quantized in {time.perf_counter() - started:.1f} s")
    notes[:0] = [f"{name} rejected: drift {drift_text(entry['drift'])}, over the {entry['drift']['budget_points']}-point "
                 "budget" for name, entry in report["rejected"].items()]
    return "; ".join(notes) or None


#: A repeated layer's index in a node name: SegFormer ``.../block.<stage>.<i>/...``, ViT ``.../layer.<i>/...``.
LAYER_INDEX = re.compile(r"(.*/(?:block\.\d+|layer)\.)(\d+)(/.*)")


def transferred_float_nodes(mini_manifest: dict, counterparts: dict[str, list[str]],
                            target: str) -> dict[str, list[str]]:
    """precision -> nodes of the full-size graph to keep float: the trained mini's choices for ``target``'s
    variants, each mini node standing for its full-size ``counterparts``."""
    from edgeforge.contract import VARIANTS

    chosen = {}
    for precision, entry in mini_manifest.get("variants", {}).items():
        if VARIANTS[precision].file.split("/")[0] != target:
            continue
        nodes = sorted({full for node in entry.get("nodes_kept_float", []) for full in counterparts.get(node, ())})
        if nodes:
            chosen[precision] = nodes
    return chosen


def graph_counterparts(mini_graph: Path, full_graph: Path) -> dict[str, list[str]]:
    """``full_size_counterparts`` of two ONNX graphs or OpenVINO IRs (which keep the ONNX node names)."""
    return full_size_counterparts(_node_names(mini_graph), _node_names(full_graph))


def full_size_counterparts(mini_names: list[str], full_names: list[str]) -> dict[str, list[str]]:
    """mini node -> the full-size nodes it stands for: the same name, a repeated layer by relative depth (mini
    layer i of n stands for full layers j with j*n//N == i: a one-block SegFormer stage stands for every block
    of that stage; ViT-mini layer 3 of 4 for layers 9-11)."""
    mini_depths, full_depths, present = _layer_depths(mini_names), _layer_depths(full_names), set(full_names)
    counterparts = {}
    for node in mini_names:
        match = LAYER_INDEX.fullmatch(node)
        if match is None:
            names = [node]
        else:
            prefix, index, suffix = match.group(1), int(match.group(2)), match.group(3)
            mini_n, full_n = mini_depths.get(prefix, 1), full_depths.get(prefix, 0)
            names = [f"{prefix}{j}{suffix}" for j in range(full_n) if j * mini_n // full_n == index]
        found = [name for name in names if name in present]
        if found:
            counterparts[node] = found
    return counterparts


#: In a .tflite's tensor names (litert-torch names them by module class and list index, not attribute path):
#: the stage of SegFormer's patch embedding an op comes after, and the index of the layer it belongs to.
TFLITE_STAGE = re.compile(r"PatchEmbeddings_(\d+)")
TFLITE_LAYER = re.compile(r"Layer_(\d+)/")


def tflite_counterparts(mini_graph: Path, full_graph: Path) -> dict[str, list[str]]:
    """mini op -> the full-size ops it stands for, in two .tflite files: the ops the LiteRT quantizer can quantize,
    each placed by (stage, layer, its place among that layer's such ops, op type), a repeated layer by relative
    depth as in ``full_size_counterparts``. By place, not by name: litert-torch merges the names of fused ops,
    differently in a narrow and a wide model, while a layer's code, so the order of its ops, is the same."""
    mini, full = _tflite_places(mini_graph), _tflite_places(full_graph)
    mini_depths, full_depths = _stage_depths(mini.values()), _stage_depths(full.values())
    by_place = {place: name for name, place in full.items()}
    counterparts = {}
    for name, (stage, layer, place, op) in mini.items():
        if layer is None:
            layers = [None]
        else:
            mini_n, full_n = mini_depths[stage], full_depths.get(stage, 0)
            layers = [j for j in range(full_n) if j * mini_n // full_n == layer]
        found = [by_place[key] for j in layers if (key := (stage, j, place, op)) in by_place]
        if found:
            counterparts[name] = found
    return counterparts


def _tflite_places(graph: Path) -> dict[str, tuple[int, int | None, int, str]]:
    from collections import Counter

    from ai_edge_litert.interpreter import Interpreter

    from edgeforge.quantize.litert_quantizer import WEIGHTED_OPS, ops_of

    stage, seen, places = 0, Counter(), {}
    for op, name in ops_of(Interpreter(model_path=str(graph)), WEIGHTED_OPS):  # in execution order
        if match := TFLITE_STAGE.search(name):
            stage = int(match.group(1))
        layer = int(match.group(1)) if (match := TFLITE_LAYER.search(name)) else None
        seen[stage, layer] += 1
        places[name] = (stage, layer, seen[stage, layer], op)
    return places


def _stage_depths(places) -> dict[int, int]:
    depths: dict[int, int] = {}
    for stage, layer, _, _ in places:
        if layer is not None:
            depths[stage] = max(depths.get(stage, 0), layer + 1)
    return depths


def target_node_costs(mini_graph: Path, full_artifact: Path, work: Path, log) -> dict[str, float]:
    """mini node -> fp32 ms that its full-size counterparts take, profiled on the full-size graph (one image,
    the graph onnxruntime's quantizers see): what keeping that mini node float costs in the model that ships."""
    import onnx
    from PIL import Image

    from edgeforge.quantize.costs import node_times_ms
    from edgeforge.quantize.onnx_int8 import prepare
    from edgeforge.runtime.artifact import Artifact
    from edgeforge.runtime.preprocess import Preprocessor

    # The artifact's configs and graph header only: a session of the full-size model is the profiler's.
    preprocessor = Preprocessor.from_config(Artifact.open(full_artifact).preprocessor_config)
    image = Image.new("RGB", (preprocessor.width, preprocessor.height), (128, 110, 100))
    prepared = prepare(full_artifact / "onnx" / "model.onnx", work / "full-size-prepared.onnx")
    try:
        input_name = onnx.load(str(prepared), load_external_data=False).graph.input[0].name
        full_costs = node_times_ms(prepared, {input_name: preprocessor([image])})  # content does not matter
    finally:
        prepared.unlink(missing_ok=True)
    counterparts = full_size_counterparts(_node_names(mini_graph), list(full_costs))
    costs = {node: sum(full_costs[name] for name in names) for node, names in counterparts.items()}
    log(f"  full-size node costs: {len(costs)} mini nodes mapped, {sum(full_costs.values()):.0f} ms profiled")
    return costs


def _node_names(graph: Path) -> list[str]:
    """Node names of an ONNX graph, or op names of an OpenVINO IR (which keeps the ONNX names it converted)."""
    if graph.suffix == ".xml":
        import openvino as ov

        return [op.get_friendly_name() for op in ov.Core().read_model(str(graph)).get_ordered_ops()]
    import onnx

    return [node.name for node in onnx.load(str(graph), load_external_data=False).graph.node]


def _layer_depths(names: list[str]) -> dict[str, int]:
    """Layer-name prefix -> how many layers (highest index + 1) the graph has under it."""
    depths: dict[str, int] = {}
    for name in names:
        match = LAYER_INDEX.fullmatch(name)
        if match:
            depths[match.group(1)] = max(depths.get(match.group(1), 0), int(match.group(2)) + 1)
    return depths


def artifact_dir(row: str, name: str, work: Path) -> Path:
    from edgeforge.benchmarks.report import slug

    return work / "artifacts" / slug(row_label(row, name))


def exported_once(row: str, name: str, work: Path, args: argparse.Namespace, made: dict[Path, Path],
                  log) -> tuple[Path, Path]:
    """(checkpoint, artifact) of a row: the checkpoint written and the artifact exported once per run (with
    --reuse, an export an earlier run left is taken as it is); ``made`` maps artifact -> checkpoint."""
    from edgeforge.stages import build
    from edgeforge.targets import parse_targets

    artifact = artifact_dir(row, name, work)
    if artifact not in made:
        checkpoint, _ = prepare_checkpoint(row, name, work)
        if args.reuse and (artifact / "manifest.json").is_file():
            log(f"  reusing the export in {artifact}")
        else:
            build(checkpoint, artifact, targets=parse_targets(args.targets or matrix_targets()),
                  log=lambda line: log("  " + line))
        made[artifact] = checkpoint
    return made[artifact], artifact


def build_artifact(row: str, name: str, rows: list[tuple[str, str]], work: Path, args: argparse.Namespace,
                   made: dict[Path, Path], log) -> tuple[Path, Path, list[str]]:
    """(checkpoint, artifact, notes) for one row: exported and quantized (or reused with --reuse). A mini whose
    full-size row is in the run searches with the full-size model's node costs, so that model is exported first."""
    artifact = artifact_dir(row, name, work)
    if args.reuse and artifact not in made and (artifact / "manifest.json").is_file():
        log(f"  reusing {artifact}")
        return prepare_checkpoint(row, name, work)[0], artifact, [FULL_SIZE_NOTE] if row == FULL else []
    checkpoint, artifact = exported_once(row, name, work, args, made, log)
    costs = None
    if row == MINIS and (FULL, name) in rows:
        _, full_artifact = exported_once(FULL, name, work, args, made, log)
        costs = target_node_costs(artifact / "onnx" / "model.onnx", full_artifact, work, log)
    note = quantize_artifact(row, artifact, artifact_dir(MINIS, name, work), log, node_costs=costs)
    return checkpoint, artifact, [note] if note else []


def judge_baselines_by_minis(report: dict) -> None:
    """Random weights have no drift to measure, for baselines as for variants. A full-size variant exists only if
    its precision met the budget on the trained mini; hold each baseline (OpenVINO's NNCF int8 of the plain
    export, ...) to the same rule: its drift on the trained mini in this report, then the head-to-head again."""
    from edgeforge.benchmarks.recommend import PROXY_DRIFT, baseline_drift, head_to_head

    minis = {entry["name"]: entry for entry in report["models"] if entry.get("matrix_row") == MINIS}
    for entry in report["models"]:
        name = next((n for n in NAMES if entry["name"] == row_label(FULL, n)), None)  # full-size rows only
        mini = minis.get(row_label(MINIS, name)) if name else None
        if mini is not None and mini.get("drift_budget_points") is not None:
            for baseline, record in entry["baselines"].items():
                points, _, on = baseline_drift(mini["baselines"].get(baseline) or {}, mini["drift_budget_points"])
                if points is not None:
                    record[PROXY_DRIFT] = {"points": points, "on": f"{mini['name']}, {on}",
                                           "budget_points": mini["drift_budget_points"]}
        entry["head_to_head"] = head_to_head(entry, entry.get("drift_budget_points"), entry["threads"][0])


def rejudge(report_dir: Path) -> int:
    """``--judge-only``: the report in ``report_dir`` with its baselines judged by the minis; nothing re-timed."""
    from edgeforge.benchmarks.report import PLOTS, read_report, write_report

    report = read_report(report_dir / "report.json")
    assets = {png.name: png.read_bytes() for png in sorted((report_dir / PLOTS).glob("*.png"))}
    judge_baselines_by_minis(report)
    write_report(report, report_dir, assets)
    print(f"wrote {report_dir / 'report.md'} (baselines judged by the trained minis; no figure re-measured)")
    return 0


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from edgeforge.benchmarks.report import write_report
    from edgeforge.benchmarks.run import bench_model, start_report

    args = parse_args(argv)
    if args.judge_only:
        return rejudge(Path(args.report))
    rows = matrix_rows(args)
    log = lambda line: tqdm.write(line, file=sys.stderr)  # noqa: E731  (keeps the bars intact)
    work = Path(args.work)
    report = start_report(options_for(rows[0][0], args), log)  # machine + peak; each model records its own settings
    assets: dict[str, bytes] = {}
    made: dict[Path, Path] = {}  # artifact -> checkpoint, for what this run exported
    started = time.perf_counter()
    for row, name in tqdm(rows, desc="matrix", unit="model", disable=args.no_progress):
        log(f"== {row}: {name}")
        checkpoint, artifact, notes = build_artifact(row, name, rows, work, args, made, log)
        options = options_for(row, args, name)
        entry, extra = bench_model(artifact, None, options, name=row_label(row, name), checkpoint=str(checkpoint),
                                   log=log)
        entry["notes"] = notes + entry["notes"]
        entry["matrix_row"] = row
        report["models"].append(entry)
        assets.update(extra)
    report["seconds"] = time.perf_counter() - started
    judge_baselines_by_minis(report)
    write_report(report, args.report, assets)
    print(f"wrote {Path(args.report) / 'report.md'} ({len(rows)} model(s) in {report['seconds'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except EdgeforgeError as exc:
        print(f"run_matrix: error: {exc}", file=sys.stderr)
        sys.exit(2)
