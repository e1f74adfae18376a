"""Independent reader check of `immdata export --format webdataset` (scripts/checks.d/shards.sh).

Reads every tar the way webdataset does (tarfile, members grouped by consecutive key, key =
name up to the first dot of the base name), checks that each tar holds as many samples as
its shard has rows in index.json, that keys are unique, that every .npy member loads with
numpy, and that the latent and token members of the sample in EXPECT.json (our loader's
decoding) hold the same values.
Usage: /usr/bin/python3 shards-wds.py SHARDS WDS [EXPECT.json]
"""
import io
import json
import os
import re
import sys
import tarfile

import numpy as np

shards_dir, wds_dir = sys.argv[1], sys.argv[2]
expect = json.load(open(sys.argv[3])) if len(sys.argv) > 3 else None
index = json.load(open(os.path.join(shards_dir, "index.json")))
split_re = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")  # webdataset's base_plus_ext


def fail(msg):
    print("shards webdataset check: FAIL: " + msg)
    sys.exit(1)


seen = set()
found = False
for shard in index["shards"]:
    path = os.path.join(wds_dir, shard["path"][: -len(".parquet")] + ".tar")
    samples = []
    with tarfile.open(path) as tf:
        for m in tf:
            mm = split_re.match(m.name)
            if not mm:
                fail(f"{path}: member {m.name} has no key.ext form")
            key, ext = mm.group(1), mm.group(2)
            if not samples or samples[-1]["__key__"] != key:
                samples.append({"__key__": key})
            if ext in samples[-1]:
                fail(f"{path}: sample {key} has two {ext} members")
            samples[-1][ext] = tf.extractfile(m).read()
    if len(samples) != shard["rows"]:
        fail(f"{path}: {len(samples)} samples, index.json says {shard['rows']} rows")
    for s in samples:
        if s["__key__"] in seen:
            fail(f"key {s['__key__']} appears twice")
        seen.add(s["__key__"])
        arrays = {ext: np.load(io.BytesIO(v)) for ext, v in s.items() if ext.endswith(".npy")}
        if expect and s["__key__"] == expect["key"].replace(".", "_"):
            found = True
            lat = arrays["image_latent.npy"].astype(np.float32).ravel()
            want = np.array(expect["image_latent"], dtype=np.float32)
            if lat.shape != want.shape or not np.array_equal(lat, want):
                fail(f"latent of {s['__key__']} differs from our loader's")
            tok = arrays["text_tokens.npy"]
            if tok.dtype != np.int32 or tok.tolist() != expect["text_tokens"]:
                fail(f"tokens of {s['__key__']} differ from our loader's")
if expect and not found:
    fail(f"sample {expect['key']} not found")
total = sum(s["rows"] for s in index["shards"])
print(f"shards webdataset check: ok: {len(seen)} samples in {len(index['shards'])} tars match index.json ({total} rows)"
      + (f"; latent and tokens of {expect['key']} match our loader" if expect else ""))
