"""`make preflight`: what each trainer will do with what vlprep prepared, before training does.

    python -m pyutils.catalog.preflight --out OUT [--media-dir DIR] [--lf-datasets "a b"]
        [--video-fps 2.0 --video-maxlen 128 --video-max-pixels 65536 --video-min-pixels 256
         --cutoff-len 2048 --template qwen2_vl --tokenizer DIR --fit-share 1 --fit-keep frames]
        [--annots ANNOTS --frames FRAMES --dataset NAME --num-frm K] [--data DATA] [--deep]
        [--drop] [--report FILE]

- LLaMA-Factory / Qwen2-VL, Qwen2.5-VL, Qwen3-VL (`pyutils.llamafactory.replay`): every dataset
  of OUT/dataset_info.json with a `videos` column: paths as LLaMA-Factory resolves them, the
  frames it samples, the tokens each sample becomes, against CUTOFF_LEN. Container metadata
  only: no video is decoded. When samples are over CUTOFF_LEN, the settings under which they fit
  (`pyutils.llamafactory.fit`): a `to fit:` line and OUT/preflight_fit.yaml.
- AdaCLIP (`pyutils.adaclip.frames_check`): every video of the splits in ANNOTS has a frame
  folder its loader can sample NUM_FRM frames from.
- CLIP image datasets in DATA, by xtune's dataset classes (pyutils.catalog.xtune): every image
  path xtune builds from the split/caption files exists and is an image (DEEP decodes each);
  mini-ImageNet's class folders number the same classes in every split.

A summary table per dataset, a token histogram per LLaMA-Factory dataset, one JSON line per sample
in OUT/preflight.jsonl. Exit 0 when nothing is wrong, 1 when samples have problems, 2 for input
errors. With DROP the fitting samples of each LLaMA-Factory dataset are written beside it as
`<file>_fitting.json` and registered as `<name>_fitting` (the original entry untouched).
"""

from __future__ import annotations

import argparse
import math
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from pyutils.adaclip import frames_check
from pyutils.catalog.datasets import DATASETS, VIDEO_DATASETS, Dataset
from pyutils.catalog.layout import COMPLETE, ClassFolders, Inspection, ReferencedFiles
from pyutils.core.atomic import atomic_write_bytes
from pyutils.core.cli import Parser
from pyutils.core.errors import EXIT_ITEM_FAILURES, UserError, run_cli
from pyutils.core.jsonio import write_json
from pyutils.core.report import log
from pyutils.llamafactory import fit, replay
from pyutils.llamafactory.dataset_info import INFO_NAME, file_name_in, merge_dataset_info
from pyutils.llamafactory.qwen_video import Budget
from pyutils.llamafactory.trainer_args import add_budget_options, budget_from, number

REPORT_NAME = "preflight.jsonl"
FITTING = "_fitting"

# Table columns: problem kinds, by the word each problem string starts with.
COLUMN_OF = {
    replay.OVER_CUTOFF: "over budget",
    replay.MISREAD: "misread",
    replay.MISSING: "missing",
    replay.CWD_ONLY: "missing",
}
COLUMNS = ("over budget", "misread", "missing", "other")


def kind(problem: str) -> str:
    return problem.split(":", 1)[0]


# ---- CLIP image datasets ----------------------------------------------------------------------

IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")


def image_problem(path: Path, deep: bool) -> str:
    """ "" when `path` is an image (by its signature; decoded with `deep`), else why not."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
    except OSError as exc:
        return f"unreadable: {path}: {exc.strerror}"
    webp = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    if not webp and not head.startswith(IMAGE_SIGNATURES):
        return f"not_image: {path}: no JPEG, PNG, GIF, BMP or WebP signature"
    if deep:
        reason = frames_check.decodes(path)
        if reason:
            return f"not_image: {path}: does not decode ({reason})"
    return ""


def image_result(name: str, index: int | None, image: str, problems: list[str]) -> dict[str, Any]:
    return {
        "dataset": name,
        "index": index,
        "image": image,
        "video_frames": None,
        "video_tokens": None,
        "text_tokens": None,
        "problems": problems,
    }


def referenced_images(dataset: Dataset, root: Path) -> Iterable[tuple[str, Path | None, str]]:
    """(reference, path xtune opens or None, dataset-level problem) per image, by the same rules
    as `make check` (pyutils.catalog.xtune): each index file through its reader (ITC_Mscoco.
    read_train_data's image_id path, read_valtest_data's `image`, ITC_Flickr's `image`, Dassl's
    OxfordPets.read_split for Caltech101), each path exactly as xtune joins it; for mini-ImageNet
    MiniImageNet.read_data's class folders (same in every split, all in classnames.txt)."""
    layout = dataset.layout
    if isinstance(layout, ClassFolders):
        for problem in layout.problems(root):
            yield layout.classnames, None, f"invalid: {root}: {problem}"
        for split in layout.splits:
            for folder, _dirs, files in sorted(os.walk(root / split)):
                for name in sorted(files):
                    path = Path(folder) / name
                    yield str(path.relative_to(root)), path, ""
        return
    assert isinstance(layout, ReferencedFiles)
    found = Inspection(COMPLETE)
    for reference, path in layout.references(root, found):
        yield reference, Path(path) if os.path.isfile(path) else None, ""
    for problem in found.problems:
        missing = problem.removeprefix("missing ")
        yield (
            dataset.name,
            None,
            (f"missing: {root / missing}" if missing != problem else f"invalid: {problem}"),
        )


def clip_results(dataset: Dataset, data: Path, deep: bool) -> list[dict[str, Any]]:
    root = data / dataset.folder
    results, index = [], 0
    for reference, path, problem in referenced_images(dataset, root):
        if problem:
            results.append(image_result(dataset.name, None, reference, [problem]))
            continue
        if path is None:
            folder = os.path.normpath(root / dataset.layout.folder)
            problems = [f"missing: {reference} (xtune opens it under {folder})"]
        else:
            found = image_problem(path, deep)
            problems = [found] if found else []
        results.append(image_result(dataset.name, index, reference, problems))
        index += 1
    return results


def image_datasets(data: Path) -> list[Dataset]:
    videos = {d.name for d in VIDEO_DATASETS}
    return [
        d
        for d in DATASETS.values()
        if d.name not in videos
        and isinstance(d.layout, ReferencedFiles | ClassFolders)
        and (data / d.folder).is_dir()
    ]


# ---- the run ----------------------------------------------------------------------------------


@dataclass
class Section:
    """One dataset's results, and what its row of the table says."""

    name: str
    trainer: str
    results: list[dict[str, Any]]
    source: replay.Dataset | None = None

    @property
    def samples(self) -> list[dict[str, Any]]:
        return [r for r in self.results if r["index"] is not None]

    def counts(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for result in self.results:
            kinds = {COLUMN_OF.get(kind(p), "other") for p in result["problems"]}
            counts.update(kinds)
            counts["fitting"] += result["index"] is not None and not kinds
        return counts


def percentile(values: list[int], p: float) -> int:
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def histogram(totals: list[int], cutoff: int, width: int = 30) -> list[str]:
    """Four bins up to CUTOFF_LEN and one above it, as text bars."""
    edges = [cutoff * i // 4 for i in range(5)]
    bins = [(f"{edges[i]:>6}-{edges[i + 1] - 1:<6}", edges[i], edges[i + 1]) for i in range(4)]
    counts = [sum(low <= t < high for t in totals) for _, low, high in bins]
    counts[-1] += sum(t == cutoff for t in totals)
    labels = [label for label, _, _ in bins] + [f"> {cutoff:<11}"]
    counts.append(sum(t > cutoff for t in totals))
    peak = max(counts) or 1
    lines = []
    for label, count in zip(labels, counts, strict=True):
        bar = "#" * math.ceil(count / peak * width) if count else ""
        lines.append(f"  {label} | {bar:<{width}} {count}")
    return lines


def token_summary(section: Section) -> str:
    totals = [r["total_tokens"] for r in section.samples if "total_tokens" in r]
    if not totals:
        return "-"
    return "/".join(str(percentile(totals, p)) for p in (50, 90, 99, 100))


def summary_table(sections: list[Section], cutoff: int, found: fit.Fit | None = None) -> Table:
    """One row per dataset; with a fit that changes the settings, a column of the samples that
    fit under it (a sample with another problem fits under no setting)."""
    table = Table(title=f"preflight (tokens against CUTOFF_LEN {cutoff})")
    table.add_column("dataset", no_wrap=True)
    table.add_column("trainer")
    for column in ("samples", "fitting", *COLUMNS):
        table.add_column(column, justify="right")
    table.add_column("tokens p50/p90/p99/max", justify="right")
    under_fit = found is not None and found.budget is not None and found.needed_at_all
    if under_fit:
        table.add_column("fitting under the fit", justify="right")
    for section in sections:
        counts = section.counts()
        row = [
            section.name,
            section.trainer,
            f"{len(section.samples):,}",
            f"{counts['fitting']:,}",
            *(f"{counts[c]:,}" for c in COLUMNS),
            token_summary(section),
        ]
        if under_fit:
            keys = [(section.name, r["index"]) for r in section.samples]
            totals = [found.totals[k] for k in keys if k in found.totals]
            row.append(f"{sum(t <= cutoff for t in totals):,}" if section.source else "-")
        table.add_row(*row)
    return table


def write_report(path: Path, sections: list[Section]) -> None:
    lines = (
        orjson.dumps(result, option=orjson.OPT_APPEND_NEWLINE)
        for section in sections
        for result in section.results
    )
    atomic_write_bytes(path, b"".join(lines))


def drop_unfitting(section: Section, out: Path) -> str:
    """Write the fitting records beside the original file; register them under a new name."""
    dataset = section.source
    assert dataset is not None
    records = replay.read_records(dataset.path)
    keep = [records[r["index"]] for r in section.results if not r["problems"]]
    if not keep:
        return f"{dataset.name}: no sample fits; nothing written"
    target = dataset.path.with_name(f"{dataset.path.stem}{FITTING}.json")
    write_json(target, keep)
    name = f"{dataset.name}{FITTING}"
    merge_dataset_info(
        out / INFO_NAME, {name: {**dataset.entry, "file_name": file_name_in(out, target)}}
    )
    fit = f"{len(keep)} of {len(records)} samples fit"
    return f"{dataset.name}: {fit}; written to {target}, registered as {name}"


# ---- arguments --------------------------------------------------------------------------------


@dataclass
class Trainer:
    """What the LLaMA-Factory part found: its sections, the replay that made them, the samples
    other settings could fix (for the fit) and where the processor's pixel bounds came from."""

    sections: list[Section]
    run: replay.Replay
    priced: list[replay.Priced]
    bounds: str


def fit_options(args: argparse.Namespace) -> tuple[float, str]:
    share = number(args.fit_share, "FIT_SHARE", "--fit-share", float, 1e-9)
    if share > 1:
        raise UserError(f"FIT_SHARE={args.fit_share} (--fit-share): expected a share in (0, 1]")
    if args.fit_keep not in fit.KEEP_CHOICES:
        raise UserError(
            f"FIT_KEEP={args.fit_keep} (--fit-keep): expected {' or '.join(fit.KEEP_CHOICES)}"
        )
    return share, args.fit_keep


def llamafactory_sections(args: argparse.Namespace) -> Trainer | None:
    budget = budget_from(args)
    template = replay.find_template(args.template)
    names = args.lf_datasets.split()
    if not names and not (args.out / INFO_NAME).is_file():
        log(f"preflight: no {args.out / INFO_NAME}: LLaMA-Factory datasets not checked")
        return None
    tokenizer = Path(args.tokenizer) if args.tokenizer else None
    if tokenizer is not None and not tokenizer.is_dir():
        raise UserError(f"TOKENIZER={tokenizer} (--tokenizer): not a folder")
    vision = replay.base_vision(template)
    bounds = "the published defaults"
    if args.processor_min_pixels or args.processor_max_pixels:
        vision = replace(
            vision,
            min_pixels=int(args.processor_min_pixels or vision.min_pixels),
            max_pixels=int(args.processor_max_pixels or vision.max_pixels),
        )
        bounds = "--processor-min-pixels/--processor-max-pixels"
    configs = replay.PROCESSOR_CONFIGS
    if tokenizer is not None and any((tokenizer / name).is_file() for name in configs):
        vision, bounds = replay.vision_config_from(tokenizer, vision), f"{tokenizer}"
    run = replay.Replay(
        budget=budget,
        vision=vision,
        template=template,
        media_dir=args.media_dir or args.out,
        count_tokens=replay.tokenizer_counter(tokenizer) if tokenizer else None,
        jobs=args.jobs,
    )
    datasets, notes, missing = replay.declared_datasets(args.out, names)
    for note in notes:
        log(f"preflight: {note}")
    sections = [
        Section(name, f"LLaMA-Factory {template.name}", [missing_file(name, problem)])
        for name, problem in missing.items()
    ]
    priced: list[replay.Priced] = []
    for dataset in datasets:
        results = replay.replay_dataset(dataset, run, priced)
        sections.append(Section(dataset.name, f"LLaMA-Factory {template.name}", results, dataset))
    return Trainer(sections, run, priced, bounds)


def missing_file(name: str, problem: str) -> dict[str, Any]:
    """A dataset-level result (no sample index) for a registered file that is not there."""
    return {"dataset": name, "index": None, "video": None, "problems": [problem]}


def adaclip_sections(args: argparse.Namespace) -> list[Section]:
    found = frames_check.split_files(args.annots)
    if args.dataset:
        if args.dataset not in frames_check.NUM_FRM:
            known = ", ".join(frames_check.NUM_FRM)
            raise UserError(f"DATASET={args.dataset}: not an AdaCLIP dataset ({known})")
        found = {k: v for k, v in found.items() if k == args.dataset}
    if args.frames and len(found) > 1:
        raise UserError(
            f"FRAMES= names one frame folder but {args.annots} has splits of "
            f"{', '.join(found)}; set DATASET= too"
        )
    num_frm = number(args.num_frm, "NUM_FRM", "--num-frm", int) if args.num_frm else None
    sections = []
    for dataset, splits in found.items():
        frames = Path(args.frames) if args.frames else args.data / dataset / "frames"
        for split in splits:
            wanted = num_frm or frames_check.NUM_FRM[dataset]
            results = frames_check.check_split(split, frames, wanted, args.deep)
            name = f"{split.parent.name}/{split.stem}"
            sections.append(Section(name, f"AdaCLIP (NUM_FRM {wanted}, {frames})", results))
    return sections


def clip_sections(args: argparse.Namespace) -> list[Section]:
    return [
        Section(
            d.name,
            "CLIP images" + (" (decoded)" if args.deep else ""),
            clip_results(d, args.data, args.deep),
        )
        for d in image_datasets(args.data)
    ]


def print_summary(
    console: Console, sections: list[Section], budget: Budget, found: fit.Fit | None
) -> None:
    console.print(summary_table(sections, budget.cutoff_len, found))
    for section in sections:
        totals = [r["total_tokens"] for r in section.samples if "total_tokens" in r]
        if totals:
            console.print(f"{section.name}: tokens per sample (CUTOFF_LEN {budget.cutoff_len})")
            console.print("\n".join(histogram(totals, budget.cutoff_len)), highlight=False)
        problems = [(r, p) for r in section.results for p in r["problems"]]
        for result, problem in problems[:3]:
            where = f"#{result['index']}" if result["index"] is not None else "dataset"
            console.print(f"  {section.name} {where}: {problem}", highlight=False, soft_wrap=True)
        if len(problems) > 3:
            console.print(f"  ... and {len(problems) - 3} more problems", highlight=False)


def print_fit(
    console: Console, trainer: Trainer, found: fit.Fit, share: float, keep: str, out: Path
) -> None:
    """The timing traps of the given settings (and of the fit's), the fit, its YAML."""
    run = trainer.run
    vision = run.vision
    console.print(
        f"{replay.MODELS[run.template.plugin]} processor ({run.template.name}): "
        f"{vision.patch_size}-pixel patches x merge {vision.merge_size}, min_pixels "
        f"{vision.min_pixels}, max_pixels {vision.max_pixels} (from {trainer.bounds})",
        highlight=False,
    )
    given_traps = fit.timing_traps(trainer.priced, run, run.budget)
    for trap in given_traps:
        console.print(trap, highlight=False, soft_wrap=True)
    for line in fit.describe(found, share, keep):
        console.print(line, highlight=False, soft_wrap=True)
    target = out / fit.FIT_NAME
    if found.budget is None:
        target.unlink(missing_ok=True)  # a stale fit would be pasted as if it were this one
        return
    if found.needed_at_all:
        for trap in fit.timing_traps(trainer.priced, run, found.budget):
            if trap not in given_traps:
                console.print(f"under the fit, {trap}", highlight=False, soft_wrap=True)
    datasets = [s.name for s in trainer.sections if s.source is not None]
    fit.write_yaml(target, found, run.template.name, datasets)
    console.print(f"the same as LLaMA-Factory keys: {target}", highlight=False)


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        prog="python -m pyutils.catalog.preflight", description=__doc__, same_names=True
    )
    parser.add_argument(
        "--out", type=Path, default=Path("data"), help="LLaMA-Factory dataset_dir (OUT)"
    )
    parser.add_argument(
        "--media-dir", type=Path, help="LLaMA-Factory media_dir (MEDIA_DIR; default OUT)"
    )
    parser.add_argument(
        "--lf-datasets", default="", help="dataset names (LF_DATASETS; default: all with videos)"
    )
    add_budget_options(parser)
    parser.add_argument(
        "--template", default="qwen2_vl", help=f"one of {', '.join(replay.TEMPLATES)}"
    )
    parser.add_argument(
        "--tokenizer", default="", help="local Hugging Face tokenizer folder (exact text tokens)"
    )
    parser.add_argument(
        "--processor-min-pixels",
        default="",
        help="processor min_pixels (default Qwen2-VL's 3136, Qwen3-VL's 4096)",
    )
    parser.add_argument(
        "--processor-max-pixels",
        default="",
        help="processor max_pixels (default Qwen2-VL's 12845056, Qwen3-VL's 25165824)",
    )
    parser.add_argument("--fit-share", default="1", help="share of samples to fit (FIT_SHARE)")
    parser.add_argument(
        "--fit-keep", default="frames", help="what the fit keeps: frames or pixels (FIT_KEEP)"
    )
    parser.add_argument("--data", type=Path, default=Path("datasets"), help="dataset root (DATA)")
    parser.add_argument(
        "--annots", type=Path, default=Path("annots"), help="AdaCLIP splits (ANNOTS)"
    )
    parser.add_argument(
        "--frames", default="", help="AdaCLIP frame folder (FRAMES; default DATA/<dataset>/frames)"
    )
    parser.add_argument("--dataset", default="", help="only this AdaCLIP dataset (DATASET)")
    parser.add_argument(
        "--num-frm", default="", help="AdaCLIP frames per video (NUM_FRM; default its config's)"
    )
    parser.add_argument("--deep", action="store_true", help="decode every image (DEEP=1)")
    parser.add_argument(
        "--drop", action="store_true", help="write and register the fitting samples (DROP=1)"
    )
    parser.add_argument(
        "--report", type=Path, help=f"JSON lines per sample (default OUT/{REPORT_NAME})"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=("llamafactory", "adaclip", "clip"),
        default=["llamafactory", "adaclip", "clip"],
    )
    args = parser.parse_args(argv)
    sections, budget = [], budget_from(args)
    share, keep = fit_options(args)
    trainer = llamafactory_sections(args) if "llamafactory" in args.sections else None
    if trainer is not None:
        sections += trainer.sections
    if "adaclip" in args.sections:
        sections += adaclip_sections(args)
    if "clip" in args.sections:
        sections += clip_sections(args)
    if not sections:
        raise UserError(
            f"nothing to check: no {args.out / INFO_NAME} with video datasets (OUT=), no AdaCLIP "
            f"splits in {args.annots} (ANNOTS=), no CLIP image dataset in {args.data} (DATA=)"
        )
    report = args.report or args.out / REPORT_NAME
    write_report(report, sections)
    found = None
    if trainer is not None and trainer.priced:
        found = fit.search(trainer.priced, trainer.run, share, keep)
    console = Console(highlight=False)
    if not console.is_terminal:  # logs and CI: wide enough for the table, no wrapping
        console = Console(highlight=False, width=max(console.width, 160))
    print_summary(console, sections, budget, found)
    console.print(f"per-sample results: {report}")
    if trainer is not None and found is not None:
        print_fit(console, trainer, found, share, keep, args.out)
    if args.drop:
        for section in sections:
            if section.source is not None and not section.name.endswith(FITTING):
                log(f"preflight: DROP: {drop_unfitting(section, args.out)}")
    bad = any(r["problems"] for s in sections for r in s.results)
    return EXIT_ITEM_FAILURES if bad else 0


if __name__ == "__main__":
    run_cli(main)
