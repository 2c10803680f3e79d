"""Video stages: frame extraction and its manifest, probing cache, transcoding, contact sheets."""
