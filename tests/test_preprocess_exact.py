"""The runtime's pre-processing gives transformers' image processors' pixel values to the bit."""

import numpy as np
import pytest
from PIL import Image
from transformers import SegformerImageProcessor, ViTImageProcessor

from edgeforge.runtime.preprocess import Preprocessor

PROCESSORS = {
    "segformer-512": lambda: SegformerImageProcessor(size={"height": 512, "width": 512}),
    "vit-imagenet-224": lambda: ViTImageProcessor(size={"height": 224, "width": 224},
                                                  image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]),
    "no-rescale": lambda: ViTImageProcessor(size={"height": 64, "width": 96}, do_rescale=False),
    "no-normalize": lambda: SegformerImageProcessor(size={"height": 128, "width": 128}, do_normalize=False),
}


@pytest.mark.parametrize("name", PROCESSORS)
def test_pixel_values_are_transformers_to_the_bit(name, photos):
    processor = PROCESSORS[name]()
    runtime = Preprocessor.from_config(processor.to_dict())
    rng = np.random.default_rng(3)
    images = [photos["astronaut"], photos["chelsea"].resize((300, 200)),
              Image.fromarray(rng.integers(0, 256, (processor.size["height"], processor.size["width"], 3), np.uint8))]
    expected = processor(images, return_tensors="np")["pixel_values"]
    got = runtime(images)
    assert got.dtype == expected.dtype == np.float32 and got.shape == expected.shape
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))


def test_the_lookup_table_is_the_computation_for_every_value():
    """The fast path looks uint8 values up; every one of the 256 x 3 entries is what the arithmetic gives."""
    runtime = Preprocessor(height=16, width=256, image_mean=(0.485, 0.456, 0.406), image_std=(0.229, 0.224, 0.225))
    ramp = np.broadcast_to(np.arange(256, dtype=np.uint8)[None, :, None], (16, 256, 3)).copy()
    ramp[:, :, 1] = ramp[:, ::-1, 1]  # channels see the values in different places
    looked_up = runtime.one(Image.fromarray(ramp))
    assert np.array_equal(looked_up.view(np.uint32), runtime._compute(ramp).view(np.uint32))


def test_a_reused_buffer_gets_the_same_bits_and_fresh_calls_never_share_it(photos):
    runtime = Preprocessor(height=64, width=48)
    images = [photos["astronaut"], photos["chelsea"]]
    fresh = runtime(images)
    buffer = np.full((2, 3, 64, 48), np.nan, dtype=np.float32)
    assert runtime(images, out=buffer) is buffer
    assert np.array_equal(buffer.view(np.uint32), fresh.view(np.uint32))
    assert runtime(images[:1], out=buffer).shape == (1, 3, 64, 48)  # a buffer of another batch size is not used
    assert runtime(images) is not runtime(images)


def test_predict_reuses_its_input_buffer_without_touching_what_preprocess_returned(mini_artifacts, photos):
    from edgeforge.runtime import load

    model = load(mini_artifacts["face-parsing"])
    kept, _ = model.preprocess([photos["astronaut"]])
    before = kept.copy()
    first = model.predict(photos["chelsea"]).label_map
    model.predict(photos["astronaut"])
    assert np.array_equal(kept, before)
    assert np.array_equal(model.predict(photos["chelsea"]).label_map, first)
