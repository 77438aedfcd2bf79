"""Meeting-corpus preparation shared by the recipes' ``local/`` scripts (AMI, AISHELL-4,
AliMeeting): resumable downloads, Praat TextGrid reading, first-channel extraction and
Kaldi-style data dirs. No torch, no espnet2."""
