"""The frames of `explain_conv`'s animation: the input grid (input, padding and stride gaps in
their own colours), the sliding window, the kernel, the output filling in, and a caption per
frame with the dot product that gives the current output value."""

from __future__ import annotations

import numpy as np

from . import _plot

# Cell kinds of the drawn input grid.
# Ordered so that a 2-D cell's kind is the larger of its row's and column's kinds.
INPUT, GAP, PAD = 0, 1, 2


def lift(values: tuple, fill) -> tuple:
    """A 1-D per-axis tuple as 2-D, with a leading axis one cell long."""
    return (fill, *values) if len(values) == 1 else tuple(values)

_COLOURS = {
    INPUT: "#d6e6f5",
    GAP: "#fbe3bd",
    PAD: "#e4e4e4",
    "line": "#808080",
    "frame": "#1d4f8a",
    "kernel": "#f4cccc",
    "done": "#cde8c1",
    "current": "#4e9a36",
    "text": "#202020",
}
# Under the window each kind keeps a tint of its own colour, so padding and gaps stay visible.
_WINDOW = {INPUT: "#2f6db5", GAP: "#a5783a", PAD: "#6f7f92"}
_LEGEND = ((INPUT, "input"), (PAD, "padding"), (GAP, "stride gap (zero)"))


def _fmt(value: float) -> str:
    """A cell's number: integers plainly, others with three significant digits."""
    if value is None or np.isnan(value):
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:.3g}"


class _Canvas:
    """Cell-grid drawing on one Pillow image."""

    def __init__(self, image, cell: int):
        _, ImageDraw, _ = _plot.pillow()
        self.cell = cell
        self.draw = ImageDraw.Draw(image)
        self.small = _plot.font(max(9, cell // 2 - 1))
        self.big = _plot.font(13)

    def text(self, x, y, text, font=None, fill=_COLOURS["text"], centre=False):
        font = font or self.big
        if centre:
            left, top, right, bottom = self.draw.textbbox((0, 0), text, font=font)
            x, y = x - (left + right) / 2, y - (top + bottom) / 2
        self.draw.text((x, y), text, fill=fill, font=font)

    def cell_at(self, x0, y0, row, col, fill, label="", ink=_COLOURS["text"]):
        c = self.cell
        x, y = x0 + col * c, y0 + row * c
        self.draw.rectangle((x, y, x + c, y + c), fill=fill, outline=_COLOURS["line"])
        if label and c >= 18:
            self.text(x + c / 2, y + c / 2, label, font=self.small, fill=ink, centre=True)

    def outline(self, x0, y0, cells, width=3):
        c = self.cell
        (r0, c0), (r1, c1) = cells.min(axis=0), cells.max(axis=0)
        self.draw.rectangle((x0 + c0 * c, y0 + r0 * c, x0 + (c1 + 1) * c, y0 + (r1 + 1) * c),
                            outline=_COLOURS["frame"], width=width)


def render(result, title: str) -> list:
    """One Pillow image per output position, in row-major order, of a `ConvExplanation`."""
    Image, _, _ = _plot.pillow()
    grid, values, kernel = result.grid, result.grid_values, result.shown_kernel
    out_size = lift(result.output_size, 1)
    out_values = None if result.output is None else result.output.reshape(out_size)
    biggest = max(*grid.shape, *out_size)
    cell = 28 if biggest <= 16 else max(10, 448 // biggest)
    pad = 14
    one_row = result.dims == 1
    show_kernel = kernel is not None
    kernel2 = None if kernel is None else kernel.reshape(lift(kernel.shape, 1))

    # Layout: 2-D puts input, kernel and output side by side; 1-D stacks them as the lecture's
    # table does (series, kernel under its window, output series).
    top = pad + 44
    if one_row:
        gx, gy = pad, top + 16
        kx, ky = gx, gy + cell + 6
        ox, oy = gx, ky + (cell if show_kernel else 0) + 22
        width = pad * 2 + max(grid.shape[1], out_size[1]) * cell
        height = oy + cell + 20
    else:
        gx, gy = pad, top + 16
        kx = gx + grid.shape[1] * cell + cell
        ky = gy
        ox = kx + (kernel2.shape[1] * cell + cell if show_kernel else 0)
        oy = gy
        width = ox + out_size[1] * cell + pad
        rows = max(grid.shape[0], out_size[0], kernel2.shape[0] if show_kernel else 0)
        height = gy + rows * cell + 20
    legend_y = height
    height += 24

    probe = _Canvas(Image.new("RGB", (1, 1)), cell)
    captions = _captions(result)
    widest = max(probe.draw.textlength(t, font=probe.big) for t in (title, *captions))
    width = int(max(width, widest + 2 * pad, 360))

    base = Image.new("RGB", (width, int(height)), "white")
    canvas = _Canvas(base, cell)
    canvas.text(pad, pad, title)
    canvas.text(gx, gy - 14, "input (padded)" if result.kind != "transpose"
                else "input + gaps", font=canvas.small)
    for r, c in np.ndindex(*grid.shape):
        label = "" if values is None else _fmt(values[r, c])
        canvas.cell_at(gx, gy, r, c, _COLOURS[int(grid[r, c])], label)
    if show_kernel and not one_row:
        name = "kernel, flipped" if result.kind == "transpose" else "kernel"
        canvas.text(kx, ky - 14, name, font=canvas.small)
        for r, c in np.ndindex(*kernel2.shape):
            canvas.cell_at(kx, ky, r, c, _COLOURS["kernel"], _fmt(kernel2[r, c]))
    canvas.text(ox, oy - 14, "output", font=canvas.small)
    x = pad
    for kind_, name in _LEGEND:
        if (grid == kind_).any():
            canvas.draw.rectangle((x, legend_y + 4, x + 12, legend_y + 16),
                                  fill=_COLOURS[kind_], outline=_COLOURS["line"])
            canvas.text(x + 16, legend_y + 4, name, font=canvas.small)
            x += 24 + int(canvas.draw.textlength(name, font=canvas.small))

    frames = []
    for n, (window, caption) in enumerate(zip(result.windows, captions, strict=True)):
        image = base.copy()
        canvas = _Canvas(image, cell)
        canvas.text(pad, pad + 20, caption)
        for r, c in window:
            label = "" if values is None else _fmt(values[r, c])
            canvas.cell_at(gx, gy, r, c, _WINDOW[int(grid[r, c])], label, ink="white")
        canvas.outline(gx, gy, window)
        if show_kernel and one_row:
            for k, (r, c) in enumerate(window):
                canvas.cell_at(kx, ky, r, c, _COLOURS["kernel"], _fmt(kernel2.ravel()[k]))
        for m, (r, c) in enumerate(np.ndindex(*out_size)):
            label = "" if out_values is None or m > n else _fmt(out_values[r, c])
            if m == n:
                canvas.cell_at(ox, oy, r, c, _COLOURS["current"], label, ink="white")
            else:
                canvas.cell_at(ox, oy, r, c, _COLOURS["done"] if m < n else "white", label)
        frames.append(image)
    return frames


def _captions(result) -> list[str]:
    """The line under the title for each frame: which output, and its value when known."""
    indices = list(np.ndindex(*result.output_size))
    if result.output is None:
        return [f"out[{', '.join(map(str, i))}]  ({n + 1} of {len(indices)})"
                for n, i in enumerate(indices)]
    what = {
        "conv": "sum(window * kernel)",
        "transpose": "sum(window * flipped kernel)",
        "pool": f"{'max' if result.pool == 'max' else 'mean'}(window)",
    }[result.kind]
    captions = []
    for index, window in zip(indices, result.windows, strict=True):
        value = _fmt(result.output[index])
        label = f"out[{', '.join(map(str, index))}]"
        cells = result.grid_values[tuple(window.T)]
        if result.dims == 1 and result.kind != "pool" and len(cells) <= 6:
            left = ", ".join(_fmt(v) for v in cells)
            right = ", ".join(_fmt(v) for v in result.shown_kernel.ravel())
            captions.append(f"{label} = ({left}) . ({right}) = {value}")
        else:
            captions.append(f"{label} = {what} = {value}")
    return captions


# ---------------------------------------------------------------------------------------------
# Public functions
