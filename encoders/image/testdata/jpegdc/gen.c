/* Generator of the jpeg-dc test fixtures (TestJPEGDCFixtures), written with libjpeg-turbo's
 * libjpeg API so that every coding option the jpeg-dc path meets or refuses is covered:
 * sampling factors, restart intervals, 16-bit quantisation tables, grey, RGB-coded, progressive
 * and arithmetic-coded pictures. Regenerate (Debian: libjpeg62-turbo-dev) with
 *   cc -O2 -o /tmp/gen gen.c -ljpeg && (cd encoders/image/testdata/jpegdc && /tmp/gen)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <jpeglib.h>

static void write(const char *name, int w, int h, int ncomp, J_COLOR_SPACE in, int quality,
                  int hs, int vs, int restart, int progressive, int arith, int rgb, int baseline) {
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr e;
  FILE *f = fopen(name, "wb");
  c.err = jpeg_std_error(&e);
  jpeg_create_compress(&c);
  jpeg_stdio_dest(&c, f);
  c.image_width = w;
  c.image_height = h;
  c.input_components = ncomp;
  c.in_color_space = in;
  jpeg_set_defaults(&c);
  if (rgb) jpeg_set_colorspace(&c, JCS_RGB);
  jpeg_set_quality(&c, quality, baseline);
  if (ncomp == 3 && !rgb) {
    c.comp_info[0].h_samp_factor = hs;
    c.comp_info[0].v_samp_factor = vs;
  }
  c.restart_interval = restart;
  if (progressive) jpeg_simple_progression(&c);
  c.arith_code = arith;
  jpeg_start_compress(&c, TRUE);
  unsigned char *row = malloc(w * ncomp);
  while (c.next_scanline < c.image_height) {
    int y = c.next_scanline;
    for (int x = 0; x < w; x++) {
      /* smooth gradients, a few discs and fine texture: photo-like, with hard colour edges */
      double r = 120 + 80 * sin(x * 0.05) + 30 * cos(y * 0.11);
      double g = 100 + 90 * cos((x + y) * 0.03);
      double b = 140 + 60 * sin(y * 0.07 - x * 0.02);
      double dx = x - w * 0.35, dy = y - h * 0.4;
      if (dx * dx + dy * dy < (w * 0.2) * (w * 0.2)) { r = 230; g = 40; b = 30; }
      dx = x - w * 0.7; dy = y - h * 0.65;
      if (dx * dx + dy * dy < (h * 0.15) * (h * 0.15)) { r = 20; g = 60; b = 220; }
      double n = ((x * 7 + y * 13) % 17) - 8;
      int v[3] = {(int)(r + n), (int)(g + n), (int)(b + n)};
      for (int k = 0; k < ncomp; k++) row[x * ncomp + k] = v[k] < 0 ? 0 : v[k] > 255 ? 255 : v[k];
    }
    JSAMPROW rp = row;
    jpeg_write_scanlines(&c, &rp, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  fclose(f);
  free(row);
}

int main(void) {
  /* name, w, h, comps, colour space, quality, luma h, v, restart, progressive, arith, rgb, baseline */
  write("444.jpg", 131, 97, 3, JCS_RGB, 90, 1, 1, 0, 0, 0, 0, 1);
  write("422.jpg", 131, 97, 3, JCS_RGB, 90, 2, 1, 0, 0, 0, 0, 1);
  write("420.jpg", 131, 97, 3, JCS_RGB, 90, 2, 2, 0, 0, 0, 0, 1);
  write("440.jpg", 131, 97, 3, JCS_RGB, 90, 1, 2, 0, 0, 0, 0, 1);
  write("420-restart.jpg", 200, 120, 3, JCS_RGB, 85, 2, 2, 3, 0, 0, 0, 1);
  write("444-restart1.jpg", 64, 40, 3, JCS_RGB, 95, 1, 1, 1, 0, 0, 0, 1);
  write("420-q100.jpg", 96, 96, 3, JCS_RGB, 100, 2, 2, 0, 0, 0, 0, 1);
  write("420-q3-16bit.jpg", 90, 70, 3, JCS_RGB, 3, 2, 2, 0, 0, 0, 0, 0);
  write("grey.jpg", 77, 51, 1, JCS_GRAYSCALE, 90, 1, 1, 0, 0, 0, 0, 1);
  write("grey-restart.jpg", 77, 51, 1, JCS_GRAYSCALE, 90, 1, 1, 2, 0, 0, 0, 1);
  write("tiny.jpg", 5, 3, 3, JCS_RGB, 90, 2, 2, 0, 0, 0, 0, 1);
  /* refused by jpeg-dc (other paths decode them) */
  write("progressive.jpg", 131, 97, 3, JCS_RGB, 90, 2, 2, 0, 1, 0, 0, 1);
  write("arith.jpg", 131, 97, 3, JCS_RGB, 90, 2, 2, 0, 0, 1, 0, 1);
  write("rgb.jpg", 131, 97, 3, JCS_RGB, 90, 1, 1, 0, 0, 0, 1, 1);
  return 0;
}
