"""vlprep's Python core, in layers (ARCHITECTURE.md): core <- fetch, video, adaclip <- llamafactory
<- catalog <- devtools."""

from pathlib import Path

# The checkout this package runs from: its registry (scripts/downloads.tsv) and checksum tables.
REPOSITORY = Path(__file__).resolve().parent.parent
