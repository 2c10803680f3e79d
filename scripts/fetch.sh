#!/usr/bin/env bash
# Fetch one file into DEST:  fetch.sh SOURCE DEST
#   SOURCE  http(s)://...         wget --continue: a partial DEST is resumed with an HTTP Range request
#           gdrive:<file id>      gdown --continue (Google Drive; its own quota-page detection)
#           kaggle:<owner>/<slug> the kaggle CLI; DEST receives the dataset's zip
# Exit status: 0 done; 1 the transfer failed (the tool's own message is on stderr; for http(s),
# wget's own non-zero status); 2 usage error, missing tool or missing credentials (one line
# saying what to do). wget prints the server's answers (--server-response): download.py reads
# them to resume only into the same file.
# Tuning: FETCH_TRIES (5), FETCH_TIMEOUT seconds (60), FETCH_WAITRETRY seconds (10),
# FETCH_PROGRESS (wget --progress style; dot:giga unless the caller sets bar).
# Verification (size, checksum, HTML pages) is the caller's job: pyutils/fetch/download.py.
set -euo pipefail

die() {
  printf 'fetch.sh: %s\n' "$1" >&2
  exit 2
}

need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH; $2"
}

have_kaggle_credentials() {
  [[ -n ${KAGGLE_API_TOKEN:-} ]] && return 0
  [[ -n ${KAGGLE_USERNAME:-} && -n ${KAGGLE_KEY:-} ]] && return 0
  local file
  for file in \
    "${KAGGLE_CONFIG_DIR:-$HOME/.kaggle}/kaggle.json" \
    "${XDG_CONFIG_HOME:-$HOME/.config}/kaggle/kaggle.json" \
    "$HOME/.kaggle/access_token" \
    "$HOME/.kaggle/credentials.json"; do
    [[ -s $file ]] && return 0
  done
  return 1
}

[[ $# -eq 2 ]] || die "usage: fetch.sh SOURCE DEST (SOURCE: an http(s) URL, gdrive:ID or kaggle:OWNER/DATASET)"
source=$1
dest=$2
tries=${FETCH_TRIES:-5}
timeout=${FETCH_TIMEOUT:-60}
waitretry=${FETCH_WAITRETRY:-10}
progress=${FETCH_PROGRESS:-dot:giga}

case $source in
  http://* | https://* | ftp://*)
    need wget "install wget, or download $source yourself and place it as $dest without the .part suffix"
    # exec: the caller stops a transfer that turned out to be a different file by signalling us.
    exec wget --continue --no-hsts --server-response --tries="$tries" --timeout="$timeout" \
      --waitretry="$waitretry" --progress="$progress" --output-document="$dest" -- "$source"
    ;;
  gdrive:?*)
    need gdown "run 'make setup' (gdown is in requirements.txt)"
    gdown --continue --retries "$tries" --timeout "$timeout" --output "$dest" -- "${source#gdrive:}" || exit 1
    ;;
  kaggle:?*/?*)
    have_kaggle_credentials || die "no Kaggle credentials: save kaggle.json from https://www.kaggle.com/settings/api as ~/.kaggle/kaggle.json (chmod 600), or set KAGGLE_USERNAME and KAGGLE_KEY (or KAGGLE_API_TOKEN)"
    need kaggle "run 'make setup' (kaggle is in requirements.txt)"
    dataset=${source#kaggle:}
    # Beside DEST, like DEST itself only ever used by the one run fetching DEST (download.py
    # holds a lock per file); not a vlprep temporary, which a concurrent run could clean away.
    workdir=$dest.kaggle
    rm -rf -- "$workdir"
    mkdir -- "$workdir"
    trap 'rm -rf -- "$workdir"' EXIT
    kaggle datasets download --path "$workdir" -- "$dataset" || exit 1
    zip=$workdir/${dataset##*/}.zip
    [[ -f $zip ]] || { printf 'fetch.sh: kaggle wrote no %s\n' "$zip" >&2; exit 1; }
    mv -f -- "$zip" "$dest"
    ;;
  *)
    die "unknown source '$source': expected an http(s) URL, gdrive:ID or kaggle:OWNER/DATASET"
    ;;
esac
