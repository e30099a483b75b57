"""ONNX graph optimisation with onnxruntime's transformer optimizer (``Family.fusion``).

The result stays a portable fp32 ONNX graph: onnxruntime's *basic* level (constant folding, redundant
node removal; hardware independent) and the optimizer's Python fusions into com.microsoft contrib ops
that the CPU execution provider and onnxruntime-web's WASM build both implement (Attention, Gelu,
BiasGelu). Deliberately not applied, each for a measured or stated reason:

- Fusions a family's profile disables (``FusionProfile.disabled``), each with its measurement in the
  family's module (SkipLayerNormalization: slower than Add + LayerNormalization on both families).
- onnxruntime's extended/all levels saved offline (``optimized_model_filepath``): no consistent
  latency or load-time difference from letting the session apply them at load (benchmarks/perf_graph.py),
  while they write FusedMatMul / NCHWc ops that are hardware specific or that onnxruntime's
  quantizer leaves in float, and this graph is what quantization starts from.
"""

from __future__ import annotations

from pathlib import Path

from edgeforge.atomic import atomic_path
from edgeforge.contract import MAX_IR_VERSION
from edgeforge.environment import quiet_logger
from edgeforge.errors import EdgeforgeError
from edgeforge.families import FusionProfile

#: Fused operator types counted for the manifest (onnxruntime's contrib ops, CPU + WASM).
FUSED_OPS = ("Attention", "MultiHeadAttention", "Gelu", "FastGelu", "BiasGelu", "LayerNormalization",
             "SkipLayerNormalization", "EmbedLayerNormalization")


def optimize_onnx(src: str | Path, dst: str | Path, profile: FusionProfile) -> dict:
    """Optimise ``src`` into ``dst`` (written atomically); returns what was done and the fused-op counts."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions(profile.optimizer_model_type)
    for switch in profile.disabled:
        if not hasattr(options, switch):
            raise EdgeforgeError(f"fusion profile {profile.name!r}: onnxruntime has no fusion option {switch!r}")
        setattr(options, switch, False)
    # The optimizer warns about num_heads=0 (auto-detection is what we want) and logs every fusion.
    with quiet_logger("onnxruntime.transformers"):
        # num_heads / hidden_size 0: read from each attention's reshape (SegFormer's differ per stage).
        optimizer = optimize_model(str(src), model_type=profile.optimizer_model_type, num_heads=0, hidden_size=0,
                                   optimization_options=options, opt_level=1, use_gpu=False)
    before = op_counts(_load(src))
    after = op_counts(optimizer.model)
    fused = {op: after.get(op, 0) - before.get(op, 0) for op in FUSED_OPS if after.get(op, 0) > before.get(op, 0)}
    optimizer.model.ir_version = min(optimizer.model.ir_version, MAX_IR_VERSION)
    dst = Path(dst)
    with atomic_path(dst, suffix=".onnx") as tmp:
        optimizer.save_model_to_file(str(tmp))
    return {
        "tool": "onnxruntime.transformers.optimizer",
        "profile": profile.name,
        "model_type": profile.optimizer_model_type,
        "onnxruntime_level": "basic",
        "disabled": list(profile.disabled),
        "fused_operators": fused,
        "nodes_before": sum(before.values()),
        "nodes_after": sum(after.values()),
    }


def missing_fusions(report: dict, profile: FusionProfile) -> list[str]:
    """Expected fused op types that did not fire (a transformers/onnxruntime upgrade changed a pattern)."""
    return [op for op in profile.expected if not report["fused_operators"].get(op)]


def op_counts(model) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def _load(path):
    import onnx

    return onnx.load(str(path), load_external_data=False)


