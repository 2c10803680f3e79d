"""`make contact-sheet`: one PNG showing sampled frames of a few videos, to check extraction by eye.

Reads the AdaCLIP frame layout `<FRAMES>/<video stem>/image_%05d.jpg`. Each row is one video (the
rows are spread evenly over the sorted videos unless `--video` names them), each cell one frame at
evenly spaced positions, all scaled into same-size cells by ffmpeg's `tile` filter. Every frame is a
separate ffmpeg input given as an argument, so folder names need no quoting or escaping; the filter
graph is built with ffmpeg-python.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import av
import ffmpeg

from pyutils.core.atomic import atomic_write_bytes
from pyutils.core.cli import Parser
from pyutils.core.errors import MediaError, UserError, run_cli
from pyutils.core.media import ffmpeg_command, require
from pyutils.core.report import log, say

FRAME_GLOB = "image_*.jpg"
GAP = 4  # pixels between cells and around the sheet


def spread(items: list, count: int) -> list:
    """`count` items at evenly spaced positions (first and last included); repeats if too few."""
    if count == 1 or len(items) == 1:
        return items[:1] * count
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


def pick_rows(frames: Path, videos: list[str], rows: int, columns: int) -> list[list[Path]]:
    if not frames.is_dir():
        raise UserError(f"{frames}: frame folder not found; set FRAMES= (run `make frames` first)")
    if videos:
        folders = [frames / video for video in videos]
        for folder in folders:
            if not any(folder.glob(FRAME_GLOB)):
                raise UserError(f"{folder}: no {FRAME_GLOB} frames for this video")
    else:
        folders = [d for d in sorted(frames.iterdir()) if d.is_dir() and any(d.glob(FRAME_GLOB))]
        if not folders:
            raise UserError(f"{frames}: no <video>/{FRAME_GLOB} frames found")
        folders = list(dict.fromkeys(spread(folders, min(rows, len(folders)))))
    return [spread(sorted(folder.glob(FRAME_GLOB)), columns) for folder in folders]


def cell_size(first_frame: Path, width: int) -> tuple[int, int]:
    """Cells keep the first frame's aspect ratio, with an even height."""
    try:
        with av.open(str(first_frame)) as image:
            context = image.streams.video[0].codec_context
            height = round(width * context.height / context.width / 2) * 2
    except (av.FFmpegError, IndexError, ZeroDivisionError) as exc:
        raise MediaError(f"{first_frame}: not a readable image ({exc})") from None
    return width, max(height, 2)


# Fonts for the row labels: the first found (Debian's fonts-dejavu-core is on most machines).
FONT_FOLDERS = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "/Library/Fonts",
    "/System/Library/Fonts",
)
FONT_NAMES = ("DejaVuSans.ttf", "LiberationSans-Regular.ttf", "Arial.ttf", "Helvetica.ttc")


def find_font() -> Path | None:
    for folder in FONT_FOLDERS:
        for name in FONT_NAMES:
            found = next(Path(folder).rglob(name), None) if Path(folder).is_dir() else None
            if found:
                return found
    return None


def sheet_command(
    grid: list[list[Path]], cell_w: int, cell_h: int, labels: dict[int, Path] | None = None
) -> list[str]:
    """The ffmpeg command that writes the grid's PNG to stdout. `labels` maps a row number to a
    text file holding its label (drawn over the row's first cell with the font `labels[-1]`):
    the text goes through a file, so a video name with quotes, colons or `%{` is drawn as it is."""
    labels = labels or {}
    frames = [frame for row in grid for frame in row]
    # ffmpeg-python merges identical inputs into one node, so a frame shown in several cells (a
    # video with fewer frames than columns) is read once and split.
    uses = Counter(frames)
    cells = {}
    for frame, count in uses.items():
        # pattern_type none: a literal path, even with % in a video name
        cell = ffmpeg.input(str(frame), f="image2", pattern_type="none")
        cell = cell.filter("scale", cell_w, cell_h, force_original_aspect_ratio="decrease")
        cell = cell.filter("pad", cell_w, cell_h, "(ow-iw)/2", "(oh-ih)/2", color="black")
        cell = cell.filter("setsar", 1).filter("format", "rgb24")
        split = cell.split() if count > 1 else None
        cells[frame] = iter([cell] if split is None else [split[i] for i in range(count)])
    nodes = []
    for number, row in enumerate(grid):
        for column, frame in enumerate(row):
            node = next(cells[frame])
            if column == 0 and number in labels:
                node = node.drawtext(
                    fontfile=str(labels[-1]),
                    textfile=str(labels[number]),
                    expansion="none",
                    fontsize=max(8, cell_h // 9),
                    fontcolor="white",
                    box=1,
                    boxcolor="black@0.6",
                    x=3,
                    y="h-th-3",
                )
            nodes.append(node)
    joined = ffmpeg.concat(*nodes, v=1, a=0)
    layout = f"{len(grid[0])}x{len(grid)}"
    sheet = joined.filter("tile", layout, padding=GAP, margin=GAP, color="white")
    return ffmpeg_command(sheet.output("-", f="image2pipe", vcodec="png", **{"frames:v": 1}))


def render(grid: list[list[Path]], width: int, labelled: bool = True) -> bytes:
    """The PNG bytes of the grid, made by one ffmpeg run; each row labelled with its video's name
    when a font is found."""
    cell_w, cell_h = cell_size(grid[0][0], width)
    require("contact sheet")
    font = find_font() if labelled else None
    with tempfile.TemporaryDirectory(prefix="vlprep-sheet-") as folder:
        labels: dict[int, Path] = {}
        if font is not None:
            labels[-1] = font
            for number, row in enumerate(grid):
                labels[number] = Path(folder) / f"row{number}.txt"
                labels[number].write_text(row[0].parent.name, encoding="utf-8")
        result = subprocess.run(sheet_command(grid, cell_w, cell_h, labels), capture_output=True)
    if result.returncode != 0 or not result.stdout:
        reason = result.stderr.decode(errors="replace").strip() or "no output"
        raise MediaError(f"ffmpeg could not build the contact sheet: {reason}")
    if labelled and font is None:
        log("contact sheet: no font found (e.g. fonts-dejavu-core): rows are not labelled")
    return result.stdout


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        prog="python -m pyutils.video.contact_sheet",
        description=__doc__,
        make_names={"frames": "FRAMES", "video": "VIDEO", "output": "SHEET"},
    )
    parser.add_argument("frames", type=Path, help="frame folder: <video stem>/image_%%05d.jpg")
    parser.add_argument("--video", action="append", default=[], help="a video stem (repeatable)")
    parser.add_argument("--rows", type=int, default=4, help="videos when --video is not given")
    parser.add_argument("--columns", type=int, default=8, help="frames per video")
    parser.add_argument("--cell-width", type=int, default=160, help="pixels per frame")
    parser.add_argument("-o", "--output", type=Path, help="PNG (default <FRAMES>_contact.png)")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.columns < 1 or args.cell_width < 2:
        raise UserError("--rows and --columns must be >= 1, --cell-width >= 2")
    frames = args.frames
    output = args.output or frames.parent / f"{frames.resolve().name}_contact.png"
    write_contact_sheet(frames, output, args.video, args.rows, args.columns, args.cell_width)
    return 0


def write_contact_sheet(
    frames: Path,
    output: Path,
    videos: list[str] | None = None,
    rows: int = 4,
    columns: int = 8,
    cell_width: int = 160,
) -> list[str]:
    """Write the sheet atomically; return the video stems of its rows, top to bottom."""
    grid = pick_rows(frames, videos or [], rows, columns)
    atomic_write_bytes(output, render(grid, cell_width))
    stems = [row[0].parent.name for row in grid]
    say(
        f"contact sheet: {output} ({len(grid)} videos x {columns} frames, rows: {', '.join(stems)})"
    )
    return stems


if __name__ == "__main__":
    run_cli(main)
