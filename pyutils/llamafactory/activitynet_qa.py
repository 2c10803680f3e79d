"""ActivityNet-QA to LLaMA-Factory sharegpt video JSON (`make activitynet_qa`).

Same selection as the reference `generate_llama_json_limit_frames.py`: questions in file order,
the answer joined by question_id, kept when the video lasts more than SECONDS, stop after N kept
pairs, output `activitynet_qa_{type}_{n}_limit_{seconds}s.json`. Unlike the reference, the video
folder is walked once and matched by exact name (`v_<id>` or `<id>`, .mp4 .mkv .webm), each video
is probed once (in parallel, cached across runs) with the container's duration as fallback, so
Matroska and WebM videos are no longer dropped as "too short", and only the videos that the first
N pairs can need are probed.

The question text is tidied before the reference's `?` is appended: surrounding whitespace (176
real test questions end in a space, 3 start with a newline) and runs of spaces are collapsed, and a
question that already ends in `?` gets no second one.

The output is written for LLaMA-Factory to read as intended: video paths relative to its
`media_dir` (`--media-dir`, default OUT, LLaMA-Factory's default `dataset_dir`), so the JSON loads
from any working directory, and every kept video that PyAV reports without a frame count or stream
duration (Matroska, WebM) is remuxed into MP4 (`pyutils.llamafactory.remux`) and written as that.

With --presample (`PRESAMPLE=1`) a second JSON, `<output stem>_presampled.json`, holds the same
records with each video given as the frames LLaMA-Factory would sample from it, at the size it
would resize them to (`pyutils.llamafactory.presample`), registered under its own name.
"""

from __future__ import annotations

import argparse
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyutils.core.atomic import check_writable_folder, remove_stale_temporaries
from pyutils.core.cli import Parser
from pyutils.core.errors import UserError, run_cli
from pyutils.core.jsonio import expect_keys, read_json, write_json, write_jsonl
from pyutils.core.parallel import ParallelOptions
from pyutils.core.report import FailureLog, log, plural, say
from pyutils.core.stage import add_parallel_options, parallel_options, positive_int
from pyutils.core.video_index import (
    QA_EXTENSIONS,
    find_videos,
    index_by_stem,
    is_utf8,
    not_utf8_reason,
    printable,
)
from pyutils.llamafactory.dataset_info import (
    INFO_NAME,
    PLACEHOLDERS,
    check_registrable,
    media_path,
    read_dataset_info,
    register,
    validate_records,
)
from pyutils.llamafactory.trainer_args import add_budget_options, budget_from
from pyutils.video.probe_cache import Probe, ProbeCache, default_cache_path, probe_videos

STAGE = "activitynet_qa"
REMUX_FOLDER = "videos-mp4"  # under OUT: MP4 copies of the videos LLaMA-Factory would misread

# Per-question outcomes, in the order the summary lists them.
KEPT, NO_ANSWER, MISSING, UNREADABLE, TOO_SHORT, AFTER_LIMIT = (
    "kept",
    "no_answer",
    "missing_video",
    "unreadable",
    "too_short",
    "after_limit",
)


@dataclass
class Question:
    question_id: str
    text: str
    answer: Any  # None when the answers file has no entry for question_id
    video: str | None  # path under VIDEOS, None when no video has the question's name
    status: str = ""
    duration: float | None = None
    header_gaps: str = ""  # why LLaMA-Factory would misread the video ("" if it would not)
    error: str | None = None
    written: str | None = None  # the video path as written to the JSON (kept questions)


def output_name(split: str, n: int, seconds: float) -> str:
    return f"activitynet_qa_{split}_{n}_limit_{seconds:g}s.json"


# The second JSON of --presample: <plain stem>_presampled.json, registered under its stem.
SUFFIX = "_presampled"


def presampled_name(plain: Path) -> Path:
    return plain.with_name(f"{plain.stem}{SUFFIX}.json")


def user_content(question: str) -> str:
    text = " ".join(question.split())
    return f"<video>{text}" if text.endswith("?") else f"<video>{text}?"


def video_stems(question_id: str) -> tuple[str, str]:
    """The names a question's video may have: `v_<id>` and `<id>` (question_id is `v_<id>_<n>`)."""
    stem = question_id.rpartition("_")[0]
    return stem, stem.removeprefix("v_")


def load_questions(qa_dir: Path, name: str, split: str, videos: dict[str, Path]) -> list[Question]:
    """Read `{name}.json` and `{split}_a.json` and pair each question with answer and video."""
    questions_path, answers_path = qa_dir / f"{name}.json", qa_dir / f"{split}_a.json"
    if not qa_dir.is_dir():
        raise UserError(f"{qa_dir}: ActivityNet-QA folder not found; set QA_DIR= (or --qa-dir)")
    for path, variable in ((questions_path, "NAME"), (answers_path, "TYPE")):
        if not path.is_file():
            present = ", ".join(sorted(p.stem for p in qa_dir.glob("*.json"))) or "none"
            raise UserError(
                f"{path}: file not found; set {variable}= to one of the files in QA_DIR "
                f"(present: {present})"
            )
    questions, answers = read_json(questions_path), read_json(answers_path)
    for path, data in ((questions_path, questions), (answers_path, answers)):
        if not isinstance(data, list):
            raise UserError(f"{path}: expected a JSON list, found {type(data).__name__}")
    answer_by_id: dict[str, str] = {}
    answered_at: dict[str, int] = {}
    for index, answer in enumerate(answers):
        where = f"{answers_path}: entry {index}"
        expect_keys(answer, ("question_id", "answer"), where)
        question_id = _text(answer, "question_id", where)
        if question_id in answered_at:
            raise UserError(
                f"{where}: question_id {question_id!r} also answered by entry "
                f"{answered_at[question_id]}"
            )
        answered_at[question_id] = index
        answer_by_id[question_id] = _text(answer, "answer", where)
    paired = []
    asked_at: dict[str, int] = {}
    for index, question in enumerate(questions):
        where = f"{questions_path}: entry {index}"
        expect_keys(question, ("question_id", "question"), where)
        question_id = _text(question, "question_id", where)
        if "_" not in question_id:
            raise UserError(f"{where}: question_id {question_id!r} is not `v_<video id>_<n>`")
        if question_id in asked_at:
            raise UserError(
                f"{where}: question_id {question_id!r} repeats entry {asked_at[question_id]}"
            )
        asked_at[question_id] = index
        _text(question, "question", where)
        found = next((videos[s] for s in video_stems(question_id) if s in videos), None)
        paired.append(
            Question(
                question_id,
                str(question["question"]),
                answer_by_id.get(question_id),
                str(found) if found else None,
            )
        )
    if questions and all(q.answer is None for q in paired):
        raise UserError(
            f"no question of {questions_path} has an answer in {answers_path} "
            f"(e.g. {paired[0].question_id}); -type must name the split that -name comes from"
        )
    return paired


def _text(record: dict[str, Any], key: str, where: str) -> str:
    """A field that becomes training text must be a non-empty string: `null`, a number or a
    list would otherwise be written as `None`, `7` or `['a']` and trained on. Nor may it hold a
    placeholder LLaMA-Factory counts (`<image>`, `<video>`, `<audio>`): `_validate_messages`
    would find one more than the sample's media and raise, and LLaMA-Factory has no escape for
    one in text (only other placeholder strings, by environment variables)."""
    value = record[key]
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{where}: {key!r} must be a non-empty string, found {value!r:.60}")
    held = [placeholder for placeholder in PLACEHOLDERS.values() if placeholder in value]
    if held:
        raise UserError(
            f"{where}: {key!r} contains {held[0]}, a placeholder LLaMA-Factory counts as media "
            "(its _validate_messages would raise on the sample); edit it out of the text"
        )
    return value


def select(
    questions: list[Question], probes: Iterator[Probe], n: int, seconds: float
) -> list[Question]:
    """Decide every question in file order; pull probes only when a question needs one.

    `probes` yields probes in any order; a video is therefore probed only if some question
    before the N-th kept pair needs it, and the result does not depend on that order.
    """
    known: dict[str, Probe] = {}
    kept = []
    for question in questions:
        if len(kept) >= n:
            question.status = AFTER_LIMIT
        elif question.answer is None:
            question.status = NO_ANSWER
        elif question.video is None:
            question.status = MISSING
        elif not is_utf8(question.video):  # never probed: see `needed`
            question.status, question.error = UNREADABLE, not_utf8_reason(question.video)
        else:
            while question.video not in known:
                found = next(probes)
                known[found.path] = found
            found = known[question.video]
            if found.info is None:
                question.status, question.error = UNREADABLE, found.error
            else:
                question.duration = found.info.duration
                question.header_gaps = found.info.header_gaps
                question.status = TOO_SHORT if question.duration <= seconds else KEPT
        if question.status == KEPT:
            kept.append(question)
    return kept


def sharegpt_records(kept: list[Question]) -> list[dict[str, Any]]:
    return [
        {
            "messages": [
                {"content": user_content(q.text), "role": "user"},
                {"content": q.answer, "role": "assistant"},
            ],
            "videos": [q.written or q.video or ""],
        }
        for q in kept
    ]


def summarise(
    questions: list[Question], seconds: float, videos: Path, failures: FailureLog
) -> None:
    by_status = Counter(q.status for q in questions)
    answered = [q for q in questions if q.answer is not None]
    referenced = {video_stems(q.question_id)[0]: q.video for q in answered}
    found = sum(1 for v in referenced.values() if v)
    examined: dict[str, str] = {}
    for q in questions:
        if q.status in (UNREADABLE, TOO_SHORT, KEPT):
            examined[q.video or ""] = q.status
    video_status = Counter(examined.values())
    unanswered = len(questions) - len(answered)  # whether or not the limit was reached first
    say(
        f"{STAGE}: {plural(len(questions), 'question')} read, "
        f"{plural(len(answered), 'answer')} joined ({unanswered} without answer)"
    )
    say(
        f"{STAGE}: {plural(len(referenced), 'video')} referenced: {found} found, "
        f"{len(referenced) - found} missing; of {len(examined)} examined, "
        f"{video_status[UNREADABLE]} unreadable, {video_status[TOO_SHORT]} too short "
        f"(<= {seconds:g} s), {video_status[KEPT]} long enough"
    )
    say(
        f"{STAGE}: questions: {by_status[KEPT]} kept, {by_status[MISSING]} missing video, "
        f"{by_status[UNREADABLE]} unreadable video, {by_status[TOO_SHORT]} too short, "
        f"{by_status[AFTER_LIMIT]} not examined (limit reached)"
    )
    absent = [stem for stem, video in referenced.items() if not video]
    if absent and found:  # none found at all is an error (`nothing_kept`)
        log(
            f"warning: only {found} of the {len(referenced)} videos the answered questions "
            f"reference are in VIDEOS={videos} ({len(absent)} missing, e.g. {absent[0]}); "
            "their questions are left out"
        )
    reported = set()
    for q in questions:
        if q.status == KEPT:
            failures.ok()
        elif q.status == NO_ANSWER:
            failures.fail(q.question_id, "question without answer in the answers file")
        elif q.status == UNREADABLE and q.video not in reported:
            reported.add(q.video)
            failures.fail(printable(q.video or ""), q.error or "unreadable")


def nothing_kept(questions: list[Question], videos: Path, seconds: float) -> str:
    """Why no question was kept, naming what the user set: zero entries is never a success."""
    answered = [q for q in questions if q.answer is not None]
    if not answered:
        return "no question with an answer: check NAME= and TYPE="
    if all(q.video is None for q in answered):
        stem = video_stems(answered[0].question_id)[0]
        looked = f"{videos / stem}.{{{','.join(QA_EXTENSIONS)}}}"
        return (
            f"none of the {plural(len(answered), 'answered question')} has its video in "
            f"VIDEOS={videos} (looked for e.g. {looked}); nothing written or registered"
        )
    return (
        f"no video lasts more than SECONDS={seconds:g} s (or none is readable); nothing "
        "written or registered"
    )


def write_report(path: Path, questions: list[Question]) -> None:
    keys = ("question_id", "status", "video", "duration", "error", "written")
    records = ({k: getattr(q, k) for k in keys} for q in questions)
    write_jsonl(path, ({**r, "video": r["video"] and printable(r["video"])} for r in records))


def write_presampled(
    args: argparse.Namespace, kept: list[Question], plain: Path, media_dir: Path
) -> int:
    """The second JSON: the plain one's records in its order, each video given as the list of
    frames LLaMA-Factory would sample from it (`pyutils.llamafactory.presample`); registered
    under its own name. A record whose video could not be pre-sampled is left out, and said."""
    # Imported here: frame extraction's modules are a fifth of a plain run's start-up.
    from pyutils.llamafactory.presample import presample, relative_lists

    budget = budget_from(args)
    folder = presample_folder(args)
    # Threads unless on Dask: the work is in ffmpeg child processes.
    parallel = parallel_options(args)
    if parallel.backend != "dask":
        parallel = ParallelOptions(args.jobs, "threading")
    videos = [q.video or "" for q in kept]
    done = presample(videos, folder, budget, parallel, args.replace)
    lists = relative_lists(videos, done.frames, media_dir)
    records = [
        {**record, "videos": [frames]}
        for record, frames in zip(sharegpt_records(kept), lists, strict=True)
        if frames is not None
    ]
    target = presampled_name(plain)
    if not records:
        say(f"{STAGE}: no video could be pre-sampled; {target} not written")
        return 1
    validate_records(records, str(target), media_dir)
    write_json(target, records)
    left_out = len(kept) - len(records)
    said = f" ({plural(left_out, 'record')} left out: video not pre-sampled)" if left_out else ""
    say(f"{STAGE}: {plural(len(records), 'entry', 'entries')} written to {target}{said}")
    if args.register:
        register(args.out, [target], media_dir)
    return max(done.status, 1 if left_out else 0)


def presample_folder(args: argparse.Namespace) -> Path:
    from pyutils.llamafactory.presample import frames_folder

    return args.presample_dir or frames_folder(args.out, budget_from(args))


def check_outputs(args: argparse.Namespace) -> None:
    """Every folder the run writes into can be written, and dataset_info.json updated (a
    UserError naming the setting otherwise), before any work."""
    check_writable_folder(args.out, "OUT")
    if args.remux_dir is not None:
        check_writable_folder(args.remux_dir, "--remux-dir")
    if args.presample:
        folder = presample_folder(args)
        check_writable_folder(folder, "OUT", f"PRESAMPLE=1: its frames folder {folder}")
    if args.register:
        check_registrable(args.out)


def convert(args: argparse.Namespace) -> int:
    # Every input is checked before any work, so that an input error leaves nothing behind.
    if args.presample:
        budget = budget_from(args)  # the settings first: the frames folder is named after them
    check_outputs(args)
    if args.presample and not args.replace:  # what the frames folder holds
        from pyutils.llamafactory.presample import refuse_other_settings

        refuse_other_settings(presample_folder(args), budget)
    if args.register:
        read_dataset_info(args.out / INFO_NAME)
    if args.fps is not None:
        log(
            f"{STAGE}: -fps {args.fps:g} is accepted for compatibility and not used: the frame "
            "rate is chosen at training time (LLaMA-Factory's video_fps)"
        )
    videos = index_by_stem(find_videos(args.videos, QA_EXTENSIONS))
    name = args.name or f"{args.type}_q"
    questions = load_questions(args.qa_dir, name, args.type, videos)
    log(f"{STAGE}: {len(videos)} videos under {args.videos}, {len(questions)} questions")
    # A path that is not UTF-8 cannot be named in the probe cache or the JSON: refused in select.
    needed = [q.video for q in questions if q.answer is not None and q.video and is_utf8(q.video)]
    cache = ProbeCache(args.probe_cache or None)
    probes = probe_videos(needed, cache, parallel_options(args))
    try:
        kept = select(questions, probes, args.n, args.seconds)
    finally:
        probes.close()  # stops the workers and the progress bar, and saves the probe cache
    output = args.out / output_name(args.type, args.n, args.seconds)
    media_dir = args.media_dir or args.out
    failures = FailureLog(STAGE)
    remuxed: dict[str, str] = {}
    remux_status = 0
    misread = [q.video for q in kept if q.video and q.header_gaps]
    if args.remux and misread:
        # Imported here: ffmpeg-python and the transcoder, a quarter of a plain run's start-up.
        from pyutils.llamafactory.remux import remux_misread

        remux_dir = args.remux_dir or args.out / REMUX_FOLDER
        # Threads whatever BACKEND says: the work is in ffmpeg child processes.
        on_threads = ParallelOptions(args.jobs, "threading")
        remuxed, _, remux_status = remux_misread(misread, remux_dir, on_threads)
    for q in kept:
        q.written = media_path(remuxed.get(q.video or "", q.video or ""), media_dir)
    summarise(questions, args.seconds, args.videos, failures)
    if args.report:
        write_report(args.report, questions)
        say(f"{STAGE}: per-question outcomes in {args.report}")
    if not kept:
        raise UserError(nothing_kept(questions, args.videos, args.seconds))
    records = sharegpt_records(kept)
    args.out.mkdir(parents=True, exist_ok=True)  # paths relative to it resolve through it
    validate_records(records, str(output), media_dir)  # what `register` checks, before writing
    remove_stale_temporaries(args.out)
    write_json(output, records)
    say(f"{STAGE}: {plural(len(kept), 'entry', 'entries')} written to {output}")
    if args.register:
        register(args.out, [output], media_dir)
    status = max(failures.finish(), remux_status)
    if args.presample:
        status = max(status, write_presampled(args, kept, output, media_dir))
    return status


def seconds(text: str) -> float:
    """An argparse type: a finite duration of at least 0 (`nan` would keep everything)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        make_names={
            "name": "NAME",
            "type": "TYPE",
            "n": "N",
            "seconds": "SECONDS",
            "qa_dir": "QA_DIR",
            "videos": "VIDEOS",
            "out": "OUT",
            "media_dir": "MEDIA_DIR",
            "presample": "PRESAMPLE",
            "replace": "REPLACE",
        },
        prog="python -m pyutils.llamafactory.activitynet_qa",
        description="Convert ActivityNet-QA questions and answers into LLaMA-Factory sharegpt "
        "video JSON, keeping pairs whose video lasts more than SECONDS, up to N pairs.",
    )
    parser.add_argument(
        "-name", "--name", help="questions file stem (default: {type}_q, the published file)"
    )
    parser.add_argument("-type", "--type", default="train", help="split: answers {type}_a.json")
    parser.add_argument("-n", "--n", type=positive_int, default=250, help="pairs to keep")
    parser.add_argument(
        "-seconds", "--seconds", type=seconds, default=20, help="keep videos longer than this"
    )
    parser.add_argument(
        "-fps",
        "--fps",
        type=float,
        help="accepted for compatibility with the reference script and unused: set the frame "
        "rate when training (LLaMA-Factory's video_fps)",
    )
    parser.add_argument("--qa-dir", type=Path, default=Path("datasets/activitynet-qa/dataset"))
    parser.add_argument("--videos", type=Path, default=Path("datasets/activitynet/videos"))
    parser.add_argument("--out", type=Path, default=Path("data"), help="LLaMA-Factory data folder")
    parser.add_argument(
        "--media-dir",
        "--relative-to",
        type=Path,
        help="LLaMA-Factory's media_dir: video paths are written relative to it (default: --out)",
    )
    parser.add_argument(
        "--remux-dir",
        type=Path,
        help=f"where misread videos are remuxed to mp4 (default: OUT/{REMUX_FOLDER})",
    )
    parser.add_argument(
        "--no-remux",
        dest="remux",
        action="store_false",
        help="write mkv/webm paths as found (LLaMA-Factory then misreads them)",
    )
    parser.add_argument("--report", type=Path, help="write every question's outcome (JSON lines)")
    parser.add_argument(
        "--probe-cache",
        default=str(default_cache_path()),
        help="probe cache file (default: %(default)s); '' disables it",
    )
    parser.add_argument(
        "--register", action="store_true", help="also register the output in OUT/dataset_info.json"
    )
    parser.add_argument(
        "--presample",
        action="store_true",
        help=f"also write OUT/<output stem>{SUFFIX}.json: each video as the frames "
        "LLaMA-Factory would sample from it, at the size it would resize them to",
    )
    parser.add_argument(
        "--presample-dir",
        type=Path,
        help="where the pre-sampled frames go (default: OUT/presampled_<settings>)",
    )
    parser.add_argument(
        "--replace",
        action="store_true",
        help="replace pre-sampled frames made with other settings (REPLACE=1; else refused)",
    )
    add_budget_options(parser, cutoff=False)
    add_parallel_options(parser, "auto", "videos probed")
    return convert(parser.parse_args(argv))


if __name__ == "__main__":
    run_cli(main)
