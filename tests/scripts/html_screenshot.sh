#!/usr/bin/env bash
# Looks at the HTML report the way a person would: the reports test binary renders a report from
# a hand-made database into $TMPDIR/ablate_report_test.html (test "[html]"), headless Chromium
# screenshots it, and the checks are that the picture is not blank and that the file holds the
# tables and inline <svg>/<img> figures with no reference leaving the file.
# $1: the ablate binary (unused; its folder locates tests/reports_tests). Exit 77 = skipped.
set -euo pipefail
build_dir=$(dirname "${1:-build/ablate}")
tests_bin="$build_dir/tests/reports_tests"

browser=""
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
done
if [ -z "$browser" ]; then
  echo "skipped: no headless Chromium (apt-get install chromium) to screenshot the HTML report"
  exit 77
fi
if [ ! -x "$tests_bin" ]; then
  echo "skipped: $tests_bin is not built (cmake --build <dir> --target reports_tests)"
  exit 77
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
TMPDIR=$work "$tests_bin" "[html]" >"$work/tests.log" 2>&1 || { cat "$work/tests.log"; exit 1; }
html=$work/ablate_report_test.html
[ -s "$html" ] || { echo "FAIL: $html was not written"; exit 1; }

fail=0
check() { if ! "$@"; then echo "FAIL: $*"; fail=1; fi; }
check grep -q '<table class="results"' "$html"
check grep -q '<table class="claims"' "$html"
check grep -q '<img alt="Reconstruction sample" src="data:image/png;base64,' "$html"
if command -v gnuplot >/dev/null 2>&1; then
  [ "$(grep -c '<svg' "$html")" -ge 3 ] || { echo "FAIL: fewer than 3 inline <svg> plots"; fail=1; }
fi
# Every src/href must stay inside the file.
if grep -oE '(src|href)="[^"]*"' "$html" | grep -vE '="(data:|#)' | grep -q .; then
  echo "FAIL: external references:"; grep -oE '(src|href)="[^"]*"' "$html" | grep -vE '="(data:|#)'; fail=1
fi

shot=$work/report.png
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,2600 \
  --screenshot="$shot" "file://$html" >"$work/chromium.log" 2>&1 || true
if [ ! -s "$shot" ]; then echo "FAIL: Chromium wrote no screenshot"; cat "$work/chromium.log"; exit 1; fi
[ -n "${ABLATE_KEEP_SCREENSHOT:-}" ] && cp "$shot" "$ABLATE_KEEP_SCREENSHOT"

# Decode the PNG and count colours: a blank or error page has a handful, a rendered report
# (tables, coloured plot lines, the gradient figure) has hundreds.
python3 - "$shot" <<'PY' || fail=1
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, ihdr = 8, b"", None
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR": ihdr = struct.unpack(">IIBBBBB", body)
    if kind == b"IDAT": idat += body
    pos += 12 + n
w, h, depth, ctype = ihdr[:4]
assert depth == 8 and ctype in (2, 6), f"unexpected PNG format depth={depth} type={ctype}"
bpp = 3 if ctype == 2 else 4
raw, stride = zlib.decompress(idat), w * bpp
prev, colours, row_start, ink = bytearray(stride), set(), 0, 0
for y in range(h):
    f, line = raw[row_start], bytearray(raw[row_start + 1:row_start + 1 + stride])
    row_start += 1 + stride
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    prev = line
    for x in range(0, w, 2):
        px = bytes(line[x * bpp:x * bpp + 3])
        colours.add(px)
        ink += px != b"\xff\xff\xff"
print(f"screenshot {w}x{h}: {len(colours)} colours, {ink} non-white sampled pixels")
assert w >= 1000 and h >= 1000, "screenshot too small"
assert len(colours) >= 50, "screenshot looks blank"
assert ink >= 0.02 * (w // 2) * h, "screenshot has almost no ink"
PY
[ "$fail" = 0 ] && echo "html_screenshot: ok"
exit "$fail"
