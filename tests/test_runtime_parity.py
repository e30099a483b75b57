"""The runtime's output equals transformers' (processor + model + post-processing) on real photos."""

import numpy as np
import pytest
import torch
from conftest import REFERENCES

from edgeforge.runtime import load
from edgeforge.zoo.checkpoints import load_checkpoint


def _transformers_reference(checkpoint, images):
    inputs = checkpoint.image_processor(images, return_tensors="pt")
    with torch.no_grad():
        return checkpoint.model(**inputs)


@pytest.mark.parametrize("name", REFERENCES)
@pytest.mark.parametrize("variant", ["fp32", "ort"])
def test_runtime_matches_transformers(name, variant, mini_checkpoints, mini_artifacts, photos):
    checkpoint = load_checkpoint(mini_checkpoints[name])
    model = load(mini_artifacts[name], variant=variant)
    images = [photos["astronaut"], photos["chelsea"].resize((300, 200))]  # different sizes in one batch
    outputs = _transformers_reference(checkpoint, images)
    logits = np.concatenate([model.logits([im]) for im in images]) if variant == "ort" else model.logits(images)
    assert np.abs(logits - outputs.logits.numpy()).max() < 1e-4
    results = model.predict(images)
    if checkpoint.family.task == "semantic-segmentation":
        expected = checkpoint.image_processor.post_process_semantic_segmentation(
            outputs, target_sizes=[im.size[::-1] for im in images]
        )
        for result, reference, image in zip(results, expected, images):
            assert result.label_map.shape == image.size[::-1]
            assert (result.label_map == reference.numpy()).mean() >= 0.999
    else:
        expected = outputs.logits.argmax(-1).tolist()
        assert [checkpoint.config.id2label[i] for i in expected] == [r.label for r in results]
        for result in results:
            assert sum(result.scores().values()) == pytest.approx(1.0)


def test_exif_orientation_is_honoured(mini_artifacts, photos, tmp_path):
    from PIL import Image

    model = load(mini_artifacts["face-parsing"])
    upright = photos["astronaut"].resize((200, 120))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # the camera stored it on its side...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...and recorded "rotate 90° clockwise to view", which undoes ROTATE_90
    path = tmp_path / "rotated.jpg"
    stored.save(path, exif=exif, quality=100)
    upright_path = tmp_path / "upright.jpg"
    upright.save(upright_path, quality=100)
    from_exif = model.predict(str(path))
    direct = model.predict(str(upright_path))
    assert from_exif.label_map.shape == (120, 200)
    assert (from_exif.label_map == direct.label_map).mean() > 0.97  # JPEG of a rotated image differs slightly


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_image_modes_convert_to_rgb(mode, mini_artifacts, photos):
    from edgeforge.runtime import load_image

    image = photos["chelsea"].resize((64, 48))
    rgb = load_image(image.convert(mode))
    assert rgb.mode == "RGB" and rgb.size == image.size
    model = load(mini_artifacts["facial-emotions"])
    assert model.predict(image.convert(mode)).label in model.id2label.values()


def test_sixteen_bit_grey_keeps_its_range():
    from PIL import Image

    from edgeforge.runtime import load_image

    grey = np.tile(np.arange(0, 256, dtype=np.uint16), (4, 1))
    sixteen = Image.fromarray(grey * 257)  # the same ramp over the full 16-bit range
    rgb = np.asarray(load_image(sixteen))
    assert np.abs(rgb[..., 0].astype(int) - grey).max() <= 1


def test_a_large_batch_can_hand_its_memory_back_with_the_same_result(mini_artifacts):
    model = load(mini_artifacts["face-parsing"])
    batch = np.random.default_rng(0).standard_normal((6, 3, 256, 256)).astype(np.float32)
    kept = model.forward(batch)
    released = model.forward(batch, release_memory=True)
    assert np.array_equal(kept, released)
    assert np.allclose(model.forward(batch[:1]), kept[:1], atol=1e-5)  # the session still runs afterwards
    sleeping = load(mini_artifacts["face-parsing"], spinning=False)  # idle threads sleep between runs
    assert np.array_equal(sleeping.forward(batch), kept)
