"""Replay AdaCLIP's frame loading (`datasets/dataset.py`, `BaseDataset.sample_images`) on a split.

For a video id `vid` the loader counts `glob.glob1(frames_dir/vid, "*.jpg")` (N, hidden files
left out), picks frame indices from 0..N-1 (uniformly: `np.linspace(0, N, num_frm,
endpoint=False, dtype=int)`; at random for training: `np.random.choice(N, num_frm,
replace=False)`, which raises when N < num_frm) and opens `frames_dir/vid/image_{i+1:05d}.jpg`
(`img_tmpl`). So every split video needs a folder of at least NUM_FRM frames named
image_00001.jpg ... image_N.jpg, each a JPEG. Without DEEP the frames the uniform sampler reads are
checked to start with a JPEG signature; with DEEP they are decoded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pyutils.adaclip.splits import RECIPES
from pyutils.core.errors import UserError
from pyutils.core.jsonio import read_json

# `num_frm` of AdaCLIP's configs/<dataset>.json (its command-line default is 2).
NUM_FRM = {"msrvtt": 16, "didemo": 32, "activitynet": 64}
IMG_TMPL = "image_{:05d}.jpg"
JPEG_SIGNATURE = b"\xff\xd8\xff"


def uniform_indices(frames: int, num_frm: int) -> list[int]:
    """`np.linspace(0, frames, num=num_frm, endpoint=False, dtype=int)`: i * frames / num_frm,
    truncated (NumPy computes the step frames/num_frm first, then multiplies)."""
    step = frames / num_frm
    return [int(float(i) * step) for i in range(num_frm)]


def decodes(path: Path) -> str:
    """ "" when `path` decodes as an image, else the decoder's reason."""
    import av

    try:
        with av.open(str(path)) as container:
            next(container.decode(video=0))
        return ""
    except (OSError, ValueError, StopIteration, av.FFmpegError) as exc:
        return getattr(exc, "strerror", None) or str(exc) or "no frame"


def is_jpeg(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(3) == JPEG_SIGNATURE
    except OSError:
        return False


def check_video(folder: Path, vid: str, num_frm: int, deep: bool) -> tuple[int, list[str]]:
    """(frames found, problems) for one split video."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return 0, [f"missing: no frame folder {folder} (AdaCLIP skips or replaces the sample)"]
    except NotADirectoryError:
        return 0, [f"missing: {folder} is a file, not a frame folder"]
    jpgs = {n for n in names if n.endswith(".jpg") and not n.startswith(".")}
    count = len(jpgs)
    if not count:
        return 0, [f"missing: no .jpg frames in {folder}"]
    problems = []
    if count < num_frm:
        problems.append(
            f"too_few_frames: {vid}: {count} frames < NUM_FRM {num_frm} (AdaCLIP's random "
            "sampler raises; the uniform one repeats frames)"
        )
    expected = {IMG_TMPL.format(i) for i in range(1, count + 1)}
    if jpgs != expected:
        absent = sorted(expected - jpgs)
        problems.append(
            f"bad_names: {vid}: {len(absent)} of image_00001.jpg..{IMG_TMPL.format(count)} absent "
            f"(first: {absent[0]}); AdaCLIP opens {IMG_TMPL.replace('{:05d}', '%05d')} 1..N"
        )
    for index in sorted(set(uniform_indices(count, num_frm))):
        path = folder / IMG_TMPL.format(index + 1)
        if path.name not in jpgs:
            continue
        reason = decodes(path) if deep else ("" if is_jpeg(path) else "no JPEG signature")
        if reason:
            problems.append(f"not_jpeg: {path}: {reason}")
            break
    return count, problems


def split_files(annots: Path) -> dict[str, list[Path]]:
    """dataset -> the split files present in `annots/<its folder>/` (train, val, test)."""
    found = {}
    for name, recipe in RECIPES.items():
        files = [annots / recipe.output_folder / f"{s}.json" for s in recipe.names]
        present = [f for f in files if f.is_file()]
        if present:
            found[name] = present
    return found


def check_split(split: Path, frames: Path, num_frm: int, deep: bool) -> list[dict[str, Any]]:
    """One result per video of an AdaCLIP split file, in its order."""
    annotations = read_json(split)
    if not isinstance(annotations, dict):
        raise UserError(f"{split}: expected AdaCLIP's {{video id: annotation}} object")
    label = f"{split.parent.name}/{split.stem}"
    results = []
    for index, vid in enumerate(annotations):
        count, problems = check_video(frames / vid, vid, num_frm, deep)
        results.append(
            {
                "dataset": label,
                "index": index,
                "video": vid,
                "video_frames": count,
                "video_tokens": None,
                "text_tokens": None,
                "problems": problems,
            }
        )
    return results
