"""Foundations every layer uses: errors, atomic writes, JSON io, reporting, parallel running,
media tools, video discovery. Imports nothing else of vlprep."""
