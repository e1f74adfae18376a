// Package text is immkit's byte-level BPE tokenizer: it encodes text to token ids and back
// with tiktoken rank files (cl100k_base, o200k_base, p50k_base, r50k_base/gpt2), giving
// token-for-token the ids tiktoken gives, and trains new vocabularies from a corpus.
//
// An [Encoding] is built from [Ranks] (the mergeable byte sequences of a `.tiktoken` file,
// one rank each), a [Pattern] (the pre-tokeniser: a hand-written splitter equivalent to the
// encoding's regular expression) and a table of special tokens. Encoding runs in two steps,
// as in tiktoken: the pre-tokeniser cuts the text into pieces, and each piece that is not a
// token by itself is merged pair by pair, lowest rank first (leftmost on ties), starting from
// single bytes. A piece cache in each encode state (a goroutine's scratch space, kept in a
// free list of the Encoding between calls) remembers the merge result of pieces seen before;
// it never holds whole inputs. [Encoding.EncodeBatchInto] encodes many documents on several
// goroutines into one reused [Batch] arena without allocating.
//
// Special tokens (<|endoftext|> and the like) are recognised only where the caller allows
// them ([Encoding.EncodeSpecial]); elsewhere their text is encoded as ordinary text.
//
// [Decoder] turns a stream of ids back into UTF-8 text without ever splitting a multi-byte
// sequence between two writes. [Train] learns a new byte-level BPE vocabulary;
// [WriteTiktoken] and [WriteHFTokenizer] save it in tiktoken and Hugging Face formats.
package text
