package text_test

import (
	"fmt"
	"os"

	"github.com/immkit/immkit/encoders/text"
)

// A toy vocabulary: the 256 bytes with ranks equal to their values, then "ab" and "abab".
// "abab" is a token by itself; " c" splits into its two bytes because " c" is not a token.
func Example() {
	ranks := text.Ranks{"ab": 256, "abab": 257}
	for b := range 256 {
		ranks[string([]byte{byte(b)})] = int32(b)
	}
	enc, err := text.New(text.Config{Name: "toy", Pattern: text.PatternGPT2, Ranks: ranks,
		Special: map[string]int32{"<|endoftext|>": 258}})
	if err != nil {
		fmt.Println(err)
		return
	}
	ids := enc.Encode(nil, []byte("abab c"))
	fmt.Println(ids)
	all, _ := enc.ParseSpecialSet("all")
	fmt.Println(enc.EncodeSpecial(nil, []byte("ab<|endoftext|>"), all))
	back, _ := enc.Decode(nil, ids)
	fmt.Printf("%q\n", back)
	d := enc.NewDecoder(os.Stdout)
	d.Write(enc.Encode(nil, []byte("héllo\n")))
	d.Flush()
	// Output:
	// [257 32 99]
	// [256 258]
	// "abab c"
	// héllo
}
