#!/usr/bin/python3
"""Prepare the image benchmark set: 512x512 JPEG q90 crops of the raster photos/art in
Debian's gnome-backgrounds (4 crops per picture at different scales and positions).

usage: bench_image_prep.py SRC_DIR OUT_DIR
"""
import os
import sys

from PIL import Image

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
names = sorted(n for n in os.listdir(src) if n.endswith((".webp", ".jpg", ".png")))
count = 0
for name in names:
    im = Image.open(os.path.join(src, name)).convert("RGB")
    w, h = im.size
    if min(w, h) < 512:
        continue  # placeholders such as vnc-*.webp
    side = min(w, h)
    for k, (frac, fx, fy) in enumerate([(1.0, 0.5, 0.5), (0.7, 0.2, 0.3), (0.5, 0.8, 0.6), (0.35, 0.5, 0.2)]):
        s = int(side * frac)
        x0 = int((w - s) * fx)
        y0 = int((h - s) * fy)
        crop = im.crop((x0, y0, x0 + s, y0 + s)).resize((512, 512), Image.LANCZOS)
        dst = os.path.join(out, "%s-%d.jpg" % (os.path.splitext(name)[0], k))
        crop.save(dst, quality=90)
        count += 1
print("prepared %d images in %s" % (count, out))
