"""Write the test photos of handwritten digits in tests/data/photos/ (run from the checkout).

Each picture is drawn here with NumPy and Pillow as a phone would see a digit written on paper:
pen strokes of varying width along jittered skeletons, paper grain, lighting gradients and
vignetting, pen colours, off-centre placement, a slight rotation, camera blur and JPEG
compression; one is a transparent PNG as drawing apps export. The file name starts with the
digit it shows (`blank_*` pictures show none). Seeded: the files are the same on every run.

    python tools/make_test_photos.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "photos"


def _arc(cx, cy, rx, ry, start, stop, n=24):
    """Points on an ellipse from angle start to stop (degrees, 0 = right, 90 = down)."""
    t = np.radians(np.linspace(start, stop, n))
    return list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t), strict=True))


# Skeletons in a unit box (x right, y down): one list of points per pen stroke.
DIGITS = {
    0: [_arc(0.5, 0.5, 0.3, 0.45, -90, 275)],
    1: [[(0.35, 0.22), (0.58, 0.04)], [(0.58, 0.04), (0.52, 0.96)]],
    2: [_arc(0.5, 0.3, 0.3, 0.25, 200, 380)[:-4] + [(0.62, 0.6), (0.18, 0.95), (0.85, 0.95)]],
    3: [_arc(0.48, 0.27, 0.28, 0.22, 200, 450), _arc(0.48, 0.72, 0.33, 0.24, -90, 160)],
    4: [[(0.55, 0.05), (0.15, 0.65), (0.88, 0.65)], [(0.68, 0.3), (0.68, 0.98)]],
    5: [[(0.82, 0.06), (0.3, 0.06), (0.25, 0.45)], _arc(0.47, 0.67, 0.33, 0.28, -115, 150)],
    6: [[(0.72, 0.05), (0.45, 0.25), (0.26, 0.55)] + _arc(0.5, 0.72, 0.26, 0.24, 180, 540)],
    7: [[(0.12, 0.08), (0.88, 0.08), (0.42, 0.97)]],
    8: [_arc(0.5, 0.26, 0.24, 0.22, 90, 450), _arc(0.5, 0.72, 0.3, 0.25, -90, 270)],
    9: [_arc(0.48, 0.3, 0.28, 0.25, 0, 360), [(0.76, 0.3), (0.7, 0.97)]],
}


def draw_digit(canvas: Image.Image, digit: int, box, colour, width: float, rng,
               jitter: float = 0.02) -> None:
    """Draw `digit`'s strokes into box (left, top, size_x, size_y) with round pen ends."""
    left, top, sx, sy = box
    draw = ImageDraw.Draw(canvas)
    for stroke in DIGITS[digit]:
        pts = np.asarray(stroke, float) + rng.normal(0, jitter, (len(stroke), 2))
        pts = np.column_stack([left + pts[:, 0] * sx, top + pts[:, 1] * sy])
        for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:], strict=True):
            w = max(1, round(width * rng.uniform(0.85, 1.15)))
            draw.line([(x0, y0), (x1, y1)], fill=colour, width=w)
            r = w / 2
            draw.ellipse([x1 - r, y1 - r, x1 + r, y1 + r], fill=colour)


def paper(h, w, rng, tint=(236, 232, 222), grain=6.0, light=(0.75, 1.0), angle=30.0,
          vignette=0.15):
    """An RGB page: tinted, grainy, lit by a linear gradient and darker towards the corners."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    t = np.radians(angle)
    ramp = x * np.cos(t) + y * np.sin(t)
    ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min())
    lighting = light[0] + (light[1] - light[0]) * ramp
    r2 = ((x - x.mean()) ** 2 + (y - y.mean()) ** 2) / 0.5
    lighting = lighting * (1 - vignette * r2)
    fibres = np.asarray(Image.fromarray(rng.normal(128, 40, (h // 4 + 1, w // 4 + 1))
                                        .astype(np.uint8)).resize((w, h)), float) - 128
    page = np.asarray(tint, float) * lighting[..., None]
    page += (rng.normal(0, grain, (h, w)) + 0.1 * fibres)[..., None]
    return page


def photo(page: np.ndarray, ink: Image.Image, ink_colour, rng, blur=1.0, rotate=0.0):
    """Lay the ink (an 'L' mask, 255 = full ink) over the page in ink_colour; camera blur."""
    if rotate:
        ink = ink.rotate(rotate, resample=Image.Resampling.BICUBIC)
    ink = ink.filter(ImageFilter.GaussianBlur(blur))
    a = np.asarray(ink, float)[..., None] / 255
    # the lighting that shades the page shades the ink as well
    lum = page.mean(axis=2, keepdims=True)
    shade = lum / np.percentile(lum, 99)
    out = page * (1 - a) + np.asarray(ink_colour, float) * shade * a
    out += rng.normal(0, 2.0, out.shape)
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), "RGB")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(23)

    def ink_layer(h, w, digit, box, width):
        layer = Image.new("L", (w, h), 0)
        draw_digit(layer, digit, box, 255, width, rng)
        return layer

    # 7 in black pen on a page lit from grey 160 to 230 (the example)
    h, w = 480, 640
    page = paper(h, w, rng, tint=(232, 232, 230), light=(0.69, 1.0), angle=0)
    photo(page, ink_layer(h, w, 7, (240, 110, 170, 260), 14), (25, 25, 30), rng) \
        .save(OUT / "7_shaded_black_pen.jpg", quality=85)
    # 3 in thin blue ballpoint, small and off-centre (upper left) on a big photo
    h, w = 900, 1200
    page = paper(h, w, rng, light=(0.8, 1.0), angle=120)
    photo(page, ink_layer(h, w, 3, (180, 120, 150, 220), 7), (30, 50, 160), rng, blur=1.5) \
        .save(OUT / "3_blue_ballpoint_off_centre.jpg", quality=80)
    # 4 in thick red marker on yellowish paper with strong vignetting
    h, w = 400, 400
    page = paper(h, w, rng, tint=(240, 228, 180), vignette=0.45, light=(0.9, 1.0))
    photo(page, ink_layer(h, w, 4, (110, 80, 180, 250), 22), (190, 30, 35), rng) \
        .save(OUT / "4_red_marker_yellow_paper.png")
    # 2 in soft pencil: low contrast, grainy
    h, w = 360, 300
    page = paper(h, w, rng, grain=9.0, light=(0.82, 0.97), angle=60)
    photo(page, ink_layer(h, w, 2, (70, 70, 160, 220), 9), (115, 115, 120), rng, blur=1.2) \
        .save(OUT / "2_pencil_low_contrast.jpg", quality=85)
    # 5 in black ink on a transparent background (RGB black everywhere, as drawing apps export)
    h, w = 256, 256
    alpha = ink_layer(h, w, 5, (60, 30, 150, 200), 16).filter(ImageFilter.GaussianBlur(0.7))
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., 3] = np.asarray(alpha)
    Image.fromarray(rgba, "RGBA").save(OUT / "5_transparent_drawing.png")
    # 0 in chalk on a dark green board (light on dark)
    h, w = 420, 560
    board = paper(h, w, rng, tint=(40, 70, 55), grain=5.0, light=(0.8, 1.0), vignette=0.3)
    photo(board, ink_layer(h, w, 0, (200, 70, 170, 280), 16), (235, 235, 225), rng) \
        .save(OUT / "0_chalk_on_board.jpg", quality=85)
    # 8 in black pen, rotated, a shadow across one side of the page
    h, w = 500, 500
    page = paper(h, w, rng, light=(0.55, 1.0), angle=10)
    photo(page, ink_layer(h, w, 8, (280, 130, 150, 250), 12), (20, 20, 25), rng, rotate=8) \
        .save(OUT / "8_rotated_shadowed.jpg", quality=85)
    # 6 in a green felt pen, close-up: the digit nearly fills the frame
    h, w = 200, 160
    page = paper(h, w, rng, tint=(245, 245, 240), light=(0.9, 1.0))
    photo(page, ink_layer(h, w, 6, (25, 15, 110, 170), 15), (20, 120, 60), rng) \
        .save(OUT / "6_green_felt_close_up.jpg", quality=85)
    # 1 in black pen, portrait phone photo, off-centre to the right
    h, w = 1280, 960
    page = paper(h, w, rng, light=(0.75, 1.0), angle=-70)
    photo(page, ink_layer(h, w, 1, (600, 420, 180, 400), 18), (30, 30, 35), rng, blur=2.0) \
        .save(OUT / "1_portrait_off_centre.jpg", quality=80)
    # 9 in purple gel pen on grey recycled paper
    h, w = 320, 420
    page = paper(h, w, rng, tint=(200, 198, 190), grain=10.0, light=(0.85, 1.0), angle=200)
    photo(page, ink_layer(h, w, 9, (170, 60, 110, 200), 11), (90, 30, 130), rng) \
        .save(OUT / "9_purple_gel_grey_paper.jpg", quality=85)
    # 2 in black pen on ruled paper: blue lines across the page, a red margin line
    h, w = 480, 640
    page = paper(h, w, rng, tint=(238, 238, 232), light=(0.8, 1.0), angle=40)
    lines = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(lines)
    for y in range(40, h, 48):
        draw.line([(0, y), (w, y + 3)], fill=150, width=2)
    margin = Image.new("L", (w, h), 0)
    ImageDraw.Draw(margin).line([(90, 0), (92, h)], fill=170, width=2)
    page = np.asarray(photo(page, lines, (90, 120, 200), rng, blur=0.6), float)
    page = np.asarray(photo(page, margin, (210, 60, 60), rng, blur=0.6), float)
    photo(page, ink_layer(h, w, 2, (300, 110, 150, 250), 12), (20, 20, 25), rng) \
        .save(OUT / "2_ruled_paper.jpg", quality=85)
    # 5 in blue pen on a sheet that does not fill the photo: a dark desk on two sides
    h, w = 600, 800
    desk = paper(h, w, rng, tint=(70, 55, 45), grain=8.0, light=(0.7, 1.0), vignette=0.2)
    sheet = paper(h, w, rng, light=(0.85, 1.0), angle=70)
    y, x = np.mgrid[0:h, 0:w]
    on_sheet = (x > 130 + 0.08 * y) & (y < 520)  # a slightly rotated sheet edge
    page = np.where(on_sheet[..., None], sheet, desk)
    photo(page, ink_layer(h, w, 5, (400, 150, 170, 240), 13), (25, 40, 150), rng) \
        .save(OUT / "5_sheet_on_dark_desk.jpg", quality=85)
    # pictures without a digit: a shaded blank page, and a fully transparent image
    h, w = 480, 640
    photo(paper(h, w, rng, light=(0.69, 1.0), angle=0), Image.new("L", (w, h), 0), (0, 0, 0),
          rng).save(OUT / "blank_shaded_page.jpg", quality=85)
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(OUT / "blank_transparent.png")
    for path in sorted(OUT.iterdir()):
        print(path.relative_to(OUT.parent.parent.parent), path.stat().st_size)


if __name__ == "__main__":
    main()
