"""The sheet's map: the parcel with its numbered vertices, the parcels, roads and commune limit
around it, a north arrow and a metric scale bar, drawn as PDF vectors (no raster, no browser).

Coordinates are REGVEN / UTM metres, so one scale serves both axes and the arrow points to grid
north (up)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import segno
from reportlab.lib import colors
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable

from geo_comuna.maps.sheet.fonts import BOLD, SANS
from geo_comuna.maps.sheet.reads import ParcelSheet

PARCEL_FILL = colors.Color(1.0, 0.85, 0.55)
PARCEL_LINE = colors.Color(0.65, 0.1, 0.05)
OTHER_FILL = colors.Color(0.93, 0.93, 0.93)
OTHER_LINE = colors.Color(0.55, 0.55, 0.55)
ROAD_LINE = colors.Color(0.55, 0.4, 0.25)
LIMIT_LINE = colors.Color(0.15, 0.15, 0.5)


def polygons(geometry: dict[str, Any] | None) -> Iterator[list[list[list[float]]]]:
    """Every polygon (its rings) of a GeoJSON geometry, whatever kind a cut left."""
    if not geometry:
        return
    kind = geometry["type"]
    if kind == "Polygon":
        yield geometry["coordinates"]
    elif kind == "MultiPolygon":
        yield from geometry["coordinates"]
    elif kind == "GeometryCollection":
        for part in geometry["geometries"]:
            yield from polygons(part)


def lines(geometry: dict[str, Any] | None) -> Iterator[list[list[float]]]:
    """Every line of a GeoJSON geometry (polygons' rings excluded)."""
    if not geometry:
        return
    kind = geometry["type"]
    if kind == "LineString":
        yield geometry["coordinates"]
    elif kind == "MultiLineString":
        yield from geometry["coordinates"]
    elif kind == "GeometryCollection":
        for part in geometry["geometries"]:
            yield from lines(part)


def nice_length(most: float) -> float:
    """The longest 1, 2 or 5 times a power of ten that is at most ``most`` (m)."""
    if most <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(most))
    return max(step * power for step in (1, 2, 5) if step * power <= most)


class Plan(Flowable):
    """The map of one sheet, ``width`` x ``height`` points."""

    def __init__(self, sheet: ParcelSheet, width: float, height: float, words: dict[str, str]):
        super().__init__()
        self.sheet, self.width, self.height, self.words = sheet, width, height, words
        x0, y0, x1, y1 = sheet.frame
        self.k = min(width / max(x1 - x0, 1e-6), height / max(y1 - y0, 1e-6))  # pt per m
        self.cx, self.cy = (x0 + x1) / 2, (y0 + y1) / 2

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return self.width, self.height

    def xy(self, x: float, y: float) -> tuple[float, float]:
        return (
            self.width / 2 + (x - self.cx) * self.k,
            self.height / 2 + (y - self.cy) * self.k,
        )

    def _path(self, c: Canvas, rings: list[list[list[float]]]) -> Any:
        path = c.beginPath()
        for ring in rings:
            for i, (x, y) in enumerate(pt[:2] for pt in ring):
                px, py = self.xy(x, y)
                path.moveTo(px, py) if i == 0 else path.lineTo(px, py)
            path.close()
        return path

    def _line(self, c: Canvas, coords: list[list[float]]) -> None:
        path = c.beginPath()
        for i, (x, y) in enumerate(pt[:2] for pt in coords):
            px, py = self.xy(x, y)
            path.moveTo(px, py) if i == 0 else path.lineTo(px, py)
        c.drawPath(path, stroke=1, fill=0)

    def draw(self) -> None:
        c: Canvas = self.canv
        c.saveState()
        clip = c.beginPath()
        clip.rect(0, 0, self.width, self.height)
        c.clipPath(clip, stroke=0, fill=0)
        self._others(c)
        self._parcel(c)
        c.restoreState()
        c.setStrokeColor(colors.black)
        c.setLineWidth(0.6)
        c.rect(0, 0, self.width, self.height, stroke=1, fill=0)
        self._north(c)
        self._scale(c)

    def _others(self, c: Canvas) -> None:
        c.setLineWidth(0.5)
        c.setStrokeColor(OTHER_LINE)
        c.setFillColor(OTHER_FILL)
        for other in self.sheet.neighbours:
            for rings in polygons(other["shape"]):
                c.drawPath(self._path(c, rings), stroke=1, fill=1, fillMode=1)
        c.setLineWidth(2.2)
        c.setStrokeColor(ROAD_LINE)
        for road in self.sheet.roads:
            for coords in lines(road):
                self._line(c, coords)
        c.setLineWidth(1.4)
        c.setDash(6, 3)
        c.setStrokeColor(LIMIT_LINE)
        for coords in lines(self.sheet.commune_line):
            self._line(c, coords)
        c.setDash()
        c.setFont(SANS, 6.5)
        c.setFillColor(colors.Color(0.3, 0.3, 0.3))
        for other in self.sheet.neighbours:  # each code at its piece's largest box's centre
            boxes = [_box(rings[0]) for rings in polygons(other["shape"]) if rings]
            if not boxes or other.get("code") is None:
                continue
            x0, y0, x1, y1 = max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
            px, py = self.xy((x0 + x1) / 2, (y0 + y1) / 2)
            c.drawCentredString(px, py - 2, str(other["code"]))

    def _parcel(self, c: Canvas) -> None:
        c.setLineWidth(1.3)
        c.setStrokeColor(PARCEL_LINE)
        c.setFillColor(PARCEL_FILL)
        for rings in polygons(self.sheet.shape):
            c.drawPath(self._path(c, rings), stroke=1, fill=1, fillMode=1)
        # vertex numbers, pushed away from the parcel's middle so they sit outside its corner;
        # vertices whose numbers would overlap on paper share one label ("8–10")
        x0, y0, x1, y1 = _box([v for rings in polygons(self.sheet.shape) for v in rings[0]])
        mx, my = self.xy((x0 + x1) / 2, (y0 + y1) / 2)
        c.setFont(BOLD, 7)
        labels = _Labels()
        shown = _labelled(self.sheet.shape, self.sheet.vertices)
        for vertex in self.sheet.vertices:
            px, py = self.xy(vertex.easting, vertex.northing)
            c.setFillColor(PARCEL_LINE)
            c.circle(px, py, 1.4, stroke=0, fill=1)
            if vertex.number not in shown:
                continue
            dx, dy = px - mx, py - my
            norm = math.hypot(dx, dy) or 1.0
            labels.add(px + 7 * dx / norm, py + 7 * dy / norm - 2.4, vertex.number)
        c.setFillColor(colors.black)
        for lx, ly, numbers in labels.placed:
            c.drawCentredString(lx, ly, numbered(numbers))

    def _north(self, c: Canvas) -> None:
        x, y = self.width - 16, self.height - 34
        path = c.beginPath()
        path.moveTo(x, y + 22)
        path.lineTo(x - 6, y)
        path.lineTo(x, y + 6)
        path.lineTo(x + 6, y)
        path.close()
        c.setFillColor(colors.black)
        c.setStrokeColor(colors.black)
        c.setLineWidth(0.5)
        c.drawPath(path, stroke=1, fill=1)
        c.setFont(BOLD, 9)
        c.drawCentredString(x, y + 25, self.words["north"])

    def _scale(self, c: Canvas) -> None:
        """A bar of about a quarter of the map's width, in four blocks, black and white."""
        metres = nice_length(self.width / 4 / self.k)
        length = metres * self.k
        x, y = 10.0, 14.0
        c.setFillColor(colors.white)
        c.rect(x - 4, y - 10, length + 30, 24, stroke=0, fill=1)
        c.setLineWidth(0.5)
        c.setStrokeColor(colors.black)
        for i in range(4):
            c.setFillColor(colors.black if i % 2 == 0 else colors.white)
            c.rect(x + i * length / 4, y, length / 4, 3.5, stroke=1, fill=1)
        c.setFillColor(colors.black)
        c.setFont(SANS, 6.5)
        c.drawCentredString(x, y + 6, "0")
        c.drawCentredString(x + length, y + 6, f"{metres:g} m")
        # the printed page's scale: a point is 0.0254 / 72 m of paper; thousands grouped as
        # the sheet's language groups the lengths beside it (1:8.809; 1:8,809)
        denominator = round(72 / (0.0254 * self.k))
        c.drawString(x, y - 8, f"1:{denominator:,}".replace(",", self.words["thousands"]))


#: points (1/72 inch) two vertex labels' anchors must lie apart to be drawn apart: a 7-point
#: number of two digits is ~8 points wide (found from outside: vertices 0.1 m apart printed
#: their numbers one over the other, "24" and "25" read as "2S")
LABEL_APART = 10.0


#: vertices a plan labels before it labels only the outer rings' (the table lists them all)
MAX_LABELLED = 120


def _labelled(shape: dict[str, Any], vertices: list[Any]) -> set[int]:
    """The numbers of the vertices the plan labels: all of them, or past MAX_LABELLED those
    of the outer rings only (found from outside: a parcel of 400 holes was a black mass of
    numbers); the coordinates' table lists every vertex either way."""
    every = {v.number for v in vertices}
    if len(every) <= MAX_LABELLED:
        return every
    outer = {(round(x, 2), round(y, 2)) for rings in polygons(shape) for x, y, *_ in rings[0]}
    return {v.number for v in vertices if (round(v.easting, 2), round(v.northing, 2)) in outer}


class _Labels:
    """Vertex labels at their anchors, a number joining the label whose anchor lies within
    LABEL_APART of its own; found through a grid of LABEL_APART cells (a parcel may have
    tens of thousands of vertices: comparing each with every label was quadratic)."""

    def __init__(self) -> None:
        self.placed: list[tuple[float, float, list[int]]] = []
        self._cells: dict[tuple[int, int], list[int]] = {}

    def add(self, x: float, y: float, number: int) -> None:
        near = self._near(x, y)
        if near is not None:
            self.placed[near][2].append(number)
            return
        self._cells.setdefault(self._cell(x, y), []).append(len(self.placed))
        self.placed.append((x, y, [number]))

    def _near(self, x: float, y: float) -> int | None:
        cx, cy = self._cell(x, y)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for i in self._cells.get((cx + dx, cy + dy), ()):
                    lx, ly, _ = self.placed[i]
                    if math.hypot(x - lx, y - ly) < LABEL_APART:
                        return i
        return None

    @staticmethod
    def _cell(x: float, y: float) -> tuple[int, int]:
        return int(x // LABEL_APART), int(y // LABEL_APART)


def numbered(numbers: list[int]) -> str:
    """Vertex numbers as one label: runs as ranges, "8–10, 25"."""
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"{r[0]}–{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def _box(coords: list[list[float]]) -> tuple[float, float, float, float]:
    xs = [p[0] for p in coords]
    ys = [p[1] for p in coords]
    return min(xs), min(ys), max(xs), max(ys)


class QrCode(Flowable):
    """The QR code of ``text``, ``size`` points square with its quiet zone, as one vector path:
    segno encodes it, each row's runs of dark modules become one rectangle (a few hundred
    PDF operators instead of one shape per module).

    The mask is fixed: every mask makes a valid code, and choosing the best of the eight
    (which only evens out the pattern for old readers) was a third of a sheet's drawing time."""

    def __init__(self, text: str, size: float):
        super().__init__()
        self.matrix = segno.make(text, error="m", micro=False, mask=0).matrix
        self.size = size

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return self.size, self.size

    def draw(self) -> None:
        c: Canvas = self.canv
        n = len(self.matrix) + 8  # 4 modules of quiet zone each way
        module = self.size / n
        path = c.beginPath()
        for r, row in enumerate(self.matrix):
            y = self.size - (r + 5) * module
            start = None
            for col, dark in enumerate([*row, 0]):
                if dark and start is None:
                    start = col
                elif not dark and start is not None:
                    path.rect((start + 4) * module, y, (col - start) * module, module)
                    start = None
        c.setFillColor(colors.black)
        c.drawPath(path, stroke=0, fill=1)
