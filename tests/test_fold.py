"""Exact rewrites: the folded SegFormer head / NCHW Mix-FFN / fusable ViT attention / [CLS]-only last ViT layer
equal the stock model."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgeforge.errors import EdgeforgeError
from edgeforge.export.rewrite import (
    REWRITE_MAX_ABS_DIFF,
    REWRITE_MIN_AGREEMENT,
    rewrite_model,
)
from edgeforge.families.segformer import SEGFORMER
from edgeforge.families.vit import VIT
from edgeforge.stages import build


def named(family, *names):
    """The family's declared rewrites of these names, in this order."""
    by_name = {rewrite.name: rewrite for rewrite in family.rewrites}
    return tuple(by_name[name] for name in names)
from edgeforge.runtime.postprocess import resize_logits_argmax
from edgeforge.zoo.checkpoints import load_checkpoint

SEGFORMERS = ("face-parsing", "clothes-parsing")


def _with_trained_like_batch_norm(model, seed: int):
    """Random minis keep BatchNorm at identity (mean 0, var 1, weight 1, bias 0), which would let a wrong
    BN fold pass: give the decode head's BatchNorm statistics and affine parameters like a trained model's."""
    bn = model.decode_head.batch_norm
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(bn.num_features, generator=g) * 0.5)
        bn.running_var.copy_(torch.rand(bn.num_features, generator=g) * 2 + 0.1)
        bn.weight.copy_(torch.randn(bn.num_features, generator=g))
        bn.bias.copy_(torch.randn(bn.num_features, generator=g))
    return model


def _label_maps(logits, images):
    return [resize_logits_argmax(l, im.size[1], im.size[0]) for l, im in zip(logits, images)]


@pytest.fixture(scope="module")
def bn_checkpoint(mini_checkpoints, tmp_path_factory):
    """face-parsing mini with non-trivial BatchNorm in the decode head, saved as a checkpoint."""
    checkpoint = load_checkpoint(mini_checkpoints["face-parsing"])
    _with_trained_like_batch_norm(checkpoint.model, seed=3)
    path = tmp_path_factory.mktemp("bn") / "face-parsing-bn"
    checkpoint.model.save_pretrained(path, safe_serialization=True)
    checkpoint.image_processor.save_pretrained(path)
    return path


#: What each target's rewrites put in the first SegFormer block: (Mix-FFN class, its depthwise conv's, attention's).
SEGFORMER_MODULES = {"onnx": ("NCHWMixFFN", "Conv2d", "SegformerEfficientSelfAttention"),
                     "litert": ("SegformerMixFFN", "LiteRTDWConv", "LiteRTSelfAttention")}


@pytest.mark.parametrize("target", sorted(SEGFORMER_MODULES))
@pytest.mark.parametrize("name", SEGFORMERS)
def test_segformer_rewrites_equal_stock_in_torch(name, target, mini_checkpoints, photos):
    checkpoint = load_checkpoint(mini_checkpoints[name])
    stock = _with_trained_like_batch_norm(checkpoint.model, seed=7)
    rewritten = rewrite_model(stock, checkpoint.family.rewrites_for(target))
    assert not hasattr(rewritten.decode_head, "linear_fuse") and hasattr(stock.decode_head, "linear_fuse")
    block = rewritten.segformer.encoder.block[0][0]
    assert (type(block.mlp).__name__, type(block.mlp.dwconv).__name__,
            type(block.attention.self).__name__) == SEGFORMER_MODULES[target]
    assert type(stock.segformer.encoder.block[0][0].mlp).__name__ == "SegformerMixFFN"  # the stock model is untouched
    images = [photos["astronaut"], photos["chelsea"]]
    pixel_values = checkpoint.image_processor(images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        expected = stock(pixel_values=pixel_values).logits.numpy()
        got = rewritten(pixel_values=pixel_values).logits.numpy()
    assert np.abs(expected).max() > 1e-2  # logits big enough for the comparison to mean something
    assert np.abs(got - expected).max() <= 1e-5
    for a, b in zip(_label_maps(expected, images), _label_maps(got, images)):
        assert (a == b).mean() >= REWRITE_MIN_AGREEMENT


def test_folding_needs_the_batch_norm(mini_checkpoints):
    """The fold really carries BatchNorm: rewriting with identity BN and then changing BN changes the output."""
    checkpoint = load_checkpoint(mini_checkpoints["face-parsing"])
    folded_identity = rewrite_model(checkpoint.model, named(SEGFORMER, "segformer-decode-head"))
    with_bn = _with_trained_like_batch_norm(checkpoint.model, seed=5)
    x = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (folded_identity(pixel_values=x).logits - with_bn(pixel_values=x).logits).abs().max() > 1e-3


@pytest.mark.parametrize("rewrites", [("vit-fusable-attention",), ("vit-class-token-last-layer",),
                                      ("vit-fusable-attention", "vit-class-token-last-layer")])
def test_vit_rewrites_equal_stock(rewrites, mini_checkpoints, photos):
    checkpoint = load_checkpoint(mini_checkpoints["facial-emotions"])
    rewritten = rewrite_model(checkpoint.model, named(VIT, *rewrites))
    images = [photos["astronaut"], photos["chelsea"]]
    pixel_values = checkpoint.image_processor(images, return_tensors="pt")["pixel_values"]
    shapes = []
    rewritten.vit.encoder.layer[-1].register_forward_hook(lambda module, args, out: shapes.append(out.shape))
    with torch.no_grad():
        expected = checkpoint.model(pixel_values=pixel_values).logits
        got = rewritten(pixel_values=pixel_values).logits
    assert expected.abs().max().item() > 1e-2
    assert (got - expected).abs().max().item() <= 1e-5
    assert got.argmax(-1).tolist() == expected.argmax(-1).tolist()
    tokens = 1 if "vit-class-token-last-layer" in rewrites else checkpoint.model.vit.embeddings.patch_embeddings.num_patches + 1
    assert shapes[0][1] == tokens  # the last layer really computes [CLS] alone (and only then)


def test_class_token_rewrite_needs_a_class_token_head(mini_checkpoints):
    checkpoint = load_checkpoint(mini_checkpoints["face-parsing"])
    with pytest.raises(EdgeforgeError, match="needs ViTForImageClassification"):
        rewrite_model(checkpoint.model, named(VIT, "vit-class-token-last-layer"))


def test_folded_export_matches_stock_model_on_photos(bn_checkpoint, photos, tmp_path):
    """The default build exports the folded, optimised graph; ONNX Runtime on it equals the stock PyTorch model."""
    out = tmp_path / "folded"
    manifest = build(bn_checkpoint, out, targets=("onnx",), log=lambda *_: None)
    fp32 = manifest["variants"]["fp32"]
    assert fp32["graph"]["rewrites"] == ["segformer-decode-head", "segformer-mix-ffn-nchw"]
    assert fp32["validation"]["reference"] == "stock PyTorch model"
    assert fp32["validation"]["max_abs_diff"] <= REWRITE_MAX_ABS_DIFF
    assert fp32["validation"]["label_map_agreement"] >= REWRITE_MIN_AGREEMENT
    assert json.loads((out / "manifest.json").read_text())["variants"]["fp32"]["graph"] == fp32["graph"]

    stock = load_checkpoint(bn_checkpoint)
    images = [photos["astronaut"], photos["chelsea"]]
    pixel_values = stock.image_processor(images, return_tensors="np")["pixel_values"].astype(np.float32)
    with torch.no_grad():
        expected = stock.model(pixel_values=torch.from_numpy(pixel_values)).logits.numpy()
    session = ort.InferenceSession(str(out / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"pixel_values": pixel_values})[0]
    assert np.abs(got - expected).max() <= REWRITE_MAX_ABS_DIFF
    for a, b in zip(_label_maps(expected, images), _label_maps(got, images)):
        assert (a == b).mean() >= REWRITE_MIN_AGREEMENT
    names = [n.name for n in onnx.load(str(out / "onnx" / "model.onnx")).graph.node]
    assert not any("linear_fuse" in name for name in names)  # the 4D -> D fuse conv is gone...
    assert sum("decode_head/projections" in name for name in names) == 4  # ...folded into the 4 projections


def test_no_fold_no_optimize_is_the_plain_export(bn_checkpoint, tmp_path):
    manifest = build(bn_checkpoint, tmp_path / "plain", targets=("onnx",), fold=False, optimize=False,
                     log=lambda *_: None)
    assert manifest["variants"]["fp32"]["graph"] == {"rewrites": [], "optimizer": None}
    model = onnx.load(str(tmp_path / "plain" / "onnx" / "model.onnx"))
    assert {n.domain for n in model.graph.node} <= {"", "ai.onnx"}
    assert [n.op_type for n in model.graph.node if "linear_fuse" in n.name] == ["Conv"]
    assert manifest["variants"]["fp32"]["validation"]["max_abs_diff"] <= REWRITE_MAX_ABS_DIFF


def test_rewrite_errors_are_one_line(mini_checkpoints):
    checkpoint = load_checkpoint(mini_checkpoints["facial-emotions"])
    with pytest.raises(EdgeforgeError, match="no SegformerMixFFN"):
        rewrite_model(checkpoint.model, named(SEGFORMER, "segformer-mix-ffn-nchw"))
    checkpoint.model.train()
    with pytest.raises(EdgeforgeError, match="eval mode"):
        rewrite_model(checkpoint.model, checkpoint.family.rewrites)
