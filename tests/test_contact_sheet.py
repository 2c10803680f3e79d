"""`python -m pyutils.video.contact_sheet`: a PNG grid, one row per video, of the expected size."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import pytest

from pyutils.core.media import find_ffmpeg
from pyutils.video.contact_sheet import GAP, find_font, pick_rows, render, spread
from tests.conftest import run_module

# video stem -> (frame size, frames): different sizes and counts, awkward names.
VIDEOS = {
    "v_demoA": ("320x240", 12),
    "wide clip": ("640x360", 5),
    "odd 'x' $(touch pwned) 100%": ("320x240", 3),
}


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sheet") / "frames"
    for stem, (size, count) in VIDEOS.items():
        folder = root / stem
        folder.mkdir(parents=True)
        pattern = str(folder).replace("%", "%%") + "/image_%05d.jpg"
        source = f"testsrc2=size={size}:rate=5"
        args = [find_ffmpeg(), "-nostdin", "-v", "error", "-f", "lavfi", "-i", source]
        subprocess.run([*args, "-frames:v", str(count), pattern], check=True)
    return root


def _pixels(path: Path):  # noqa: ANN202 - a numpy array
    with av.open(str(path)) as image:
        return next(image.decode(video=0)).to_ndarray(format="rgb24")


def _png_size(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as image:
        context = image.streams.video[0].codec_context
        return context.width, context.height


def test_one_row_per_video(frames: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.png"
    args = ("--columns", "6", "--cell-width", "100", "-o", str(sheet))
    result = run_module("pyutils.video.contact_sheet", str(frames), *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # cells keep the first video's 4:3 aspect: 100x76 (even height)
    assert _png_size(sheet) == (6 * 100 + 7 * GAP, 3 * 76 + 4 * GAP)
    assert "rows: odd 'x' $(touch pwned) 100%, v_demoA, wide clip)" in result.stdout
    assert not (tmp_path / "pwned").exists()


@pytest.mark.skipif(find_font() is None, reason="no font on this machine: rows are not labelled")
def test_rows_are_labelled_with_the_video_names(frames: Path, tmp_path: Path) -> None:
    """The label is drawn over the row's first cell: that cell differs from the unlabelled one,
    the next cells do not. A name with quotes, $(...) and % is drawn as text, not parsed."""
    grid = pick_rows(frames, [], rows=3, columns=2)
    unlabelled = tmp_path / "plain.png"
    unlabelled.write_bytes(render(grid, 100, labelled=False))
    labelled = tmp_path / "labelled.png"
    labelled.write_bytes(render(grid, 100))
    plain, marked = _pixels(unlabelled), _pixels(labelled)
    cell_w = 100
    first_cells = [(y, x) for y in range(plain.shape[0]) for x in range(GAP, GAP + cell_w)]
    assert any(plain[y, x].tolist() != marked[y, x].tolist() for y, x in first_cells[::7])
    second = slice(2 * GAP + cell_w, 2 * GAP + 2 * cell_w)
    assert (plain[:, second] == marked[:, second]).all()


def test_chosen_video_and_default_output(frames: Path) -> None:
    result = run_module("pyutils.video.contact_sheet", str(frames), "--video", "wide clip")
    assert result.returncode == 0, result.stderr
    sheet = frames.parent / "frames_contact.png"
    assert _png_size(sheet) == (8 * 160 + 9 * GAP, 90 + 2 * GAP)


def test_missing_frames_are_clear_errors(frames: Path, tmp_path: Path) -> None:
    result = run_module("pyutils.video.contact_sheet", str(frames), "--video", "nothing")
    assert result.returncode == 2 and "no image_*.jpg frames" in result.stderr
    result = run_module("pyutils.video.contact_sheet", str(tmp_path / "none"))
    assert result.returncode == 2 and "frame folder not found" in result.stderr


def test_spread_keeps_both_ends() -> None:
    assert spread(list(range(10)), 4) == [0, 3, 6, 9]
    assert spread([7], 3) == [7, 7, 7]
    assert spread([1, 2], 1) == [1]
