# Shared definitions for the tools.  Sourced, never run.
#
# Layout (all relative to the repository root):
#   cpython/          the generated work tree: pristine upstream + patches/,
#                     a git repository of its own; our files are linked in
#   build/stackless/  out-of-tree build of cpython/ (the fork)
#   build/stock/      out-of-tree build of the pristine source (baselines)
#   ~/.cache/stackless-python/   the verified upstream tarball (shared by
#                     every clone on the machine, so a second build
#                     downloads nothing)

set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=upstream.env
. "$TOP/tools/upstream.env"

WORK="$TOP/cpython"
PATCHES="$TOP/patches"
SERIES="$PATCHES/series"
GENERATED="$PATCHES/generated"
CACHE="${STACKLESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stackless-python}"
TARBALL="$CACHE/$UPSTREAM_TARBALL"

# Deterministic commits in the work tree: the same series always gives the
# same commit ids.
export GIT_AUTHOR_NAME="stackless tools" GIT_AUTHOR_EMAIL="tools@stackless.invalid"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
export GIT_AUTHOR_DATE="2025-06-11T00:00:00Z" GIT_COMMITTER_DATE="2025-06-11T00:00:00Z"

say() { printf '%s\n' "$*" >&2; }
die() { printf '%s: error: %s\n' "${0##*/}" "$*" >&2; exit 1; }

# git inside the work tree, without hooks or user configuration getting in
# the way.
wgit() { git -C "$WORK" -c core.autocrlf=false -c advice.detachedHead=false "$@"; }
