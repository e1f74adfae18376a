#!/usr/bin/env bash
# Synthetic corpus generator (testdata/gen, `immdata gen`).
# `go test ./...` and `go vet ./...` skip directories named testdata, so this check vets and
# tests testdata/gen itself, then runs the command twice (different worker counts) and
# compares every file's sha256, and reads the output with Python's standard library
# (wave, tarfile, json, zlib) as an independent reader.
set -euo pipefail
cd "$(dirname "$0")/../.."
go vet ./testdata/gen/
# shellcheck disable=SC2086
go test ${GO_TEST_FLAGS:-} ./testdata/gen/

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/immdata" ./cmd/immdata
args=(gen --samples 40 --seed 3 --bad --tar --shard-samples 16 --image-format mixed --audio-seconds 0.5)
"$tmp/immdata" "${args[@]}" --out "$tmp/a" --workers 2
"$tmp/immdata" "${args[@]}" --out "$tmp/b" --workers 1
hashes() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum && find . -type l -printf '%p -> %l\n' | sort); }
hashes "$tmp/a" >"$tmp/a.sha"
hashes "$tmp/b" >"$tmp/b.sha"
if ! diff "$tmp/a.sha" "$tmp/b.sha"; then
  echo "synthetic-corpus: same seed gave different bytes" >&2
  exit 1
fi
echo "synthetic-corpus: $(wc -l <"$tmp/a.sha") files identical across two runs"

py=$(command -v python3 || true)
if [ -z "$py" ]; then
  if [ "${CI:-}" = true ]; then echo "synthetic-corpus: python3 missing" >&2; exit 1; fi
  echo "synthetic-corpus: SKIP python3 reader (python3 not found)"; exit 0
fi
"$py" - "$tmp/a" <<'PY'
import json, os, struct, sys, tarfile, wave, zlib
root = sys.argv[1]
lines = [json.loads(l) for l in open(os.path.join(root, "manifest.jsonl"), encoding="utf-8")]
assert len(lines) == 40, len(lines)
for m in lines:
    with wave.open(os.path.join(root, m["audio"]), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 16000, 8000), m["audio"]
    img = open(os.path.join(root, m["image"]), "rb").read()
    sig = {"jpeg": b"\xff\xd8\xff", "png": b"\x89PNG\r\n\x1a\n"}[m["image_format"]]
    assert img.startswith(sig), m["image"]
    if m["image_format"] == "png":
        w_, h_ = struct.unpack(">II", img[16:24])
        assert (w_, h_) == (64, 64), (m["image"], w_, h_)
    assert open(os.path.join(root, m["text"]), encoding="utf-8").read() == m["caption"]
members = []
for k in range(3):
    with tarfile.open(os.path.join(root, "shards", "shapes-%05d.tar" % k)) as t:
        for ti in t.getmembers():
            assert ti.isfile() and ti.uid == 0 and ti.gid == 0 and ti.mode == 0o644 and ti.mtime == 1704067200, ti.name
            assert t.extractfile(ti).read() == open(os.path.join(root, ti.name), "rb").read(), ti.name
            members.append(ti.name)
assert members == [p for m in lines for p in (m["image"], m["text"], m["audio"])], members[:6]
bad = os.path.join(root, "bad")
huge = open(os.path.join(bad, "huge.png"), "rb").read()
assert huge[12:16] == b"IHDR" and struct.unpack(">II", huge[16:24]) == (100000, 100000)
assert zlib.crc32(huge[12:29]) == struct.unpack(">I", huge[29:33])[0], "huge.png IHDR CRC must be valid"
with tarfile.open(os.path.join(bad, "escape.tar")) as t:
    assert "../escape.txt" in t.getnames(), t.getnames()
assert os.path.islink(os.path.join(bad, "outside.txt"))
assert os.path.getsize(os.path.join(bad, "empty.jpg")) == 0
try:
    open(os.path.join(bad, "latin1.txt"), encoding="utf-8").read()
    raise AssertionError("latin1.txt decoded as UTF-8")
except UnicodeDecodeError:
    pass
lying = open(os.path.join(bad, "lying.wav"), "rb").read()
assert struct.unpack("<I", lying[40:44])[0] > len(lying) - 44
print("synthetic-corpus: python reader agrees (%d samples, %d tar members, bad set)" % (len(lines), len(members)))
PY
