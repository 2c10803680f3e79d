"""`make preflight`'s fit (FIT_SHARE, FIT_KEEP), Qwen3-VL's replay and the timing traps."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pyutils.devtools.sample import make_video
from tests.conftest import run_make
from tests.test_preflight import lf_dataset, lines, record, run

# A 3 s, 25 fps, 320x240 clip (75 frames) under LLaMA-Factory's defaults: 6 picks, [0, 14, 29,
# 44, 59, 74]; 295x221 after VIDEO_MAX_PIXELS. Qwen3-VL's smart_resize (factor 32, bounds on
# 6 x h x w) makes it 224x288: grid 3 x 14 x 18, 189 pads; its timestamps (idx / 25 s, mean of
# each pair) are 0.3, 1.5 and 2.7 s, each `<0.3 seconds>` 2 digits + 4 = 6 tokens, with 2 vision
# markers per patch: 189 + 18 + 6 = 213 video tokens.
QWEN3_VIDEO_TOKENS = 213
# "<|im_start|>user\n" "what happens?" "<|im_end|>\n<|im_start|>assistant\n" "yes<|im_end|>\n":
# 4 special tokens and 33 characters (11 tokens at 3 per token); qwen3_vl adds the empty
# thought "<think>\n\n</think>\n\n" (19 characters) to the answer: 52 characters, 18 tokens.
QWEN3_TEXT_TOKENS = {"qwen3_vl_nothink": 15, "qwen3_vl": 22}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clips")
    make_video(root / "short.mp4", 3.0, width=320, height=240, fps=25)
    make_video(root / "long.mp4", 6.0, width=320, height=240, fps=25)
    return root


def fit_line(result) -> dict[str, str]:
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("to fit: ")]
    return dict(pair.split("=") for pair in line.removeprefix("to fit: ").split())


def as_options(settings: dict[str, str]) -> list[str]:
    flags = {"VIDEO_FPS": "--video-fps", "VIDEO_MAXLEN": "--video-maxlen"}
    flags |= {"VIDEO_MAX_PIXELS": "--video-max-pixels", "CUTOFF_LEN": "--cutoff-len"}
    return [x for name, value in settings.items() for x in (flags[name], value)]


def dataset(out: Path, clips: Path, *names: str) -> Path:
    return lf_dataset(out, [record("what happens?", str(clips / name)) for name in names])


@pytest.mark.parametrize(
    ("keep", "knob", "kept"),
    [
        ("frames", "VIDEO_MAX_PIXELS", "VIDEO_MAXLEN"),
        ("pixels", "VIDEO_MAXLEN", "VIDEO_MAX_PIXELS"),
    ],
)
def test_the_fit_passed_back_fits_and_the_longest_fills_the_budget(
    clips: Path, tmp_path: Path, keep: str, knob: str, kept: str
) -> None:
    """Over budget under the defaults (264 + 16 tokens > 200): the `to fit:` settings make
    every sample fit, one more of the knob given up does not, the other knob is as given."""
    out = dataset(tmp_path / "data", clips, "short.mp4", "short.mp4")
    given = run(out, "--cutoff-len", "200", "--fit-keep", keep)
    assert given.returncode == 1, given.stderr
    settings = fit_line(given)
    assert settings[kept] == {"VIDEO_MAXLEN": "128", "VIDEO_MAX_PIXELS": "65536"}[kept]
    assert f"gave up {knob} " in given.stdout and f"kept VIDEO_FPS=2, {kept}=" in given.stdout
    yaml = (out / "preflight_fit.yaml").read_text().splitlines()
    assert yaml[2:] == [
        "video_fps: 2",
        f"video_maxlen: {settings['VIDEO_MAXLEN']}",
        f"video_max_pixels: {settings['VIDEO_MAX_PIXELS']}",
        "video_min_pixels: 256",
    ]
    again = run(out, "--cutoff-len", "200", *as_options(settings))
    assert again.returncode == 0, again.stdout
    assert max(r["total_tokens"] for r in lines(out)) <= 200
    assert "fits as given" in again.stdout
    one_more = {**settings, knob: str(int(settings[knob]) + 1)}
    over = run(out, "--cutoff-len", "200", *as_options(one_more))
    assert over.returncode == 1 and all("over_cutoff" in r["problems"][0] for r in lines(out))


def test_the_table_shows_the_verdict_under_the_fit(clips: Path, tmp_path: Path) -> None:
    out = dataset(tmp_path / "data", clips, "short.mp4", "long.mp4")
    result = run(out, "--cutoff-len", "200")
    assert result.returncode == 1
    header = next(x for x in result.stdout.splitlines() if "fitting under the fit" in x)
    row = next(x for x in result.stdout.splitlines() if x.strip("│ ").startswith("qa "))
    cells = [c.strip() for c in row.split("│") if c.strip()]
    assert header and cells[2:5] == ["2", "0", "2"] and cells[-1] == "2"


def test_a_share_lets_the_longest_go(clips: Path, tmp_path: Path) -> None:
    """FIT_SHARE=0.5 of a 3 s and a 6 s clip: fit the short one at the most pixels, and say
    that DROP=1 with those settings drops the other."""
    out = dataset(tmp_path / "data", clips, "short.mp4", "long.mp4")
    everything = fit_line(run(out, "--cutoff-len", "200"))
    half = run(out, "--cutoff-len", "200", "--fit-share", "0.5")
    settings = fit_line(half)
    assert int(settings["VIDEO_MAX_PIXELS"]) > int(everything["VIDEO_MAX_PIXELS"])
    assert "FIT_SHARE=0.5: 1 of 2 samples" in half.stdout
    assert "DROP=1 with these settings drops the other 1" in half.stdout
    run(out, "--cutoff-len", "200", *as_options(settings), "--drop")
    kept = json.loads((out / "qa_fitting.json").read_text())
    assert [r["videos"] for r in kept] == [[str(clips / "short.mp4")]]


def test_the_cutoff_that_fits_the_given_settings(clips: Path, tmp_path: Path) -> None:
    out = dataset(tmp_path / "data", clips, "short.mp4", "long.mp4")
    result = run(out, "--cutoff-len", "200")
    (cutoff,) = re.findall(r"or keep the given settings and set CUTOFF_LEN=(\d+)", result.stdout)
    assert int(cutoff) == max(r["total_tokens"] for r in lines(out))
    assert run(out, "--cutoff-len", cutoff).returncode == 0
    assert run(out, "--cutoff-len", str(int(cutoff) - 1)).returncode == 1


def test_no_setting_fits_text_over_the_cutoff(clips: Path, tmp_path: Path) -> None:
    out = dataset(tmp_path / "data", clips, "short.mp4")
    (out / "preflight_fit.yaml").write_text("stale\n")
    result = run(out, "--cutoff-len", "10")
    assert result.returncode == 1
    assert (
        "no setting of VIDEO_MAXLEN and VIDEO_MAX_PIXELS fits (1 sample over CUTOFF_LEN 10 by "
        "their text alone)"
    ) in result.stdout
    assert "to fit:" not in result.stdout
    assert not (out / "preflight_fit.yaml").exists()


def test_when_everything_fits_the_fit_is_the_given_settings(clips: Path, tmp_path: Path) -> None:
    out = dataset(tmp_path / "data", clips, "short.mp4")
    result = run(out, "--video-fps", "1")
    assert result.returncode == 0
    assert fit_line(result) == {
        "VIDEO_FPS": "1", "VIDEO_MAXLEN": "128", "VIDEO_MAX_PIXELS": "65536"
    }  # fmt: skip
    assert "fitting under the fit" not in result.stdout


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--fit-share", "0"), "FIT_SHARE=0 (--fit-share): expected a positive number"),
        (("--fit-share", "1.5"), "FIT_SHARE=1.5 (--fit-share): expected a share in (0, 1]"),
        (("--fit-keep", "time"), "FIT_KEEP=time (--fit-keep): expected frames or pixels"),
    ],
)
def test_fit_options_are_checked(
    clips: Path, tmp_path: Path, options: tuple[str, ...], message: str
) -> None:
    out = dataset(tmp_path / "data", clips, "short.mp4")
    result = run(out, *options)
    assert result.returncode == 2 and result.stderr.strip() == f"vlprep: error: {message}"
    assert not (out / "preflight.jsonl").exists()


def test_make_preflight_takes_the_fit_variables(clips: Path, tmp_path: Path) -> None:
    out = dataset(tmp_path / "out dir", clips, "short.mp4")
    common = [f"OUT={out}", f"DATA={tmp_path / 'none'}", f"ANNOTS={tmp_path / 'none'}"]
    result = run_make("--no-print-directory", "preflight", *common, "CUTOFF_LEN=200",
                      "FIT_KEEP=pixels")  # fmt: skip
    settings = fit_line(result)
    assert settings["VIDEO_MAX_PIXELS"] == "65536" and int(settings["VIDEO_MAXLEN"]) < 6
    passed = [f"{k}={v}" for k, v in settings.items()]
    again = run_make("--no-print-directory", "preflight", *common, "CUTOFF_LEN=200", *passed)
    assert again.returncode == 0, again.stdout + again.stderr
    typo = run_make("preflight", *common, "FIT_SHAER=0.9")
    assert typo.returncode == 2 and "did you mean FIT_SHARE?" in typo.stderr


# ---- Qwen3-VL --------------------------------------------------------------------------------


@pytest.mark.parametrize("template", ["qwen3_vl_nothink", "qwen3_vl"])
def test_qwen3_vl_is_replayed(clips: Path, tmp_path: Path, template: str) -> None:
    out = dataset(tmp_path / "data", clips, "short.mp4")
    result = run(out, "--template", template)
    assert result.returncode == 0, result.stderr
    (sample,) = lines(out)
    assert sample["frame_size"] == [288, 224] and sample["video_frames"] == 6
    assert sample["video_tokens"] == QWEN3_VIDEO_TOKENS
    assert sample["text_tokens"] == QWEN3_TEXT_TOKENS[template]
    assert "Qwen3-VL processor" in result.stdout and "16-pixel patches" in result.stdout
    assert "min_pixels 4096, max_pixels 25165824 (from the published defaults)" in result.stdout


def test_qwen3_pixel_bounds_hold_for_all_frames(clips: Path, tmp_path: Path) -> None:
    """Qwen3-VL's bounds are on frames x height x width: a model folder with longest_edge
    200,000 gives 6 frames of 295x221 (391,170 pixels) beta = sqrt(391170 / 200000) = 1.3985:
    floor(221 / 1.3985 / 32) = 4 -> 128, floor(295 / 1.3985 / 32) = 6 -> 192."""
    out = dataset(tmp_path / "data", clips, "short.mp4")
    args = ("--template", "qwen3_vl", "--processor-max-pixels", "200000")
    result = run(out, *args)
    (sample,) = lines(out)
    assert sample["frame_size"] == [192, 128], result.stdout
    assert sample["video_tokens"] == 3 * 8 * 12 // 4 + 18 + 6
    assert "(from --processor-min-pixels/--processor-max-pixels)" in result.stdout


def test_a_side_under_32_is_what_qwen3_refuses(tmp_path: Path) -> None:
    """40x24: `_preprocess_image` raises the short side to 28 (40x28), under Qwen3-VL's factor
    of 32, and transformers 5.8.0's smart_resize (LLaMA-Factory's pin) raises on it."""
    make_video(tmp_path / "thin.mp4", 2.0, width=40, height=24, fps=25)
    out = lf_dataset(tmp_path / "data", [record("what?", str(tmp_path / "thin.mp4"))])
    result = run(out, "--template", "qwen3_vl")
    assert result.returncode == 1
    ((problem,),) = [r["problems"] for r in lines(out)]
    assert problem.startswith(f"unreadable: {tmp_path / 'thin.mp4'}: the Qwen3-VL processor's")
    assert "height:28 or width:40 must be larger than factor:32" in problem
    assert run(out).returncode == 0  # Qwen2-VL's factor is 28


def test_the_fit_never_takes_a_size_qwen3_refuses(tmp_path: Path) -> None:
    """320x40 fits Qwen3-VL as it is, but below about 8,200 VIDEO_MAX_PIXELS its short side
    falls under 32: the fit gives up frames instead of going there."""
    make_video(tmp_path / "strip.mp4", 6.0, width=320, height=40, fps=25)
    out = lf_dataset(tmp_path / "data", [record("what?", str(tmp_path / "strip.mp4"))])
    args = ("--template", "qwen3_vl", "--cutoff-len", "60")
    given = run(out, *args)
    settings = fit_line(given)
    assert int(settings["VIDEO_MAX_PIXELS"]) >= 8192 and int(settings["VIDEO_MAXLEN"]) < 12
    assert run(out, *args, *as_options(settings)).returncode == 0


# ---- timing traps ----------------------------------------------------------------------------


def test_a_frame_cap_names_the_rate_the_model_sees(clips: Path, tmp_path: Path) -> None:
    out = dataset(tmp_path / "data", clips, "long.mp4")
    result = run(out, "--video-maxlen", "4")
    assert (
        "timing: VIDEO_MAXLEN=4 caps 1 video below VIDEO_FPS=2: the longest (6.0 s) gets 4 "
        "frames spread over all of it, 0.67 per s (one every 1.5 s); VIDEO_MAXLEN=12 keeps "
        "VIDEO_FPS for every video, VIDEO_FPS=0.66 states the rate they get"
    ) in result.stdout
    assert "timing:" not in run(out).stdout


def test_qwen25_truncated_grid_seconds_are_flagged(clips: Path, tmp_path: Path) -> None:
    """4 frames per s: second_per_grid_ts = 2 / 4 = 0.5, which Qwen2.5-VL truncates to 0; 0.8:
    6 s -> 4 picks, 2 / (4 / 6) = 3.0, whole; 0.6: 3 picks, 2 / 0.5 = 4.0; 1.5: 9 picks, 2 /
    1.5 = 1.33, int 1: 0.75x."""
    out = dataset(tmp_path / "data", clips, "long.mp4")
    fast = run(out, "--video-fps", "4", "--cutoff-len", "4096")
    assert "1 video get second_per_grid_ts under 1" in fast.stdout
    assert "all their frames share one temporal position; VIDEO_FPS=2 or lower" in fast.stdout
    assert "timing" not in run(out, "--video-fps", "0.8").stdout
    odd = run(out, "--video-fps", "1.5", "--cutoff-len", "4096")
    assert "the model's time axis is 0.75x the real one" in odd.stdout


def test_qwen3_equal_timestamps_are_flagged(clips: Path, tmp_path: Path) -> None:
    """At 25 frames per s every frame is picked: patches 0.08 s apart, so (6, 7) and (8, 9)
    both read 0.3 s."""
    out = dataset(tmp_path / "data", clips, "short.mp4")
    result = run(out, "--template", "qwen3_vl", "--video-fps", "25", "--cutoff-len", "9000")
    assert (
        "timing (Qwen3-VL): in 1 video, temporal patches read the same `<t seconds>` (written "
        "to 0.1 s)"
    ) in result.stdout
    assert "timing (Qwen3-VL)" not in run(out, "--template", "qwen3_vl").stdout
