# Shared start of the end-to-end scripts in tests/scripts/, sourced as
#   source "$(dirname "$0")/../support/script_start.bash" "${1:-}"
# (.bash, and outside tests/scripts/, so ctest does not take it for a test). Goes to the source
# root, makes ABLATE (the binary under test, default build/ablate) an absolute path, and skips
# (exit 77, with the reason) when the binary, the sqlite3 shell or the EuroSAT images under
# ../shared/data are missing.
ABLATE=${1:-build/ablate}
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$SRC" || exit 1
[ -x "$ABLATE" ] || { echo "skip: no ablate binary at $ABLATE"; exit 77; }
command -v sqlite3 >/dev/null || { echo "skip: no sqlite3 shell"; exit 77; }
[ -d ../shared/data/eurosat_rgb ] || { echo "skip: no EuroSAT data under ../shared/data"; exit 77; }
ABLATE=$(cd "$(dirname "$ABLATE")" && pwd)/$(basename "$ABLATE")
