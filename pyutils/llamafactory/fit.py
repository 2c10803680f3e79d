"""The trainer settings under which the samples fit: what `make preflight` prescribes.

When samples are over CUTOFF_LEN, the fit searches LLaMA-Factory's own knobs for the largest
settings under which every sample (or the shortest FIT_SHARE of them) fits, pricing each video
under every setting it tries with `Replay.price`, the arithmetic the verdict used: there is no
second model of the trainer. What it gives up first is FIT_KEEP's choice:

- `frames` (the default): VIDEO_FPS and VIDEO_MAXLEN stay; VIDEO_MAX_PIXELS comes down to the
  largest value that fits. Only when even VIDEO_MIN_PIXELS does not fit does VIDEO_MAXLEN come
  down too, and then VIDEO_MAX_PIXELS goes back up as far as the shorter videos allow.
- `pixels`: VIDEO_MAX_PIXELS stays; VIDEO_MAXLEN comes down (it caps only the videos long
  enough to reach it, where a lower VIDEO_FPS would take frames from every video), then
  VIDEO_MAX_PIXELS only if 2 frames per video still do not fit.

Each knob is searched by bisection over whole values (tokens never fall as a knob rises), so
the result is the largest value that fits: one more and the longest sample is over. VIDEO_FPS
is kept either way; `timing_traps` says when the frames a cap leaves mean a lower rate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from pyutils.core.atomic import atomic_write_bytes
from pyutils.core.report import plural
from pyutils.llamafactory.qwen_video import QWEN3_VL, TEMPORAL_PATCH_SIZE, Budget, sample_indices
from pyutils.llamafactory.replay import Priced, Replay

FIT_NAME = "preflight_fit.yaml"
KEEP_CHOICES = ("frames", "pixels")
# Knob -> (Budget field, Make variable); the fit's line names them in this order.
KNOBS = {
    "fps": ("video_fps", "VIDEO_FPS"),
    "frames": ("video_maxlen", "VIDEO_MAXLEN"),
    "pixels": ("video_max_pixels", "VIDEO_MAX_PIXELS"),
}
MIN_FRAMES = 2  # one temporal patch: fewer frames are padded to 2 anyway
NEVER_FITS = 2**62  # the tokens of a sample no CUTOFF_LEN holds


@dataclass(frozen=True)
class Fit:
    """The search's answer. `budget` is None when no setting of the knobs fits."""

    given: Budget
    budget: Budget | None
    needed: int  # samples that must fit (FIT_SHARE of the priced ones)
    priced: int
    totals: dict[tuple[str, int], int]  # (dataset, index) -> tokens under `budget`
    cutoff_for_given: int  # the CUTOFF_LEN under which the given settings fit as many
    text_only_over: int  # samples over CUTOFF_LEN by their text alone

    @property
    def needed_at_all(self) -> bool:
        return self.cutoff_for_given > self.given.cutoff_len

    def changed(self) -> list[str]:
        assert self.budget is not None
        return [k for k in KNOBS if _value(self.budget, k) != _value(self.given, k)]


class Pricer:
    """Token totals of the priced samples under any budget: each distinct video priced once per
    budget with `Replay.price`, each sample's text tokens added."""

    def __init__(self, samples: list[Priced], replay: Replay) -> None:
        self.samples, self.replay = samples, replay
        self.videos = {}
        for sample in samples:
            for located, header in sample.videos:
                self.videos.setdefault(_key(located, header), (located, header))
        self.evaluations = 0

    def totals(self, budget: Budget) -> list[int]:
        """Each sample's tokens; a sample with a video the trainer stops on under `budget` (a
        processor that refuses its size) counts as fitting nowhere."""
        self.evaluations += 1
        tokens = {}
        for key, (located, header) in self.videos.items():
            cost = self.replay.price(located, header, budget)
            tokens[key] = NEVER_FITS if cost.problems else cost.tokens
        return [s.text_tokens + sum(tokens[_key(v, h)] for v, h in s.videos) for s in self.samples]


def _key(located, header) -> tuple:
    # Videos with the same header and frame-list length cost the same: price them once.
    return (header.info, header.error, located.frames)


def kth_smallest(values: list[int], k: int) -> int:
    return sorted(values)[k - 1] if values else 0


def largest(low: int, high: int, fits: Callable[[int], bool]) -> int | None:
    """The largest whole value in [low, high] that fits (fits is monotone: true up to a point),
    or None when not even `low` does: a bisection."""
    if high < low or not fits(low):
        return None
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def search(samples: list[Priced], replay: Replay, share: float, keep: str) -> Fit:
    """The fit of `samples` under `replay.budget`: see the module's docstring."""
    given = replay.budget
    pricer = Pricer(samples, replay)
    needed = max(1, math.ceil(share * len(samples))) if samples else 0
    cutoff = given.cutoff_len
    given_totals = pricer.totals(given)
    text_only_over = sum(s.text_tokens > cutoff for s in samples)

    def fits(budget: Budget) -> bool:
        return kth_smallest(pricer.totals(budget), needed) <= cutoff

    # Pixels so few that a processor refuses a video (Qwen3-VL: a side under 32) fit nothing, so
    # the pixels searched start above the most at which some video is refused.
    def refused(pixels: int) -> bool:
        return max(pricer.totals(replace(given, video_max_pixels=pixels))) >= NEVER_FITS

    last_refused = largest(given.video_min_pixels, given.video_max_pixels, refused)
    lowest_pixels = given.video_min_pixels if last_refused is None else last_refused + 1
    lowest = {"frames": MIN_FRAMES, "pixels": lowest_pixels}
    first, second = ("pixels", "frames") if keep == "frames" else ("frames", "pixels")

    def raised(budget: Budget, knob: str) -> Budget | None:
        field = KNOBS[knob][0]
        value = largest(
            lowest[knob],
            getattr(given, field),
            lambda v: fits(replace(budget, **{field: v})),
        )
        return None if value is None else replace(budget, **{field: value})

    found: Budget | None = given
    if needed and kth_smallest(given_totals, needed) > cutoff:
        found = raised(given, first)
        if found is None:
            floor = replace(given, **{KNOBS[first][0]: lowest[first]})
            found = raised(floor, second)
            found = found and raised(found, first)
    totals_under = pricer.totals(found) if found is not None else given_totals
    return Fit(
        given=given,
        budget=found,
        needed=needed,
        priced=len(samples),
        totals={(s.dataset, s.index): t for s, t in zip(samples, totals_under, strict=True)},
        cutoff_for_given=kth_smallest(given_totals, needed) if needed else 0,
        text_only_over=text_only_over,
    )


def make_line(budget: Budget) -> str:
    """`to fit:`'s Make variables, which passed back to `make preflight` make it fit."""
    return (
        f"VIDEO_FPS={budget.video_fps:g} VIDEO_MAXLEN={budget.video_maxlen} "
        f"VIDEO_MAX_PIXELS={budget.video_max_pixels}"
    )


def describe(fit: Fit, share: float, keep: str) -> list[str]:
    """The lines `make preflight` prints about the fit, the last one `to fit: ...`."""
    given = fit.given
    who = "every sample" if fit.needed == fit.priced else f"{fit.needed} of {fit.priced} samples"
    head = f"fit (FIT_SHARE={share:g}: {who}; FIT_KEEP={keep})"
    if fit.budget is None:
        why = (
            f"{plural(fit.text_only_over, 'sample')} over CUTOFF_LEN {given.cutoff_len} by "
            "their text alone"
            if fit.text_only_over
            else f"even {MIN_FRAMES} frames per video at VIDEO_MAX_PIXELS="
            f"{given.video_min_pixels} is over CUTOFF_LEN {given.cutoff_len}"
        )
        return [
            f"{head}: no setting of VIDEO_MAXLEN and VIDEO_MAX_PIXELS fits ({why}); "
            f"CUTOFF_LEN={fit.cutoff_for_given} fits the given settings"
        ]
    if not fit.needed_at_all:
        return [f"{head}: fits as given", f"to fit: {make_line(given)}"]
    changed = fit.changed()
    kept = [KNOBS[k][1] + f"={_value(given, k)}" for k in KNOBS if k not in changed]
    gave = [f"{KNOBS[k][1]} {_value(given, k)} -> {_value(fit.budget, k)}" for k in changed]
    longest = max((t for t in fit.totals.values() if t <= given.cutoff_len), default=0)
    dropped = fit.priced - sum(t <= given.cutoff_len for t in fit.totals.values())
    field, name = KNOBS[changed[-1]]
    higher = f"{name}={getattr(fit.budget, field) + 1}"
    lines = [
        f"{head}: kept {', '.join(kept) or 'nothing'}; gave up {', '.join(gave)}",
        f"  under the fit {fit.priced - dropped} of {fit.priced} samples fit, the longest is "
        f"{longest} of CUTOFF_LEN {given.cutoff_len} tokens ({higher} puts "
        + ("more" if dropped else "one")
        + " over)"
        + (f"; DROP=1 with these settings drops the other {dropped}" if dropped else ""),
        f"  or keep the given settings and set CUTOFF_LEN={fit.cutoff_for_given}",
        f"to fit: {make_line(fit.budget)}",
    ]
    return lines


def _value(budget: Budget, knob: str) -> str:
    value = getattr(budget, KNOBS[knob][0])
    return f"{value:g}" if isinstance(value, float) else str(value)


def write_yaml(path: Path, fit: Fit, template: str, datasets: list[str]) -> None:
    """The fit as LLaMA-Factory training-config keys, ready to paste (`video_fps: ...`)."""
    budget = fit.budget or fit.given
    lines = [
        f"# make preflight: settings under which {fit.needed} of {fit.priced} samples of "
        f"{', '.join(datasets)} fit",
        f"# cutoff_len {fit.given.cutoff_len} with template {template}; paste into the "
        "training config",
        f"video_fps: {budget.video_fps:g}",
        f"video_maxlen: {budget.video_maxlen}",
        f"video_max_pixels: {budget.video_max_pixels}",
        f"video_min_pixels: {budget.video_min_pixels}",
    ]
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


# ---- timing traps -----------------------------------------------------------------------------


def timing_traps(samples: list[Priced], replay: Replay, budget: Budget) -> list[str]:
    """Settings under which the model's time axis is not the video's, from the trainer's code,
    each with the setting that avoids it."""
    infos = {}  # each video file once
    for sample in samples:
        for located, header in sample.videos:
            if header.info is not None and located.frames is None and header.info.duration:
                infos.setdefault(located.path, (located, header))
    traps = []
    capped = []
    for _located, header in infos.values():
        info = header.info
        wanted = max(1, math.floor(info.duration * budget.video_fps))
        if min(info.frames, wanted) > budget.video_maxlen:
            capped.append(info.duration)
    if capped:
        longest = max(capped)
        rate = budget.video_maxlen / longest
        traps.append(
            f"timing: VIDEO_MAXLEN={budget.video_maxlen} caps {plural(len(capped), 'video')} "
            f"below VIDEO_FPS={budget.video_fps:g}: the longest ({longest:.1f} s) gets "
            f"{budget.video_maxlen} frames spread over all of it, {rate:.2f} per s (one every "
            f"{1 / rate:.1f} s); VIDEO_MAXLEN={math.ceil(longest * budget.video_fps)} keeps "
            f"VIDEO_FPS for every video, VIDEO_FPS={math.floor(rate * 100) / 100:g} states "
            "the rate they get"
        )
    if replay.template.plugin == QWEN3_VL:
        traps += _qwen3_traps(infos.values(), replay, budget)
    else:
        traps += _qwen25_traps(infos.values(), budget)
    return traps


def _qwen25_traps(videos, budget: Budget) -> list[str]:
    """Qwen2.5-VL's `get_rope_index` steps the temporal position by `tokens_per_second *
    int(second_per_grid_t)`, `second_per_grid_t = 2 / fps_per_video` (`len(sample_indices) /
    duration`, Qwen2VLPlugin._regularize_videos): the integer part only. Under 1 (more than 2
    frames per s) every temporal patch gets the same position; a fractional part shrinks the
    model's time axis by int(s)/s. Qwen2-VL uses no second_per_grid_ts."""
    same, shrunk = [], []
    for _located, header in videos:
        info = header.info
        fps, maxlen = budget.video_fps, budget.video_maxlen
        picks = len(sample_indices(info.frames, info.duration, fps, maxlen))
        seconds = TEMPORAL_PATCH_SIZE / (picks / info.duration)
        if int(seconds) == 0 and picks > TEMPORAL_PATCH_SIZE:
            same.append(seconds)
        elif seconds >= 1 and (seconds - int(seconds)) / seconds > 0.1:
            shrunk.append(int(seconds) / seconds)
    traps = []
    if same:
        traps.append(
            f"timing (Qwen2.5-VL): sampled at more than 2 frames per s, "
            f"{plural(len(same), 'video')} get second_per_grid_ts under 1, which Qwen2.5-VL "
            "truncates to 0: all their frames share one temporal position; VIDEO_FPS=2 or lower "
            "avoids it"
        )
    if shrunk:
        low, high = f"{min(shrunk):.2f}x", f"{max(shrunk):.2f}x"
        traps.append(
            f"timing (Qwen2.5-VL): for {plural(len(shrunk), 'video')}, second_per_grid_ts has "
            f"a fraction Qwen2.5-VL drops: the model's time axis is {low}"
            + (f" to {high}" if high != low else "")
            + " the real one; a VIDEO_FPS of 2/k (2, 1, 0.5, 0.4, 0.25) that no VIDEO_MAXLEN "
            "caps keeps it whole (Qwen2-VL is not affected)"
        )
    return traps


def _qwen3_traps(videos, replay: Replay, budget: Budget) -> list[str]:
    """Qwen3-VL places patches in time by the `<t seconds>` text before each, written with one
    decimal: patches less than 0.05 s apart read the same time."""
    shared = 0
    for located, header in videos:
        stamps = replay.price(located, header, budget).timestamps
        shared += len(stamps) != len(set(stamps))
    if not shared:
        return []
    return [
        f"timing (Qwen3-VL): in {plural(shared, 'video')}, temporal patches read the same `<t "
        "seconds>` (written to 0.1 s): the model cannot tell those frames apart in time; "
        "VIDEO_FPS=20 or lower avoids it"
    ]
