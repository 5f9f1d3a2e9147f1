#!/usr/bin/env bash
# The documentation stays true to the tree:
#  - docs/config.md is exactly what `facrnn config --markdown` writes from the
#    option table (regenerate it when an option changes), and lists every key
#    the text help lists;
#  - every relative link in every Markdown file of the repository (tracked, or
#    new and not ignored) resolves to an existing file or folder inside the
#    repository (anchors are stripped; http(s), mailto and other URL schemes
#    are not followed);
#  - README.md, the user's guide, stays under 15,000 bytes (reference
#    material belongs in docs/).
# The link checker first proves on a small fixture that it reports a broken
# link and a link leaving the tree, and ignores links in code.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$FACRNN_SRC"

# ---- docs/config.md is generated from the option table ----------------------
REGEN="build/facrnn config --markdown > docs/config.md"
if "$FACRNN_BIN" config --markdown > "$WORK/config.md" 2> "$WORK/config.err"; then
  if diff -u docs/config.md "$WORK/config.md" > "$WORK/config.diff"; then
    pass "docs/config.md matches facrnn config --markdown"
  else
    head -40 "$WORK/config.diff"
    fail "docs/config.md is out of date with the option table; regenerate it: $REGEN"
  fi
else
  cat "$WORK/config.err"
  fail "facrnn config --markdown failed"
fi
# Every key of the text help is a row of the page (the two walk one table).
"$FACRNN_BIN" config | awk '/^  [a-z_]+\.[a-z_]+ /{print $1}' | sort > "$WORK/keys.txt"
sed -n 's/^| `\([a-z_]*\.[a-z_]*\)` |.*/\1/p' docs/config.md | sort > "$WORK/rows.txt"
if [ "$(wc -l < "$WORK/keys.txt")" -ge 30 ] && cmp -s "$WORK/keys.txt" "$WORK/rows.txt"; then
  pass "docs/config.md has one row per configuration key ($(wc -l < "$WORK/keys.txt") keys)"
else
  diff "$WORK/keys.txt" "$WORK/rows.txt" | head -20
  fail "docs/config.md rows differ from the keys of facrnn config; regenerate it: $REGEN"
fi

# ---- relative links in Markdown ---------------------------------------------
cat > "$WORK/checklinks.py" <<'PYEOF'
"""checklinks.py ROOT FILE...: print FILE:LINE for every relative Markdown
link whose target is missing or outside ROOT; exit 1 if there is one."""
import os
import re
import sys
from urllib.parse import unquote

# [text](target "title") and ![alt](target), text may hold one level of [].
INLINE = re.compile(r'\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^()\s]*(?:\([^()\s]*\)[^()\s]*)*)'
                    r'(?:\s+(?:"[^"]*"|\'[^\']*\'|\([^)]*\)))?\s*\)')
REFDEF = re.compile(r'^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)')
SCHEME = re.compile(r'^[A-Za-z][A-Za-z0-9+.-]*:')
FENCE = re.compile(r'^ {0,3}(`{3,}|~{3,})')
CODESPAN = re.compile(r'(`+)(?:(?!\1).)+?\1')


def targets(text):
    """(line number, target) of every link outside code and HTML comments."""
    text = re.sub(r'<!--.*?-->', lambda m: '\n' * m.group(0).count('\n'), text, flags=re.S)
    fence = None
    for no, line in enumerate(text.split('\n'), 1):
        m = FENCE.match(line)
        if fence:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            continue
        if m:
            fence = m.group(1)
            continue
        line = CODESPAN.sub('', line)
        for m in REFDEF.finditer(line):
            yield no, m.group(1)
        for m in INLINE.finditer(line):
            yield no, m.group(1)


def main(root, files):
    root = os.path.realpath(root)
    bad = 0
    for rel in files:
        path = os.path.join(root, rel)
        with open(path, encoding='utf-8') as f:
            text = f.read()
        for no, t in targets(text):
            t = t.strip('<>')
            if not t or t.startswith('#') or SCHEME.match(t):
                continue  # in-page anchor, or http(s)/mailto/...: not followed
            p = unquote(t.split('#', 1)[0].split('?', 1)[0])
            base = root if p.startswith('/') else os.path.dirname(path)
            full = os.path.realpath(os.path.join(base, p.lstrip('/')))
            if not (full == root or full.startswith(root + os.sep)):
                print('%s:%d: link leaves the repository: %s' % (rel, no, t))
                bad += 1
            elif not os.path.exists(full):
                print('%s:%d: broken link: %s' % (rel, no, t))
                bad += 1
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1], sys.argv[2:]))
PYEOF

# The checker itself: a fixture with 2 bad links among good and ignored ones.
mkdir -p "$WORK/fx/docs" "$WORK/fx/sub"
touch "$WORK/fx/sub/there.txt"
cat > "$WORK/fx/docs/page.md" <<'MD'
# Page
Good: [there](../sub/there.txt), [with anchor](../sub/there.txt#part), [folder](../sub/),
[rooted](/sub/there.txt), [self](#page), [web](https://example.org/x), [mail](mailto:a@b.c),
![image](../sub/there.txt "title"), [ref][r].
Code is not followed: `[x](missing-in-code.md)`
```
[y](missing-in-fence.md)
```
<!-- [z](missing-in-comment.md) -->
Bad: [gone](missing.md) and [outside](../../elsewhere/secret.md).

[r]: ../sub/there.txt
MD
out="$($PY "$WORK/checklinks.py" "$WORK/fx" docs/page.md)" && rc=0 || rc=$?
if [ "$rc" -eq 1 ] && [ "$(grep -c . <<<"$out")" -eq 2 ] &&
   grep -q 'docs/page.md:10: broken link: missing.md' <<<"$out" &&
   grep -q 'docs/page.md:10: link leaves the repository: ../../elsewhere/secret.md' <<<"$out"; then
  pass "link checker reports exactly the two bad links of the fixture"
else
  echo "$out"
  fail "link checker misjudged the fixture (exit $rc)"
fi

# The repository's Markdown files: tracked, or new and not ignored.
if git -C "$FACRNN_SRC" rev-parse --git-dir > /dev/null 2>&1; then
  mapfile -t md < <(git -C "$FACRNN_SRC" ls-files --cached --others --exclude-standard -- '*.md' |
                    while read -r f; do [ -f "$FACRNN_SRC/$f" ] && echo "$f"; done | sort -u)
else
  mapfile -t md < <(cd "$FACRNN_SRC" && find . -name '*.md' -not -path './build*' | sed 's|^\./||' | sort)
fi
if [ "${#md[@]}" -lt 5 ]; then
  fail "found only ${#md[@]} Markdown files under $FACRNN_SRC"
elif out="$($PY "$WORK/checklinks.py" "$FACRNN_SRC" "${md[@]}")"; then
  pass "every relative link in ${#md[@]} Markdown files resolves inside the repository"
else
  echo "$out"
  fail "Markdown files have broken relative links (above)"
fi

# ---- README stays a user's guide ---------------------------------------------
size=$(wc -c < README.md)
if [ "$size" -lt 15000 ]; then
  pass "README.md is $size bytes (< 15000)"
else
  fail "README.md is $size bytes, limit 15000: move reference material to docs/"
fi

finish
