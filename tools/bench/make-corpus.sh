#!/bin/sh
# A ~20 MB corpus of natural English for the tokenizer benchmark: this machine's licence texts and Debian
# copyright files, concatenated (repeated from the start if they fall short). Usage: make-corpus.sh OUT
set -eu
out=${1:?usage: make-corpus.sh OUT}
{ cat /usr/share/common-licenses/* 2>/dev/null; find /usr/share/doc -name copyright -type f -print0 | sort -z | xargs -0 cat; } > "$out.part"
while [ "$(wc -c < "$out.part")" -lt 20000000 ]; do cat "$out.part" "$out.part" | head -c 20000000 > "$out.tmp"; mv "$out.tmp" "$out.part"; done
head -c 20000000 "$out.part" > "$out" && rm "$out.part"
