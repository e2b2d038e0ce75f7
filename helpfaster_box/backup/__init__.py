"""Backups of a data directory, made while `serve` runs, and restores into a stopped box.

`snapshot` writes and checks a backup (database file, `indexes/`, `uploads/`,
`manifest.json` with a sha256 per file); `control` is the local channel through which
the CLI asks the running server to make one, since the server holds the DuckDB file.
"""
