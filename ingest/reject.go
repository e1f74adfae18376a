package ingest

import "fmt"

// Reject reasons. Every rejected input carries exactly one of them; docs/ingest.md lists
// what each means. They are stable strings: tests, the synthetic corpus generator and users'
// dashboards match on them.
const (
	ReasonEmptyFile          = "empty_file"
	ReasonFileTooLarge       = "file_too_large"
	ReasonReadError          = "read_error"
	ReasonUnsafePath         = "unsafe_path"
	ReasonSymlinkOutsideRoot = "symlink_outside_root"
	ReasonUnknownExtension   = "unknown_extension"
	ReasonKeyConflict        = "key_conflict"
	ReasonNotRegular         = "not_regular_file"
	ReasonTarCorrupt         = "tar_corrupt"

	ReasonImageUnknownFormat = "image_unknown_format"
	ReasonImageTruncated     = "image_truncated"
	ReasonImageCorrupt       = "image_corrupt"
	ReasonPNGCRC             = "png_crc"
	ReasonImageTooLarge      = "image_too_large"
	ReasonImageTooSmall      = "image_too_small"

	ReasonAudioUnknownFormat = "audio_unknown_format"
	ReasonWAVTruncated       = "wav_truncated"
	ReasonAudioTruncated     = "audio_truncated"
	ReasonAudioCorrupt       = "audio_corrupt"
	ReasonAudioTooLong       = "audio_too_long"

	ReasonTextNotUTF8  = "text_not_utf8"
	ReasonTextTooShort = "text_too_short"

	ReasonBadJSON      = "bad_json"
	ReasonBadBase64    = "bad_base64"
	ReasonBadRow       = "bad_row"
	ReasonNoContent    = "no_content"
	ReasonDecoderPanic = "decoder_panic"
)

// Stages named in reject rows.
const (
	StageSource = "source"
	StageProbe  = "probe"
)

// Reject is one row of the rejects table: the input that was rejected, the stage, a stable
// reason from the Reason constants and a human-readable detail.
type Reject struct {
	Source string
	Stage  string
	Reason string
	Detail string
}

// Error makes a *Reject usable as an error value.
func (r *Reject) Error() string {
	return fmt.Sprintf("ingest: %s: %s rejected %s: %s", r.Source, r.Stage, r.Reason, r.Detail)
}

// probeError is what a probe returns for bad input: a reason and a detail. The caller adds
// the source and stage.
type probeError struct {
	reason string
	detail string
}

func (e *probeError) Error() string { return e.reason + ": " + e.detail }

func perr(reason, format string, args ...any) *probeError {
	return &probeError{reason: reason, detail: fmt.Sprintf(format, args...)}
}
