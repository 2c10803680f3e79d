"""Getting files: registry downloads, URL lists, safe archive extraction."""
