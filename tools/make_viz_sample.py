"""Draw src/striate/viz/sample.png, the greyscale scene that striate.viz.kernels runs its small
kernels (blur, sharpen, Sobel, edge) on.

The scene is 320 pixels wide and 280 tall: a sky that darkens towards the horizon, a sun, a
house (roof, wall, a window with a cross, a door), a white picket fence, ground that brightens
from left to right, a checkerboard of tiles and a soft bright elliptical disc. It has hard
edges in every direction, flat areas, gentle ramps and a blurred outline, so each kernel's
effect shows. Everything is drawn with numpy; Pillow only writes the PNG. Run it from the
repository root:

    python tools/make_viz_sample.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from striate._files import atomic_path

OUT = Path(__file__).resolve().parents[1] / "src" / "striate" / "viz" / "sample.png"
HEIGHT, WIDTH = 280, 320
HORIZON = 190  # first row of the ground


def soft_mask(mask: np.ndarray, sigma: float, radius: int) -> np.ndarray:
    """`mask` blurred by a Gaussian of standard deviation `sigma` cut off at `radius` pixels."""
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-(offsets**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    for axis in (0, 1):
        mask = np.apply_along_axis(np.convolve, axis, mask, kernel, mode="same")
    return np.clip(mask, 0.0, 1.0)


def draw() -> np.ndarray:
    """The scene as a (HEIGHT, WIDTH) uint8 array."""
    y, x = np.mgrid[:HEIGHT, :WIDTH]
    # Sky: 200 at the top, 0.35 grey levels darker per row. Ground: 70 on the left, a quarter of
    # a level brighter per column.
    canvas = np.where(y < HORIZON, np.floor(200 - 0.35 * y), 70 + x // 4).astype(np.float64)

    # The sun: a flat disc.
    canvas[np.hypot(x - 260, y - 55) <= 30.4] = 245

    # The house: a roof triangle (apex at x=95, y=60, widening by 1.25 pixels per row each
    # side), a wall standing on the ground, a window with a cross, a door.
    roof = (y >= 60) & (y <= 112) & (np.abs(x - 95) < 1.25 * (y - 60) + 0.5)
    canvas[roof] = 60
    canvas[113:191, 40:151] = 120
    canvas[130:156, 60:91] = 230
    canvas[142:144, 60:91] = 40
    canvas[130:156, 75:77] = 40
    canvas[140:191, 110:136] = 35

    # The picket fence: one rail and six pickets, 9 pixels wide every 22 pixels.
    canvas[160:167, 175:311] = 225
    for left in range(180, 300, 22):
        canvas[150:196, left:left + 9] = 225

    # Tiles: four rows of eight, 16 pixels wide and 14 tall, dark ones alternating with the
    # ground.
    tiles = (slice(215, 271), slice(20, 148))
    dark = ((y[tiles] - 215) // 14 + (x[tiles] - 20) // 16) % 2 == 0
    canvas[tiles][dark] = 15

    # The soft disc: an ellipse (semi-axes 45.5 across, 30.5 down) blurred, blended towards 250.
    ellipse = ((x - 245) / 45.5) ** 2 + ((y - 235) / 30.5) ** 2 <= 1
    weight = soft_mask(ellipse.astype(np.float64), sigma=6.5, radius=14)
    canvas = np.rint(canvas + (250 - canvas) * weight)
    return canvas.astype(np.uint8)


def main() -> None:
    image = Image.fromarray(draw())
    with atomic_path(OUT) as tmp:
        image.save(tmp)
    print(f"{OUT}: {image.width}x{image.height} {image.mode}")


if __name__ == "__main__":
    main()
