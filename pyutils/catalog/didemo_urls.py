"""The DiDeMo video URL list that `make didemo-videos` downloads, from LocalizingMoments' files.

DiDeMo's videos are YFCC100M Flickr videos; the multimedia-commons bucket keeps a copy of each
under its YFCC100M hash (LocalizingMoments' download/download_videos_AWS.py):
`<id>` is the second `_`-separated field of the video's name, `data/yfcc100m_hash.txt` maps it to
the hash (`<id>\\t<hash>` per line), and the URL is TEMPLATE with the hash's first three
characters, the next three, and the hash. Each line written is `URL<TAB><original name>`, so the
download keeps the name the splits use (the file holds an mp4 whatever its extension says;
`make didemo-mp4` decides by content).

    python -m pyutils.catalog.didemo_urls ANNOTATIONS_DIR OUT_LIST
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pyutils.core.atomic import atomic_write_text
from pyutils.core.errors import UserError, run_cli
from pyutils.core.jsonio import expect_keys, read_json, read_text
from pyutils.core.report import log

TEMPLATE = "https://multimedia-commons.s3-us-west-2.amazonaws.com/data/videos/mp4/{}/{}/{}.mp4"
SPLITS = ("train", "val", "test")
HASH_FILE = "yfcc100m_hash.txt"


def read_hashes(path: Path) -> dict[str, str]:
    lines = read_text(path, hint="run make didemo first").splitlines()
    hashes = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.strip().split("\t")
        if len(fields) != 2 or len(fields[1]) < 6:
            raise UserError(f"{path}:{number}: expected '<yfcc100m id><TAB><hash>', got {line!r}")
        hashes[fields[0]] = fields[1]
    return hashes


def annotated_videos(annotations: Path) -> list[str]:
    """Every video named by the split files, once, in split then annotation order."""
    videos: dict[str, None] = {}
    for split in SPLITS:
        path = annotations / f"{split}_data.json"
        records = read_json(path)
        if not isinstance(records, list):
            raise UserError(f"{path}: expected a JSON list of annotations")
        for index, record in enumerate(records):
            expect_keys(record, ("video",), f"{path}: [{index}]")
            videos[record["video"]] = None
    return list(videos)


def url_lines(videos: list[str], hashes: dict[str, str]) -> tuple[list[str], list[str]]:
    """(`URL<TAB>name` lines, videos with no known hash)."""
    lines, unknown = [], []
    for video in videos:
        fields = video.split("_")
        digest = hashes.get(fields[1]) if len(fields) > 1 else None
        if digest is None:
            unknown.append(video)
            continue
        lines.append(f"{TEMPLATE.format(digest[:3], digest[3:6], digest)}\t{video}")
    return lines, unknown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pyutils.catalog.didemo_urls", description=__doc__
    )
    parser.add_argument("annotations", type=Path, help="folder of {train,val,test}_data.json")
    parser.add_argument("out", type=Path, help="URL list to write")
    args = parser.parse_args(argv)
    lines, unknown = url_lines(
        annotated_videos(args.annotations), read_hashes(args.annotations / HASH_FILE)
    )
    header = (
        f"# DiDeMo videos from multimedia-commons ({len(lines)}), by pyutils.catalog.didemo_urls\n"
    )
    atomic_write_text(args.out, header + "".join(f"{line}\n" for line in lines))
    log(f"{args.out}: {len(lines)} video URLs")
    if unknown:
        log(f"warning: {len(unknown)} videos have no YFCC100M hash (first: {unknown[0]})")
    return 0


if __name__ == "__main__":
    run_cli(main)
