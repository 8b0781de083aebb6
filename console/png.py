"""A small RGB raster and its PNG encoding, in pure Python (zlib and struct, no dependency).

The report draws its charts here: lines, vertical spans between two curves (the shaded
drawdown), rectangles, and text in a built-in 5×7 bitmap font. Coordinates are pixels, with
(0, 0) the top-left corner and y growing downwards; floats are rounded and anything outside
the canvas is clipped, so a caller never has to clip itself. The encoding is a plain PNG:
signature, IHDR (8-bit RGB), one IDAT (every row with filter type 0), IEND, each chunk with
its CRC.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence

Color = tuple[int, int, int]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

GLYPH_WIDTH = 5
GLYPH_HEIGHT = 7
GLYPH_ADVANCE = GLYPH_WIDTH + 1
"""Horizontal distance from one character to the next, in font pixels (one blank column)."""

# One glyph a line: the character (or a name for the ones that are whitespace or special),
# then its 7 rows of 5 columns, `#` on and `.` off. Lower case is drawn with the upper case.
_FONT_SOURCE = """
0 .###. #...# #..## #.#.# ##..# #...# .###.
1 ..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.
2 .###. #...# ....# ...#. ..#.. .#... #####
3 ##### ...#. ..#.. ...#. ....# #...# .###.
4 ...#. ..##. .#.#. #..#. ##### ...#. ...#.
5 ##### #.... ####. ....# ....# #...# .###.
6 ..##. .#... #.... ####. #...# #...# .###.
7 ##### ....# ...#. ..#.. .#... .#... .#...
8 .###. #...# #...# .###. #...# #...# .###.
9 .###. #...# #...# .#### ....# ...#. .##..
A .###. #...# #...# ##### #...# #...# #...#
B ####. #...# #...# ####. #...# #...# ####.
C .###. #...# #.... #.... #.... #...# .###.
D ###.. #..#. #...# #...# #...# #..#. ###..
E ##### #.... #.... ####. #.... #.... #####
F ##### #.... #.... ####. #.... #.... #....
G .###. #...# #.... #.### #...# #...# .####
H #...# #...# #...# ##### #...# #...# #...#
I .###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.
J ..### ...#. ...#. ...#. ...#. #..#. .##..
K #...# #..#. #.#.. ##... #.#.. #..#. #...#
L #.... #.... #.... #.... #.... #.... #####
M #...# ##.## #.#.# #.#.# #...# #...# #...#
N #...# #...# ##..# #.#.# #..## #...# #...#
O .###. #...# #...# #...# #...# #...# .###.
P ####. #...# #...# ####. #.... #.... #....
Q .###. #...# #...# #...# #.#.# #..#. .##.#
R ####. #...# #...# ####. #.#.. #..#. #...#
S .#### #.... #.... .###. ....# ....# ####.
T ##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..
U #...# #...# #...# #...# #...# #...# .###.
V #...# #...# #...# #...# #...# .#.#. ..#..
W #...# #...# #...# #.#.# #.#.# #.#.# .#.#.
X #...# #...# .#.#. ..#.. .#.#. #...# #...#
Y #...# #...# .#.#. ..#.. ..#.. ..#.. ..#..
Z ##### ....# ...#. ..#.. .#... #.... #####
. ..... ..... ..... ..... ..... .##.. .##..
- ..... ..... ..... ##### ..... ..... .....
: ..... .##.. .##.. ..... .##.. .##.. .....
% ##... ##..# ...#. ..#.. .#... #..## ...##
/ ..... ....# ...#. ..#.. .#... #.... .....
+ ..... ..#.. ..#.. ##### ..#.. ..#.. .....
( ...#. ..#.. .#... .#... .#... ..#.. ...#.
) .#... ..#.. ...#. ...#. ...#. ..#.. .#...
, ..... ..... ..... ..... .##.. ..#.. .#...
_ ..... ..... ..... ..... ..... ..... #####
= ..... ..... ##### ..... ##### ..... .....
' ..#.. ..#.. .#... ..... ..... ..... .....
& .##.. #..#. #.#.. .#... #.#.# #..#. .##.#
space ..... ..... ..... ..... ..... ..... .....
unknown .###. #...# ....# ...#. ..#.. ..... ..#..
"""


def _parse_font(source: str) -> dict[str, tuple[tuple[int, int], ...]]:
    """Each glyph as the (column, row) of its lit pixels."""
    names = {"space": " "}
    font: dict[str, tuple[tuple[int, int], ...]] = {}
    for line in source.strip().splitlines():
        name, *rows = line.split()
        if len(rows) != GLYPH_HEIGHT or any(len(row) != GLYPH_WIDTH for row in rows):
            raise ValueError(f"font glyph {name!r} is not {GLYPH_WIDTH}x{GLYPH_HEIGHT}")
        font[names.get(name, name)] = tuple(
            (column, row)
            for row, bits in enumerate(rows)
            for column, bit in enumerate(bits)
            if bit == "#"
        )
    return font


FONT = _parse_font(_FONT_SOURCE)
"""The built-in font: digits, upper-case letters, `.-:%/+(),_='&` and space; any other
character is drawn as `unknown` (a question mark)."""


def _check_color(color: Color) -> bytes:
    if len(color) != 3 or any(not isinstance(c, int) or not 0 <= c <= 255 for c in color):
        raise ValueError(f"a color is three ints 0..255, got {color!r}")
    return bytes(color)


def _check_alpha(alpha: float) -> float:
    if not 0.0 <= alpha <= 1.0:  # also refuses NaN
        raise ValueError(f"alpha is between 0 and 1, got {alpha!r}")
    return alpha


def _pixel(value: float) -> int:
    """The pixel index of a coordinate (half up, so 2.5 and 3.5 do not round differently)."""
    return math.floor(value + 0.5)


class Canvas:
    """An RGB image in memory, drawn on with clipped primitives, encoded by `to_png`."""

    def __init__(self, width: int, height: int, background: Color = (255, 255, 255)) -> None:
        if not isinstance(width, int) or not isinstance(height, int):
            raise ValueError(f"canvas size must be ints, got {width!r}x{height!r}")
        if not 0 < width <= 16384 or not 0 < height <= 16384:
            raise ValueError(f"canvas size must be 1..16384 per side, got {width}x{height}")
        self.width = width
        self.height = height
        self._pixels = bytearray(_check_color(background) * (width * height))

    # -- pixels ----------------------------------------------------------------------------
    def get(self, x: int, y: int) -> Color:
        """The color at (x, y)."""
        if not (0 <= x < self.width and 0 <= y < self.height):
            raise IndexError(f"({x}, {y}) is outside the {self.width}x{self.height} canvas")
        at = (y * self.width + x) * 3
        return (self._pixels[at], self._pixels[at + 1], self._pixels[at + 2])

    def _put(self, x: int, y: int, rgb: bytes, alpha: float) -> None:
        if not (0 <= x < self.width and 0 <= y < self.height):
            return
        at = (y * self.width + x) * 3
        if alpha >= 1.0:
            self._pixels[at : at + 3] = rgb
            return
        keep = 1.0 - alpha
        for i in range(3):
            self._pixels[at + i] = round(self._pixels[at + i] * keep + rgb[i] * alpha)

    def _span(self, x: int, y0: int, y1: int, rgb: bytes, alpha: float) -> None:
        """Column x from row y0 to row y1, both included (clipped)."""
        if not 0 <= x < self.width:
            return
        top, bottom = max(min(y0, y1), 0), min(max(y0, y1), self.height - 1)
        for y in range(top, bottom + 1):
            self._put(x, y, rgb, alpha)

    # -- primitives --------------------------------------------------------------------------
    def rect(
        self,
        x0: float,
        y0: float,
        x1: float,
        y1: float,
        color: Color,
        *,
        fill: bool = True,
        alpha: float = 1.0,
    ) -> None:
        """The rectangle with corners (x0, y0) and (x1, y1), both included: filled, or its
        one-pixel outline with `fill=False`."""
        rgb, alpha = _check_color(color), _check_alpha(alpha)
        left, right = sorted((_pixel(x0), _pixel(x1)))
        top, bottom = sorted((_pixel(y0), _pixel(y1)))
        if not fill:
            for x in (left, right):
                self._span(x, top, bottom, rgb, alpha)
            for y in (top, bottom):
                self._row(left, right, y, rgb, alpha)
            return
        for y in range(max(top, 0), min(bottom, self.height - 1) + 1):
            self._row(left, right, y, rgb, alpha)

    def _row(self, x0: int, x1: int, y: int, rgb: bytes, alpha: float) -> None:
        if not 0 <= y < self.height:
            return
        left, right = max(x0, 0), min(x1, self.width - 1)
        if left > right:
            return
        if alpha >= 1.0:
            start = (y * self.width + left) * 3
            self._pixels[start : start + (right - left + 1) * 3] = rgb * (right - left + 1)
            return
        for x in range(left, right + 1):
            self._put(x, y, rgb, alpha)

    def line(
        self,
        x0: float,
        y0: float,
        x1: float,
        y1: float,
        color: Color,
        width: int = 1,
        *,
        dash: int = 0,
    ) -> None:
        """A straight line `width` pixels thick (a square brush on each step of Bresenham's
        walk); with `dash` > 0, alternately `dash` steps drawn and `dash` steps left out."""
        rgb = _check_color(color)
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"line width must be an int >= 1, got {width!r}")
        x, y, x_end, y_end = _pixel(x0), _pixel(y0), _pixel(x1), _pixel(y1)
        dx, dy = abs(x_end - x), -abs(y_end - y)
        step_x, step_y = (1 if x_end >= x else -1), (1 if y_end >= y else -1)
        error = dx + dy
        before = (width - 1) // 2
        after = width - 1 - before
        step = 0
        while True:
            if dash <= 0 or (step // dash) % 2 == 0:
                if width == 1:
                    self._put(x, y, rgb, 1.0)
                else:
                    for row in range(y - before, y + after + 1):
                        self._row(x - before, x + after, row, rgb, 1.0)
            if x == x_end and y == y_end:
                return
            step += 1
            doubled = 2 * error
            if doubled >= dy:
                error += dy
                x += step_x
            if doubled <= dx:
                error += dx
                y += step_y

    def polyline(
        self, xs: Sequence[float], ys: Sequence[float], color: Color, width: int = 1
    ) -> None:
        """Lines through the points (xs[i], ys[i]) in order; one point draws a dot."""
        if len(xs) != len(ys):
            raise ValueError(f"{len(xs)} x values for {len(ys)} y values")
        if len(xs) == 1:
            self.line(xs[0], ys[0], xs[0], ys[0], color, width)
        for i in range(1, len(xs)):
            self.line(xs[i - 1], ys[i - 1], xs[i], ys[i], color, width)

    def fill_between(
        self,
        xs: Sequence[float],
        ys_top: Sequence[float],
        ys_bottom: Sequence[float],
        color: Color,
        alpha: float = 1.0,
    ) -> None:
        """Shade, in every pixel column from xs[0] to xs[-1], the vertical span between the
        two curves (each linear between its points). `xs` must not decrease. Each column is
        painted once, so a translucent shade is even where points crowd into one column."""
        rgb, alpha = _check_color(color), _check_alpha(alpha)
        if not len(xs) == len(ys_top) == len(ys_bottom):
            raise ValueError(
                f"fill_between needs as many points per curve: {len(xs)} x, "
                f"{len(ys_top)} top, {len(ys_bottom)} bottom"
            )
        spans: dict[int, tuple[float, float]] = {}

        def take(column: int, top: float, bottom: float) -> None:
            low, high = min(top, bottom), max(top, bottom)
            known = spans.get(column)
            spans[column] = (
                (low, high) if known is None else (min(known[0], low), max(known[1], high))
            )

        for i, x in enumerate(xs):
            take(_pixel(x), ys_top[i], ys_bottom[i])
            if i == 0:
                continue
            x_prev = xs[i - 1]
            if x < x_prev:
                raise ValueError(f"fill_between x values must not decrease: {x_prev} then {x}")
            if x == x_prev:
                continue
            for column in range(_pixel(x_prev), _pixel(x) + 1):
                share = min(max((column - x_prev) / (x - x_prev), 0.0), 1.0)
                top = ys_top[i - 1] + (ys_top[i] - ys_top[i - 1]) * share
                bottom = ys_bottom[i - 1] + (ys_bottom[i] - ys_bottom[i - 1]) * share
                take(column, top, bottom)
        for column, (low, high) in spans.items():
            self._span(column, _pixel(low), _pixel(high), rgb, alpha)

    # -- text ------------------------------------------------------------------------------
    @staticmethod
    def text_width(text: str, scale: int = 1) -> int:
        """Width in pixels of `text` drawn at `scale` (without the trailing blank column)."""
        if not text:
            return 0
        return (len(text) * GLYPH_ADVANCE - 1) * scale

    def text(self, x: float, y: float, text: str, color: Color, scale: int = 1) -> int:
        """`text` in the built-in font with its top-left corner at (x, y), each font pixel a
        `scale`×`scale` square; the width drawn."""
        rgb = _check_color(color)
        if not isinstance(scale, int) or scale < 1:
            raise ValueError(f"text scale must be an int >= 1, got {scale!r}")
        left, top = _pixel(x), _pixel(y)
        for index, char in enumerate(text.upper()):
            glyph = FONT.get(char, FONT["unknown"])
            origin = left + index * GLYPH_ADVANCE * scale
            for column, row in glyph:
                px, py = origin + column * scale, top + row * scale
                for dy in range(scale):
                    self._row(px, px + scale - 1, py + dy, rgb, 1.0)
        return self.text_width(text, scale)

    # -- encoding --------------------------------------------------------------------------
    def to_png(self) -> bytes:
        """The image as PNG bytes (8-bit RGB, no interlace)."""
        stride = self.width * 3
        raw = b"".join(
            b"\x00" + bytes(self._pixels[row * stride : (row + 1) * stride])
            for row in range(self.height)
        )
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return b"".join(
            (
                PNG_SIGNATURE,
                _chunk(b"IHDR", header),
                _chunk(b"IDAT", zlib.compress(raw, 6)),
                _chunk(b"IEND", b""),
            )
        )


def _chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, and the CRC-32 of type and data."""
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
