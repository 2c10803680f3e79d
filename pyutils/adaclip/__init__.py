"""AdaCLIP: split generation, config edits, checks against the paper's splits."""
