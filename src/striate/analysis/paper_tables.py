"""The lectures' layer tables, transcribed, to print beside the exact counts.

- GoogLeNet (seed 004, "Convolution Arithmetic (of GoogLeNet)", the paper's Table 1): output
  sizes, parameters in K of 1024 weights, ops in M (10^6) of multiply-adds.
- AlexNet (seed 003's layer list for the volumes and conv1's 35K; seed 004's two-GPU products,
  e.g. 5x5x48x128*2 ~ 307k, for the other parameter counts, in K of 1000 and M of 10^6).

A printed value agrees with the exact one when they differ by at most 2% or half a unit of the
printed precision (the tables round freely). Known disagreements, kept as printed and marked:
GoogLeNet's first convolution (2.7K and 34M; 7x7x3x64 weights are 9.2K and 118M
multiply-adds), inception (4c) (463K; its widths give 497K) and (5a) (1072K and 54M; 1018K
and 51M); AlexNet's FC6 (the slide multiplies 13*13*128*2 inputs, but FC6 reads the 6x6x256
pool5 volume: 37.7M, not 177M); and the slides' LRN rows, which follow the pooling (cs231n's
order) where the 2012 paper, and `alexnet_paper`, normalise before pooling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["PAPER_TABLES", "PaperComparison", "PaperRow", "attach"]

@dataclass(frozen=True)
class PaperRow:
    """One printed line: its label, the model rows it covers (their sum is compared), the
    printed output volume, parameters and ops as printed ("159K", "34M"), the value of the
    parameters' K (1024 or 1000), and the product the slide writes for the parameters, if it
    writes one ("5*5*48*128*2"): where it does, the product is compared, not its rounding."""

    label: str
    covers: tuple[str, ...]
    output_shape: tuple[int, ...] | None
    params: str | None = None
    ops: str | None = None
    k: int = 1024
    product: str | None = None

    def params_agree(self, exact: int) -> bool:
        if self.product is not None:
            value = math.prod(int(f) for f in self.product.split("*"))
            return abs(exact - value) <= 0.02 * value
        return _agrees(exact, self.params, self.k)

    def ops_agree(self, exact: int) -> bool:
        return _agrees(exact, self.ops, self.k)


def _scale(text: str, k: int) -> int:
    return {"K": k, "k": k, "M": 10**6}.get(text[-1], 1)


def _agrees(exact: int, text: str | None, k: int) -> bool:
    """Within 2% of the printed value, or within half a unit of its last printed digit."""
    if text is None:
        return True
    scale = _scale(text, k)
    printed = float(text[:-1] if scale != 1 else text) * scale
    return abs(exact - printed) <= max(0.02 * printed, 0.5 * scale)


def _squeeze(shape) -> tuple[int, ...] | None:
    return None if shape is None else tuple(d for d in shape if d != 1)


@dataclass
class PaperComparison:
    """A printed line next to the exact numbers of the rows it covers."""

    row: PaperRow
    exact_params: int
    exact_macs: int
    exact_shape: tuple[int, ...] | None

    @property
    def params_agree(self) -> bool:
        return self.row.params_agree(self.exact_params)

    @property
    def ops_agree(self) -> bool:
        return self.row.ops_agree(self.exact_macs)

    @property
    def shape_agrees(self) -> bool:
        return self.row.output_shape is None or _squeeze(self.row.output_shape) == _squeeze(
            self.exact_shape
        )

    @property
    def differs(self) -> bool:
        return not (self.params_agree and self.ops_agree and self.shape_agrees)

    def cells(self) -> list[str]:
        """Params in K (of the table's K), the printed value, multiply-adds in M, the printed
        value, and a mark where they disagree."""
        shape = "x".join(map(str, self.row.output_shape or ()))
        what = [name for name, ok in (("params", self.params_agree), ("ops", self.ops_agree),
                                      (f"shape (paper {shape})", self.shape_agrees)) if not ok]
        return [
            f"{self.exact_params / self.row.k:,.1f}",
            self.row.params or "",
            f"{self.exact_macs / 1e6:,.1f}",
            self.row.ops or "",
            ("differs: " + ", ".join(what)) if what else "",
        ]

    def to_dict(self) -> dict:
        return {
            "label": self.row.label,
            "covers": list(self.row.covers),
            "output_shape": None if self.row.output_shape is None else list(self.row.output_shape),
            "params": self.row.params,
            "ops": self.row.ops,
            "params_agree": self.params_agree,
            "ops_agree": self.ops_agree,
            "shape_agrees": self.shape_agrees,
        }


def _g(label, covers, shape, params=None, ops=None) -> PaperRow:
    return PaperRow(label, tuple(covers.split()), shape, params, ops, k=1024)


def _a(label, covers, shape, params=None, product=None) -> PaperRow:
    return PaperRow(label, tuple(covers.split()), shape, params, None, k=1000, product=product)


# Seed 004, "Convolution Arithmetic (of GoogLeNet)": type, output size, params, ops.
_GOOGLENET = [
    _g("convolution 7x7/2", "conv1", (112, 112, 64), "2.7K", "34M"),
    _g("max pool 3x3/2", "maxpool1", (56, 56, 64)),
    _g("convolution 3x3/1", "conv2 conv3", (56, 56, 192), "112K", "360M"),
    _g("max pool 3x3/2", "maxpool2", (28, 28, 192)),
    _g("inception (3a)", "inception3a", (28, 28, 256), "159K", "128M"),
    _g("inception (3b)", "inception3b", (28, 28, 480), "380K", "304M"),
    _g("max pool 3x3/2", "maxpool3", (14, 14, 480)),
    _g("inception (4a)", "inception4a", (14, 14, 512), "364K", "73M"),
    _g("inception (4b)", "inception4b", (14, 14, 512), "437K", "88M"),
    _g("inception (4c)", "inception4c", (14, 14, 512), "463K", "100M"),
    _g("inception (4d)", "inception4d", (14, 14, 528), "580K", "119M"),
    _g("inception (4e)", "inception4e", (14, 14, 832), "840K", "170M"),
    _g("max pool 3x3/2", "maxpool4", (7, 7, 832)),
    _g("inception (5a)", "inception5a", (7, 7, 832), "1072K", "54M"),
    _g("inception (5b)", "inception5b", (7, 7, 1024), "1388K", "71M"),
    _g("avg pool 7x7/1", "avgpool", (1, 1, 1024)),
    _g("dropout (40%)", "dropout", (1, 1, 1024)),
    _g("linear", "fc", (1, 1, 1000), "1000K", "1M"),
]

# Seed 003's layer list ([55x55x96] CONV1 ...) with seed 004's two-GPU parameter products.
_ALEXNET = [
    _a("CONV1: 96 11x11/4", "features.conv1", (55, 55, 96), "35K", "11*11*3*96"),
    _a("NORM1", "features.norm1", (27, 27, 96)),
    _a("MAX POOL1: 3x3/2", "features.pool1", (27, 27, 96), "0"),
    _a("CONV2: 256 5x5, pad 2", "features.conv2", (27, 27, 256), "307K", "5*5*48*128*2"),
    _a("NORM2", "features.norm2", (13, 13, 256)),
    _a("MAX POOL2: 3x3/2", "features.pool2", (13, 13, 256)),
    _a("CONV3: 384 3x3, pad 1", "features.conv3", (13, 13, 384), "884K", "3*3*128*2*192*2"),
    _a("CONV4: 384 3x3, pad 1", "features.conv4", (13, 13, 384), "663K", "3*3*192*192*2"),
    _a("CONV5: 256 3x3, pad 1", "features.conv5", (13, 13, 256), "442K", "3*3*192*128*2"),
    _a("MAX POOL3: 3x3/2", "features.pool5", (6, 6, 256)),
    _a("FC6: 4096", "classifier.fc6", (4096,), "177M", "13*13*128*2*2048*2"),
    _a("FC7: 4096", "classifier.fc7", (4096,), "16M", "2048*2*2048*2"),
    _a("FC8: 1000", "classifier.fc8", (1000,), "4M", "2048*2*1000"),
]

# model name -> (summary depth whose rows the table covers, the table)
PAPER_TABLES: dict[str, tuple[int, list[PaperRow]]] = {
    "inception_v1": (1, _GOOGLENET),
    "alexnet_paper": (2, _ALEXNET),
}


def attach(rows, name: str) -> list[str]:
    """Set `row.paper` on the last summary row each printed line covers; returns notes naming
    printed lines that cover several rows."""
    by_name = {row.name: row for row in rows}
    notes = []
    for printed in PAPER_TABLES[name][1]:
        covered = [by_name[path] for path in printed.covers if path in by_name]
        if not covered:
            continue
        last = covered[-1]
        last.paper = PaperComparison(
            printed,
            sum(r.params for r in covered),
            sum(r.macs for r in covered),
            last.output_shape,
        )
        if len(covered) > 1:
            notes.append(f"'{printed.label}' of the paper's table is "
                         f"{' + '.join(r.name for r in covered)}, compared on row {last.name}")
    return notes
