# Where the corpora live. mini_meeting is simulated locally by local/data.sh (no download).
MINI_MEETING="${MINI_MEETING:-downloads/mini_meeting}"
