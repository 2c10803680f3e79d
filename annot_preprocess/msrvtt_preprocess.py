"""Write AdaCLIP's MSRVTT splits, train.json and val.json, for the videos in --video_dir.

Inputs in --annot_dir (CLIP4Clip's msrvtt_data.zip): MSRVTT_data.json, MSRVTT_train.9k.csv,
MSRVTT_JSFUSION_test.csv.
Usage: python annot_preprocess/msrvtt_preprocess.py --video_dir V --annot_dir A
       [--output_folder O]
"""

import sys
from pathlib import Path

# Runnable as a plain script from anywhere: put the repository (pyutils) on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyutils.adaclip.splits import cli  # noqa: E402
from pyutils.core.errors import run_cli  # noqa: E402

if __name__ == "__main__":
    run_cli(cli("msrvtt"))
