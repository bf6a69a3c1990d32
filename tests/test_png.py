"""The fast grayscale PNG encoder writes files Pillow decodes to exactly the same pixels."""

import io

import numpy as np
import pytest
from PIL import Image

from textimg.data.png import encode_gray_png


@pytest.mark.parametrize("size", [(1, 1), (37, 5), (256, 256)])
def test_png_round_trips_exactly(size):
    pixels = np.random.default_rng(0).integers(0, 256, size=(size[1], size[0]), dtype=np.uint8)
    image = Image.fromarray(pixels, mode="L")
    decoded = Image.open(io.BytesIO(encode_gray_png(image)))
    decoded.load()
    assert decoded.format == "PNG" and decoded.mode == "L" and decoded.size == size
    assert np.array_equal(np.asarray(decoded), pixels)


def test_png_is_deterministic_and_refuses_other_modes():
    image = Image.new("L", (64, 64), 120)
    assert encode_gray_png(image) == encode_gray_png(image.copy())
    with pytest.raises(ValueError, match="grayscale"):
        encode_gray_png(Image.new("RGB", (4, 4)))
