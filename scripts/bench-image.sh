#!/usr/bin/env bash
# Image decode benchmark (docs/benchmarks.md, "Image encoders"): decode a 512x512 JPEG q90,
# center-crop and resize to 64x64, one core, ours (libjpeg-turbo path, jpeg-dc path, pure-Go path)
# against Pillow (draft + resize) and OpenCV (imdecode + resize INTER_AREA) on the same files,
# interleaved in the same run. Reports images per CPU-second (per-core throughput that holds on
# a shared machine) and images per wall-second, medians over ROUNDS.
# Environment: IMMKIT_CACHE (default .cache), ROUNDS (default 5), SECONDS_PER_RUN (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${IMMKIT_CACHE:-$PWD/.cache}"
B="$CACHE/bench-image"
ROUNDS="${ROUNDS:-5}"
SECS="${SECONDS_PER_RUN:-3}"
mkdir -p "$B"

need=()
for p in libturbojpeg0 python3-pil python3-opencv python3-numpy; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Photos: Debian's gnome-backgrounds, unpacked into the cache (not installed).
if [ ! -d "$B/gnome/usr/share/backgrounds/gnome" ]; then
  (cd "$B" && apt-get download gnome-backgrounds >/dev/null && dpkg -x gnome-backgrounds_*.deb gnome && rm -f gnome-backgrounds_*.deb)
fi
if [ ! -d "$B/512" ] || [ -z "$(ls "$B/512")" ]; then
  /usr/bin/python3 scripts/bench_image_prep.py "$B/gnome/usr/share/backgrounds/gnome" "$B/512"
fi

echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
go test -c -o "$B/image.test" ./encoders/image
: >"$B/go.txt"
: >"$B/peers.jsonl"
for r in $(seq "$ROUNDS"); do
  echo "round $r/$ROUNDS"
  IMMKIT_BENCH_IMAGE_DIR="$B/512" "$B/image.test" -test.run XXX -test.bench 'DecodeCropResize64' \
    -test.cpu 1 -test.benchtime "${SECS}s" -test.count 1 | grep '^Benchmark' | tee -a "$B/go.txt"
  /usr/bin/python3 scripts/bench_image_peers.py "$B/512" --seconds "$SECS" | tee -a "$B/peers.jsonl"
done

/usr/bin/python3 - "$B" <<'PY'
import json, re, statistics, sys, platform
b = sys.argv[1]
res = {}
for line in open(b + "/go.txt"):
    m = re.match(r"BenchmarkDecodeCropResize64/(\w+)\s.*?([\d.]+) images/cpu-s\s+([\d.]+) images/s", line)
    if m:
        res.setdefault("ours-" + m.group(1), {"cpu": [], "wall": []})
        res["ours-" + m.group(1)]["cpu"].append(float(m.group(2)))
        res["ours-" + m.group(1)]["wall"].append(float(m.group(3)))
vers = {}
for line in open(b + "/peers.jsonl"):
    j = json.loads(line)
    r = res.setdefault(j["lib"], {"cpu": [], "wall": []})
    r["cpu"].append(j["images"] / j["cpu_s"])
    r["wall"].append(j["images"] / j["wall_s"])
    vers[j["lib"]] = j["version"]
med = {k: (statistics.median(v["cpu"]), statistics.median(v["wall"]), len(v["cpu"])) for k, v in res.items()}
peer = max(med.get("pillow", (0, 0))[0], med.get("opencv", (0, 0))[0])
cpu = open("/proc/cpuinfo").read()
model = re.search(r"model name\s*:\s*(.*)", cpu).group(1)
print("\nmachine: %s, %d cores, python %s, pillow %s, opencv %s" % (model, cpu.count("processor\t:"), platform.python_version(), vers.get("pillow"), vers.get("opencv")))
print("| pipeline | images/CPU-s (median) | images/s wall (median) | runs | ratio to faster peer (CPU) |")
print("|---|---|---|---|---|")
for k in ("ours-turbo", "ours-dc", "ours-go", "pillow", "opencv"):
    if k in med:
        c, w, n = med[k]
        print("| %s | %.0f | %.0f | %d | %.2f |" % (k, c, w, n, c / peer if peer else float("nan")))
# Per-round ratios (each round runs ours and both peers back to back, so a round's ratio
# sees the same machine load on both sides).
if "pillow" in res:
    for k in ("ours-dc", "ours-turbo"):
        if k in res and len(res[k]["cpu"]) == len(res["pillow"]["cpu"]):
            fp = [max(pl, oc) for pl, oc in zip(res["pillow"]["cpu"], res.get("opencv", res["pillow"])["cpu"])]
            rr = [a / b for a, b in zip(res[k]["cpu"], fp)]
            print("%s / faster peer per round: %s; median %.2f" % (k, ", ".join("%.2f" % x for x in rr), statistics.median(rr)))
print("load average at the end:", open("/proc/loadavg").read().split()[:3])
PY
