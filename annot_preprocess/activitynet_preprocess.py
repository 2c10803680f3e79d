"""Write AdaCLIP's ActivityNet splits, train.json and val.json, for the videos in --video_dir.

Inputs in --annot_dir: ActivityNet Captions train.json and val_1.json (-> val.json).
Usage: python annot_preprocess/activitynet_preprocess.py --video_dir V --annot_dir A
       [--output_folder O]
"""

import sys
from pathlib import Path

# Runnable as a plain script from anywhere: put the repository (pyutils) on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyutils.adaclip.splits import cli  # noqa: E402
from pyutils.core.errors import run_cli  # noqa: E402

if __name__ == "__main__":
    run_cli(cli("activitynet"))
