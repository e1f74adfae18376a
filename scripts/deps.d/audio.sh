#!/usr/bin/env bash
# Test peers for encoders/audio: numpy (the float64 Whisper log-mel reference in
# encoders/audio/testdata/mel_ref.py), espeak-ng (speech fixtures), sox, flac and lame
# (encoded fixtures made by the tests in a temp dir).
set -euo pipefail
. "$(dirname "$0")/../lib/deps.sh"
apt_need audio python3-numpy espeak-ng sox flac lame
