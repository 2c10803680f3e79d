"""vlprep's Python core: media probing, frame extraction, annotation conversion, safe I/O."""
