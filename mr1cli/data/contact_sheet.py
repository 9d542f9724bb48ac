"""A contact sheet: a grid of examples, each image enlarged with its question and answer below."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from mr1cli.core.errors import ConfigError

_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
_FONT_FILES = ("DejaVuSans.ttf",)  # has ∠ and °; Pillow's built-in font is the fallback
_PAD = 6


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for name in _FONT_FILES:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def wrap(text: str, fits: Callable[[str], bool], max_lines: int = 8) -> list[str]:
    """Greedy word wrap: as many words per line as `fits(line)` allows; long texts end with '…'.

    >>> wrap("a b c d", lambda line: len(line) <= 3)
    ['a b', 'c d']
    """
    lines: list[str] = []
    for word in text.split():
        if lines and fits(f"{lines[-1]} {word}"):
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] += " …"
    return lines


def _enlarge(image: Image.Image, cell: int) -> Image.Image:
    """Fit the image in a cell × cell square; integer upscales keep the pixels sharp."""
    image = image.convert("RGB")
    scale = cell / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    method = Image.Resampling.NEAREST if scale >= 1 and scale.is_integer() else Image.Resampling.LANCZOS
    return image.resize(size, method)


def sheet_format(path: Path) -> str:
    """The image format a file name asks for.

    >>> sheet_format(Path("sheet.jpg"))
    'JPEG'
    """
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"--out {path}: unknown image type '{path.suffix}' (use {', '.join(_FORMATS)})")
    return fmt


def make_contact_sheet(
    items: list[tuple[Image.Image, str, str]], out_png: Path, columns: int = 4, cell: int = 224
) -> Path:
    """Draw (image, question, answer) triples in a grid; save it in the format of out_png's suffix."""
    if not items:
        raise ValueError("a contact sheet needs at least one item")
    font = _font(max(10, cell // 17))
    line_height = round(font.getbbox("Ag∠")[3] * 1.25)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def fits(line: str) -> bool:
        return measure.textlength(line, font=font) <= cell

    texts = [(wrap(question, fits), wrap(f"answer: {answer}", fits)) for _, question, answer in items]
    text_height = max(len(q) + len(a) for q, a in texts) * line_height
    columns = max(1, min(columns, len(items)))
    rows = -(-len(items) // columns)
    cell_w, cell_h = cell + 2 * _PAD, cell + text_height + 3 * _PAD
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    for k, ((image, _, _), (question_lines, answer_lines)) in enumerate(zip(items, texts, strict=True)):
        left, top = (k % columns) * cell_w + _PAD, (k // columns) * cell_h + _PAD
        thumb = _enlarge(image, cell)
        sheet.paste(thumb, (left + (cell - thumb.width) // 2, top + (cell - thumb.height) // 2))
        draw.rectangle((left - 1, top - 1, left + cell, top + cell), outline=(200, 200, 200))
        lines = [(line, (20, 20, 20)) for line in question_lines] + [
            (line, (0, 110, 0)) for line in answer_lines
        ]
        for i, (line, colour) in enumerate(lines):
            draw.text((left, top + cell + _PAD + i * line_height), line, font=font, fill=colour)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out_png, format=sheet_format(out_png))
    return out_png
